"""Public pages: the landing page, registration, the personal page, the lost-link form."""

import time
from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, flash, g, make_response, redirect, render_template,
                   request, session, url_for)
from flask_babel import get_locale, refresh
from flask_babel import gettext as _
from limits import parse_many
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from registration import clock, formatting
from registration.errors import ProgramError, RegistrationError
from registration.extensions import csrf, db, limiter
from registration.models import Event, Registrant
from registration.public.forms import (ConfirmForm, DetailsForm, LanguageForm, LostLinkForm, RegistrationForm,
                                       SessionsForm, WatchForm)
from registration.services import registrations, seats, viewing
from registration.tickets import qr_png
from registration.urls import absolute_url

bp = Blueprint("public", __name__)

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
#: Where the browser session remembers whose personal page it opened last: the registration's id and when (never the
#: secret of the link, which the signed but readable session cookie would carry to every path of the site).
REGISTRANT_SESSION_KEY = "registrant"
#: How long "Sign up for this session" takes this browser to that personal page. Short: on a shared computer the next
#: person must not land on someone else's page.
REMEMBER_REGISTRANT_SECONDS = 30 * 60


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
    # The person's own pages are in the language they chose, whatever this browser's switch or settings say.
    g.registrant_locale = registrant.locale
    refresh()
    return registrant


def _chosen_locale(form) -> str:
    """The language a details form chose, or the page's own when the form did not say."""
    chosen = form.locale.data
    return chosen if chosen in current_app.config["LANGUAGES"] else str(get_locale())


@bp.get("/")
def index():
    """What CODT2023 is, and whether registration is open."""
    return render_template("public/index.html", event=current_event(), program=viewing.program(), **_window_context())


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
    program = viewing.program()
    form = RegistrationForm()
    form.offer(session.key for entry in program for session in entry.sessions)
    if not form.is_submitted():
        form.locale.data = str(get_locale())
        wanted = request.args.get("session", "")
        if wanted in form.offered_keys:  # "Sign up for this session" on a session's page
            form.sessions.data = [wanted]
    valid = form.validate_on_submit()
    if valid and not _allowed("REGISTER_ADDRESS_RATE_LIMIT", "register-address",
                              registrations.email_key(form.email.data)):
        # Each registration mails the address (and a cancellation does again): register-cancel cycles must not
        # become a way to flood a stranger's mailbox. Counted alike for known and unknown addresses.
        form.email.errors = [_("This address has been submitted too often in the last hour. Please try again "
                               "later.")]
        return render_template("public/register.html", event=event, form=form, program=program,
                               viewing=_viewing_context(at), **window), 429
    if not valid:
        status = 422 if form.is_submitted() else 200
        return render_template("public/register.html", event=event, form=form, program=program,
                               viewing=_viewing_context(at), **window), status
    try:
        outcome = registrations.register(form.details(), locale=_chosen_locale(form),
                                         sessions=tuple(form.sessions.data), at=at)
    except RegistrationError as error:
        db.session.rollback()
        return render_template("public/registration_unavailable.html", event=event, **_window_context(at)), (
            403 if error.code in ("closed", "not_open") else 409)
    except ProgramError as error:
        # The program changed (or viewing ended) between loading and sending the form.
        db.session.rollback()
        form.sessions.errors = [program_error_message(error)]
        return render_template("public/register.html", event=event, form=form, program=viewing.program(),
                               viewing=_viewing_context(at), **window), 409
    db.session.commit()
    if outcome.status == "already_registered":
        # Never show the existing link here: whoever typed the address may not own it.
        return render_template("public/already_registered.html", event=event, resend_minutes=_resend_minutes())
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
    form = DetailsForm(obj=registrant)
    status = 200
    if not registrant.is_cancelled:
        remember_registrant(registrant)
    if request.method == "POST" and not registrant.is_cancelled:
        if not form.validate_on_submit():
            status = 422
        elif not _address_change_allowed(registrant, form.email.data):
            form.email.errors = [_("This registration's address has been changed too often. Please try again in "
                                   "an hour.")]
            status = 429
        else:
            try:
                confirmation_sent = registrations.update(registrant, form.details(), locale=_chosen_locale(form),
                                                         at=at)
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
    return _personal_page(registrant, event, at, form=form, status=status)


