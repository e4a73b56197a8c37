"""Loading the event's facts from the package's data file."""

from importlib import resources

import yaml
from flask import current_app
from sqlalchemy import select

from registration import clock
from registration.extensions import db
from registration.models import Category, Event, ProgramSession
from registration.services import registrations, seats

EVENT_DATA = "codt2023.yaml"


def read_event_data(name: str = EVENT_DATA) -> dict:
    """The parsed data file shipped in registration/data/."""
    return yaml.safe_load(resources.files("registration.data").joinpath(name).read_text(encoding="utf-8"))


def load_event(data: dict) -> Event:
    """Create or update the event, its categories and the sessions the data names. Idempotent."""
    facts = data["event"]
    event = db.session.scalar(select(Event).where(Event.key == facts["key"])) or Event()
    for name, value in facts.items():
        setattr(event, name, value)
    db.session.add(event)

    categories = {}
    for position, fields in enumerate(data["categories"], start=1):
        category = db.session.scalar(select(Category).where(Category.key == fields["key"])) or Category()
        for name, value in fields.items():
            setattr(category, name, value)
        category.position = position
        category.event = event
        db.session.add(category)
        categories[category.key] = category

    # Once the organisers have imported their program, it is theirs: the shipped sessions would undo it.
    shipped_sessions = [] if event.program_imported_at else data.get("sessions", [])
    for position, fields in enumerate(shipped_sessions, start=1):
        session = db.session.scalar(select(ProgramSession).where(ProgramSession.key == fields["key"]))
        session = session or ProgramSession(abstract="")
        for name, value in fields.items():
            if name != "category":
                setattr(session, name, value)
        session.category = categories[fields["category"]]
        session.position = position
        db.session.add(session)
    db.session.flush()
    seats.lock()
    seats.set_capacity(current_app.config["CLOSING_CAPACITY"])
    # Before the deadline, seats freed by a larger CLOSING_CAPACITY go to the waiting list, and each promoted person
    # gets the ticket. After it, admins give seats by hand, as for a cancellation: the door may need one for a walk-in.
    if clock.now() < current_app.config["REGISTRATION_DEADLINE"]:
        for person in seats.promote_waiting():
            registrations.announce_promotion(person)
    return event
