"""The reminder in Chromium: the mail from `flask mail remind-closing` (as the file outbox wrote it), its links
opened in Japanese and in English, the confirming page, the button, the result; and the admin's /admin/reminders
showing the answers. Screenshots: test-artifacts/screenshots/reminder-*.png and admin-reminders*.png."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from registration.extensions import db
from registration.models import Registrant
from registration.services import registrations
from tests.conftest import jst, run_flask
from tests.test_browser import PHONE, SCREENSHOTS, Mailbox, browser, ja, navigate, parts  # noqa: F401

pytestmark = pytest.mark.browser

OPEN = jst(2023, 8, 25, 10)
DESKTOP = {"width": 1280, "height": 900}


def save(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scrolling"


def link_in(message, server, path: str) -> str:
    text, html = parts(message)
    [url] = set(re.findall(re.escape(server.url) + r"/me/[A-Za-z0-9_-]{20,64}/" + path + r"\b", text))
    assert f'href="{url}"' in html and 'src="cid:ticket-qr"' in html
    return url


def test_answering_the_reminder_in_chromium(live_server, make_app, make_details, make_staff, browser: Browser):  # noqa: F811
    admin, password = make_staff("admin")
    app = make_app(CLOSING_CAPACITY=3)
    with app.app_context():
        for email, locale, family, given in (("taro@example.jp", "ja", "山田", "太郎"),
                                             ("john@example.com", "en", "Smith", "John"),
                                             ("ichiro@example.jp", "ja", "鈴木", "一郎"),
                                             ("hanako@example.jp", "ja", "佐藤", "花子")):
            registrations.register(make_details(email=email, family_name=family, given_name=given,
                                                attend_closing=True), locale=locale, at=OPEN)
        db.session.commit()
    server = live_server(CLOSING_CAPACITY="3")
    mailbox = Mailbox(server)
    mailbox.deliver()  # the registration mails
    result = run_flask(server.env, "mail", "remind-closing")
    assert result.returncode == 0 and "Reminded 3 seat holders" in result.stdout, result.stderr
    delivered = mailbox.deliver()
    reminders = {message["To"]: message for message in delivered}
    assert len(delivered) == 3
    assert sorted(reminders) == ["ichiro@example.jp", "john@example.com", "taro@example.jp"]
    assert reminders["taro@example.jp"]["Subject"] == ja("CODT2023 closing event: are you still coming?")
    assert reminders["john@example.com"]["Subject"] == "CODT2023 closing event: are you still coming?"

    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo", viewport=viewport)
        context.set_default_timeout(10_000)
        page = context.new_page()
        # The Japanese registrant's page is in Japanese, whatever the browser asks for.
        page.goto(link_in(reminders["taro@example.jp"], server, "coming"))
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        expect(page.get_by_role("heading", level=1)).to_have_text(ja("Are you coming to the closing event?"))
        expect(page.get_by_test_id("reminder-message")).to_have_text(ja(
            "Your seat at the closing event is confirmed. Please confirm that you are coming, so that we keep it "
            "for you."))
        fits_the_screen(page)
        save(page, f"reminder-coming-ja-{device}")
        page.goto(link_in(reminders["john@example.com"], server, "not-coming"))
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("heading", level=1)).to_have_text("Give your seat back?")
        fits_the_screen(page)
        save(page, f"reminder-not-coming-en-{device}")
        context.close()

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(link_in(reminders["taro@example.jp"], server, "coming"))
    response = navigate(page, lambda: page.get_by_role("button", name=ja("Yes, I'm coming")).click())
    assert response.status == 200
    expect(page.locator(".flash-success")).to_have_text(ja(
        "Thank you: we have noted that you are coming. See you at the closing event!"))
    expect(page.get_by_role("button", name=ja("Yes, I'm coming"))).to_have_count(0)
    save(page, "reminder-coming-ja-done")

    page.goto(link_in(reminders["john@example.com"], server, "not-coming"))
    response = navigate(page, lambda: page.get_by_role("button", name="Yes, give my seat back").click())
    assert response.status == 200
    expect(page.locator(".flash-success")).to_have_text(
        "Your seat is given back. We have sent you a confirmation. Thank you for telling us.")
    expect(page.get_by_test_id("reminder-answer")).to_have_attribute("data-state", "no_seat")
    save(page, "reminder-not-coming-en-done")
    after = {message["To"]: message["Subject"] for message in mailbox.deliver()}
    assert after == {"john@example.com": "Your CODT2023 closing event seat has been given back",
                     "hanako@example.jp": ja("A seat at the CODT2023 closing event is yours: your ticket")}
    with app.app_context():
        answers = dict(db.session.execute(db.select(Registrant.email, Registrant.reminder_answer)).all())
        assert answers == {"taro@example.jp": "coming", "john@example.com": "declined", "ichiro@example.jp": None,
                           "hanako@example.jp": None}
        ichiro = db.session.scalar(db.select(Registrant.id).where(Registrant.email == "ichiro@example.jp"))

    # The admin sees the answers.
    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.goto(server.url + "/admin/reminders")
        if "/login" in page.url:
            page.locator("#name").fill(admin)
            page.locator("#password").fill(password)
            navigate(page, lambda: page.locator("main").get_by_role("button", name=ja("Sign in")).click())
        expect(page).to_have_url(server.url + "/admin/reminders")
        expect(page.get_by_test_id("count-holders")).to_have_text("3")  # taro, ichiro, and hanako promoted
        expect(page.get_by_test_id("count-coming")).to_have_text("1")
        expect(page.get_by_test_id("count-declined")).to_have_text("1")
        expect(page.get_by_test_id("count-not-reminded")).to_have_text("1")
        expect(page.get_by_test_id("count-unanswered")).to_have_text("1")
        unanswered = page.get_by_test_id("unanswered").get_by_role("link")
        expect(unanswered).to_have_text(["鈴木 一郎"])
        expect(unanswered).to_have_attribute("href", f"/admin/registrants/{ichiro}")
        fits_the_screen(page)
        save(page, "admin-reminders" if device == "desktop" else "admin-reminders-phone")
    # A release scheduled from the form, listed with its button to call it off.
    page.set_viewport_size(DESKTOP)
    page.locator("#run_at").fill("2023-09-13T12:00")
    navigate(page, lambda: page.get_by_role("button", name=ja("Schedule the release")).click())
    expect(page.locator(".flash-success")).to_have_text(ja("The release is scheduled."))
    expect(page.get_by_test_id("releases")).to_contain_text("2023年9月13日(水) 12:00")
    save(page, "admin-reminders-scheduled")
    navigate(page, lambda: page.get_by_role("button", name=ja("Call off")).click())
    expect(page.locator(".flash-success")).to_have_text(ja("The scheduled release is called off."))
    context.close()
    assert "Traceback" not in server.errors()
