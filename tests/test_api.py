"""The check-in API: authentication, every answer, bad bodies, retries, and races between processes."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, text

from registration.extensions import db
from registration.models import Registrant
from tests.conftest import form_data, register_simultaneously


def api_error(response) -> dict:
    """An API error body without its request_id, after checking that it is the answer's X-Request-ID."""
    body = dict(response.get_json())
    assert body.pop("request_id") == response.headers["X-Request-ID"]
    return body


def post(client, path, body=None, headers=None, raw=None, **options):
    return client.post(path, data=raw if raw is not None else json.dumps(body), headers=headers or {},
                       content_type="application/json", **options)


class TestAuthentication:
    def test_no_credentials(self, client):
        response = post(client, "/api/v1/checkins", {"code": "X"})
        assert (response.status_code, api_error(response)) == (401, {"result": "unauthorized"})

    @pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Basic abc", "Bearer " + "x" * 500, "Bearer \x7f"])
    def test_bad_tokens(self, client, header):
        assert post(client, "/api/v1/checkins", {"code": "X"}, {"Authorization": header}).status_code == 401

    def test_revoked_token(self, app, client, make_staff):
        from registration.extensions import db
        from registration.services import staff as staff_service
        name, _ = make_staff("door")
        with app.app_context():
            token = staff_service.new_device_token(staff_service.find_staff(name), device_name="phone")
            staff_service.revoke_device_token(staff_service.find_staff(name), "phone")
            db.session.commit()
        assert post(client, "/api/v1/checkins", {"code": "X"}, {"Authorization": f"Bearer {token}"}).status_code == 401

    def test_token_of_a_disabled_staff_member(self, make_app, make_staff):
        from registration import clock
        from registration.extensions import db
        from registration.services import staff as staff_service
        app = make_app(DEVICE_TOKEN_CACHE_SECONDS=0)  # refused at once: no process remembers the token
        client = app.test_client()
        name, _ = make_staff("door")
        with app.app_context():
            token = staff_service.new_device_token(staff_service.find_staff(name), device_name="phone")
            db.session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/stats", headers=headers).status_code == 200
        with app.app_context():
            staff_service.find_staff(name).disabled_at = clock.now()
            db.session.commit()
        assert post(client, "/api/v1/checkins", {"code": "X"}, headers).status_code == 401

    def test_a_device_request_leaves_the_cookie_session_alone(self, client, make_device, make_attendee):
        with client.session_transaction() as session:
            session["marker"] = "kept"
        response = post(client, "/api/v1/checkins", {"code": make_attendee().ticket_code}, make_device())
        assert response.status_code == 201
        assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
        with client.session_transaction() as session:
            assert session["marker"] == "kept"

    def test_session_needs_the_csrf_header(self, make_app, make_staff, make_attendee):
        app = make_app(WTF_CSRF_ENABLED=True)
        name, password = make_staff("door")
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        import re
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code == 303
        # Signing in starts a fresh session: the door page carries its token.
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/door").get_data(as_text=True)).group(1)
        person = make_attendee()
        assert api_error(post(client, "/api/v1/checkins", {"code": person.ticket_code}, without_csrf=True)) == {
            "result": "unauthorized", "reason": "csrf"}
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code}, {"X-CSRFToken": token}, without_csrf=True)
        assert ok.status_code == 201
        assert client.get("/api/v1/stats").json["checked_in"] == 1


