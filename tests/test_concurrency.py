"""Races between real processes: simultaneous submissions through a multi-worker gunicorn."""

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

from sqlalchemy import create_engine, text

from tests.conftest import form_data


class Browserless:
    """A cookie-keeping HTTP client, like one visitor's browser without redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            return response.read().decode()

    def post(self, path: str, data: dict) -> int:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_fifty_simultaneous_submissions_of_one_address_leave_one_registration(live_server, database_url):
    server = live_server(workers=4)
    visitors = [Browserless(server.url) for _ in range(50)]
    tokens = [re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', v.get("/register")).group(1)
              for v in visitors]
    start = threading.Barrier(len(visitors))
    statuses: list[int] = []

    def submit(visitor: Browserless, token: str, n: int) -> None:
        # Every spelling is the same address after NFKC and case folding.
        email = ["race@example.jp", "RACE@example.jp", "ｒａｃｅ＠ｅｘａｍｐｌｅ．ｊｐ"][n % 3]
        data = {**form_data(email=email, given_name=f"花子{n}"), "csrf_token": token}
        start.wait()
        statuses.append(visitor.post("/register", data))

    threads = [threading.Thread(target=submit, args=(v, t, n)) for n, (v, t) in enumerate(zip(visitors, tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 49 + [303], server.errors()[-5000:]  # one registered, 49 told "already registered"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registrants")) == 1
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 50  # the confirmation and 49 re-sent links
    engine.dispose()
