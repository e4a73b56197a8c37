"""Staff sign-in, roles, the CLI for accounts and devices, and the admin tools."""

from time import monotonic

import pytest
from sqlalchemy import select

from registration.extensions import db
from registration.models import AuditEntry, DeviceToken, Registrant, Staff
from registration.services import registrations
from tests.conftest import form_data, jst, run_flask


def login(client, name, password):
    return client.post("/login", data={"name": name, "password": password})


class TestLogin:
    def test_door_staff_see_the_door_not_the_admin(self, client, make_staff):
        name, password = make_staff("door")
        assert client.get("/door").status_code == 302  # to the sign-in page
        assert login(client, name, "wrong password!!").status_code == 401
        response = login(client, name, password)
        assert response.status_code == 303 and response.headers["Location"] == "/door"
        assert client.get("/door").status_code == 200
        assert client.get("/admin").status_code == 403
        assert client.post("/logout").status_code == 303
        assert client.get("/door").status_code == 302

    def test_admin_may_do_everything(self, client, make_staff):
        name, password = make_staff("admin")
        login(client, name, password)
        assert client.get("/door").status_code == 200 and client.get("/admin").status_code == 200

    @pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/door"])
    def test_next_is_same_site_only(self, client, make_staff, target):
        name, password = make_staff("door")
        response = client.post("/login", data={"name": name, "password": password, "next": target})
        assert response.headers["Location"] in ("/door", "/")

    def test_logout_is_not_a_get(self, client, make_staff):
        name, password = make_staff("door")
        login(client, name, password)
        assert client.get("/logout").status_code == 405
        assert client.get("/door").status_code == 200

    def test_failed_logins_are_throttled_per_name(self, make_app, make_staff):
        app = make_app(LOGIN_RATE_LIMIT="3 per minute")
        client = app.test_client()
        name, password = make_staff("door")
        codes = [login(client, name, "not the password").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]


