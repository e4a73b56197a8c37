"""Registering, editing, cancelling, and sending people their personal link."""

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from flask import current_app
from flask_babel import force_locale, lazy_gettext
from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from registration import clock
from registration.errors import RegistrationError, SeatError
from registration.extensions import db
from registration.models import AuditEntry, Event, LinkRequest, Registrant, Staff, Ticket
from registration.services import audit, mail, privacy, seats, viewing
from registration.services.calendar import closing_event_ics
from registration.text import fold_for_search, to_katakana
from registration.tickets import qr_png

WindowState = Literal["not_open", "open", "closed"]
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class Details:
    """What a person tells us about themselves, already validated by a form."""

    family_name: str
    given_name: str
    email: str
    organization: str
    family_name_kana: str = ""
    given_name_kana: str = ""
    job_title: str = ""
    attend_closing: bool = False


@dataclass(frozen=True)
class Outcome:
    """The result of a registration attempt: the new registration, or None when the address is already registered
    (then a link request is recorded, and the mail sender decides what to send)."""

    registrant: Registrant | None
    status: Literal["registered", "already_registered"]


def email_key(email: str) -> str:
    """The address as compared for uniqueness: NFKC-normalised and lower-cased."""
    # lower(), not casefold(): casefold would make straße@ and strasse@ one address.
    return unicodedata.normalize("NFKC", email).strip().lower()


def new_secret() -> str:
    """A personal-link secret: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def window_state(at: datetime | None = None) -> WindowState:
    """Whether registration is open at `at` (the handling moment, not when a form was loaded)."""
    at = at or clock.now()
    config = current_app.config
    if at < config["REGISTRATION_OPENS_AT"]:
        return "not_open"
    if at >= config["REGISTRATION_DEADLINE"]:
        return "closed"
    return "open"


def _require_open(at: datetime) -> None:
    state = window_state(at)
    if state != "open":
        raise RegistrationError(state)


def find_by_email(email: str) -> Registrant | None:
    """The live (not cancelled) registration for an address, compared as `email_key` does."""
    return db.session.scalar(select(Registrant).where(Registrant.email_key == email_key(email),
                                                      Registrant.cancelled_at.is_(None)))


def search(query: str, *, limit: int = 20) -> list[Registrant]:
    """Registrations whose name, kana, email or organisation contain `query` (2 to 100 printable characters),
    whatever its width, case or kana script; `%` and `_` are matched as themselves."""
    needle = fold_for_search(query.strip())
    if not 2 <= len(needle) <= 100 or not needle.isprintable():
        return []
    return list(db.session.scalars(
        select(Registrant).where(search_key_contains(needle))
        .options(selectinload(Registrant.checkins))
        .order_by(Registrant.family_name_kana, Registrant.id).limit(limit)
    ))


def search_key_contains(needle: str):
    """The condition "the folded search key contains `needle`" (already folded), `%` and `_` matched as themselves:
    the door's search and the console's list match alike."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Registrant.search_key.like(f"%{escaped}%", escape="\\")


def find_by_secret(secret: str) -> Registrant | None:
    """The registration a personal link points to, if the secret is genuine."""
    if not SECRET_SHAPE.fullmatch(secret):
        return None  # also keeps NUL and other bytes PostgreSQL refuses away from the query
    return db.session.scalar(select(Registrant).where(Registrant.secret == secret))


def register(details: Details, *, locale: str, sessions: tuple[str, ...] = (), at: datetime | None = None) -> Outcome:
    """Register a person (with the sessions they will watch); for an address already registered, record a request
    for its link instead.

    A cancelled registration of the same address stays as it was: registering again starts a new one, with a new
    link, and nothing of the old one.
    """
    at = at or clock.now()
    _require_open(at)
    registrant = _insert_unless_registered(details, locale=locale, at=at)
    if registrant is None:
        # Registered already (or by a simultaneous submission that won the unique index). Nothing more is looked
        # up here: the mail sender decides what the address gets.
        request_link(details.email, "already_registered", at=at)
        return Outcome(None, "already_registered")
    audit.record("registrant.register", registrant_id=registrant.id, actor="registrant", after=snapshot(registrant),
                 at=at)
    if details.attend_closing:
        seats.lock()
        seats.request_seat(registrant, at=at)
    viewing.change_signups(registrant, sessions, at=at)
    _enqueue_mail(registrant, "registered")
    return Outcome(registrant, "registered")


