"""The registration service: window, uniqueness, re-registration, edits, cancellation, personal links."""

import time
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
ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati"]


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture(params=ZONES)
def server_tz(request, monkeypatch):
    """Run the test with the process's TZ set to another zone: the server's zone must not matter."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


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
        assert again.status == "already_registered"
        assert again.registrant.id == first.registrant.id
        assert again.registrant.family_name == "山田"  # nothing new stored
        assert count(Registrant) == 1
        # The link is mailed again, in the language of the registration, to the registered address.
        recipients = db.session.scalars(select(OutboxMessage.recipient)).all()
        assert recipients == ["taro@example.jp", "taro@example.jp"]

    def test_email_key_normalises_width_and_case(self):
        assert registrations.email_key("ＴＡＲＯ＠Ｅｘａｍｐｌｅ．ＪＰ ") == "taro@example.jp"

    def test_reregistration_after_cancel_revives_the_same_registration(self, make_details):
        first = registrations.register(make_details(email="a@example.jp"), locale="ja").registrant
        registrations.cancel(first)
        db.session.commit()
        again = registrations.register(make_details(email="A@example.jp", organization="新組織"), locale="en")
        db.session.commit()
        assert again.status == "reregistered"
        assert again.registrant.id == first.id
        assert again.registrant.cancelled_at is None
        assert again.registrant.organization == "新組織"
        assert again.registrant.locale == "en"


@pytest.mark.usefixtures("app_ctx")
class TestEditAndCancel:
    def test_update_changes_details(self, make_details):
        registrant = registrations.register(make_details(), locale="ja").registrant
        registrations.update(registrant, make_details(email="new@example.jp", attend_closing=True), locale="en")
        db.session.commit()
        assert registrant.email_key == "new@example.jp"
        assert registrant.attend_closing is True

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

    def test_update_to_an_address_in_use_is_refused(self, make_details):
        registrations.register(make_details(email="one@example.jp"), locale="ja")
        two = registrations.register(make_details(email="two@example.jp"), locale="ja").registrant
        db.session.commit()
        with pytest.raises(RegistrationError) as excinfo:
            registrations.update(two, make_details(email="ONE@example.jp"), locale="ja")
        assert excinfo.value.code == "email_taken"

    def test_cancelled_registration_cannot_be_edited(self, make_details):
        registrant = registrations.register(make_details(), locale="ja").registrant
        assert registrations.cancel(registrant) is True
        assert registrations.cancel(registrant) is False
        with pytest.raises(RegistrationError) as excinfo:
            registrations.update(registrant, make_details(), locale="ja")
        assert excinfo.value.code == "cancelled"

    def test_cancel_mails_a_confirmation(self, make_details):
        registrant = registrations.register(make_details(), locale="ja").registrant
        registrations.cancel(registrant)
        db.session.commit()
        subjects = db.session.scalars(select(OutboxMessage.subject).order_by(OutboxMessage.id)).all()
        assert len(subjects) == 2


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
        assert registrations.send_personal_link("KNOWN@example.jp") is True
        assert registrations.send_personal_link("unknown@example.jp") is False
        assert count(OutboxMessage) == before + 1
