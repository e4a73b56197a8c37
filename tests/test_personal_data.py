"""Personal data: a fresh registration after a cancellation, link requests answered by the mail sender, erasure
by the owner, and the purge after RETENTION_UNTIL."""

import re

import pytest
from sqlalchemy import func, select

from registration.errors import RegistrationError
from registration.extensions import db
from registration.models import (AuditEntry, CheckIn, LinkRequest, OutboxMessage, Registrant, SessionView,
                                 ViewingSignup)
from registration.services import checkins, registrations, seats, viewing
from tests.conftest import form_data, jst


def secret_from(response) -> str:
    return re.search(r"/me/([A-Za-z0-9_-]+)", response.headers["Location"]).group(1)


def mails(app) -> list[tuple[str, str]]:
    """(recipient, subject) of every message in the outbox, oldest first."""
    with app.app_context():
        return [(row.recipient, row.subject) for row in
                db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def answer_link_requests(app) -> int:
    """What the mail sender does first in each round."""
    with app.app_context():
        answered = registrations.answer_link_requests()
        db.session.commit()
        return answered


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


class TestRegisteringAgainAfterCancelling:
    def test_the_new_registration_shows_nothing_of_the_old_one(self, app, client, program_with_video):
        first = client.post("/register", data=form_data(email="back@example.jp", given_name="旧人",
                                                        sessions=["openinfra-loki-stack"]))
        old_secret = secret_from(first)
        assert client.post(f"/me/{old_secret}/watch", data={"session": "openinfra-loki-stack"}).status_code == 303
        client.post(f"/me/{old_secret}/cancel")

        again = client.post("/register", data=form_data(email="BACK@example.jp", given_name="新人"))
        assert again.status_code == 303
        new_secret = secret_from(again)
        assert new_secret != old_secret
        page = client.get(f"/me/{new_secret}").get_data(as_text=True)
        assert "新人" in page and "旧人" not in page
        with app.app_context():
            old, new = (registrations.find_by_secret(s) for s in (old_secret, new_secret))
            assert old.id != new.id and old.is_cancelled and not new.is_cancelled
            assert viewing.signed_up_sessions(new) == [] and viewing.watched_session_ids(new) == set()
            # The organisers keep both: the old one with its sign-up, view and cancellation.
            assert count(app, ViewingSignup, ViewingSignup.registrant_id == old.id) == 1
            assert count(app, SessionView, SessionView.registrant_id == old.id) == 1
        # The old link stays dead: it shows the cancelled registration, never the new one.
        old_page = client.get(f"/me/{old_secret}").get_data(as_text=True)
        assert "新人" not in old_page and "new@" not in old_page
        assert client.post(f"/me/{old_secret}", data=form_data(email="back@example.jp")).status_code == 200
        with app.app_context():
            assert registrations.find_by_secret(old_secret).given_name == "旧人"
        assert count(app, Registrant) == 2

    def test_a_second_registration_of_a_live_address_is_a_link_request(self, app, client):
        client.post("/register", data=form_data(email="twice@example.jp"))
        before = mails(app)
        response = client.post("/register", data=form_data(email="twice@example.jp", family_name="別人"))
        assert response.status_code == 200  # the "check your mailbox" page, not anybody's personal page
        assert count(app, Registrant) == 1 and mails(app) == before  # the request wrote no mail itself
        assert count(app, LinkRequest) == 1
        assert answer_link_requests(app) == 1
        assert mails(app)[-1] == ("twice@example.jp", "【CODT2023】すでに参加登録済みです")

    def test_checkins_of_the_old_registration_stay_with_it(self, app, make_attendee, make_staff):
        person = make_attendee(email="came@example.jp")
        with app.app_context():
            checkins.check_in(code=db.session.get(Registrant, person.id).ticket_code, gate="door-1")
            registrations.cancel(db.session.get(Registrant, person.id))
            db.session.commit()
            details = registrations.Details(family_name="再", given_name="登録", email="came@example.jp",
                                            organization="x")
            fresh = registrations.register(details, locale="ja").registrant
            db.session.commit()
            assert fresh.id != person.id and fresh.checkins == []
            assert count(app, CheckIn, CheckIn.registrant_id == person.id) == 1


class TestLinkRequests:
    def test_the_request_does_the_same_work_for_any_address(self, app, client, make_attendee, make_registrant):
        make_attendee(email="seat@example.jp")
        make_registrant(email="plain@example.jp")
        before = mails(app)
        pages = [client.post("/lost-link", data={"email": email}) for email in
                 ("seat@example.jp", "plain@example.jp", "nobody@example.jp")]
        assert {page.status_code for page in pages} == {200}
        # The same page but for the address typed and the CSRF token (signed with the second it was made in).
        assert len({re.sub(r'\S+@example\.jp|value="[^"]{40,}"', "", page.get_data(as_text=True)) for page in pages}) == 1
        assert mails(app) == before and count(app, LinkRequest) == 3  # one row each, nothing looked up

        assert answer_link_requests(app) == 3
        sent = mails(app)[len(before):]
        assert [to for to, _ in sent] == ["seat@example.jp", "plain@example.jp"]
        assert count(app, LinkRequest) == 0  # the requests are forgotten, the stranger's address too

    def test_at_most_one_link_mail_per_interval(self, app, client, make_registrant, frozen_clock):
        make_registrant(email="flood@example.jp")
        for _ in range(4):
            client.post("/lost-link", data={"email": "flood@example.jp"})
        answer_link_requests(app)
        assert [to for to, _ in mails(app)].count("flood@example.jp") == 2  # registration + one link
        frozen_clock(jst(2023, 8, 25, 10, 10))
        client.post("/lost-link", data={"email": "flood@example.jp"})
        answer_link_requests(app)
        assert [to for to, _ in mails(app)].count("flood@example.jp") == 3

    def test_a_cancelled_address_gets_no_link(self, app, client, make_registrant):
        person = make_registrant(email="gone@example.jp")
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, person.id))
            db.session.commit()
        before = mails(app)
        client.post("/lost-link", data={"email": "gone@example.jp"})
        answer_link_requests(app)
        assert mails(app) == before

    def test_the_mail_sender_answers_requests_in_its_round(self, app, client, make_registrant, runner):
        make_registrant(email="known@example.jp")
        client.post("/lost-link", data={"email": "known@example.jp"})
        result = runner.invoke(args=["mail", "send"])
        assert result.exit_code == 0, result.output
        assert count(app, LinkRequest) == 0
        assert count(app, OutboxMessage, OutboxMessage.recipient == "known@example.jp",
                     OutboxMessage.sent_at.is_not(None)) == 2


