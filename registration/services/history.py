"""A registrant's whole history in time order, merged from every table that records something about them, and
the audit log as the organisers read it."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from registration.extensions import db
from registration.models import (AuditEntry, CheckIn, OutboxMessage, Registrant, Scan, SessionView, Staff, Ticket,
                                 ViewingSignup)
from registration.services import audit

#: Where an item goes among items of the same moment: a registration's audit entry before the ticket it issued,
#: the ticket before the mail that carries it.
_RANK = {"audit": 0, "ticket_issued": 1, "ticket_retired": 1, "signup": 2, "withdrawal": 2, "view": 3,
         "checkin": 4, "scan": 5, "mail": 6}


@dataclass(frozen=True)
class Change:
    """One value an audit entry changed."""

    field: str
    before: Any
    after: Any
    #: Whether the entry names the field on this side at all (a registration has only "after").
    has_before: bool = True
    has_after: bool = True


@dataclass(frozen=True)
class Item:
    """One thing that happened to a registrant. `kind` says which table it comes from; `action` refines it
    (the audit action, the scan result, the mail's delivery state)."""

    at: datetime
    kind: str
    action: str = ""
    #: Who did it: a staff name, or "registrant", "system", "cli"; empty when the table does not say.
    who: str = ""
    details: str = ""
    changes: list[Change] = field(default_factory=list)
    #: Anything else the page shows for this kind (session title, gate, device, subject, error ...).
    extra: dict[str, Any] = field(default_factory=dict)
    order: tuple = ()


def changes(entry: AuditEntry) -> list[Change]:
    """An audit entry's values as before → after pairs, in a stable order."""
    before, after = audit.values(entry)
    return [Change(key, before.get(key), after.get(key), key in before, key in after)
            for key in sorted(before.keys() | after.keys())]


def who(entry: AuditEntry) -> str:
    """Who acted: the staff member's name, or the actor kind."""
    if entry.staff is not None:
        return entry.staff.name
    return entry.actor


def _audit_items(registrant_id: int) -> list[Item]:
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.registrant_id == registrant_id)
                                 .options(selectinload(AuditEntry.staff)))
    return [Item(at=entry.at, kind="audit", action=entry.action, who=who(entry), details=entry.details,
                 changes=changes(entry), order=(entry.id,)) for entry in entries]


def _ticket_items(registrant_id: int) -> list[Item]:
    items = []
    for ticket in db.session.scalars(select(Ticket).where(Ticket.registrant_id == registrant_id)):
        # Four characters tell codes apart on the page; the whole code would let anyone reading it in.
        hint = f"{ticket.code[:4]}…"
        items.append(Item(at=ticket.issued_at, kind="ticket_issued", extra={"code": hint}, order=(ticket.id,)))
        if ticket.retired_at is not None:
            items.append(Item(at=ticket.retired_at, kind="ticket_retired", action=ticket.retired_reason or "",
                              extra={"code": hint}, order=(ticket.id,)))
    return items


def _viewing_items(registrant_id: int) -> list[Item]:
    items = []
    signups = db.session.scalars(select(ViewingSignup).where(ViewingSignup.registrant_id == registrant_id)
                                 .options(selectinload(ViewingSignup.session)))
    for signup in signups:
        extra = {"session": signup.session}
        items.append(Item(at=signup.signed_up_at, kind="signup", extra=extra, order=(signup.id,)))
        if signup.withdrawn_at is not None:
            items.append(Item(at=signup.withdrawn_at, kind="withdrawal", extra=extra, order=(signup.id,)))
    views = db.session.scalars(select(SessionView).where(SessionView.registrant_id == registrant_id)
                               .options(selectinload(SessionView.session)))
    items.extend(Item(at=view.at, kind="view", action=view.window, extra={"session": view.session},
                      order=(view.id,)) for view in views)
    return items


