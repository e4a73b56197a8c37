"""Closing-event seats: one rule for every seat transition, the waiting list, tickets and the invariants.

Every transition (a seat asked for or given up, a cancellation, a promotion, a walk-in, a new ticket code) first
takes the seat lock, then changes the registrant with an UPDATE whose WHERE names the state it starts from. Only
the request whose UPDATE matched moves the counter, issues or retires a code, and may mail or promote. The lock
puts all seat transitions in one order (no deadlock between a cancellation promoting B and an admin promoting B);
the conditional UPDATEs make each decision on the row as it is, not as a page loaded it.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from registration import clock
from registration.errors import SeatError
from registration.extensions import db
from registration.models import OutboxMessage, Registrant, SeatCounter, Ticket
from registration.services import audit
from registration.tickets import new_ticket_code

COUNTER = "closing"
#: What a registrant who holds no seat and no place looks like; every release returns a person to it.
_NO_SEAT = {"seat_status": "none", "attend_closing": False, "waitlisted_at": None, "seat_confirmed_at": None,
            "ticket_code": None}


@dataclass(frozen=True)
class SeatSummary:
    """How full the closing event is."""

    capacity: int
    confirmed: int
    waitlisted: int


def capacity() -> int:
    """The seats at the venue, as the last `event load` set them from CLOSING_CAPACITY (0 before any)."""
    return db.session.scalar(select(SeatCounter.capacity).where(SeatCounter.key == COUNTER)) or 0


def set_capacity(seats: int) -> None:
    """Make `seats` the capacity every process decides with (event load, from CLOSING_CAPACITY); needs the lock.

    The counter is created if missing, counting the seats already held. A smaller capacity takes no seat away.
    """
    counter = db.session.get(SeatCounter, COUNTER, populate_existing=True)
    if counter is None:
        db.session.add(SeatCounter(key=COUNTER, taken=_confirmed_count(), capacity=seats))
    else:
        counter.capacity = seats
    db.session.flush()


def lock() -> None:
    """Take the seat lock for the rest of the transaction; call it before changing anyone's seat.

    An UPDATE rather than SELECT ... FOR UPDATE: it is a row lock on PostgreSQL, and on SQLite (where FOR UPDATE
    compiles to nothing) it takes the database's write lock. Either way, what is read after it is current.
    """
    with db.session.no_autoflush:  # a person's pending edits must not lock their row before the seat lock
        db.session.execute(update(SeatCounter).where(SeatCounter.key == COUNTER).values(taken=SeatCounter.taken)
                           .execution_options(synchronize_session=False))


def _take_seat() -> bool:
    # Conditional: however the transitions interleave, `taken` never passes capacity.
    return db.session.execute(
        update(SeatCounter).where(SeatCounter.key == COUNTER, SeatCounter.taken < SeatCounter.capacity)
        .values(taken=SeatCounter.taken + 1).execution_options(synchronize_session=False)
    ).rowcount == 1


def _free_seat() -> None:
    db.session.execute(
        update(SeatCounter).where(SeatCounter.key == COUNTER, SeatCounter.taken > 0)
        .values(taken=SeatCounter.taken - 1).execution_options(synchronize_session=False)
    )


def _move(registrant: Registrant, *where, **values) -> bool:
    """UPDATE the registrant to `values` only if it is in the state `where` describes; whether it matched.

    synchronize_session="fetch" sets the new values on the loaded object too, keeping its other pending edits.
    """
    return db.session.execute(
        update(Registrant).where(Registrant.id == registrant.id, *where).values(**values)
        .execution_options(synchronize_session="fetch")
    ).rowcount == 1


def _issue_ticket(registrant: Registrant, code: str, at: datetime) -> None:
    db.session.add(Ticket(code=code, registrant_id=registrant.id, issued_at=at))
    db.session.flush()


def _retire_ticket(registrant: Registrant, reason: str, at: datetime) -> None:
    db.session.execute(
        update(Ticket).where(Ticket.registrant_id == registrant.id, Ticket.retired_at.is_(None))
        .values(retired_at=at, retired_reason=reason).execution_options(synchronize_session=False)
    )


def _confirm(registrant: Registrant, at: datetime, *where) -> bool:
    """Give the person a seat (already taken from the counter) and a new ticket code, if `where` still holds."""
    code = new_ticket_code()
    # A new seat starts a new reminder round: whoever declined an earlier seat is asked again about this one.
    if not _move(registrant, *where, seat_status="confirmed", attend_closing=True, seat_confirmed_at=at,
                 waitlisted_at=None, ticket_code=code, reminder_sent_at=None, reminder_answer=None,
                 reminder_answered_at=None):
        return False
    _issue_ticket(registrant, code, at)
    return True


def request_seat(registrant: Registrant, *, at: datetime | None = None) -> str | None:
    """Give a seat if one is left, else a place on the waiting list; the caller holds the seat lock.

    Returns the new status ("confirmed" or "waitlisted"), or None when the person already had a seat or a place
    (or is cancelled): then nothing changed, and nothing may be mailed.
    """
    at = at or clock.now()
    free = (Registrant.seat_status == "none", Registrant.cancelled_at.is_(None))
    if _take_seat():
        if _confirm(registrant, at, *free):
            _record(registrant, "seat.confirmed", "none", "confirmed", at)
            return "confirmed"
        _free_seat()
        return None
    if _move(registrant, *free, seat_status="waitlisted", attend_closing=True, waitlisted_at=at):
        _record(registrant, "seat.waitlisted", "none", "waitlisted", at)
        return "waitlisted"
    return None


def _record(registrant: Registrant, action: str, before: str, after: str, at: datetime, details: str = "") -> None:
    """The seat rule's decision, in the person's history: the system decided, whoever asked."""
    audit.record(action, registrant_id=registrant.id, actor="system", before={"seat_status": before},
                 after={"seat_status": after}, details=details, at=at)


def release_seat(registrant: Registrant, *, at: datetime | None = None, reason: str = "released") -> list[Registrant]:
    """Give up a seat or a waiting-list place; the caller holds the seat lock. Returns who was promoted.

    Before the deadline the freed seat goes to the next in line. `reason` is recorded on the retired ticket code
    ("released", or "cancelled" when the whole registration goes).
    """
    at = at or clock.now()
    if _move(registrant, Registrant.seat_status == "confirmed", **_NO_SEAT):
        _free_seat()
        _retire_ticket(registrant, reason, at)
        _record(registrant, "seat.released", "confirmed", "none", at, details=reason)
        # After the deadline an admin promotes by hand: the door may need the seat for a walk-in.
        if at < current_app.config["REGISTRATION_DEADLINE"]:
            return promote_waiting(at=at)
        return []
    if _move(registrant, Registrant.seat_status == "waitlisted", **_NO_SEAT):
        _record(registrant, "seat.released", "waitlisted", "none", at, details=reason)
    return []


def promote_waiting(*, at: datetime | None = None) -> list[Registrant]:
    """Give free seats to the waiting list, first come first served; the caller holds the seat lock."""
    at = at or clock.now()
    promoted = []
    while (candidate := _first_waiting()) is not None:
        if not _take_seat():
            break
        if not _confirm(candidate, at, Registrant.seat_status == "waitlisted", Registrant.cancelled_at.is_(None)):
            _free_seat()  # cannot happen under the lock; kept so that the counter can never drift
            break
        _record(candidate, "seat.promoted", "waitlisted", "confirmed", at, details="a seat came free")
        promoted.append(candidate)
    return promoted


def promote(registrant: Registrant, *, at: datetime | None = None) -> None:
    """Promote one waiting person by hand (an admin, after the deadline); the caller holds the seat lock."""
    at = at or clock.now()
    db.session.refresh(registrant)  # under the seat lock, this is the person's state until we commit
    if registrant.seat_status != "waitlisted" or registrant.is_cancelled:
        raise SeatError("not_waitlisted")
    if not _take_seat():
        raise SeatError("full")
    if not _confirm(registrant, at, Registrant.seat_status == "waitlisted", Registrant.cancelled_at.is_(None)):
        _free_seat()
        raise SeatError("not_waitlisted")


def rotate_ticket(registrant: Registrant, *, at: datetime | None = None) -> str:
    """Replace a leaked ticket code; the old one answers "replaced" at the door from now on. Needs the seat lock."""
    at = at or clock.now()
    code = new_ticket_code()
    if not _move(registrant, Registrant.seat_status == "confirmed", Registrant.cancelled_at.is_(None),
                 ticket_code=code):
        raise SeatError("no_ticket")
    _retire_ticket(registrant, "replaced", at)
    _issue_ticket(registrant, code, at)
    return code


def _first_waiting() -> Registrant | None:
    return db.session.scalar(_waiting().limit(1))


def _waiting():
    return (select(Registrant).where(Registrant.seat_status == "waitlisted", Registrant.cancelled_at.is_(None))
            .order_by(Registrant.waitlisted_at, Registrant.id))


def waiting_list(limit: int | None = None) -> list[Registrant]:
    """Everyone on the waiting list (or the first `limit`), next in line first."""
    query = _waiting() if limit is None else _waiting().limit(limit)
    return list(db.session.scalars(query))


def waitlist_position(registrant: Registrant) -> int | None:
    """The person's numbered place on the waiting list (1 = next), or None."""
    if registrant.seat_status != "waitlisted" or registrant.waitlisted_at is None:
        return None
    ahead = db.session.scalar(
        select(func.count()).select_from(Registrant).where(
            Registrant.seat_status == "waitlisted",
            Registrant.cancelled_at.is_(None),
            or_(Registrant.waitlisted_at < registrant.waitlisted_at,
                and_(Registrant.waitlisted_at == registrant.waitlisted_at, Registrant.id < registrant.id)),
        )
    )
    return ahead + 1


