"""End-to-end tests in a real Chromium (Playwright) against real gunicorn servers, as a new visitor uses the site.

Japanese UI text is looked up in the compiled catalog (registration/translations/ja/.../messages.mo) with `ja()`,
exactly as the app does: while a message is untranslated the app shows the English msgid, and so does `ja()`;
once the catalog is compiled the same assertions check the Japanese text. Text that does not go through the
catalog (dates, the event's Japanese name, html[lang]) is asserted literally.
"""

import email
import email.policy
import re
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from babel.support import Translations
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect, sync_playwright

from tests.conftest import ROOT, LiveServer, run_flask

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TRANSLATIONS = ROOT / "registration" / "translations"
JST = timezone(timedelta(hours=9))
PHONE = {"width": 390, "height": 844}
SECRET_URL = r"/me/[A-Za-z0-9_-]{20,64}"
EVENT_NAME_JA = "クラウドオペレーターデイズ東京 2023"
EVENT_NAME_EN = "Cloud Operator Days Tokyo 2023"


# --- helpers ---------------------------------------------------------------------------------------------

def _catalog() -> Translations:
    # Read anew each time: the catalog may be recompiled between two tests, and each test starts its own server.
    return Translations.load(str(TRANSLATIONS), ["ja"], domain="messages")


def ja(msgid: str, **values) -> str:
    """The Japanese UI text for a msgid as the app shows it (the msgid itself while untranslated)."""
    text = _catalog().gettext(msgid)
    return text % values if values else text


def ja_compiled(msgid: str) -> bool:
    """Whether the compiled catalog translates this msgid (so the page must not show the English)."""
    return ja(msgid) != msgid


def shot(page: Page, request: pytest.FixtureRequest, step: str) -> None:
    """A full-page screenshot at test-artifacts/screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{step}.png"), full_page=True)


class Mailbox:
    """The live servers' file outbox: `deliver()` runs `flask mail send` and returns the messages it wrote."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.seen: set[Path] = set(server.outbox.glob("*.eml")) if server.outbox.exists() else set()

    def deliver(self) -> list[EmailMessage]:
        result = run_flask(self.server.env, "mail", "send")
        assert result.returncode == 0, result.stderr[-3000:]
        files = sorted(set(self.server.outbox.glob("*.eml")) - self.seen)
        self.seen.update(files)
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a message: multipart/alternative, or multipart/mixed when it carries a
    ticket (QR code inline, calendar entry attached)."""
    assert message.get_content_type() in ("multipart/alternative", "multipart/mixed"), message.get_content_type()
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def links_in(message: EmailMessage, server: LiveServer) -> set[str]:
    """The absolute personal links in the text part."""
    text, _ = parts(message)
    return set(re.findall(re.escape(server.url) + SECRET_URL, text))


def navigate(page: Page, action) -> Response:
    """Do something that loads a new page (click, submit) and return the final response."""
    with page.expect_navigation() as navigation:
        action()
    response = navigation.value
    assert response is not None
    return response


def submit(page: Page, button_name: str) -> Response:
    """Press the form's submit button, named as the visitor sees it."""
    return navigate(page, lambda: page.locator("main").get_by_role("button", name=button_name, exact=True).click())


def fill_registration(page: Page, *, family_name="山田", given_name="太郎", family_name_kana="ヤマダ",
                      given_name_kana="タロウ", email_address="taro@example.jp", organization="例示株式会社",
                      job_title="SRE", attend_closing=True, consent=True) -> None:
    """Fill the registration form the way a visitor does."""
    values = {"family_name": family_name, "given_name": given_name, "family_name_kana": family_name_kana,
              "given_name_kana": given_name_kana, "email": email_address, "organization": organization,
              "job_title": job_title}
    for name, value in values.items():
        page.locator(f"form.stack [name={name}]").fill(value)
    page.locator("form.stack [name=attend_closing]").set_checked(attend_closing)
    page.locator("form.stack [name=consent]").set_checked(consent)


