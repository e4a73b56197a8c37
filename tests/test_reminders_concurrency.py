"""The reminder's decisions under real concurrency: two `flask mail remind-closing` processes at once, two mail
workers running one scheduled release at once, and a double tap on "I can't come any more" through gunicorn. Each
decision is made once: one reminder per person, one release, one promotion and one mail each."""

import os
import re
import subprocess
from collections import Counter

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import AuditEntry, OutboxMessage, Registrant, SeatRelease, Ticket
from registration.services import registrations, reminders, seats
from tests.conftest import ROOT, VENV_BIN, Browserless, at_once, jst

OPEN = jst(2023, 8, 25, 10)
REMINDED = jst(2023, 9, 11, 9)


def subject(template: str) -> set[str]:
    subjects = set()
    for locale in ("ja", "en"):
        with force_locale(locale):
            subjects.add(str(registrations._SUBJECTS[template]))
    return subjects


def mails_per_person(template: str) -> Counter:
    """How many mails of this template each registration has in the outbox."""
    return Counter(db.session.scalars(select(OutboxMessage.registrant_id)
                                      .where(OutboxMessage.subject.in_(subject(template)))))


def cli_env(database_url: str, tmp_path, moment: str) -> dict:
    """The environment of a command run on the server, on this test's database, at a rehearsal moment."""
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "live-test-secret",
            "PUBLIC_BASE_URL": "http://codt.test", "MAIL_URL": f"file://{tmp_path / 'outbox'}",
            "REHEARSAL_CLOCK": moment, "PYTHONPATH": str(ROOT)}


def run_together(env: dict, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Start the `flask --app registration ...` commands at the same moment, each in its own process."""
    processes = [subprocess.Popen([str(VENV_BIN / "flask"), "--app", "registration", *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = []
    for process, args in zip(processes, commands):
        out, err = process.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


def fill(make_app, make_details, *, capacity: int, people: int, at=OPEN) -> tuple[object, list[int]]:
    """An app whose closing event has `capacity` seats and `people` registrations asking for one, in order."""
    app = make_app(CLOSING_CAPACITY=capacity)
    with app.app_context():
        ids = []
        for n in range(people):
            registrant = registrations.register(make_details(email=f"p{n}@example.jp", attend_closing=True),
                                                locale="en" if n % 3 == 0 else "ja", at=at).registrant
            ids.append(registrant.id)
        db.session.commit()
    return app, ids


@pytest.mark.real_clock
def test_two_remind_closing_processes_remind_each_person_once(make_app, make_details, tmp_path, database_url):
    app, ids = fill(make_app, make_details, capacity=90, people=100)
    env = cli_env(database_url, tmp_path, "2023-09-11T09:00:00+09:00")
    results = run_together(env, ["mail", "remind-closing", "--batch", "3"], ["mail", "remind-closing", "--batch", "3"])
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    counts = [int(re.search(r"Reminded (\d+) seat holder", result.stdout).group(1)) for result in results]
    assert sum(counts) == 90, [result.stdout for result in results]
    with app.app_context():
        holders = set(db.session.scalars(select(Registrant.id).where(Registrant.seat_status == "confirmed")))
        assert len(holders) == 90
        assert mails_per_person("reminder") == Counter({registrant_id: 1 for registrant_id in holders})
        assert db.session.scalar(select(func.count()).select_from(Registrant).where(
            Registrant.reminder_sent_at.is_not(None))) == 90
        assert seats.invariant_problems() == []
    # A third run, after both: nobody is left to remind.
    again = run_together(env, ["mail", "remind-closing"])[0]
    assert again.stdout.strip() == "Reminded 0 seat holders; 90 had been reminded already.", again.stderr


@pytest.mark.real_clock
def test_two_mail_workers_run_a_scheduled_release_once(make_app, make_details, make_staff, tmp_path, database_url):
    admin, _ = make_staff("admin")
    app, ids = fill(make_app, make_details, capacity=30, people=40)
    holders, waiting = ids[:30], ids[30:]
    with app.app_context():
        while reminders.remind_batch(after_id=0, at=REMINDED)[1] is not None:
            pass
        for registrant_id in holders[:5]:
            assert reminders.answer_coming(db.session.get(Registrant, registrant_id),
                                           at=jst(2023, 9, 12, 8)) == "recorded"
        from registration.services.staff import find_staff
        release = reminders.schedule_release(jst(2023, 9, 13, 12), by=find_staff(admin), at=jst(2023, 9, 12, 9))
        db.session.commit()
        release_id = release.id
    env = cli_env(database_url, tmp_path, "2023-09-13T12:00:05+09:00")
    results = run_together(env, ["mail", "send"], ["mail", "send"], ["mail", "send"])
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    with app.app_context():
        release = db.session.get(SeatRelease, release_id)
        assert release.released == 25 and release.executed_at is not None
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "seat_release.run")) == 1
        status = dict(db.session.execute(select(Registrant.id, Registrant.seat_status)).all())
        assert [status[i] for i in holders[:5]] == ["confirmed"] * 5
        assert [status[i] for i in holders[5:]] == ["none"] * 25
        assert [status[i] for i in waiting] == ["confirmed"] * 10
        assert mails_per_person("seat_released") == Counter({i: 1 for i in holders[5:]})
        assert mails_per_person("promoted") == Counter({i: 1 for i in waiting})
        assert db.session.scalar(select(func.count()).select_from(Ticket)
                                 .where(Ticket.retired_reason == reminders.NO_ANSWER)) == 25
        assert seats.invariant_problems() == []


def test_a_double_tap_on_not_coming_gives_the_seat_back_once(live_server, make_app, make_details):
    app, ids = fill(make_app, make_details, capacity=2, people=4)
    a, b, c, d = ids
    with app.app_context():
        reminders.remind_batch(at=OPEN)
        db.session.commit()
        secret = db.session.get(Registrant, a).secret
    servers = [live_server(workers=2, CLOSING_CAPACITY="2"), live_server(workers=2, CLOSING_CAPACITY="2")]
    path = f"/me/{secret}/not-coming"
    # Three taps from one browser session (one CSRF token), and three from other tabs of their own, on two hosts.
    same = Browserless(servers[0].url)
    token = same.csrf_token(path)
    others = [Browserless(servers[n % 2].url) for n in range(3)]
    taps = [(same, token)] * 3 + [(visitor, visitor.csrf_token(path)) for visitor in others]
    statuses = at_once([lambda v=v, t=t: v.post(path, {"csrf_token": t}) for v, t in taps])

    assert statuses == [303] * 6, servers[0].errors()[-3000:] + servers[1].errors()[-3000:]
    with app.app_context():
        status = dict(db.session.execute(select(Registrant.id, Registrant.seat_status)).all())
        assert [status[i] for i in ids] == ["none", "confirmed", "confirmed", "waitlisted"]
        assert db.session.get(Registrant, a).reminder_answer == "declined"
        assert mails_per_person("seat_released") == Counter({a: 1})
        assert mails_per_person("promoted") == Counter({c: 1})
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "reminder.declined")) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "seat.promoted")) == 1
        assert db.session.scalar(select(func.count()).select_from(Ticket)
                                 .where(Ticket.retired_reason == "declined")) == 1
        assert seats.invariant_problems() == []
    assert "Traceback" not in servers[0].errors() + servers[1].errors()