class TestCLI:
    def test_add_staff_and_device_token(self, app, runner, monkeypatch):
        result = runner.invoke(args=["staff", "add", "alice", "--role", "door", "--password-stdin"],
                               input="a long enough password\n")
        assert result.exit_code == 0, result.output
        token = runner.invoke(args=["staff", "token", "alice", "--device", "phone-1"]).output.strip()
        assert len(token) >= 43
        with app.app_context():
            staff = db.session.scalar(select(Staff).where(Staff.name == "alice"))
            assert staff.password_hash.startswith("scrypt:") and "a long enough password" not in staff.password_hash
            device = db.session.scalar(select(DeviceToken))
            assert device.token_hash != token and device.name == "phone-1"
        client = app.test_client()
        assert client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert runner.invoke(args=["staff", "revoke", "alice", "--device", "phone-1"]).exit_code == 0
        revoked_at = monotonic()
        # Each process remembers a live token for DEVICE_TOKEN_CACHE_SECONDS (5): refused once that has passed.
        monkeypatch.setattr("registration.auth.monotonic", lambda: revoked_at + 4.9)
        assert client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        monkeypatch.setattr("registration.auth.monotonic", lambda: revoked_at + 5)
        assert client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    @pytest.mark.parametrize(("args", "stdin", "message"), [
        (["staff", "add", "bob", "--role", "door", "--password-stdin"], "short\n", "12 characters"),
        (["staff", "add", "bob", "--role", "boss", "--password-stdin"], "a long enough password\n", "boss"),
        (["staff", "token", "nobody"], None, "No staff member"),
        (["staff", "token", "door-1", "--device", "x" * 81], None, "A device name must be 1 to 80"),
        (["staff", "token", "door-1", "--device", "phone\n2"], None, "A device name must be"),
    ])
    def test_refusals_are_explained(self, runner, make_staff, args, stdin, message):
        make_staff("door")
        result = runner.invoke(args=args, input=stdin)
        assert result.exit_code != 0 and message in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception

    @pytest.mark.parametrize("name", ["", "   ", " alice", "alice ", "ali\nce", "ali\tce", "ali\x07ce", "a\u3000b",
                                      "x" * 81])
    def test_a_name_one_cannot_sign_in_with_is_refused(self, app, runner, name):
        result = runner.invoke(args=["staff", "add", name, "--role", "door", "--password-stdin"],
                               input="a long enough password\n")
        assert result.exit_code == 1 and "A staff name must be 1 to 80 printable characters" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        with app.app_context():
            assert db.session.scalar(select(Staff)) is None

    @pytest.mark.parametrize("name", ["x" * 80, "山田 太郎", "door-2", "a"])
    def test_names_up_to_80_printable_characters_are_accepted(self, app, runner, name):
        result = runner.invoke(args=["staff", "add", name, "--role", "door", "--password-stdin"],
                               input="a long enough password\n")
        assert result.exit_code == 0, result.output
        with app.app_context():
            assert db.session.scalar(select(Staff.name)) == name

    def test_the_service_refuses_a_bad_name_with_a_code(self, app_ctx):
        from registration.errors import StaffError
        from registration.services import staff as staff_service
        with pytest.raises(StaffError) as excinfo:
            staff_service.add_staff("x" * 81, role="door", password="a long enough password")
        assert excinfo.value.code == "bad_name"

    def test_an_overlong_name_in_a_separate_process_shows_no_traceback_and_no_hash(self, make_app, database_url):
        make_app()
        env = {"APP_ENV": "production", "SECRET_KEY": "production-secret-of-at-least-32-bytes",
               "RATELIMIT_STORAGE_URI": "memory://", "DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
        result = run_flask(env, "staff", "add", "x" * 81, "--role", "door", "--password-stdin",
                           input="a long enough password\n")
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "A staff name must be 1 to 80" in output
        for leak in ("Traceback", "scrypt", "pbkdf2", "INSERT"):
            assert leak not in output


class TestAdmin:
    def test_promote_by_hand_after_the_deadline(self, make_app, make_staff, make_details, frozen_clock):
        from registration.services import registrations
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            seated = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            db.session.commit()
            seated_secret, waiting_id = seated.secret, waiting.id
        frozen_clock(jst(2023, 9, 14, 10, 30))
        client = app.test_client()
        name, password = make_staff("admin")
        client.post("/login", data={"name": name, "password": password})
        client.post(f"/me/{seated_secret}/cancel")
        with app.app_context():
            assert db.session.get(Registrant, waiting_id).seat_status == "waitlisted"  # not automatic any more
        assert client.post(f"/admin/registrants/{waiting_id}/promote").status_code == 303
        with app.app_context():
            assert db.session.get(Registrant, waiting_id).seat_status == "confirmed"
            promotion = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "seat.promote"))
            assert (promotion.actor, promotion.before, promotion.after) == (
                "staff", '{"seat_status": "waitlisted", "waitlist_position": 1}', '{"seat_status": "confirmed"}')

    def test_walk_in_after_the_deadline(self, app, client, make_staff, frozen_clock):
        name, password = make_staff("admin")
        login(client, name, password)
        assert client.post("/admin/walk-ins", data=form_data(email="walkin@example.jp")).status_code == 422
        frozen_clock(jst(2023, 9, 14, 13))
        assert client.post("/admin/walk-ins", data=form_data(email="walkin@example.jp")).status_code == 303
        with app.app_context():
            person = db.session.scalar(select(Registrant))
            assert person.on_site and person.seat_status == "confirmed" and person.ticket_code
            assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.staff_id.is_not(None))) == \
                "registrant.walk_in"
        assert client.post("/admin/walk-ins", data=form_data(email="walkin@example.jp")).status_code == 422

    def test_rotating_a_ticket(self, app, client, make_staff, make_attendee):
        person = make_attendee()
        name, password = make_staff("admin")
        login(client, name, password)
        # Without the ticket the confirmation showed, nothing happens (a stale page, or a second click).
        assert client.post(f"/admin/registrants/{person.id}/rotate-ticket").status_code == 303
        with app.app_context():
            registrant = db.session.get(Registrant, person.id)
            assert registrant.ticket_code == person.ticket_code
            shown = registrations.current_ticket_id(registrant)
        assert client.post(f"/admin/registrants/{person.id}/rotate-ticket", data={"ticket": str(shown)}).status_code == 303
        with app.app_context():
            assert db.session.get(Registrant, person.id).ticket_code != person.ticket_code

    def test_door_staff_cannot_use_admin_actions(self, app, client, make_staff, make_attendee):
        person = make_attendee()
        name, password = make_staff("door")
        login(client, name, password)
        assert client.post(f"/admin/registrants/{person.id}/rotate-ticket").status_code == 403
        assert client.post("/admin/walk-ins", data=form_data()).status_code == 403