def register(page: Page, server: LiveServer, *, button: str | None = None, **values) -> str:
    """Open the form from the landing page, register, and return the personal link from the welcome page."""
    page.goto(server.url + "/register")
    fill_registration(page, **values)
    response = submit(page, button or ja("Register"))
    assert response.status == 200, response.status
    expect(page).to_have_url(re.compile(re.escape(server.url) + SECRET_URL + "/welcome$"))
    link = page.get_by_test_id("personal-link")
    url = link.inner_text().strip()
    assert re.fullmatch(re.escape(server.url) + SECRET_URL, url), url
    assert link.get_attribute("href") == url
    return url


def banner_time(page: Page) -> datetime:
    """The simulated time the rehearsal banner shows (Japanese or English format), as an aware JST datetime."""
    text = page.get_by_test_id("rehearsal-time").inner_text()
    match = re.search(r"(\d{4})年(\d{1,2})月(\d{1,2})日\(.\) (\d\d):(\d\d):(\d\d)", text)
    if match:
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=JST)
    return datetime.strptime(text, "%a %d %b %Y, %H:%M:%S JST").replace(tzinfo=JST)


def assert_field_error(page: Page, field: str, message: str) -> None:
    """The message is shown next to the field, tied to it for screen readers."""
    box = page.locator(f"form.stack .field:has(#{field})")
    expect(box).to_have_class(re.compile(r"\bhas-error\b"))
    expect(box.locator(f"#{field}-error")).to_have_text(message)
    control = page.locator(f"#{field}")
    expect(control).to_have_attribute("aria-invalid", "true")
    assert f"{field}-error" in (control.get_attribute("aria-describedby") or "").split()


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url}: the page is {width}px wide on a {PHONE['width']}px phone"


def every_input_labelled(page: Page) -> int:
    """Every input, select and textarea has an id and a visible label[for=id]; returns how many.

    Closed <details> (the session lists) are opened first, so that their checkboxes are checked too."""
    page.evaluate("document.querySelectorAll('details').forEach(details => { details.open = true; })")
    controls = page.locator("input:not([type=hidden]), select, textarea")
    count = controls.count()
    for i in range(count):
        control = controls.nth(i)
        control_id = control.get_attribute("id")
        name = control.get_attribute("name")
        assert control_id, f"input {name!r} has no id"
        label = page.locator(f'label[for="{control_id}"]')
        assert label.count() == 1, f"input #{control_id} has {label.count()} labels"
        expect(label).to_be_visible()
        assert label.inner_text().strip(), f"label of #{control_id} is empty"
    return count


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> BrowserContext:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# --- 1. the whole life of a registration, in Japanese ----------------------------------------------------

