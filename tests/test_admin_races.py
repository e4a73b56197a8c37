"""Double taps on the console's mail-sending actions, through two gunicorn processes at once: one confirmation gives
one new ticket code, one resend gives one mail (found by the outsider review: eight taps on "new ticket code" mailed
eight tickets, seven of them dead)."""

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import AuditEntry, OutboxMessage, Registrant, Ticket
from registration.services import registrations, seats
from tests.conftest import Browserless, at_once


def signed_in(server, name: str, password: str, page: str) -> tuple[Browserless, str]:
    visitor = Browserless(server.url)
    token = visitor.csrf_token("/login")
    assert visitor.post("/login", {"name": name, "password": password, "csrf_token": token}) == 303
    return visitor, visitor.csrf_token(page)


@pytest.mark.parametrize("action, logged", [("rotate-ticket", "ticket.rotate"), ("resend-ticket", "mail.resend_ticket"),
                                            ("resend-link", "mail.resend_link")])
def test_taps_at_once_through_two_processes_mail_once(live_server, frozen_clock, make_attendee, make_staff, app,
                                                     action, logged):
    person = make_attendee(email="taps@example.jp")
    name, password = make_staff("admin")
    server = live_server(workers=2)
    with app.app_context():
        ticket = registrations.current_ticket_id(db.session.get(Registrant, person.id))
        mailed_before = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                          .where(OutboxMessage.registrant_id == person.id))
    page = f"/admin/registrants/{person.id}?confirm=rotate"
    taps = [signed_in(server, name, password, page) for _ in range(4)]
    statuses = at_once([lambda v=v, t=t: v.post(f"/admin/registrants/{person.id}/{action}",
                                                {"csrf_token": t, "ticket": str(ticket)}) for v, t in taps])
    assert statuses == [303] * 4, server.errors()[-3000:]
    assert "Traceback" not in server.errors()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == logged)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.registrant_id == person.id)) == mailed_before + 1
        live = db.session.scalars(select(Ticket.code).where(Ticket.registrant_id == person.id,
                                                            Ticket.retired_at.is_(None))).all()
        assert len(live) == 1 and db.session.scalar(select(func.count()).select_from(Ticket)) == (
            2 if action == "rotate-ticket" else 1)
        assert seats.invariant_problems() == []
