"""The closing-event reminder: sent once per seat holder, answered "coming" or "declined"; seats of the reminded who
do not answer are given back at a moment an admin chooses (a SeatRelease, run once by whichever process claims it).

Every decision is a conditional UPDATE taken under the seat lock, so that two taps, two runs of the command or two
mail workers make it once: only the one whose UPDATE matched mails, promotes or records.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import distinct, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from registration import clock
from registration.extensions import db
from registration.models import Event, Registrant, SeatRelease, Staff, Ticket
from registration.services import audit, registrations, seats

#: Seat holders reminded per transaction: a huge run must not hold the seat lock (and every seat change) for long.
BATCH = 200
#: Ticket.retired_reason of a seat given back by a scheduled release (String(12)).
NO_ANSWER = "no_answer"
#: Ticket.retired_reason of a seat given back from the reminder's "I can't come any more".
DECLINED = "declined"

#: The person holds a seat now: the only people a reminder, an answer or a release is about.
_HOLDS_SEAT = (Registrant.seat_status == "confirmed", Registrant.cancelled_at.is_(None),
               Registrant.anonymised_at.is_(None))

AnswerState = Literal["open", "cancelled", "no_seat", "over"]


@dataclass(frozen=True)
class Answers:
    """Where the reminder stands, as the console shows it."""

    holders: int
    reminded: int
    coming: int
    unanswered: int
    not_reminded: int
    declined: int
    released_no_answer: int


def remind_batch(*, after_id: int = 0, limit: int = BATCH, at: datetime | None = None) -> tuple[int, int | None]:
    """Queue the reminder for the next `limit` seat holders (id > after_id) not reminded yet; takes the seat lock.

    Returns how many were reminded and the last id looked at, or None when nobody is left after `after_id`.
    """
    at = at or clock.now()
    seats.lock()  # the ticket mailed is the current one: no rotation or release can happen meanwhile
    people = list(db.session.scalars(
        select(Registrant).where(*_HOLDS_SEAT, Registrant.reminder_sent_at.is_(None), Registrant.id > after_id)
        .order_by(Registrant.id).limit(limit)))
    reminded = 0
    for person in people:
        # Claiming is the conditional UPDATE: of two runs at once, only the one that matched writes the mail.
        claimed = db.session.execute(
            update(Registrant).where(Registrant.id == person.id, Registrant.reminder_sent_at.is_(None), *_HOLDS_SEAT)
            .values(reminder_sent_at=at).execution_options(synchronize_session=False)).rowcount == 1
        if claimed:
            set_committed_value(person, "reminder_sent_at", at)  # the row says so already: nothing to flush
            registrations.enqueue_mail(person, "reminder")
            reminded += 1
    db.session.flush()
    return reminded, (people[-1].id if people else None)


def reminded_holders() -> int:
    """Seat holders who have had the reminder (whichever run sent it)."""
    return db.session.scalar(select(func.count()).select_from(Registrant).where(
        *_HOLDS_SEAT, Registrant.reminder_sent_at.is_not(None)))


def answer_state(registrant: Registrant, *, at: datetime | None = None) -> AnswerState:
    """Whether the person can answer the reminder now, and if not, why."""
    at = at or clock.now()
    if registrant.is_cancelled or registrant.anonymised_at is not None:
        return "cancelled"
    if _event_is_over(at):
        return "over"
    if registrant.seat_status != "confirmed":
        return "no_seat"
    return "open"


def _event_is_over(at: datetime) -> bool:
    closing_date = db.session.scalar(select(Event.closing_date).limit(1))
    return closing_date is not None and clock.to_tokyo(at).date() > closing_date


def answer_coming(registrant: Registrant, *, at: datetime | None = None) -> Literal["recorded", "already", "closed"]:
    """Record that the person is coming: "recorded", "already" (they had said so) or "closed" (no seat, cancelled,
    or the event is over; nothing changed)."""
    at = at or clock.now()
    seats.lock()  # one order with a scheduled release deciding on this person at this moment
    db.session.refresh(registrant)
    if answer_state(registrant, at=at) != "open":
        return "closed"
    before = registrant.reminder_answer
    recorded = db.session.execute(
        update(Registrant).where(Registrant.id == registrant.id, *_HOLDS_SEAT,
                                 or_(Registrant.reminder_answer.is_(None), Registrant.reminder_answer != "coming"))
        .values(reminder_answer="coming", reminder_answered_at=at)
        .execution_options(synchronize_session="fetch")).rowcount == 1
    if not recorded:
        return "already"
    audit.record("reminder.coming", registrant_id=registrant.id, actor="registrant", at=at,
                 before={"reminder_answer": before}, after={"reminder_answer": "coming"})
    return "recorded"


def decline(registrant: Registrant, *, at: datetime | None = None) -> Literal["declined", "closed"]:
    """Give the person's seat back from the reminder's link: by the seat rule (the waiting list moves up at once
    before the deadline), audited, confirmed by mail, and the promoted mailed their ticket. "closed" when there was
    no seat to give back (a second tap, a cancellation) or the event is over: then nothing changed."""
    at = at or clock.now()
    seats.lock()
    db.session.refresh(registrant)  # under the seat lock: the person as they are now, not as the page saw them
    if answer_state(registrant, at=at) != "open":
        return "closed"
    before = {"seat_status": registrant.seat_status, "reminder_answer": registrant.reminder_answer}
    promoted = seats.release_seat(registrant, at=at, reason=DECLINED)
    if registrant.seat_status != "none":  # release_seat's UPDATE did not match: not ours to announce
        return "closed"
    db.session.execute(
        update(Registrant).where(Registrant.id == registrant.id)
        .values(reminder_answer="declined", reminder_answered_at=at, updated_at=at)
        .execution_options(synchronize_session="fetch"))
    audit.record("reminder.declined", registrant_id=registrant.id, actor="registrant", at=at, before=before,
                 after={"seat_status": "none", "reminder_answer": "declined"},
                 details="seat given back from the reminder")
    registrations.enqueue_mail(registrant, "seat_released")
    for person in promoted:
        registrations.announce_promotion(person)
    db.session.flush()
    return "declined"


def schedule_release(run_at: datetime, *, by: Staff, at: datetime | None = None) -> SeatRelease:
    """An admin orders the seats of the reminded who have not answered by `run_at` to be given back then."""
    at = at or clock.now()
    release = SeatRelease(run_at=run_at, created_at=at, created_by_id=by.id)
    db.session.add(release)
    db.session.flush()
    audit.record("seat_release.schedule", by=by, at=at, after={"release": release.id, "run_at": run_at},
                 details=f"release of unanswered seats scheduled by {by.name}")
    return release


def cancel_release(release: SeatRelease, *, by: Staff, at: datetime | None = None) -> bool:
    """Call off a scheduled release that has not run; False if it ran or was called off already."""
    at = at or clock.now()
    cancelled = db.session.execute(
        update(SeatRelease).where(SeatRelease.id == release.id, SeatRelease.executed_at.is_(None),
                                  SeatRelease.cancelled_at.is_(None))
        .values(cancelled_at=at, cancelled_by_id=by.id).execution_options(synchronize_session="fetch")
    ).rowcount == 1
    if cancelled:
        audit.record("seat_release.cancel", by=by, at=at, before={"release": release.id, "run_at": release.run_at},
                     details=f"scheduled release called off by {by.name}")
    return cancelled


def run_due_releases(*, at: datetime | None = None) -> int:
    """Run the seat releases whose moment has come (each once, whichever process claims it); how many seats went."""
    at = at or clock.now()
    due = db.session.scalars(
        select(SeatRelease.id).where(SeatRelease.executed_at.is_(None), SeatRelease.cancelled_at.is_(None),
                                     SeatRelease.run_at <= at).order_by(SeatRelease.run_at, SeatRelease.id)).all()
    total = 0
    for release_id in due:
        # Two workers (or a worker and an admin's "now") may both see it due: the UPDATE that matches runs it.
        claimed = db.session.execute(
            update(SeatRelease).where(SeatRelease.id == release_id, SeatRelease.executed_at.is_(None),
                                      SeatRelease.cancelled_at.is_(None), SeatRelease.run_at <= at)
            .values(executed_at=at).execution_options(synchronize_session=False)).rowcount == 1
        if not claimed:
            continue
        release = db.session.get(SeatRelease, release_id, populate_existing=True)
        release.released = _release_unanswered(release, at)
        audit.record("seat_release.run", actor="system", at=at, after={"release": release.id,
                                                                        "released": release.released},
                     details=f"seats of the reminded without an answer given back ({release.released})")
        total += release.released
    db.session.flush()
    return total


def _release_unanswered(release: SeatRelease, at: datetime) -> int:
    """Give back the seat of every holder reminded before the release's moment who has not answered; then fill the
    freed seats from the waiting list, even after the deadline (the admin chose to). Mails everyone concerned."""
    seats.lock()
    people = list(db.session.scalars(
        select(Registrant).where(*_HOLDS_SEAT, Registrant.reminder_sent_at.is_not(None),
                                 Registrant.reminder_sent_at < release.run_at, Registrant.reminder_answer.is_(None))
        .order_by(Registrant.id)))
    released, promoted = 0, []
    for person in people:
        promoted += seats.release_seat(person, at=at, reason=NO_ANSWER)
        if person.seat_status != "none":
            continue
        released += 1
        audit.record("reminder.no_answer", registrant_id=person.id, actor="system", at=at,
                     before={"seat_status": "confirmed", "reminder_answer": None},
                     after={"seat_status": "none"}, details=f"no answer to the reminder (release {release.id})")
        # seat_released says why from the person's state: no answer recorded means the release took the seat.
        registrations.enqueue_mail(person, "seat_released")
    promoted += seats.promote_waiting(at=at)
    for person in promoted:
        registrations.announce_promotion(person)
    return released


def answers() -> Answers:
    """The counts of the console's reminder page."""
    given = func.coalesce(Registrant.reminder_answer, "-")
    sent = Registrant.reminder_sent_at.is_not(None)
    rows = db.session.execute(select(given, sent, func.count()).where(*_HOLDS_SEAT).group_by(given, sent)).all()
    holders = {(answer, bool(was_sent)): count for answer, was_sent, count in rows}
    total = sum(holders.values())
    reminded = sum(count for (_, was_sent), count in holders.items() if was_sent)
    coming = sum(count for (answer, _), count in holders.items() if answer == "coming")
    waiting_for = sum(count for (answer, was_sent), count in holders.items() if was_sent and answer == "-")
    declined = db.session.scalar(select(func.count()).select_from(Registrant).where(
        Registrant.reminder_answer == "declined"))
    released = db.session.scalar(select(func.count(distinct(Ticket.registrant_id))).where(
        Ticket.retired_reason == NO_ANSWER))
    return Answers(holders=total, reminded=reminded, coming=coming, unanswered=waiting_for,
                   not_reminded=total - reminded, declined=declined, released_no_answer=released)


def unanswered(*, limit: int = 1000) -> list[Registrant]:
    """Seat holders reminded who have not answered, reminded first first."""
    return list(db.session.scalars(
        select(Registrant).where(*_HOLDS_SEAT, Registrant.reminder_sent_at.is_not(None),
                                 Registrant.reminder_answer.is_(None))
        .order_by(Registrant.reminder_sent_at, Registrant.id).limit(limit)))


def releases() -> list[SeatRelease]:
    """Every scheduled release, the next to run first, then the ones that ran or were called off, newest first."""
    rows = list(db.session.scalars(select(SeatRelease).order_by(SeatRelease.run_at.desc(), SeatRelease.id.desc())))
    pending = sorted((row for row in rows if row.executed_at is None and row.cancelled_at is None),
                     key=lambda row: (row.run_at, row.id))
    return pending + [row for row in rows if row.executed_at is not None or row.cancelled_at is not None]
