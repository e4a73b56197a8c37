"""The public pages through the test client: landing, registration, personal page, lost link, errors."""

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import LinkRequest, OutboxMessage, Registrant
from tests.conftest import Browserless, form_data, jst

DEADLINE = jst(2023, 9, 14, 10)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def secret_from(response) -> str:
    return re.search(r"/me/([A-Za-z0-9_-]+)", response.headers["Location"]).group(1)


class TestLanding:
    def test_japanese_first(self, client):
        page = text_of(client.get("/"))
        assert "クラウドオペレーターデイズ東京 2023" in page
        assert "2023年9月14日(木) 10:00 締切" in page
        assert "@docomo R&amp;D OPEN LAB ODAIBA" in page
        assert "2023年8月21日(月)" in page

    def test_english_switch_sticks(self, client):
        response = client.post("/language", data={"lang": "en", "next": "/register"})
        assert response.status_code == 303
        assert response.headers["Location"] == "/register"
        page = text_of(client.get("/"))
        assert "Closes Thu 14 Sep 2023, 10:00 JST" in page
        assert "Cloud Operator Days Tokyo 2023" in page
        assert "Family name" in text_of(client.get("/register"))

    @pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                        "javascript:alert(1)", "/\r\nSet-Cookie: x=1", "/\x00"])
    def test_language_switch_never_redirects_off_site(self, client, target):
        response = client.post("/language", data={"lang": "en", "next": target})
        assert response.headers["Location"] == "/"

    def test_unknown_language_is_refused(self, client):
        assert client.post("/language", data={"lang": "fr", "next": "/"}).status_code == 400

    def test_status_before_opening_and_after_closing(self, client, frozen_clock):
        frozen_clock(jst(2023, 7, 1))
        assert "2023年7月24日(月) 00:00" in text_of(client.get("/"))
        assert "2023年7月24日(月) 00:00" in text_of(client.get("/register"))
        frozen_clock(DEADLINE)
        page = text_of(client.get("/register"))
        assert 'name="family_name"' not in client.get("/register").get_data(as_text=True)
        assert "2023年9月14日(木) 10:00" in page

    def test_privacy_policy_states_purpose_retention_contact(self, client):
        page = text_of(client.get("/privacy"))
        assert "利用目的" in page and "保存期間" in page and "お問い合わせ窓口" in page
        client.set_cookie("lang", "en")
        page = text_of(client.get("/privacy"))
        assert "Purpose" in page and "Retention" in page and "Contact" in page


class TestRegister:
    def test_success_redirects_to_confirmation_with_personal_link(self, app, client):
        response = client.post("/register", data=form_data(attend_closing="y"))
        assert response.status_code == 303
        secret = secret_from(response)
        page = client.get(response.headers["Location"])
        assert f"/me/{secret}" in page.get_data(as_text=True)
        assert count(app, Registrant) == 1
        assert count(app, OutboxMessage) == 1
        with app.app_context():
            registrant = db.session.scalar(select(Registrant))
            assert registrant.attend_closing is True
            assert registrant.locale == "ja"

    def test_english_registration_is_recorded_in_english(self, app, client):
        client.set_cookie("lang", "en")
        client.post("/register", data=form_data())
        with app.app_context():
            assert db.session.scalar(select(Registrant.locale)) == "en"

    def test_duplicate_says_so_and_does_not_show_the_link(self, app, client):
        first = client.post("/register", data=form_data(email="dup@example.jp"))
        secret = secret_from(first)
        again = client.post("/register", data=form_data(email="ＤＵＰ＠example.jp", family_name="他人"))
        assert again.status_code == 200
        assert secret not in again.get_data(as_text=True)
        assert "このアドレスが登録されていれば、個人用リンクをお送りします。リンクの送信は 10 分に1回までです。" in text_of(again)
        assert count(app, Registrant) == 1
        assert count(app, OutboxMessage) == 1  # the mail sender writes the link mail (tests/test_personal_data.py)
        assert count(app, LinkRequest) == 1

    def test_closed_at_10_00_jst_even_if_the_form_was_loaded_at_09_59(self, app, client, frozen_clock):
        frozen_clock(DEADLINE - timedelta(minutes=1))
        assert client.get("/register").status_code == 200
        frozen_clock(DEADLINE)
        response = client.post("/register", data=form_data())
        assert response.status_code == 403
        assert "参加登録の受付は終了しました" in text_of(response)
        assert count(app, Registrant) == 0
        assert count(app, OutboxMessage) == 0

    def test_open_at_09_59_59_999_jst(self, app, client, frozen_clock):
        frozen_clock(DEADLINE - timedelta(milliseconds=1))
        assert client.post("/register", data=form_data()).status_code == 303
        assert count(app, Registrant) == 1

    def test_before_opening_nothing_is_stored(self, app, client, frozen_clock):
        frozen_clock(jst(2023, 7, 23, 23, 59, 59))
        assert client.post("/register", data=form_data()).status_code == 403
        assert count(app, Registrant) == 0

    def test_html_in_a_name_is_text_on_pages_and_in_mail(self, app, client):
        response = client.post("/register", data=form_data(given_name="<script>alert(1)</script>"))
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        with app.app_context():
            raw = db.session.scalar(select(OutboxMessage.message))
        from email import message_from_bytes, policy
        message = message_from_bytes(raw, policy=policy.default)
        html = message.get_body(("html",)).get_content()
        plain = message.get_body(("plain",)).get_content()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<script>alert(1)</script>" in plain  # plain text shows it as the person typed it

    def test_oversized_body_gets_413(self, client):
        response = client.post("/register", data=form_data(organization="x" * 200_000))
        assert response.status_code == 413
        assert "大きすぎます" in text_of(response) and "too large" in text_of(response)

    def test_get_changes_nothing(self, app, client):
        secret = secret_from(client.post("/register", data=form_data()))
        before = count(app, OutboxMessage)
        query = "?family_name=a&given_name=b&email=c@example.jp&organization=d&consent=y"
        for path in ("/register", f"/me/{secret}", f"/me/{secret}/cancel", "/lost-link", "/language?lang=en"):
            client.get(path + query)
        assert count(app, Registrant) == 1 and count(app, OutboxMessage) == before
        with app.app_context():
            registrant = db.session.scalar(select(Registrant))
            assert registrant.cancelled_at is None and registrant.organization == "例示株式会社"

    def test_welcome_link_uses_the_public_address_not_the_host_header(self, client):
        response = client.post("/register", data=form_data())
        page = client.get(response.headers["Location"], headers={"Host": "evil.example"})
        assert "evil.example" not in page.get_data(as_text=True)
        assert "http://codt.test/me/" in page.get_data(as_text=True)


