"""Scans the door decided offline and sent later: the device's scan time beside the time received, the door's
decision kept (a refusal never becomes an admission), conflicts recorded, retries marked once, and two devices'
queued admissions of one ticket racing through two server processes."""

import threading

import pytest
from sqlalchemy import create_engine, func, select, text

from registration.extensions import db
from registration.models import CheckIn, Registrant, Scan
from registration.services import registrations
from tests.conftest import jst
from tests.test_api import _json_post, api_error
from tests.test_openapi import assert_described

CHECKINS = "/api/v1/checkins"
NOW = jst(2023, 8, 25, 10)  # the default frozen clock


def post(client, body: dict, headers: dict):
    """A scan through the API; every answer is one the OpenAPI document describes."""
    response = client.post(CHECKINS, json=body, headers=headers)
    assert_described(response, "post", CHECKINS)
    return response


def scans(app) -> list[Scan]:
    with app.app_context():
        rows = db.session.scalars(select(Scan).order_by(Scan.id)).all()
        db.session.expunge_all()
        return rows


def checkins_of(app, registrant_id: int) -> list[CheckIn]:
    with app.app_context():
        rows = db.session.scalars(select(CheckIn).where(CheckIn.registrant_id == registrant_id)).all()
        db.session.expunge_all()
        return rows


@pytest.fixture
def device(make_device) -> dict:
    return make_device("door-1")


class TestScannedAt:
    @pytest.mark.parametrize(("sent", "recorded"), [
        ("2023-08-25T09:58:30.250+09:00", jst(2023, 8, 25, 9, 58, 30, 250000)),
        ("2023-08-25T00:58:30Z", jst(2023, 8, 25, 9, 58, 30)),
        ("2023-08-24T09:00:00+09:00", jst(2023, 8, 24, 10)),      # older than a day: received - 24 h
        ("2023-08-25T10:00:05+09:00", NOW),                        # the future: received
        ("2099-01-01T00:00:00+09:00", NOW),
        ("0001-01-01T00:00:00+09:00", jst(2023, 8, 24, 10)),       # far outside what UTC datetimes hold
        ("9999-12-31T23:59:59-05:00", NOW),
    ])
    def test_kept_beside_the_time_received_and_clamped(self, app, client, device, make_attendee, sent, recorded):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "scanned_at": sent, "offline_result": "ok"}, device)
        assert answer.status_code == 201
        (scan,) = scans(app)
        (checkin,) = checkins_of(app, person.id)
        assert (scan.at, scan.received_at) == (recorded, NOW)
        assert (checkin.at, checkin.received_at) == (recorded, NOW)
        assert answer.json["checked_in_at"] == recorded.isoformat(timespec="seconds")

    def test_absent_means_the_time_received(self, app, client, device, make_attendee):
        person = make_attendee()
        assert post(client, {"code": person.ticket_code}, device).status_code == 201
        (scan,) = scans(app)
        assert (scan.at, scan.received_at, scan.offline_result, scan.conflict) == (NOW, NOW, None, None)
        assert checkins_of(app, person.id)[0].received_at == NOW

    def test_a_refused_scan_keeps_both_times_too(self, app, client, device):
        post(client, {"code": "nope", "scanned_at": "2023-08-25T09:30:00+09:00", "offline_result": "unknown_code"},
             device)
        (scan,) = scans(app)
        assert (scan.at, scan.received_at, scan.result) == (jst(2023, 8, 25, 9, 30), NOW, "unknown_code")

    @pytest.mark.parametrize("value", [
        "2023-08-25T09:58:30", "2023-08-25", "yesterday", "", " ", "2023-13-01T00:00:00Z", 1692925110, 1.5, True,
        [], {}, "２０２３-08-25T09:58:30Z", "2023-08-25T09:58:30+09:00 " + "x" * 40, "2023-08-25T25:00:00Z",
        "2023-08-25T09:58:30+24:00", "\x00",
    ])
    def test_malformed_is_refused_naming_the_field(self, app, client, device, make_attendee, value):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "scanned_at": value}, device)
        assert (answer.status_code, api_error(answer)) == (400, {"result": "invalid_request", "field": "scanned_at"})
        assert scans(app) == [] and checkins_of(app, person.id) == []

    def test_null_counts_as_absent(self, client, device, make_attendee):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "scanned_at": None, "offline_result": None}, device)
        assert answer.status_code == 201


