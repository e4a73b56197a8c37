"""What an attendee sees in Chromium, in Japanese and in English, on a desktop and a 390-pixel phone: the landing
page, the form with mistakes, the personal page, the ticket and the mail. Screenshots go to
test-artifacts/screenshots/ (attendee-<language>-<device>-<page>.png) to be looked at."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.test_browser import PHONE, SCREENSHOTS, Mailbox, browser, fill_registration, ja, navigate, parts  # noqa: F401

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PEOPLE = {
    # The English registrant's page and mail put the given name first; the Japanese one's the family name.
    "ja": {"family_name": "山田", "given_name": "太郎", "family_name_kana": "ヤマダ", "given_name_kana": "タロウ",
           "email_address": "taro@example.jp", "shown": "山田 太郎"},
    "en": {"family_name": "Smith", "given_name": "John", "family_name_kana": "", "given_name_kana": "",
           "email_address": "john@example.com", "shown": "John Smith"},
}


def text(language: str, msgid: str, **values) -> str:
    """The UI text in `language`."""
    if language == "ja":
        return ja(msgid, **values)
    return msgid % values if values else msgid


def save(page: Page, language: str, device: str, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"attendee-{language}-{device}-{step}.png"), full_page=True)


def fits_the_screen(page: Page) -> None:
    """Nothing scrolls sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
            .slice(-5).map(el => `${el.outerHTML.slice(0, 120)} ${Math.round(el.getBoundingClientRect().right)}px`)""")
        raise AssertionError(f"{page.url}: {overflow}px of horizontal scrolling, from {wide}")


def on_one_line(page: Page, test_id: str) -> str:
    """The element's text, asserting that it is drawn on a single line."""
    element = page.get_by_test_id(test_id).first
    expect(element).to_be_visible()
    lines = element.evaluate("el => new Set([...el.getClientRects()].map(r => Math.round(r.top))).size")
    assert lines == 1, f"{test_id} wraps onto {lines} lines"
    return element.inner_text()


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("language", ["ja", "en"])
def test_an_attendee_in_their_language(live_server, browser: Browser, language, device):  # noqa: F811
    server = live_server()
    mailbox = Mailbox(server)
    person = PEOPLE[language]
    # No language cookie: the browser's language (Accept-Language) chooses.
    context = browser.new_context(locale="ja-JP" if language == "ja" else "en-US", timezone_id="Asia/Tokyo",
                                  viewport=PHONE if device == "phone" else DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        fits_the_screen(page)
        save(page, language, device, "landing")

        # The form sent with mistakes: a summary at the top names each one and takes the focus.
        page.goto(server.url + "/register")
        page.locator("form.stack [name=family_name]").fill("")
        response = navigate(page, lambda: page.locator("main").get_by_role(
            "button", name=text(language, "Register"), exact=True).click())
        assert response.status == 422
        expect(page.locator("html")).to_have_attribute("lang", language)
        fits_the_screen(page)
        save(page, language, device, "form-errors")

        fill_registration(page, **{key: value for key, value in person.items() if key != "shown"})
        response = navigate(page, lambda: page.locator("main").get_by_role(
            "button", name=text(language, "Register"), exact=True).click())
        assert response.status == 200
        expect(page.locator("main")).to_contain_text(person["shown"])
        personal_url = page.get_by_test_id("personal-link").inner_text().strip()

        page.goto(personal_url)
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.get_by_test_id("registration-status")).to_contain_text(person["shown"])
        code = on_one_line(page, "ticket-code")
        assert re.fullmatch(r"([A-Z2-7]{4} ){6}[A-Z2-7]{2}", code), code
        fits_the_screen(page)
        save(page, language, device, "personal")

        # A session's page: "Sign up for this session" brings the registrant back to their page with it ticked.
        page.goto(server.url + "/program/openstack/openinfra-loki-stack")
        expect(page.get_by_test_id("session-language")).to_have_text(text(language, "English"))
        navigate(page, page.get_by_test_id("session-signup").click)
        assert page.url.startswith(personal_url + "?session=openinfra-loki-stack")
        expect(page.get_by_test_id("proposed-session")).to_be_visible()
        expect(page.locator("#session-openinfra-loki-stack")).to_be_checked()
        expect(page.locator("#session-openinfra-loki-stack")).to_be_in_viewport()
        save(page, language, device, "session-sign-up")
        navigate(page, lambda: page.get_by_role("button", name=text(language, "Save my sessions")).click())
        expect(page.get_by_test_id("my-sessions")).to_contain_text("The LOKI Stack")

        page.goto(personal_url + "/ticket")
        expect(page.get_by_test_id("ticket-name")).to_have_text(person["shown"])
        assert on_one_line(page, "ticket-code") == code
        fits_the_screen(page)
        save(page, language, device, "ticket")

        messages = mailbox.deliver()
        mine = [message for message in messages if person["email_address"] in message["To"]]
        assert mine, [message["To"] for message in messages]
        body, html = parts(mine[0])
        assert body.startswith(text(language, "Dear %(name)s,", name=person["shown"])), body[:80]
        assert code in body
        page.goto("about:blank")  # not on the site's page: its CSP would block the mail's inline styles
        page.set_content(html)
        fits_the_screen(page)
        save(page, language, device, "mail")
    finally:
        context.close()
