"""The admin dashboard (figures and charts, the event day's door panel), and walk-in registration."""

from datetime import datetime
from urllib.parse import urlencode

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from registration import charts, clock, formatting
from registration.auth import role_required
from registration.charts import Series
from registration.errors import RegistrationError, SeatError
from registration.extensions import db
from registration.public.forms import ConfirmForm
from registration.services import dashboard, door_conflicts, registrations, seats
from registration.staffarea.forms import WalkInForm
from registration.staffarea.views import bp

#: The registrant list (staffarea/admin_registrants), where search lives, and where the door panel's "still
#: expected" figure leads.
REGISTRANT_LIST = "/admin/registrants"
EXPECTED_LIST = f"{REGISTRANT_LIST}?closing=confirmed&checked_in=no"
#: The dashboard lists the first of the waiting list with a button each; the rest are on the registrant list.
WAITING_SHOWN = 20
#: The door panel lists the newest open door conflicts; all of them are on /admin/conflicts.
CONFLICTS_SHOWN = 10


@bp.get("/admin")
@role_required("admin")
def admin():
    """The dashboard: registrations, seats, the door, on-demand viewing, the waiting list and walk-ins."""
    query = request.args.get("q", "").strip()[:100]
    if query:
        # The search moved to the registrant list; old links and bookmarks (/admin?q=...) still find the person.
        return redirect(f"{REGISTRANT_LIST}?{urlencode({'q': query})}", 302)
    return _dashboard(WalkInForm(formdata=None))


@bp.get("/admin/door-panel")
@role_required("admin")
def door_panel():
    """The event day's door panel alone, which the dashboard fetches every few seconds to refresh itself."""
    response = make_response(render_template("admin/_door_panel.html", **_door_panel_context()))
    response.headers["Cache-Control"] = "no-store"
    return response


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
    return _dashboard(form), 422


def _dashboard(walk_in_form: WalkInForm) -> str:
    now = clock.now()
    days = dashboard.registrations_per_day(at=now)
    seat_figures = dashboard.closing_seats()
    reminders = dashboard.reminder_answers()
    categories, viewing_total = dashboard.on_demand()
    return render_template(
        "admin/admin.html", days=days, seats=seat_figures, reminders=reminders, categories=categories,
        viewing_total=viewing_total, waiting=seats.waiting_list(limit=WAITING_SHOWN), walk_in_form=walk_in_form,
        window=registrations.window_state(now), refresh_seconds=_refresh_seconds(), registrant_list=REGISTRANT_LIST,
        charts=_dashboard_charts(days, seat_figures, reminders, categories), **_door_panel_context(now))


def _refresh_seconds() -> int:
    # From the configuration when set (a browser test shortens it), never below a second.
    try:
        return max(1, int(current_app.config.get("DASHBOARD_REFRESH_SECONDS", 15)))
    except (TypeError, ValueError):
        return 15


def _day_tick(day) -> str:
    return f"{day.month}/{day.day}"


