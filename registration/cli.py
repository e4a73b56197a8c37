"""Command-line entry points: `flask --app registration event|mail|program|rehearsal|seats|staff ...`."""

import signal
import sys
import threading
from contextlib import suppress
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError, SQLAlchemyError

from registration import clock, formatting
from registration.extensions import db
from registration.services import event as event_service
from registration.services import mail
from registration.services import privacy
from registration.services import program_import
from registration.services import registrations
from registration.services import reminders
from registration.services import seats
from registration.services import staff as staff_service
from registration.errors import PrivacyError, StaffError
from registration.models import AuditEntry


class CommandGroup(AppGroup):
    """An AppGroup whose commands end a database failure with a one-line message instead of a traceback."""

    def invoke(self, ctx: click.Context):
        """Run the command; a database error rolls back and becomes a ClickException (exit 1)."""
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            # A traceback would show the statement and its parameters: a password hash, people's addresses.
            with suppress(SQLAlchemyError):
                db.session.rollback()
            raise click.ClickException(database_message(error)) from None


def database_message(error: SQLAlchemyError) -> str:
    """The driver's own first line (never the SQL or its parameters), with a hint at the usual causes."""
    original = error.orig if isinstance(error, DBAPIError) else None
    lines = str(original).strip().splitlines() if original is not None else []
    detail = lines[0][:300] if lines else type(original or error).__name__
    if isinstance(error, (OperationalError, ProgrammingError)):
        return (f"The database could not be used: {detail}\n"
                "Check DATABASE_URL, that the database server is running, and that the schema is migrated "
                "(flask --app registration db upgrade).")
    return f"The database refused the change: {detail}"


event_cli = CommandGroup("event", help="The event's facts.")
mail_cli = CommandGroup("mail", help="The outbox.")
rehearsal_cli = CommandGroup("rehearsal", help="The rehearsal clock (REHEARSAL_CLOCK).")
seats_cli = CommandGroup("seats", help="Closing-event seats.")
staff_cli = CommandGroup("staff", help="Staff accounts and scanner devices.")
program_cli = CommandGroup("program", help="The on-demand program.")
privacy_cli = CommandGroup("privacy", help="Personal data: erasure after RETENTION_UNTIL.")


@event_cli.command("load")
def load_event() -> None:
    """Load the CODT2023 facts shipped with the package (idempotent)."""
    event = event_service.load_event(event_service.read_event_data())
    db.session.commit()
    click.echo(f"Loaded {event.short_name}: {len(event.categories)} categories, "
               f"{sum(not s.is_withdrawn for c in event.categories for s in c.sessions)} sessions in the program.")
    totals = seats.summary()
    free = totals.capacity - totals.confirmed
    if free > 0 and totals.waitlisted:
        click.echo(f"{free} seat{'s are' if free > 1 else ' is'} free and {totals.waitlisted} "
                   f"{'people are' if totals.waitlisted > 1 else 'person is'} waiting: after the deadline, admins give "
                   f"seats at /admin.")
    if totals.confirmed > totals.capacity:
        # Nobody loses a seat they hold: lowering the capacity only stops new seats from being given.
        click.echo(f"warning: {totals.confirmed} people hold a seat, more than CLOSING_CAPACITY={totals.capacity}; "
                   f"no new seats are given until enough are given back.", err=True)


@program_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and report what would change, changing nothing.")
def import_program(path: str, dry_run: bool) -> None:
    """Load the organisers' program from a CSV or YAML file (all or nothing; at most PROGRAM_IMPORT_MAX_BYTES)."""
    try:
        report = program_import.import_program(program_import.read_program_file(path))
    except program_import.ProgramFileError as error:
        db.session.rollback()
        for line in error.report():  # the first 100, then "... and N more problems"
            click.echo(f"{path}: {line}", err=True)
        raise click.ClickException(f"{len(error.problems)} problem(s) found; the program is unchanged.") from None
    for note in report.notes:
        click.echo(f"note: {note}")
    for label, keys in (("added", report.added), ("updated", report.updated), ("restored", report.restored),
                        ("withdrawn (kept for their sign-ups and views)", report.withdrawn),
                        ("deleted", report.deleted)):
        if keys:
            click.echo(f"{label}: {', '.join(keys)}")
    total = len(report.added) + len(report.updated) + len(report.unchanged) + len(report.restored)
    if dry_run:
        db.session.rollback()
        click.echo(f"Dry run: {total} sessions checked; nothing was changed.")
        return
    db.session.commit()
    click.echo(f"Imported {total} sessions: {len(report.added)} added, {len(report.updated)} updated, "
               f"{len(report.restored)} restored, {len(report.unchanged)} unchanged, "
               f"{len(report.withdrawn)} withdrawn, {len(report.deleted)} deleted.")