class TestAnswers:
    def test_every_answer(self, client, make_device, make_attendee, make_registrant):
        headers = make_device("door-1")
        person = make_attendee()
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code, "gate": "door-1", "nonce": "a"}, headers)
        assert ok.status_code == 201 and ok.json["result"] == "ok"
        assert ok.json["attendee"]["organization"] == "例示株式会社" and ok.json["checked_in_at"]
        again = post(client, "/api/v1/checkins", {"code": person.ticket_code, "gate": "door-2"}, headers)
        assert again.status_code == 409 and again.json["gate"] == "door-1" and again.json["by"].startswith("door-")
        assert again.json["device"] == "door-1" and again.json["attendee"] == ok.json["attendee"]
        assert post(client, "/api/v1/checkins", {"code": "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"}, headers).json == {
            "result": "unknown_code"}
        no_ticket = make_registrant(attend_closing=False)
        refused = post(client, "/api/v1/checkins", {"registrant_id": no_ticket.id}, headers)
        assert refused.status_code == 403 and refused.json["reason"] == "no_ticket"
        retry = post(client, "/api/v1/checkins", {"code": person.ticket_code, "gate": "door-1", "nonce": "a"}, headers)
        assert (retry.status_code, retry.json) == (201, ok.json)
        stats = client.get("/api/v1/stats", headers=headers).json
        assert stats["checked_in"] == 1 and stats["confirmed"] == 1

    def test_gate_defaults_to_the_device_name(self, client, make_device, make_attendee):
        ok = post(client, "/api/v1/checkins", {"code": make_attendee().ticket_code}, make_device("scanner-7"))
        assert (ok.status_code, ok.json["gate"]) == (201, "scanner-7")

    @pytest.mark.parametrize("gate", ["Gate \U0001fa75", "入口\U0001fae8"])
    def test_a_gate_with_characters_newer_than_pythons_unicode_is_kept(self, client, make_device, make_attendee, gate):
        # A phone's keyboard offers emoji this Python's Unicode 14 does not know yet; a label is no reason to refuse a
        # ticket. A noncharacter is still refused.
        headers = make_device()
        ok = post(client, "/api/v1/checkins", {"code": make_attendee().ticket_code, "gate": gate}, headers)
        assert (ok.status_code, ok.json["gate"]) == (201, gate)
        refused = post(client, "/api/v1/checkins", {"code": make_attendee().ticket_code, "gate": "a\ufffe"}, headers)
        assert (refused.status_code, refused.json["field"]) == (400, "gate")

    def test_undo(self, client, make_device, make_attendee):
        headers = make_device()
        person = make_attendee()
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers).json
        assert post(client, f"/api/v1/checkins/{ok['checkin_id']}/undo", None, headers, raw="").status_code == 200
        assert post(client, f"/api/v1/checkins/{ok['checkin_id']}/undo", None, headers, raw="").status_code == 404
        assert client.get("/api/v1/stats", headers=headers).json["checked_in"] == 0

    def test_undo_from_an_already_checked_in_answer(self, client, make_device, make_attendee):
        headers = make_device()
        person = make_attendee()
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers).json
        again = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers)
        # The amber answer names the standing check-in, so a door that did not admit the person can undo it.
        assert (again.status_code, again.json["checkin_id"]) == (409, ok["checkin_id"])
        undone = post(client, f"/api/v1/checkins/{again.json['checkin_id']}/undo", {}, headers)
        assert (undone.status_code, undone.json) == (200, {"result": "undone", "checkin_id": ok["checkin_id"]})
        readmitted = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers)
        assert readmitted.status_code == 201 and readmitted.json["checkin_id"] != ok["checkin_id"]

    def test_a_replaced_code_and_a_reused_nonce(self, app, client, make_device, make_attendee, make_staff):
        from registration.services import registrations
        from registration.services import staff as staff_service
        headers = make_device()
        admin, _ = make_staff("admin")
        person = make_attendee()
        with app.app_context():
            registrations.rotate_ticket(db.session.get(Registrant, person.id), by=staff_service.find_staff(admin))
            db.session.commit()
        refused = post(client, "/api/v1/checkins", {"code": person.ticket_code, "nonce": "n-1"}, headers)
        assert (refused.status_code, refused.json["reason"]) == (403, "replaced")
        assert refused.json["attendee"]["name"] == person.full_name
        # The same nonce with another code is another scan, not a retry: it gets nobody's answer.
        reused = post(client, "/api/v1/checkins", {"code": "A" * 26, "nonce": "n-1"}, headers)
        assert (reused.status_code, reused.json) == (422, {"result": "nonce_reused"})

    def test_search(self, client, make_device, make_attendee):
        headers = make_device()
        make_attendee(family_name="検索", family_name_kana="ケンサク", organization="探索株式会社")
        for query in ("検索", "ケンサク", "探索", "taro"):
            results = client.get(f"/api/v1/registrants?q={query}", headers=headers).json["results"]
            assert results and results[0]["seat_status"] == "confirmed", query
        assert client.get("/api/v1/registrants?q=%", headers=headers).json == {"results": []}

    def test_search_says_who_may_enter(self, make_app, make_device, make_details):
        from registration.services import registrations
        app = make_app(CLOSING_CAPACITY=2)
        client = app.test_client()
        headers = make_device()

        def register(email, closing=True):
            with app.app_context():
                registrations.register(make_details(email=email, attend_closing=closing), locale="ja")
                db.session.commit()

        def cancel(email):
            with app.app_context():
                registrations.cancel(registrations.find_by_email(email))
                db.session.commit()

        def found(email):
            [person] = client.get(f"/api/v1/registrants?q={email}", headers=headers).json["results"]
            return person

        for email in ("came@example.jp", "left@example.jp", "next@example.jp", "wait@example.jp",
                      "gone@example.jp"):
            register(email)  # two seats, then the waiting list
        register("none@example.jp", closing=False)
        came = post(client, "/api/v1/checkins", {"registrant_id": found("came@")["registrant_id"]}, headers).json
        left = post(client, "/api/v1/checkins", {"registrant_id": found("left@")["registrant_id"]}, headers).json
        cancel("left@example.jp")  # checked in, then cancelled: the first on the waiting list gets the seat
        cancel("gone@example.jp")

        assert found("came@") == {
            "registrant_id": came["attendee"] and found("came@")["registrant_id"], **came["attendee"],
            "email": "came@example.jp", "seat_status": "confirmed", "checked_in": True,
            "admissible": True, "reason": None, "checkin_id": came["checkin_id"],
            "checked_in_at": came["checked_in_at"], "gate": "door-1"}
        # Checked in, but no longer a ticket holder: the door must not read it as "inside, all well".
        assert {k: found("left@")[k] for k in ("seat_status", "checked_in", "admissible", "reason", "checkin_id")} == {
            "seat_status": "cancelled", "checked_in": True, "admissible": False, "reason": "cancelled",
            "checkin_id": left["checkin_id"]}
        expected = {"next@": ("confirmed", True, None), "wait@": ("waitlisted", False, "waitlisted"),
                    "gone@": ("cancelled", False, "cancelled"), "none@": ("none", False, "no_ticket")}
        for email, (seat_status, admissible, reason) in expected.items():
            person = found(email)
            assert (person["seat_status"], person["admissible"], person["reason"]) == (seat_status, admissible,
                                                                                       reason), email
            assert (person["checked_in"], person["checkin_id"], person["checked_in_at"]) == (False, None, None)
        # The check-in found by search can be undone.
        assert post(client, f"/api/v1/checkins/{left['checkin_id']}/undo", {}, headers).status_code == 200
        assert (found("left@")["checked_in"], found("left@")["checkin_id"]) == (False, None)


