"""The admin overview (dashboard) and walk-in registration."""

from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from registration import formatting
from registration.auth import role_required
from registration.errors import RegistrationError, SeatError
from registration.extensions import db
from registration.public.forms import ConfirmForm
from registration.services import checkins, registrations, seats
from registration.staffarea.forms import WalkInForm
from registration.staffarea.views import bp


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


