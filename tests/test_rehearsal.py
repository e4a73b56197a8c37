"""The rehearsal clock: simulated time from REHEARSAL_CLOCK, shared by every process through the database."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from registration import clock, create_app
from registration.extensions import db
from registration.models import RehearsalRun
from tests.conftest import run_flask

pytestmark = pytest.mark.real_clock
START = "2023-09-14T09:59:00+09:00"


def simulated(output: str) -> datetime:
    """Parse 'Simulated time: Thu 14 Sep 2023, 09:59:03 JST.' from the CLI."""
    stamp = re.search(r"(\w{3} \d+ \w{3} \d{4}, \d\d:\d\d:\d\d) JST", output).group(1)
    return datetime.strptime(stamp, "%a %d %b %Y, %H:%M:%S").replace(tzinfo=clock.TOKYO)


def test_clock_starts_at_the_instant_and_runs_forward(make_app):
    app = make_app(REHEARSAL_CLOCK=START)
    with app.app_context():
        first = clock.now()
        assert first.tzinfo is UTC or first.utcoffset() == timedelta(0)
        assert abs(first - datetime.fromisoformat(START)) < timedelta(seconds=5)
        time.sleep(0.2)
        assert clock.now() - first >= timedelta(seconds=0.2)


def test_the_beginning_is_recorded_once_and_every_process_agrees(make_app, database_url):
    make_app()
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "x", "REHEARSAL_CLOCK": START, "PATH": "/usr/bin:/bin"}
    first = run_flask(env, "rehearsal", "status")
    assert first.returncode == 0, first.stderr
    time.sleep(2.1)
    later = run_flask(env, "rehearsal", "status")
    # A process started two seconds later continues the same rehearsal instead of starting at 09:59:00 again.
    assert simulated(later.stdout) - simulated(first.stdout) >= timedelta(seconds=2)
    app = make_app(REHEARSAL_CLOCK=START)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RehearsalRun)) == 1


def test_a_new_value_starts_a_new_rehearsal_and_restart_begins_again(make_app, database_url):
    make_app()
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    run_flask({**env, "REHEARSAL_CLOCK": START}, "rehearsal", "status")
    other = run_flask({**env, "REHEARSAL_CLOCK": "2023-08-25T10:00:00+09:00"}, "rehearsal", "status")
    assert "Fri 25 Aug 2023, 10:00:0" in other.stdout
    time.sleep(1.1)
    restarted = run_flask({**env, "REHEARSAL_CLOCK": START}, "rehearsal", "restart")
    assert "Thu 14 Sep 2023, 09:59:00 JST" in restarted.stdout


def test_every_page_shows_the_banner_with_the_simulated_time(make_app):
    client = make_app(REHEARSAL_CLOCK=START).test_client()
    for path in ("/", "/register", "/privacy", "/lost-link", "/nope"):
        body = client.get(path).get_data(as_text=True)
        assert 'data-testid="rehearsal-time">2023年9月14日(木) 09:59:' in body, path


def test_no_banner_without_a_rehearsal(make_app):
    assert "rehearsal-time" not in make_app().test_client().get("/").get_data(as_text=True)


def test_deadline_passes_on_the_rehearsal_clock(make_app):
    app = make_app(REHEARSAL_CLOCK="2023-09-14T09:59:59.500+09:00")
    client = app.test_client()
    assert client.get("/register").status_code == 200
    time.sleep(0.6)
    from tests.conftest import form_data
    assert client.post("/register", data=form_data()).status_code == 403


@pytest.mark.parametrize("value", ["2023-09-14T10:00:00", "tomorrow", "2023-13-01T00:00:00+09:00"])
def test_a_value_without_offset_or_unparseable_is_refused_at_start(value, tmp_path):
    with pytest.raises(ValueError):
        create_app({"REHEARSAL_CLOCK": value, "SECRET_KEY": "x"}, instance_path=str(tmp_path))


def test_reading_the_clock_inside_a_write_transaction_does_not_wait_for_the_lock(make_app, make_details):
    from registration.services import registrations
    app = make_app(REHEARSAL_CLOCK=START)
    with app.app_context():
        rehearsal = app.extensions["rehearsal"]
        expected = clock.now()
        registrations.register(make_details(), locale="ja")
        db.session.flush()  # this session now holds the database's write lock (SQLite) or a row lock
        rehearsal._read_at = 0.0  # force the periodic re-read now
        started = time.monotonic()
        during = clock.now()
        assert time.monotonic() - started < 1.0
        assert timedelta(0) <= during - expected < timedelta(seconds=2)
        db.session.rollback()
