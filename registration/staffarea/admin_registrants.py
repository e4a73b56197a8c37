"""The registrant list, a page per registrant with its history, the actions taken from it, and the audit log.

Every action is a POST with its CSRF token, calls one service, commits once on success and rolls back on a refusal,
which it names in a flash message. Destructive ones (cancel, erase, a new ticket code, undoing a check-in) are
reached through a confirmation panel on the person's page (?confirm=...), a plain GET that changes nothing.
"""

import re
from datetime import datetime, timedelta

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from registration import clock, formatting
from registration.auth import role_required
from registration.converters import MAX_ID
from registration.errors import CheckInError, RegistrationError, SeatError
from registration.extensions import db
from registration.models import CheckIn, Registrant, Scan
from registration.public.forms import ConfirmForm, Form
from registration.public.views import safe_next
from registration.services import checkins, door_conflicts, history, registrant_list, registrations, seats, viewing
from registration.services.door_conflicts import ConflictError
from registration.staffarea.views import bp
from registration.text import has_visible_character, is_single_line

AUDIT_PER_PAGE = 50

#: Audit actions as the organisers read them; an action missing here is shown as recorded.
ACTION_LABELS = {
    "registrant.register": _l("Registered online"),
    "registrant.walk_in": _l("Registered on site"),
    "registrant.update": _l("Changed their details"),
    "registrant.locale": _l("Changed the language"),
    "registrant.email_change": _l("Changed the e-mail address"),
    "registrant.cancel": _l("Registration cancelled"),
    "registrant.restore": _l("Cancellation taken back"),
    "registrant.erase": _l("Personal data erased"),
    "seat.confirmed": _l("Seat given"),
    "seat.waitlisted": _l("Put on the waiting list"),
    "seat.promoted": _l("Seat given from the waiting list"),
    "seat.promote": _l("Seat given by an admin"),
    "seat.released": _l("Seat or waiting place given up"),
    "ticket.rotate": _l("New ticket code issued"),
    "mail.resend_link": _l("Personal link mailed again"),
    "mail.resend_ticket": _l("Ticket mailed again"),
    "checkin.undo": _l("Check-in undone"),
    "door.conflict_resolved": _l("Door conflict dealt with"),
    "privacy.purge": _l("Everyone's personal data erased"),
    "staff.disable": _l("Staff account disabled"),
    "staff.enable": _l("Staff account enabled"),
    "staff.logout_everywhere": _l("Staff signed out everywhere"),
    "staff.password": _l("Staff password changed"),
}

#: Field names in audit values, as the organisers read them.
FIELD_LABELS = {
    "family_name": _l("Family name"),
    "given_name": _l("Given name"),
    "family_name_kana": _l("Family name (kana)"),
    "given_name_kana": _l("Given name (kana)"),
    "email": _l("Email"),
    "pending_email": _l("Address waiting for confirmation"),
    "organization": _l("Organization"),
    "job_title": _l("Job title"),
    "locale": _l("Language"),
    "attend_closing": _l("Closing event"),
    "seat_status": _l("Closing event seat"),
    "waitlist_position": _l("Place on the waiting list"),
    "ticket": _l("Ticket code"),
    "cancelled": _l("Cancelled"),
    "cancelled_at": _l("Cancelled at"),
    "checked_in_at": _l("Checked in at"),
    "gate": _l("Gate"),
    "request": _l("The person's request"),
    "conflict": _l("Door conflict"),
}

#: Values that are words of the system rather than of people.
VALUE_LABELS = {
    "confirmed": _l("Seat confirmed"),
    "waitlisted": _l("Waiting list"),
    "none": _l("Not attending the closing event"),
    "ja": _l("Japanese"),  # a language (the only values "ja" and "en" are those of `locale`)
    "en": _l("English"),
    "admitted_twice": _l("Admitted twice while offline"),
    "admitted_without_ticket": _l("Let in offline without a valid ticket"),
    "refused_with_ticket": _l("Turned away offline despite a valid ticket"),
}

WHO_LABELS = {"registrant": _l("the registrant"), "system": _l("the system"), "cli": _l("a server command")}

#: The confirmation panels of the person's page.
CONFIRMATIONS = ("cancel", "erase", "rotate", "undo")


class EraseForm(Form):
    """Erasing a person's data: only on their request, which the admin writes down."""

    reason = TextAreaField(_l("The person's request (how and when they asked)"),
                           validators=[DataRequired(_l("Please write down how the person asked for the erasure.")),
                                       Length(max=500, message=_l("At most %(max)d characters, please."))])
    next = HiddenField()


# --- the list -----------------------------------------------------------------------------------------------