def _personal_page(registrant: Registrant, event: Event, at, *, form: DetailsForm | None = None,
                   sessions_form: SessionsForm | None = None, status: int = 200):
    """The personal page with everything on it; a bounded number of queries, whatever the program's size."""
    program = viewing.program()
    signups = viewing.current_signups(registrant)
    proposed = None
    if sessions_form is None:
        sessions_form = SessionsForm(formdata=None, sessions=[
            session.key for entry in program for session in entry.sessions if session.id in signups])
        wanted = request.args.get("session", "")
        proposed = next((session for entry in program for session in entry.sessions
                         if session.key == wanted and session.id not in signups), None)
        if proposed is not None:  # "Sign up for this session": ticked here, saved by the person's own button
            sessions_form.sessions.data = [*sessions_form.sessions.data, proposed.key]
    chosen = set(sessions_form.sessions.data or ())
    response = make_response(render_template(
        # formdata=None: a POST of another form on this page must not fill (and so untick) the details form.
        "public/personal.html", event=event, registrant=registrant,
        form=form or DetailsForm(formdata=None, obj=registrant),
        cancel_form=ConfirmForm(), waitlist_position=seats.waitlist_position(registrant), program=program,
        signups=signups, chosen=chosen, proposed=proposed, sessions_form=sessions_form, watch_form=WatchForm(),
        watched=viewing.watched_session_ids(registrant), viewing=_viewing_context(at), **_window_context(at)),
        status)
    # The watch buttons post here and are redirected to the video's own (https) site.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self' https:; "
        "frame-ancestors 'none'")
    return response


def _viewing_context(at) -> dict:
    return {"now": at, "open": viewing.open_window(at), "next": viewing.next_window(at),
            "windows": viewing.windows(), "signups_open": viewing.signups_open(at)}


def program_error_message(error: ProgramError) -> str:
    """What to tell a registrant whose sign-up or watch was refused."""
    at = clock.now()
    upcoming = viewing.next_window(at)
    messages = {
        "unknown_session": _("That session is not in the program."),
        "withdrawn_session": _("That session is no longer in the program."),
        "cancelled": _("This registration is cancelled."),
        "signups_closed": _("Viewing has ended, so sign-ups can no longer change."),
        "no_video": _("The video of this session is not available yet. Please try again later."),
        "not_in_window": (_("Sessions can be watched from %(when)s.", when=formatting.moment(upcoming.starts_at))
                          if upcoming else _("Viewing has ended.")),
    }
    return messages[error.code]


@bp.post("/me/<secret>/sessions")
@csrf.exempt  # SessionsForm checks its own token and keeps the choice when it has expired
def personal_sessions(secret: str):
    """Change the sessions one signs up to watch; every sign-up and withdrawal is kept with its time."""
    registrant = _registrant_or_404(secret)
    event = current_event()
    at = clock.now()
    form = SessionsForm()
    form.offer(session.key for entry in viewing.program() for session in entry.sessions)
    if registrant.is_cancelled:
        flash(program_error_message(ProgramError("cancelled")), "error")
        return redirect(url_for("public.personal", secret=secret), 303)
    if not form.validate_on_submit():
        return _personal_page(registrant, event, at, sessions_form=form, status=422)
    try:
        change = viewing.change_signups(registrant, form.sessions.data, at=at)
    except ProgramError as error:
        db.session.rollback()
        form.sessions.errors = [program_error_message(error)]
        return _personal_page(registrant, event, at, sessions_form=form, status=409)
    db.session.commit()
    if change.added or change.removed:
        flash(_("Your sessions are saved: %(added)d added, %(removed)d removed.",
                added=len(change.added), removed=len(change.removed)), "section-success")
    else:
        flash(_("Your sessions are unchanged."), "section-info")
    return redirect(url_for("public.personal", secret=secret, _anchor="sessions"), 303)


