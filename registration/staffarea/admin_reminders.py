"""Who answered the closing-event reminder, and scheduled releases of unanswered seats."""

from datetime import UTC, datetime, time, timedelta

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from wtforms import DateTimeLocalField, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, StopValidation, ValidationError

from registration import clock
from registration.auth import role_required
from registration.extensions import db
from registration.models import Event, SeatRelease
from registration.public.forms import ConfirmForm, Form
from registration.services import reminders as reminder_service
from registration.staffarea.views import bp


class ReleaseForm(Form):
    """When to give back the seats of the reminded who have not answered: now, or at a moment in JST."""

    when = RadioField(_l("When"), choices=[SelectChoice("at", _l("At a chosen time (JST)")),
                                           SelectChoice("now", _l("Now"))], default="at",
                      validators=[InputRequired(_l("Please choose when."))])
    run_at = DateTimeLocalField(_l("Date and time (JST)"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])

    def validate_run_at(self, field) -> None:
        """A chosen time is required, and must be later than now (else "now" says what is meant); with "now" the
        field is ignored, whatever it holds."""
        if self.when.data != "at":
            field.errors.clear()  # an unparsable leftover in the ignored field is no error
            raise StopValidation()
        if field.data is None:
            if not field.errors:  # empty, rather than unparsable (the field has said so)
                raise ValidationError(_l("Please choose a date and time, or “Now”."))
            return
        last = _closing_day_ends()
        # Years far off are typos (and year 1 in Tokyo's local mean time has no UTC at all).
        if not 2000 <= field.data.year <= 2100 or (last is not None and self.moment() >= last):
            raise ValidationError(_l("Choose a moment before the end of the closing event's day."))
        if self.moment() <= clock.now():
            raise ValidationError(_l("This moment has passed: choose a later one, or “Now”."))

    def moment(self):
        """The chosen time as an aware UTC instant (the form's input is wall-clock time in Tokyo)."""
        return self.run_at.data.replace(tzinfo=clock.TOKYO).astimezone(UTC)


def _closing_day_ends() -> datetime | None:
    """Midnight JST after the closing event's day: seats released later than that help nobody."""
    day = db.session.scalar(select(Event.closing_date).limit(1))
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=clock.TOKYO).astimezone(UTC)


def _page(form: ReleaseForm, status: int = 200):
    return render_template("admin/reminders.html", answers=reminder_service.answers(),
                           unanswered=reminder_service.unanswered(), releases=reminder_service.releases(),
                           form=form, button=ConfirmForm()), status


@bp.get("/admin/reminders")
@role_required("admin")
def reminders():
    """Counts of the reminder's answers, who has not answered, and the scheduled releases of their seats."""
    return _page(ReleaseForm(formdata=None))


@bp.post("/admin/reminders/releases")
@role_required("admin")
def schedule_release():
    """Schedule the release of unanswered seats at a chosen moment, or run it now."""
    form = ReleaseForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    now = clock.now()
    run_now = form.when.data == "now"
    reminder_service.schedule_release(now if run_now else form.moment(), by=current_user, at=now)
    # "Now" runs here rather than at the mail worker's next round, so that the page shows the result.
    released = reminder_service.run_due_releases(at=now) if run_now else None
    db.session.commit()
    if run_now:
        flash(ngettext("%(num)d unanswered seat was given back; the waiting list has moved up, and everyone "
                       "concerned is mailed.",
                       "%(num)d unanswered seats were given back; the waiting list has moved up, and everyone "
                       "concerned is mailed.", released), "success")
    else:
        flash(_("The release is scheduled."), "success")
    return redirect(url_for("staff.reminders"), 303)


@bp.post("/admin/reminders/releases/<id:release_id>/cancel")
@role_required("admin")
def cancel_release(release_id: int):
    """Call off a scheduled release that has not run yet."""
    release = db.get_or_404(SeatRelease, release_id)
    if ConfirmForm().validate_on_submit():
        if reminder_service.cancel_release(release, by=current_user):
            db.session.commit()
            flash(_("The scheduled release is called off."), "success")
        else:
            db.session.rollback()
            flash(_("This release has already run or been called off."), "error")
    return redirect(url_for("staff.reminders"), 303)
