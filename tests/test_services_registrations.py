"""The registration service: window, uniqueness, re-registration, edits, cancellation, personal links."""

from email import message_from_bytes, policy
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from registration.errors import RegistrationError
from registration.extensions import db
from registration.models import OutboxMessage, Registrant
from registration.services import registrations
from tests.conftest import jst

DEADLINE = jst(2023, 9, 14, 10)
JUST_BEFORE = DEADLINE - timedelta(milliseconds=1)  # 09:59:59.999 JST
OPENS = jst(2023, 7, 24)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))




@pytest.mark.usefixtures("app_ctx", "server_tz")
class TestWindow:
    def test_open_at_09_59_59_999_jst(self, make_details):
        outcome = registrations.register(make_details(), locale="ja", at=JUST_BEFORE)
        assert outcome.status == "registered"
        assert count(Registrant) == 1

    def test_closed_at_10_00_00_000_jst(self, make_details):
        with pytest.raises(RegistrationError) as excinfo:
            registrations.register(make_details(), locale="ja", at=DEADLINE)
        assert excinfo.value.code == "closed"
        assert count(Registrant) == 0
        assert count(OutboxMessage) == 0

    def test_deadline_is_01_00_utc(self):
        assert registrations.window_state(jst(2023, 9, 14, 9, 59, 59, 999999)) == "open"

        assert registrations.window_state(datetime(2023, 9, 14, 1, 0, tzinfo=UTC)) == "closed"
        assert registrations.window_state(datetime(2023, 9, 14, 0, 59, 59, 999000, tzinfo=UTC)) == "open"

    def test_not_open_before_opening(self, make_details):
        with pytest.raises(RegistrationError) as excinfo:
            registrations.register(make_details(), locale="ja", at=OPENS - timedelta(milliseconds=1))
        assert excinfo.value.code == "not_open"
        assert registrations.register(make_details(), locale="ja", at=OPENS).status == "registered"


@pytest.mark.usefixtures("app_ctx")
class TestUniqueness:
    @pytest.mark.parametrize("second", ["TARO@EXAMPLE.JP", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "Taro@Example.JP"])
    def test_same_address_in_another_spelling_is_a_repeat(self, make_details, second):
        first = registrations.register(make_details(email="taro@example.jp"), locale="ja")
        db.session.commit()
        again = registrations.register(make_details(email=second, family_name="別人"), locale="en")
        db.session.commit()
        assert again.status == "already_registered" and again.registrant is None
        assert first.registrant.family_name == "山田"  # nothing new stored
        assert count(Registrant) == 1
        # The mail sender mails the link again, in the language of the registration, to the registered address.
        assert registrations.answer_link_requests() == 1
        mails = db.session.execute(select(OutboxMessage.recipient, OutboxMessage.subject)
                                   .order_by(OutboxMessage.id)).all()
        assert [recipient for recipient, _ in mails] == ["taro@example.jp", "taro@example.jp"]
        assert "すでに" in mails[1].subject  # in the registration's language (ja), not the repeat's (en)

    def test_email_key_normalises_width_and_case(self):
        assert registrations.email_key("ＴＡＲＯ＠Ｅｘａｍｐｌｅ．ＪＰ ") == "taro@example.jp"
        assert registrations.email_key("straße@example.de") != registrations.email_key("strasse@example.de")

    def test_registering_again_after_cancelling_starts_a_new_registration(self, make_details):
        first = registrations.register(make_details(email="a@example.jp"), locale="ja").registrant
        old_secret = first.secret
        registrations.cancel(first)
        db.session.commit()
        again = registrations.register(make_details(email="A@example.jp", organization="新組織"), locale="en")
        db.session.commit()
        assert again.status == "registered"
        assert again.registrant.id != first.id and again.registrant.secret != old_secret
        assert (again.registrant.organization, again.registrant.locale) == ("新組織", "en")
        db.session.refresh(first)
        assert first.is_cancelled and first.secret == old_secret and first.organization == "例示株式会社"
        assert registrations.find_by_email("a@example.jp") is again.registrant


