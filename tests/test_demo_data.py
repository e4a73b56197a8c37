"""`flask demo-data`: clearly fake people in a state the real services could have reached (the seat invariants hold),
written quickly, the same for the same seed, and never in production or over real registrations."""

import re

from sqlalchemy import delete, func, select

from registration.extensions import db
from registration.models import (AuditEntry, CheckIn, DeviceToken, OutboxMessage, ProgramSession, Registrant, Scan,
                                 SeatCounter, SessionView, Staff, Ticket, ViewingSignup)
from registration.services import demo, seats, viewing
from tests.test_cli import production_env, run_flask

MODELS = {"registrants": Registrant, "tickets": Ticket, "viewing_signups": ViewingSignup,
          "session_views": SessionView, "checkins": CheckIn, "scans": Scan, "audit_log": AuditEntry,
          "outbox": OutboxMessage, "staff": Staff, "device_tokens": DeviceToken}
FAKE_ORGANIZATION = re.compile(r"(デモ株式会社|株式会社デモ|デモ合同会社|デモ大学|Demo Corp|Demo Inc\.|Demo Labs) \d+")
FAKE_EMAIL = re.compile(r"demo-\d+@example\.invalid")


def printed_counts(output: str) -> dict[str, int]:
    return {name: int(number.replace(",", "")) for name, number in re.findall(r"^  (\w+) +([\d,]+)$", output, re.M)}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_three_hundred_fake_registrants_in_a_state_the_services_could_reach(app, runner):
    result = runner.invoke(args=["demo-data", "--registrants", "300"])
    assert result.exit_code == 0, result.output
    assert "seats check: all seat invariants hold: 100 confirmed of 100 seats" in result.output
    with app.app_context():
        counts = printed_counts(result.output)
        assert counts == {name: count(model) for name, model in MODELS.items()}
        people = db.session.scalars(select(Registrant)).all()
        walk_ins = [person for person in people if person.on_site]
        assert len(people) == 300 + len(walk_ins) and len(walk_ins) == 3
        assert seats.invariant_problems() == []

        japanese_family = dict(demo.FAMILY_NAMES)
        japanese_given = dict(demo.GIVEN_NAMES)
        for person in people:
            assert FAKE_EMAIL.fullmatch(person.email) and person.email_key == person.email, person.email
            assert FAKE_ORGANIZATION.fullmatch(person.organization), person.organization
            assert person.search_key == person.searchable_text()
            if person.family_name in japanese_family:
                assert person.family_name_kana == japanese_family[person.family_name]
                assert person.given_name_kana == japanese_given[person.given_name]
            else:
                assert person.family_name in demo.ENGLISH_FAMILY_NAMES
                assert person.given_name in demo.ENGLISH_GIVEN_NAMES
                assert (person.locale, person.family_name_kana, person.given_name_kana) == ("en", "", "")
        english = sum(person.family_name in demo.ENGLISH_FAMILY_NAMES for person in people)
        assert 10 <= english <= 60  # about one in ten
        assert len({person.secret for person in people}) == len(people)
        cancelled = [person for person in people if person.cancelled_at]
        assert 5 <= len(cancelled) <= 40 and all(person.seat_status == "none" for person in cancelled)
        assert {person.locale for person in people} == {"ja", "en"}

        # The seats: given in order of registration, the rest waiting in that order.
        summary = seats.summary()
        assert (summary.capacity, summary.confirmed) == (100, 100) and summary.waitlisted > 20
        waiting = seats.waiting_list()
        assert [person.registered_at for person in waiting] == sorted(person.registered_at for person in waiting)
        assert db.session.get(SeatCounter, seats.COUNTER).taken == 100

        # Check-ins only of seat holders, at most one standing each; about three quarters came; one undone.
        holders = {person.id for person in people if person.seat_status == "confirmed" and not person.cancelled_at}
        standing = db.session.scalars(select(CheckIn.registrant_id).where(CheckIn.undone_at.is_(None))).all()
        assert set(standing) <= holders and len(standing) == len(set(standing))
        assert 60 <= len(standing) <= 90
        undone = db.session.scalars(select(CheckIn).where(CheckIn.undone_at.is_not(None))).all()
        assert len(undone) == 2
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "checkin.undo")) == 2
        scans = db.session.scalars(select(Scan)).all()
        assert sum(scan.result == "ok" for scan in scans) == len(standing) + len(undone)
        assert {scan.reason for scan in scans if scan.result == "not_admitted"} == {
            "cancelled", "waitlisted", "no_ticket", "replaced"}
        assert {scan.result for scan in scans} == {"ok", "already_checked_in", "unknown_code", "not_admitted"}
        assert all(60 <= scan.previous_latency_ms <= 400 and scan.gate in ("door-1", "door-2") for scan in scans)

        # Sign-ups and views only of sessions in the program.
        program = {session.id for entry in viewing.program() for session in entry.sessions}
        assert set(db.session.scalars(select(ViewingSignup.session_id))) <= program
        views = db.session.scalars(select(SessionView)).all()
        assert views and all(view.session_id in program and view.window == "on_demand"
                             and view.slot == int(view.at.timestamp()) // 900 for view in views)

        # History as the services write it: a registration entry for each, a walk-in entry for the door's.
        registered = set(db.session.scalars(select(AuditEntry.registrant_id)
                                            .where(AuditEntry.action == "registrant.register")))
        assert registered == {person.id for person in people if not person.on_site}
        assert set(db.session.scalars(select(AuditEntry.registrant_id)
                                      .where(AuditEntry.action == "registrant.walk_in"))) == {
            person.id for person in walk_ins}

        # Every holder's seat mail is written (the invariants need it) and none is waiting to be sent.
        assert count(OutboxMessage) == 100
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.sent_at.is_(None))) == 0
        assert all(recipient.endswith("@example.invalid")
                   for recipient in db.session.scalars(select(OutboxMessage.recipient)))


