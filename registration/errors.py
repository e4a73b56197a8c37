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
    })
