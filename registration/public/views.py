"""Public pages: the landing page, registration, the personal page, the lost-link form."""

from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from registration import clock
from registration.errors import RegistrationError
from registration.extensions import csrf, db, limiter
from registration.models import Event, Registrant
from registration.public.forms import ConfirmForm, DetailsForm, LanguageForm, LostLinkForm, RegistrationForm
from registration.services import registrations
from registration.services import seats
from registration.tickets import qr_png
from registration.urls import absolute_url

bp = Blueprint("public", __name__)

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def current_event() -> Event:
    """The event the site is for; 503 until `flask event load` has run."""
    event = db.session.scalar(select(Event).options(selectinload(Event.categories)).limit(1))
    if event is None:
        abort(503)
    return event


def _window_context(at=None) -> dict:
    config = current_app.config
    return {
        "window": registrations.window_state(at),
        "opens_at": config["REGISTRATION_OPENS_AT"],
        "deadline": config["REGISTRATION_DEADLINE"],
    }


def _registrant_or_404(secret: str) -> Registrant:
    registrant = registrations.find_by_secret(secret)
    if registrant is None:
        abort(404)
    return registrant


@bp.get("/")
def index():
    """What CODT2023 is, and whether registration is open."""
    return render_template("public/index.html", event=current_event(), **_window_context())


@bp.get("/privacy")
def privacy():
    """The privacy policy: purpose, retention, contact."""
    return render_template("public/privacy.html", event=current_event())


@bp.route("/register", methods=["GET", "POST"])
@csrf.exempt  # the form checks its own token, so an expired one re-shows the form with the input kept
@limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
def register():
    """The registration form; the moment the POST is handled decides whether it is still open."""
    at = clock.now()
    event = current_event()
    window = _window_context(at)
    if window["window"] != "open":
        status = 403 if request.method == "POST" else 200
        return render_template("public/registration_unavailable.html", event=event, **window), status
    form = RegistrationForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("public/register.html", event=event, form=form, **window), status
    try:
        outcome = registrations.register(form.details(), locale=str(get_locale()), at=at)
    except RegistrationError as error:
        db.session.rollback()
        return render_template("public/registration_unavailable.html", event=event, **_window_context(at)), (
            403 if error.code in ("closed", "not_open") else 409)
    db.session.commit()
    if outcome.status == "already_registered":
        # Never show the existing link here: whoever typed the address may not own it.
        return render_template("public/already_registered.html", event=event)
    return redirect(url_for("public.personal_welcome", secret=outcome.registrant.secret), 303)


@bp.get("/me/<secret>/welcome")
def personal_welcome(secret: str):
    """The confirmation page right after registering, with the personal link to keep."""
    registrant = _registrant_or_404(secret)
    if registrant.is_cancelled:
        return redirect(url_for("public.personal", secret=secret), 303)
    return render_template("public/welcome.html", event=current_event(), registrant=registrant,
                           personal_url=absolute_url("public.personal", secret=secret),
                           waitlist_position=seats.waitlist_position(registrant))


@bp.route("/me/<secret>", methods=["GET", "POST"])
@csrf.exempt  # DetailsForm checks its own token and keeps the input when it has expired
def personal(secret: str):
    """The personal page: see and edit one's details, or cancel."""
    registrant = _registrant_or_404(secret)
    event = current_event()
    at = clock.now()
    window = _window_context(at)
    form = DetailsForm(obj=registrant)
    status = 200
    if request.method == "POST" and not registrant.is_cancelled:
        if form.validate_on_submit():
            try:
                confirmation_sent = registrations.update(registrant, form.details(), locale=str(get_locale()), at=at)
            except RegistrationError as error:
                db.session.rollback()
                registrant = _registrant_or_404(secret)
                _attach_update_error(form, error)
                status = 409
            else:
                db.session.commit()
                flash(_("Your changes are saved."), "success")
                if confirmation_sent:
                    flash(_("To change your address, open the link we have sent to %(new)s. Until then we keep "
                            "writing to %(old)s.", new=registrant.pending_email, old=registrant.email), "info")
                return redirect(url_for("public.personal", secret=secret), 303)
        else:
            status = 422
    return render_template("public/personal.html", event=event, registrant=registrant, form=form,
                           cancel_form=ConfirmForm(), waitlist_position=seats.waitlist_position(registrant),
                           **window), status


