"""`flask --app registration mail remind-closing`. (Being written.)"""

from registration.cli import mail_cli  # noqa: F401
