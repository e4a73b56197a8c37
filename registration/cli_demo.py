"""`flask --app registration demo-data --registrants N`: generated, clearly fake data to try the console. (Being
written.)"""

import click


@click.command("demo-data")
@click.option("--registrants", type=click.IntRange(min=1), required=True)
def demo_data(registrants: int) -> None:
    """Fill the database with generated, clearly fake registrants (refused in production)."""
    raise click.ClickException("not written yet")
