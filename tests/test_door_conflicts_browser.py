"""Door conflicts on the console in a real Chromium against real gunicorn servers: the dashboard shows them at the top
of the door panel (who, which kind, the admission that counts, the scan in conflict with its device time and the
time received), "Dealt with" takes one away, the person page and /admin/conflicts show the rest, on a desktop and a
390-pixel phone. Screenshots: test-artifacts/screenshots/door-conflicts-*.png."""

import json
import shutil
import subprocess

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.test_accessibility import VNU, axe_report, blocking, run_axe
from tests.test_browser import PHONE, SCREENSHOTS, browser, ja, navigate  # noqa: F401
from tests.test_door_conflicts import world  # noqa: F401

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"door-conflicts-{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/login")
    page.locator("[name=name]").fill("kato")
    page.locator("[name=password]").fill("correct horse kato")
    navigate(page, lambda: page.locator("main").get_by_role("button").click())


def accessible(page: Page, html: str, pages: dict, name: str) -> None:
    """No serious or critical axe violation on the page; its HTML as served is kept for the Nu checker."""
    problems = blocking(run_axe(page))
    assert not problems, f"{name}:\n{axe_report(problems)}"
    pages[name] = html


def valid_html(pages: dict, tmp_path) -> None:
    """The Nu HTML checker finds no error in the pages (one run: the JVM starts slowly)."""
    java = shutil.which("java")
    assert java, "The HTML checks need Java (apt-get install default-jre-headless)"
    files = []
    for name, content in pages.items():
        files.append(tmp_path / f"{name}.html")
        files[-1].write_text(content)
    result = subprocess.run([java, "-jar", str(VNU), "--format", "json", *map(str, files)], capture_output=True,
                            text=True, timeout=600)
    errors = [m for m in json.loads(result.stderr)["messages"] if m["type"] == "error"]
    assert errors == [], "\n".join(f"{m['url'].rsplit('/', 1)[-1]}:{m.get('lastLine')}: {m['message']}"
                                    for m in errors)


def fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scrolling"


def test_the_console_shows_door_conflicts_and_deals_with_one(frozen_clock, live_server, world,  # noqa: F811
                                                             browser: Browser, tmp_path):  # noqa: F811
    server = live_server(workers=2)
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        failed = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.on("pageerror", lambda error: failed.append(str(error)))
        sign_in(page, server)
        assert page.goto(server.url + "/admin").status == 200

        panel = page.get_by_test_id("door-conflicts-panel")
        expect(panel).to_be_visible()
        conflicts = panel.get_by_test_id("conflict")
        expect(conflicts).to_have_count(3)
        twice = panel.locator('[data-kind="admitted_twice"]')
        expect(twice.get_by_test_id("conflict-kind")).to_have_text(ja("Admitted twice while offline"))
        expect(twice.get_by_test_id("conflict-admission")).to_contain_text("door-1")
        expect(twice.get_by_test_id("conflict-admission")).to_contain_text("13:00:00")
        expect(twice.get_by_test_id("conflict-scan")).to_contain_text("door-2")
        expect(twice.get_by_test_id("conflict-scan")).to_contain_text("13:00:05")
        expect(twice.get_by_test_id("conflict-scan")).to_contain_text(
            ja("received %(when)s", when="2023年9月14日(木) 13:10:00"))

        # Dealt with: the cancelled person let in. Two remain, which the screenshot shows.
        gone = panel.locator('[data-kind="admitted_without_ticket"]')
        navigate(page, lambda: gone.get_by_role("button").click())
        expect(page.locator(".flash-success")).to_contain_text(ja("The door conflict is marked as dealt with."))
        expect(page.get_by_test_id("door-conflicts-panel").get_by_test_id("conflict")).to_have_count(2)
        page.get_by_test_id("door-conflicts-panel").scroll_into_view_if_needed()
        shot(page, "dashboard")
        page.get_by_test_id("door-conflicts-panel").screenshot(path=str(SCREENSHOTS / "door-conflicts-panel.png"))

        # The name leads to the person, whose page has the conflict and the scan times.
        navigate(page, lambda: page.get_by_test_id("door-conflicts-panel")
                 .locator('[data-kind="admitted_twice"] a.conflict-name').click())
        expect(page.get_by_test_id("person-conflicts").get_by_test_id("conflict")).to_have_count(1)
        expect(page.get_by_test_id("history")).to_contain_text(ja("Decided offline at the door: %(decision)s",
                                                                  decision=ja("admitted")))
        shot(page, "person")

        # Every conflict, the dealt-with one too.
        page.goto(server.url + "/admin/conflicts")
        expect(page.get_by_test_id("conflict-list").get_by_test_id("conflict")).to_have_count(3)
        expect(page.get_by_test_id("conflict-resolved")).to_have_count(1)
        shot(page, "list")
        assert failed == []

        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        phone.goto(server.url + "/admin")
        expect(phone.get_by_test_id("door-conflicts-panel").get_by_test_id("conflict")).to_have_count(2)
        fits_the_screen(phone)
        phone.get_by_test_id("door-conflicts-panel").screenshot(path=str(SCREENSHOTS / "door-conflicts-phone.png"))
    finally:
        context.close()

    # axe-core and the Nu checker on the three pages (axe is injected, so this context lets scripts past the CSP).
    checker = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=DESKTOP, bypass_csp=True)
    try:
        page = checker.new_page()
        sign_in(page, server)
        pages = {}
        for name, path in (("dashboard", "/admin"), ("person", f"/admin/registrants/{world['people']['twice']}"),
                           ("list", "/admin/conflicts")):
            response = page.goto(server.url + path)
            accessible(page, response.text(), pages, name)
        valid_html(pages, tmp_path)
    finally:
        checker.close()
