"""`flask --app registration demo-data --registrants N`: generated, clearly fake data to try and measure the
organisers' console. Refused in production."""

import time

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from registration.cli import database_message
from registration.extensions import db
from registration.services import demo, seats


#: The tables in the order the summary lists them.
_TABLES = ("registrants", "tickets", "viewing_signups", "session_views", "checkins", "scans", "audit_log", "outbox",
           "staff", "device_tokens")


@click.command("demo-data")
@with_appcontext
@click.option("--registrants", type=click.IntRange(min=1, max=1_000_000), required=True,
              help="How many fake registrants to generate.")
@click.option("--seed", type=int, default=demo.DEFAULT_SEED, show_default=True,
              help="The same seed gives the same people, times and choices.")
@click.option("--add", is_flag=True, help="Add to a database that already holds registrants.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Run `seats check` at the end (slow with a waiting list of tens of thousands).")
def demo_data(registrants: int, seed: int, add: bool, check: bool) -> None:
    """Fill the database with generated, clearly fake registrants (refused in production)."""
    reason = demo.refusal()
    if reason:  # before touching the database at all
        raise click.ClickException(reason)
    try:
        report = demo.generate(registrants, seed=seed, add=add)
    except demo.DemoError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        # A traceback would show statements and their parameters; the driver's first line says enough.
        db.session.rollback()
        raise click.ClickException(database_message(error)) from None
    db.session.commit()
    counts = report.counts
    click.echo(f"Wrote demo data in {report.seconds:.1f} s (seed {seed}):")
    for table in _TABLES:
        if counts.get(table):
            click.echo(f"  {table:16} {counts[table]:>9,}")
    click.echo("Everyone is fake: names from short lists, organisations 'デモ株式会社 n' / 'Demo Corp n', addresses "
               "demo-<n>@example.invalid; their mail is marked sent and never leaves.")
    if not check:
        click.echo("seats check: skipped (--no-check); run `flask --app registration seats check`.")
        return
    started = time.perf_counter()
    problems = seats.invariant_problems()
    seconds = time.perf_counter() - started
    if problems:
        click.echo(f"seats check: FAILED ({seconds:.1f} s)")
        for problem in problems:
            click.echo(f"  {problem}")
        click.get_current_context().exit(1)
    totals = seats.summary()
    click.echo(f"seats check: all seat invariants hold: {totals.confirmed} confirmed of {totals.capacity} seats, "
               f"{totals.waitlisted} waiting ({seconds:.1f} s).")

