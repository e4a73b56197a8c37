"""The command line as organisers run it: in its own process, in the production configuration where it matters,
and answering bad input and an unusable database with a plain message and a non-zero exit, never a traceback."""

import signal
import subprocess
import time

import pytest
from sqlalchemy import select, update

from registration.extensions import db
from registration.models import OutboxMessage, Registrant, SeatCounter
from registration.services import registrations, seats
from tests.conftest import ROOT, VENV_BIN, run_flask

PROGRAM_49 = ROOT / "tests" / "data" / "program-49.csv"
#: Nothing listens on port 1: the database is down.
DATABASE_DOWN = "postgresql://root@127.0.0.1:1/nothing"
#: What must never reach an organiser's terminal: a stack trace, or a password hash in one.
SECRETS_AND_TRACES = ("Traceback", "pbkdf2", "scrypt", "SELECT", "INSERT")


def production_env(database_url: str, **overrides: str) -> dict:
    """The environment of a production host: APP_ENV=production, its own SECRET_KEY, no rehearsal."""
    return {"APP_ENV": "production", "SECRET_KEY": "production-secret-of-at-least-32-bytes",
            "RATELIMIT_STORAGE_URI": "memory://",
            "DATABASE_URL": database_url, "PATH": "/usr/bin:/bin", **overrides}