class TestErasureByTheOwner:
    def test_deleting_frees_the_seat_and_erases_the_person(self, make_app, make_registrant, program_with_video):
        app = make_app(CLOSING_CAPACITY=1)
        client = app.test_client()
        holder = make_registrant(email="holder@example.jp", family_name="席持", attend_closing=True)
        waiting = make_registrant(email="waiting@example.jp", attend_closing=True)
        with app.app_context():
            holder_row = db.session.get(Registrant, holder.id)
            secret, code = holder_row.secret, holder_row.ticket_code
            viewing.change_signups(holder_row, ["openinfra-loki-stack"])
            db.session.commit()
        page = client.get(f"/me/{secret}/delete")
        assert page.status_code == 200 and "キャンセル待ち" in page.get_data(as_text=True)
        assert client.get(f"/me/{secret}").status_code == 200  # the GET changed nothing

        response = client.post(f"/me/{secret}/delete")
        assert response.status_code == 303 and response.headers["Location"] == "/deleted"
        assert client.get("/deleted").status_code == 200
        assert client.get(f"/me/{secret}").status_code == 404
        assert client.post(f"/me/{secret}/delete").status_code == 404  # a second tap finds nothing

        with app.app_context():
            row = db.session.get(Registrant, holder.id)
            assert row.anonymised_at is not None and row.is_cancelled and row.seat_status == "none"
            assert (row.family_name, row.given_name, row.organization, row.job_title) == ("", "", "", "")
            assert "holder" not in row.email and "席持" not in row.search_key
            assert db.session.get(Registrant, waiting.id).seat_status == "confirmed"
            assert seats.invariant_problems() == []
            assert registrations.search("席持") == [] and registrations.search("holder@") == []
            # Mail to the person: the text is gone, the fact that a mail went out stays; no cancellation mail.
            to_them = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient.contains("holder")))
            assert list(to_them) == []
            assert all(b"holder@example.jp" not in row.message for row in db.session.scalars(select(OutboxMessage)))
            # The counts remain: the sign-up (withdrawn) and the audit entry.
            assert count(app, ViewingSignup, ViewingSignup.registrant_id == holder.id) == 1
            entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "registrant.erase"))
            assert entry.registrant_id == holder.id
            assert checkins.check_in(code=code, gate="door-1").body["reason"] == "cancelled"

    def test_mail_to_earlier_and_pending_addresses_goes_too(self, app, client, make_registrant):
        person = make_registrant(email="first@example.jp", family_name="転居")
        with app.app_context():
            row = db.session.get(Registrant, person.id)
            secret = row.secret
            registrations.update(row, registrations.Details(family_name="転居", given_name="太郎",
                                                            email="second@example.jp", organization="x"), locale="ja")
            registrations.confirm_email_change(row, row.pending_email_token)
            registrations.update(row, registrations.Details(family_name="転居", given_name="太郎",
                                                            email="third@example.jp", organization="x"), locale="ja")
            db.session.commit()
        assert {to for to, _ in mails(app)} == {"first@example.jp", "second@example.jp", "third@example.jp"}
        client.post(f"/me/{secret}/delete")
        assert mails(app) == [("", subject) for _, subject in mails(app)]  # sent ones keep only their subject
        with app.app_context():
            assert all("転居".encode() not in row.message for row in db.session.scalars(select(OutboxMessage)))

    def test_an_old_cancelled_link_erases_nothing_of_the_newer_registration(self, make_app, make_registrant):
        app = make_app(CLOSING_CAPACITY=5)
        client = app.test_client()
        old = make_registrant(email="same@example.jp")
        with app.app_context():
            old_secret = db.session.get(Registrant, old.id).secret
            registrations.cancel(db.session.get(Registrant, old.id))
            db.session.commit()
        new = make_registrant(email="same@example.jp", family_name="新規", attend_closing=True)
        before = count(app, OutboxMessage, OutboxMessage.registrant_id == new.id)
        assert client.post(f"/me/{old_secret}/delete").status_code == 303
        with app.app_context():
            assert db.session.get(Registrant, new.id).family_name == "新規"
            assert count(app, OutboxMessage, OutboxMessage.registrant_id == new.id,
                         OutboxMessage.recipient == "same@example.jp") == before == 1
            assert seats.invariant_problems() == []

    def test_deleting_needs_the_form_token(self, app, make_registrant):
        person = make_registrant()
        with app.app_context():
            secret = db.session.get(Registrant, person.id).secret
        forged = app.test_client().post(f"/me/{secret}/delete", without_csrf=True)
        assert forged.status_code != 303
        with app.app_context():
            assert db.session.get(Registrant, person.id).anonymised_at is None


