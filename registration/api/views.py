"""`/api/v1`: check-ins, undo, the live counter and search. Always JSON, never an HTML page."""

from flask import Blueprint, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from registration.auth import bearer_device, has_bearer_header
from registration.errors import CheckInError
from registration.extensions import csrf, db, limiter
from registration.services import checkins, registrations

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a bearer token carries its own secret; session requests are checked for X-CSRFToken below
limiter.exempt(bp)  # nothing here is rate-limited, so spare every scan the limiter's per-request check

MAX_GATE = 40
MAX_NONCE = 64


def error(status: int, result: str, **details):
    """A JSON refusal."""
    return jsonify({"result": result, **details}), status


@bp.before_request
def authenticate():
    """A device token, or a staff session with its CSRF token in X-CSRFToken; door or admin role either way."""
    g.device = None
    if has_bearer_header():
        device = bearer_device()
        if device is None:
            return error(401, "unauthorized")
        g.device, g.staff_id = device, device.staff_id
        return None
    if not current_user.is_authenticated:
        return error(401, "unauthorized")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError:
            return error(401, "unauthorized", reason="csrf")
    g.staff_id = current_user.id
    return None


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    """Even a 404 or 413 under /api is JSON."""
    result = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "too_many_requests"}
    return error(exc.code or 500, result.get(exc.code, "invalid_request"))


def _body() -> dict | tuple:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, "invalid_request", message="The body must be a JSON object.")
    return data


def _text(data: dict, name: str, limit: int, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise ValueError(name)
    return value.strip()


@bp.post("/checkins")
def create_checkin():
    """Admit the holder of `code` (or `registrant_id`, from the manual button) at `gate`."""
    data = _body()
    if isinstance(data, tuple):
        return data
    try:
        code = _text(data, "code", 200)
        gate = _text(data, "gate", MAX_GATE) or (g.device.name[:MAX_GATE] if g.device else "door")
        nonce = _text(data, "nonce", MAX_NONCE)
    except ValueError as exc:
        return error(400, "invalid_request", field=str(exc))
    registrant_id = data.get("registrant_id")
    latency = data.get("previous_latency_ms")
    if (code is None) == (registrant_id is None) or (
            registrant_id is not None and (type(registrant_id) is not int or registrant_id < 1)):
        return error(400, "invalid_request", message="Send either code or registrant_id.")
    if latency is not None and (type(latency) is not int or not 0 <= latency < 3_600_000):
        return error(400, "invalid_request", field="previous_latency_ms")
    answer = checkins.check_in(code=code, registrant_id=registrant_id, gate=gate, staff_id=g.staff_id,
                               device_id=g.device.id if g.device else None, nonce=nonce, previous_latency_ms=latency)
    db.session.commit()
    return jsonify(answer.body), answer.status


@bp.post("/checkins/<int:checkin_id>/undo")
def undo_checkin(checkin_id: int):
    """Take back a check-in."""
    try:
        checkin = checkins.undo(checkin_id, staff_id=g.staff_id)
    except CheckInError:
        db.session.rollback()
        return error(404, "not_found")
    db.session.commit()
    return jsonify({"result": "undone", "checkin_id": checkin.id})


@bp.get("/stats")
def stats():
    """The live counter."""
    return jsonify(checkins.stats())


@bp.get("/registrants")
def search():
    """Manual search by name, kana, email or organisation, for people without their code."""
    people = registrations.search(request.args.get("q", ""))
    return jsonify({"results": [
        {"registrant_id": p.id, **checkins.attendee_json(p), "email": p.email,
         "seat_status": "cancelled" if p.is_cancelled else p.seat_status,
         "checked_in": any(c.undone_at is None for c in p.checkins)}
        for p in people
    ]})
