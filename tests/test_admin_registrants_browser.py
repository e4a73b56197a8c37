"""The registrant list, a person's page and the audit log in a real Chromium against real gunicorn servers, on a
desktop and a 390-pixel phone: search by kana typed in hiragana and by full-width latin, open the person, run an
action through its confirmation, and find it in the person's history and in the audit log. Screenshots go to
test-artifacts/screenshots/admin-registrants-*.png to be looked at."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Browserless, LiveServer, form_data, run_flask
from tests.test_browser import PHONE, SCREENSHOTS, browser, navigate  # noqa: F401

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
ADMIN, ADMIN_PASSWORD = "admin-list", "an admin password 123"


def register(server: LiveServer, **values) -> None:
    """Register through the public form as a visitor does."""
    visitor = Browserless(server.url)
    assert visitor.post("/register", form_data(csrf_token=visitor.csrf_token("/register"), **values)) == 303


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/login")
    page.locator("[name=name]").fill(ADMIN)
    page.locator("[name=password]").fill(ADMIN_PASSWORD)
    navigate(page, lambda: page.locator("main").get_by_role("button").click())


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-registrants-{name}.png"), full_page=True)


def fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scrolling on a {PHONE['width']}px phone"


def rows(page: Page) -> list[str]:
    return page.locator("[data-testid=registrant-row] .registrant-name").all_inner_texts()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_search_open_cancel_and_find_it_in_the_history_and_the_log(live_server, browser: Browser,  # noqa: F811
                                                                     viewport):
    server = live_server(workers=2)
    added = run_flask(server.env, "staff", "add", ADMIN, "--role", "admin", "--password-stdin",
                      input=ADMIN_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    register(server, family_name="山田", given_name="花子", family_name_kana="やまだ", given_name_kana="はなこ",
             email="hanako@example.jp", organization="例示株式会社", attend_closing="y")
    register(server, family_name="Yamada", given_name="Ken", family_name_kana="", given_name_kana="",
             email="ken.yamada@example.com", organization="Acme Cloud")
    register(server, family_name="佐藤", given_name="一郎", family_name_kana="サトウ", given_name_kana="イチロウ",
             email="sato@example.jp", organization="別会社")

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                  viewport=PHONE if viewport == "phone" else DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.url + "/admin/registrants")
    expect(page.locator("[data-testid=registrants-total]")).to_contain_text("3")
    shot(page, f"list-{viewport}")

    # Kana typed in hiragana finds the reading stored in katakana; half-width too.
    for typed in ("やまだ", "ﾔﾏﾀﾞ"):
        page.locator("#q").fill(typed)
        navigate(page, lambda: page.locator("[data-testid=registrant-filters] button[type=submit]").click())
        assert rows(page) == ["山田 花子"], typed
    # Full-width latin finds the latin name.
    page.locator("#q").fill("ＹＡＭＡＤＡ　ＫＥＮ")
    navigate(page, lambda: page.locator("[data-testid=registrant-filters] button[type=submit]").click())
    assert rows(page) == ["Yamada Ken"]
    expect(page.locator("[data-testid=ignored-filters]")).to_have_count(0)
    page.locator("#q").fill("やまだ")
    navigate(page, lambda: page.locator("[data-testid=registrant-filters] button[type=submit]").click())
    shot(page, f"search-{viewport}")
    if viewport == "phone":
        fits_the_screen(page)

    navigate(page, lambda: page.get_by_role("link", name="山田 花子").click())
    expect(page.locator("[data-testid=registrant-name]")).to_have_text("山田 花子")
    expect(page.locator("[data-testid=badge-seat]")).to_be_visible()
    # Cancelling goes through a confirmation, without JavaScript.
    navigate(page, lambda: page.locator("[data-testid=registrant-actions] a[href*='confirm=cancel']").click())
    panel = page.locator("[data-testid=confirm-panel]")
    expect(panel).to_be_visible()
    shot(page, f"confirm-{viewport}")
    if viewport == "phone":
        fits_the_screen(page)
    navigate(page, lambda: panel.locator("button[type=submit]").click())
    expect(page.locator(".flash-success")).to_contain_text("山田 花子")
    expect(page.locator("[data-testid=badge-cancelled]")).to_be_visible()
    history = page.locator("[data-testid=history-item]")
    actions = [history.nth(n).get_attribute("data-action") for n in range(history.count())]
    assert actions == ["registrant.register", "seat.confirmed", "", "pending",
                       "registrant.cancel", "seat.released", "cancelled", "pending"], actions
    cancel = page.locator("[data-testid=history-item][data-action='registrant.cancel']")
    expect(cancel).to_contain_text(ADMIN)
    expect(cancel.locator("del").first).to_be_visible()
    shot(page, f"person-{viewport}")
    if viewport == "phone":
        fits_the_screen(page)

    navigate(page, lambda: page.locator("a[href^='/admin/audit?registrant=']").click())
    entries = page.locator("[data-testid=audit-entry]")
    # Newest first; the seat rule's release was written after the cancellation, at the same moment.
    assert [entries.nth(n).get_attribute("data-action") for n in range(2)] == ["seat.released", "registrant.cancel"]
    expect(entries.nth(1)).to_contain_text(ADMIN)
    # The log filtered by who and action, through the form.
    page.goto(server.url + "/admin/audit")
    page.locator("#a-who").select_option(ADMIN)
    navigate(page, lambda: page.locator("[data-testid=audit-filters] button[type=submit]").click())
    entries = page.locator("[data-testid=audit-entry]")
    assert [entries.nth(n).get_attribute("data-action") for n in range(entries.count())] == ["registrant.cancel"]
    assert re.search(r"who=admin-list", page.url)
    shot(page, f"audit-{viewport}")
    if viewport == "phone":
        fits_the_screen(page)
    context.close()
    assert "Traceback" not in server.errors()
