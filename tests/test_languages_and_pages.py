"""Each person's language, names in its order, and what the public pages say: counts from the program, the cancel
confirmation, the link answers, a session's page and its "Sign up for this session"."""

import email
import email.policy
import re
import time

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import OutboxMessage, ProgramSession, Registrant, ViewingSignup
from registration.services import program_import, registrations, seats
from tests.conftest import form_data
from tests.test_program_import import HEADER, PROGRAM_49, read_rows, write_csv
from tests.test_public import secret_from, text_of


def html_lang(response) -> str:
    return re.search(r'<html lang="(\w+)"', response.get_data(as_text=True)).group(1)


def mails_to(app, address: str) -> list[email.message.EmailMessage]:
    with app.app_context():
        raws = db.session.scalars(select(OutboxMessage.message).where(OutboxMessage.recipient == address)
                                  .order_by(OutboxMessage.id)).all()
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in raws]


def plain_text(message) -> str:
    return message.get_body(("plain",)).get_content()


class TestVisitorLanguage:
    @pytest.mark.parametrize("header, expected", [
        ("en-US,en;q=0.9", "en"), ("en-GB", "en"), ("ja,en-US;q=0.8", "ja"), ("ja-JP", "ja"),
        ("fr-FR,fr;q=0.9", "ja"), ("de, en;q=0.5", "en"), ("", "ja"), ("*", "ja"), ("en;q=garbage", "ja"),
    ])
    def test_the_browser_chooses_without_a_cookie(self, client, header, expected):
        response = client.get("/", headers={"Accept-Language": header})
        assert response.status_code == 200 and html_lang(response) == expected
        # A cache in between must keep the two languages apart.
        assert {"accept-language", "cookie"} <= {value.strip().lower() for value in response.headers["Vary"].split(",")}

    def test_the_switch_wins_over_the_browser(self, client):
        client.post("/language", data={"lang": "ja", "next": "/"})
        assert html_lang(client.get("/", headers={"Accept-Language": "en-US"})) == "ja"
        client.post("/language", data={"lang": "en", "next": "/program"})
        assert html_lang(client.get("/program", headers={"Accept-Language": "ja"})) == "en"


class TestRegistrantLanguage:
    def english_registration(self, client, **overrides):
        # From the Japanese page (no cookie, no Accept-Language), choosing English for pages and mail.
        response = client.post("/register", data=form_data(
            family_name="Smith", given_name="John", family_name_kana="", given_name_kana="",
            email="john@example.com", locale="en", **overrides))
        assert response.status_code == 303
        return secret_from(response)

    def test_the_choice_on_the_form_decides_pages_and_mail(self, app, client, make_app):
        secret = self.english_registration(client)
        with app.app_context():
            assert db.session.scalar(select(Registrant.locale).where(Registrant.secret == secret)) == "en"
        fresh = make_app().test_client()  # another browser: no cookie, a Japanese browser
        welcome = fresh.get(f"/me/{secret}/welcome", headers={"Accept-Language": "ja-JP,ja"})
        assert html_lang(welcome) == "en"
        assert "Thank you, John Smith." in text_of(welcome)
        personal = fresh.get(f"/me/{secret}", headers={"Accept-Language": "ja"})
        assert html_lang(personal) == "en" and "John Smith" in text_of(personal)
        assert "Smith John" not in text_of(personal)
        (mail,) = mails_to(app, "john@example.com")
        assert plain_text(mail).startswith("Dear John Smith,")

    def test_a_japanese_registrant_reads_japanese_in_an_english_browser(self, client, make_app):
        response = client.post("/register", data=form_data(email="hanako@example.jp", locale="ja"))
        secret = secret_from(response)
        fresh = make_app().test_client()
        fresh.set_cookie("lang", "en")
        page = fresh.get(f"/me/{secret}", headers={"Accept-Language": "en-US"})
        assert html_lang(page) == "ja"

    def test_without_a_choice_the_page_language_is_kept(self, app, client):
        data = form_data(email="nochoice@example.com")
        data.pop("locale", None)
        client.post("/language", data={"lang": "en", "next": "/register"})
        secret = secret_from(client.post("/register", data=data))
        with app.app_context():
            assert db.session.scalar(select(Registrant.locale).where(Registrant.secret == secret)) == "en"

    def test_a_forged_language_is_refused_with_a_message(self, app, client):
        response = client.post("/register", data=form_data(email="forged@example.com", locale="fr"))
        assert response.status_code == 422
        assert 'id="locale-error"' in response.get_data(as_text=True)
        assert "「日本語」か「English」を選んでください。" in text_of(response)
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Registrant)) == 0

    def test_the_switch_on_the_personal_page_changes_the_persons_language(self, app, client, make_app):
        secret = self.english_registration(client)
        other = make_app().test_client()
        page = other.get(f"/me/{secret}")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        response = other.post("/language", data={"lang": "ja", "next": f"/me/{secret}", "csrf_token": token})
        assert response.status_code == 303 and response.headers["Location"] == f"/me/{secret}"
        with app.app_context():
            registrant = db.session.scalar(select(Registrant).where(Registrant.secret == secret))
            assert registrant.locale == "ja"
            registrations.cancel(registrant)
            db.session.commit()
        # Mail after the switch is Japanese, family name first.
        cancelled = mails_to(app, "john@example.com")[-1]
        assert plain_text(cancelled).startswith("Smith John")
        # A cancelled registration's page still speaks to its owner, in the language they switch to.
        other.post("/language", data={"lang": "en", "next": f"/me/{secret}", "csrf_token": token})
        with app.app_context():
            assert db.session.scalar(select(Registrant.locale).where(Registrant.secret == secret)) == "en"
        assert html_lang(other.get(f"/me/{secret}")) == "en"

    def test_the_details_form_changes_the_language(self, app, client, make_registrant):
        registrant = make_registrant(locale="ja", email="details@example.jp")
        with app.app_context():
            secret = db.session.get(Registrant, registrant.id).secret
        data = form_data(email="details@example.jp", locale="en")
        data.pop("consent")
        response = client.post(f"/me/{secret}", data=data)
        assert response.status_code == 303
        assert html_lang(client.get(f"/me/{secret}")) == "en"

    def test_a_switch_pointing_at_an_unknown_link_changes_nothing(self, app, client, make_registrant):
        registrant = make_registrant(locale="ja")
        response = client.post("/language", data={"lang": "en", "next": "/me/not-a-real-secret"})
        assert response.status_code == 303
        with app.app_context():
            assert db.session.get(Registrant, registrant.id).locale == "ja"