def _confirmed_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Registrant).where(
        Registrant.seat_status == "confirmed", Registrant.cancelled_at.is_(None)))


def summary() -> SeatSummary:
    """Capacity, confirmed seats and the length of the waiting list."""
    counts = dict(db.session.execute(
        select(Registrant.seat_status, func.count())
        .where(Registrant.cancelled_at.is_(None), Registrant.seat_status != "none")
        .group_by(Registrant.seat_status)
    ).all())
    return SeatSummary(capacity(), counts.get("confirmed", 0), counts.get("waitlisted", 0))


#: A code as mails write it: whole, or in groups of four for typing (formatting.grouped_code).
_MAILED_CODE = re.compile(r"\b(?:[A-Z2-7]{4} ?){6}[A-Z2-7]{2}\b")


def invariant_problems() -> list[str]:
    """Everything that is wrong with the seats, in plain words; an empty list when every invariant holds."""
    problems = []
    seats = summary()
    if seats.confirmed > seats.capacity:
        problems.append(f"{seats.confirmed} confirmed seats, but the capacity is {seats.capacity}.")
    counter = db.session.get(SeatCounter, COUNTER)
    if counter is None:
        problems.append("The seat counter is missing (run `flask --app registration event load`).")
    elif counter.taken != seats.confirmed:
        problems.append(f"The seat counter says {counter.taken} seats are taken, but {seats.confirmed} people "
                        f"hold one.")
    people = db.session.execute(select(
        Registrant.id, Registrant.email, Registrant.seat_status, Registrant.cancelled_at, Registrant.ticket_code,
        Registrant.attend_closing, Registrant.waitlisted_at, Registrant.anonymised_at)).all()
    current = {}
    for ticket in db.session.execute(select(Ticket.registrant_id, Ticket.code).where(Ticket.retired_at.is_(None))):
        current.setdefault(ticket.registrant_id, []).append(ticket.code)
    for person in people:
        who = f"Registrant {person.id} <{person.email}>"
        holds = person.seat_status == "confirmed" and person.cancelled_at is None
        codes = current.get(person.id, [])
        if person.cancelled_at is not None and person.seat_status != "none":
            problems.append(f"{who} is cancelled but still {person.seat_status}.")
        if person.attend_closing != (person.seat_status != "none"):
            problems.append(f"{who} is {person.seat_status} but attend_closing is {person.attend_closing}.")
        if holds and (person.ticket_code is None or codes != [person.ticket_code]):
            problems.append(f"{who} holds a seat but not exactly one valid ticket code ({len(codes)} valid, "
                            f"current code {'set' if person.ticket_code else 'missing'}).")
        if not holds and (codes or person.ticket_code):
            problems.append(f"{who} holds no seat but has a valid ticket code.")
        if person.seat_status == "waitlisted" and person.waitlisted_at is None:
            problems.append(f"{who} is on the waiting list without a place in it.")
    waiting = waiting_list()
    # waitlist_position costs a COUNT each, and tens of thousands may wait: both ends of the list are asked, where an
    # off-by-one or a tie would show.
    ends = sorted({*range(min(50, len(waiting))), *range(max(0, len(waiting) - 50), len(waiting))})
    positions = [waitlist_position(waiting[index]) for index in ends]
    if positions != [index + 1 for index in ends]:
        problems.append(f"Waiting-list positions are {positions[:10]}…, not 1..{len(waiting)}.")
    # An erased registration's mail is erased with it, on purpose (privacy purge after the event).
    erased = {person.id for person in people if person.anonymised_at is not None}
    problems.extend(_mail_problems({who: codes for who, codes in current.items() if who not in erased}))
    return problems


def _mail_problems(current: dict[int, list[str]]) -> list[str]:
    """Every code a mail carried must be one the door knows (it admits, or says why not), and every valid code
    must have reached its holder in a mail."""
    issued = set(db.session.scalars(select(Ticket.code)))
    problems, mailed = [], set()
    for message_id, raw in db.session.execute(select(OutboxMessage.id, OutboxMessage.message)):
        text = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
        codes = {code.replace(" ", "") for code in _MAILED_CODE.findall(text.get_content() if text else "")}
        mailed |= codes
        for code in codes - issued:
            problems.append(f"Mail {message_id} carries the code {code[:4]}… that the door does not know.")
    for registrant_id, codes in current.items():
        for code in set(codes) - mailed:
            problems.append(f"Registrant {registrant_id} holds the valid code {code[:4]}…, which no mail carried.")
    return problems
