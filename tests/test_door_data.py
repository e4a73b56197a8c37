"""The door's data set (GET /api/v1/door/dataset): seat holders only, keyed code hashes, every change in the next
incremental answer, expiry after the closing day; and the migration that added what it reads."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import psycopg
import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from registration import clock, create_app
from registration.extensions import db
from registration.models import CheckIn, Registrant, Scan, Staff
from registration.services import checkins, door_data, privacy, registrations, seats
from tests.conftest import BACKENDS, ROOT, jst, pg_url
from tests.test_openapi import assert_described
from tests.test_api import api_error

DATASET = "/api/v1/door/dataset"
T0 = jst(2023, 8, 25, 10)  # the default frozen clock: registration open


def b64decode(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def details_of(person) -> registrations.Details:
    return registrations.Details(
        family_name=person.family_name, given_name=person.given_name, email=person.email,
        organization=person.organization, family_name_kana=person.family_name_kana,
        given_name_kana=person.given_name_kana, job_title=person.job_title, attend_closing=person.attend_closing)


def admin() -> Staff:
    staff = db.session.scalar(select(Staff).where(Staff.role == "admin"))
    assert staff is not None
    return staff


@pytest.fixture
def people(app, make_attendee, make_registrant, make_staff):
    """Two seat holders (one checked in), one without a seat, one cancelled: ids by name."""
    make_staff("admin")
    holder, checked_in = make_attendee(), make_attendee(given_name="花子", email="hanako@example.jp")
    no_seat = make_registrant(attend_closing=False)
    gone = make_attendee()
    with app.app_context():
        assert checkins.check_in(code=checked_in.ticket_code, gate="door-2").status == 201
        registrations.cancel(db.session.get(Registrant, gone.id), notify=False)
        db.session.commit()
    return {"holder": holder.id, "checked_in": checked_in.id, "no_seat": no_seat.id, "gone": gone.id}


class TestContents:
    def test_only_seat_holders_without_addresses_or_codes(self, app, people):
        with app.app_context():
            answer = door_data.door_dataset(None)
            rows = {r.id: r for r in db.session.scalars(select(Registrant))}
        assert answer["full"] is True and answer["expired"] is False and answer["removed"] == []
        assert [p["id"] for p in answer["people"]] == [people["holder"], people["checked_in"]]
        text_ = json.dumps(answer, ensure_ascii=False)
        for row in rows.values():
            assert row.email not in text_ and row.email_key not in text_
            assert row.ticket_code is None or row.ticket_code not in text_
        assert "@" not in text_
        person = answer["people"][1]
        assert set(person) == {"id", "hash", "name", "kana", "organization", "on_site", "checkin"}
        assert (person["name"], person["kana"], person["organization"]) == ("山田 花子", "ヤマダ タロウ", "例示株式会社")
        assert person["checkin"] == {"id": 1, "at": "2023-08-25T10:00:00+09:00", "gate": "door-2"}
        assert answer["people"][0]["checkin"] is None

    def test_the_hash_is_hmac_sha256_of_the_normalised_code_with_the_key_sent(self, app, people):
        with app.app_context():
            answer = door_data.door_dataset(None)
            codes = {r.id: r.ticket_code for r in db.session.scalars(select(Registrant))}
        key = b64decode(answer["key"])
        assert len(key) == 32 and "=" not in answer["key"]
        for person in answer["people"]:
            expected = hmac.new(key, codes[person["id"]].encode(), hashlib.sha256).digest()[:16]
            assert b64decode(person["hash"]) == expected and len(person["hash"]) == 22
            # A code as typed (lower case, grouped, full width) is normalised first.
            typed = "-".join(codes[person["id"]][i:i + 4] for i in range(0, 26, 4)).lower()
            assert door_data.code_hash(key, typed) == person["hash"]
        # Derived from SECRET_KEY: the same in every process, and another secret gives another key and id.
        with app.app_context():
            assert door_data.dataset_key() == (answer["key_id"], key)
        app.config["SECRET_KEY"] = "another-secret"
        with app.app_context():
            other_id, other_key = door_data.dataset_key()
        assert other_id != answer["key_id"] and other_key != key

    def test_server_time_and_expiry(self, app, people, frozen_clock):
        frozen_clock(jst(2023, 9, 14, 10, 2, 3, 123000))
        with app.app_context():
            answer = door_data.door_dataset(None)
        assert answer["server_time"] == "2023-09-14T10:02:03.123+09:00"
        assert answer["expires_at"] == "2023-09-15T00:00:00+09:00"


class TestExpiry:
    def test_the_copy_expires_at_midnight_after_the_closing_day(self, app, people, frozen_clock):
        frozen_clock(jst(2023, 9, 14, 23, 59, 59, 999000))
        with app.app_context():
            last = door_data.door_dataset(None)
        assert last["expired"] is False and len(last["people"]) == 2
        frozen_clock(jst(2023, 9, 15, 0, 0, 0))
        with app.app_context():
            after = door_data.door_dataset(last["version"])
        assert after["expired"] is True and after["full"] is True
        assert (after["people"], after["removed"], after["conflicts"]) == ([], [], [])


def version_at(app, frozen_clock, moment) -> str:
    frozen_clock(moment)
    with app.app_context():
        return door_data.door_dataset(None)["version"]


def changes(app, frozen_clock, since: str, moment) -> dict:
    frozen_clock(moment)
    with app.app_context():
        answer = door_data.door_dataset(since)
    assert answer["full"] is False
    return answer


class TestIncremental:
    def test_nothing_changed_nothing_sent(self, app, people, frozen_clock):
        since = version_at(app, frozen_clock, T0 + timedelta(minutes=10))
        answer = changes(app, frozen_clock, since, T0 + timedelta(minutes=20))
        assert (answer["people"], answer["removed"]) == ([], [])

    def test_a_change_within_the_overlap_is_sent_again(self, app, people, frozen_clock):
        since = version_at(app, frozen_clock, T0 + timedelta(minutes=10))
        frozen_clock(T0 + timedelta(minutes=20))
        with app.app_context():
            person = db.session.get(Registrant, people["holder"])
            registrations.update(person, _renamed(person), locale="ja")
            db.session.commit()
        # 30 s later: the version names a moment 30 s before the change, so the next answer sends it again.
        first = changes(app, frozen_clock, since, T0 + timedelta(minutes=20, seconds=30))
        assert [p["id"] for p in first["people"]] == [people["holder"]]
        again = changes(app, frozen_clock, first["version"], T0 + timedelta(minutes=21))
        assert [p["id"] for p in again["people"]] == [people["holder"]]
        # Once the version is past the change (by the overlap), it is not sent any more.
        later = changes(app, frozen_clock, again["version"], T0 + timedelta(minutes=23))
        assert later["people"] == []

    @pytest.mark.parametrize("since", [
        "", "garbage", "x.1", ".", "..", "KEY.", "KEY.-5", "KEY.1.5", "KEY.１２３", "KEY." + "9" * 19, "KEY." + "9" * 18,
        "KEY.abc", "KEY.9999999999999999", "KEY.0" + "\x00", "FOREIGN.1692925200000000", "k" * 65,
    ])
    def test_a_bad_or_foreign_or_future_since_gets_everything(self, app, people, since):
        with app.app_context():
            key_id, _ = door_data.dataset_key()
            answer = door_data.door_dataset(since.replace("KEY", key_id))
        assert answer["full"] is True and len(answer["people"]) == 2

    def test_a_version_from_another_secret_gets_everything(self, app, people, frozen_clock):
        since = version_at(app, frozen_clock, T0 + timedelta(minutes=10))
        app.config["SECRET_KEY"] = "rotated-secret"
        frozen_clock(T0 + timedelta(minutes=20))
        with app.app_context():
            answer = door_data.door_dataset(since)
        assert answer["full"] is True and len(answer["people"]) == 2
        assert not answer["version"].startswith(since.split(".")[0] + ".")

    def test_a_version_from_before_a_rehearsal_restart_gets_everything(self, app, people, frozen_clock,
                                                                       monkeypatch):
        since = version_at(app, frozen_clock, T0 + timedelta(minutes=10))
        # `rehearsal restart` sets the clock back an hour: changes made until the clock passes the old version again
        # would be older than it, so a version from the earlier run is no version.
        monkeypatch.setattr(clock, "rehearsal_offset", lambda: timedelta(hours=-1))
        frozen_clock(T0 + timedelta(minutes=20))
        with app.app_context():
            assert door_data.door_dataset(since)["full"] is True

    def test_a_version_later_than_the_clock_gets_everything(self, app, people, frozen_clock):
        since = version_at(app, frozen_clock, T0 + timedelta(hours=2))
        frozen_clock(T0 + timedelta(hours=1))  # the server's clock went back
        with app.app_context():
            assert door_data.door_dataset(since)["full"] is True


def _renamed(person) -> registrations.Details:
    from dataclasses import replace
    return replace(details_of(person), given_name="改名")


class TestEveryTransitionIsSent:
    """Each change made by its own service appears in the next incremental answer: registrants.changed_at's
    onupdate fires for ORM flushes, update(Registrant) and bulk updates alike, and check-ins count by their own
    times. The state before is older than the version, so only the change itself can make the person appear."""

    def _since(self, app, frozen_clock):
        return version_at(app, frozen_clock, T0 + timedelta(minutes=10))

    def _after(self, app, frozen_clock, since):
        return changes(app, frozen_clock, since, T0 + timedelta(minutes=30))

    def _at_change(self, frozen_clock):
        frozen_clock(T0 + timedelta(minutes=20))

    def test_rename_by_the_registrant(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            person = db.session.get(Registrant, people["holder"])
            registrations.update(person, _renamed(person), locale="ja")
            db.session.commit()
        answer = self._after(app, frozen_clock, since)
        assert [(p["id"], p["name"]) for p in answer["people"]] == [(people["holder"], "山田 改名")]

    def test_language_change_by_a_core_update(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            assert registrations.set_locale(db.session.get(Registrant, people["holder"]), "en")
            db.session.commit()
        assert [p["id"] for p in self._after(app, frozen_clock, since)["people"]] == [people["holder"]]

    def test_cancel(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, people["holder"]), notify=False)
            db.session.commit()
        answer = self._after(app, frozen_clock, since)
        assert (answer["people"], answer["removed"]) == ([], [people["holder"]])

    def test_erasure_of_a_cancelled_registration(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)  # "gone" was cancelled before this version
        self._at_change(frozen_clock)
        with app.app_context():
            assert privacy.erase(db.session.get(Registrant, people["gone"]))
            db.session.commit()
        assert self._after(app, frozen_clock, since)["removed"] == [people["gone"]]

    def test_own_erasure_of_a_seat_holder(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            assert registrations.erase_own(db.session.get(Registrant, people["holder"]))
            db.session.commit()
        assert self._after(app, frozen_clock, since)["removed"] == [people["holder"]]

    def test_purge_a_bulk_update_by_primary_key(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            privacy.purge(force=True)
            db.session.commit()
        answer = self._after(app, frozen_clock, since)
        # Purged names are empty; seat holders stay seat holders (their seats are the counts), the rest go.
        assert {p["id"]: p["name"] for p in answer["people"]} == {people["holder"]: "", people["checked_in"]: ""}
        assert answer["removed"] == [people["no_seat"], people["gone"]]

    def test_ticket_rotation(self, app, people, frozen_clock):
        with app.app_context():
            before = door_data.door_dataset(None)["people"][0]["hash"]
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            registrations.rotate_ticket(db.session.get(Registrant, people["holder"]), by=admin())
            db.session.commit()
        (person,) = self._after(app, frozen_clock, since)["people"]
        assert person["id"] == people["holder"] and person["hash"] != before

    def test_confirmed_from_the_waiting_list_when_a_seat_comes_free(self, make_app, make_details, frozen_clock):
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            seated = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            db.session.commit()
            assert (seated.seat_status, waiting.seat_status) == ("confirmed", "waitlisted")
            ids = seated.id, waiting.id
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, ids[0]), notify=False)
            db.session.commit()
        answer = self._after(app, frozen_clock, since)
        assert ([p["id"] for p in answer["people"]], answer["removed"]) == ([ids[1]], [ids[0]])

    def test_promotion_by_an_admin(self, make_app, make_details, make_staff, frozen_clock):
        app = make_app(CLOSING_CAPACITY=1)
        make_staff("admin")
        with app.app_context():
            registrations.register(make_details(attend_closing=True), locale="ja")
            waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            seats.set_capacity(2)
            db.session.commit()
            waiting_id = waiting.id
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            registrations.promote(db.session.get(Registrant, waiting_id), by=admin())
            db.session.commit()
        assert [p["id"] for p in self._after(app, frozen_clock, since)["people"]] == [waiting_id]

    def test_check_in_and_undo(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            checkin_id = checkins.check_in(registrant_id=people["holder"], gate="door-1").body["checkin_id"]
            db.session.commit()
        answer = self._after(app, frozen_clock, since)
        (person,) = answer["people"]
        assert person["checkin"] == {"id": checkin_id, "at": "2023-08-25T10:20:00+09:00", "gate": "door-1"}
        frozen_clock(T0 + timedelta(minutes=40))
        with app.app_context():
            checkins.undo(checkin_id, staff_id=admin().id)
            db.session.commit()
        (person,) = changes(app, frozen_clock, answer["version"], T0 + timedelta(minutes=50))["people"]
        assert (person["id"], person["checkin"]) == (people["holder"], None)

    def test_a_queued_check_in_counts_by_when_it_was_received(self, app, people, frozen_clock):
        since = self._since(app, frozen_clock)
        self._at_change(frozen_clock)
        with app.app_context():
            # Scanned offline an hour before the version, received after it.
            checkins.check_in(registrant_id=people["holder"], gate="door-1", offline_result="ok",
                              scanned_at=T0 - timedelta(minutes=50))
            db.session.commit()
        (person,) = self._after(app, frozen_clock, since)["people"]
        assert person["checkin"]["at"] == "2023-08-25T09:10:00+09:00"


class TestEndpoint:
    def test_device_token(self, client, people, make_device):
        response = client.get(DATASET, headers=make_device())
        assert_described(response, "get", DATASET)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert "csrf_token" not in response.json and len(response.json["people"]) == 2
        following = client.get(DATASET, query_string={"since": response.json["version"]}, headers=make_device())
        assert following.json["full"] is False

    def test_staff_session_gets_a_fresh_csrf_token(self, app, people, make_staff):
        name, password = make_staff("door")
        client = app.test_client()
        assert client.post("/login", data={"name": name, "password": password}).status_code == 303
        response = client.get(DATASET)
        assert_described(response, "get", DATASET)
        assert response.status_code == 200
        token = response.json["csrf_token"]
        # The token works for the API's POSTs.
        scan = client.post("/api/v1/checkins", json={"registrant_id": people["holder"]},
                           headers={"X-CSRFToken": token}, without_csrf=True)
        assert scan.status_code == 201

    def test_expired_answer(self, client, people, make_device, frozen_clock):
        frozen_clock(jst(2023, 9, 15, 0, 0))
        response = client.get(DATASET, headers=make_device())
        assert_described(response, "get", DATASET)
        assert (response.json["expired"], response.json["people"]) == (True, [])

    def test_no_credentials(self, client, people):
        for headers in ({}, {"Authorization": "Bearer nope"}):
            response = client.get(DATASET, headers=headers)
            assert (response.status_code, api_error(response)) == (401, {"result": "unauthorized"})

    @pytest.mark.parametrize("query", [
        "since=", "since=%FF%FE", "since=a&since=b", "since=" + "9" * 5000, "since[]=1", "since=%00", "since=..%2F",
        "since=%E3%81%82", "x=1", "since=" + "%25" * 300,
    ])
    def test_a_bad_query_string_gets_everything(self, client, people, make_device, query):
        response = client.get(f"{DATASET}?{query}", headers=make_device())
        assert response.status_code == 200 and response.json["full"] is True

    def test_open_conflicts_are_listed(self, client, people, make_device):
        with client.application.app_context():
            code = db.session.get(Registrant, people["checked_in"]).ticket_code
        scan = client.post("/api/v1/checkins", json={"code": code, "offline_result": "ok", "gate": "door-3"},
                           headers=make_device())
        assert scan.json["conflict"] == "admitted_twice"
        response = client.get(DATASET, headers=make_device())
        assert_described(response, "get", DATASET)
        (conflict,) = response.json["conflicts"]
        assert (conflict["kind"], conflict["registrant_id"]) == ("admitted_twice", people["checked_in"])
        assert (conflict["admission"]["gate"], conflict["scan"]["gate"]) == ("door-2", "door-3")


def _migrate_with_data(url: str, tmp_path) -> dict:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"}, instance_path=str(tmp_path))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="433159b066d6")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO registrants (id, secret, email, email_key, family_name, given_name, family_name_kana, "
                "given_name_kana, organization, job_title, attend_closing, locale, consented_at, registered_at, "
                "updated_at, seat_status, on_site, search_key) VALUES (1, 's', 'a@example.jp', 'a@example.jp', "
                "'山田', '太郎', '', '', 'Org', '', true, 'ja', :reg, :reg, :reg, 'confirmed', false, '')"),
                {"reg": jst(2023, 8, 1, 9)})
            conn.execute(text("INSERT INTO checkins (id, registrant_id, at, gate) VALUES (1, 1, :at, 'door-1')"),
                         {"at": jst(2023, 9, 14, 10)})
            conn.execute(text("INSERT INTO scans (id, at, result, gate, status_code, response) "
                              "VALUES (1, :at, 'ok', 'door-1', 201, '{}')"), {"at": jst(2023, 9, 14, 10)})
        upgrade(directory=str(ROOT / "migrations"))
        found = {
            "changed_at": db.session.scalar(select(Registrant.changed_at)),
            "checkin": db.session.execute(select(CheckIn.at, CheckIn.received_at)).one(),
            "scan": db.session.execute(select(Scan.at, Scan.received_at, Scan.offline_result, Scan.conflict)).one(),
        }
        db.session.remove()
        downgrade(directory=str(ROOT / "migrations"), revision="433159b066d6")  # and back, data kept
        upgrade(directory=str(ROOT / "migrations"))
        found["again"] = db.session.scalar(select(Registrant.changed_at))
        db.session.remove()
        db.engine.dispose()
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_fills_the_new_columns_from_the_old(backend, tmp_path):
    if backend == "sqlite":
        found = _migrate_with_data(f"sqlite:///{tmp_path / 'old.sqlite'}", tmp_path)
    else:
        name = f"codt_door_migration_{uuid.uuid4().hex[:8]}"
        admin_ = psycopg.connect(pg_url().replace("postgresql+psycopg", "postgresql"), autocommit=True)
        admin_.execute(f'CREATE DATABASE "{name}"')
        try:
            found = _migrate_with_data(pg_url().rsplit("/", 1)[0] + "/" + name, tmp_path)
        finally:
            admin_.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin_.close()
    assert found["changed_at"] == found["again"] == jst(2023, 8, 1, 9)
    assert tuple(found["checkin"]) == (jst(2023, 9, 14, 10), jst(2023, 9, 14, 10))
    assert tuple(found["scan"]) == (jst(2023, 9, 14, 10), jst(2023, 9, 14, 10), None, None)