class TestNames:
    @pytest.mark.parametrize("family, given, locale, shown", [
        ("Smith", "John", "en", "John Smith"), ("Smith", "John", "ja", "Smith John"),
        ("山田", "太郎", "en", "山田 太郎"), ("山田", "太郎", "ja", "山田 太郎"),
        ("ﾔﾏﾀﾞ", "Taro", "en", "ﾔﾏﾀﾞ Taro"), ("Yamada", "Taro", "en", "Taro Yamada"),
    ])
    def test_order_by_language_and_script(self, family, given, locale, shown):
        assert Registrant(family_name=family, given_name=given).name_in(locale) == shown


class TestProgramCounts:
    def counts(self, client) -> list[str]:
        return re.findall(r'class="count">([^<]*)<', client.get("/", headers={"Accept-Language": "en"})
                          .get_data(as_text=True))

    def test_the_landing_page_counts_the_sessions_in_the_database(self, app, client):
        assert self.counts(client) == ["2 sessions", "2 sessions", "2 sessions", "2 sessions", "1 session",
                                       "1 session"]
        progress = text_of(client.get("/", headers={"Accept-Language": "en"}))
        assert "10 of the 49 accepted sessions are listed so far" in progress
        with app.app_context():
            program_import.import_program(program_import.read_program_file(PROGRAM_49))
            db.session.commit()
        assert self.counts(client) == ["9 sessions", "15 sessions", "10 sessions", "4 sessions", "1 session",
                                       "10 sessions"]
        assert "accepted sessions are listed so far" not in text_of(client.get("/"))
        # The form lists the same program: 49 checkboxes.
        form = client.get("/register").get_data(as_text=True)
        assert len(re.findall(r'<input type="checkbox" id="session-', form)) == 49


class TestCancelConfirmation:
    def test_a_seat_holder_is_told_the_seat_and_ticket_go_to_the_waiting_list(self, app, client, make_registrant):
        holder = make_registrant(locale="en", attend_closing=True)
        with app.app_context():
            secret = db.session.get(Registrant, holder.id).secret
        page = text_of(client.get(f"/me/{secret}/cancel"))
        assert "Your seat at the closing event" in page and "the seat goes to the next person on the waiting list" \
            in page and "its QR code stops admitting" in page
        with app.app_context():
            assert db.session.get(Registrant, holder.id).seat_status == "confirmed"  # the GET gave up nothing

    def test_a_waiting_person_is_told_their_place_and_sign_ups(self, app, make_app, make_registrant):
        small = make_app(CLOSING_CAPACITY=1)
        with small.app_context():
            seats.set_capacity(1)
            db.session.commit()
        make_registrant(attend_closing=True)
        waiting = make_registrant(attend_closing=True)
        with app.app_context():
            row = db.session.get(Registrant, waiting.id)
            assert row.seat_status == "waitlisted"
            from registration.services import viewing
            viewing.change_signups(row, ["openinfra-loki-stack", "ntt-east-aws-tagging"])
            db.session.commit()
            secret = row.secret
        page = text_of(small.test_client().get(f"/me/{secret}/cancel"))
        assert "キャンセル待ちの順番（1番目）" in page
        assert "オンデマンドセッション 2 件の視聴申し込み" in page