@pytest.mark.browser
def test_register_in_japanese_edit_cancel_and_register_again(live_server, page: Page, request):
    server = live_server()
    mailbox = Mailbox(server)

    page.goto(server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text(EVENT_NAME_JA)
    expect(page.get_by_test_id("rehearsal-time")).to_contain_text("2023年8月25日(金) 10:0")
    expect(page.get_by_test_id("deadline").first).to_have_text("2023年9月14日(木) 10:00 締切")
    expect(page.locator("button[name=lang]")).to_have_text("English")
    shot(page, request, "landing-ja")

    navigate(page, lambda: page.get_by_role("link", name=ja("Register (free)")).click())
    expect(page).to_have_url(server.url + "/register")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Register for CODT2023"))
    fill_registration(page)
    response = submit(page, ja("Register"))
    assert response.status == 200
    expect(page).to_have_url(re.compile(SECRET_URL + "/welcome$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("You are registered"))
    expect(page.locator("main")).to_contain_text(ja("Thank you, %(name)s. A confirmation has been sent to %(email)s.",
                                                    name="山田 太郎", email="taro@example.jp"))
    personal_url = page.get_by_test_id("personal-link").inner_text().strip()
    assert re.fullmatch(re.escape(server.url) + SECRET_URL, personal_url), personal_url
    shot(page, request, "welcome")

    messages = mailbox.deliver()
    assert [m["To"] for m in messages] == ["taro@example.jp"]
    confirmation = messages[0]
    assert confirmation["Subject"] == ja("Your CODT2023 registration")
    if ja_compiled("Your CODT2023 registration"):
        assert not confirmation["Subject"].isascii(), confirmation["Subject"]
    text, html = parts(confirmation)
    assert personal_url in text
    assert f'href="{personal_url}"' in html
    assert ja("Dear %(name)s,", name="山田 太郎") in text
    assert '<html lang="ja">' in html

    # The link from the mail, as the person would open it days later.
    [mail_link] = links_in(confirmation, server)
    assert mail_link == personal_url
    page.goto(mail_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("My registration"))
    status = page.get_by_test_id("registration-status")
    expect(status).to_contain_text("山田 太郎")
    expect(status).to_contain_text("例示株式会社")
    expect(page.locator("#family_name_kana")).to_have_value("ヤマダ")
    expect(page.locator("#given_name_kana")).to_have_value("タロウ")
    expect(page.locator("#email")).to_have_value("taro@example.jp")
    expect(page.locator("#attend_closing")).to_be_checked()
    shot(page, request, "personal")

    page.locator("#organization").fill("クラウド運用株式会社")
    response = submit(page, ja("Save changes"))
    assert response.status == 200
    expect(page).to_have_url(personal_url)
    expect(page.locator(".flash-success")).to_have_text(ja("Your changes are saved."))
    expect(status).to_contain_text("クラウド運用株式会社")
    expect(page.locator("#organization")).to_have_value("クラウド運用株式会社")
    page.reload()
    expect(page.locator(".flash-success")).to_have_count(0)  # the message is shown once
    expect(page.locator("#organization")).to_have_value("クラウド運用株式会社")

    navigate(page, lambda: page.get_by_role("link", name=ja("Cancel my registration…")).click())
    expect(page).to_have_url(personal_url + "/cancel")
    expect(page.locator("main")).to_contain_text(
        ja("Do you really want to cancel the registration of %(name)s (%(email)s)?",
           name="山田 太郎", email="taro@example.jp"))
    shot(page, request, "cancel-confirm")
    response = submit(page, ja("Yes, cancel my registration"))
    assert response.status == 200
    expect(page).to_have_url(personal_url)
    expect(page.locator(".flash-success")).to_have_text(
        ja("Your registration is cancelled. We have sent you a confirmation."))
    expect(page.locator("[data-testid=registration-status].cancelled h2")).to_have_text(ja("Cancelled"))
    expect(page.locator("form.stack")).to_have_count(0)  # nothing left to edit
    shot(page, request, "cancelled")

    # Changed their mind: register again with the same address, typed in capitals.
    navigate(page, lambda: page.get_by_role("link", name=ja("Register again")).click())
    expect(page).to_have_url(server.url + "/register")
    fill_registration(page, email_address="TARO@EXAMPLE.JP", organization="再登録株式会社", attend_closing=False)
    response = submit(page, ja("Register"))
    assert response.status == 200
    expect(page).to_have_url(re.compile(SECRET_URL + "/welcome$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("You are registered"))
    again_url = page.get_by_test_id("personal-link").inner_text().strip()
    page.goto(again_url)
    expect(page.locator("[data-testid=registration-status]")).not_to_have_class(re.compile("cancelled"))
    expect(page.get_by_test_id("registration-status")).to_contain_text("再登録株式会社")
    expect(page.locator("#attend_closing")).not_to_be_checked()
    # Registering again is a new registration with a new link; the old link shows only the cancellation.
    assert again_url != personal_url
    page.goto(personal_url)
    expect(page.locator("[data-testid=registration-status].cancelled")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("再登録株式会社")

    # One live registration for the address, whichever way it is written: the link mail opens the new one.
    page.goto(server.url + "/lost-link")
    page.locator("form.stack [name=email]").fill("Taro@Example.jp")
    submit(page, ja("Send my link"))

    cancelled_mail, again_mail, lost = mailbox.deliver()
    assert cancelled_mail["To"] == "taro@example.jp"
    assert cancelled_mail["Subject"] == ja("Your CODT2023 registration is cancelled")
    assert links_in(cancelled_mail, server) == {personal_url}
    for message in (again_mail, lost):
        assert message["To"].addresses[0].domain == "example.jp"
        assert message["To"].addresses[0].username.casefold() == "taro"
        assert links_in(message, server) == {again_url}
    assert again_mail["Subject"] == ja("Your CODT2023 registration")
    assert lost["Subject"] == ja("Your CODT2023 personal link")


# --- 2. the English switch -------------------------------------------------------------------------------

@pytest.mark.browser
def test_english_switch_sticks_and_english_mail(live_server, page: Page, browser: Browser, request):
    server = live_server()
    mailbox = Mailbox(server)

    page.goto(server.url + "/")
    switch = page.locator("button[name=lang]")
    expect(switch).to_have_text("English")
    navigate(page, switch.click)
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(EVENT_NAME_EN)
    expect(page.get_by_test_id("deadline").first).to_have_text("Closes Thu 14 Sep 2023, 10:00 JST")
    expect(page.get_by_test_id("rehearsal-time")).to_contain_text("Fri 25 Aug 2023, 10:0")
    expect(switch).to_have_text("日本語")
    shot(page, request, "landing-en")

    # The choice sticks: following links keeps English.
    navigate(page, lambda: page.get_by_role("link", name="Register (free)").click())
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Register for CODT2023")
    expect(page.locator("label[for=family_name]")).to_contain_text("Family name")
    expect(page.locator("label[for=given_name_kana]")).to_contain_text("Given name (kana)")
    expect(page.locator("label[for=email]")).to_contain_text("Email")
    expect(page.locator("label[for=consent]")).to_contain_text("I agree to the privacy policy.")
    page.goto(server.url + "/lost-link")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lost your personal link?")

    personal_url = register(page, server, button="Register", given_name="Hanako", family_name="Yamada",
                            email_address="hanako@example.com", organization="Example Inc.")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    expect(page.locator("main")).to_contain_text(
        "Thank you, Hanako Yamada. A confirmation has been sent to hanako@example.com.")
    expect(page.get_by_test_id("seat-status")).to_contain_text(
        "Closing event (Thu 14 Sep 2023, @docomo R&D OPEN LAB ODAIBA): your seat is confirmed.")
    shot(page, request, "welcome-en")

    [message] = mailbox.deliver()
    assert message["To"] == "hanako@example.com"
    assert message["Subject"] == "Your CODT2023 registration"
    text, html = parts(message)
    assert "Dear Hanako Yamada," in text
    assert "Thank you for registering for Cloud Operator Days Tokyo 2023." in text
    assert "Closing event (Thu 14 Sep 2023, @docomo R&D OPEN LAB ODAIBA): your seat is confirmed." in text
    assert personal_url in text and f'href="{personal_url}"' in html
    assert '<html lang="en">' in html

    # A visitor without the cookie gets the browser's language (here Japanese); switching back works.
    other = browser.new_context(locale="ja-JP")
    try:
        fresh = other.new_page()
        fresh.goto(server.url + "/register")
        expect(fresh.locator("html")).to_have_attribute("lang", "ja")
    finally:
        other.close()
    page.goto(server.url + "/privacy")
    navigate(page, page.locator("button[name=lang]").click)
    expect(page).to_have_url(server.url + "/privacy")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("個人情報の取り扱いについて")


# --- 3. bad input ----------------------------------------------------------------------------------------

@pytest.mark.browser
def test_bad_input_shows_messages_keeps_values_and_escapes_html(live_server, page: Page, request):
    server = live_server()
    mailbox = Mailbox(server)

    page.goto(server.url + "/register")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    shot(page, request, "form-empty")

    response = submit(page, ja("Register"))
    assert response.status == 422
    expect(page).to_have_url(server.url + "/register")
    expect(page.get_by_test_id("error-summary").get_by_role("heading")).to_have_text(ja("There is a problem"))
    expect(page.get_by_test_id("error-summary")).to_be_focused()
    for field in ("family_name", "given_name", "email", "organization"):
        assert_field_error(page, field, ja("Please fill in this field."))
    assert_field_error(page, "consent", ja("Please agree to the privacy policy to register."))
    for field in ("family_name_kana", "given_name_kana", "job_title", "attend_closing"):
        expect(page.locator(f"#{field}-error")).to_have_count(0)  # optional fields
    shot(page, request, "form-errors-ja")
    assert mailbox.deliver() == [], "an invalid form must not register anyone"

    fill_registration(page, given_name="<b>太郎</b>", family_name_kana="Yamada", given_name_kana="Taro",
                      email_address="taro@@example", organization="例示株式会社 & Co.")
    response = submit(page, ja("Register"))
    assert response.status == 422
    assert_field_error(page, "family_name_kana", ja("Please write this in katakana or hiragana."))
    assert_field_error(page, "given_name_kana", ja("Please write this in katakana or hiragana."))
    assert_field_error(page, "email", ja("Please enter a valid email address, e.g. taro@example.jp."))
    for field in ("family_name", "given_name", "organization", "consent"):
        expect(page.locator(f"#{field}-error")).to_have_count(0)
    # What the visitor typed is still there, exactly.
    expect(page.locator("#given_name")).to_have_value("<b>太郎</b>")
    expect(page.locator("#family_name_kana")).to_have_value("Yamada")
    expect(page.locator("#email")).to_have_value("taro@@example")
    expect(page.locator("#organization")).to_have_value("例示株式会社 & Co.")
    expect(page.locator("#job_title")).to_have_value("SRE")
    expect(page.locator("#attend_closing")).to_be_checked()
    expect(page.locator("#consent")).to_be_checked()
    shot(page, request, "form-errors-bad-values")

    # Fixed: katakana (half-width is fine too) and a real address.
    page.locator("#family_name_kana").fill("やまだ")
    page.locator("#given_name_kana").fill("ﾀﾛｳ")
    page.locator("#email").fill("  taro.html@example.jp ")
    response = submit(page, ja("Register"))
    assert response.status == 200
    expect(page).to_have_url(re.compile(SECRET_URL + "/welcome$"))
    main = page.locator("main")
    expect(main).to_contain_text("山田 <b>太郎</b>")
    expect(main.locator("b")).to_have_count(0)
    expect(main).to_contain_text("taro.html@example.jp")
    personal_url = page.get_by_test_id("personal-link").inner_text().strip()
    shot(page, request, "welcome-html-name")

    page.goto(personal_url)
    expect(page.get_by_test_id("registration-status")).to_contain_text("山田 <b>太郎</b>")
    expect(page.get_by_test_id("registration-status").locator("b")).to_have_count(0)
    expect(page.locator("#given_name")).to_have_value("<b>太郎</b>")
    expect(page.locator("#given_name_kana")).to_have_value("タロウ")  # half-width widened
    expect(page.locator("#organization")).to_have_value("例示株式会社 & Co.")

    [message] = mailbox.deliver()
    assert message["To"] == "taro.html@example.jp"
    text, html = parts(message)
    assert "<b>太郎</b>" in text
    assert "&lt;b&gt;太郎&lt;/b&gt;" in html and "<b>太郎</b>" not in html


# --- 4. the same address twice ---------------------------------------------------------------------------

@pytest.mark.browser
def test_duplicate_address_in_full_width_is_already_registered(live_server, page: Page, request):
    server = live_server()
    mailbox = Mailbox(server)

    personal_url = register(page, server, email_address="taro@example.jp")

    page.goto(server.url + "/register")
    fill_registration(page, given_name="次郎", email_address="ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", organization="別会社")
    response = submit(page, ja("Register"))
    assert response.status == 200
    expect(page).to_have_url(server.url + "/register")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Check your mail"))
    # Whoever typed the address may not own it: no link, no details on the page.
    expect(page.get_by_test_id("personal-link")).to_have_count(0)
    content = page.content()
    assert "/me/" not in content
    assert "太郎" not in content
    shot(page, request, "already-registered")

    messages = mailbox.deliver()
    assert [m["To"] for m in messages] == ["taro@example.jp", "taro@example.jp"]
    assert [m["Subject"] for m in messages] == [ja("Your CODT2023 registration"),
                                                ja("You are already registered for CODT2023")]
    assert links_in(messages[0], server) == links_in(messages[1], server) == {personal_url}

    # Nothing new was stored: the registration still has the first details.
    page.goto(personal_url)
    status = page.get_by_test_id("registration-status")
    expect(status).to_contain_text("山田 太郎")
    expect(status).not_to_contain_text("次郎")
    expect(status).not_to_contain_text("別会社")


# --- 5. the deadline, on the rehearsal clock -------------------------------------------------------------

@pytest.mark.browser
def test_form_submitted_after_the_deadline_is_refused(live_server, context: BrowserContext, page: Page, request):
    server = live_server(REHEARSAL_CLOCK="2023-09-14T09:59:55+09:00")
    mailbox = Mailbox(server)
    deadline = datetime(2023, 9, 14, 10, tzinfo=JST)

    page.goto(server.url + "/register")
    loaded_at = banner_time(page)
    assert loaded_at < deadline, f"the server took too long to start: the form was loaded at {loaded_at}"
    expect(page.get_by_test_id("rehearsal-time")).to_contain_text("2023年9月14日(木) 09:59:")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Register for CODT2023"))
    fill_registration(page, email_address="late@example.jp")

    # Meanwhile, in another tab, the clock passes 10:00.
    other = context.new_page()
    give_up = time.monotonic() + 30
    while True:
        other.goto(server.url + "/")
        # A second past it: the banner is rendered a moment after the page decided whether registration is open.
        if banner_time(other) >= deadline + timedelta(seconds=1):
            break
        assert time.monotonic() < give_up, "the rehearsal clock does not move"
        time.sleep(0.5)
    expect(other.locator(".status")).to_contain_text(ja("Registration has closed."))
    expect(other.get_by_role("link", name=ja("Register (free)"))).to_have_count(0)
    other.close()

    response = submit(page, ja("Register"))
    assert response.status == 403
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Registration has closed"))
    expect(page.locator("main")).to_contain_text(
        ja("Registration for CODT2023 closed at %(when)s. Nothing was stored.", when="2023年9月14日(木) 10:00"))
    assert banner_time(page) >= deadline
    shot(page, request, "closed")

    # Nothing was stored: no confirmation, and the address is unknown to the lost-link form.
    navigate(page, lambda: page.locator("main").get_by_role("link", name=ja("Lost your personal link?")).click())
    page.locator("form.stack [name=email]").fill("late@example.jp")
    submit(page, ja("Send my link"))
    expect(page.get_by_test_id("lost-link-answer")).to_be_visible()
    assert mailbox.deliver() == []


# --- 6. lost link ----------------------------------------------------------------------------------------

@pytest.mark.browser
def test_lost_link_answers_the_same_and_mails_only_registered(live_server, page: Page, request):
    server = live_server()
    mailbox = Mailbox(server)
    personal_url = register(page, server, email_address="hanako@example.jp", given_name="花子",
                            given_name_kana="ハナコ")

    answers = []
    for address in ("hanako@example.jp", "nobody@example.jp"):
        page.goto(server.url + "/")
        navigate(page, lambda: page.locator("footer").get_by_role("link", name=ja("Lost your personal link?")).click())
        expect(page.get_by_role("heading", level=1)).to_have_text(ja("Lost your personal link?"))
        page.locator("form.stack [name=email]").fill(address)
        response = submit(page, ja("Send my link"))
        assert response.status == 200
        answer = page.get_by_test_id("lost-link-answer")
        expect(answer).to_have_text(_catalog().ngettext(
            "If this address is registered, its personal link is on its way; links are sent at most every %(num)d "
            "minute.", "If this address is registered, its personal link is on its way; links are sent at most every "
            "%(num)d minutes.", 10) % {"num": 10})
        answers.append((page.url, page.title(), page.locator("main").inner_text()))
        if address.startswith("hanako"):
            shot(page, request, "lost-link-answer")
    assert answers[0] == answers[1], "the answer must not tell whether an address is registered"

    confirmation, *messages = mailbox.deliver()
    assert confirmation["To"] == "hanako@example.jp"
    assert confirmation["Subject"] == ja("Your CODT2023 registration")
    assert [m["To"] for m in messages] == ["hanako@example.jp"], "only the registered address gets a mail"
    assert messages[0]["Subject"] == ja("Your CODT2023 personal link")
    assert links_in(messages[0], server) == {personal_url}
    _, html = parts(messages[0])
    assert f'href="{personal_url}"' in html

    # An invalid address is a field message, not the answer.
    page.goto(server.url + "/lost-link")
    page.locator("form.stack [name=email]").fill("not-an-address")
    response = submit(page, ja("Send my link"))
    assert response.status == 422
    assert_field_error(page, "email", ja("Please enter a valid email address, e.g. taro@example.jp."))


# --- 7. a phone ------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_phone_viewport_no_horizontal_scroll_and_labelled_inputs(live_server, browser: Browser, request):
    server = live_server()
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        assert page.evaluate("window.innerWidth") == PHONE["width"]
        no_horizontal_scroll(page)
        shot(page, request, "landing-phone")

        page.goto(server.url + "/register")
        no_horizontal_scroll(page)
        # Seven text fields, the closing event and consent checkboxes, the two languages, one per shipped session.
        assert every_input_labelled(page) == 9 + 2 + 10
        shot(page, request, "form-phone")

        submit(page, ja("Register"))  # with every error message shown
        no_horizontal_scroll(page)
        every_input_labelled(page)
        shot(page, request, "form-errors-phone")

        # And once registered: the long personal link must wrap, not widen the page.
        fill_registration(page, email_address="a-rather-long-address.for.phones@example.jp")
        submit(page, ja("Register"))
        expect(page.get_by_test_id("personal-link")).to_be_visible()
        no_horizontal_scroll(page)
        shot(page, request, "welcome-phone")
        page.goto(page.get_by_test_id("personal-link").inner_text().strip())
        no_horizontal_scroll(page)
        every_input_labelled(page)

        navigate(page, page.locator("button[name=lang]").click)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        no_horizontal_scroll(page)
        page.goto(server.url + "/")
        no_horizontal_scroll(page)
        shot(page, request, "landing-phone-en")
    finally:
        context.close()


# --- regressions ------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_welcome_page_after_cancelling_does_not_say_registered(live_server, page: Page):
    server = live_server()
    personal_url = register(page, server)
    welcome_url = page.url
    page.goto(personal_url + "/cancel")
    submit(page, ja("Yes, cancel my registration"))
    expect(page.locator("[data-testid=registration-status].cancelled")).to_have_count(1)
    page.goto(welcome_url)
    expect(page.get_by_role("heading", level=1)).not_to_have_text(ja("You are registered"), timeout=1000)


@pytest.mark.browser
def test_rehearsal_restart_moves_the_running_site_back(live_server, page: Page):
    server = live_server(REHEARSAL_CLOCK="2023-09-14T09:59:00+09:00", workers=1)
    start = datetime(2023, 9, 14, 9, 59, tzinfo=JST)
    page.goto(server.url + "/")
    time.sleep(3)
    page.reload()
    assert banner_time(page) >= start + timedelta(seconds=3)
    restarted = run_flask(server.env, "rehearsal", "restart")
    assert restarted.returncode == 0, restarted.stderr
    # Each process re-reads the rehearsal's beginning at most a second later (README): reload until it has.
    deadline = time.monotonic() + 3
    page.reload()
    while banner_time(page) >= start + timedelta(seconds=3) and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    assert banner_time(page) < start + timedelta(seconds=3)


# --- personal data and staff sessions ---------------------------------------------------------------------

@pytest.mark.browser
def test_deleting_my_data_frees_my_seat_and_kills_my_link(live_server, page: Page, browser: Browser, request):
    server = live_server(CLOSING_CAPACITY="1")
    mailbox = Mailbox(server)
    holder_url = register(page, server, email_address="holder@example.jp", given_name="席子")
    waiting_context = browser.new_context(locale="ja-JP")
    try:
        register(waiting_context.new_page(), server, email_address="waiting@example.jp", given_name="待子")
    finally:
        waiting_context.close()
    mailbox.deliver()

    page.goto(holder_url)
    navigate(page, lambda: page.get_by_role("link", name=ja("Delete my registration and data…")).click())
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Delete my registration and data"))
    expect(page.locator("main")).to_contain_text(ja(
        "Your seat at the closing event is released and your ticket stops working; the seat goes to the next "
        "person on the waiting list."))
    shot(page, request, "erase-confirm")
    submit(page, ja("Yes, delete my registration and data"))
    expect(page).to_have_url(server.url + "/deleted")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Your data is deleted"))
    shot(page, request, "erased")

    assert page.goto(holder_url).status == 404
    messages = mailbox.deliver()
    assert [m["To"] for m in messages] == ["waiting@example.jp"]  # the ticket; nothing to the erased address
    assert server.query("SELECT count(*) FROM registrants WHERE email LIKE '%holder%' OR given_name = '席子'") == [(0,)]
    check = run_flask(server.env, "seats", "check")
    assert check.returncode == 0, check.stdout


@pytest.mark.browser
def test_signing_out_ends_the_session_a_copied_cookie_carried(live_server, page: Page, browser: Browser, request):
    server = live_server()
    added = run_flask(server.env, "staff", "add", "kato", "--role", "admin", "--password-stdin",
                      input="a long admin password\n")
    assert added.returncode == 0, added.stderr
    page.goto(server.url + "/login")
    page.locator("[name=name]").fill("kato")
    page.locator("[name=password]").fill("a long admin password")
    navigate(page, lambda: page.locator("main").get_by_role("button").click())
    page.goto(server.url + "/admin")
    expect(page).to_have_url(server.url + "/admin")
    copied = [c for c in page.context.cookies() if c["name"] == "session"]

    thief = browser.new_context()
    try:
        thief.add_cookies(copied)
        stolen = thief.new_page()
        assert stolen.goto(server.url + "/admin").url == server.url + "/admin"  # the copy works while signed in
        page.goto(server.url + "/door")
        navigate(page, lambda: page.get_by_role("button", name=ja("Sign out")).click())
        expect(page.locator("main")).to_contain_text(ja("You are signed out on every device."))
        shot(page, request, "signed-out")
        stolen.goto(server.url + "/admin")
        expect(stolen).to_have_url(re.compile(re.escape(server.url) + "/login"))
    finally:
        thief.close()
