"""Seat transitions that meet at the same moment: forced interleavings of every pair that touches one person,
and bursts through two gunicorn servers of two workers each on one database. After each, every seat invariant holds and nobody is mailed twice."""

from collections import Counter
from contextlib import contextmanager
from dataclasses import replace

import pytest
from sqlalchemy import event, func, select

from registration.errors import RegistrationError, SeatError
from registration.extensions import db
from registration.models import AuditEntry, LinkRequest, OutboxMessage, Registrant, SeatCounter
from registration.services import checkins, registrations, seats
from registration.services.staff import find_staff
from tests.conftest import Browserless, at_once, jst, run_flask

OPEN = jst(2023, 8, 25, 10)
CLOSED = jst(2023, 9, 14, 11)


def details_of(person: Registrant, **changes) -> registrations.Details:
    """The person's details as their personal page would send them back."""
    return replace(registrations.Details(
        family_name=person.family_name, given_name=person.given_name, email=person.email,
        organization=person.organization, family_name_kana=person.family_name_kana,
        given_name_kana=person.given_name_kana, job_title=person.job_title,
        attend_closing=person.attend_closing), **changes)


def mails_to(email: str) -> Counter:
    """Subjects of the mails queued for an address, counted."""
    return Counter(db.session.scalars(select(OutboxMessage.subject).where(OutboxMessage.recipient == email)))


def assert_invariants() -> None:
    assert seats.invariant_problems() == []


# --- forced interleavings ------------------------------------------------------------------------------------

@contextmanager
def meanwhile(other_app, transition, *, marker: str = "UPDATE seat_counters", when: str = "before"):
    """This request has loaded the person; just before (or after) its first statement containing `marker` (by
    default: just before it takes the seat lock), another request with its own app, engine and connection runs
    `transition` to its commit. This request then goes on, and must decide on the row as it is."""
    ran = []

    def interleave(conn, cursor, statement, *args):
        if not ran and marker in statement:
            ran.append(True)
            with other_app.app_context():
                try:
                    transition()
                    db.session.commit()
                except (RegistrationError, SeatError):
                    db.session.rollback()

    event.listen(db.engine, f"{when}_cursor_execute", interleave)
    try:
        yield
    finally:
        event.remove(db.engine, f"{when}_cursor_execute", interleave)
    assert ran, "the other request never ran"


def _person(email: str) -> Registrant:
    # The newest registration of the address: registering again after a cancellation adds one beside the old.
    return db.session.scalar(select(Registrant).where(Registrant.email == email).order_by(Registrant.id.desc()))


def _transition(name: str, email: str, admin: str):
    """A seat transition of the person with this address, as a fresh request would make it."""

    def run():
        person = _person(email)
        at = CLOSED if name in AFTER_THE_DEADLINE else OPEN
        if name == "cancel":
            registrations.cancel(person, at=at)
        elif name == "tick":
            registrations.update(person, details_of(person, attend_closing=True), locale="ja", at=at)
        elif name == "untick":
            registrations.update(person, details_of(person, attend_closing=False), locale="ja", at=at)
        elif name == "promote":
            registrations.promote(person, by=find_staff(admin), at=at)
        elif name == "rotate":
            registrations.rotate_ticket(person, by=find_staff(admin), at=at)
        elif name == "reregister":
            registrations.register(details_of(person, attend_closing=True), locale="ja", at=at)
        elif name == "cancel_other":  # someone else gives up their seat: the automatic promotion
            registrations.cancel(_person("holder@example.jp"), at=at)
        elif name == "walk_in":
            registrations.register_walk_in(details_of(person), by=find_staff(admin), locale="ja", at=at)
        elif name == "check_in":
            checkins.check_in(code=person.ticket_code or "", gate="door-1", at=at)
        else:
            raise AssertionError(name)

    return run