def _door_items(registrant_id: int) -> list[Item]:
    items = []
    checkins = db.session.scalars(select(CheckIn).where(CheckIn.registrant_id == registrant_id)
                                  .options(selectinload(CheckIn.staff), selectinload(CheckIn.device)))
    for checkin in checkins:
        # The undo itself is told by its audit entry (who, when, which admission): no second line for it here.
        items.append(Item(at=checkin.at, kind="checkin", action="undone" if checkin.undone_at else "",
                          who=checkin.staff.name if checkin.staff else "",
                          extra={"gate": checkin.gate, "device": checkin.device.name if checkin.device else "",
                                 "id": checkin.id, "undone_at": checkin.undone_at,
                                 "received_at": _later(checkin.received_at, checkin.at)},
                          order=(checkin.id,)))
    # Admissions are the check-ins above; the scans that matter besides are the refused ones (door conflicts among
    # them: an offline admission the server found already made, or not allowed, is recorded as a refusal).
    scans = db.session.execute(
        select(Scan, Staff.name).outerjoin(Staff, Staff.id == Scan.staff_id)
        .where(Scan.registrant_id == registrant_id, Scan.result != "ok")).all()
    device_names = _device_names({scan.device_id for scan, _name in scans if scan.device_id})
    items.extend(Item(at=scan.at, kind="scan", action=scan.result, who=name or "",
                      extra={"reason": scan.reason or "", "gate": scan.gate,
                             "device": device_names.get(scan.device_id, ""),
                             "received_at": _later(scan.received_at, scan.at),
                             "offline_result": scan.offline_result or "", "conflict": scan.conflict or "",
                             "resolved_at": scan.conflict_resolved_at},
                      order=(scan.id,)) for scan, name in scans)
    return items


def _later(received: datetime | None, at: datetime) -> datetime | None:
    """When the server received a scan, if a second or more after the door scanned it (a scan kept offline)."""
    if received is None or (received - at).total_seconds() < 1:
        return None
    return received


def _device_names(ids: set[int]) -> dict[int, str]:
    from registration.models import DeviceToken

    if not ids:
        return {}
    return dict(db.session.execute(select(DeviceToken.id, DeviceToken.name).where(DeviceToken.id.in_(ids))).all())


def mail_state(message: OutboxMessage) -> str:
    """"sent", "failed" (refused for good) or "pending" (not yet delivered, perhaps retrying)."""
    if message.sent_at is not None:
        return "sent"
    if message.failed_at is not None:
        return "failed"
    return "pending"


def _mail_items(registrant_id: int) -> list[Item]:
    # Not the message bodies: a page of history has no use for megabytes of QR codes.
    rows = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.subject, OutboxMessage.recipient, OutboxMessage.created_at,
               OutboxMessage.sent_at, OutboxMessage.failed_at, OutboxMessage.attempts, OutboxMessage.last_error,
               OutboxMessage.next_attempt_at)
        .where(OutboxMessage.registrant_id == registrant_id)).all()
    return [Item(at=row.created_at, kind="mail", action=mail_state(row),
                 extra={"subject": row.subject, "recipient": row.recipient, "sent_at": row.sent_at,
                        "failed_at": row.failed_at, "attempts": row.attempts, "last_error": row.last_error or "",
                        "next_attempt_at": row.next_attempt_at},
                 order=(row.id,)) for row in rows]


def of(registrant: Registrant) -> list[Item]:
    """Everything recorded about a registrant, oldest first: audit entries (registration, changes, seat decisions,
    admin actions), tickets, viewing sign-ups and views, check-ins, refused scans and every mail."""
    items = [*_audit_items(registrant.id), *_ticket_items(registrant.id), *_viewing_items(registrant.id),
             *_door_items(registrant.id), *_mail_items(registrant.id)]
    return sorted(items, key=lambda item: (item.at, _RANK[item.kind], item.order))


# --- the audit log page ---------------------------------------------------------------------------------------

#: Who acted when no staff member did (AuditEntry.actor).
ACTOR_KINDS = ("registrant", "system", "cli")


@dataclass(frozen=True)
class AuditFilters:
    """What the organiser asked the audit log for; every value already checked."""

    who: str = ""
    action: str = ""
    start: datetime | None = None
    end: datetime | None = None
    registrant_id: int | None = None


def audit_select(filters: AuditFilters) -> Select:
    """The audit log, newest first, as filtered: staff name or actor kind, action, time range, registrant."""
    query = select(AuditEntry).options(selectinload(AuditEntry.staff))
    if filters.who in ACTOR_KINDS:
        query = query.where(AuditEntry.actor == filters.who, AuditEntry.staff_id.is_(None))
    elif filters.who:
        query = query.join(Staff, Staff.id == AuditEntry.staff_id).where(Staff.name == filters.who)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.start is not None:
        query = query.where(AuditEntry.at >= filters.start)
    if filters.end is not None:
        query = query.where(AuditEntry.at < filters.end)
    if filters.registrant_id is not None:
        query = query.where(AuditEntry.registrant_id == filters.registrant_id)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def recorded_actions() -> list[str]:
    """Every action the log holds, for the filter's choices (services may add actions this module never heard of)."""
    return sorted(db.session.scalars(select(AuditEntry.action).distinct()))


def staff_names() -> list[str]:
    """Every staff member's name, disabled ones too: the log names them."""
    return sorted(db.session.scalars(select(Staff.name)))