@bp.post("/me/<secret>/watch")
def personal_watch(secret: str):
    """Count a view of a session and send the registrant on to its video (303); outside a window, say when."""
    registrant = _registrant_or_404(secret)
    form = WatchForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        granted = viewing.watch(registrant, form.session.data or "", at=clock.now())
    except ProgramError as error:
        db.session.rollback()
        # A cancelled registration's page has no sessions section to show the message in.
        flash(program_error_message(error), "error" if error.code == "cancelled" else "section-error")
        return redirect(url_for("public.personal", secret=secret, _anchor="sessions"), 303)
    db.session.commit()
    response = redirect(granted.video_url, 303)
    response.headers["Referrer-Policy"] = "no-referrer"  # the personal link must not reach the video site
    return response


@bp.get("/program")
def program():
    """The on-demand program: sessions by category, with a search box; never a video address."""
    query = "".join(char for char in request.args.get("q", "") if char.isprintable()).strip()[:100]
    everything = viewing.program()
    total = sum(len(entry.sessions) for entry in everything)
    entries = viewing.search_program(query, everything)
    return render_template("public/program.html", event=current_event(), program=entries, query=query, total=total,
                           found=sum(len(entry.sessions) for entry in entries), viewing=_viewing_context(clock.now()))


@bp.get("/program/<category>/<key>")
def program_session(category: str, key: str):
    """One session's page; a withdrawn session, or a key under another category, is not found."""
    session = viewing.find_session(key)
    if session is None or session.is_withdrawn or session.category.key != category:
        abort(404)
    return render_template("public/program_session.html", event=current_event(), session=session,
                           viewing=_viewing_context(clock.now()))


@bp.get("/program/<category>/<key>/sign-up")
def program_session_signup(category: str, key: str):
    """"Sign up for this session": the personal page of the registrant this browser knows, else the form, with the
    session ticked; nothing is saved until the person sends the form."""
    found = viewing.find_session(key)
    if found is None or found.is_withdrawn or found.category.key != category:
        abort(404)
    registrant = remembered_registrant()
    if registrant is not None:
        return redirect(url_for("public.personal", secret=registrant.secret, session=key,
                                _anchor=f"session-{key}"), 303)
    return redirect(url_for("public.register", session=key, _anchor=f"session-{key}"), 303)


def remember_registrant(registrant: Registrant) -> None:
    """Remember, for REMEMBER_REGISTRANT_SECONDS of this browser session, whose personal page it opened."""
    # Real time, not the app clock: the rehearsal clock must not make a browser forget or remember longer.
    session[REGISTRANT_SESSION_KEY] = [registrant.id, int(time.time())]


def remembered_registrant() -> Registrant | None:
    """The registration whose personal page this browser opened lately, while it is still live."""
    remembered = session.get(REGISTRANT_SESSION_KEY)
    if not (isinstance(remembered, list) and len(remembered) == 2 and all(type(v) is int for v in remembered)):
        return None
    registrant_id, seen_at = remembered
    if not 0 <= time.time() - seen_at <= REMEMBER_REGISTRANT_SECONDS:
        session.pop(REGISTRANT_SESSION_KEY, None)
        return None
    registrant = db.session.get(Registrant, registrant_id)
    if registrant is None or registrant.is_cancelled or registrant.anonymised_at is not None:
        return None
    return registrant


def forget_registrant() -> None:
    """After a cancellation or deletion this browser no longer leads anywhere near that registration."""
    session.pop(REGISTRANT_SESSION_KEY, None)


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


def _address_change_allowed(registrant: Registrant, new_address: str) -> bool:
    """Whether a confirmation mail may go to `new_address` now: each change mails a stranger's mailbox, so changes
    are counted per registration and per address written to (EMAIL_CHANGE_RATE_LIMIT, in the limiter's shared
    storage), and only changes count."""
    if registrations.email_key(new_address) == registrant.email_key:
        return True
    # The registration's own allowance first: only a change it lets through counts against the new address, so that
    # refused attempts cannot use up someone else's address.
    return (_allowed("EMAIL_CHANGE_RATE_LIMIT", "email-change-registration", str(registrant.id))
            and _allowed("EMAIL_CHANGE_RATE_LIMIT", "email-change-address", registrations.email_key(new_address)))