#: What an audit entry records of a person's own details.
_DETAIL_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana", "email", "organization",
                  "job_title", "locale", "attend_closing", "pending_email")


def snapshot(registrant: Registrant) -> dict:
    """The person's details as the audit log records them (erased with the person's data)."""
    return {field: getattr(registrant, field) for field in _DETAIL_FIELDS}


def _insert_unless_registered(details: Details, *, locale: str, at: datetime) -> Registrant | None:
    """INSERT ... ON CONFLICT DO NOTHING on the live-address index: the new registration, or None if the address
    has a live registration.

    The database decides between simultaneous submissions of one address without an error to roll back.
    """
    person = Registrant(secret=new_secret(), email=details.email, email_key=email_key(details.email),
                        locale=locale, consented_at=at, registered_at=at)
    _apply(person, details, at)
    person.search_key = person.searchable_text()
    values = {column.key: getattr(person, column.key) for column in Registrant.__table__.columns
              if getattr(person, column.key) is not None}
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    new_id = db.session.execute(
        dialect.insert(Registrant).values(**values)
        .on_conflict_do_nothing(index_elements=["email_key"], index_where=Registrant.cancelled_at.is_(None))
        .returning(Registrant.id)).scalar()
    return None if new_id is None else db.session.get(Registrant, new_id)


def register_walk_in(details: Details, *, by: Staff, locale: str, at: datetime | None = None) -> Registrant:
    """Register a person at the door after the deadline, with a seat; flagged on-site and audited."""
    at = at or clock.now()
    if window_state(at) != "closed":
        raise RegistrationError("not_closed")
    seats.lock()
    registrant = _insert_unless_registered(details, locale=locale, at=at)
    if registrant is None:
        raise RegistrationError("email_taken")  # a live registration has this address: staff find it by search
    registrant.on_site = True
    db.session.flush()
    # The registration first, then its seat: the person's history reads in the order things happened.
    audit.record("registrant.walk_in", registrant_id=registrant.id, by=by, at=at,
                 after=snapshot(registrant) | {"attend_closing": True}, details=f"registered at the door by {by.name}")
    if seats.request_seat(registrant, at=at) != "confirmed":
        raise SeatError("full")
    _enqueue_mail(registrant, "registered")
    return registrant


def set_locale(registrant: Registrant, locale: str) -> bool:
    """Change the language of a registration's pages and mail (a cancelled one's too: its page still speaks to its
    owner); False for an erased one, or when nothing changes."""
    changed = db.session.execute(
        sql_update(Registrant)
        .where(Registrant.id == registrant.id, Registrant.locale != locale, Registrant.anonymised_at.is_(None))
        .values(locale=locale)
        .execution_options(synchronize_session=False)).rowcount == 1
    if changed:
        before = registrant.locale
        set_committed_value(registrant, "locale", locale)  # the row already says so: nothing left to flush
        audit.record("registrant.locale", registrant_id=registrant.id, actor="registrant", before={"locale": before},
                     after={"locale": locale})
    return changed


def update(registrant: Registrant, details: Details, *, locale: str, at: datetime | None = None) -> bool:
    """Change a registration's details; closing-event attendance only before the deadline.

    A new address is not taken over directly: a confirmation link goes to it, and the change happens when its
    owner opens the link (confirm_email_change). Returns whether such a confirmation was sent.
    """
    at = at or clock.now()
    seats.lock()
    db.session.refresh(registrant)  # decide on the row as it is now, not as the page that sent the form saw it
    if registrant.is_cancelled:
        raise RegistrationError("cancelled")
    closing_changed = details.attend_closing != registrant.attend_closing
    if closing_changed and window_state(at) != "open":
        raise RegistrationError("closing_locked")
    before = snapshot(registrant)
    _apply(registrant, details, at)
    registrant.locale = locale
    _audit_update(registrant, before, details, at)
    if closing_changed and details.attend_closing:
        if seats.request_seat(registrant, at=at):
            _enqueue_mail(registrant, "seat")
    elif closing_changed:
        _announce_promotions(seats.release_seat(registrant, at=at))
    if email_key(details.email) == registrant.email_key:
        registrant.email = details.email  # the same address, spelt differently
        db.session.flush()
        return False
    registrant.pending_email = details.email
    registrant.pending_email_token = new_secret()
    registrant.pending_email_requested_at = at
    db.session.flush()
    _enqueue_mail(registrant, "confirm_email", to=details.email)
    return True