def _dashboard_charts(days, seat_figures, reminders, categories) -> dict:
    """The dashboard's charts (the door panel draws its own)."""
    found = {}
    day_labels = [day.day.isoformat() for day in days]
    ticks = [_day_tick(day.day) for day in days]
    if days:
        found["per_day"] = charts.bar_chart(
            "registrations-per-day", _("Registrations and cancellations per day (JST)"), day_labels,
            [Series(_("Registrations"), [d.registered for d in days]),
             Series(_("Cancellations"), [d.cancelled for d in days])],
            ticks=ticks, label_heading=_("Day"))
        found["cumulative"] = charts.line_chart(
            "registrations-cumulative", _("Registrations, cumulative"), day_labels,
            [Series(_("Registered in all"), [d.registered_total for d in days]),
             Series(_("Still registered"), [d.still_registered for d in days])],
            ticks=ticks, area=True, label_heading=_("Day"),
            description=_("%(count)d registered by %(day)s", count=days[-1].registered_total,
                          day=days[-1].day.isoformat()))
    found["seats"] = charts.hbar_chart(
        "closing-seats", _("Closing event seats"),
        [_("Confirmed"), _("Waiting list"), _("Free"), _("Capacity")],
        [Series(_("Seats"), [seat_figures.confirmed, seat_figures.waiting, seat_figures.free, seat_figures.capacity])],
        label_heading=_("Status"))
    if reminders is not None:
        found["reminders"] = charts.hbar_chart(
            "reminder-answers", _("Answers to the reminder"),
            [_("Reminded"), _("Coming"), _("Declined"), _("No answer yet")],
            [Series(_("People"), [reminders.reminded, reminders.coming, reminders.declined, reminders.no_answer])],
            label_heading=_("Answer"))
    found["categories"] = charts.hbar_chart(
        "viewing-categories", _("On demand: sign-ups and views per category"),
        [entry.category.name_ja if str(get_locale()) == "ja" else entry.category.name_en for entry in categories],
        [Series(_("Sign-ups"), [entry.attendance.signups for entry in categories]),
         Series(_("Views"), [entry.attendance.views for entry in categories])],
        label_heading=_("Category"))
    sessions = [row for entry in categories for row in entry.sessions if not row.session.is_withdrawn]
    found["sessions"] = charts.hbar_chart(
        "viewing-sessions", _("On demand: sign-ups and views per session"),
        [row.session.title for row in sessions],
        [Series(_("Sign-ups"), [row.attendance.signups for row in sessions]),
         Series(_("Views"), [row.attendance.views for row in sessions])],
        label_heading=_("Session"))
    return found


def _refusal_label(refusal: dashboard.Refusal) -> str:
    labels = {("unknown_code", None): _("Unknown code"), ("already_checked_in", None): _("Already checked in"),
              ("not_admitted", "cancelled"): _("Registration cancelled"),
              ("not_admitted", "waitlisted"): _("On the waiting list: no seat"),
              ("not_admitted", "no_ticket"): _("Not registered for the closing event"),
              ("not_admitted", "replaced"): _("This code was replaced by a newer ticket"),
              ("not_admitted", "refused_offline"): _("Turned away offline despite a valid ticket")}
    return labels.get((refusal.result, refusal.reason),
                      f"{refusal.result}: {refusal.reason}" if refusal.reason else refusal.result)


def _door_panel_context(at: datetime | None = None) -> dict:
    """The door panel's figures and charts, for the dashboard and for the panel's own endpoint."""
    panel = dashboard.door_panel(at)
    door_charts = {}
    if panel.over_time:
        last = panel.over_time[-1]
        door_charts["over_time"] = charts.line_chart(
            "checkins-over-time", _("Checked in over time (cumulative, per 10 minutes, JST)"),
            [f"{bucket.starts:%H:%M}" for bucket in panel.over_time],
            [Series(_("Checked in"), [bucket.total for bucket in panel.over_time])],
            area=True, label_heading=_("From (JST)"),
            description=_("%(count)d checked in by %(time)s", count=last.total, time=last.starts.strftime("%H:%M")))
    if panel.scans:
        door_charts["scans"] = charts.line_chart(
            "scans-per-minute", _("Scans per minute and gate, last 60 minutes (JST)"),
            [f"{minute:%H:%M}" for minute in panel.minutes],
            [Series(gate, counts) for gate, counts in panel.scans.items()], label_heading=_("Minute (JST)"),
            sparse_table=True)
    if panel.refused:
        door_charts["refused"] = charts.hbar_chart(
            "refused-scans", _("Refused scans by reason"), [_refusal_label(r) for r in panel.refused],
            [Series(_("Scans"), [r.count for r in panel.refused])], label_heading=_("Reason"))
    conflicts = door_conflicts.listing(limit=CONFLICTS_SHOWN, only_open=True)
    # Counted only when the list is full: while it holds them all, its length is the count.
    conflicts_open = len(conflicts) if len(conflicts) < CONFLICTS_SHOWN else door_conflicts.count_open()
    return {"panel": panel, "door_charts": door_charts, "expected_list": EXPECTED_LIST,
            "updated_at": clock.to_tokyo(panel.at).strftime("%H:%M:%S"), "conflicts": conflicts,
            "conflicts_open": conflicts_open, "button": ConfirmForm()}