class TestBadBodies:
    @pytest.mark.parametrize("raw", [
        "", "null", "[]", '"code"', "{", "\xff", '{"code": 5}', '{"code": ""}', '{"code": null}',
        '{"code": "A", "registrant_id": 1}', '{"registrant_id": "1"}', '{"registrant_id": true}',
        '{"code": "A", "gate": ""}', '{"code": "A", "gate": "' + "g" * 41 + '"}', '{"code": "A", "gate": "a\\u0000"}',
        '{"code": "A", "nonce": 1}', '{"code": "A", "previous_latency_ms": -1}', '{"code": "A", "previous_latency_ms": "1"}',
        '{"code": "' + "A" * 201 + '"}',
        # Nested deeper than Python's stack (json.loads raised RecursionError: a 500), and within the size limit.
        "[" * 30_000, '{"a":' * 12_000, '{"code": "A", "gate": ' + "[" * 30_000 + "]" * 30_000 + "}",
        # Not UTF-8; lone surrogates, which no database can store.
        b'{"code": "\xff\xfe"}', b"\xc3\x28", '{"code": "\\ud800"}', '{"code": "A", "nonce": "\\udfff"}',
        # JSON, but not an object.
        "123", "true", "1" * 5_000, "1e999",
        # Not JSON at all, though Python's json would take it; numbers no field can hold.
        '{"code": NaN}', '{"code": "A", "previous_latency_ms": Infinity}', '{"code": "A", "extra": -Infinity}',
        '{"code": "A", "previous_latency_ms": 1e999}', '{"code": "A", "previous_latency_ms": 1.0}',
        '{"registrant_id": 1' + "0" * 5_000 + "}", '{"registrant_id": 1.0}', '{"registrant_id": 1e30}',
        '{"registrant_id": 0}', '{"registrant_id": -1}', '{"registrant_id": false}', '{"registrant_id": [1]}',
    ])
    def test_invalid_request(self, client, make_device, raw):
        response = post(client, "/api/v1/checkins", headers=make_device(), raw=raw)
        assert response.status_code == 400 and response.json["result"] == "invalid_request"

    def test_a_body_that_is_not_declared_json(self, client, make_device, make_attendee):
        response = client.post("/api/v1/checkins", data=json.dumps({"code": make_attendee().ticket_code}),
                               headers=make_device(), content_type="text/plain")
        assert (response.status_code, response.json["result"]) == (400, "invalid_request")

    def test_errors_are_json(self, client, make_device):
        headers = make_device()
        assert api_error(client.get("/api/v1/nope", headers=headers)) == {"result": "not_found"}
        assert client.get("/api/v1/checkins", headers=headers).status_code == 405
        big = post(client, "/api/v1/checkins", headers=headers, raw='{"code": "' + "A" * 100_000 + '"}')
        assert big.status_code == 413 and big.json["result"] == "too_large"