def _audit_update(registrant: Registrant, before: dict, details: Details, at: datetime) -> None:
    """One entry for what the person changed on their page (attendance and a requested address included)."""
    after = snapshot(registrant) | {"attend_closing": details.attend_closing}
    if email_key(details.email) != registrant.email_key:
        after["pending_email"] = details.email
    elif details.email != registrant.email:
        after["email"] = details.email
    old, new = audit.changed(before, after)
    if new:
        audit.record("registrant.update", registrant_id=registrant.id, actor="registrant", before=old, after=new,
                     at=at)


def confirm_email_change(registrant: Registrant, token: str, *, at: datetime | None = None) -> None:
    """Move a registration to its pending address, from the link mailed there."""
    at = at or clock.now()
    seats.lock()  # one order with cancellation and erasure, which clear the pending address
    db.session.refresh(registrant)
    if not pending_change_is_valid(registrant, token, at):
        raise RegistrationError("email_change_invalid")
    old_address = registrant.email
    new_address = registrant.pending_email
    if find_by_email(new_address) is not None:
        raise RegistrationError("email_taken")
    registrant.email = new_address
    registrant.email_key = email_key(new_address)
    registrant.updated_at = at
    _clear_pending_email(registrant)
    try:
        db.session.flush()
    except IntegrityError:
        # Taken by another registration at this moment; the request rolls the failed flush back.
        raise RegistrationError("email_taken") from None
    audit.record("registrant.email_change", registrant_id=registrant.id, actor="registrant",
                 before={"email": old_address}, after={"email": new_address}, at=at)
    _enqueue_mail(registrant, "email_changed", to=old_address)


def pending_change_is_valid(registrant: Registrant, token: str, at: datetime) -> bool:
    """Whether `token` confirms the registration's pending address change, and has not expired."""
    if registrant.is_cancelled or not registrant.pending_email_token or not token:
        return False
    expires = registrant.pending_email_requested_at + current_app.config["EMAIL_CHANGE_VALID_FOR"]
    return secrets.compare_digest(registrant.pending_email_token, token) and at < expires


def cancel(registrant: Registrant, *, at: datetime | None = None, notify: bool = True, by: Staff | None = None) -> bool:
    """Cancel a registration (its owner, or an admin `by`); False if it already was. Sends a confirmation of the
    cancellation (unless the person is erasing their data, which leaves no address to write to)."""
    at = at or clock.now()
    seats.lock()
    db.session.refresh(registrant)  # under the seat lock: the person as they are now (promoted meanwhile, say)
    seat_before = registrant.seat_status
    # Ten taps on "cancel" at once: only the one that finds the registration still active goes on.
    cancelled = db.session.execute(
        sql_update(Registrant).where(Registrant.id == registrant.id, Registrant.cancelled_at.is_(None))
        .values(cancelled_at=at, updated_at=at, pending_email=None, pending_email_token=None,
                pending_email_requested_at=None)
        .execution_options(synchronize_session="fetch")
    ).rowcount == 1
    if not cancelled:
        db.session.refresh(registrant)
        return False
    audit.record("registrant.cancel", registrant_id=registrant.id, by=by, actor="registrant", at=at,
                 before={"cancelled": False, "seat_status": seat_before},
                 after={"cancelled": True, "seat_status": "none"})
    _announce_promotions(seats.release_seat(registrant, at=at, reason="cancelled"))
    viewing.withdraw_all_signups(registrant, at=at)
    if notify:
        _enqueue_mail(registrant, "cancelled")
    db.session.flush()
    return True