@pytest.mark.usefixtures("app_ctx")
class TestEditAndCancel:
    def test_update_changes_details(self, make_details):
        registrant = registrations.register(make_details(email="old@example.jp"), locale="ja").registrant
        changed = registrations.update(registrant, make_details(email="OLD@example.jp", organization="新",
                                                                attend_closing=True), locale="en")
        db.session.commit()
        assert changed is False  # the same address in another spelling needs no confirmation
        assert (registrant.email, registrant.organization, registrant.attend_closing) == ("OLD@example.jp", "新", True)
        assert registrant.locale == "en"

    def test_new_address_waits_for_confirmation_from_that_mailbox(self, make_details, frozen_clock):
        registrant = registrations.register(make_details(email="old@example.jp"), locale="ja").registrant
        assert registrations.update(registrant, make_details(email="new@example.jp"), locale="ja") is True
        db.session.commit()
        assert registrant.email == "old@example.jp" and registrant.pending_email == "new@example.jp"
        confirmation = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert confirmation.recipient == "new@example.jp"
        body = message_from_bytes(confirmation.message, policy=policy.default).get_body(("plain",)).get_content()
        assert f"/me/{registrant.secret}/email/{registrant.pending_email_token}" in body
        with pytest.raises(RegistrationError) as excinfo:
            registrations.confirm_email_change(registrant, "wrong-token")
        assert excinfo.value.code == "email_change_invalid"
        registrations.confirm_email_change(registrant, registrant.pending_email_token)
        db.session.commit()
        assert (registrant.email, registrant.email_key, registrant.pending_email) == (
            "new@example.jp", "new@example.jp", None)
        notice = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert notice.recipient == "old@example.jp"  # the old mailbox hears of the change

    def test_address_confirmation_expires_after_24_hours(self, make_details, frozen_clock):
        registrant = registrations.register(make_details(), locale="ja").registrant
        registrations.update(registrant, make_details(email="late@example.jp"), locale="ja")
        token = registrant.pending_email_token
        frozen_clock(jst(2023, 8, 26, 10))
        with pytest.raises(RegistrationError) as excinfo:
            registrations.confirm_email_change(registrant, token)
        assert excinfo.value.code == "email_change_invalid"

    def test_attend_closing_locked_after_deadline(self, make_details, frozen_clock):
        registrant = registrations.register(make_details(), locale="ja").registrant
        db.session.commit()
        frozen_clock(DEADLINE)
        with pytest.raises(RegistrationError) as excinfo:
            registrations.update(registrant, make_details(attend_closing=True), locale="ja")
        assert excinfo.value.code == "closing_locked"
        # Other details may still change after the deadline.
        registrations.update(registrant, make_details(organization="別の会社"), locale="ja")
        assert registrant.organization == "別の会社"

    def test_taking_over_an_address_in_use_is_refused_at_confirmation(self, make_details):
        registrations.register(make_details(email="one@example.jp"), locale="ja")
        two = registrations.register(make_details(email="two@example.jp"), locale="ja").registrant
        db.session.commit()
        # The edit answers the same whether the address is taken or not: no way to probe for registrations.
        assert registrations.update(two, make_details(email="ONE@example.jp"), locale="ja") is True
        with pytest.raises(RegistrationError) as excinfo:
            registrations.confirm_email_change(two, two.pending_email_token)
        assert excinfo.value.code == "email_taken"

    def test_repeated_link_requests_mail_at_most_once_per_interval(self, make_details, frozen_clock):
        registrations.register(make_details(email="flood@example.jp"), locale="ja")
        db.session.commit()
        for _ in range(5):
            registrations.register(make_details(email="flood@example.jp"), locale="ja")
            registrations.request_link("flood@example.jp", "lost_link")
        assert registrations.answer_link_requests() == 10
        db.session.commit()
        assert count(OutboxMessage) == 2  # the confirmation, then one re-sent link
        frozen_clock(jst(2023, 8, 25, 10, 10))
        registrations.request_link("flood@example.jp", "lost_link")
        registrations.answer_link_requests()
        assert count(OutboxMessage) == 3

    def test_cancelled_registration_cannot_be_edited(self, make_details):
        registrant = registrations.register(make_details(), locale="ja").registrant
        assert registrations.cancel(registrant) is True
        assert registrations.cancel(registrant) is False
        with pytest.raises(RegistrationError) as excinfo:
            registrations.update(registrant, make_details(), locale="ja")
        assert excinfo.value.code == "cancelled"

    def test_cancel_mails_a_confirmation_in_the_registrants_language(self, make_details):
        registrant = registrations.register(make_details(), locale="en").registrant
        registrations.cancel(registrant)
        db.session.commit()
        subjects = db.session.scalars(select(OutboxMessage.subject).order_by(OutboxMessage.id)).all()
        assert subjects == ["Your CODT2023 registration", "Your CODT2023 registration is cancelled"]


@pytest.mark.usefixtures("app_ctx")
class TestPersonalLink:
    def test_secret_is_long_random_and_not_the_id(self, make_details):
        registrants = [registrations.register(make_details(), locale="ja").registrant for _ in range(20)]
        db.session.flush()
        secrets = {r.secret for r in registrants}
        assert len(secrets) == 20
        for registrant in registrants:
            assert len(registrant.secret) >= 32  # 24 random bytes, base64url: 192 bits
            assert str(registrant.id) != registrant.secret

    def test_lookup_by_secret(self, make_details):
        registrant = registrations.register(make_details(), locale="ja").registrant
        db.session.commit()
        assert registrations.find_by_secret(registrant.secret) is registrant
        altered = registrant.secret[:-1] + ("A" if registrant.secret[-1] != "A" else "B")
        assert registrations.find_by_secret(altered) is None
        assert registrations.find_by_secret("") is None
        assert registrations.find_by_secret("x" * 1000) is None

    def test_lost_link_mails_only_registered_addresses(self, make_details):
        registrations.register(make_details(email="known@example.jp"), locale="ja")
        db.session.commit()
        before = count(OutboxMessage)
        registrations.request_link("KNOWN@example.jp", "lost_link")
        registrations.request_link("unknown@example.jp", "lost_link")
        assert count(OutboxMessage) == before  # the requests only
        assert registrations.answer_link_requests() == 2
        assert db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.id > before)).all() == [
            "known@example.jp"]


def test_event_load_with_more_seats_promotes_the_waiting_and_mails_their_tickets(make_app, make_details):
    small = make_app(CLOSING_CAPACITY=1)
    with small.app_context():
        first = registrations.register(make_details(attend_closing=True), locale="ja").registrant
        second = registrations.register(make_details(attend_closing=True), locale="en").registrant
        db.session.commit()
        assert (first.seat_status, second.seat_status) == ("confirmed", "waitlisted")
        waiting_id = second.id
    larger = make_app(CLOSING_CAPACITY=2)  # builds the app and runs `event load`, as a deploy would
    with larger.app_context():
        promoted = db.session.get(Registrant, waiting_id)
        assert promoted.seat_status == "confirmed" and promoted.ticket_code
        mails = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == promoted.email)).all()
        assert [mail.subject for mail in mails][-1] == "A seat at the CODT2023 closing event is yours: your ticket"