def _state() -> list[tuple]:
    return db.session.execute(select(
        Registrant.email, Registrant.family_name, Registrant.given_name, Registrant.organization,
        Registrant.job_title, Registrant.locale, Registrant.registered_at, Registrant.cancelled_at,
        Registrant.seat_status, Registrant.waitlisted_at).order_by(Registrant.id)).all()


def test_the_same_seed_gives_the_same_people(make_app):
    app = make_app(CLOSING_CAPACITY=10)  # fewer seat mails to render: this test is about the people
    with app.app_context():
        runs = []
        for seed in (7, 7, 8):
            demo.generate(120, seed=seed)
            runs.append((_state(), db.session.execute(
                select(ViewingSignup.registrant_id, ViewingSignup.session_id).order_by(ViewingSignup.id)).all()))
            db.session.rollback()
        assert runs[0] == runs[1]
        assert runs[0][0] != runs[2][0]
        assert count(Registrant) == 0


def test_refused_in_production_with_nothing_written(make_app):
    app = make_app(REQUIRE_SECRET_KEY=True, SECRET_KEY="a production secret of at least 32 bytes",
                   RATELIMIT_STORAGE_URI="memory://")
    result = app.test_cli_runner().invoke(args=["demo-data", "--registrants", "10"])
    assert result.exit_code == 1
    assert "Refused: this is the production configuration" in result.output
    with app.app_context():
        assert count(Registrant) == count(Staff) == count(AuditEntry) == 0


def test_refused_on_a_production_host(app, database_url):
    """The real signal, in its own process: APP_ENV=production."""
    result = run_flask(production_env(database_url), "demo-data", "--registrants", "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "production configuration" in result.stderr and "Traceback" not in result.stderr
    with app.app_context():
        assert count(Registrant) == count(Staff) == 0


def test_refused_over_existing_registrants_unless_added_to(app, runner, make_registrant):
    make_registrant(email="real.person@example.jp")
    result = runner.invoke(args=["demo-data", "--registrants", "50"])
    assert result.exit_code == 1
    assert "already holds 1 registrant(s)" in result.output and "--add" in result.output
    with app.app_context():
        assert count(Registrant) == 1 and count(Staff) == 0

    result = runner.invoke(args=["demo-data", "--registrants", "50", "--add"])
    assert result.exit_code == 0, result.output
    assert "seats check: all seat invariants hold" in result.output
    with app.app_context():
        emails = db.session.scalars(select(Registrant.email).order_by(Registrant.id)).all()
        assert emails[0] == "real.person@example.jp"
        assert all(FAKE_EMAIL.fullmatch(email) for email in emails[1:]) and len(emails) == 52
        assert "demo-1@example.invalid" not in emails  # numbered after the ids already there
        assert seats.invariant_problems() == []
        # Only the demo people's mail is marked sent; the real registration's stays for the mail sender.
        unsent = db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.sent_at.is_(None))).all()
        assert unsent == ["real.person@example.jp"]


def test_refused_without_the_seat_counter(app, runner):
    with app.app_context():
        db.session.execute(delete(SeatCounter))
        db.session.commit()
    result = runner.invoke(args=["demo-data", "--registrants", "10"])
    assert result.exit_code == 1
    assert "flask --app registration event load" in result.output
    with app.app_context():
        assert count(Registrant) == 0 and count(ProgramSession) > 0