class TestPersonalPage:
    def register(self, client, **overrides) -> str:
        return secret_from(client.post("/register", data=form_data(**overrides)))

    def test_shows_own_details(self, client):
        secret = self.register(client)
        page = text_of(client.get(f"/me/{secret}"))
        assert "山田 花子" in page
        assert client.get(f"/me/{secret}").headers["Cache-Control"] == "no-store"

    @pytest.mark.parametrize("mutate", [lambda s: s[:-1] + ("x" if s[-1] != "x" else "y"), lambda s: s.upper(),
                                        lambda s: s + "a", lambda s: "1", lambda s: s[:10]])
    def test_wrong_or_altered_link_is_404(self, client, mutate):
        secret = self.register(client)
        assert client.get(f"/me/{mutate(secret)}").status_code == 404
        assert client.post(f"/me/{mutate(secret)}", data=form_data()).status_code == 404
        assert client.post(f"/me/{mutate(secret)}/cancel").status_code == 404

    def test_edit(self, app, client):
        secret = self.register(client)
        response = client.post(f"/me/{secret}", data=form_data(organization="新しい会社", attend_closing="y"))
        assert response.status_code == 303
        page = text_of(client.get(f"/me/{secret}"))
        assert "新しい会社" in page
        with app.app_context():
            assert db.session.scalar(select(Registrant.attend_closing)) is True

    def test_edit_with_bad_input_keeps_what_was_typed(self, client):
        secret = self.register(client)
        response = client.post(f"/me/{secret}", data=form_data(organization="残る値", email="not-an-address"))
        assert response.status_code == 422
        body = response.get_data(as_text=True)
        assert 'value="残る値"' in body and 'value="not-an-address"' in body

    def test_attend_closing_cannot_change_after_deadline(self, app, client, frozen_clock):
        secret = self.register(client)
        frozen_clock(DEADLINE)
        response = client.post(f"/me/{secret}", data=form_data(attend_closing="y"))
        assert response.status_code == 409
        with app.app_context():
            assert db.session.scalar(select(Registrant.attend_closing)) is False

    def test_address_change_answers_the_same_whether_taken_or_not(self, app, client):
        self.register(client, email="first@example.jp")
        secret = self.register(client, email="second@example.jp")
        taken = client.post(f"/me/{secret}", data=form_data(email="FIRST@example.jp"), follow_redirects=True)
        free = client.post(f"/me/{secret}", data=form_data(email="free@example.jp"), follow_redirects=True)
        assert taken.status_code == free.status_code == 200
        assert text_of(taken).replace("FIRST@example.jp", "X") == text_of(free).replace("free@example.jp", "X")

    def test_address_change_confirmed_by_post_from_the_mailed_link(self, app, client):
        secret = self.register(client, email="before@example.jp")
        client.post(f"/me/{secret}", data=form_data(email="after@example.jp"))
        assert "after@example.jp" in text_of(client.get(f"/me/{secret}"))  # shown as waiting
        with app.app_context():
            token = db.session.scalar(select(Registrant.pending_email_token))
        page = client.get(f"/me/{secret}/email/{token}")
        assert page.status_code == 200
        with app.app_context():
            assert db.session.scalar(select(Registrant.email)) == "before@example.jp"  # GET changes nothing
        assert client.post(f"/me/{secret}/email/{token}").status_code == 303
        with app.app_context():
            assert db.session.scalar(select(Registrant.email)) == "after@example.jp"
        assert client.get(f"/me/{secret}/email/{token}").status_code == 404  # used up
        assert client.post(f"/me/{secret}/email/forged").status_code == 404

    def test_confirming_an_address_taken_meanwhile_is_explained(self, app, client):
        secret = self.register(client, email="mine@example.jp")
        client.post(f"/me/{secret}", data=form_data(email="contested@example.jp"))
        self.register(client, email="contested@example.jp")
        with app.app_context():
            token = db.session.scalar(select(Registrant.pending_email_token).where(Registrant.secret == secret))
        page = client.post(f"/me/{secret}/email/{token}", follow_redirects=True)
        assert "別の参加登録で使われている" in text_of(page)
        with app.app_context():
            assert db.session.scalar(select(Registrant.email).where(Registrant.secret == secret)) == "mine@example.jp"

    def test_cancel_asks_first_then_cancels_on_post(self, app, client):
        secret = self.register(client)
        assert client.get(f"/me/{secret}/cancel").status_code == 200
        with app.app_context():
            assert db.session.scalar(select(Registrant.cancelled_at)) is None
        response = client.post(f"/me/{secret}/cancel")
        assert response.status_code == 303
        with app.app_context():
            assert db.session.scalar(select(Registrant.cancelled_at)) is not None
        assert "取り消" in text_of(client.get(f"/me/{secret}")) or "ancel" in text_of(client.get(f"/me/{secret}"))
        assert client.post(f"/me/{secret}", data=form_data(organization="x")).status_code == 200

    def test_reregister_after_cancel(self, app, client):
        secret = self.register(client, email="back@example.jp")
        client.post(f"/me/{secret}/cancel")
        response = client.post("/register", data=form_data(email="back@example.jp"))
        assert response.status_code == 303
        assert secret_from(response) != secret
        # A fresh registration beside the cancelled one, whose link still shows only the cancellation.
        assert "取り消" in text_of(client.get(f"/me/{secret}"))
        assert count(app, Registrant) == 2