class TestOfflineResult:
    @pytest.mark.parametrize("value", ["OK", "refused", "", 1, True, ["ok"], {"ok": 1}, "ok ", "admitted"])
    def test_anything_but_the_four_decisions_is_refused(self, app, client, device, make_attendee, value):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "offline_result": value}, device)
        assert (answer.status_code, api_error(answer)) == (400, {"result": "invalid_request", "field": "offline_result"})
        assert scans(app) == []

    def test_ok_admits_a_ticket_holder_as_online(self, app, client, device, make_attendee):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "offline_result": "ok"}, device)
        assert (answer.status_code, answer.json["result"]) == (201, "ok") and "conflict" not in answer.json
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == ("ok", None)

    @pytest.mark.parametrize("decision", ["already_checked_in", "unknown_code", "not_admitted"])
    def test_a_refusal_never_becomes_an_admission(self, app, client, device, make_attendee, decision):
        person = make_attendee()
        answer = post(client, {"code": person.ticket_code, "offline_result": decision}, device)
        assert answer.status_code == 403
        assert answer.json == {"result": "not_admitted", "reason": "refused_offline", "conflict": "refused_with_ticket",
                               "attendee": answer.json["attendee"]}
        assert checkins_of(app, person.id) == []
        (scan,) = scans(app)
        assert (scan.result, scan.reason, scan.offline_result, scan.conflict) == (
            "not_admitted", "refused_offline", decision, "refused_with_ticket")
        # The person comes back while the door is online: admitted then.
        assert post(client, {"code": person.ticket_code}, device).status_code == 201

    def test_a_refusal_of_someone_checked_in_is_no_conflict(self, app, client, device, make_attendee):
        person = make_attendee()
        assert post(client, {"code": person.ticket_code, "gate": "door-2"}, device).status_code == 201
        answer = post(client, {"code": person.ticket_code, "offline_result": "already_checked_in"}, device)
        assert (answer.status_code, answer.json["result"], answer.json["gate"]) == (409, "already_checked_in",
                                                                                    "door-2")
        assert "conflict" not in answer.json and len(checkins_of(app, person.id)) == 1
        assert [s.conflict for s in scans(app)] == [None, None]

    @pytest.mark.parametrize("decision", ["unknown_code", "not_admitted", "already_checked_in"])
    def test_a_refusal_of_someone_without_a_ticket_is_no_conflict(self, app, client, device, make_registrant,
                                                                  decision):
        waiting = make_registrant(attend_closing=False)
        answer = post(client, {"registrant_id": waiting.id, "offline_result": decision}, device)
        assert (answer.status_code, answer.json["reason"]) == (403, "no_ticket") and "conflict" not in answer.json
        unknown = post(client, {"code": "A" * 26, "offline_result": decision}, device)
        assert unknown.json == {"result": "unknown_code"}
        assert [s.conflict for s in scans(app)] == [None, None]


class TestConflicts:
    def test_admitted_twice(self, app, client, make_device, make_attendee):
        person = make_attendee()
        first = post(client, {"code": person.ticket_code, "gate": "door-1", "offline_result": "ok",
                              "scanned_at": "2023-08-25T09:50:00+09:00"}, make_device("door-1"))
        second = post(client, {"code": person.ticket_code, "gate": "door-2", "offline_result": "ok",
                               "scanned_at": "2023-08-25T09:40:00+09:00"}, make_device("door-2"))
        assert first.status_code == 201 and "conflict" not in first.json
        assert (second.status_code, second.json["result"], second.json["conflict"]) == (
            409, "already_checked_in", "admitted_twice")
        # Both recorded; the first to reach the server stays the admission, with its own door time.
        assert second.json["gate"] == "door-1" and second.json["checked_in_at"] == "2023-08-25T09:50:00+09:00"
        (checkin,) = checkins_of(app, person.id)
        assert (checkin.gate, checkin.at) == ("door-1", jst(2023, 8, 25, 9, 50))
        assert [(s.gate, s.at, s.conflict) for s in scans(app)] == [
            ("door-1", jst(2023, 8, 25, 9, 50), None), ("door-2", jst(2023, 8, 25, 9, 40), "admitted_twice")]

    def test_admitted_without_ticket(self, app, client, device, make_attendee, make_registrant):
        cancelled, waiting = make_attendee(), make_registrant(attend_closing=False)
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, cancelled.id), notify=False)
            db.session.commit()
        answers = [post(client, {"code": cancelled.ticket_code, "offline_result": "ok"}, device),
                   post(client, {"registrant_id": waiting.id, "offline_result": "ok"}, device),
                   post(client, {"code": "B" * 26, "offline_result": "ok"}, device),
                   post(client, {"code": "not a code", "offline_result": "ok"}, device)]
        assert [(a.status_code, a.json.get("reason"), a.json["conflict"]) for a in answers] == [
            (403, "cancelled", "admitted_without_ticket"), (403, "no_ticket", "admitted_without_ticket"),
            (404, None, "admitted_without_ticket"), (404, None, "admitted_without_ticket")]
        assert answers[3].json["problem"]["kind"] == "too_short"
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(CheckIn)) == 0
        assert [s.conflict for s in scans(app)] == ["admitted_without_ticket"] * 4

    def test_the_console_lists_them(self, app, client, device, make_attendee):
        from registration.services import door_conflicts
        person = make_attendee()
        post(client, {"code": person.ticket_code, "offline_result": "unknown_code"}, device)
        with app.app_context():
            (conflict,) = door_conflicts.open_conflicts()
        assert (conflict["kind"], conflict["registrant_id"], conflict["admission"]) == (
            "refused_with_ticket", person.id, None)
        assert conflict["scan"]["offline_result"] == "unknown_code"


