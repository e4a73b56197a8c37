"""Seats, tickets and admission, at the service level and through the API."""

from contextlib import contextmanager
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, event, func, select, text

from registration import clock, formatting
from registration.errors import SeatError
from registration.extensions import db
from registration.models import CheckIn, OutboxMessage, Registrant, Scan
from registration.services import checkins, registrations, seats
from registration.tickets import TICKET_CODE, qr_code
from tests.conftest import jst


def _details_of(person) -> registrations.Details:
    return registrations.Details(
        family_name=person.family_name, given_name=person.given_name, email=person.email,
        organization=person.organization, family_name_kana=person.family_name_kana,
        given_name_kana=person.given_name_kana, job_title=person.job_title, attend_closing=person.attend_closing)


def scan(**values) -> checkins.Answer:
    """One scan as the API handles it: its own unit of work, a replayed nonce answered from the record."""
    try:
        answer = checkins.check_in(**values)
    except checkins.NonceAnswered:
        db.session.rollback()
        answer = checkins.replay(**{name: values.get(name)
                                    for name in ("nonce", "code", "registrant_id", "staff_id", "device_id")})
    db.session.commit()
    return answer


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def admit_elsewhere(registrant_id: int) -> tuple:
    """Door 1's check-in, as another process would write it."""
    return (text("INSERT INTO checkins (registrant_id, at, received_at, gate) "
                 "VALUES (:id, :at, :at, 'door-1')"),
            {"id": registrant_id, "at": clock.now()})


@contextmanager
def meanwhile(database_url: str, after: dict):
    """Right after this app's first statement containing each marker, commit that SQL on another connection."""
    elsewhere = create_engine(database_url)
    pending = dict(after)

    def interleave(conn, cursor, statement, *args):
        for marker in [m for m in pending if m in statement]:
            with elsewhere.begin() as other:
                other.execute(*pending.pop(marker))

    event.listen(db.engine, "after_cursor_execute", interleave)
    try:
        yield
    finally:
        event.remove(db.engine, "after_cursor_execute", interleave)
        elsewhere.dispose()
    assert not pending, f"never ran: {list(pending)}"


@pytest.fixture
def small_venue(make_app):
    return make_app(CLOSING_CAPACITY=2)


class TestSeats:
    def test_seats_then_a_numbered_waiting_list(self, small_venue, make_details):
        with small_venue.app_context():
            people = [registrations.register(make_details(attend_closing=True), locale="ja").registrant
                      for _ in range(4)]
            db.session.commit()
            assert [p.seat_status for p in people] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
            assert [seats.waitlist_position(p) for p in people] == [None, None, 1, 2]
            assert all(TICKET_CODE.fullmatch(p.ticket_code) for p in people[:2])
            assert people[2].ticket_code is None

    def test_cancellation_promotes_the_first_waiting_with_a_ticket_mail(self, small_venue, make_details):
        with small_venue.app_context():
            people = [registrations.register(make_details(attend_closing=True), locale="ja").registrant
                      for _ in range(4)]
            db.session.commit()
            old_code = people[0].ticket_code
            registrations.cancel(people[0])
            db.session.commit()
            assert people[2].seat_status == "confirmed" and people[2].ticket_code
            assert seats.waitlist_position(people[3]) == 1
            promotion = db.session.scalars(select(OutboxMessage).where(
                OutboxMessage.recipient == people[2].email).order_by(OutboxMessage.id.desc())).first()
            assert b"ticket-qr" in promotion.message and b"text/calendar" in promotion.message
            assert db.session.scalar(select(Registrant).where(Registrant.ticket_code == old_code)) is None

    def test_giving_up_attendance_frees_the_seat(self, small_venue, make_details):
        with small_venue.app_context():
            a, b, c = (registrations.register(make_details(attend_closing=True), locale="ja").registrant
                       for _ in range(3))
            registrations.update(a, make_details(email=a.email, attend_closing=False), locale="ja")
            db.session.commit()
            assert (a.seat_status, c.seat_status) == ("none", "confirmed")

    def test_after_the_deadline_promotion_is_by_hand(self, small_venue, make_details, frozen_clock):
        with small_venue.app_context():
            a, b, c = (registrations.register(make_details(attend_closing=True), locale="ja").registrant
                       for _ in range(3))
            db.session.commit()
            frozen_clock(jst(2023, 9, 14, 10))
            registrations.cancel(a)
            assert c.seat_status == "waitlisted"
            seats.promote(c)
            assert c.seat_status == "confirmed"
            with pytest.raises(SeatError) as excinfo:
                seats.promote(c)
            assert excinfo.value.code == "not_waitlisted"

    def test_rotation_makes_the_old_code_answer_replaced(self, app_ctx, make_details, make_staff):
        from registration.services.staff import find_staff
        admin = make_staff("admin")[0]
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        old = person.ticket_code
        registrations.rotate_ticket(person, by=find_staff(admin))
        new = person.ticket_code
        assert new != old
        refused = checkins.check_in(code=old, gate="door-1")
        assert (refused.status, refused.body["result"], refused.body["reason"]) == (403, "not_admitted", "replaced")
        assert checkins.check_in(code=new, gate="door-1").body["result"] == "ok"
        assert seats.invariant_problems() == []


