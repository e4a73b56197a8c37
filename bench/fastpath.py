"""PROTOTYPE, not the app: the suggested check-in hot path, to measure what it would gain before anyone
changes registration/. Served the same way as the app:

  gunicorn 'bench.fastpath:create_app()'     (entry `codt_fastpath` in bench/systems.json)

It builds the real app and swaps two functions in that process only:
- the API's bearer authentication: one table-level Core SELECT joining device_tokens and staff (was: an ORM DeviceToken
  plus a lazy load of its Staff), returning light records instead of ORM objects;
- checkins.check_in for ticket codes: table-level SQLAlchemy Core (statements built once, run on the session's
  connection) instead of the ORM unit of work, the partial unique
  index decided by INSERT ... ON CONFLICT DO NOTHING RETURNING (was: SELECT active check-in, INSERT, and
  IntegrityError + rollback on a race), the "already" details in one joined SELECT (was: a second SELECT of
  the check-in plus lazy loads of staff and device), the scan row by a Core INSERT.
With FASTPATH_LEAN=1 (entry `codt_lean`) also no pool pre-ping and no limiter on the API.
Same answers, same recorded scans, same nonce replay; the session path and the manual button (registrant_id)
go to the original code. Not reviewed for production: it is a measuring stick for bench/RESULTS.md.
"""
import json
import os
from types import SimpleNamespace

from flask import g, request
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from registration import clock
from registration import create_app as _create_app
from registration.api import views
from registration.auth import has_bearer_header
from registration.extensions import db
from registration.models import CheckIn, DeviceToken, Registrant, Scan, Staff
from registration.services import checkins
from registration.services.staff import hash_token
from registration.tickets import normalise_code

_original_check_in = checkins.check_in
# Table-level Core, statements built once: session.execute(insert(Model)) or select(Model.column) would take
# the ORM's bulk-insert / ORM-select paths, which cost about as much as the unit of work they replace.
_d, _s, _r = DeviceToken.__table__.c, Staff.__table__.c, Registrant.__table__.c
_c, _sc = CheckIn.__table__, Scan.__table__
_AUTH = (select(_d.id, _d.name, _s.id, _s.name, _s.role).select_from(DeviceToken.__table__.join(
    Staff.__table__, _s.id == _d.staff_id)).where(_d.token_hash == bindparam("h"), _d.revoked_at.is_(None),
                                                   _s.disabled_at.is_(None)))
_REGISTRANT = select(_r.id, _r.family_name, _r.given_name, _r.family_name_kana, _r.given_name_kana, _r.organization,
                     _r.on_site, _r.cancelled_at, _r.seat_status).where(_r.ticket_code == bindparam("code"))
_by, _dev = Staff.__table__.alias("by_staff"), DeviceToken.__table__.alias("by_device")
_ACTIVE = (select(_c.c.at, _c.c.gate, _by.c.name, _dev.c.name)
           .select_from(_c.outerjoin(_by, _by.c.id == _c.c.staff_id).outerjoin(_dev, _dev.c.id == _c.c.device_id))
           .where(_c.c.registrant_id == bindparam("rid"), _c.c.undone_at.is_(None)))
