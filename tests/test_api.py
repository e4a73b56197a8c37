"""The check-in API: authentication, every answer, bad bodies, retries, and races between processes."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import form_data, register_simultaneously


def post(client, path, body=None, headers=None, raw=None):
    return client.post(path, data=raw if raw is not None else json.dumps(body), headers=headers or {},
                       content_type="application/json")


class TestAuthentication:
    def test_no_credentials(self, client):
        response = post(client, "/api/v1/checkins", {"code": "X"})
        assert (response.status_code, response.json) == (401, {"result": "unauthorized"})

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
        person = make_attendee()
        assert post(client, "/api/v1/checkins", {"code": person.ticket_code}).json == {
            "result": "unauthorized", "reason": "csrf"}
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code}, {"X-CSRFToken": token})
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

    def test_undo(self, client, make_device, make_attendee):
        headers = make_device()
        person = make_attendee()
        ok = post(client, "/api/v1/checkins", {"code": person.ticket_code}, headers).json
        assert post(client, f"/api/v1/checkins/{ok['checkin_id']}/undo", None, headers, raw="").status_code == 200
        assert post(client, f"/api/v1/checkins/{ok['checkin_id']}/undo", None, headers, raw="").status_code == 404
        assert client.get("/api/v1/stats", headers=headers).json["checked_in"] == 0

    def test_search(self, client, make_device, make_attendee):
        headers = make_device()
        make_attendee(family_name="検索", family_name_kana="ケンサク", organization="探索株式会社")
        for query in ("検索", "ケンサク", "探索", "taro"):
            results = client.get(f"/api/v1/registrants?q={query}", headers=headers).json["results"]
            assert results and results[0]["seat_status"] == "confirmed", query
        assert client.get("/api/v1/registrants?q=%", headers=headers).json == {"results": []}


class TestBadBodies:
    @pytest.mark.parametrize("raw", [
        "", "null", "[]", '"code"', "{", "\xff", '{"code": 5}', '{"code": ""}', '{"code": null}',
        '{"code": "A", "registrant_id": 1}', '{"registrant_id": "1"}', '{"registrant_id": true}',
        '{"code": "A", "gate": ""}', '{"code": "A", "gate": "' + "g" * 41 + '"}', '{"code": "A", "gate": "a\\u0000"}',
        '{"code": "A", "nonce": 1}', '{"code": "A", "previous_latency_ms": -1}', '{"code": "A", "previous_latency_ms": "1"}',
        '{"code": "' + "A" * 201 + '"}',
    ])
    def test_invalid_request(self, client, make_device, raw):
        response = post(client, "/api/v1/checkins", headers=make_device(), raw=raw)
        assert response.status_code == 400 and response.json["result"] == "invalid_request"

    def test_errors_are_json(self, client, make_device):
        headers = make_device()
        assert client.get("/api/v1/nope", headers=headers).json == {"result": "not_found"}
        assert client.get("/api/v1/checkins", headers=headers).status_code == 405
        big = post(client, "/api/v1/checkins", headers=headers, raw='{"code": "' + "A" * 100_000 + '"}')
        assert big.status_code == 413 and big.json["result"] == "too_large"


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