def erase_own(registrant: Registrant, *, at: datetime | None = None) -> bool:
    """The owner deletes their registration and data: cancelled by the same seat rule as a cancellation (the seat
    goes to the waiting list), then erased. False if it already was erased."""
    at = at or clock.now()
    cancel(registrant, at=at, notify=False)  # False when cancelled before: the data is erased all the same
    return _erase_with_earlier(registrant, at=at)


def _erase_with_earlier(registrant: Registrant, *, at: datetime, by: Staff | None = None, reason: str = "") -> bool:
    """Erase the registration and the person's earlier, cancelled registrations of the same address ("all the data
    you keep about me"); a live registration of the address is never touched. False if this one already was."""
    address = registrant.email_key  # read before the erasure replaces it
    if not privacy.erase(registrant, at=at, by=by, reason=reason):
        return False
    for earlier in db.session.scalars(select(Registrant).where(
            Registrant.email_key == address, Registrant.id != registrant.id, Registrant.cancelled_at.is_not(None),
            Registrant.anonymised_at.is_(None))).all():
        privacy.erase(earlier, at=at, by=by, reason=reason)
    return True


def promote(registrant: Registrant, *, by: Staff, at: datetime | None = None) -> None:
    """An admin gives a waiting person a seat: audited, and the ticket mailed."""
    at = at or clock.now()
    seats.lock()
    position = seats.waitlist_position(registrant)
    seats.promote(registrant, at=at)
    audit.record("seat.promote", registrant_id=registrant.id, by=by, at=at,
                 before={"seat_status": "waitlisted", "waitlist_position": position},
                 after={"seat_status": "confirmed"}, details=f"promoted from the waiting list by {by.name}")
    announce_promotion(registrant)


def rotate_ticket(registrant: Registrant, *, by: Staff, seen_ticket: int | None = None,
                  at: datetime | None = None) -> None:
    """An admin replaces a leaked ticket code: audited, and the new ticket mailed; the old code answers "replaced".

    `seen_ticket` is the id of the ticket the admin's page showed: if it was replaced since (a double click, another
    admin), nothing more happens, so that one confirmation gives one new code and one mail.
    """
    at = at or clock.now()
    seats.lock()
    db.session.refresh(registrant)  # the mail is written from the person as they are now, not as the page saw them
    if seen_ticket is not None and seen_ticket != current_ticket_id(registrant):
        raise SeatError("ticket_changed")
    old_code = registrant.ticket_code
    seats.rotate_ticket(registrant, at=at)
    audit.record("ticket.rotate", registrant_id=registrant.id, by=by, at=at,
                 before={"ticket": code_hint(old_code)}, after={"ticket": code_hint(registrant.ticket_code)},
                 details=f"ticket code replaced by {by.name}")
    announce_promotion(registrant, template="seat")


def current_ticket_id(registrant: Registrant) -> int | None:
    """The id of the person's valid ticket (not its code, which admits), or None."""
    return db.session.scalar(select(Ticket.id).where(Ticket.registrant_id == registrant.id,
                                                    Ticket.retired_at.is_(None)))


def _refuse_repeat(registrant: Registrant, action: str, at: datetime) -> None:
    """A mail an admin asked for moments ago is not sent again: a double tap sends one. The caller holds the seat
    lock, so two taps at once see each other's entry."""
    recent = db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.registrant_id == registrant.id, AuditEntry.action == action,
        AuditEntry.at > at - RESEND_QUIET).limit(1))
    if recent is not None:
        raise RegistrationError("just_sent")


#: After an admin mails a link or a ticket again, the same mail is refused this long.
RESEND_QUIET = timedelta(minutes=1)


def code_hint(code: str | None) -> str | None:
    """The first four characters of a ticket code: enough to tell codes apart in the log, useless at the door."""
    return f"{code[:4]}…" if code else None


