"""The registrant list, a page per registrant with its history, the actions taken from it, and the audit log."""

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from registration import formatting
from registration.auth import role_required
from registration.errors import CheckInError, SeatError
from registration.extensions import db
from registration.models import Registrant
from registration.public.forms import ConfirmForm
from registration.services import checkins, registrations
from registration.staffarea.views import bp


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


