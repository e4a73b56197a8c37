"""Races on viewing, through several gunicorn worker processes: the database decides, not the app's reads."""

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, Browserless, at_once, form_data, run_flask

PROGRAM_49 = ROOT / "tests" / "data" / "program-49.csv"


def post_simultaneously(server, path: str, fields: list[tuple[str, str]], *, visitors: int = 20) -> list[int]:
    """POST the same form from `visitors` browsers (each with its own session and CSRF token) at one moment."""
    browsers = [Browserless(server.url) for _ in range(visitors)]
    tokens = [browser.csrf_token(path.rsplit("/", 1)[0]) for browser in browsers]
    return at_once([lambda n=n: browsers[n].post(path, [*fields, ("csrf_token", tokens[n])]) for n in range(visitors)])


@pytest.fixture
def registered(live_server, database_url):
    """A live server (4 workers, rehearsal clock inside the on-demand window) with the 49-session program and
    one registrant; returns (server, personal page path, database engine)."""
    server = live_server(workers=4)
    imported = run_flask(server.env, "program", "import", str(PROGRAM_49))
    assert imported.returncode == 0, imported.stderr
    visitor = Browserless(server.url)
    token = visitor.csrf_token()
    assert visitor.post("/register", {**form_data(email="race@example.jp"), "csrf_token": token}) == 303
    engine = create_engine(database_url)
    with engine.connect() as conn:
        secret = conn.scalar(text("SELECT secret FROM registrants WHERE email_key = 'race@example.jp'"))
    yield server, f"/me/{secret}", engine
    engine.dispose()


def test_twenty_simultaneous_watch_clicks_count_one_view(registered):
    server, personal, engine = registered
    statuses = post_simultaneously(server, f"{personal}/watch", [("session", "openinfra-loki-stack")])
    assert statuses == [303] * 20, server.errors()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM session_views")) == 1


def test_twenty_tabs_saving_the_same_choice_keep_one_sign_up_per_session(registered):
    server, personal, engine = registered
    statuses = post_simultaneously(server, f"{personal}/sessions",
                                   [("sessions", "openinfra-loki-stack"), ("sessions", "test-automation-07")])
    assert statuses == [303] * 20, server.errors()
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.key, s.withdrawn_at FROM viewing_signups s JOIN program_sessions p ON p.id = s.session_id"
            " ORDER BY p.key")).all()
    assert [tuple(row) for row in rows] == [("openinfra-loki-stack", None), ("test-automation-07", None)]