def restore(registrant: Registrant, *, by: Staff, at: datetime | None = None) -> None:
    """An admin takes back a cancellation (a mistake, a change of mind): the registration is live again, without a
    seat (it went to others), and its owner gets the personal link. Refused if the address registered again."""
    at = at or clock.now()
    seats.lock()  # one order with cancellation and erasure
    db.session.refresh(registrant)
    if registrant.anonymised_at is not None:
        raise RegistrationError("erased")
    if not registrant.is_cancelled:
        raise RegistrationError("not_cancelled")
    if find_by_email(registrant.email) is not None:
        raise RegistrationError("email_taken")
    cancelled_at = registrant.cancelled_at
    try:
        with db.session.begin_nested():  # the live-address index decides against a registration at this moment
            restored = db.session.execute(
                sql_update(Registrant)
                .where(Registrant.id == registrant.id, Registrant.cancelled_at.is_not(None),
                       Registrant.anonymised_at.is_(None))
                .values(cancelled_at=None, updated_at=at)
                .execution_options(synchronize_session="fetch")).rowcount == 1
    except IntegrityError:
        raise RegistrationError("email_taken") from None
    if not restored:
        raise RegistrationError("not_cancelled")
    audit.record("registrant.restore", registrant_id=registrant.id, by=by, at=at,
                 before={"cancelled": True, "cancelled_at": cancelled_at}, after={"cancelled": False},
                 details=f"cancellation taken back by {by.name}")
    _enqueue_mail(registrant, "lost_link")


def resend_link(registrant: Registrant, *, by: Staff, at: datetime | None = None) -> None:
    """An admin mails a live registration its personal link again (the person asked at the help desk)."""
    at = at or clock.now()
    seats.lock()  # orders this with a second tap (see _refuse_repeat), a cancellation and an erasure
    db.session.refresh(registrant)
    if registrant.anonymised_at is not None:
        raise RegistrationError("erased")
    if registrant.is_cancelled:
        raise RegistrationError("cancelled")
    _refuse_repeat(registrant, "mail.resend_link", at)
    audit.record("mail.resend_link", registrant_id=registrant.id, by=by, at=at,
                 details=f"personal link mailed again by {by.name}")
    _enqueue_mail(registrant, "lost_link")


def resend_ticket(registrant: Registrant, *, by: Staff, at: datetime | None = None) -> None:
    """An admin mails a seat holder their ticket (the same code) again."""
    at = at or clock.now()
    seats.lock()  # the code mailed is the one the door admits, not one being rotated at this moment
    db.session.refresh(registrant)
    if registrant.seat_status != "confirmed" or registrant.is_cancelled:
        raise SeatError("no_ticket")
    _refuse_repeat(registrant, "mail.resend_ticket", at)
    audit.record("mail.resend_ticket", registrant_id=registrant.id, by=by, at=at,
                 after={"ticket": code_hint(registrant.ticket_code)}, details=f"ticket mailed again by {by.name}")
    _enqueue_mail(registrant, "seat")


def erase(registrant: Registrant, *, by: Staff, reason: str = "", at: datetime | None = None) -> bool:
    """An admin deletes a person's data at their request (by mail, at the desk): cancelled by the seat rule, then
    erased as the person's own erasure would. False if it already was erased."""
    at = at or clock.now()
    cancel(registrant, at=at, notify=False, by=by)
    return _erase_with_earlier(registrant, at=at, by=by, reason=reason)


def _announce_promotions(promoted: list[Registrant]) -> None:
    for person in promoted:
        announce_promotion(person)


def announce_promotion(registrant: Registrant, *, template: str = "promoted") -> None:
    """Mail a person their (new) ticket."""
    _enqueue_mail(registrant, template)


def request_link(email: str, kind: Literal["lost_link", "already_registered"], *, at: datetime | None = None) -> None:
    """Record that somebody asked for the personal link of `email`; the same one INSERT whether or not it is
    registered. The mail sender answers it (answer_link_requests)."""
    db.session.add(LinkRequest(email=email, kind=kind, requested_at=at or clock.now()))
    db.session.flush()


