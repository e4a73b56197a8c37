"""`/api/v1`: check-ins, undo, the live counter, search, the door's data set, and the OpenAPI document. Always JSON,
never an HTML page."""

import json
import unicodedata
from datetime import UTC, datetime

from flask import Blueprint, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from registration import clock, logs
from registration.api.openapi import (
    DOCUMENT,
    MAX_CODE,
    MAX_GATE,
    MAX_LATENCY_MS,
    MAX_MOMENT,
    MAX_NONCE,
)
from registration.auth import bearer_device, has_bearer_header
from registration.errors import CheckInError
from registration.extensions import csrf, db, limiter
from registration.services import checkins, door_data, registrations

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a bearer token carries its own secret; session requests are checked for X-CSRFToken below
limiter.exempt(bp)  # nothing here is rate-limited, so spare every scan the limiter's per-request check


def error(status: int, result: str, **details):
    """A JSON refusal, with the request's id to quote when reporting it."""
    return jsonify({"result": result, **details, "request_id": request.environ.get(logs.ENVIRON_KEY)}), status


@bp.before_request
def authenticate():
    """A device token, or a staff session with its CSRF token in X-CSRFToken; door or admin role either way."""
    g.device = None
    if request.endpoint == "api.openapi":
        return None  # the description is public: a client reads it before it holds any credentials
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
    """Even a 404, 413 or 503 under /api is JSON."""
    status = exc.code or 500
    result = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "too_many_requests"}
    response, status = error(status, "server_error" if status >= 500 else result.get(status, "invalid_request"))
    response.headers.extend((name, value) for name, value in exc.get_headers() if name == "Allow")
    return response, status


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json takes them, the standard does not


