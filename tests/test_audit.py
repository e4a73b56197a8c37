"""The audit trail the services write: who, when, what, and the values before and after; and the admin services
(restore, resend link/ticket, erase) that the console calls. Each refusal asserted by its code."""

import json

import pytest
from sqlalchemy import select

from registration.errors import RegistrationError, SeatError
from registration.extensions import db
from registration.models import AuditEntry, OutboxMessage, Registrant
from registration.services import privacy, registrations, seats
from registration.services import staff as staff_service
from registration.services.registrations import Details
from tests.conftest import jst


def entries(registrant_id: int) -> list[tuple]:
    """(action, actor, staff name, before, after) of a person's entries, oldest first."""
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.registrant_id == registrant_id)
                              .order_by(AuditEntry.id)).all()
    return [(row.action, row.actor, row.staff.name if row.staff else None,
             json.loads(row.before) if row.before else None, json.loads(row.after) if row.after else None)
            for row in rows]


def subjects(registrant_id: int) -> list[str]:
    return list(db.session.scalars(select(OutboxMessage.subject).where(OutboxMessage.registrant_id == registrant_id)
                                   .order_by(OutboxMessage.id)))


@pytest.fixture
def admin(app, make_staff):
    name, _ = make_staff("admin")
    return name


def staff(name: str):
    return staff_service.find_staff(name)


def test_a_registration_and_the_owners_changes_are_recorded_with_before_and_after(app, make_registrant):
    person = make_registrant(organization="旧社", attend_closing=True)
    with app.app_context():
        registrant = db.session.get(Registrant, person.id)
        registrations.update(registrant, Details(
            family_name=registrant.family_name, given_name=registrant.given_name, email=registrant.email,
            organization="新社", family_name_kana="ヤマダ", given_name_kana="タロウ", job_title="SRE",
            attend_closing=False), locale="en")
        db.session.commit()
        history = entries(person.id)
    assert [row[:2] for row in history] == [
        ("registrant.register", "registrant"), ("seat.confirmed", "system"), ("registrant.update", "registrant"),
        ("seat.released", "system")]
    assert history[0][4]["organization"] == "旧社" and history[0][4]["attend_closing"] is False
    assert history[2][3:] == ({"attend_closing": True, "locale": "ja", "organization": "旧社"},
                              {"attend_closing": False, "locale": "en", "organization": "新社"})
    assert history[3][3:] == ({"seat_status": "confirmed"}, {"seat_status": "none"})


def test_a_seat_freed_promotes_the_next_and_says_so_in_both_histories(app, make_registrant):
    with app.app_context():
        seats.set_capacity(1)
        db.session.commit()
    holder = make_registrant(attend_closing=True)
    waiting = make_registrant(attend_closing=True)
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, holder.id))
        db.session.commit()
        assert [row[:2] for row in entries(holder.id)][-2:] == [("registrant.cancel", "registrant"),
                                                               ("seat.released", "system")]
        assert [row[:2] for row in entries(waiting.id)] == [
            ("registrant.register", "registrant"), ("seat.waitlisted", "system"), ("seat.promoted", "system")]
        assert seats.invariant_problems() == []


def test_an_admin_cancels_and_restores(app, make_registrant, admin):
    person = make_registrant(attend_closing=True)
    with app.app_context():
        registrant = db.session.get(Registrant, person.id)
        assert registrations.cancel(registrant, by=staff(admin)) is True
        db.session.commit()
        registrations.restore(registrant, by=staff(admin))
        db.session.commit()
        registrant = db.session.get(Registrant, person.id)
        assert registrant.cancelled_at is None and registrant.seat_status == "none"  # the seat went to others
        history = entries(person.id)
        assert ("registrant.cancel", "staff", admin) == history[-3][:3]
        assert history[-3][3:] == ({"cancelled": False, "seat_status": "confirmed"},
                                   {"cancelled": True, "seat_status": "none"})
        assert ("registrant.restore", "staff", admin) == history[-1][:3]
        assert history[-1][4] == {"cancelled": False}
        # Registered, cancelled, and the link mailed back with the restoration.
        assert len(subjects(person.id)) == 3
        with pytest.raises(RegistrationError) as refused:
            registrations.restore(registrant, by=staff(admin))
        assert refused.value.code == "not_cancelled"


def test_restore_is_refused_when_the_address_registered_again(app, make_registrant, admin):
    first = make_registrant(email="again@example.jp")
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, first.id))
        db.session.commit()
    make_registrant(email="Again@example.jp")
    with app.app_context():
        with pytest.raises(RegistrationError) as refused:
            registrations.restore(db.session.get(Registrant, first.id), by=staff(admin))
        assert refused.value.code == "email_taken"
        db.session.rollback()
        assert db.session.get(Registrant, first.id).cancelled_at is not None


def test_resending_the_link_and_the_ticket(app, make_registrant, admin):
    holder = make_registrant(attend_closing=True)
    plain = make_registrant()
    with app.app_context():
        registrations.resend_link(db.session.get(Registrant, plain.id), by=staff(admin))
        registrations.resend_ticket(db.session.get(Registrant, holder.id), by=staff(admin))
        db.session.commit()
        assert entries(plain.id)[-1][:3] == ("mail.resend_link", "staff", admin)
        code = db.session.get(Registrant, holder.id).ticket_code
        assert entries(holder.id)[-1][4] == {"ticket": f"{code[:4]}…"}  # never the whole code
        assert len(subjects(holder.id)) == 2 and len(subjects(plain.id)) == 2
        with pytest.raises(SeatError) as refused:
            registrations.resend_ticket(db.session.get(Registrant, plain.id), by=staff(admin))
        assert refused.value.code == "no_ticket"
        registrations.cancel(db.session.get(Registrant, plain.id))
        db.session.commit()
        with pytest.raises(RegistrationError) as refused:
            registrations.resend_link(db.session.get(Registrant, plain.id), by=staff(admin))
        assert refused.value.code == "cancelled"