_NONCE = select(_sc.c.status_code, _sc.c.response).where(_sc.c.nonce == bindparam("nonce"))
_INSERT_SCAN = insert(_sc)
_INSERT_CHECKIN = {
    name: dialect_insert(_c).on_conflict_do_nothing(index_elements=[_c.c.registrant_id],
                                                    index_where=_c.c.undone_at.is_(None)).returning(_c.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _conn():
    return db.session.connection()


def fast_authenticate():
    if not has_bearer_header():
        return views.authenticate()
    g.device = None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200 or not token.isascii():
        return views.error(401, "unauthorized")
    row = _conn().execute(_AUTH, {"h": hash_token(token)}).first()
    if row is None:
        return views.error(401, "unauthorized")
    g.device = SimpleNamespace(id=row[0], name=row[1])
    g.staff = SimpleNamespace(id=row[2], name=row[3], role=row[4], is_admin=row[4] == "admin")
    return None


def _attendee(r) -> dict:
    return {"name": f"{r.family_name} {r.given_name}", "kana": f"{r.family_name_kana} {r.given_name_kana}".strip(),
            "organization": r.organization, "on_site": r.on_site}


def _already(conn, r) -> dict:
    active = conn.execute(_ACTIVE, {"rid": r.id}).first()
    return {"result": "already_checked_in", "attendee": _attendee(r), "checked_in_at": checkins._iso(active[0]),
            "gate": active[1], "by": active[2], "device": active[3]}


def fast_check_in(*, code=None, registrant_id=None, gate, staff=None, device=None, nonce=None,
                  previous_latency_ms=None, at=None):
    if code is None or not isinstance(staff, SimpleNamespace):
        return _original_check_in(code=code, registrant_id=registrant_id, gate=gate, staff=staff, device=device,
                                  nonce=nonce, previous_latency_ms=previous_latency_ms, at=at)
    conn = _conn()
    at = at or clock.now()
    if nonce:
        earlier = conn.execute(_NONCE, {"nonce": nonce}).first()
        if earlier is not None:
            return checkins.Answer(earlier[0], json.loads(earlier[1]))
    normalised = normalise_code(code)
    r = None if normalised is None else conn.execute(_REGISTRANT, {"code": normalised}).first()
    staff_id, device_id = staff.id, device.id if device else None
    if r is None:
        body = {"result": "unknown_code"}
    elif r.cancelled_at is not None:
        body = {"result": "not_admitted", "reason": "cancelled", "attendee": _attendee(r)}
    elif r.seat_status != "confirmed":
        body = {"result": "not_admitted", "reason": "waitlisted" if r.seat_status == "waitlisted" else "no_ticket",
                "attendee": _attendee(r)}
    else:
        # The partial unique index decides between two doors; the loser gets no row back instead of an error.
        checkin_id = conn.execute(_INSERT_CHECKIN[conn.dialect.name], {
            "registrant_id": r.id, "at": at, "gate": gate, "staff_id": staff_id, "device_id": device_id}).scalar()
        if checkin_id is not None:
            body = {"result": "ok", "checkin_id": checkin_id, "attendee": _attendee(r),
                    "checked_in_at": checkins._iso(at), "gate": gate}
        else:
            body = _already(conn, r)
    status = checkins.STATUS[body["result"]]
    try:
        conn.execute(_INSERT_SCAN, {
            "at": at, "nonce": nonce, "result": body["result"], "reason": body.get("reason"),
            "registrant_id": r.id if r else None, "gate": gate, "staff_id": staff_id, "device_id": device_id,
            "status_code": status, "response": json.dumps(body, ensure_ascii=False),
            "previous_latency_ms": previous_latency_ms})
    except IntegrityError:
        db.session.rollback()  # the same nonce arrived twice at once: give the other request's answer
        earlier = _conn().execute(_NONCE, {"nonce": nonce}).first()
        return checkins.Answer(earlier[0], json.loads(earlier[1]))
    return checkins.Answer(status, body)


def create_app(test_config=None, **kwargs):
    if os.environ.get("FASTPATH_LEAN"):
        # Upper bound of two configuration changes: no pool pre-ping (one round trip per request), and no
        # Flask-Limiter work on API requests (here the limiter is off altogether, login throttling included:
        # for measuring only; the app would exempt the API blueprint instead).
        test_config = {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 600}, "RATELIMIT_ENABLED": False,
                       **(test_config or {})}
    app = _create_app(test_config, **kwargs)
    funcs = app.before_request_funcs["api"]
    funcs[funcs.index(views.authenticate)] = fast_authenticate
    checkins.check_in = fast_check_in  # the view calls checkins.check_in through the module
    return app
