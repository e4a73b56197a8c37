"""Staff sign-in, the door page and the admin pages."""

import csv
import io
from collections.abc import Iterable

from flask import (Blueprint, Response, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, logout_user

from registration import formatting
from registration.auth import role_required, start_session
from registration.errors import CheckInError, RegistrationError, SeatError
from registration.models import Registrant
from registration.extensions import db, limiter
from registration.public.forms import ConfirmForm
from registration.public.views import safe_next
from registration.services import checkins, registrations, seats, viewing
from registration.services import staff as staff_service
from registration.staffarea.forms import LoginForm, WalkInForm
from registration.tickets import CODE_LENGTH, TICKET_CODE

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
                                              staff_name=current_user.name, code_pattern=TICKET_CODE.pattern,
                                              code_length=CODE_LENGTH))
    # The app's default policy plus what this page needs: its ES modules and the QR decoder's WebAssembly,
    # compiled from our own /static (never a CDN), and fetch() to the API and to the .wasm.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"  # a stale page would carry a stale CSRF token
    return response


@bp.get("/admin")
@role_required("admin")
def admin():
    """The admin overview: seats, the waiting list, walk-ins, ticket rotation."""
    waiting = seats.waiting_list()
    query = request.args.get("q", "").strip()[:100]
    found = registrations.search(query)
    return render_template("admin/admin.html", stats=checkins.stats(), waiting=waiting, found=found, query=query,
                           walk_in_form=WalkInForm(formdata=None), button=ConfirmForm(),
                           window=registrations.window_state(), speed=checkins.door_speed())


@bp.post("/admin/registrants/<id:registrant_id>/promote")
@role_required("admin")
def promote(registrant_id: int):
    """Give a waiting person a seat by hand."""
    registrant = db.get_or_404(Registrant, registrant_id)
    if ConfirmForm().validate_on_submit():
        try:
            registrations.promote(registrant, by=current_user)
        except SeatError as error:
            db.session.rollback()
            flash(_("No seat is free.") if error.code == "full" else _("This person is not on the waiting list."),
                  "error")
        else:
            db.session.commit()
            flash(_("%(name)s has a seat now; the ticket is on its way by mail.",
                    name=formatting.person_name(registrant)), "success")
    return redirect(url_for("staff.admin"), 303)


@bp.post("/admin/registrants/<id:registrant_id>/rotate-ticket")
@role_required("admin")
def rotate_ticket(registrant_id: int):
    """Replace a leaked ticket code; the old one answers "replaced" at the door from now on."""
    registrant = db.get_or_404(Registrant, registrant_id)
    if ConfirmForm().validate_on_submit():
        try:
            registrations.rotate_ticket(registrant, by=current_user)
        except SeatError:
            db.session.rollback()
            flash(_("This person holds no ticket."), "error")
        else:
            db.session.commit()
            flash(_("New ticket code issued and mailed; the old code no longer admits anyone."), "success")
    return redirect(url_for("staff.admin", q=request.args.get("q", "")), 303)


@bp.post("/admin/checkins/<id:checkin_id>/undo")
@role_required("admin")
def undo_checkin(checkin_id: int):
    """Take back a check-in from the admin's view of a person; audited like an undo at the door."""
    if ConfirmForm().validate_on_submit():
        try:
            checkins.undo(checkin_id, staff_id=current_user.id)
        except CheckInError:
            db.session.rollback()
            flash(_("This check-in was already undone."), "error")
        else:
            db.session.commit()
            flash(_("The check-in is undone; the ticket admits once more."), "success")
    return redirect(url_for("staff.admin", q=request.args.get("q", "")), 303)