#: (first state of the person, the other request, this request)
PAIRS = [
    ("confirmed", "cancel", "cancel"),
    ("confirmed", "untick", "untick"),
    ("confirmed", "cancel", "untick"),
    ("confirmed", "untick", "cancel"),
    ("none", "tick", "tick"),
    ("none", "cancel", "tick"),
    ("none", "tick", "cancel"),
    ("waitlisted", "cancel", "promote"),
    ("waitlisted", "promote", "cancel"),
    ("waitlisted", "promote", "promote"),
    ("waitlisted", "cancel_other", "promote"),
    ("waitlisted", "promote", "cancel_other"),
    ("waitlisted", "untick", "promote"),
    ("confirmed", "rotate", "rotate"),
    ("confirmed", "cancel", "rotate"),
    ("confirmed", "rotate", "cancel"),
    ("confirmed", "check_in", "cancel"),
    ("confirmed", "cancel", "check_in"),
    ("cancelled", "reregister", "reregister"),
    ("cancelled", "walk_in", "walk_in"),
    ("confirmed", "rotate", "check_in"),
    ("waitlisted", "cancel_other", "rotate"),
    ("waitlisted", "rotate", "cancel_other"),
]
#: Admins act after the deadline: promotion is by hand then, and walk-ins are registered at the door.
AFTER_THE_DEADLINE = ("promote", "rotate", "walk_in")


@pytest.mark.parametrize(("state", "other", "this"), PAIRS, ids=[f"{s}-{o}-then-{t}" for s, o, t in PAIRS])
def test_two_transitions_of_one_person_meet(make_app, make_details, make_staff, frozen_clock, state, other, this):
    # Capacity 2: a seat holder, the person, and one more waiting behind them when the person waits.
    app = make_app(CLOSING_CAPACITY=2)
    other_app = make_app(CLOSING_CAPACITY=2)
    admin = make_staff("admin")[0]
    with app.app_context():
        registrations.register(make_details(email="holder@example.jp", attend_closing=True), locale="ja", at=OPEN)
        if state == "waitlisted":
            registrations.register(make_details(email="second@example.jp", attend_closing=True), locale="ja", at=OPEN)
        registrations.register(make_details(email="person@example.jp", attend_closing=state != "none"),
                               locale="ja", at=OPEN)
        # Someone waits behind the person, except for walk-ins, which need a free seat after the deadline.
        registrations.register(make_details(email="behind@example.jp", attend_closing="walk_in" not in (other, this)),
                               locale="ja", at=OPEN)
        if state == "cancelled":
            registrations.cancel(_person("person@example.jp"), at=OPEN)
        if state == "waitlisted" and "cancel_other" not in (other, this):
            # A seat is free for an admin to give: freed after the deadline, so nobody was promoted automatically.
            registrations.cancel(_person("second@example.jp"), at=CLOSED)
        db.session.commit()
        assert _person("person@example.jp").seat_status == ("none" if state == "cancelled" else state)
        before = all_mails()

        frozen_clock(CLOSED if this in AFTER_THE_DEADLINE else OPEN)
        # A scan has no seat lock: the other request commits between the scan's look-up and its admission.
        where = {"marker": "FROM tickets", "when": "after"} if this == "check_in" else {}
        if this == "reregister":
            # A registration writes its row before it takes the seat lock: the other one commits just before that.
            where = {"marker": "INSERT INTO registrants"}
        with meanwhile(other_app, _transition(other, "person@example.jp", admin), **where):
            try:
                _transition(this, "person@example.jp", admin)()
                db.session.commit()
            except (RegistrationError, SeatError):
                db.session.rollback()

        assert_invariants()
        person = _person("person@example.jp")
        mailed = all_mails() - before
        # Whatever the order, each thing happened once: nobody got the same mail twice (two rotations are two).
        assert other == this == "rotate" or all(n == 1 for n in mailed.values()), (mailed, person.seat_status)
        subjects = Counter(subject for (email, subject) in mailed.elements() if email == person.email)
        if other == this and this in ("cancel", "tick"):
            assert sum(subjects.values()) == 1
        if other == this == "reregister":
            # One new registration with its confirmation; the other submission only asked for the link.
            assert sum(subjects.values()) == 1 and not person.is_cancelled
            assert db.session.scalar(select(func.count()).select_from(LinkRequest)) == 1
            assert db.session.scalar(select(func.count()).where(Registrant.email == person.email)) == 2
        if other == this == "untick" or {other, this} == {"cancel", "untick"}:
            assert _person("behind@example.jp").seat_status == "confirmed"
        if "cancel" in (other, this) and {other, this} & {"untick", "tick", "promote", "rotate"}:
            assert person.is_cancelled and person.seat_status == "none" and person.ticket_code is None
        if other == this == "walk_in":
            assert person.on_site and person.seat_status == "confirmed" and sum(subjects.values()) == 1
        if other == this == "promote":
            assert person.seat_status == "confirmed" and sum(subjects.values()) == 1