class TestIds:
    """Ids in URLs and bodies: ASCII digits within the database's integer, else a JSON 404 (never a 500)."""

    @pytest.mark.parametrize("spell", [
        lambda n: "".join(chr(0x660 + int(d)) for d in str(n)),  # Arabic-Indic digits: Werkzeug's int took them
        lambda n: "".join(chr(0xFF10 + int(d)) for d in str(n)),  # fullwidth digits
        lambda n: f"0{n}", lambda n: f"+{n}", lambda n: f"{n}.0", lambda n: f"%20{n}", lambda n: f"-{n}",
        lambda n: "0", lambda n: str(2**31), lambda n: str(2**63), lambda n: str(2**64), lambda n: "9" * 100,
    ], ids=["arabic-indic", "fullwidth", "leading-zero", "plus", "decimal", "space", "negative", "zero", "2**31",
            "2**63", "2**64", "huge"])
    def test_undo_url_other_than_a_database_id(self, client, make_device, make_attendee, spell):
        headers = make_device()
        checkin_id = post(client, "/api/v1/checkins", {"code": make_attendee().ticket_code}, headers).json["checkin_id"]
        response = post(client, f"/api/v1/checkins/{spell(checkin_id)}/undo", {}, headers)
        assert (response.status_code, api_error(response)) == (404, {"result": "not_found"})
        assert client.get("/api/v1/stats", headers=headers).json["checked_in"] == 1  # nothing was undone
        assert post(client, f"/api/v1/checkins/{checkin_id}/undo", {}, headers).status_code == 200

    def test_the_largest_id_is_looked_up(self, app, client, make_device):
        from flask import url_for
        response = post(client, f"/api/v1/checkins/{2**31 - 1}/undo", {}, make_device())
        assert (response.status_code, api_error(response)) == (404, {"result": "not_found"})
        with app.test_request_context():
            assert url_for("api.undo_checkin", checkin_id=7) == "/api/v1/checkins/7/undo"

    @pytest.mark.parametrize("registrant_id", [10**9, 2**31 - 1, 2**31, 2**63, 2**64, 10**100])
    def test_a_registrant_id_nobody_has_is_unknown(self, client, make_device, registrant_id):
        headers = make_device()
        response = post(client, "/api/v1/checkins", {"registrant_id": registrant_id}, headers)
        assert (response.status_code, response.json) == (404, {"result": "unknown_code"})

    @pytest.mark.parametrize("registrant_id", [10**9, 2**64])
    def test_a_retry_for_a_registrant_id_nobody_has_gets_the_first_answer(self, client, make_device, registrant_id):
        headers = make_device()
        body = {"registrant_id": registrant_id, "nonce": "n-1"}
        assert post(client, "/api/v1/checkins", body, headers).status_code == 404
        retry = post(client, "/api/v1/checkins", body, headers)
        assert (retry.status_code, retry.json) == (404, {"result": "unknown_code"})