class TestPurge:
    def test_refused_before_the_retention_day_without_force(self, app, runner, make_registrant, frozen_clock):
        make_registrant(email="kept@example.jp")
        frozen_clock(jst(2024, 3, 13, 23, 59, 59, 999000))
        result = runner.invoke(args=["privacy", "purge"])
        assert result.exit_code == 1
        assert "until 2024-03-14" in result.output and "--force" in result.output
        assert count(app, Registrant, Registrant.anonymised_at.is_(None)) == 1

    def test_from_the_retention_day_every_registration_is_erased_and_counts_remain(
            self, app, runner, make_attendee, make_registrant, frozen_clock):
        came = make_attendee(email="came@example.jp", family_name="来場")
        make_registrant(email="home@example.jp", family_name="在宅")
        gone = make_registrant(email="gone@example.jp")
        with app.app_context():
            checkins.check_in(code=db.session.get(Registrant, came.id).ticket_code, gate="door-1")
            registrations.cancel(db.session.get(Registrant, gone.id))
            registrations.request_link("home@example.jp", "lost_link")
            db.session.commit()
        frozen_clock(jst(2024, 3, 14))
        result = runner.invoke(args=["privacy", "purge"])
        assert result.exit_code == 0, result.output
        assert "3 registration(s)" in result.output
        with app.app_context():
            people = db.session.scalars(select(Registrant)).all()
            assert len(people) == 3 and all(p.anonymised_at is not None for p in people)
            assert {p.family_name for p in people} == {""} and not any("example.jp" in p.email for p in people)
            assert count(app, CheckIn) == 1 and count(app, Registrant, Registrant.cancelled_at.is_not(None)) == 1
            assert count(app, LinkRequest) == 0
            assert all(b"example.jp" not in row.message for row in db.session.scalars(select(OutboxMessage)))
            assert seats.summary().confirmed == 1  # the seat count is a statistic: it stays
            assert seats.invariant_problems() == []  # the ticket mail is erased with its holder, on purpose
            entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "privacy.purge"))
            assert "3 registrations" in entry.details
        # Running again erases nothing more.
        assert "0 registration(s)" in runner.invoke(args=["privacy", "purge"]).output

    def test_force_erases_early_and_says_so_in_the_audit_log(self, app, runner, make_registrant):
        make_registrant()
        result = runner.invoke(args=["privacy", "purge", "--force"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "privacy.purge"))
            assert "forced" in entry.details


