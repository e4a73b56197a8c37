"""Staff sessions end on the server, and sign-in throttling slows an attacker without locking the owner out."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from registration import auth
from registration.extensions import db
from registration.models import AuditEntry
from registration.services import staff as staff_service
from tests.conftest import REDIS_URL, Browserless, at_once


def login(client, name, password, address="192.0.2.10"):
    return client.post("/login", data={"name": name, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def signed_in(app, name, password, address="192.0.2.10"):
    """A browser of its own, signed in as `name`."""
    browser = app.test_client()
    assert login(browser, name, password, address).status_code == 303
    return browser


def session_cookie(browser) -> str:
    return browser.get_cookie("session").value


def replay(app, cookie: str):
    """A browser that has nothing but a saved copy of a session cookie."""
    stranger = app.test_client()
    stranger.set_cookie("session", cookie)
    return stranger


def can_reach_admin(browser) -> bool:
    admin = browser.get("/admin").status_code
    export = browser.get("/admin/registrants.csv").status_code
    assert admin == export  # the page and the export answer alike
    return admin == 200


class TestRevocation:
    def test_a_saved_cookie_is_worthless_after_logout(self, app, make_staff):
        browser = signed_in(app, *make_staff("admin"))
        saved = session_cookie(browser)
        assert can_reach_admin(replay(app, saved))
        assert browser.post("/logout").status_code == 303
        stolen = replay(app, saved)
        assert not can_reach_admin(stolen)
        assert stolen.get("/admin").headers["Location"].startswith("/login")

    def test_logout_ends_every_session_of_that_person(self, app, make_staff):
        name, password = make_staff("admin")
        laptop, phone = signed_in(app, name, password), signed_in(app, name, password)
        other_admin = signed_in(app, *make_staff("admin"))
        laptop.post("/logout")
        assert not can_reach_admin(phone)
        assert can_reach_admin(other_admin)  # someone else's sessions are theirs
        assert login(phone, name, password).status_code == 303 and can_reach_admin(phone)

    @pytest.mark.parametrize("command", [
        ["staff", "password", "{name}", "--password-stdin"],
        ["staff", "disable", "{name}"],
        ["staff", "logout-everywhere", "{name}"],
    ])
    def test_the_cli_ends_every_session_at_once(self, app, runner, make_staff, command):
        name, password = make_staff("admin")
        browsers = [signed_in(app, name, password) for _ in range(2)]
        saved = session_cookie(browsers[0])
        result = runner.invoke(args=[part.format(name=name) for part in command], input="a brand new password\n")
        assert result.exit_code == 0, result.output
        assert not any(can_reach_admin(browser) for browser in browsers)
        assert not can_reach_admin(replay(app, saved))
        with app.app_context():
            entry = db.session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
            assert entry.action.startswith("staff.") and entry.details.startswith(name)

    def test_a_new_password_works_and_the_old_one_does_not(self, app, runner, make_staff, client):
        name, password = make_staff("door")
        runner.invoke(args=["staff", "password", name, "--password-stdin"], input="a brand new password\n")
        assert login(client, name, password).status_code == 401
        assert login(client, name, "a brand new password").status_code == 303

    def test_a_disabled_account_cannot_sign_in_until_enabled(self, app, runner, make_staff, client):
        name, password = make_staff("door")
        assert runner.invoke(args=["staff", "disable", name]).exit_code == 0
        assert runner.invoke(args=["staff", "disable", name]).exit_code == 1  # said plainly, not done twice
        assert login(client, name, password).status_code == 401
        assert runner.invoke(args=["staff", "enable", name]).exit_code == 0
        assert login(client, name, password).status_code == 303

    def test_unknown_names_and_weak_passwords_are_explained(self, runner, make_staff):
        result = runner.invoke(args=["staff", "logout-everywhere", "nobody"])
        assert result.exit_code == 1 and "No staff member called 'nobody'" in result.output
        name, _ = make_staff("door")
        result = runner.invoke(args=["staff", "password", name, "--password-stdin"], input="short\n")
        assert result.exit_code == 1 and "at least 12 characters" in result.output

    def test_a_session_idle_longer_than_the_timeout_ends(self, make_app, make_staff, monkeypatch):
        app = make_app(STAFF_IDLE_TIMEOUT=timedelta(minutes=30))
        browser = signed_in(app, *make_staff("admin"))
        started = auth.time()
        monkeypatch.setattr(auth, "time", lambda: started + 29 * 60)
        assert can_reach_admin(browser)  # in use: the idle time starts again
        monkeypatch.setattr(auth, "time", lambda: started + 58 * 60)
        assert can_reach_admin(browser)
        monkeypatch.setattr(auth, "time", lambda: started + 89 * 60)
        assert not can_reach_admin(browser)

    def test_a_cookie_from_before_the_session_token_is_refused(self, app, make_staff):
        # Sessions signed before this version carried the numeric id: they must not load anyone.
        name, _ = make_staff("admin")
        browser = app.test_client()
        with app.app_context():
            staff_id = staff_service.find_staff(name).id
        with browser.session_transaction() as session:
            session["_user_id"] = str(staff_id)
            session["staff_seen"] = int(auth.time())
        assert not can_reach_admin(browser)


class TestThrottling:
    def test_failures_from_one_address_do_not_lock_the_owner_out(self, app, make_staff):
        name, password = make_staff("door", name="door-a")
        attacker = app.test_client()
        codes = [login(attacker, name, f"guess number {n}", "203.0.113.66").status_code for n in range(30)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        assert login(attacker, name, password, "203.0.113.66").status_code == 429  # slowed, even when right
        owner = app.test_client()
        assert login(owner, name, password, "198.51.100.7").status_code == 303
        assert owner.get("/door").status_code == 200

    def test_the_first_wait_is_a_minute(self, app, make_staff):
        name, _ = make_staff("door")
        attacker = app.test_client()
        for n in range(5):
            assert login(attacker, name, f"guess {n}", "203.0.113.66").status_code == 401
        refused = login(attacker, name, "guess 5", "203.0.113.66")
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60

    def test_the_wait_grows_with_the_failures(self, make_app, make_staff):
        # The production tiers scaled down: two failures wait two seconds, the third waits an hour.
        app = make_app(LOGIN_ACCOUNT_RATE_LIMIT="2 per 2 seconds;3 per hour")
        name, _ = make_staff("door")
        attacker = app.test_client()
        assert [login(attacker, name, f"guess {n}").status_code for n in range(3)] == [401, 401, 429]
        assert int(login(attacker, name, "guess").headers["Retry-After"]) <= 2
        time.sleep(2.1)
        assert login(attacker, name, "guess 3").status_code == 401
        refused = login(attacker, name, "guess 4")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 60

    def test_one_address_trying_many_names_is_slowed_too(self, make_app, make_staff):
        app = make_app(LOGIN_RATE_LIMIT="8 per 10 minutes")
        attacker = app.test_client()
        codes = [login(attacker, f"name-{n}", "a guessed password", "203.0.113.66").status_code for n in range(9)]
        assert codes == [401] * 8 + [429]
        name, password = make_staff("door")
        assert login(app.test_client(), name, password, "198.51.100.7").status_code == 303

    def test_a_correct_password_from_the_same_address_waits_too(self, app, make_staff):
        # Otherwise the throttle would tell the attacker when a guess was right.
        name, password = make_staff("door")
        assert [login(app.test_client(), name, password).status_code for _ in range(6)] == [303] * 5 + [429]


def test_simultaneous_guesses_get_no_further_than_the_limit(live_server, make_staff, redis_prefix):
    """Twenty wrong passwords at the same moment through two gunicorn workers sharing Redis: five are tried."""
    server = live_server(workers=2, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix)
    name, _ = make_staff("door")
    visitors = [Browserless(server.url) for _ in range(20)]
    tokens = [visitor.csrf_token("/login") for visitor in visitors]
    statuses = at_once([lambda n=n: visitors[n].post("/login", {"name": name, "password": f"wrong guess {n}",
                                                                "csrf_token": tokens[n]}) for n in range(20)])
    assert sorted(statuses) == [401] * 5 + [429] * 15, server.errors()[-3000:]


def test_device_tokens_stay_revoked_after_disable_and_enable(app, runner, client, make_staff):
    name, _ = make_staff("door")
    token = runner.invoke(args=["staff", "token", name, "--device", "scanner-9"]).output.strip()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/stats", headers=bearer).status_code == 200
    assert runner.invoke(args=["staff", "disable", name]).exit_code == 0
    app.extensions.pop("remembered_devices", None)  # another process, past DEVICE_TOKEN_CACHE_SECONDS
    assert client.get("/api/v1/stats", headers=bearer).status_code == 401
    enabled = runner.invoke(args=["staff", "enable", name])
    assert "new tokens" in enabled.output
    app.extensions.pop("remembered_devices", None)
    assert client.get("/api/v1/stats", headers=bearer).status_code == 401


def test_a_name_that_is_not_text_is_an_unknown_name(runner):
    result = runner.invoke(args=["staff", "disable", "ka\udcffto"])
    assert result.exit_code == 1 and "No staff member called" in result.output
