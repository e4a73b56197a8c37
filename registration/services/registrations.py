"""Registering, editing, cancelling, and sending people their personal link."""

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from flask import current_app
from flask_babel import LazyString, force_locale, lazy_gettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from registration import clock
from registration.errors import RegistrationError
from registration.extensions import db
from registration.models import Event, Registrant
from registration.services import mail

WindowState = Literal["not_open", "open", "closed"]
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class Details:
    """What a person tells us about themselves, already validated by a form."""

    family_name: str
    given_name: str
    email: str
    organization: str
    family_name_kana: str = ""
    given_name_kana: str = ""
    job_title: str = ""
    attend_closing: bool = False


@dataclass(frozen=True)
class Outcome:
    """The result of a registration attempt: who, and whether this submission created it."""

    registrant: Registrant
    status: Literal["registered", "reregistered", "already_registered"]


def email_key(email: str) -> str:
    """The address as compared for uniqueness: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def new_secret() -> str:
    """A personal-link secret: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def window_state(at: datetime | None = None) -> WindowState:
    """Whether registration is open at `at` (the handling moment, not when a form was loaded)."""
    at = at or clock.now()
    config = current_app.config
    if at < config["REGISTRATION_OPENS_AT"]:
        return "not_open"
    if at >= config["REGISTRATION_DEADLINE"]:
        return "closed"
    return "open"


def _require_open(at: datetime) -> None:
    state = window_state(at)
    if state != "open":
        raise RegistrationError(state)


def find_by_email(email: str) -> Registrant | None:
    """The registration for an address, compared as `email_key` does."""
    return db.session.scalar(select(Registrant).where(Registrant.email_key == email_key(email)))


def find_by_secret(secret: str) -> Registrant | None:
    """The registration a personal link points to, if the secret is genuine."""
    if not SECRET_SHAPE.fullmatch(secret):
        return None  # also keeps NUL and other bytes PostgreSQL refuses away from the query
    return db.session.scalar(select(Registrant).where(Registrant.secret == secret))


def register(details: Details, *, locale: str, at: datetime | None = None) -> Outcome:
    """Register a person, or re-send the link of an existing registration. The whole unit of work."""
    at = at or clock.now()
    _require_open(at)
    existing = find_by_email(details.email)
    if existing is not None and not existing.is_cancelled:
        _enqueue_link_mail(existing, reason="already_registered")
        return Outcome(existing, "already_registered")
    if existing is not None:
        _apply(existing, details, at)
        existing.locale = locale
        existing.consented_at = at
        existing.registered_at = at
        existing.cancelled_at = None
        _enqueue_link_mail(existing, reason="registered")
        return Outcome(existing, "reregistered")

    registrant = Registrant(
        secret=new_secret(), locale=locale, consented_at=at, registered_at=at, updated_at=at
    )
    _apply(registrant, details, at)
    db.session.add(registrant)
    try:
        db.session.flush()
    except IntegrityError:
        # A simultaneous submission of the same address won the unique constraint: answer as a repeat.
        db.session.rollback()
        winner = find_by_email(details.email)
        if winner is None:
            raise
        _enqueue_link_mail(winner, reason="already_registered")
        return Outcome(winner, "already_registered")
    _enqueue_link_mail(registrant, reason="registered")
    return Outcome(registrant, "registered")


def update(registrant: Registrant, details: Details, *, locale: str, at: datetime | None = None) -> None:
    """Change a registration's details; closing-event attendance only before the deadline."""
    at = at or clock.now()
    if registrant.is_cancelled:
        raise RegistrationError("cancelled")
    if details.attend_closing != registrant.attend_closing and window_state(at) != "open":
        raise RegistrationError("closing_locked")
    new_key = email_key(details.email)
    if new_key != registrant.email_key and db.session.scalar(
        select(Registrant.id).where(Registrant.email_key == new_key)
    ):
        raise RegistrationError("email_taken")
    _apply(registrant, details, at)
    registrant.locale = locale
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise RegistrationError("email_taken") from None


def cancel(registrant: Registrant, *, at: datetime | None = None) -> bool:
    """Cancel a registration; False if it already was. Sends a confirmation of the cancellation."""
    at = at or clock.now()
    if registrant.is_cancelled:
        return False
    registrant.cancelled_at = at
    registrant.updated_at = at
    _enqueue_mail(registrant, "cancelled", lazy_gettext("Your CODT2023 registration is cancelled"))
    db.session.flush()
    return True


def send_personal_link(email: str) -> bool:
    """Mail the personal link to `email` if it is registered; the caller answers the same either way."""
    registrant = find_by_email(email)
    if registrant is None:
        return False
    _enqueue_link_mail(registrant, reason="lost_link")
    return True


def _apply(registrant: Registrant, details: Details, at: datetime) -> None:
    registrant.family_name = details.family_name
    registrant.given_name = details.given_name
    registrant.family_name_kana = details.family_name_kana
    registrant.given_name_kana = details.given_name_kana
    registrant.email = details.email
    registrant.email_key = email_key(details.email)
    registrant.organization = details.organization
    registrant.job_title = details.job_title
    registrant.attend_closing = details.attend_closing
    registrant.updated_at = at


_LINK_SUBJECTS = {
    "registered": lazy_gettext("Your CODT2023 registration"),
    "already_registered": lazy_gettext("You are already registered for CODT2023"),
    "lost_link": lazy_gettext("Your CODT2023 personal link"),
}


def _enqueue_link_mail(registrant: Registrant, *, reason: str) -> None:
    _enqueue_mail(registrant, reason, _LINK_SUBJECTS[reason])


def _enqueue_mail(registrant: Registrant, template: str, subject: LazyString) -> None:
    with force_locale(registrant.locale):
        subject = str(subject)
    mail.enqueue_template(
        recipient=registrant.email,
        subject=subject,
        template=template,
        locale=registrant.locale,
        registrant=registrant,
        event=db.session.scalar(select(Event).limit(1)),
    )