class TestLostLink:
    def test_same_answer_whether_registered_or_not(self, app, client):
        client.post("/register", data=form_data(email="known@example.jp"))
        before = count(app, OutboxMessage)
        known = client.post("/lost-link", data={"email": "known@example.jp"})
        unknown = client.post("/lost-link", data={"email": "nobody@example.jp"})
        assert known.status_code == unknown.status_code == 200
        strip = lambda r: text_of(r).replace("known@example.jp", "").replace("nobody@example.jp", "")
        assert strip(known) == strip(unknown)
        assert count(app, OutboxMessage) == before  # recorded for the mail sender, whatever the address
        assert count(app, LinkRequest) == 2

    def test_bad_address_is_explained(self, client):
        response = client.post("/lost-link", data={"email": "no-at-sign"})
        assert response.status_code == 422

    def test_registration_posts_are_rate_limited_per_client(self, make_app):
        app = make_app(REGISTER_RATE_LIMIT="2 per minute")
        client = app.test_client()
        codes = [client.post("/register", data=form_data(email=f"r{n}@example.jp")).status_code for n in range(3)]
        assert codes == [303, 303, 429]
        assert client.get("/register").status_code == 200  # reading the form is never limited

    def test_rate_limited(self, make_app):
        app = make_app(LOST_LINK_RATE_LIMIT="2 per minute")
        client = app.test_client()
        codes = [client.post("/lost-link", data={"email": "a@example.jp"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


class TestErrors:
    @pytest.mark.parametrize("path", ["/nope", "/me/", "/me/%00", "/static/../config.py"])
    def test_not_found_is_bilingual(self, client, path):
        response = client.get(path)
        assert response.status_code == 404
        assert "ページが見つかりません" in text_of(response) and "Page not found" in text_of(response)

    def test_method_not_allowed(self, client):
        assert client.delete("/register").status_code == 405
        assert client.get("/language").status_code == 405

    def test_event_not_loaded_is_503_not_500(self, make_app):
        app = make_app()
        with app.app_context():
            from registration.models import Category, Event, ProgramSession
            for model in (ProgramSession, Category, Event):
                db.session.query(model).delete()
            db.session.commit()
        assert app.test_client().get("/").status_code == 503

    def test_security_headers(self, client):
        headers = client.get("/").headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati"])
def test_deadline_on_a_live_server_whatever_its_zone(live_server, zone):
    server = live_server(workers=1, TZ=zone, REHEARSAL_CLOCK="2023-09-14T09:59:57+09:00")
    visitor = Browserless(server.url)
    assert "2023年9月14日(木) 10:00 締切" in visitor.get("/")
    token = visitor.csrf_token()
    assert visitor.post("/register", {**form_data(email="early@example.jp"), "csrf_token": token}) == 303
    deadline = time.monotonic() + 10
    while "rehearsal-time\">2023年9月14日(木) 10:00:" not in visitor.get("/") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert visitor.post("/register", {**form_data(email="late@example.jp"), "csrf_token": token}) == 403