@bp.get("/admin/registrants")
@role_required("admin")
def registrants():
    """Registrants, filtered, searched, sorted and paged."""
    sessions = registrant_list.session_keys()
    filters, ignored = registrant_list.parse(request.args)
    page = registrant_list.page_of(filters, sessions)
    return render_template("admin/registrants.html", page=page, filters=filters, ignored=ignored, sessions=sessions,
                           choices=registrant_list.CHOICES)


# --- a person -----------------------------------------------------------------------------------------------

def _person_page(registrant: Registrant, *, erase_form: EraseForm | None = None, status: int = 200):
    confirm = request.args.get("confirm", "")
    if erase_form is not None:
        confirm = "erase"
    confirm_checkin = None
    if confirm == "undo":
        raw = request.args.get("checkin", "")
        checkin_id = int(raw) if re.fullmatch(r"[1-9][0-9]{0,9}", raw) and int(raw) <= MAX_ID else None
        confirm_checkin = db.session.get(CheckIn, checkin_id) if checkin_id else None
        if confirm_checkin is None or confirm_checkin.registrant_id != registrant.id or confirm_checkin.undone_at:
            confirm = ""
    elif confirm not in CONFIRMATIONS:
        confirm = ""
    active_checkins = [checkin for checkin in db.session.scalars(
        select(CheckIn).where(CheckIn.registrant_id == registrant.id, CheckIn.undone_at.is_(None)))]
    return render_template(
        "admin/registrant.html", person=registrant, items=history.of(registrant),
        active_checkins=active_checkins, waitlist_position=seats.waitlist_position(registrant),
        signed_up=viewing.signed_up_sessions(registrant), confirm=confirm, confirm_checkin=confirm_checkin,
        conflicts=door_conflicts.conflicts_for(registrant.id),
        current_ticket=registrations.current_ticket_id(registrant),
        button=ConfirmForm(), erase_form=erase_form or EraseForm(formdata=None), labels=_labels()), status


def _labels() -> dict:
    return {"actions": ACTION_LABELS, "fields": FIELD_LABELS, "values": VALUE_LABELS, "who": WHO_LABELS}


@bp.get("/admin/registrants/<id:registrant_id>")
@role_required("admin")
def registrant(registrant_id: int):
    """A person's details, their whole history, and what an admin can do for them."""
    return _person_page(db.get_or_404(Registrant, registrant_id))


def _back(registrant_id: int | None):
    """Back to where the action was asked for: a same-site `next`, else the person's page (the conflicts page for
    a scan of nobody's code)."""
    target = request.form.get("next") or request.args.get("next")
    home = (url_for("staff.registrant", registrant_id=registrant_id) if registrant_id is not None
            else url_for("staff.conflicts"))
    if target and safe_next(target) == target:
        return redirect(target, 303)
    return redirect(home, 303)


def _refused(message: str) -> None:
    db.session.rollback()
    flash(message, "error")


def _registration_refusal(error: RegistrationError) -> str:
    return {
        "erased": _("This person's data has been erased: there is nothing left to do for them."),
        "cancelled": _("This registration is cancelled: nothing can be mailed to it."),
        "not_cancelled": _("This registration is not cancelled."),
        "email_taken": _("This address has registered again since: the newer registration is the live one, so this "
                         "one cannot be restored."),
        "just_sent": _("This mail went to the person less than a minute ago; it was not sent again."),
    }.get(error.code, _("This could not be done."))


def _seat_refusal(error: SeatError) -> str:
    return {
        "full": _("No seat is free."),
        "not_waitlisted": _("This person is not on the waiting list."),
        "no_ticket": _("This person holds no ticket."),
        "ticket_changed": _("The ticket code has just been replaced (a second click, or another admin): nothing more "
                            "was done."),
    }[error.code]


def _act(registrant_id: int | None, action, success: str, *, already: str = "") -> Response:
    """Run one audited action of a POST with a valid CSRF token: commit and say `success`; or, when the service
    refuses (or answers False: it was done already, `already` says so), roll back and say why. Then back to where
    it was asked for."""
    if ConfirmForm().validate_on_submit():
        try:
            done = action()
        except RegistrationError as error:
            _refused(_registration_refusal(error))
        except SeatError as error:
            _refused(_seat_refusal(error))
        except CheckInError:
            _refused(_("This check-in was already undone."))
        except ConflictError as error:
            _refused(_("Somebody has already marked this conflict as dealt with.") if error.code == "already_resolved"
                     else _("There is no such door conflict."))
        else:
            if done is False:
                _refused(already)
            else:
                db.session.commit()
                flash(success, "success")
    return _back(registrant_id)


