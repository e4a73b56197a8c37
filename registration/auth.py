"""Who is asking: staff sessions (Flask-Login), scanner devices (bearer tokens), and role checks."""

from functools import wraps
from time import monotonic, time

from flask import abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_user

from registration.extensions import login_manager
from registration.models import Staff
from registration.services import staff as staff_service


#: How often a signed-in page refreshes the session's "last seen" mark; more often would re-sign the cookie on
#: every door scan for nothing.
SEEN_RESOLUTION_SECONDS = 60


@login_manager.user_loader
def load_staff(session_token: str) -> Staff | None:
    """The active staff member whose current session token the session carries, unless it has been idle too long."""
    # Real time, not clock.now(): a rehearsal clock moves the event's dates, not how long a laptop sat unattended.
    now = int(time())
    seen = session.get("staff_seen")
    if not isinstance(seen, int) or now - seen > current_app.config["STAFF_IDLE_TIMEOUT"].total_seconds():
        session.clear()
        return None
    staff = staff_service.find_by_session_token(session_token)
    if staff is None:
        session.clear()  # ended on the server: the cookie is worth nothing, say so to the browser too
        return None
    if now - seen >= SEEN_RESOLUTION_SECONDS:
        session["staff_seen"] = now
    return staff


def start_session(staff: Staff) -> None:
    """Sign a staff member in on this browser: a fresh session carrying their current session token."""
    session.clear()  # nothing of a visitor's earlier session carries over into a staff session
    login_user(staff)
    session["staff_seen"] = int(time())


def role_required(*roles: str):
    """Only signed-in staff with one of these roles (admin may always)."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles and not current_user.is_admin:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def bearer_device() -> staff_service.Device | None:
    """The device named by an `Authorization: Bearer` header, or None (also when the header is absent)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return _remembered_device(token.strip())


def _remembered_device(token: str) -> staff_service.Device | None:
    # The token query was a sixth of a door scan's time (bench/RESULTS.md). Only live devices are remembered, so a
    # stream of made-up tokens costs a query each and no memory.
    seconds = current_app.config["DEVICE_TOKEN_CACHE_SECONDS"]
    remembered = current_app.extensions.setdefault("remembered_devices", {})
    now = monotonic()
    entry = remembered.get(token)
    if entry is not None and now - entry[0] < seconds:
        return entry[1]
    device = staff_service.device_for_token(token)
    if device is None:
        remembered.pop(token, None)
    elif seconds > 0:
        remembered[token] = (now, device)
    return device


def has_bearer_header() -> bool:
    """Whether the request tries token authentication at all."""
    return bool(request.headers.get("Authorization"))


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except for scanner devices, whose bearer token is the whole credential.

    Without a session a device's scan skips reading, verifying and re-signing a cookie, and its answer does not
    vary by cookie.
    """

    def open_session(self, app, request):
        if request.path.startswith("/api/") and request.headers.get("Authorization"):
            return self.make_null_session(app)
        return super().open_session(app, request)