def assert_plain_refusal(result: subprocess.CompletedProcess, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    for secret in SECRETS_AND_TRACES:
        assert secret not in output, output


def test_event_load_in_production_mails_the_people_a_larger_capacity_promotes(make_app, make_details,
                                                                            database_url):
    app = make_app(CLOSING_CAPACITY=1)
    with app.app_context():
        registrations.register(make_details(attend_closing=True), locale="ja")
        waiting = registrations.register(make_details(attend_closing=True, email="next@example.com",
                                                      family_name="Doe", given_name="Jane"), locale="en").registrant
        db.session.commit()
        assert waiting.seat_status == "waitlisted"
        waiting_id = waiting.id

    # Mail is rendered outside any request here, with CSRF on as in production: the page globals must stay out.
    # (The real clock is past 2023's deadline, after which nobody is promoted automatically: this host's is later.)
    result = run_flask(production_env(database_url, CLOSING_CAPACITY="2",
                                      REGISTRATION_DEADLINE="2099-01-01T00:00:00+09:00"), "event", "load")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with app.app_context():
        assert db.session.get(Registrant, waiting_id).seat_status == "confirmed"
        subjects = db.session.scalars(select(OutboxMessage.subject)
                                      .where(OutboxMessage.recipient == "next@example.com")
                                      .order_by(OutboxMessage.id)).all()
    assert len(subjects) == 2 and subjects[-1].startswith("A seat at the CODT2023 closing event is yours")


def test_after_the_deadline_a_larger_capacity_waits_for_an_admin(make_app, make_details, database_url):
    app = make_app(CLOSING_CAPACITY=1)
    with app.app_context():
        registrations.register(make_details(attend_closing=True), locale="ja")
        waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        waiting_id = waiting.id
    result = run_flask(production_env(database_url, CLOSING_CAPACITY="2"), "event", "load")
    assert result.returncode == 0, result.stderr
    assert "1 seat is free and 1 person is waiting: after the deadline, admins give seats at /admin." in result.stdout
    with app.app_context():
        assert db.session.get(Registrant, waiting_id).seat_status == "waitlisted"
        assert seats.capacity() == 2 and seats.invariant_problems() == []


@pytest.mark.parametrize(("args", "stdin"), [
    (["event", "load"], None),
    (["program", "import", str(PROGRAM_49)], None),
    (["program", "import", "--dry-run", str(PROGRAM_49)], None),
    (["mail", "send"], None),
    (["seats", "check"], None),
    (["staff", "add", "alice", "--role", "door", "--password-stdin"], "a long enough password\n"),
    (["staff", "token", "alice"], None),
    (["staff", "revoke", "alice", "--device", "phone-1"], None),
])
def test_every_command_explains_a_database_that_is_down(args, stdin):
    result = run_flask(production_env(DATABASE_DOWN), *args, input=stdin)
    assert_plain_refusal(result, "The database could not be used")
    assert "Check DATABASE_URL" in result.stderr


def test_rehearsal_commands_explain_a_database_that_is_down():
    env = {"SECRET_KEY": "x", "DATABASE_URL": DATABASE_DOWN, "PATH": "/usr/bin:/bin",
           "REHEARSAL_CLOCK": "2023-08-25T10:00:00+09:00"}
    assert_plain_refusal(run_flask(env, "rehearsal", "restart"), "The database could not be used")


def test_a_database_without_the_schema_is_explained(tmp_path):
    env = production_env(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    result = run_flask(env, "event", "load")
    assert_plain_refusal(result, "The database could not be used")
    assert "db upgrade" in result.stderr


def test_the_mail_worker_outlives_a_database_that_is_down():
    worker = subprocess.Popen([str(VENV_BIN / "flask"), "--app", "registration", "mail", "send", "--worker",
                               "--interval", "0.2"], cwd=ROOT, env=production_env(DATABASE_DOWN),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # several rounds, every one failing
        assert worker.poll() is None, worker.communicate()[1][-2000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr[-2000:]
    assert "mail round failed" in stderr


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_mail_worker_interval_must_be_positive(runner, interval):
    result = runner.invoke(args=["mail", "send", "--worker", "--interval", interval])
    assert result.exit_code == 2 and "--interval" in result.output


class TestSeatsCheck:
    def test_all_invariants_hold(self, make_app, make_details):
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            for _ in range(2):
                registrations.register(make_details(attend_closing=True), locale="ja")
            registrations.register(make_details(), locale="ja")
            db.session.commit()
        result = app.test_cli_runner().invoke(args=["seats", "check"])
        assert result.exit_code == 0, result.output
        assert result.output == "All seat invariants hold: 1 confirmed of 1 seats, 1 waiting.\n"

    def test_a_broken_invariant_is_named_and_fails(self, make_app, make_details):
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            registrations.register(make_details(attend_closing=True), locale="ja")
            db.session.execute(update(SeatCounter).values(taken=0))  # the counter lost a seat
            db.session.commit()
        result = app.test_cli_runner().invoke(args=["seats", "check"])
        assert result.exit_code == 1
        assert "All seat invariants hold" not in result.output
        assert "counter" in result.output.lower()

    def test_as_a_separate_process_on_a_production_host(self, app, make_attendee, database_url):
        make_attendee()
        result = run_flask(production_env(database_url), "seats", "check")
        assert result.returncode == 0, result.stderr
        assert "All seat invariants hold: 1 confirmed of 100 seats, 0 waiting." in result.stdout


def test_event_load_warns_when_the_capacity_falls_below_the_seats_held(make_app, make_details):
    with make_app(CLOSING_CAPACITY=3).app_context():
        for _ in range(3):
            registrations.register(make_details(attend_closing=True), locale="ja")
        db.session.commit()
    smaller = make_app(CLOSING_CAPACITY=2)
    result = smaller.test_cli_runner().invoke(args=["event", "load"])
    assert result.exit_code == 0
    assert "3 people hold a seat, more than CLOSING_CAPACITY=2" in result.output
    with smaller.app_context():
        assert seats.summary().confirmed == 3  # nobody lost a seat
        assert seats.invariant_problems() == ["3 confirmed seats, but the capacity is 2."]


def test_revoking_a_device_that_has_no_live_token_is_an_error(runner, make_staff, make_device):
    make_device(device_name="scanner-1")
    from registration.models import Staff
    with runner.app.app_context():
        name = db.session.scalar(select(Staff.name))
    typo = runner.invoke(args=["staff", "revoke", name, "--device", "scaner-1"])
    assert typo.exit_code == 1 and "no live token for a device called 'scaner-1'" in typo.output
    assert "scanner-1" in typo.output
    assert runner.invoke(args=["staff", "revoke", name, "--device", "scanner-1"]).output == "Revoked 1 token(s).\n"
    again = runner.invoke(args=["staff", "revoke", name, "--device", "scanner-1"])
    assert again.exit_code == 1 and "devices with a live token: none" in again.output


@pytest.mark.parametrize(("password", "message"), [(" " * 12, "not only spaces"), ("x" * 201, "at most 200")])
def test_staff_add_refuses_passwords_nobody_could_sign_in_with(runner, password, message):
    result = runner.invoke(args=["staff", "add", "kato", "--role", "admin", "--password-stdin"], input=password + "\n")
    assert result.exit_code == 1 and message in result.output


def test_a_sign_in_with_a_nul_in_the_name_is_a_wrong_name(client, make_staff):
    name, password = make_staff("admin")
    response = client.post("/login", data={"name": name + "\x00", "password": password})
    assert response.status_code == 401 and "スタッフ名またはパスワードが違います" in response.get_data(as_text=True)