def answer_link_requests(*, limit: int = 100) -> int:
    """For the mail sender: mail the link to each requested address that is registered (at most once per
    LINK_RESEND_INTERVAL), and forget the requests. Returns how many requests were dealt with."""
    answered = 0
    pending = db.session.scalars(select(LinkRequest.id).order_by(LinkRequest.id).limit(limit)).all()
    for request_id in pending:
        # Deleting is claiming: of two senders, only the one whose DELETE matched goes on, and it answers the row it
        # deleted, not the address read before: on SQLite a request made since may have been given a freed id.
        claimed = db.session.execute(
            sql_delete(LinkRequest).where(LinkRequest.id == request_id)
            .returning(LinkRequest.email, LinkRequest.kind).execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            continue
        answered += 1
        registrant = find_by_email(claimed.email)
        if registrant is not None:
            _resend_link(registrant, claimed.kind, clock.now())
    db.session.flush()
    return answered


def _apply(registrant: Registrant, details: Details, at: datetime) -> None:
    registrant.family_name = details.family_name
    registrant.given_name = details.given_name
    # Kana in katakana only, whatever the form or import gave: search and sorting see one script.
    registrant.family_name_kana = to_katakana(details.family_name_kana)
    registrant.given_name_kana = to_katakana(details.given_name_kana)
    registrant.organization = details.organization
    registrant.job_title = details.job_title
    registrant.updated_at = at
    # attend_closing is not set here: the seat transitions set it together with seat_status.


def _clear_pending_email(registrant: Registrant) -> None:
    registrant.pending_email = None
    registrant.pending_email_token = None
    registrant.pending_email_requested_at = None


def _resend_link(registrant: Registrant, template: str, at: datetime) -> None:
    """Mail the link again unless it was re-sent moments ago: nobody can flood a mailbox through our forms."""
    quiet_since = at - current_app.config["LINK_RESEND_INTERVAL"]
    # A conditional UPDATE, so that simultaneous repeats cannot all see "not sent yet", and that a registration
    # cancelled or erased since the sender looked it up gets nothing.
    claimed = db.session.execute(
        sql_update(Registrant)
        .where(Registrant.id == registrant.id, Registrant.cancelled_at.is_(None), Registrant.anonymised_at.is_(None),
               or_(Registrant.link_resent_at.is_(None), Registrant.link_resent_at <= quiet_since))
        .values(link_resent_at=at)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if claimed:
        db.session.refresh(registrant)  # the mail is written from the row as it is now, not as first read
        _enqueue_mail(registrant, template)


_SUBJECTS = {
    "registered": lazy_gettext("Your CODT2023 registration"),
    "already_registered": lazy_gettext("You are already registered for CODT2023"),
    "lost_link": lazy_gettext("Your CODT2023 personal link"),
    "cancelled": lazy_gettext("Your CODT2023 registration is cancelled"),
    "confirm_email": lazy_gettext("Please confirm your new address for CODT2023"),
    "email_changed": lazy_gettext("The address of your CODT2023 registration has changed"),
    "seat": lazy_gettext("Your CODT2023 closing event seat"),
    "promoted": lazy_gettext("A seat at the CODT2023 closing event is yours: your ticket"),
    "reminder": lazy_gettext("CODT2023 closing event: are you still coming?"),
    "seat_released": lazy_gettext("Your CODT2023 closing event seat has been given back"),
}


def enqueue_mail(registrant: Registrant, template: str) -> None:
    """Queue mail/<template> about this registration to its address (a template _SUBJECTS knows)."""
    _enqueue_mail(registrant, template)


def _enqueue_mail(registrant: Registrant, template: str, *, to: str | None = None) -> None:
    """Queue a mail about this registration; a held seat travels with its ticket (QR inline) and calendar entry."""
    with force_locale(registrant.locale):
        subject = str(_SUBJECTS[template])
    event = db.session.scalar(select(Event).limit(1))
    ticket = registrant.seat_status == "confirmed" and template in TICKET_MAILS
    mail.enqueue_template(
        recipient=to or registrant.email,
        subject=subject,
        template=template,
        locale=registrant.locale,
        registrant_id=registrant.id,
        inline_images={"ticket-qr": qr_png(registrant.ticket_code, box_size=6)} if ticket else None,
        attachments=[closing_event_ics(event, registrant)] if ticket else None,
        registrant=registrant,
        event=event,
        waitlist_position=seats.waitlist_position(registrant),
        signed_up_sessions=viewing.signed_up_sessions(registrant) if template in SESSION_MAILS else [],
        viewing_windows=viewing.windows(),
    )


#: Mails that list the sessions the person signed up to watch.
SESSION_MAILS = frozenset({"registered"})
#: Mails that carry the ticket when the person holds a seat.
TICKET_MAILS = frozenset({"registered", "already_registered", "lost_link", "seat", "promoted", "reminder"})