def _body() -> dict | tuple:
    """The request's JSON object, or a 400 answer: every malformed body is the client's error, never a 500."""
    if not request.is_json:
        return error(400, "invalid_request", message="The body must be a JSON object.")
    try:
        data = json.loads(request.get_data(), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        # ValueError: not UTF-8 (or -16, -32), not JSON, an integer of more than 4,300 digits. RecursionError:
        # nested deeper than Python's stack allows (json.loads recurses per level; 64 KiB of "[" is 65,536 levels).
        data = None
    if not isinstance(data, dict):
        return error(400, "invalid_request", message="The body must be a JSON object.")
    return data


def _newer_than_python(char: str) -> bool:
    """A code point this Python's Unicode database does not know yet (a new emoji, say), but browsers may: not a
    noncharacter, which is unassigned for good."""
    point = ord(char)
    return (unicodedata.category(char) == "Cn" and not 0xFDD0 <= point <= 0xFDEF
            and point & 0xFFFE != 0xFFFE)


def _text(data: dict, name: str, limit: int, *, required: bool = False, spaces: bool = False,
          newer: bool = False) -> str | None:
    """A text member, trimmed: printable characters, and with `spaces` spaces of any kind inside too."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(name)
    value = value.strip()  # a handheld scanner may end what it types with a tab or a line break
    # A code typed in groups may hold a no-break or ideographic space (isprintable() refuses every space but ASCII's).
    if not value or not (value.isprintable() or all(c.isprintable() or spaces and c.isspace()
                                                    or newer and _newer_than_python(c) for c in value)):
        raise ValueError(name)
    return value


def _moment(value) -> datetime | None:
    """An ISO 8601 moment WITH its UTC offset ("2023-09-14T10:02:03.123+09:00", "...Z"), as aware UTC; None if absent.
    ValueError for anything else: a naive time would be read in some unknown zone."""
    if value is None:
        return None
    if type(value) is not str or not value.isascii() or len(value) > MAX_MOMENT:
        raise ValueError("scanned_at")
    moment = datetime.fromisoformat(value)  # ValueError when malformed
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("scanned_at")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 at +09:00 (or 9999 at -05:00) is outside what a datetime holds in UTC
        # Well-formed, only far off: the service clamps it into the day before the scan was received.
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


# provide_automatic_options=False on every route: OPTIONS gets the API's JSON 405 with Allow, not Flask's empty
# text/html 200 (no browser sends a preflight here: the door page is same-origin).
@bp.post("/checkins", provide_automatic_options=False)
def create_checkin():
    """Admit the holder of `code` (or `registrant_id`, from the manual button) at `gate`."""
    data = _body()
    if isinstance(data, tuple):
        return data
    try:
        code = _text(data, "code", MAX_CODE, spaces=True)
        # A gate is a label a person typed on a phone, whose Unicode may be newer than this Python's.
        gate = _text(data, "gate", MAX_GATE, newer=True) or (g.device.name[:MAX_GATE] if g.device else "door")
        nonce = _text(data, "nonce", MAX_NONCE)
    except ValueError as exc:
        return error(400, "invalid_request", field=str(exc))
    registrant_id = data.get("registrant_id")
    latency = data.get("previous_latency_ms")
    # An id too large for the database is well-formed: the service answers it unknown_code, as any id nobody has.
    if (code is None) == (registrant_id is None) or (
            registrant_id is not None and (type(registrant_id) is not int or registrant_id < 1)):
        return error(400, "invalid_request", message="Send either code or registrant_id.")
    if latency is not None and (type(latency) is not int or not 0 <= latency <= MAX_LATENCY_MS):
        return error(400, "invalid_request", field="previous_latency_ms")
    offline_result = data.get("offline_result")
    if offline_result is not None and (type(offline_result) is not str
                                       or offline_result not in checkins.OFFLINE_RESULTS):
        return error(400, "invalid_request", field="offline_result")
    try:
        scanned_at = _moment(data.get("scanned_at"))
    except ValueError:
        return error(400, "invalid_request", field="scanned_at")
    scan = {"code": code, "registrant_id": registrant_id, "staff_id": g.staff_id,
            "device_id": g.device.id if g.device else None}
    try:
        answer = checkins.check_in(**scan, gate=gate, nonce=nonce, previous_latency_ms=latency,
                                   scanned_at=scanned_at, offline_result=offline_result)
    except checkins.NonceAnswered:
        db.session.rollback()  # this attempt changes nothing: the nonce's first answer stands
        answer = checkins.replay(nonce=nonce, **scan, offline_result=offline_result)
    db.session.commit()
    return jsonify(answer.body), answer.status


@bp.post("/checkins/<id:checkin_id>/undo", provide_automatic_options=False)
def undo_checkin(checkin_id: int):
    """Take back a check-in."""
    try:
        checkin = checkins.undo(checkin_id, staff_id=g.staff_id)
    except CheckInError:
        db.session.rollback()
        return error(404, "not_found")
    db.session.commit()
    return jsonify({"result": "undone", "checkin_id": checkin.id})


@bp.get("/door/dataset", provide_automatic_options=False)
def door_dataset():
    """The door's local copy of the seat holders: all of them, or what changed since the version `since`."""
    answer = door_data.door_dataset(request.args.get("since"))
    if g.device is None:
        # A door page opened from the service worker's cache may hold the token of an earlier session.
        answer["csrf_token"] = generate_csrf()
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"  # personal data: no cache, the service worker's included
    return response


@bp.get("/openapi.json", provide_automatic_options=False)
def openapi():
    """The OpenAPI document of this API."""
    return jsonify(DOCUMENT)


@bp.get("/stats", provide_automatic_options=False)
def stats():
    """The live counter."""
    return jsonify(checkins.stats())


def _search_result(person) -> dict:
    standing = next((c for c in person.checkins if c.undone_at is None), None)
    reason = checkins.refusal_reason(person)
    return {
        "registrant_id": person.id, **checkins.attendee_json(person), "email": person.email,
        "seat_status": "cancelled" if person.is_cancelled else person.seat_status,
        "checked_in": standing is not None,
        # A standing check-in may outlive the ticket (checked in, then cancelled): whether the person may enter is
        # `admissible`, with the refusal's reason, and the check-in is named so that the door can undo it.
        "admissible": reason is None,
        "reason": reason,
        "checkin_id": standing.id if standing else None,
        "checked_in_at": clock.to_tokyo(standing.at).isoformat(timespec="seconds") if standing else None,
        "gate": standing.gate if standing else None,
    }


@bp.get("/registrants", provide_automatic_options=False)
def search():
    """Manual search by name, kana, email or organisation, for people without their code."""
    return jsonify({"results": [_search_result(p) for p in registrations.search(request.args.get("q", ""))]})