def _attach_update_error(form: DetailsForm, error: RegistrationError) -> None:
    messages = {
        "closing_locked": (form.attend_closing,
                           _("Registration has closed, so attendance at the closing event can no longer change.")),
        "cancelled": (form.family_name, _("This registration is cancelled.")),
    }
    field, message = messages.get(error.code, (form.family_name, error.code))
    field.errors = [*field.errors, message]


@bp.route("/me/<secret>/email/<token>", methods=["GET", "POST"])
def personal_confirm_email(secret: str, token: str):
    """Confirm an address change from the link mailed to the new address; only the POST changes it."""
    registrant = _registrant_or_404(secret)
    at = clock.now()
    form = ConfirmForm()
    if not registrations.pending_change_is_valid(registrant, token, at):
        return render_template("public/confirm_email.html", event=current_event(), registrant=registrant,
                               form=form, valid=False), 404
    if form.validate_on_submit():
        try:
            registrations.confirm_email_change(registrant, token, at=at)
        except RegistrationError as error:
            db.session.rollback()
            if error.code != "email_taken":
                raise
            flash(_("This address is already used by another registration, so it cannot be taken over."), "error")
        else:
            db.session.commit()
            flash(_("Your address is changed."), "success")
        return redirect(url_for("public.personal", secret=secret), 303)
    return render_template("public/confirm_email.html", event=current_event(), registrant=registrant,
                           form=form, valid=True)


@bp.get("/me/<secret>/ticket")
def personal_ticket(secret: str):
    """The printable ticket: name, organisation, date, venue, the QR code and the code as text."""
    registrant = _registrant_or_404(secret)
    if registrant.seat_status != "confirmed" or registrant.is_cancelled:
        return redirect(url_for("public.personal", secret=secret), 303)
    return render_template("public/ticket.html", event=current_event(), registrant=registrant)


@bp.get("/me/<secret>/ticket.png")
def personal_ticket_qr(secret: str):
    """The ticket's QR code; opening it never checks anyone in."""
    registrant = _registrant_or_404(secret)
    if registrant.seat_status != "confirmed" or registrant.is_cancelled:
        abort(404)
    return Response(qr_png(registrant.ticket_code), mimetype="image/png")


@bp.route("/me/<secret>/cancel", methods=["GET", "POST"])
def personal_cancel(secret: str):
    """Ask before cancelling; the POST cancels."""
    registrant = _registrant_or_404(secret)
    form = ConfirmForm()
    if form.validate_on_submit():
        if registrations.cancel(registrant):
            db.session.commit()
            flash(_("Your registration is cancelled. We have sent you a confirmation."), "success")
        return redirect(url_for("public.personal", secret=secret), 303)
    return render_template("public/cancel.html", event=current_event(), registrant=registrant, form=form)


@bp.route("/lost-link", methods=["GET", "POST"])
@csrf.exempt  # LostLinkForm checks its own token
@limiter.limit(lambda: current_app.config["LOST_LINK_RATE_LIMIT"], methods=["POST"])
def lost_link():
    """Mail the personal link to a registered address; the answer is the same whether it is or not."""
    form = LostLinkForm()
    if form.validate_on_submit():
        registrations.send_personal_link(form.email.data)
        db.session.commit()
        return render_template("public/lost_link_sent.html", event=current_event())
    status = 422 if form.is_submitted() else 200
    return render_template("public/lost_link.html", event=current_event(), form=form), status


@bp.post("/language")
def language():
    """Switch the language and remember it in a cookie, then go back where the visitor was."""
    form = LanguageForm()
    if not form.validate_on_submit() or form.lang.data not in current_app.config["LANGUAGES"]:
        abort(400)
    response = redirect(safe_next(form.next.data), 303)
    response.set_cookie("lang", form.lang.data, max_age=LANGUAGE_COOKIE_SECONDS, samesite="Lax",
                        httponly=True, secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def safe_next(target: str | None) -> str:
    """A same-site path to go back to, or the landing page."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or not target.isprintable()):
        return url_for("public.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("public.index")
    return target
