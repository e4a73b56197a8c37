"""The JSON API for scanners and the door page."""

from registration.api.views import bp

__all__ = ["bp"]
