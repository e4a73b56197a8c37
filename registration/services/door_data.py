"""The door's data set: what a door page needs to decide offline, for current seat holders only, and its changes.

Ticket codes never leave the server: each is sent as a keyed hash (HMAC-SHA256 under a key derived from
SECRET_KEY), so the door can recognise a code it scans without holding a list of valid codes. No e-mail addresses.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime, time, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select

from registration import clock
from registration.extensions import db
from registration.models import CheckIn, Event, Registrant
from registration.services import door_conflicts
from registration.services.checkins import attendee_json, display_name
from registration.tickets import normalise_code

#: A version names a moment this long before the answer: longer than any transaction, so a change committed after
#: the answer with an earlier changed_at is still sent next time (a row sent twice is harmless: the door upserts by id).
OVERLAP = timedelta(seconds=60)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A person holds a seat at the door: confirmed, not cancelled, with a current ticket code.
_HOLDS_SEAT = and_(Registrant.seat_status == "confirmed", Registrant.cancelled_at.is_(None),
                   Registrant.ticket_code.is_not(None))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def dataset_key() -> tuple[str, bytes]:
    """The key id and the HMAC key for ticket codes: derived from SECRET_KEY, so stable across processes and restarts,
    and new (with a new id, which makes every door start afresh) when SECRET_KEY changes."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    key = hmac.new(secret, b"codt2023 door dataset: ticket code hashes", hashlib.sha256).digest()
    return _b64(hashlib.sha256(key).digest()[:6]), key


def code_hash(key: bytes, code: str) -> str:
    """base64url (no padding) of the first 16 bytes of HMAC-SHA256(key, the normalised code in UTF-8)."""
    normalised = normalise_code(code) or code
    return _b64(hmac.new(key, normalised.encode(), hashlib.sha256).digest()[:16])


def expires_at() -> datetime:
    """The end of the closing day, Japan time (the registration deadline's day if no event is loaded), as UTC."""
    day = db.session.scalar(select(Event.closing_date).limit(1))
    if day is None:
        day = clock.to_tokyo(current_app.config["REGISTRATION_DEADLINE"]).date()
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.TOKYO).astimezone(UTC)


def _clock_run() -> int:
    """Which run of the clock the versions count in: the rehearsal clock's offset in whole seconds (0 on the real
    clock). A `rehearsal restart` sets the clock back; a version from before it would hide every change made since."""
    return int(clock.rehearsal_offset().total_seconds())


def _version(key_id: str, moment: datetime) -> str:
    return f"{key_id}.{(moment - _EPOCH) // timedelta(microseconds=1)}.{_clock_run()}"


def _since(since: str | None, key_id: str, now: datetime) -> datetime | None:
    """The moment a version names, or None (send everything) when it is missing, malformed, from another key, or
    later than now (the server's clock went back)."""
    if not since or len(since) > 64:
        return None
    found_key, _, rest = since.partition(".")
    micros, _, run = rest.partition(".")
    if found_key != key_id or run != str(_clock_run()):
        return None
    if not micros.isascii() or not micros.isdigit() or len(micros) > 18:
        return None
    try:
        moment = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:  # beyond the year 9999: later than now
        return None
    return None if moment > now else moment


def _iso(moment: datetime, timespec: str = "seconds") -> str:
    return clock.to_tokyo(moment).isoformat(timespec=timespec)


def door_dataset(since: str | None, *, now: datetime | None = None) -> dict:
    """The seat holders the door needs (all of them, or those changed since `since`) and the ids to delete."""
    now = now or clock.now()
    key_id, key = dataset_key()
    ends = expires_at()
    answer = {"version": _version(key_id, now - OVERLAP), "full": True, "key_id": key_id, "key": _b64(key),
              "server_time": _iso(now, "milliseconds"), "expires_at": _iso(ends), "expired": False,
              "people": [], "removed": [], "conflicts": [], "conflicts_open": 0}
    if now >= ends:
        return answer | {"expired": True}  # after the event the door keeps nothing
    changed_since = _since(since, key_id, now)
    standing = CheckIn.__table__.alias("standing")
    query = (select(Registrant.id, Registrant.family_name, Registrant.given_name, Registrant.family_name_kana,
                    Registrant.given_name_kana, Registrant.organization, Registrant.on_site, Registrant.locale,
                    Registrant.ticket_code, _HOLDS_SEAT.label("holds_seat"),
                    standing.c.id.label("checkin_id"), standing.c.at.label("checkin_at"),
                    standing.c.gate.label("checkin_gate"))
             .outerjoin(standing, and_(standing.c.registrant_id == Registrant.id, standing.c.undone_at.is_(None)))
             .order_by(Registrant.id))
    if changed_since is None:
        query = query.where(_HOLDS_SEAT)
    else:
        checked = select(CheckIn.registrant_id).where(
            or_(CheckIn.received_at > changed_since, CheckIn.undone_at > changed_since))
        query = query.where(or_(Registrant.changed_at > changed_since, Registrant.id.in_(checked)))
        answer["full"] = False
    for row in db.session.execute(query):
        if not row.holds_seat:
            answer["removed"].append(row.id)
            continue
        answer["people"].append({
            "id": row.id, "hash": code_hash(key, row.ticket_code), **attendee_json(row),
            "name": display_name(row).strip(),  # an erased person's name is empty, not a space
            "checkin": None if row.checkin_id is None else {
                "id": row.checkin_id, "at": _iso(row.checkin_at), "gate": row.checkin_gate},
        })
    answer["conflicts"] = door_conflicts.open_conflicts(limit=20)
    answer["conflicts_open"] = door_conflicts.count_open()
    return answer
