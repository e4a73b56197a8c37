"""Staff sign-in, the door page and the admin pages."""


from flask import (Blueprint, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, logout_user

from registration.auth import role_required, start_session
from registration.extensions import db, limiter
from registration.public.forms import ConfirmForm
from registration.public.views import safe_next
from registration.services import checkins
from registration.services import staff as staff_service
from registration.staffarea.forms import LoginForm

bp = Blueprint("staff", __name__)


def _login_account_key() -> str:
    # The name together with the address: a stranger's failures for "door-a" slow only that stranger.
    return f"login-account:{get_remote_address()}:{request.form.get('name', '')[:80]}"


@bp.route("/login", methods=["GET", "POST"])
# Every attempt counts, before its password is checked: counting only failures afterwards (deduct_when) would let
# all the guesses in flight during the slow scrypt check through at once.
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               key_func=lambda: f"login-address:{get_remote_address()}")
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"], key_func=_login_account_key)
def login():
    """Sign in; attempts are throttled per client address, and per staff name from that address."""
    form = LoginForm()
    if form.validate_on_submit():
        staff = staff_service.authenticate(form.name.data, form.password.data)
        if staff is not None:
            start_session(staff)
            return redirect(safe_next(form.next.data or url_for("staff.door")), 303)
        form.password.errors = [_("Wrong name or password.")]
    elif request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200 if request.method == "GET" else 401
    return render_template("staff/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out (a POST, with its CSRF token): every session of this staff member ends, on every device."""
    form = ConfirmForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            staff_service.end_sessions(current_user)
            db.session.commit()
        logout_user()
        flash(_("You are signed out on every device."), "success")
    return redirect(url_for("staff.login"), 303)


@bp.get("/door")
@role_required("door")
def door():
    """The door page: camera, scanner field, manual search, the answer, the counter."""
    response = make_response(render_template("door/door.html", stats=checkins.stats(), logout_form=ConfirmForm(),
                                              staff_name=current_user.name))
    # The app's default policy plus what this page needs: its ES modules and the QR decoder's WebAssembly,
    # compiled from our own /static (never a CDN), fetch() to the API and to the .wasm, its service worker and
    # manifest (from /door).
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    # No browser cache: a stale page would carry a stale CSRF token. The service worker keeps its own copy for when
    # there is no network, and the page then takes a fresh token from the data set.
    response.headers["Cache-Control"] = "no-store"
    return response
