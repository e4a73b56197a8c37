"""Admission at the closing event's door: one function decides for the API, the door page and the manual button."""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from registration import clock
from registration.errors import CheckInError
from registration.extensions import db
from registration.models import AuditEntry, CheckIn, DeviceToken, Registrant, Scan, Staff
from registration.services import seats
from registration.tickets import normalise_code

STATUS = {"ok": 201, "already_checked_in": 409, "unknown_code": 404, "not_admitted": 403}


@dataclass(frozen=True)
class Answer:
    """What the door is told: an HTTP status and a JSON body."""

    status: int
    body: dict


def _iso(moment: datetime) -> str:
    return clock.to_tokyo(moment).isoformat(timespec="seconds")


def attendee_json(registrant: Registrant) -> dict:
    """What door staff need to see of a person."""
    return {
        "name": registrant.full_name,
        "kana": f"{registrant.family_name_kana} {registrant.given_name_kana}".strip(),
        "organization": registrant.organization,
        "on_site": registrant.on_site,
    }


def check_in(*, code: str | None = None, registrant_id: int | None = None, gate: str,
             staff: Staff | None = None, device: DeviceToken | None = None, nonce: str | None = None,
             previous_latency_ms: int | None = None, at: datetime | None = None) -> Answer:
    """Admit the holder of a ticket code (or, from the manual button, a registrant) once. The whole unit of work.

    Every scan is recorded, refused ones included. A retried nonce gets its first answer again.
    """
    at = at or clock.now()
    if nonce and (earlier := _answer_for_nonce(nonce)) is not None:
        return earlier
    registrant = _find(code, registrant_id)
    checkin = None
    try:
        _admissible(registrant)
        checkin = CheckIn(registrant=registrant, at=at, gate=gate, staff=staff, device=device)
        db.session.add(checkin)
        db.session.flush()  # the partial unique index decides between two doors
        answer = Answer(201, {"result": "ok", "checkin_id": checkin.id, "attendee": attendee_json(registrant),
                              "checked_in_at": _iso(at), "gate": gate})
    except CheckInError as error:
        answer = _refusal(error, registrant)
    except IntegrityError:
        db.session.rollback()  # safe: nothing else is pending in this unit of work
        registrant = _find(code, registrant_id)
        answer = _refusal(CheckInError("already_checked_in"), registrant)
    scan = Scan(at=at, nonce=nonce, result=answer.body["result"], reason=answer.body.get("reason"),
                registrant_id=registrant.id if registrant else None, gate=gate,
                staff_id=staff.id if staff else None, device_id=device.id if device else None,
                status_code=answer.status, response=json.dumps(answer.body, ensure_ascii=False),
                previous_latency_ms=previous_latency_ms)
    db.session.add(scan)
    try:
        db.session.flush()
    except IntegrityError:
        # The same nonce arrived twice at once: the other request did the work, so give its answer.
        db.session.rollback()
        return _answer_for_nonce(nonce)
    return answer


def _find(code: str | None, registrant_id: int | None) -> Registrant | None:
    if registrant_id is not None:
        return db.session.get(Registrant, registrant_id)
    normalised = normalise_code(code or "")
    if normalised is None:
        return None
    return db.session.scalar(select(Registrant).where(Registrant.ticket_code == normalised))


def _admissible(registrant: Registrant | None) -> None:
    if registrant is None:
        raise CheckInError("unknown_code")
    if registrant.is_cancelled:
        raise CheckInError("not_admitted", "cancelled")
    if registrant.seat_status == "waitlisted":
        raise CheckInError("not_admitted", "waitlisted")
    if registrant.seat_status != "confirmed":
        raise CheckInError("not_admitted", "no_ticket")
    active = _active_checkin(registrant)
    if active is not None:
        raise CheckInError("already_checked_in")


def _active_checkin(registrant: Registrant) -> CheckIn | None:
    return db.session.scalar(
        select(CheckIn).where(CheckIn.registrant_id == registrant.id, CheckIn.undone_at.is_(None))
    )


def _refusal(error: CheckInError, registrant: Registrant | None) -> Answer:
    body: dict = {"result": error.code}
    if error.reason:
        body["reason"] = error.reason
    if registrant is not None:
        body["attendee"] = attendee_json(registrant)
    if error.code == "already_checked_in":
        active = _active_checkin(registrant)
        body.update(checked_in_at=_iso(active.at), gate=active.gate,
                    by=active.staff.name if active.staff else None,
                    device=active.device.name if active.device else None)
    return Answer(STATUS[error.code], body)


def _answer_for_nonce(nonce: str) -> Answer | None:
    scan = db.session.scalar(select(Scan).where(Scan.nonce == nonce))
    return Answer(scan.status_code, json.loads(scan.response)) if scan else None


def undo(checkin_id: int, *, staff: Staff, at: datetime | None = None) -> CheckIn:
    """Take back a check-in (a wrong person let in, a double tap); recorded in the audit log."""
    at = at or clock.now()
    checkin = db.session.get(CheckIn, checkin_id)
    if checkin is None or checkin.undone_at is not None:
        raise CheckInError("unknown_code")
    checkin.undone_at = at
    checkin.undone_by_id = staff.id
    db.session.add(AuditEntry(at=at, staff_id=staff.id, action="checkin.undo", registrant_id=checkin.registrant_id,
                              details=f"check-in {checkin.id} at {_iso(checkin.at)}, gate {checkin.gate}"))
    db.session.flush()
    return checkin


def stats() -> dict:
    """The door's live counter: checked in against confirmed seats."""
    summary = seats.summary()
    checked_in = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.undone_at.is_(None)))
    return {"checked_in": checked_in, "confirmed": summary.confirmed, "capacity": summary.capacity,
            "waitlisted": summary.waitlisted}


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
