"""`flask --app registration mail remind-closing`: the closing-event reminder, once per seat holder."""

import click

from registration.cli import mail_cli
from registration.extensions import db
from registration.services import reminders


@mail_cli.command("remind-closing")
@click.option("--batch", default=reminders.BATCH, show_default=True, type=click.IntRange(min=1),
              help="Seat holders reminded per transaction.")
def remind_closing(batch: int) -> None:
    """Mail every closing-event seat holder the reminder with their ticket; each person once, however often it runs."""
    reminded, after = 0, 0
    while True:
        count, last = reminders.remind_batch(after_id=after, limit=batch)
        # One commit per batch: the seat lock is held for a batch, not for the whole run.
        db.session.commit()
        if last is None:
            break
        reminded, after = reminded + count, last
    already = max(0, reminders.reminded_holders() - reminded)
    db.session.commit()
    click.echo(f"Reminded {reminded} seat holder{'' if reminded == 1 else 's'}; "
               f"{already} had been reminded already.")