def all_mails() -> Counter:
    """(recipient, subject) of every queued mail, counted."""
    return Counter(tuple(row) for row in db.session.execute(select(OutboxMessage.recipient, OutboxMessage.subject)))


# --- bursts through gunicorn -----------------------------------------------------------------------------------

def two_servers(live_server, **env) -> list:
    """Two gunicorn servers of two workers each on one database, as two hosts behind a load balancer."""
    return [live_server(workers=2, **env), live_server(workers=2, **env)]


def tab(server, path: str) -> tuple[Browserless, str]:
    """A browser tab with the page loaded: the visitor and the CSRF token of its forms."""
    visitor = Browserless(server.url)
    return visitor, visitor.csrf_token(path)


def signed_in_admin(server, name: str, password: str) -> tuple[Browserless, str]:
    visitor, token = tab(server, "/login")
    assert visitor.post("/login", {"name": name, "password": password, "csrf_token": token}) == 303
    return visitor, visitor.csrf_token("/admin")


@pytest.fixture
def seated(make_app, make_details):
    """Register people through the services (capacity 2); returns a function taking the attend flags."""

    def build(*attend: bool, capacity: int = 2) -> tuple[object, list[Registrant]]:
        app = make_app(CLOSING_CAPACITY=capacity)
        with app.app_context():
            people = [registrations.register(make_details(email=f"p{n}@example.jp", attend_closing=flag),
                                             locale="ja", at=OPEN).registrant for n, flag in enumerate(attend)]
            db.session.commit()
            for person in people:
                db.session.refresh(person)
                db.session.expunge(person)
        return app, people

    return build