def _allowed(setting: str, *key: str) -> bool:
    """Count one event under `key` against the limits in config[setting] (the limiter's shared storage)."""
    # The strategy is the limits library's own: Flask-Limiter's RATELIMIT_KEY_PREFIX is added here, as it adds it to
    # the keys of its decorators, so that deployments sharing one Redis keep their counts apart.
    prefix = current_app.config["RATELIMIT_KEY_PREFIX"]
    return all([limiter.limiter.hit(limit, prefix, *key) for limit in parse_many(current_app.config[setting])])


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
        forget_registrant()
        if registrations.cancel(registrant):
            db.session.commit()
            flash(_("Your registration is cancelled. We have sent you a confirmation."), "success")
        return redirect(url_for("public.personal", secret=secret), 303)
    return render_template("public/cancel.html", event=current_event(), registrant=registrant, form=form,
                           waitlist_position=seats.waitlist_position(registrant),
                           signup_count=len(viewing.current_signups(registrant)), **_window_context())


def _resend_minutes() -> int:
    """LINK_RESEND_INTERVAL in whole minutes, as the pages state it."""
    return max(1, round(current_app.config["LINK_RESEND_INTERVAL"].total_seconds() / 60))


@bp.route("/me/<secret>/delete", methods=["GET", "POST"])
def personal_erase(secret: str):
    """Ask before deleting the registration and its personal data; the POST deletes (and frees a seat)."""
    registrant = _registrant_or_404(secret)
    form = ConfirmForm()
    if form.validate_on_submit():
        registrations.erase_own(registrant)
        db.session.commit()
        forget_registrant()
        return redirect(url_for("public.erased"), 303)
    return render_template("public/erase.html", event=current_event(), registrant=registrant, form=form)


@bp.get("/deleted")
def erased():
    """Where the personal page sends its owner after deleting their data: the old link is dead."""
    return render_template("public/erased.html", event=current_event())


@bp.route("/lost-link", methods=["GET", "POST"])
@csrf.exempt  # LostLinkForm checks its own token
@limiter.limit(lambda: current_app.config["LOST_LINK_RATE_LIMIT"], methods=["POST"])
def lost_link():
    """Mail the personal link to a registered address; the answer is the same whether it is or not."""
    form = LostLinkForm()
    if form.validate_on_submit():
        # Only the request is recorded, known address or not: the mail sender decides and writes any mail, so
        # this answer takes as long for a stranger's address as for a registrant's.
        registrations.request_link(form.email.data, "lost_link")
        db.session.commit()
        return render_template("public/lost_link_sent.html", event=current_event(), resend_minutes=_resend_minutes())
    status = 422 if form.is_submitted() else 200
    return render_template("public/lost_link.html", event=current_event(), form=form), status


@bp.post("/language")
def language():
    """Switch the language and remember it in a cookie, then go back where the visitor was."""
    form = LanguageForm()
    if not form.validate_on_submit() or form.lang.data not in current_app.config["LANGUAGES"]:
        abort(400)
    target = safe_next(form.next.data)
    _set_owner_locale(target, form.lang.data)
    response = redirect(target, 303)
    response.set_cookie("lang", form.lang.data, max_age=LANGUAGE_COOKIE_SECONDS, samesite="Lax",
                        httponly=True, secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _set_owner_locale(target: str, locale: str) -> None:
    """The switch on a registrant's own page changes their language: their pages and mail follow it."""
    parts = urlsplit(target).path.split("/")
    if len(parts) >= 3 and parts[1] == "me":
        registrant = registrations.find_by_secret(parts[2])
        if registrant is not None and registrations.set_locale(registrant, locale):
            db.session.commit()


def safe_next(target: str | None) -> str:
    """A same-site path to go back to, or the landing page."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or not target.isprintable()):
        return url_for("public.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("public.index")
    return target
