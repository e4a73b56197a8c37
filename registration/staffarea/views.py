"""Staff sign-in and the door page."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from registration.auth import role_required
from registration.extensions import db, limiter
from registration.public.forms import ConfirmForm
from registration.public.views import safe_next
from registration.services import checkins
from registration.services import staff as staff_service
from registration.staffarea.forms import LoginForm

bp = Blueprint("staff", __name__)


def _failed_login(response) -> bool:
    return response.status_code != 303


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_login)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_login,
               key_func=lambda: "login-name:" + request.form.get("name", "")[:80])
def login():
    """Sign in; failed attempts are throttled per client and per staff name."""
    form = LoginForm()
    if form.validate_on_submit():
        staff = staff_service.authenticate(form.name.data, form.password.data)
        if staff is not None:
            login_user(staff)
            return redirect(safe_next(form.next.data or url_for("staff.door")), 303)
        form.password.errors = [_("Wrong name or password.")]
    elif request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200 if request.method == "GET" else 401
    return render_template("staff/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out (a POST, with its CSRF token)."""
    form = ConfirmForm()
    if form.validate_on_submit():
        logout_user()
        flash(_("You are signed out."), "success")
    return redirect(url_for("staff.login"), 303)


@bp.get("/door")
@role_required("door")
def door():
    """The door page: camera, scanner field, manual search, the answer, the counter."""
    return render_template("door/door.html", stats=checkins.stats(), logout_form=ConfirmForm(),
                           staff_name=current_user.name)