class TestServerErrors:
    """Whatever breaks inside, the API answers JSON a client can tell from a refusal, and the log keeps the why."""

    def test_an_exception_in_a_view(self, client, make_device, make_attendee, monkeypatch, caplog):
        from registration.services import checkins
        headers = make_device()
        person = make_attendee()

        def broken(**values):
            raise RuntimeError("the scan broke")

        monkeypatch.setattr(checkins, "check_in", broken)
        response = post(client, "/api/v1/checkins", {"code": person.ticket_code, "nonce": "n-1"}, headers)
        assert (response.status_code, api_error(response)) == (500, {"result": "server_error"})
        assert response.mimetype == "application/json"
        [logged] = [record for record in caplog.records if record.exc_info]
        assert logged.exc_info[0] is RuntimeError and "the scan broke" in caplog.text and "Traceback" in caplog.text
        monkeypatch.undo()
        # The door retries with the same nonce, and gets the real answer.
        retry = post(client, "/api/v1/checkins", {"code": person.ticket_code, "nonce": "n-1"}, headers)
        assert retry.status_code == 201

    def test_a_database_error_leaves_the_next_request_working(self, client, make_device, make_attendee, monkeypatch):
        from registration.services import checkins
        headers = make_device()
        person = make_attendee()

        def broken(**values):
            db.session.execute(text("SELECT no_such_column FROM no_such_table"))

        monkeypatch.setattr(checkins, "check_in", broken)
        response = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers)
        assert (response.status_code, api_error(response)) == (500, {"result": "server_error"})
        monkeypatch.undo()
        assert post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers).status_code == 201

    def test_an_exception_while_authenticating(self, client, make_device, monkeypatch):
        import registration.api.views as api_views
        headers = make_device()

        def broken():
            raise OSError("the token store is gone")

        monkeypatch.setattr(api_views, "bearer_device", broken)
        response = client.get("/api/v1/stats", headers=headers)
        assert (response.status_code, api_error(response)) == (500, {"result": "server_error"})

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_an_http_error_of_the_server(self, client, make_device, monkeypatch, status):
        from flask import abort

        from registration.services import checkins
        monkeypatch.setattr(checkins, "stats", lambda: abort(status))
        response = client.get("/api/v1/stats", headers=make_device())
        assert (response.status_code, api_error(response)) == (status, {"result": "server_error"})

    def test_pages_keep_their_error_page(self, client, monkeypatch):
        from registration.services import viewing
        monkeypatch.setattr(viewing, "program", lambda: 1 / 0)
        response = client.get("/program")
        assert response.status_code == 500 and response.mimetype == "text/html"


