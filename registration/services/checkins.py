"""Admission at the closing event's door: one function decides for the API, the door page and the manual button."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, bindparam, func, literal_column, null, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registration import clock
from registration.converters import MAX_ID
from registration.direct import DirectStatement
from registration.errors import CheckInError
from registration.extensions import db
from registration.models import AuditEntry, CheckIn, DeviceToken, Registrant, Scan, Staff, Ticket, written_name
from registration.services import seats
from registration.tickets import code_problem, normalise_code

STATUS = {"ok": 201, "already_checked_in": 409, "unknown_code": 404, "not_admitted": 403, "nonce_reused": 422}


class NonceAnswered(Exception):
    """This scan's nonce was answered before: the caller rolls back and replays the stored answer (replay())."""

# Every door scan runs these, so they are table-level Core statements built once and run on the DBAPI cursor
# (registration/direct.py): through the ORM's unit of work a scan cost more than twice the CPU (bench/RESULTS.md).
_registrants, _checkins, _scans, _tickets = Registrant.__table__, CheckIn.__table__, Scan.__table__, Ticket.__table__
_ATTENDEE = (_registrants.c.id, _registrants.c.family_name, _registrants.c.given_name,
             _registrants.c.family_name_kana, _registrants.c.given_name_kana, _registrants.c.organization,
             _registrants.c.on_site, _registrants.c.cancelled_at, _registrants.c.seat_status, _registrants.c.locale)
# Through the ticket history, so that a code that no longer admits still says whose it was and why.
_ATTENDEE_BY_CODE = DirectStatement(
    select(*_ATTENDEE, _tickets.c.retired_at, _tickets.c.retired_reason)
    .select_from(_tickets.join(_registrants, _registrants.c.id == _tickets.c.registrant_id))
    .where(_tickets.c.code == bindparam("code")),
    "code",
)
_ATTENDEE_BY_ID = DirectStatement(
    select(*_ATTENDEE, null().label("retired_at"), null().label("retired_reason"))
    .where(_registrants.c.id == bindparam("registrant_id")),
    "registrant_id",
)
_by_staff, _by_device = Staff.__table__.alias("by_staff"), DeviceToken.__table__.alias("by_device")


def _with_names(checkins):
    """Check-in rows joined with the names of the staff member and the device that made them."""
    return (checkins.outerjoin(_by_staff, _by_staff.c.id == checkins.c.staff_id)
            .outerjoin(_by_device, _by_device.c.id == checkins.c.device_id))


_ADMISSION = ("registrant_id", "at", "received_at", "gate", "staff_id", "device_id")
# PostgreSQL: one statement admits, or returns the check-in of the door that was first. The partial unique index
# decides between two doors; ON CONFLICT DO UPDATE with a no-op SET hands back the standing row (and locks it until
# this scan commits, so an undo waits for the answer given), and xmax = 0 tells a new row from a standing one.
_admission = (
    postgresql.insert(_checkins).values({name: bindparam(name) for name in _ADMISSION})
    .on_conflict_do_update(index_elements=[_checkins.c.registrant_id], index_where=_checkins.c.undone_at.is_(None),
                           set_={"gate": _checkins.c.gate})
    .returning(_checkins.c.id, _checkins.c.at, _checkins.c.gate, _checkins.c.staff_id, _checkins.c.device_id,
               literal_column("xmax = 0", Boolean).label("admitted"))
    .cte("admission")
)
_ADMIT_OR_MEET = DirectStatement(
    select(_admission.c.id, _admission.c.admitted, _admission.c.at, _admission.c.gate,
           _by_staff.c.name.label("by"), _by_device.c.name.label("device"))
    .select_from(_with_names(_admission)),
    *_ADMISSION,
)
# SQLite: the insert takes the database's write lock, so the check-in it met stays as it is until this scan commits.
_ADMIT_SQLITE = DirectStatement(
    sqlite.insert(_checkins).on_conflict_do_nothing(
        index_elements=[_checkins.c.registrant_id], index_where=_checkins.c.undone_at.is_(None),
    ).returning(_checkins.c.id),
    *_ADMISSION,
)
# The standing check-in and who made it: after SQLite's insert met one, and for an offline refusal (both dialects).
_STANDING_CHECKIN = DirectStatement(
    select(_checkins.c.id, _checkins.c.at, _checkins.c.gate, _by_staff.c.name.label("by"),
           _by_device.c.name.label("device"))
    .select_from(_with_names(_checkins))
    .where(_checkins.c.registrant_id == bindparam("registrant_id"), _checkins.c.undone_at.is_(None)),
    "registrant_id",
)
_ANSWER_FOR_NONCE = select(_scans.c.status_code, _scans.c.response, _scans.c.code, _scans.c.registrant_id,
                           _scans.c.staff_id, _scans.c.device_id, _scans.c.offline_result,
                           _scans.c.conflict).where(_scans.c.nonce == bindparam("nonce"))
