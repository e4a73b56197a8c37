"""URLs that leave the site: in mail, and in what people are told to keep."""

from flask import current_app


def absolute_url(endpoint: str, **values) -> str:
    """An absolute URL under PUBLIC_BASE_URL; needs no request, and never trusts the Host header."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path