def _json_post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _scan_at_once(doors, headers: dict, code: str, **extra) -> list[tuple[int, dict]]:
    """Send one code to every door at the same moment (gates door-1, door-2, ...); their answers."""
    start = threading.Barrier(len(doors))
    answers: list[tuple[int, dict]] = []

    def scan(door, gate):
        start.wait()
        answers.append(_json_post(door.url + "/api/v1/checkins", {"code": code, "gate": gate, **extra}, headers))

    threads = [threading.Thread(target=scan, args=(door, f"door-{n}")) for n, door in enumerate(doors, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_doors_scanning_one_code_at_once_admit_once(live_server, database_url, make_device, make_attendee,
                                                         frozen_clock):
    door_1, door_2 = live_server(workers=1), live_server(workers=1)  # two app processes, one database
    headers = make_device()
    answers = [answer for _ in range(15) for answer in _scan_at_once((door_1, door_2), headers,
                                                                     make_attendee().ticket_code)]
    results = sorted(body["result"] for _, body in answers)
    assert results == ["already_checked_in"] * 15 + ["ok"] * 15, door_1.errors() + door_2.errors()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM checkins WHERE undone_at IS NULL")) == 15
        assert conn.scalar(text("SELECT count(*) FROM scans")) == 30
    engine.dispose()


def test_one_scan_arriving_twice_at_once_is_answered_and_recorded_once(live_server, database_url, make_device,
                                                                       make_attendee, frozen_clock):
    door_1, door_2 = live_server(workers=1), live_server(workers=1)
    headers = make_device()
    for n in range(10):
        # The same request (one nonce) reaches two processes, as a retry may while the first is still running.
        first, second = _scan_at_once((door_1, door_2), headers, make_attendee().ticket_code, nonce=f"twice-{n}")
        assert first == second and first[0] == 201, door_1.errors() + door_2.errors()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM checkins")) == 10
        assert conn.scalar(text("SELECT count(*) FROM scans")) == 10
    engine.dispose()


def test_never_oversold_under_parallel_requests(live_server, database_url):
    server = live_server(workers=4, CLOSING_CAPACITY="10", REGISTER_RATE_LIMIT="1000 per minute")
    statuses = register_simultaneously(
        server, [form_data(email=f"seat{n}@example.jp", attend_closing="y") for n in range(200)])
    assert statuses == [303] * 200, server.errors()[-3000:]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT seat_status, count(*) FROM registrants GROUP BY seat_status")).all())
        assert counts == {"confirmed": 10, "waitlisted": 190}
        assert conn.scalar(text("SELECT taken FROM seat_counters")) == 10
        assert conn.scalar(text("SELECT count(DISTINCT ticket_code) FROM registrants WHERE ticket_code IS NOT NULL")) == 10
    engine.dispose()


class TestWhatScannersSend:
    def test_a_code_with_a_scanner_suffix_or_in_full_width_is_read(self, client, make_attendee, make_device):
        headers = make_device()
        first, second = make_attendee(), make_attendee()
        assert client.post("/api/v1/checkins", json={"code": first.ticket_code + "\t\r\n"},
                           headers=headers).status_code == 201
        wide = first.ticket_code.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ＡＢＣ２３
        assert client.post("/api/v1/checkins", json={"code": wide}, headers=headers).status_code == 409
        assert client.post("/api/v1/checkins", json={"code": " " + second.ticket_code.lower()},
                           headers=headers).status_code == 201

    def test_a_wrong_method_says_so(self, client, make_device):
        response = client.post("/api/v1/stats", headers=make_device())
        assert response.status_code == 405 and api_error(response) == {"result": "method_not_allowed"}
        assert "GET" in response.headers["Allow"]


class TestTypedCodes:
    def test_a_code_typed_in_groups_with_any_spaces_hyphens_or_confusions_admits(self, client, make_attendee,
                                                                                 make_device):
        headers = make_device()
        person = make_attendee()
        code = person.ticket_code
        typed = f"{code[:4].lower()}\u00a0{code[4:8]}\u3000{code[8:12]}-{code[12:16]}\u2010{code[16:20]} {code[20:]}"
        typed = typed.replace("O", "0").replace("I", "1").replace("B", "8")
        response = post(client, "/api/v1/checkins", {"code": typed}, headers)
        assert response.status_code == 201 and response.json["attendee"]["name"] == person.full_name

    @pytest.mark.parametrize(("cut", "kind", "length", "characters"), [
        (lambda code: code[:-1], "too_short", 25, []),
        (lambda code: code[:13] + " " + code[13:] + "Q", "too_long", 27, []),
        (lambda code: code[:25] + "9", "bad_characters", 26, ["9"]),
        (lambda code: "https://example.com/" + code, "bad_characters", 45, [":", "/"]),
    ])
    def test_a_malformed_code_is_unknown_and_says_why(self, client, make_attendee, make_device, cut, kind, length,
                                                      characters):
        headers = make_device()
        person = make_attendee()
        response = post(client, "/api/v1/checkins", {"code": cut(person.ticket_code), "nonce": "m"}, headers)
        assert (response.status_code, response.json) == (404, {"result": "unknown_code", "problem": {
            "kind": kind, "length": length, "expected_length": 26, "characters": characters}})
        retry = post(client, "/api/v1/checkins", {"code": cut(person.ticket_code), "nonce": "m"}, headers)
        assert (retry.status_code, retry.json) == (404, response.json)
        assert client.get("/api/v1/stats", headers=headers).json["checked_in"] == 0

    def test_a_code_of_more_than_200_characters_is_a_bad_request(self, client, make_device):
        response = post(client, "/api/v1/checkins", {"code": "A" * 201}, make_device())
        assert (response.status_code, api_error(response)) == (400, {"result": "invalid_request", "field": "code"})

    def test_spaces_of_any_kind_are_taken_inside_a_code_and_other_unprintable_characters_are_not(self, client,
                                                                                                  make_device):
        headers = make_device()
        for code in ("AB\x00CD", "\u200b" * 26, "AB\u202eCD"):  # a control, a zero-width space, a bidi override
            response = post(client, "/api/v1/checkins", {"code": code}, headers)
            assert (response.status_code, api_error(response)) == (400, {"result": "invalid_request", "field": "code"})
        response = post(client, "/api/v1/checkins", {"code": "AB\u2028CD\u2003EF"}, headers)
        assert (response.status_code, response.json["problem"]["length"]) == (404, 6)


class TestNames:
    def test_an_english_registrant_is_named_given_name_first_at_the_door_and_in_search(self, client, make_attendee,
                                                                                     make_device):
        headers = make_device()
        john = make_attendee(locale="en", family_name="Smith", given_name="John", family_name_kana="",
                             given_name_kana="", email="john@example.com")
        hanako = make_attendee(family_name="山田", given_name="花子", email="hanako@example.jp")
        ok = post(client, "/api/v1/checkins", {"code": john.ticket_code}, headers)
        assert ok.json["attendee"]["name"] == "John Smith" and ok.json["attendee"]["kana"] == ""
        again = post(client, "/api/v1/checkins", {"registrant_id": john.id}, headers)
        assert again.status_code == 409 and again.json["attendee"]["name"] == "John Smith"
        assert post(client, "/api/v1/checkins", {"code": hanako.ticket_code}, headers).json["attendee"]["name"] == (
            hanako.full_name)
        for query, name in (("Smith", "John Smith"), ("John Smith", "John Smith"), ("山田", "山田 花子")):
            [found] = client.get(f"/api/v1/registrants?q={query}", headers=headers).json["results"]
            assert found["name"] == name, query
