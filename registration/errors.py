"""Coded refusals raised by services; entry points turn each code into a page, a JSON answer or a CLI message."""


class DomainError(Exception):
    """A refusal with a stable code from a closed set."""

    codes: frozenset[str] = frozenset()

    def __init__(self, code: str) -> None:
        if code not in self.codes:
            raise ValueError(f"unknown {type(self).__name__} code {code!r}")
        super().__init__(code)
        self.code = code


class RegistrationError(DomainError):
    """Why a registration, an edit or a cancellation was refused."""

    codes = frozenset({
        "not_open",        # before REGISTRATION_OPENS_AT
        "closed",          # at or after REGISTRATION_DEADLINE
        "cancelled",       # the registration was cancelled; re-register instead of editing
        "closing_locked",  # closing-event attendance can no longer change after the deadline
        "email_taken",     # another registration uses that address
        "email_change_invalid",  # the confirmation link of an address change is wrong, used or expired
        "not_closed",      # walk-ins are registered at the door only after registration has closed
        "not_cancelled",   # only a cancelled registration can be restored
        "erased",          # the person's data was erased: nothing to restore or mail
        "just_sent",       # the same mail went to this person moments ago (a double tap): not sent again
    })


class SeatError(DomainError):
    """Why a seat could not be given or a ticket changed."""

    codes = frozenset({
        "full",            # no seat left
        "not_waitlisted",  # only a waiting person can be promoted
        "no_ticket",       # the person holds no seat, so no ticket
        "ticket_changed",  # the code was replaced since the page was shown (a second click, another admin)
    })


class CheckInError(DomainError):
    """Why a scan did not admit anyone; `reason` refines not_admitted."""

    codes = frozenset({"unknown_code", "already_checked_in", "not_admitted"})

    def __init__(self, code: str, reason: str | None = None) -> None:
        super().__init__(code)
        self.reason = reason


class StaffError(DomainError):
    """Why a staff account or a device token could not be created."""

    codes = frozenset({
        "bad_name",         # empty, too long, on several lines, with control characters or surrounding spaces
        "bad_role",
        "weak_password",    # shorter than MIN_PASSWORD_LENGTH, or only spaces
        "long_password",    # longer than the sign-in form accepts
        "name_taken",
        "bad_device_name",  # the same rules as bad_name, for a scanner device's name
    })


class ProgramError(DomainError):
    """Why a viewing sign-up or a watch was refused."""

    codes = frozenset({
        "unknown_session",    # no session has that key
        "withdrawn_session",  # the organisers have dropped the session from the program
        "cancelled",          # the registration was cancelled
        "signups_closed",     # every viewing window has ended
        "not_in_window",      # nothing can be watched at this moment
        "no_video",           # the organisers have not yet set the session's video
    })


class PrivacyError(DomainError):
    """Why personal data was not erased."""

    codes = frozenset({
        "too_early",  # before RETENTION_UNTIL, and not forced
    })