class TestTicket:
    def test_code_is_random_short_and_fits_a_small_qr(self):
        from registration.tickets import new_ticket_code
        codes = {new_ticket_code() for _ in range(1000)}
        assert len(codes) == 1000
        for code in list(codes)[:50]:
            assert len(code) == 26  # 130 bits of base32 holding 128 random bits
            qr = qr_code(code)
            assert qr.version <= 3 and qr.error_correction == 0  # qrcode's ERROR_CORRECT_M is 0

    def test_qr_decodes_to_exactly_the_code(self, app, client, make_attendee):
        import io

        import zxingcpp
        from PIL import Image
        person = make_attendee()
        png = client.get(f"/me/{person.secret}/ticket.png")
        assert png.status_code == 200 and png.mimetype == "image/png"
        [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
        assert barcode.text == person.ticket_code

    def test_opening_the_ticket_checks_nobody_in(self, app, client, make_attendee):
        person = make_attendee()
        for path in ("", "/ticket", "/ticket.png", "/welcome"):
            assert client.get(f"/me/{person.secret}{path}").status_code == 200
        with app.app_context():
            assert count(CheckIn) == 0 and count(Scan) == 0

    def test_printable_ticket_shows_name_code_date_venue(self, client, make_attendee):
        person = make_attendee(given_name="<b>花子</b>")
        page = client.get(f"/me/{person.secret}/ticket").get_data(as_text=True)
        assert formatting.grouped_code(person.ticket_code) in page and "&lt;b&gt;花子&lt;/b&gt;" in page
        assert "2023年9月14日(木)" in page and "@docomo R&amp;D OPEN LAB ODAIBA" in page


@pytest.mark.usefixtures("app_ctx")
class TestCheckInService:
    def test_ok_then_already(self, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        first = checkins.check_in(code=person.ticket_code.lower() + " ", gate="door-1")
        assert first.status == 201 and first.body["attendee"]["name"] == person.full_name
        again = checkins.check_in(code=person.ticket_code, gate="door-2")
        assert again.status == 409
        assert again.body["gate"] == "door-1" and again.body["checked_in_at"].startswith("2023-08-25T10:00:00+09:00")
        db.session.commit()
        stored = db.session.scalars(select(CheckIn)).one()
        assert (stored.id, stored.gate, stored.undone_at) == (first.body["checkin_id"], "door-1", None)

    @pytest.mark.parametrize(("code", "problem"), [
        ("", ("too_short", 0, [])),
        ("nope", ("too_short", 4, [])),
        ("A" * 26, None),  # the shape of a code, but nobody's: nothing to say about it
        ("A" * 500, ("too_long", 500, [])),
        ("\x00" * 26, ("bad_characters", 26, ["\x00"])),
    ])
    def test_unknown_codes(self, code, problem):
        answer = checkins.check_in(code=code, gate="door-1")
        expected = {"result": "unknown_code"}
        if problem:
            kind, length, characters = problem
            expected["problem"] = {"kind": kind, "length": length, "expected_length": 26, "characters": characters}
        assert (answer.status, answer.body) == (404, expected)
        assert count(Scan, Scan.result == "unknown_code") == 1

    def test_a_code_typed_in_groups_lower_case_or_in_full_width_admits(self, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        code = person.ticket_code
        typed = f" {code[:4].lower()}-{code[4:8]}\u00a0{code[8:12]}\u3000{code[12:16]}.{code[16:20]}ー{code[20:]}\t\r\n"
        first = checkins.check_in(code=typed, gate="door-1")
        assert first.status == 201 and first.body["attendee"]["name"] == person.full_name
        wide = " ".join(code[i:i + 4] for i in range(0, 26, 4)).translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
        assert checkins.check_in(code=wide, gate="door-2").status == 409
        # The scan record keeps the code itself, however it was typed.
        assert set(db.session.scalars(select(Scan.code))) == {code}

    def test_malformed_codes_say_why_and_admit_nobody(self, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        code = person.ticket_code
        short, long = checkins.check_in(code=code[:-1], gate="g"), checkins.check_in(code=code + "A", gate="g")
        wrong = checkins.check_in(code=code[:5] + "9" + code[6:], gate="g")
        assert (short.status, short.body["result"], long.status, wrong.status) == (404, "unknown_code", 404, 404)
        assert short.body["problem"] == {"kind": "too_short", "length": 25, "expected_length": 26, "characters": []}
        assert long.body["problem"]["kind"] == "too_long" and long.body["problem"]["length"] == 27
        assert wrong.body["problem"] == {"kind": "bad_characters", "length": 26, "expected_length": 26,
                                         "characters": ["9"]}
        assert count(CheckIn) == 0 and count(Scan, Scan.result == "unknown_code") == 3
        assert checkins.check_in(code=code, gate="g").status == 201

    def test_an_english_registrant_is_named_given_name_first(self, make_details):
        english = registrations.register(make_details(family_name="Smith", given_name="John", family_name_kana="",
                                                      given_name_kana="", attend_closing=True), locale="en").registrant
        japanese = registrations.register(make_details(family_name="山田", given_name="花子", attend_closing=True),
                                          locale="ja").registrant
        assert checkins.check_in(code=english.ticket_code, gate="g").body["attendee"]["name"] == "John Smith"
        assert checkins.check_in(registrant_id=english.id, gate="g").body["attendee"]["name"] == "John Smith"
        assert checkins.check_in(code=japanese.ticket_code, gate="g").body["attendee"]["name"] == "山田 花子"
        assert checkins.attendee_json(english)["name"] == english.name_in("en") == "John Smith"
        registrations.cancel(english)
        refused = checkins.check_in(registrant_id=english.id, gate="g")
        assert (refused.body["reason"], refused.body["attendee"]["name"]) == ("cancelled", "John Smith")

    def test_refusals_carry_the_reason(self, make_app, make_details):
        with make_app(CLOSING_CAPACITY=1).app_context():
            seated = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            no_seat = registrations.register(make_details(attend_closing=False), locale="ja").registrant
            assert checkins.check_in(registrant_id=waiting.id, gate="g").body["reason"] == "waitlisted"
            assert checkins.check_in(registrant_id=no_seat.id, gate="g").body["reason"] == "no_ticket"
            code = seated.ticket_code
            registrations.cancel(seated)
            # Cancelling frees the seat (the waiting person gets it) and retires the code: the door says why.
            refused = checkins.check_in(code=code, gate="g")
            assert (refused.status, refused.body["reason"]) == (403, "cancelled")
            assert refused.body["attendee"]["name"] == seated.full_name
            assert checkins.check_in(registrant_id=seated.id, gate="g").body["reason"] == "cancelled"
            assert checkins.check_in(code=waiting.ticket_code, gate="g").status == 201
            # Unticking the closing event: no_ticket. Ticking it again gives a new code (the seat is free).
            old_code = waiting.ticket_code
            registrations.update(waiting, replace(_details_of(waiting), attend_closing=False), locale="ja")
            assert checkins.check_in(code=old_code, gate="g").body["reason"] == "no_ticket"
            registrations.update(waiting, replace(_details_of(waiting), attend_closing=True), locale="ja")
            assert waiting.seat_status == "confirmed"
            # The old code now belongs to someone who holds a newer one.
            assert checkins.check_in(code=old_code, gate="g").body["reason"] == "replaced"
            assert checkins.check_in(code="A" * 26, gate="g").body == {"result": "unknown_code"}
            assert seats.invariant_problems() == []

    def test_retry_with_the_same_nonce_gets_the_first_answer(self, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        first = scan(code=person.ticket_code, gate="door-1", nonce="n-1")
        retry = scan(code=person.ticket_code.lower(), gate="door-1", nonce="n-1")
        assert retry == first and retry.status == 201
        assert count(Scan) == 1 and count(CheckIn) == 1

    def test_a_nonce_answers_only_for_its_own_scan(self, make_details, make_staff):
        from registration.services.staff import find_staff
        first, second = (registrations.register(make_details(attend_closing=True), locale="ja").registrant
                         for _ in range(2))
        db.session.commit()
        staff_id = find_staff(make_staff("door")[0]).id
        assert scan(code=first.ticket_code, gate="door-1", nonce="n-1", staff_id=staff_id).status == 201
        # Another code, another person, another staff member or device: never the first person's admission.
        for other in ({"code": second.ticket_code, "staff_id": staff_id}, {"registrant_id": second.id, "staff_id": staff_id},
                      {"code": first.ticket_code, "staff_id": None}, {"code": "nope", "staff_id": staff_id}):
            assert (scan(gate="door-1", nonce="n-1", **other)) == checkins.Answer(422, {"result": "nonce_reused"})
        assert count(Scan) == 1 and count(CheckIn) == 1

    def test_a_retry_changes_nothing_even_after_an_undo(self, make_details, make_staff):
        from registration.services.staff import find_staff
        name, _ = make_staff("door")
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        first = checkins.check_in(code=person.ticket_code, gate="door-1", nonce="n-1")
        checkins.undo(first.body["checkin_id"], staff_id=find_staff(name).id)
        db.session.commit()
        # The retry would admit again, but its nonce is taken: that attempt is rolled back, the first answer given.
        retry = scan(code=person.ticket_code, gate="door-2", nonce="n-1")
        assert retry == first
        assert count(Scan) == 1 and count(CheckIn) == 1 and checkins.stats()["checked_in"] == 0

    def test_another_door_admitting_between_look_and_insert_wins(self, database_url, make_details, make_staff):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        with meanwhile(database_url, {"FROM tickets": admit_elsewhere(person.id)}):
            answer = checkins.check_in(code=person.ticket_code, gate="door-2")
        assert (answer.status, answer.body["gate"]) == (409, "door-1")
        assert count(CheckIn) == 1 and count(Scan) == 1

    def test_a_check_in_undone_before_this_doors_insert_is_not_in_its_way(self, database_url, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        admitted_and_undone = (text("INSERT INTO checkins (registrant_id, at, received_at, gate, undone_at) "
                                    "VALUES (:id, :at, :at, 'door-1', :at)"), {"id": person.id, "at": clock.now()})
        with meanwhile(database_url, {"FROM tickets": admitted_and_undone}):
            answer = checkins.check_in(code=person.ticket_code, gate="door-2")
        assert (answer.status, answer.body["gate"]) == (201, "door-2")
        assert count(CheckIn) == 2 and checkins.stats()["checked_in"] == 1

    def test_only_an_admission_waits_for_the_disk_on_postgresql(self, database_url, make_details):
        if not database_url.startswith("postgresql"):
            pytest.skip("SQLite has no per-transaction synchronous commit")
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()

        def synchronous_commit_after(code: str) -> str:
            checkins.check_in(code=code, gate="door-1")
            setting = db.session.execute(text("SHOW synchronous_commit")).scalar()
            db.session.commit()
            return setting

        assert [synchronous_commit_after(code) for code in (person.ticket_code, person.ticket_code, "nope")] == [
            "on", "off", "off"]
        assert db.session.execute(text("SHOW synchronous_commit")).scalar() == "on"  # SET LOCAL ends with its transaction
        assert count(Scan) == 3 and count(CheckIn) == 1

    def test_the_manual_button_gets_the_same_answers(self, make_details):
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        first = checkins.check_in(registrant_id=person.id, gate="door-1")
        assert first.status == 201 and first.body["attendee"]["name"] == person.full_name
        assert checkins.check_in(code=person.ticket_code, gate="door-2").body["gate"] == "door-1"
        assert checkins.check_in(registrant_id=10**9, gate="door-1").body == {"result": "unknown_code"}

    def test_undo_then_admit_again(self, make_details, make_staff):
        from registration.services.staff import find_staff
        name, _ = make_staff("door")
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        first = checkins.check_in(code=person.ticket_code, gate="door-1")
        checkins.undo(first.body["checkin_id"], staff_id=find_staff(name).id)
        assert checkins.check_in(code=person.ticket_code, gate="door-1").status == 201
        assert checkins.stats()["checked_in"] == 1


def test_admin_sees_how_fast_the_door_is(app, client, make_attendee, make_device, make_staff):
    headers = make_device()
    for latency in (120, 80, 300, None):
        person = make_attendee()
        body = {"code": person.ticket_code, **({"previous_latency_ms": latency} if latency is not None else {})}
        client.post("/api/v1/checkins", json=body, headers=headers)
    name, password = make_staff("admin")
    client.post("/login", data={"name": name, "password": password})
    import re
    speed = re.search(r'data-testid="door-speed">(.*?)</dd>', client.get("/admin").get_data(as_text=True), re.S)
    assert [int(n) for n in re.findall(r"\d+", speed.group(1)) if n != "95"] == [120, 300, 3]  # median, p95, count


@pytest.mark.usefixtures("app_ctx")
class TestDirectStatementErrors:
    """The scan's statements run on the DBAPI cursor, but their errors are SQLAlchemy's, as for any other query."""

    def test_a_database_error_comes_back_wrapped(self, database_url, make_details):
        from sqlalchemy.exc import DBAPIError
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        if database_url.startswith("sqlite"):
            # A trigger on this connection only (SQLite's DDL is not undone by a rollback).
            db.session.execute(text("CREATE TEMP TRIGGER refuse_scans BEFORE INSERT ON scans "
                                    "BEGIN SELECT RAISE(ABORT, 'scans refused by the test'); END"))
        else:
            db.session.execute(text("DROP TABLE scans"))  # PostgreSQL's DDL is transactional: rolled back below
        with pytest.raises(DBAPIError) as caught:
            checkins.check_in(code=person.ticket_code, gate="door-1")
        assert "scans" in str(caught.value.orig) and not caught.value.connection_invalidated
        db.session.rollback()
        if database_url.startswith("sqlite"):
            db.session.execute(text("DROP TRIGGER refuse_scans"))
        assert scan(code=person.ticket_code, gate="door-1").status == 201

    def test_a_dropped_connection_is_replaced(self, database_url, make_details):
        if not database_url.startswith("postgresql"):
            pytest.skip("a SQLite file has no server connection to drop")
        from sqlalchemy.exc import OperationalError
        person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        db.session.commit()
        backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        db.session.commit()
        other = create_engine(database_url.replace("postgresql+psycopg", "postgresql+psycopg"))
        with other.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        other.dispose()
        with pytest.raises(OperationalError) as caught:
            checkins.check_in(code=person.ticket_code, gate="door-1")
        assert caught.value.connection_invalidated
        db.session.rollback()
        # The pool gave up the dead connection: the door's retry is answered.
        assert scan(code=person.ticket_code, gate="door-1").status == 201