class TestAddressChangeMail:
    def test_changes_are_limited_per_registration_and_per_new_address(self, app, make_registrant):
        client = app.test_client()
        secrets_ = []
        for n in range(3):
            person = make_registrant(email=f"sender{n}@example.jp")
            with app.app_context():
                secrets_.append(db.session.get(Registrant, person.id).secret)
        change = lambda secret, to: client.post(f"/me/{secret}", data=form_data(email=to)).status_code
        # One registration writing to ever new victims: five confirmations an hour.
        assert [change(secrets_[0], f"victim{n}@example.org") for n in range(6)] == [303] * 5 + [429]
        # Many registrations writing to one victim: five an hour for that address.
        assert [change(secrets_[1], "target@example.org") for _ in range(5)] == [303] * 5
        assert change(secrets_[2], "TARGET@example.org") == 429  # another registration, the same victim
        assert change(secrets_[2], "someone-else@example.org") == 303
        assert count(app, OutboxMessage, OutboxMessage.recipient.like("%@example.org")) == 11
        # Editing anything else is never limited.
        assert client.post(f"/me/{secrets_[0]}", data=form_data(email="sender0@example.jp",
                                                                organization="新しい会社")).status_code == 303


class TestMailFloods:
    def test_register_and_cancel_cycles_cannot_flood_an_address(self, app):
        client = app.test_client()
        statuses = []
        for _ in range(7):
            response = client.post("/register", data=form_data(email="cycle@victim.example"))
            statuses.append(response.status_code)
            if response.status_code == 303:
                client.post(response.headers["Location"].removesuffix("/welcome") + "/cancel")
        assert statuses == [303] * 5 + [429] * 2
        assert count(app, OutboxMessage, OutboxMessage.recipient == "cycle@victim.example") == 10
        # Another address from the same client is not affected.
        assert client.post("/register", data=form_data(email="other@example.jp")).status_code == 303

    def test_refused_address_changes_do_not_use_up_the_new_address(self, app, make_registrant):
        client = app.test_client()
        attacker, victim = (make_registrant(email=f"{who}@example.jp") for who in ("attacker", "victim"))
        with app.app_context():
            attacker_secret, victim_secret = (db.session.get(Registrant, p.id).secret for p in (attacker, victim))
        for n in range(5):
            client.post(f"/me/{attacker_secret}", data=form_data(email=f"spent{n}@example.org"))
        for _ in range(5):  # refused by the attacker's own allowance: nothing counts against the address
            assert client.post(f"/me/{attacker_secret}", data=form_data(email="new@victim.example")).status_code == 429
        assert client.post(f"/me/{victim_secret}", data=form_data(email="new@victim.example")).status_code == 303


class TestRacesWithErasure:
    def test_a_link_mail_decided_before_an_erasure_is_not_written_after_it(self, app, make_registrant):
        person = make_registrant(email="late@example.jp", family_name="遅延")
        with app.app_context():
            registrations.request_link("late@example.jp", "lost_link")
            db.session.commit()
            row = registrations.find_by_email("late@example.jp")  # the sender has looked the person up ...
            other = app.test_client()  # ... and the owner erases the registration meanwhile
            secret = row.secret
            db.session.rollback()
            assert other.post(f"/me/{secret}/delete").status_code == 303
            registrations._resend_link(row, "lost_link", registrations.clock.now())
            db.session.commit()
        assert count(app, OutboxMessage, OutboxMessage.registrant_id == person.id, OutboxMessage.message != b"") == 0

    def test_confirming_an_address_change_after_erasure_changes_nothing(self, app, make_registrant):
        person = make_registrant(email="orig@example.jp")
        with app.app_context():
            row = db.session.get(Registrant, person.id)
            registrations.update(row, registrations.Details(family_name="a", given_name="b", email="new@example.jp",
                                                            organization="x"), locale="ja")
            db.session.commit()
            token, secret = row.pending_email_token, row.secret
            assert app.test_client().post(f"/me/{secret}/delete").status_code == 303
            with pytest.raises(RegistrationError):
                registrations.confirm_email_change(row, token)
            db.session.rollback()
            assert db.session.get(Registrant, person.id).email == f"erased-{person.id}@invalid"