class TestLinkAnswers:
    def test_registering_a_known_address_again_promises_nothing_it_cannot_keep(self, app, client):
        client.post("/register", data=form_data(email="twice@example.jp"))
        client.post("/language", data={"lang": "en", "next": "/"})
        again = client.post("/register", data=form_data(email="twice@example.jp"))
        page = text_of(again)
        assert again.status_code == 200
        assert ("If this address is registered, its personal link is on its way; links are sent at most every "
                "10 minutes.") in page
        assert "has been sent" not in page and "already registered" not in page.lower()

    def test_the_lost_link_answer_says_the_same(self, make_app):
        client = make_app(LINK_RESEND_INTERVAL=__import__("datetime").timedelta(minutes=1)).test_client()
        client.post("/language", data={"lang": "en", "next": "/"})
        page = text_of(client.post("/lost-link", data={"email": "nobody@example.com"}))
        assert "links are sent at most every 1 minute." in page


class TestSessionPage:
    def import_with_speakers(self, app, tmp_path):
        rows = [row if row["key"] != "openinfra-loki-stack" else {
            **row, "speakers": "Jane Doe, 山田 花子",
            "abstract": "First paragraph, line one.\nLine two.\n\nSecond <b>paragraph</b>."} for row in read_rows()]
        path = write_csv(tmp_path / "program.csv", rows, header=[*HEADER, "speakers"])
        with app.app_context():
            program_import.import_program(program_import.read_program_file(path))
            db.session.commit()

    def test_speakers_abstract_and_language(self, app, client, tmp_path):
        self.import_with_speakers(app, tmp_path)
        client.post("/language", data={"lang": "en", "next": "/"})
        html = client.get("/program/openstack/openinfra-loki-stack").get_data(as_text=True)
        assert re.search(r'data-testid="session-speakers">Jane Doe, 山田 花子<', html)
        assert "<p>First paragraph, line one.<br>Line two.</p>" in html
        assert "<p>Second &lt;b&gt;paragraph&lt;/b&gt;.</p>" in html  # the organisers' text is text, not markup
        assert re.search(r'data-testid="session-language">English<', html)
        # A file without the speakers column is still valid, and leaves them empty.
        path = write_csv(tmp_path / "old.csv", read_rows())
        with app.app_context():
            program_import.import_program(program_import.read_program_file(path))
            db.session.commit()
            assert db.session.scalar(select(ProgramSession.speakers)
                                     .where(ProgramSession.key == "openinfra-loki-stack")) == ""
        assert 'data-testid="session-speakers"' not in client.get(
            "/program/openstack/openinfra-loki-stack").get_data(as_text=True)

    def test_sign_up_opens_the_form_with_the_session_ticked_and_its_category_open(self, app, client):
        page = client.get("/program/openstack/openinfra-loki-stack").get_data(as_text=True)
        link = re.search(r'data-testid="session-signup" href="([^"]+)"', page).group(1)
        response = client.get(link)
        assert response.status_code == 303
        assert response.headers["Location"] == "/register?session=openinfra-loki-stack#session-openinfra-loki-stack"
        form = client.get(response.headers["Location"]).get_data(as_text=True)
        assert re.search(r'id="session-openinfra-loki-stack" name="sessions" value="openinfra-loki-stack" checked',
                         form)
        assert len(re.findall(r" checked", form)) == 2  # the session, and the language of the page
        openstack = form.split('<details open>')
        assert len(openstack) == 2 and "openinfra-loki-stack" in openstack[1].split("</details>")[0]
        # Registering with it signs up for it.
        secret = secret_from(client.post("/register", data=form_data(sessions=["openinfra-loki-stack"])))
        with app.app_context():
            registrant = db.session.scalar(select(Registrant).where(Registrant.secret == secret))
            assert db.session.scalar(select(func.count()).select_from(ViewingSignup)
                                     .where(ViewingSignup.registrant_id == registrant.id)) == 1

    def test_a_registrant_is_taken_to_their_page_and_nothing_is_saved_until_they_press_save(
            self, app, client, make_registrant):
        registrant = make_registrant(locale="en")
        with app.app_context():
            secret = db.session.get(Registrant, registrant.id).secret
        client.get(f"/me/{secret}")  # this browser opened its personal link
        response = client.get("/program/openstack/openinfra-loki-stack/sign-up")
        assert response.status_code == 303
        assert response.headers["Location"] == (f"/me/{secret}?session=openinfra-loki-stack"
                                                "#session-openinfra-loki-stack")
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert re.search(r'id="session-openinfra-loki-stack" name="sessions" value="openinfra-loki-stack" checked',
                         page)
        assert "is ticked below. Press “Save my sessions” to sign up for it." in page
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(ViewingSignup)) == 0
        # After cancelling, the browser is sent to the form again, not to the cancelled page.
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, registrant.id))
            db.session.commit()
        again = client.get("/program/openstack/openinfra-loki-stack/sign-up")
        assert again.headers["Location"].startswith("/register?session=")

    def test_the_browser_forgets_after_half_an_hour_and_never_holds_the_secret(self, app, client, make_registrant,
                                                                                  monkeypatch):
        registrant = make_registrant(locale="en")
        with app.app_context():
            secret = db.session.get(Registrant, registrant.id).secret
        client.get(f"/me/{secret}")
        stored = app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)
        assert stored["registrant"][0] == registrant.id
        assert secret not in repr(stored)  # the cookie goes to every path: it must not carry the credential
        start = time.time()
        monkeypatch.setattr(time, "time", lambda: start + 29 * 60)
        assert client.get("/program/openstack/openinfra-loki-stack/sign-up").headers["Location"].startswith(
            f"/me/{secret}?")
        monkeypatch.setattr(time, "time", lambda: start + 31 * 60)
        assert client.get("/program/openstack/openinfra-loki-stack/sign-up").headers["Location"].startswith(
            "/register?")

    def test_cancelling_forgets_the_browser(self, app, client, make_registrant):
        registrant = make_registrant()
        with app.app_context():
            secret = db.session.get(Registrant, registrant.id).secret
        client.get(f"/me/{secret}")
        assert client.post(f"/me/{secret}/cancel").status_code == 303
        assert client.get("/program/openstack/openinfra-loki-stack/sign-up").headers["Location"].startswith(
            "/register?")

    @pytest.mark.parametrize("path", [
        "/program/automation/openinfra-loki-stack/sign-up",  # a key under another category
        "/program/openstack/no-such-session/sign-up",
        "/program/openstack/%00/sign-up",
    ])
    def test_unknown_sessions_are_not_found(self, client, path):
        assert client.get(path).status_code == 404

    def test_a_session_key_the_form_does_not_offer_is_ignored(self, client, tmp_path):
        form = client.get("/register?session=no-such-session").get_data(as_text=True)
        assert "<details open>" not in form
        assert len(re.findall(r'name="sessions" value="[^"]+" checked', form)) == 0



