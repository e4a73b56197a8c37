"""The reminder's two answers, each a page with a confirming button: /me/<secret>/coming and /me/<secret>/not-coming.

Opening a link (GET) changes nothing, since mail scanners follow links; the button's POST (with its CSRF token) does.
"""

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _

from registration import clock
from registration.extensions import db
from registration.public.forms import ConfirmForm
from registration.public.views import _registrant_or_404, bp, current_event
from registration.services import reminders, seats


@bp.route("/me/<secret>/coming", methods=["GET", "POST"])
def reminder_coming(secret: str):
    """The reminder's "I'm coming" link: a page that asks; its button records the answer."""
    return _answer_page(secret, "coming")


@bp.route("/me/<secret>/not-coming", methods=["GET", "POST"])
def reminder_not_coming(secret: str):
    """The reminder's "I can't come any more" link: a page that asks; its button gives the seat back."""
    return _answer_page(secret, "not_coming")


def _answer_page(secret: str, answer: str):
    registrant = _registrant_or_404(secret)
    if registrant.anonymised_at is not None:
        abort(404)  # erased: its secret was replaced and mailed to nobody, but it must never open a page
    event = current_event()
    at = clock.now()
    form = ConfirmForm()
    if form.validate_on_submit():
        if answer == "coming":
            outcome = reminders.answer_coming(registrant, at=at)
            messages = {"recorded": (_("Thank you: we have noted that you are coming. See you at the closing event!"),
                                     "success"),
                        "already": (_("You had already told us that you are coming. See you there!"), "info")}
        else:
            outcome = reminders.decline(registrant, at=at)
            messages = {"declined": (_("Your seat is given back. We have sent you a confirmation. Thank you for "
                                       "telling us."), "success")}
        db.session.commit()
        if outcome in messages:
            flash(*messages[outcome])
        # "closed": the page itself says why (a second tap that lost the race lands on "no seat any more").
        return redirect(url_for(f"public.reminder_{answer}", secret=secret), 303)
    state = reminders.answer_state(registrant, at=at)
    response = make_response(render_template(
        "public/reminder_answer.html", event=event, registrant=registrant, form=form, answer=answer, state=state,
        waitlist_position=seats.waitlist_position(registrant)))
    # The address carries the personal secret: it must reach no other site, nor stay in any cache.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