@mail_cli.command("send")
@click.option("--worker", is_flag=True, help="Keep running and deliver new mail as it arrives.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds between rounds with --worker.")
def send_mail(worker: bool, interval: float) -> None:
    """Deliver pending mail (once, or continuously with --worker)."""
    try:
        transport = mail.transport_from_config()  # a wrong MAIL_URL stops here, before any round
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    stop = threading.Event()
    if worker:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    while True:
        try:
            # Link requests first: the forms only recorded them, and their mail is written here.
            registrations.answer_link_requests()
            db.session.commit()
            # Seat releases an admin scheduled for a moment now past (each runs once, whichever worker gets it).
            reminders.run_due_releases()
            db.session.commit()
            report = mail.deliver_due(transport)
        except Exception:
            if not worker:
                raise  # CommandGroup turns a database error into a plain message
            # A worker outlives a database hiccup; what it could not record is retried next round.
            current_app.logger.exception("mail round failed; trying again in %s s", interval)
            db.session.rollback()
            report = None
        else:
            if report.sent or report.deferred or report.failed or not worker:
                click.echo(f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}")
        db.session.remove()
        # A full round that sent mail without trouble goes straight on (an opening-day backlog is sent at the pace SMTP
        # takes it, and a single `mail send` sends everything due); otherwise one round is enough, or the worker waits:
        # a round of refusals never spins.
        if report is not None and report.full and report.sent and not report.deferred and not stop.is_set():
            continue
        if not worker or stop.wait(interval):
            return


@mail_cli.command("retry-failed")
@click.option("--since", default=None, help="Only messages that failed at or after this instant (ISO 8601 with an "
              "offset, e.g. 2023-09-01T09:00:00+09:00).")
def retry_failed_mail(since: str | None) -> None:
    """Queue mail marked failed again (after a relay refused everything for a while)."""
    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise click.BadParameter("not an ISO 8601 instant", param_hint="--since") from None
        if moment.tzinfo is None:
            raise click.BadParameter("give the offset too, e.g. +09:00", param_hint="--since")
    count = mail.retry_failed(moment)
    db.session.commit()
    click.echo(f"{count} failed messages queued again")


def _rehearsal():
    rehearsal = current_app.extensions.get("rehearsal")
    if rehearsal is None:
        raise click.ClickException("REHEARSAL_CLOCK is not set: the app runs on the real clock.")
    return rehearsal


@rehearsal_cli.command("restart")
def restart_rehearsal() -> None:
    """Start the rehearsal again at REHEARSAL_CLOCK's instant (all processes follow)."""
    _rehearsal().restart()
    click.echo(f"Rehearsal restarted: simulated time is now {formatting.moment(clock.now(), 'en', seconds=True)}.")


@rehearsal_cli.command("status")
def rehearsal_status() -> None:
    """Print the simulated time of the running rehearsal."""
    _rehearsal()
    click.echo(f"Simulated time: {formatting.moment(clock.now(), 'en', seconds=True)}.")


_NAME_RULE = (f"1 to {staff_service.MAX_NAME_LENGTH} printable characters on one line, without spaces at either "
              "end")
_STAFF_MESSAGES = {
    "bad_name": f"A staff name must be {_NAME_RULE}.",
    "bad_device_name": f"A device name must be {_NAME_RULE}.",
    "weak_password": f"The password needs at least {staff_service.MIN_PASSWORD_LENGTH} characters, not only spaces.",
    "long_password": f"The password may have at most {staff_service.MAX_PASSWORD_LENGTH} characters "
                     f"(the sign-in form takes no more).",
    "name_taken": "There is already a staff member called {name!r}.",
    "bad_role": "The role must be door or admin.",
}


