"""Staff accounts and scanner-device tokens."""

import hashlib
import secrets
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from registration import clock
from registration.direct import DirectStatement
from registration.errors import StaffError
from registration.extensions import db
from registration.models import DeviceToken, Staff

ROLES = ("door", "admin")
MIN_PASSWORD_LENGTH = 12
#: What the sign-in form accepts (LoginForm).
MAX_PASSWORD_LENGTH = 200
#: Staff.name and DeviceToken.name are String(80).
MAX_NAME_LENGTH = 80
#: Compared against when the name is unknown, so that a failed login takes as long either way.
_DUMMY_HASH = generate_password_hash("not a password of anyone")
_devices, _staff = DeviceToken.__table__, Staff.__table__
#: Every scanner request runs this: one table-level Core query, built once, instead of an ORM DeviceToken plus a
#: lazy load of its Staff (password hash included). `disabled_at IS NULL` is Staff.is_active.
_LIVE_DEVICE = DirectStatement(
    select(_devices.c.id, _devices.c.name, _devices.c.staff_id)
    .join_from(_devices, _staff, _staff.c.id == _devices.c.staff_id)
    .where(_devices.c.token_hash == bindparam("token_hash"), _devices.c.revoked_at.is_(None),
           _staff.c.disabled_at.is_(None)),
    "token_hash",
)


class Device(NamedTuple):
    """A live scanner device and the staff member it acts for: what the API records with a scan."""

    id: int
    name: str
    staff_id: int


def add_staff(name: str, *, role: str, password: str) -> Staff:
    """Create a staff account (password hashed with scrypt)."""
    if not is_valid_name(name):
        raise StaffError("bad_name")
    if role not in ROLES:
        raise StaffError("bad_role")
    _check_password(password)
    if db.session.scalar(select(Staff.id).where(Staff.name == name)):
        raise StaffError("name_taken")
    staff = Staff(name=name, role=role, password_hash=generate_password_hash(password))
    db.session.add(staff)
    db.session.flush()
    return staff


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise StaffError("weak_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError("long_password")  # the sign-in form takes no more, so the account could never sign in


def is_valid_name(name: str) -> bool:
    """1 to MAX_NAME_LENGTH printable characters on one line, without spaces around them: a name to sign in with."""
    # isprintable() refuses control characters, line breaks and every space but the ASCII one.
    return 0 < len(name) <= MAX_NAME_LENGTH and name.isprintable() and name == name.strip()


def authenticate(name: str, password: str) -> Staff | None:
    """The active staff member with this name and password, or None."""
    # A name no account can have (a NUL, which PostgreSQL refuses outright, say) is an unknown name: same answer,
    # same time.
    staff = db.session.scalar(select(Staff).where(Staff.name == name)) if is_valid_name(name) else None
    if staff is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(staff.password_hash, password) or not staff.is_active:
        return None
    return staff


def hash_token(token: str) -> str:
    """How a device token is stored: its SHA-256 (the token itself is 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_device_token(staff: Staff, *, device_name: str) -> str:
    """Issue a named token for a scanner device acting as `staff`; only its hash is kept."""
    if not is_valid_name(device_name):
        raise StaffError("bad_device_name")
    token = secrets.token_urlsafe(32)
    db.session.add(DeviceToken(name=device_name, staff=staff, token_hash=hash_token(token)))
    db.session.flush()
    return token


def device_for_token(token: str) -> Device | None:
    """The live device a bearer token belongs to (its staff member still active), or None."""
    if not token or len(token) > 200 or not token.isascii():
        return None
    row = _LIVE_DEVICE.first(db.session.connection(), token_hash=hash_token(token))
    return Device(*row) if row else None


def revoke_device_token(staff: Staff, device_name: str) -> int:
    """Revoke the staff member's live tokens with this device name; returns how many."""
    devices = db.session.scalars(select(DeviceToken).where(
        DeviceToken.staff_id == staff.id, DeviceToken.name == device_name, DeviceToken.revoked_at.is_(None))).all()
    for device in devices:
        device.revoked_at = clock.now()
    db.session.flush()
    return len(devices)


def device_names(staff: Staff) -> list[str]:
    """The names of the staff member's devices with a live token."""
    return list(db.session.scalars(select(DeviceToken.name).distinct().where(
        DeviceToken.staff_id == staff.id, DeviceToken.revoked_at.is_(None)).order_by(DeviceToken.name)))


def find_by_session_token(token: str) -> Staff | None:
    """The active staff member whose sessions carry this token, or None."""
    if not token or len(token) > 64 or not token.isascii():
        return None
    return db.session.scalar(select(Staff).where(Staff.session_token == token, Staff.disabled_at.is_(None)))


def end_sessions(staff: Staff) -> None:
    """End every signed-in session of this staff member, on every browser, at once."""
    # Conditional on nothing: the new token simply replaces whatever the sessions carry.
    staff.session_token = secrets.token_urlsafe(32)
    db.session.flush()


def set_password(staff: Staff, password: str) -> None:
    """Give a staff member a new password; every session signed in with the old one ends."""
    _check_password(password)
    staff.password_hash = generate_password_hash(password)
    end_sessions(staff)


def disable(staff: Staff, *, at: datetime | None = None) -> bool:
    """Disable an account: no sign-in, no session, and its device tokens are revoked for good (enabling the
    account again does not bring them back). False if it already was disabled."""
    if staff.disabled_at is not None:
        return False
    at = at or clock.now()
    staff.disabled_at = at
    for device in db.session.scalars(select(DeviceToken).where(DeviceToken.staff_id == staff.id,
                                                               DeviceToken.revoked_at.is_(None))):
        device.revoked_at = at
    end_sessions(staff)
    return True


def enable(staff: Staff) -> bool:
    """Let a disabled account sign in again (sessions and device tokens from before stay ended). False if it was
    not disabled."""
    if staff.disabled_at is None:
        return False
    staff.disabled_at = None
    db.session.flush()
    return True


def find_staff(name: str) -> Staff | None:
    """A staff member by name."""
    return db.session.scalar(select(Staff).where(Staff.name == name))