@bp.post("/admin/registrants/<id:registrant_id>/promote")
@role_required("admin")
def promote(registrant_id: int):
    """Give a waiting person a seat by hand."""
    registrant = db.get_or_404(Registrant, registrant_id)
    return _act(registrant_id, lambda: registrations.promote(registrant, by=current_user),
                _("%(name)s has a seat now; the ticket is on its way by mail.", name=formatting.person_name(registrant)))


@bp.post("/admin/registrants/<id:registrant_id>/rotate-ticket")
@role_required("admin")
def rotate_ticket(registrant_id: int):
    """Replace a leaked ticket code; the old one answers "replaced" at the door from now on."""
    registrant = db.get_or_404(Registrant, registrant_id)
    seen = request.form.get("ticket", "")
    seen_ticket = int(seen) if re.fullmatch(r"[1-9][0-9]{0,9}", seen) and int(seen) <= MAX_ID else None

    def rotate():
        # The ticket the confirmation showed is required: without it, eight clicks would give eight codes and mails.
        if seen_ticket is None:
            raise SeatError("ticket_changed")
        registrations.rotate_ticket(registrant, by=current_user, seen_ticket=seen_ticket)

    return _act(registrant_id, rotate, _("New ticket code issued and mailed; the old code no longer admits anyone."))


@bp.post("/admin/checkins/<id:checkin_id>/undo")
@role_required("admin")
def undo_checkin(checkin_id: int):
    """Take back a check-in from the admin's view of a person; audited like an undo at the door."""
    registrant_id = db.session.scalar(select(CheckIn.registrant_id).where(CheckIn.id == checkin_id))
    if registrant_id is None:
        abort(404)
    return _act(registrant_id, lambda: checkins.undo(checkin_id, staff_id=current_user.id),
                _("The check-in is undone; the ticket admits once more."))


@bp.post("/admin/registrants/<id:registrant_id>/cancel")
@role_required("admin")
def cancel(registrant_id: int):
    """Cancel a registration for its owner (they asked by mail or at the desk); they are mailed, the seat moves on."""
    registrant = db.get_or_404(Registrant, registrant_id)
    return _act(registrant_id, lambda: registrations.cancel(registrant, by=current_user),
                _("The registration of %(name)s is cancelled; they have been mailed.",
                  name=formatting.person_name(registrant)),
                already=_("This registration was already cancelled."))


@bp.post("/admin/registrants/<id:registrant_id>/restore")
@role_required("admin")
def restore(registrant_id: int):
    """Take back a cancellation: the registration is live again, without a seat, and its owner gets the link."""
    registrant = db.get_or_404(Registrant, registrant_id)
    return _act(registrant_id, lambda: registrations.restore(registrant, by=current_user),
                _("The registration of %(name)s is live again, without a seat; their personal link is on its way "
                  "by mail.", name=formatting.person_name(registrant)))


@bp.post("/admin/registrants/<id:registrant_id>/resend-link")
@role_required("admin")
def resend_link(registrant_id: int):
    """Mail a person their personal link again."""
    registrant = db.get_or_404(Registrant, registrant_id)
    return _act(registrant_id, lambda: registrations.resend_link(registrant, by=current_user),
                _("The personal link is on its way by mail to %(email)s.", email=registrant.email))


@bp.post("/admin/registrants/<id:registrant_id>/resend-ticket")
@role_required("admin")
def resend_ticket(registrant_id: int):
    """Mail a seat holder their ticket (the same code) again."""
    registrant = db.get_or_404(Registrant, registrant_id)
    return _act(registrant_id, lambda: registrations.resend_ticket(registrant, by=current_user),
                _("The ticket is on its way by mail again to %(email)s.", email=registrant.email))


@bp.post("/admin/registrants/<id:registrant_id>/erase")
@role_required("admin")
def erase(registrant_id: int):
    """Erase a person's data at their request, with the request written down in the audit log."""
    registrant = db.get_or_404(Registrant, registrant_id)
    form = EraseForm()
    if not form.validate_on_submit() or not _plain_reason(form):
        return _person_page(registrant, erase_form=form, status=422)
    reason = " ".join(form.reason.data.split())
    if registrations.erase(registrant, by=current_user, reason=reason):
        db.session.commit()
        flash(_("The personal data of this registration is erased; the counts keep it."), "success")
    else:
        _refused(_("This registration's data was already erased."))
    return _back(registrant_id)


def _plain_reason(form: EraseForm) -> bool:
    text = " ".join((form.reason.data or "").split())
    if not text or not is_single_line(text) or not has_visible_character(text):
        form.reason.errors = [_("Please write down how the person asked for the erasure, in plain text.")]
        return False
    return True