@staff_cli.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(staff_service.ROLES), required=True, help="door: the door page only.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
def add_staff(name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account."""
    if not staff_service.is_valid_name(name):  # before asking for a password that would be thrown away
        raise click.ClickException(_STAFF_MESSAGES["bad_name"])
    password = _read_password(password_stdin)
    try:
        staff_service.add_staff(name, role=role, password=password)
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(_STAFF_MESSAGES[error.code].format(name=name)) from None
    db.session.commit()
    click.echo(f"Added {name} ({role}).")


@staff_cli.command("token")
@click.argument("name")
@click.option("--device", "device_name", default=None, help="A name for the device (default: the staff name).")
def device_token(name: str, device_name: str | None) -> None:
    """Print a new API token for a scanner device acting as staff member NAME."""
    staff = staff_service.find_staff(name)
    if staff is None:
        raise click.ClickException(f"No staff member called {name!r}.")
    try:
        token = staff_service.new_device_token(staff, device_name=device_name or name)
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(_STAFF_MESSAGES[error.code]) from None
    db.session.commit()
    click.echo(token)


@staff_cli.command("revoke")
@click.argument("name")
@click.option("--device", "device_name", required=True, help="The device name the token was issued for.")
def revoke_token(name: str, device_name: str) -> None:
    """Revoke the tokens of a device."""
    staff = staff_service.find_staff(name)
    if staff is None:
        raise click.ClickException(f"No staff member called {name!r}.")
    count = staff_service.revoke_device_token(staff, device_name)
    if count == 0:
        # A mistyped device name must not look like success: the lost device would stay live.
        live = ", ".join(staff_service.device_names(staff)) or "none"
        raise click.ClickException(f"{name!r} has no live token for a device called {device_name!r} "
                                   f"(devices with a live token: {live}).")
    db.session.commit()
    click.echo(f"Revoked {count} token(s).")


def _staff_or_fail(name: str):
    # A name no account can have (bytes that are not UTF-8, say) is an unknown name, not a database error.
    staff = staff_service.find_staff(name) if staff_service.is_valid_name(name) else None
    if staff is None:
        raise click.ClickException(f"No staff member called {name!r}.")
    return staff


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        try:
            return sys.stdin.readline().rstrip("\r\n")  # a line ending from Windows is no part of the password
        except UnicodeDecodeError:
            raise click.ClickException("The password must be text in UTF-8.") from None
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@staff_cli.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
def change_password(name: str, password_stdin: bool) -> None:
    """Give staff member NAME a new password; every session signed in with the old one ends."""
    staff = _staff_or_fail(name)
    try:
        staff_service.set_password(staff, _read_password(password_stdin))
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(_STAFF_MESSAGES[error.code]) from None
    _audit_staff(staff, "staff.password", "password changed; every session ended")
    db.session.commit()
    click.echo(f"Changed the password of {name}; every session of {name} has ended.")


@staff_cli.command("disable")
@click.argument("name")
def disable_staff(name: str) -> None:
    """Disable staff member NAME: sign-in, every session and every device token stop working."""
    staff = _staff_or_fail(name)
    if not staff_service.disable(staff):
        raise click.ClickException(f"{name} is already disabled.")
    _audit_staff(staff, "staff.disable", "disabled; every session ended")
    db.session.commit()
    seconds = current_app.config["DEVICE_TOKEN_CACHE_SECONDS"]
    click.echo(f"Disabled {name}: every session has ended, and the device tokens are revoked (each app process "
               f"refuses them within {seconds:g} seconds).")


@staff_cli.command("enable")
@click.argument("name")
def enable_staff(name: str) -> None:
    """Let disabled staff member NAME sign in again."""
    staff = _staff_or_fail(name)
    if not staff_service.enable(staff):
        raise click.ClickException(f"{name} is not disabled.")
    _audit_staff(staff, "staff.enable", "enabled again")
    db.session.commit()
    click.echo(f"Enabled {name}; they sign in with their password. Devices need new tokens (`staff token`).")


@staff_cli.command("logout-everywhere")
@click.argument("name")
def logout_everywhere(name: str) -> None:
    """End every signed-in session of staff member NAME, on every browser (device tokens stay: see `revoke`)."""
    staff = _staff_or_fail(name)
    staff_service.end_sessions(staff)
    _audit_staff(staff, "staff.logout_everywhere", "every session ended")
    db.session.commit()
    click.echo(f"Every session of {name} has ended.")


def _audit_staff(staff, action: str, details: str) -> None:
    # Run from a shell on the server: no staff member is signed in, so the entry names only whom it concerns.
    db.session.add(AuditEntry(at=clock.now(), staff_id=None, actor="cli", action=action,
                              details=f"{staff.name}: {details}"))


@seats_cli.command("check")
def check_seats() -> None:
    """Check the seat invariants: exit 0 when they all hold, else print each problem and exit 1."""
    problems = seats.invariant_problems()
    if problems:
        for problem in problems:
            click.echo(problem)
        click.get_current_context().exit(1)
    totals = seats.summary()
    click.echo(f"All seat invariants hold: {totals.confirmed} confirmed of {totals.capacity} seats, "
               f"{totals.waitlisted} waiting.")


@privacy_cli.command("purge")
@click.option("--force", is_flag=True, help="Erase even before RETENTION_UNTIL.")
def purge_personal_data(force: bool) -> None:
    """Erase the names, readings, addresses, organisations and job titles of every registration (and the mail
    sent to them), keeping the counts; from RETENTION_UNTIL on, or earlier with --force. Audited."""
    until = current_app.config["RETENTION_UNTIL"]
    try:
        count = privacy.purge(force=force)
    except PrivacyError:
        today = clock.to_tokyo(clock.now()).date()
        raise click.ClickException(
            f"The privacy policy keeps personal data until {until.isoformat()}; today (Tokyo) is {today.isoformat()}. "
            "Nothing was erased. Run again with --force to erase it now.") from None
    db.session.commit()
    click.echo(f"Erased the personal data of {count} registration(s); the counts and statistics remain.")