@bp.post("/admin/walk-ins")
@role_required("admin")
def walk_in():
    """Register a person at the door after the deadline, with a seat."""
    form = WalkInForm()
    if form.validate_on_submit():
        try:
            registrant = registrations.register_walk_in(form.details(), by=current_user, locale=str(get_locale()))
        except (RegistrationError, SeatError) as error:
            db.session.rollback()
            messages = {"not_closed": _("Until registration closes, people register on the public form."),
                        "email_taken": _("This address is already registered: find the person in the search."),
                        "full": _("No seat is free.")}
            flash(messages[error.code], "error")
        else:
            db.session.commit()
            flash(_("%(name)s is registered on site with a seat; check them in at the door.",
                    name=formatting.person_name(registrant)), "success")
            return redirect(url_for("staff.admin"), 303)
    return render_template("admin/admin.html", stats=checkins.stats(), waiting=[], found=[], query="",
                           walk_in_form=form, button=ConfirmForm(), window=registrations.window_state(),
                           speed=checkins.door_speed()), 422


@bp.get("/admin/registrants.csv")
@role_required("admin")
def registrants_csv():
    """Who registered, for what, and who came: one row per registration, cancelled ones included."""
    viewing_counts = viewing.counts_per_registrant()

    def row(person: Registrant) -> list:
        admission = next((checkin for checkin in person.checkins if checkin.undone_at is None), None)
        signed_up, watched = viewing_counts.get(person.id, (0, 0))
        return [_when(person.registered_at), _when(person.cancelled_at), person.family_name, person.given_name,
                person.family_name_kana, person.given_name_kana, person.email, person.organization,
                person.job_title, person.locale, person.seat_status, _when(person.seat_confirmed_at),
                "yes" if person.on_site else "", _when(admission.at if admission else None),
                admission.gate if admission else "", signed_up, watched]

    return _csv_response("codt2023-registrants.csv", [
        "registered_at_jst", "cancelled_at_jst", "family_name", "given_name", "family_name_kana",
        "given_name_kana", "email", "organization", "job_title", "language", "closing_event",
        "seat_confirmed_at_jst", "on_site", "checked_in_at_jst", "gate", "sessions_signed_up", "sessions_watched"],
        (row(person) for person in registrations.everyone()))


def _when(moment) -> str:
    return formatting.iso_tokyo(moment) if moment else ""


@bp.get("/admin/attendance")
@role_required("admin")
def attendance():
    """Online attendance: sign-ups, watchers, views and watchers without a sign-up, by category and session."""
    categories, total = viewing.attendance()
    return render_template("admin/attendance.html", categories=categories, total=total)


@bp.get("/admin/attendance.csv")
@role_required("admin")
def attendance_csv():
    """The attendance figures per session, as a spreadsheet."""
    categories, _total = viewing.attendance()
    rows = ([entry.category.key, entry.category.name_ja, entry.category.name_en, row.session.key, row.session.title,
             row.session.speaker_organization, row.session.language, "withdrawn" if row.session.is_withdrawn else "",
             row.attendance.signups, row.attendance.watchers, row.attendance.views,
             row.attendance.watched_without_signup]
            for entry in categories for row in entry.sessions)
    return _csv_response("codt2023-attendance.csv", [
        "category", "category_ja", "category_en", "session", "title", "speaker_organization", "language", "status",
        "signups", "watchers", "views", "watched_without_signup"], rows)


@bp.get("/admin/attendance/records.csv")
@role_required("admin")
def attendance_records_csv():
    """Every sign-up, withdrawal and view with its time and the person: who signed up for what, who watched."""
    rows = ([formatting.iso_tokyo(record.at), record.kind, record.registrant.email, record.registrant.full_name,
             record.registrant.organization, record.session.key, record.session.title, record.window or ""]
            for record in viewing.records())
    return _csv_response("codt2023-viewing-records.csv", [
        "at_jst", "record", "email", "name", "organization", "session", "title", "window"], rows)


def _csv_response(filename: str, header: list[str], rows: Iterable[list]) -> Response:
    """UTF-8 with a byte order mark and CRLF, as Excel opens it; cells that a spreadsheet would run are defused."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return Response(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={filename}", "Cache-Control": "no-store"})


def _cell(value):
    # A cell starting with = + - @ (or a tab or CR) is a formula to Excel: a title must not run as one.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