class TestHostileInput:
    def test_a_forged_session_key_is_shown_as_text(self, app, make_app):
        # No CSRF token needed to get the message, so any site could post this: it must stay text.
        stranger = make_app().test_client()
        response = stranger.post("/register", data=form_data(
            sessions=['<meta http-equiv="refresh" content="0;url=https://evil.example/">']))
        html = response.get_data(as_text=True)
        assert response.status_code in (400, 422)
        assert "<meta http-equiv" not in html and "&lt;meta http-equiv=" in html

    def test_the_personal_sessions_form_escapes_forged_keys_too(self, app, client, make_registrant):
        registrant = make_registrant()
        with app.app_context():
            secret = db.session.get(Registrant, registrant.id).secret
        response = client.post(f"/me/{secret}/sessions", data={"sessions": ["<b>bold</b>"]})
        html = response.get_data(as_text=True)
        assert response.status_code == 422
        assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
        assert 'data-testid="error-summary"' in html  # and the error is summarised and focused

    @pytest.mark.parametrize("address", ["東京都江東区\r\nX-Injected: yes", "a\u202eb", "x" * 301])
    def test_a_venue_address_that_is_not_one_line_of_text_is_refused(self, make_app, address):
        with pytest.raises(ValueError, match="VENUE_ADDRESS must be one line"):
            make_app(VENUE_ADDRESS=address)

    def test_an_abstract_with_direction_overrides_is_refused_and_a_lone_cr_is_a_line_break(self, app, tmp_path):
        rows = read_rows()
        hostile = [{**row, "abstract": "safe \u202etxt.exe"} if row["key"] == "openinfra-loki-stack" else row
                   for row in rows]
        with app.app_context(), pytest.raises(program_import.ProgramFileError, match="abstract: contains control"):
            program_import.import_program(program_import.read_program_file(write_csv(tmp_path / "bidi.csv", hostile)))
        old_mac = [{**row, "abstract": "line one\rline two"} if row["key"] == "openinfra-loki-stack" else row
                   for row in rows]
        with app.app_context():
            program_import.import_program(program_import.read_program_file(write_csv(tmp_path / "cr.csv", old_mac)))
            db.session.commit()
            assert db.session.scalar(select(ProgramSession.abstract)
                                     .where(ProgramSession.key == "openinfra-loki-stack")) == "line one\nline two"