class TestReplay:
    def test_a_retry_after_deciding_offline_marks_the_scan_once(self, app, client, make_device, make_attendee):
        person = make_attendee()
        assert post(client, {"code": person.ticket_code, "gate": "door-2"}, make_device("door-2")).status_code == 201
        door = make_device("door-1")
        # The first attempt reached the server, but its answer never reached the door, which admitted offline.
        first = post(client, {"code": person.ticket_code, "nonce": "n-1"}, door)
        assert (first.status_code, first.json.get("conflict")) == (409, None)
        retries = [post(client, {"code": person.ticket_code, "nonce": "n-1", "offline_result": decision,
                                 "scanned_at": "2023-08-25T09:00:00+09:00"}, door)
                   for decision in ("ok", "ok", "not_admitted")]
        for retry in retries:
            assert (retry.status_code, retry.json) == (409, {**first.json, "conflict": "admitted_twice"})
        stored = scans(app)
        assert len(stored) == 2
        # Marked with the first decision the door sent; its time is still the one the server first recorded.
        assert (stored[1].offline_result, stored[1].conflict, stored[1].at) == ("ok", "admitted_twice", NOW)

    def test_a_retry_of_an_admission_decided_ok_offline_is_no_conflict(self, app, client, device, make_attendee):
        person = make_attendee()
        first = post(client, {"code": person.ticket_code, "nonce": "n-2"}, device)
        retry = post(client, {"code": person.ticket_code, "nonce": "n-2", "offline_result": "ok"}, device)
        assert (retry.status_code, retry.json) == (201, first.json)
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == ("ok", None)

    def test_a_retry_of_an_admission_the_door_refused_offline(self, app, client, device, make_attendee):
        person = make_attendee()
        post(client, {"code": person.ticket_code, "nonce": "n-3"}, device)
        retry = post(client, {"code": person.ticket_code, "nonce": "n-3", "offline_result": "unknown_code"}, device)
        assert (retry.status_code, retry.json["conflict"]) == (201, "refused_with_ticket")
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == ("unknown_code", "refused_with_ticket")
        # The check-in the first attempt made stands (another door may have let the person in on it since): the
        # conflict shows the case, for staff to undo at the console if the person is not inside.
        (checkin,) = checkins_of(app, person.id)
        assert checkin.undone_at is None
        again = post(client, {"code": person.ticket_code, "nonce": "n-3", "offline_result": "not_admitted"}, device)
        assert again.json["conflict"] == "refused_with_ticket"

    def test_an_amber_decision_about_the_attempts_own_check_in_is_no_conflict(self, app, client, device,
                                                                              make_attendee):
        # The answer came late; the door's copy had meanwhile learnt of the check-in this attempt made, so it
        # said "already checked in": the person is inside, rightly.
        person = make_attendee()
        post(client, {"code": person.ticket_code, "nonce": "n-6"}, device)
        retry = post(client, {"code": person.ticket_code, "nonce": "n-6", "offline_result": "already_checked_in"},
                     device)
        assert retry.status_code == 201 and "conflict" not in retry.json
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == ("already_checked_in", None)
        assert [c.undone_at for c in checkins_of(app, person.id)] == [None]

    def test_a_retry_under_another_staff_session_finds_its_first_answer(self, app, make_attendee, make_staff):
        # A queue kept on a phone through a sign-out is sent under the next staff member's session.
        from registration.services import checkins
        from registration.services.staff import find_staff
        person = make_attendee()
        names = [make_staff("door")[0] for _ in range(2)]
        with app.app_context():
            first_id, next_id = (find_staff(name).id for name in names)
            first = checkins.check_in(code=person.ticket_code, gate="door-1", staff_id=first_id, nonce="n-7")
            db.session.commit()
            with pytest.raises(checkins.NonceAnswered):
                checkins.check_in(code=person.ticket_code, gate="door-1", staff_id=next_id, nonce="n-7",
                                  offline_result="ok")
            db.session.rollback()
            retry = checkins.replay(nonce="n-7", code=person.ticket_code, staff_id=next_id, offline_result="ok")
            db.session.commit()
            # No staff member and no device at all is not a staff session: nobody's answer.
            nobody = checkins.replay(nonce="n-7", code=person.ticket_code)
        assert (retry.status, retry.body) == (first.status, first.body)
        assert nobody == checkins.Answer(422, {"result": "nonce_reused"})
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict, scan.staff_id) == ("ok", None, first_id)

    def test_a_retry_of_a_scan_sent_offline_the_first_time_changes_nothing(self, app, client, device,
                                                                          make_attendee):
        person = make_attendee()
        first = post(client, {"code": person.ticket_code, "nonce": "n-4", "offline_result": "unknown_code"}, device)
        retry = post(client, {"code": person.ticket_code, "nonce": "n-4", "offline_result": "ok"}, device)
        assert (retry.status_code, retry.json) == (first.status_code, first.json)
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == ("unknown_code", "refused_with_ticket")
        assert checkins_of(app, person.id) == []

    def test_a_retry_from_another_device_marks_nothing(self, app, client, make_device, make_attendee):
        person = make_attendee()
        post(client, {"code": person.ticket_code, "nonce": "n-5"}, make_device("door-1"))
        other = post(client, {"code": person.ticket_code, "nonce": "n-5", "offline_result": "not_admitted"},
                     make_device("door-2"))
        assert (other.status_code, other.json) == (422, {"result": "nonce_reused"})
        (scan,) = scans(app)
        assert (scan.offline_result, scan.conflict) == (None, None)