def test_erasure_by_an_admin_keeps_who_and_when_and_drops_the_values(app, make_registrant, admin):
    person = make_registrant(attend_closing=True, organization="消える社")
    with app.app_context():
        assert registrations.erase(db.session.get(Registrant, person.id), by=staff(admin)) is True
        db.session.commit()
        history = entries(person.id)
        assert [row[:3] for row in history][-1] == ("registrant.erase", "staff", admin)
        assert all(row[3] is None and row[4] is None for row in history)  # no name or address survives
        assert "消える社" not in json.dumps([row.details for row in db.session.scalars(select(AuditEntry))],
                                         ensure_ascii=False)
        assert seats.invariant_problems() == []
        with pytest.raises(RegistrationError) as refused:
            registrations.restore(db.session.get(Registrant, person.id), by=staff(admin))
        assert refused.value.code == "erased"
        assert registrations.erase(db.session.get(Registrant, person.id), by=staff(admin)) is False


def test_an_address_change_is_recorded_when_confirmed(app, make_registrant, frozen_clock):
    person = make_registrant(email="old@example.jp")
    with app.app_context():
        registrant = db.session.get(Registrant, person.id)
        details = Details(family_name=registrant.family_name, given_name=registrant.given_name,
                          email="new@example.jp", organization=registrant.organization)
        registrations.update(registrant, details, locale="ja")
        db.session.commit()
        assert entries(person.id)[-1][3:] == ({"family_name_kana": "ヤマダ", "given_name_kana": "タロウ",
                                               "job_title": "SRE", "pending_email": None},
                                              {"family_name_kana": "", "given_name_kana": "", "job_title": "",
                                               "pending_email": "new@example.jp"})
        frozen_clock(jst(2023, 8, 25, 11))
        registrations.confirm_email_change(registrant, registrant.pending_email_token)
        db.session.commit()
        assert entries(person.id)[-1][:2] == ("registrant.email_change", "registrant")
        assert entries(person.id)[-1][3:] == ({"email": "old@example.jp"}, {"email": "new@example.jp"})


def test_erasing_ones_data_erases_ones_earlier_cancelled_registrations_too(app, make_registrant):
    first = make_registrant(email="twice@example.jp", organization="前の会社")
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, first.id))
        db.session.commit()
    second = make_registrant(email="Twice@example.jp", organization="今の会社")
    other = make_registrant(email="someone-else@example.jp")
    with app.app_context():
        assert registrations.erase_own(db.session.get(Registrant, second.id)) is True
        db.session.commit()
        for person in (first, second):
            row = db.session.get(Registrant, person.id)
            assert row.anonymised_at is not None and row.organization == "" and "twice" not in row.email
        assert db.session.get(Registrant, other.id).anonymised_at is None


def test_a_stale_page_of_a_cancelled_registration_never_erases_the_live_one(app, make_registrant):
    old = make_registrant(email="stale@example.jp")
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, old.id))
        db.session.commit()
    live = make_registrant(email="stale@example.jp")
    with app.app_context():
        assert registrations.erase_own(db.session.get(Registrant, old.id)) is True
        db.session.commit()
        assert db.session.get(Registrant, live.id).anonymised_at is None
        assert db.session.get(Registrant, live.id).cancelled_at is None


def test_the_request_behind_an_erasure_is_kept_until_the_purge(app, make_registrant, admin):
    person = make_registrant()
    with app.app_context():
        registrations.erase(db.session.get(Registrant, person.id), by=staff(admin), reason="電話で依頼 03-0000-0000")
        db.session.commit()
        assert entries(person.id)[-1][4] == {"request": "電話で依頼 03-0000-0000"}
        privacy.purge(force=True)
        db.session.commit()
        assert entries(person.id)[-1][4] is None
        assert "03-0000-0000" not in " ".join(db.session.scalars(select(AuditEntry.details)))


def test_a_new_code_is_refused_when_the_page_showed_an_older_ticket(app, make_registrant, admin):
    person = make_registrant(attend_closing=True)
    with app.app_context():
        registrant = db.session.get(Registrant, person.id)
        seen = registrations.current_ticket_id(registrant)
        registrations.rotate_ticket(registrant, by=staff(admin), seen_ticket=seen)
        db.session.commit()
        with pytest.raises(SeatError) as refused:
            registrations.rotate_ticket(registrant, by=staff(admin), seen_ticket=seen)  # the second click
        assert refused.value.code == "ticket_changed"
        db.session.rollback()
        registrations.rotate_ticket(registrant, by=staff(admin), seen_ticket=registrations.current_ticket_id(registrant))
        db.session.commit()
        assert [row[0] for row in entries(person.id)].count("ticket.rotate") == 2


def test_a_resend_is_refused_for_a_minute(app, make_registrant, admin, frozen_clock):
    person = make_registrant(attend_closing=True)
    with app.app_context():
        for resend in (registrations.resend_link, registrations.resend_ticket):
            frozen_clock(jst(2023, 8, 25, 12))
            resend(db.session.get(Registrant, person.id), by=staff(admin))
            db.session.commit()
            frozen_clock(jst(2023, 8, 25, 12, 0, 59))
            with pytest.raises(RegistrationError) as refused:
                resend(db.session.get(Registrant, person.id), by=staff(admin))
            assert refused.value.code == "just_sent"
            db.session.rollback()
            frozen_clock(jst(2023, 8, 25, 12, 1, 1))
            resend(db.session.get(Registrant, person.id), by=staff(admin))
            db.session.commit()
        assert len(subjects(person.id)) == 5  # registered, then two of each
