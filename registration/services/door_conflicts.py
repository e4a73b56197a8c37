"""Door conflicts: scans where what a door decided offline and what the server knew disagree (a ticket admitted twice
by two devices offline, a refused code admitted, a ticket holder turned away). The server records them on the scan
(scans.conflict, see services/checkins.py); staff find the person and mark each one "dealt with" here.

One query serves every list, with the standing check-in (the admission that counts) joined in: the door's data set
sends the open ones to every door page every few seconds, so there is no query per conflict.
"""

from datetime import datetime

from sqlalchemy import and_, func, select, update

from registration import clock
from registration.converters import MAX_ID
from registration.errors import DomainError
from registration.extensions import db
from registration.models import CheckIn, DeviceToken, Registrant, Scan, Staff
from registration.services import audit
from registration.services.checkins import display_name

#: The kinds of conflict the check-in API records (scans.conflict).
KINDS = ("admitted_twice", "admitted_without_ticket", "refused_with_ticket")


class ConflictError(DomainError):
    """Why a conflict could not be marked as dealt with."""

    codes = frozenset({
        "unknown",           # no scan with that id records a conflict
        "already_resolved",  # somebody marked it dealt with first (another tab, another member of staff)
    })


_scans, _registrants, _checkins = Scan.__table__, Registrant.__table__, CheckIn.__table__
_scan_staff, _scan_device = Staff.__table__.alias("scan_staff"), DeviceToken.__table__.alias("scan_device")
_admission_staff = Staff.__table__.alias("admission_staff")
_admission_device = DeviceToken.__table__.alias("admission_device")
_resolver = Staff.__table__.alias("resolver")
_admission = _checkins.alias("admission")

_OPEN = and_(_scans.c.conflict.is_not(None), _scans.c.conflict_resolved_at.is_(None))


def _select():
    """Conflict scans with their person, their standing admission and every name they show, in one statement."""
    s, r, a = _scans.c, _registrants.c, _admission.c
    return (
        select(s.id, s.conflict, s.registrant_id, s.at, s.received_at, s.gate, s.offline_result, s.result, s.reason,
               s.conflict_resolved_at, _scan_staff.c.name.label("scan_by"), _scan_device.c.name.label("scan_device"),
               _resolver.c.name.label("resolved_by"),
               r.family_name, r.given_name, r.locale, r.organization, r.anonymised_at,
               a.id.label("admission_id"), a.at.label("admission_at"), a.gate.label("admission_gate"),
               _admission_staff.c.name.label("admission_by"), _admission_device.c.name.label("admission_device"))
        .select_from(
            _scans.outerjoin(_registrants, r.id == s.registrant_id)
            # At most one standing check-in per person (uq_checkins_active_registrant): the join adds no rows.
            .outerjoin(_admission, and_(a.registrant_id == s.registrant_id, a.undone_at.is_(None)))
            .outerjoin(_scan_staff, _scan_staff.c.id == s.staff_id)
            .outerjoin(_scan_device, _scan_device.c.id == s.device_id)
            .outerjoin(_admission_staff, _admission_staff.c.id == a.staff_id)
            .outerjoin(_admission_device, _admission_device.c.id == a.device_id)
            .outerjoin(_resolver, _resolver.c.id == s.conflict_resolved_by_id))
        .where(s.conflict.is_not(None))
        .order_by(s.received_at.desc(), s.id.desc()))


def _iso(moment: datetime | None) -> str | None:
    return clock.to_tokyo(moment).isoformat(timespec="seconds") if moment else None


def _as_dict(row, *, details: bool) -> dict:
    """A conflict as the door's data set sends it; with `details`, also what the console shows besides (device
    names, the server's answer, who dealt with it and when)."""
    erased = row.anonymised_at is not None or row.family_name is None
    conflict = {
        "scan_id": row.id,
        "kind": row.conflict,
        "registrant_id": row.registrant_id,
        "name": "" if erased else display_name(row),
        "organization": "" if erased else row.organization,
        "admission": None if row.admission_id is None else {
            "at": _iso(row.admission_at), "gate": row.admission_gate, "by": row.admission_by},
        "scan": {"at": _iso(row.at), "received_at": _iso(row.received_at), "gate": row.gate, "by": row.scan_by,
                 "offline_result": row.offline_result},
    }
    if details:
        conflict["admission"] = conflict["admission"] and {**conflict["admission"], "device": row.admission_device,
                                                           "moment": row.admission_at}
        conflict["scan"].update(device=row.scan_device, result=row.result, reason=row.reason, moment=row.at,
                                received=row.received_at)
        conflict.update(resolved_at=row.conflict_resolved_at, resolved_by=row.resolved_by,
                        family_name="" if erased else row.family_name, given_name="" if erased else row.given_name)
    return conflict


def open_conflicts(limit: int = 20) -> list[dict]:
    """The conflicts nobody has dealt with yet, newest first, as the door's data set sends them (JSON-able)."""
    rows = db.session.execute(_select().where(_scans.c.conflict_resolved_at.is_(None)).limit(limit)).all()
    return [_as_dict(row, details=False) for row in rows]


def count_open() -> int:
    """How many conflicts wait to be dealt with."""
    return db.session.scalar(select(func.count()).select_from(_scans).where(_OPEN)) or 0


def listing(*, limit: int | None = None, only_open: bool = False) -> list[dict]:
    """Conflicts for the console, newest first, dealt with or not, with their details (times as datetimes too)."""
    query = _select()
    if only_open:
        query = query.where(_scans.c.conflict_resolved_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [_as_dict(row, details=True) for row in db.session.execute(query).all()]


def conflicts_for(registrant_id: int) -> list[dict]:
    """One person's conflicts, dealt with or not, newest first, with the console's details."""
    rows = db.session.execute(_select().where(_scans.c.registrant_id == registrant_id)).all()
    return [_as_dict(row, details=True) for row in rows]


def resolve(scan_id: int, *, staff_id: int, at: datetime | None = None) -> int | None:
    """Mark a conflict as dealt with, once; returns the person's id (None for an unknown code's scan).

    Raises ConflictError("unknown") when no such conflict exists, ("already_resolved") when somebody was first.
    """
    at = at or clock.now()
    if not 1 <= scan_id <= MAX_ID:
        raise ConflictError("unknown")
    # Conditional: of two staff pressing "dealt with" at once, one marks it (and is audited), the other is told.
    done = db.session.execute(
        update(_scans).where(_scans.c.id == scan_id, _OPEN)
        .values(conflict_resolved_at=at, conflict_resolved_by_id=staff_id)
        .returning(_scans.c.registrant_id, _scans.c.conflict, _scans.c.gate, _scans.c.at)).first()
    if done is None:
        conflict = db.session.scalar(select(_scans.c.conflict).where(_scans.c.id == scan_id))
        raise ConflictError("unknown" if conflict is None else "already_resolved")
    audit.record("door.conflict_resolved", registrant_id=done.registrant_id, by=db.session.get(Staff, staff_id),
                 details=f"scan {scan_id}: {done.conflict}, gate {done.gate}, scanned {_iso(done.at)}",
                 before={"conflict": done.conflict}, after={"conflict": None}, at=at)
    db.session.flush()
    return done.registrant_id