def test_two_devices_queued_admissions_of_one_ticket_through_two_processes(live_server, database_url, make_device,
                                                                            make_attendee, frozen_clock):
    """Two door pages admitted the same ticket offline; when the network comes back both queues drain at the same
    moment, each through its own server process: one check-in, one admitted_twice conflict, per ticket."""
    door_1, door_2 = live_server(workers=1), live_server(workers=1)
    devices = [(door_1, make_device("door-1"), "door-1"), (door_2, make_device("door-2"), "door-2")]
    people = [make_attendee() for _ in range(12)]
    answers: list[tuple[int, dict]] = []
    for n, person in enumerate(people):
        start = threading.Barrier(2)

        def send(server, headers, gate, n=n, person=person):
            start.wait()
            answers.append(_json_post(server.url + CHECKINS, {
                "code": person.ticket_code, "gate": gate, "nonce": f"{gate}-{n}", "offline_result": "ok",
                "scanned_at": "2023-08-25T09:30:00+09:00"}, headers))

        threads = [threading.Thread(target=send, args=device) for device in devices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    errors = door_1.errors() + door_2.errors()
    assert sorted(status for status, _ in answers) == [201] * 12 + [409] * 12, errors
    assert sorted(body.get("conflict", "") for _, body in answers) == [""] * 12 + ["admitted_twice"] * 12
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            per_person = conn.execute(text(
                "SELECT r.id, (SELECT count(*) FROM checkins c WHERE c.registrant_id = r.id), "
                "(SELECT count(*) FROM scans s WHERE s.registrant_id = r.id AND s.conflict = 'admitted_twice'), "
                "(SELECT count(*) FROM scans s WHERE s.registrant_id = r.id) FROM registrants r ORDER BY r.id")).all()
    finally:
        engine.dispose()
    assert [tuple(row)[1:] for row in per_person] == [(1, 1, 2)] * 12
