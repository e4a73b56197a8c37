"""Closing-event seats: capacity-safe claims, the waiting list and promotions."""

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from registration import clock
from registration.errors import SeatError
from registration.extensions import db
from registration.models import Registrant, SeatCounter
from registration.tickets import new_ticket_code

COUNTER = "closing"


@dataclass(frozen=True)
class SeatSummary:
    """How full the closing event is."""

    capacity: int
    confirmed: int
    waitlisted: int


def capacity() -> int:
    """CLOSING_CAPACITY: the seats at the venue."""
    return current_app.config["CLOSING_CAPACITY"]


def ensure_counter() -> None:
    """Create the seat counter if it is missing (event load does this)."""
    if db.session.get(SeatCounter, COUNTER) is None:
        db.session.add(SeatCounter(key=COUNTER, taken=0))
        db.session.flush()


def _take_seat() -> bool:
    # The conditional UPDATE is the whole guarantee: however many processes race, `taken` never passes capacity.
    taken = db.session.execute(
        update(SeatCounter)
        .where(SeatCounter.key == COUNTER, SeatCounter.taken < capacity())
        .values(taken=SeatCounter.taken + 1)
    ).rowcount
    return taken == 1


def _free_seat() -> None:
    db.session.execute(
        update(SeatCounter).where(SeatCounter.key == COUNTER, SeatCounter.taken > 0)
        .values(taken=SeatCounter.taken - 1)
    )


def _confirm(registrant: Registrant, at: datetime) -> None:
    registrant.seat_status = "confirmed"
    registrant.seat_confirmed_at = at
    registrant.waitlisted_at = None
    registrant.ticket_code = new_ticket_code()


def request_seat(registrant: Registrant, *, at: datetime | None = None) -> str:
    """Give a seat if one is left, else a place on the waiting list. Returns the resulting status."""
    at = at or clock.now()
    if registrant.seat_status == "none":
        if _take_seat():
            _confirm(registrant, at)
        else:
            registrant.seat_status = "waitlisted"
            registrant.waitlisted_at = at
        db.session.flush()
    return registrant.seat_status


def release_seat(registrant: Registrant, *, at: datetime | None = None) -> list[Registrant]:
    """Give up a seat or a waiting-list place; before the deadline the freed seat goes to the next in line."""
    at = at or clock.now()
    was_confirmed = registrant.seat_status == "confirmed"
    registrant.seat_status = "none"
    registrant.waitlisted_at = None
    registrant.seat_confirmed_at = None
    registrant.ticket_code = None
    db.session.flush()
    if not was_confirmed:
        return []
    _free_seat()
    # After the deadline an admin promotes by hand: the door may need the seat for a walk-in.
    if at < current_app.config["REGISTRATION_DEADLINE"]:
        return promote_waiting(at=at)
    return []


def promote_waiting(*, at: datetime | None = None) -> list[Registrant]:
    """Give free seats to the waiting list, first come first served. Returns who was promoted."""
    at = at or clock.now()
    promoted = []
    while (candidate := _first_waiting()) is not None:
        if not _take_seat():
            break
        if not _claim_promotion(candidate, at):
            _free_seat()  # someone else promoted or removed this person meanwhile
            continue
        promoted.append(candidate)
    return promoted


def promote(registrant: Registrant, *, at: datetime | None = None) -> None:
    """Promote one waiting person by hand (an admin, after the deadline)."""
    at = at or clock.now()
    if registrant.seat_status != "waitlisted" or registrant.is_cancelled:
        raise SeatError("not_waitlisted")
    if not _take_seat():
        raise SeatError("full")
    if not _claim_promotion(registrant, at):
        _free_seat()
        raise SeatError("not_waitlisted")


def _first_waiting() -> Registrant | None:
    return db.session.scalar(
        select(Registrant)
        .where(Registrant.seat_status == "waitlisted", Registrant.cancelled_at.is_(None))
        .order_by(Registrant.waitlisted_at, Registrant.id)
        .limit(1)
    )


def _claim_promotion(registrant: Registrant, at: datetime) -> bool:
    code = new_ticket_code()
    claimed = db.session.execute(
        update(Registrant)
        .where(Registrant.id == registrant.id, Registrant.seat_status == "waitlisted")
        .values(seat_status="confirmed", seat_confirmed_at=at, waitlisted_at=None, ticket_code=code)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    return claimed == 1


def rotate_ticket(registrant: Registrant) -> str:
    """Replace a leaked ticket code; the old one is refused as unknown from now on."""
    if registrant.seat_status != "confirmed":
        raise SeatError("no_ticket")
    registrant.ticket_code = new_ticket_code()
    db.session.flush()
    return registrant.ticket_code


def waitlist_position(registrant: Registrant) -> int | None:
    """The person's numbered place on the waiting list (1 = next), or None."""
    if registrant.seat_status != "waitlisted":
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


def summary() -> SeatSummary:
    """Capacity, confirmed seats and the length of the waiting list."""
    counts = dict(db.session.execute(
        select(Registrant.seat_status, func.count())
        .where(Registrant.cancelled_at.is_(None), Registrant.seat_status != "none")
        .group_by(Registrant.seat_status)
    ).all())
    return SeatSummary(capacity(), counts.get("confirmed", 0), counts.get("waitlisted", 0))