def check_with_the_cli(server, capacity: int) -> None:
    result = run_flask({**server.env, "CLOSING_CAPACITY": str(capacity)}, "seats", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_ten_taps_on_cancel_promote_one_person(live_server, seated):
    app, (a, b, c, d, e) = seated(True, True, True, True, True)
    servers = two_servers(live_server, CLOSING_CAPACITY="2")
    server = servers[0]
    tabs = [tab(servers[n % 2], f"/me/{a.secret}/cancel") for n in range(10)]
    statuses = at_once([lambda v=v, t=t: v.post(f"/me/{a.secret}/cancel", {"csrf_token": t}) for v, t in tabs])

    assert statuses == [303] * 10, servers[0].errors()[-3000:] + servers[1].errors()[-3000:]
    with app.app_context():
        assert_invariants()
        people = {p.email: p for p in db.session.scalars(select(Registrant))}
        assert [people[x.email].seat_status for x in (a, b, c, d, e)] == [
            "none", "confirmed", "confirmed", "waitlisted", "waitlisted"]
        assert sum(mails_to(a.email).values()) == 2  # registered, then cancelled once
        assert sum(mails_to(c.email).values()) == 2  # registered, then promoted once
        assert sum(mails_to(d.email).values()) == 1 and db.session.get(SeatCounter, "closing").taken == 2
    check_with_the_cli(server, 2)


def test_eight_tabs_ticking_the_closing_event_give_one_seat(live_server, seated):
    app, (person,) = seated(False, capacity=4)
    servers = two_servers(live_server, CLOSING_CAPACITY="4")
    server = servers[0]
    fields = {"family_name": person.family_name, "given_name": person.given_name, "email": person.email,
              "organization": person.organization, "family_name_kana": person.family_name_kana,
              "given_name_kana": person.given_name_kana, "job_title": person.job_title, "attend_closing": "y"}
    tabs = [tab(servers[n % 2], f"/me/{person.secret}") for n in range(8)]
    statuses = at_once([lambda v=v, t=t: v.post(f"/me/{person.secret}", {**fields, "csrf_token": t})
                        for v, t in tabs])

    assert statuses == [303] * 8, server.errors()[-3000:]
    with app.app_context():
        assert_invariants()
        stored = db.session.scalar(select(Registrant))
        assert stored.seat_status == "confirmed" and stored.ticket_code
        assert db.session.get(SeatCounter, "closing").taken == 1
        assert sum(mails_to(person.email).values()) == 2  # registered, then the one seat mail with the ticket
    check_with_the_cli(server, 4)


def test_cancel_admin_promote_and_automatic_promotion_at_once(live_server, seated, make_staff):
    app, (a, b, c, d) = seated(True, True, True, True)
    admin, password = make_staff("admin")
    servers = two_servers(live_server, CLOSING_CAPACITY="2")
    server = servers[0]
    holder_tab = tab(servers[0], f"/me/{a.secret}/cancel")
    admins = [signed_in_admin(servers[1], admin, password), signed_in_admin(servers[0], admin, password)]
    statuses = at_once([
        lambda: holder_tab[0].post(f"/me/{a.secret}/cancel", {"csrf_token": holder_tab[1]}),
        lambda: admins[0][0].post(f"/admin/registrants/{c.id}/promote", {"csrf_token": admins[0][1]}),
        lambda: admins[1][0].post(f"/admin/registrants/{d.id}/promote", {"csrf_token": admins[1][1]}),
    ])

    assert statuses == [303] * 3, server.errors()[-3000:]
    with app.app_context():
        assert_invariants()
        status = {p.email: p.seat_status for p in db.session.scalars(select(Registrant))}
        assert status[a.email] == "none" and status[b.email] == "confirmed"
        assert sorted([status[c.email], status[d.email]]) == ["confirmed", "waitlisted"]
        promoted = c if status[c.email] == "confirmed" else d
        assert sum(mails_to(promoted.email).values()) == 2  # registered, then one ticket
    check_with_the_cli(server, 2)


def test_two_admins_promoting_one_person_after_the_deadline(live_server, seated, make_staff):
    app, (a, b, c) = seated(True, True, True)
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, a.id), at=CLOSED)  # after the deadline: nobody promoted
        db.session.commit()
    admin, password = make_staff("admin")
    other, other_password = make_staff("admin")
    servers = two_servers(live_server, CLOSING_CAPACITY="2", REHEARSAL_CLOCK="2023-09-14T11:00:00+09:00")
    server = servers[0]
    admins = [signed_in_admin(servers[0], admin, password), signed_in_admin(servers[1], other, other_password)]
    statuses = at_once([lambda v=v, t=t: v.post(f"/admin/registrants/{c.id}/promote", {"csrf_token": t})
                        for v, t in admins])

    assert statuses == [303, 303], server.errors()[-3000:]
    with app.app_context():
        assert_invariants()
        assert db.session.get(Registrant, c.id).seat_status == "confirmed"
        assert sum(mails_to(c.email).values()) == 2  # registered, then one ticket
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "seat.promote")) == 1
    check_with_the_cli(server, 2)


def test_a_sign_up_meeting_a_cancellation_signs_nobody_up(make_app, make_details, frozen_clock):
    from registration.errors import ProgramError
    from registration.models import ViewingSignup
    from registration.services import viewing

    app, other_app = make_app(), make_app()
    with app.app_context():
        person = registrations.register(make_details(email="person@example.jp"), locale="ja", at=OPEN).registrant
        db.session.commit()
        key = viewing.program()[0].sessions[0].key
        # The page saw the registration active; the cancellation commits just before the sign-up's first write.
        with meanwhile(other_app, _transition("cancel", "person@example.jp", ""), marker="UPDATE registrants"):
            with pytest.raises(ProgramError) as refused:
                viewing.change_signups(person, [key], at=OPEN)
        db.session.rollback()
        assert refused.value.code == "cancelled"
        assert db.session.scalar(select(func.count()).select_from(ViewingSignup)
                                 .where(ViewingSignup.withdrawn_at.is_(None))) == 0