# --- door conflicts ----------------------------------------------------------------------------------------

@bp.get("/admin/conflicts")
@role_required("admin")
def conflicts():
    """Every door conflict, open ones first, newest first: what the doors decided offline and the server did not."""
    found = door_conflicts.listing()
    found.sort(key=lambda conflict: conflict["resolved_at"] is not None)  # stable: newest first within each
    return render_template("admin/conflicts.html", conflicts=found, button=ConfirmForm())


@bp.post("/admin/conflicts/<id:scan_id>/resolve")
@role_required("admin")
def resolve_conflict(scan_id: int):
    """Mark a door conflict as dealt with (the person was found, the admission put right); once, audited."""
    scan = db.session.execute(select(Scan.registrant_id).where(Scan.id == scan_id, Scan.conflict.is_not(None))).first()
    if scan is None:
        abort(404)
    return _act(scan.registrant_id, lambda: door_conflicts.resolve(scan_id, staff_id=current_user.id),
                _("The door conflict is marked as dealt with."))


# --- the audit log ------------------------------------------------------------------------------------------

_MOMENT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")


def _jst_moment(raw: str, *, end: bool) -> datetime | None:
    """A date or datetime-local typed in Japan time. As `to` (end=True) it is inclusive: a bare date means the whole
    of that day, a minute the whole minute."""
    match = _MOMENT.fullmatch(raw)
    if match is None:
        raise ValueError(raw)
    year, month, day, hour, minute, second = match.groups()
    if not 2000 <= int(year) <= 2100:
        # Tokyo's offset in year 1 is local mean time (+09:18:59), which puts its UTC in year 0: out of range.
        raise ValueError(raw)
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                      tzinfo=clock.TOKYO)
    if end:
        moment += timedelta(days=1) if hour is None else timedelta(minutes=1) if second is None else timedelta(seconds=1)
    return moment


def _input_value(raw: str, *, end: bool) -> str:
    """What a datetime-local input shows for a typed date or datetime (a date as `to` is its last minute)."""
    if "T" in raw or " " in raw:
        return raw.replace(" ", "T")[:16]
    return f"{raw}T23:59" if end else f"{raw}T00:00"


def _audit_filters(staff_names: list[str], actions: list[str]) -> tuple[history.AuditFilters, list[str]]:
    args, values, ignored = request.args, {}, []
    who = args.get("who", "")
    if who in history.ACTOR_KINDS or (who and who in staff_names):
        values["who"] = who
    elif who:
        ignored.append("who")
    action = args.get("action", "")
    if action in actions:
        values["action"] = action
    elif action:
        ignored.append("action")
    for name, key, end in (("from", "start", False), ("to", "end", True)):
        raw = args.get(name, "")
        if raw:
            try:
                values[key] = _jst_moment(raw, end=end)
            except (ValueError, OverflowError):
                ignored.append(name)
    raw = args.get("registrant", "")
    if raw:
        if re.fullmatch(r"[1-9][0-9]{0,9}", raw) and int(raw) <= MAX_ID:
            values["registrant_id"] = int(raw)
        else:
            ignored.append("registrant")
    return history.AuditFilters(**values), ignored


@bp.get("/admin/audit")
@role_required("admin")
def audit():
    """The audit log, newest first, filtered by who, action, time and registrant."""
    staff_names = history.staff_names()
    actions = sorted(set(ACTION_LABELS) | set(history.recorded_actions()))
    filters, ignored = _audit_filters(staff_names, actions)
    query = history.audit_select(filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // AUDIT_PER_PAGE))
    raw_page = request.args.get("page", "")
    number = 1
    if raw_page:
        if re.fullmatch(r"[0-9]+", raw_page) and raw_page.strip("0"):
            number = pages if len(raw_page.lstrip("0")) > 9 else min(int(raw_page), pages)
        else:
            ignored.append("page")
    entries = list(db.session.scalars(query.limit(AUDIT_PER_PAGE).offset((number - 1) * AUDIT_PER_PAGE)))
    args = {name: request.args[name] for name in ("who", "action", "from", "to", "registrant")
            if request.args.get(name) and name not in ignored}
    shown = {name: _input_value(args[name], end=name == "to") for name in ("from", "to") if name in args}
    return render_template("admin/audit.html", shown=shown, entries=entries, total=total, page=number, pages=pages, args=args,
                           ignored=ignored, staff_names=staff_names, actions=actions, labels=_labels(),
                           changes=history.changes, who=history.who, per_page=AUDIT_PER_PAGE)