_SCAN = ("at", "received_at", "nonce", "code", "result", "reason", "registrant_id", "gate", "staff_id", "device_id",
         "status_code", "response", "previous_latency_ms", "offline_result", "conflict")
#: By dialect name: INSERT ... ON CONFLICT (nonce) DO NOTHING RETURNING, in each one's SQLAlchemy construct.
_RECORD_SCAN = {
    name: DirectStatement(
        dialect.insert(_scans).on_conflict_do_nothing(index_elements=[_scans.c.nonce]).returning(_scans.c.id), *_SCAN)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
# PostgreSQL: a scan that admits nobody is committed without waiting for the disk (SET LOCAL synchronous_commit = off,
# in its function form, so that it costs no round trip). A database crash may lose the last fraction of a second of
# refused and repeated scans, which changes nothing at the door; waiting for the disk tripled what such a scan cost
# the database (bench/RESULTS.md). An admission still waits: it must survive a crash.
_RECORD_REFUSAL_POSTGRESQL = DirectStatement(
    postgresql.insert(_scans).on_conflict_do_nothing(index_elements=[_scans.c.nonce])
    .returning(_scans.c.id, literal_column("set_config('synchronous_commit', 'off', true)").label("commit")),
    *_SCAN,
)


@dataclass(frozen=True)
class Answer:
    """What the door is told: an HTTP status and a JSON body."""

    status: int
    body: dict


def _iso(moment: datetime) -> str:
    return clock.to_tokyo(moment).isoformat(timespec="seconds")


def display_name(registrant) -> str:
    """The name as the person's own language writes it: "John Smith" for an English registrant, "山田 太郎" for a
    Japanese one (a Registrant, or a row with the same column names)."""
    return written_name(registrant.family_name, registrant.given_name, registrant.locale)


def attendee_json(registrant) -> dict:
    """What door staff need to see of a person (a Registrant, or a row with the same column names)."""
    return {
        "name": display_name(registrant),
        "kana": f"{registrant.family_name_kana} {registrant.given_name_kana}".strip(),
        "organization": registrant.organization,
        "on_site": registrant.on_site,
    }


#: What the door may have decided on its own while offline (the API's `offline_result`).
OFFLINE_RESULTS = ("ok", "already_checked_in", "unknown_code", "not_admitted")
#: How far back a device's scan time is believed: a queued scan older than this is recorded at this limit.
SCAN_TIME_WINDOW = timedelta(hours=24)


def door_time(scanned_at: datetime | None, received: datetime) -> datetime:
    """When the scan happened at the door: the device's time, clamped into [received - 24 h, received] (a device
    whose clock is wrong never writes the future), or `received` when the device gave none."""
    if scanned_at is None:
        return received
    return min(max(scanned_at, received - SCAN_TIME_WINDOW), received)


def conflict_for(offline_result: str | None, result: str) -> str | None:
    """Where the door's offline decision and the server's answer disagree about a ticket, or None."""
    if offline_result is None:
        return None
    if offline_result == "ok":
        if result == "ok":
            return None
        return "admitted_twice" if result == "already_checked_in" else "admitted_without_ticket"
    # The door refused: a conflict only if the server would have let a ticket holder in.
    return "refused_with_ticket" if result == "ok" else None


def check_in(*, code: str | None = None, registrant_id: int | None = None, gate: str,
             staff_id: int | None = None, device_id: int | None = None, nonce: str | None = None,
             previous_latency_ms: int | None = None, at: datetime | None = None,
             scanned_at: datetime | None = None, offline_result: str | None = None) -> Answer:
    """Admit the holder of a ticket code (or, from the manual button, a registrant) once.

    `at` is when the server received the scan (now by default), `scanned_at` the device's own time of the scan, and
    `offline_result` what the door decided while offline: a refusal there stays a refusal (no check-in is made) and
    a disagreement is recorded as the scan's conflict. Every scan is recorded, refused ones included. If the nonce
    was answered before, raises NonceAnswered: the caller rolls this attempt back and answers with replay().
    """
    received = at or clock.now()
    at = door_time(scanned_at, received)
    connection = db.session.connection()
    normalised = None if code is None else normalise_code(code)
    registrant = _find(connection, normalised, registrant_id)
    scanned = _as_scanned(code, registrant_id)
    malformed = code if code is not None and normalised is None else None  # cannot be any ticket's code
    body = _refusal(registrant, malformed)
    if body is None and offline_result not in (None, "ok"):
        # The door turned a ticket holder away while offline: that is what happened, so no check-in now.
        body = _standing(connection, registrant) or {
            "result": "not_admitted", "reason": "refused_offline", "attendee": attendee_json(registrant)}
        conflict = None if body["result"] == "already_checked_in" else "refused_with_ticket"
    else:
        body = body or _admit(connection, registrant, at=at, received=received, gate=gate, staff_id=staff_id,
                              device_id=device_id)
        conflict = conflict_for(offline_result, body["result"])
    if conflict:
        body["conflict"] = conflict
    status = STATUS[body["result"]]
    record = _RECORD_SCAN[connection.dialect.name]
    if body["result"] != "ok" and not conflict and connection.dialect.name == "postgresql":
        record = _RECORD_REFUSAL_POSTGRESQL  # a conflict, like an admission, must survive a crash
    recorded = record.scalar(
        connection, at=at, received_at=received, nonce=nonce, code=scanned, result=body["result"],
        reason=body.get("reason"), registrant_id=registrant.id if registrant else None, gate=gate, staff_id=staff_id,
        device_id=device_id, status_code=status, response=json.dumps(body, ensure_ascii=False),
        previous_latency_ms=previous_latency_ms, offline_result=offline_result, conflict=conflict)
    if recorded is None:
        # The nonce was answered before (a retry, or the same scan arriving twice at once): a retry is rare,
        # so it is found here, by the unique nonce, rather than by a read before every scan.
        raise NonceAnswered(nonce)
    return Answer(status, body)


def replay(*, nonce: str, code: str | None = None, registrant_id: int | None = None, staff_id: int | None = None,
           device_id: int | None = None, offline_result: str | None = None) -> Answer:
    """The first answer given to `nonce`, if it was given to the same scan: same code or person, same device.

    A nonce sent again with another code, or by another device, never gets someone else's admission. A retry that
    says the door decided offline (the first attempt reached the server, but its answer never reached the door)
    marks the stored scan with that decision and the conflict it implies, once.
    """
    connection = db.session.connection()
    stored = connection.execute(_ANSWER_FOR_NONCE, {"nonce": nonce}).one()
    # The same device token, or (for the door page) a staff session, whoever's: a queue kept on a phone through a
    # sign-out is sent under the next sign-in, and its retries must still find their first answers.
    same_scan = (stored.code == _as_scanned(code, registrant_id) and stored.device_id == device_id
                 and (stored.staff_id is None) == (staff_id is None))
    if not same_scan:
        return Answer(STATUS["nonce_reused"], {"result": "nonce_reused"})
    body = json.loads(stored.response)
    conflict = stored.conflict
    if offline_result is not None and stored.offline_result is None:
        implied = conflict_for(offline_result, body["result"])
        if offline_result == "already_checked_in" and body["result"] == "ok":
            # The door's copy knew of a check-in: most likely the one this very attempt made (synced before its
            # late answer came), so the person is rightly counted inside. Staff undo it by hand if not.
            implied = None
        # Conditional: of two retries arriving at once, one marks the scan. The check-in the first attempt made
        # stands even when the door turned the person away unseen: another door may have let them in on it since;
        # the conflict shows the case to staff, who undo it at the console if the person is not inside.
        marked = connection.execute(
            update(_scans).where(_scans.c.nonce == nonce, _scans.c.offline_result.is_(None))
            .values(offline_result=offline_result, conflict=implied).returning(_scans.c.conflict)).first()
        conflict = marked.conflict if marked is not None else connection.scalar(
            select(_scans.c.conflict).where(_scans.c.nonce == nonce))  # the retry that marked it first
    if conflict:
        body["conflict"] = conflict
    return Answer(stored.status_code, body)


def _as_scanned(code: str | None, registrant_id: int | None) -> str:
    """What the scan record keeps of what was scanned: the code, normalised when it can be a ticket code (else its
    printable part), or "#<id>" for the manual button's registrant id, known or not."""
    if code is None:
        return f"#{registrant_id}"[:200]
    return normalise_code(code) or "".join(char for char in code.strip() if char.isprintable())[:200]


def _find(connection, normalised: str | None, registrant_id: int | None):
    """The person scanned: by their id (the manual button), or through the ticket history by the normalised code."""
    if registrant_id is not None:
        if not 1 <= registrant_id <= MAX_ID:
            return None
        return _ATTENDEE_BY_ID.first(connection, registrant_id=registrant_id)
    if normalised is None:
        return None
    return _ATTENDEE_BY_CODE.first(connection, code=normalised)


def _refusal(registrant, malformed: str | None = None) -> dict | None:
    """The answer to someone who may not enter at all, or None when they hold a ticket.

    `malformed` is a scanned text that cannot be a ticket code: the answer then says why (too short, too long, wrong
    characters), so that the door can tell what to check. The result stays unknown_code, as before.
    """
    if registrant is None:
        problem = code_problem(malformed) if malformed is not None else None
        return {"result": "unknown_code", "problem": problem.as_json()} if problem else {"result": "unknown_code"}
    reason = refusal_reason(registrant)
    if reason is None:
        return None
    return {"result": "not_admitted", "reason": reason, "attendee": attendee_json(registrant)}


def refusal_reason(registrant) -> str | None:
    """Why the door turns this person away (cancelled, waitlisted, no_ticket, replaced), or None for a ticket holder.

    `registrant` is a Registrant, or a scan's row that also says whether the scanned code was retired and why.
    """
    holds_seat = registrant.seat_status == "confirmed" and registrant.cancelled_at is None
    if getattr(registrant, "retired_at", None) is not None and (
            registrant.retired_reason == "replaced" or holds_seat):
        return "replaced"  # rotated away, or an older code of someone who holds a newer one
    if registrant.cancelled_at is not None:
        return "cancelled"
    if registrant.seat_status == "waitlisted":
        return "waitlisted"
    return None if holds_seat else "no_ticket"


def _standing(connection, registrant) -> dict | None:
    """The already_checked_in answer for a ticket holder with a standing check-in, or None (nothing is written)."""
    standing = _STANDING_CHECKIN.first(connection, registrant_id=registrant.id)
    return None if standing is None else _already(registrant, standing)


def _already(registrant, standing) -> dict:
    return {"result": "already_checked_in", "checkin_id": standing.id, "attendee": attendee_json(registrant),
            "checked_in_at": _iso(standing.at), "gate": standing.gate, "by": standing.by, "device": standing.device}


def _admit(connection, registrant, *, at: datetime, received: datetime, gate: str, staff_id: int | None,
           device_id: int | None) -> dict:
    """Check the ticket holder in, or say when and where they already were."""
    values = {"registrant_id": registrant.id, "at": at, "received_at": received, "gate": gate, "staff_id": staff_id,
              "device_id": device_id}
    if connection.dialect.name == "postgresql":
        row = _ADMIT_OR_MEET.first(connection, **values)
        checkin_id, standing = row.id, None if row.admitted else row  # row.id is the standing check-in's id
    else:
        checkin_id = _ADMIT_SQLITE.scalar(connection, **values)
        standing = None if checkin_id is not None else _STANDING_CHECKIN.first(
            connection, registrant_id=registrant.id)
    if standing is None:
        return {"result": "ok", "checkin_id": checkin_id, "attendee": attendee_json(registrant),
                "checked_in_at": _iso(at), "gate": gate}
    return _already(registrant, standing)


def undo(checkin_id: int, *, staff_id: int, at: datetime | None = None) -> CheckIn:
    """Take back a check-in (a wrong person let in, a double tap); recorded in the audit log."""
    at = at or clock.now()
    if not 1 <= checkin_id <= MAX_ID:
        raise CheckInError("unknown_code")
    # Conditional: of two staff undoing the same check-in at once, one undoes it and the other is told it is gone.
    undone = db.session.execute(
        update(_checkins).where(_checkins.c.id == checkin_id, _checkins.c.undone_at.is_(None))
        .values(undone_at=at, undone_by_id=staff_id)
        .returning(_checkins.c.registrant_id, _checkins.c.at, _checkins.c.gate)).first()
    if undone is None:
        raise CheckInError("unknown_code")
    db.session.add(AuditEntry(at=at, staff_id=staff_id, actor="staff", action="checkin.undo",
                              registrant_id=undone.registrant_id,
                              details=f"check-in {checkin_id} at {_iso(undone.at)}, gate {undone.gate}",
                              before=json.dumps({"checked_in_at": _iso(undone.at), "gate": undone.gate}),
                              after=json.dumps({"checked_in_at": None})))
    db.session.flush()
    return db.session.get(CheckIn, checkin_id, populate_existing=True)


def stats() -> dict:
    """The door's live counter: current seat holders checked in, against confirmed seats.

    People checked in who have since lost their seat (cancelled, say) are counted apart, not lost.
    """
    summary = seats.summary()
    holds_seat = (Registrant.seat_status == "confirmed") & Registrant.cancelled_at.is_(None)
    counts = dict(db.session.execute(
        select(holds_seat, func.count()).select_from(CheckIn).join(Registrant)
        .where(CheckIn.undone_at.is_(None)).group_by(holds_seat)
    ).all())
    return {"checked_in": counts.get(True, 0), "confirmed": summary.confirmed, "capacity": summary.capacity,
            "waitlisted": summary.waitlisted, "checked_in_without_seat": counts.get(False, 0)}


def door_speed(limit: int = 5000) -> dict | None:
    """Scan-to-answer times the door pages measured (their latest `limit` scans): count, median, 95th percentile."""
    times = sorted(db.session.scalars(
        select(Scan.previous_latency_ms).where(Scan.previous_latency_ms.is_not(None))
        .order_by(Scan.id.desc()).limit(limit)
    ).all())
    if not times:
        return None
    return {"count": len(times), "median_ms": times[len(times) // 2],
            "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))]}
