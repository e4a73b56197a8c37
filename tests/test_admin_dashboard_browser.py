"""The admin dashboard in a real Chromium against real gunicorn servers, on a desktop and a 390-pixel phone: the
charts show the figures of the database, and the door panel refreshes by itself when someone is checked in through
the API while the page stays open (no reload), and says so when a refresh fails. Screenshots go to
test-artifacts/screenshots/admin-dashboard-*.png to be looked at."""

import json
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import JST, Browserless, LiveServer, form_data, run_flask
from tests.test_browser import PHONE, SCREENSHOTS, browser, navigate  # noqa: F401

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
ADMIN, ADMIN_PASSWORD = "admin1", "an admin password 123"


def register(server: LiveServer, n: int) -> None:
    """Register through the public form as a visitor does, with a seat at the closing event."""
    visitor = Browserless(server.url)
    data = form_data(email=f"dash{n}@example.jp", given_name=f"花子{n}", attend_closing="y",
                     csrf_token=visitor.csrf_token("/register"))
    assert visitor.post("/register", data) == 303


def device_token(server: LiveServer) -> str:
    for args, stdin in ((["staff", "add", "door1", "--role", "door", "--password-stdin"], "a door password 123\n"),
                        (["staff", "add", ADMIN, "--role", "admin", "--password-stdin"], ADMIN_PASSWORD + "\n")):
        added = run_flask(server.env, *args, input=stdin)
        assert added.returncode == 0, added.stderr
    issued = run_flask(server.env, "staff", "token", "door1", "--device", "gate-a")
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def check_in(server: LiveServer, token: str, registrant_id: int) -> None:
    """A scanner device checks someone in through the API."""
    request = urllib.request.Request(
        server.url + "/api/v1/checkins", data=json.dumps({"registrant_id": registrant_id}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def registrations_per_jst_day(server: LiveServer) -> Counter:
    """Registrations per JST day, counted from the server's database (not through the app)."""
    days = Counter()
    for (value,) in server.query("SELECT registered_at FROM registrants"):
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        days[moment.astimezone(JST).date().isoformat()] += 1
    return days


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/login")
    page.locator("[name=name]").fill(ADMIN)
    page.locator("[name=password]").fill(ADMIN_PASSWORD)
    navigate(page, lambda: page.locator("main").get_by_role("button").click())


def fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scrolling on a {PHONE['width']}px phone"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-dashboard-{name}.png"), full_page=True)


def test_the_dashboard_draws_the_data_and_the_door_panel_refreshes_itself(live_server, browser: Browser):  # noqa: F811
    # DASHBOARD_REFRESH_SECONDS is honoured once config.py reads it from the environment; the test reads the
    # interval the page actually uses and waits accordingly.
    server = live_server(workers=2, DASHBOARD_REFRESH_SECONDS="3")
    for n in range(3):
        register(server, n)
    token = device_token(server)
    ids = [row[0] for row in server.query("SELECT id FROM registrants ORDER BY id")]

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        failed = []  # answers the page got in error (a missing favicon aside)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.on("pageerror", lambda error: failed.append(str(error)))
        sign_in(page, server)
        response = page.goto(server.url + "/admin")
        assert response.status == 200

        # The registrations chart: one bar per JST day, with the figures of the database.
        expected = registrations_per_jst_day(server)
        bars = page.locator('figure[data-chart="registrations-per-day"] rect[data-series="参加登録"]')
        drawn = {bar.get_attribute("data-label"): int(bar.get_attribute("data-value")) for bar in bars.all()}
        assert {day: n for day, n in drawn.items() if n} == dict(expected) and sum(drawn.values()) == 3
        tallest = bars.nth(len(drawn) - 1).bounding_box()
        assert tallest["height"] > 20 and tallest["width"] > 2  # drawn, not only described
        expect(page.locator('figure[data-chart="registrations-per-day"] svg')).to_have_attribute("role", "img")
        checked_in = page.get_by_test_id("admin-checked-in")
        expect(checked_in).to_have_text("0 / 3")
        expect(page.get_by_test_id("door-expected")).to_have_text("3")
        shot(page, "desktop")

        section = page.locator("[data-door-panel-url]")
        expect(section).to_have_attribute("data-refreshing", "on")  # dashboard.js runs (the CSP allowed it)
        seconds = int(section.get_attribute("data-refresh-seconds"))
        wait_ms = (seconds + 6) * 1000
        page.evaluate("window.notReloaded = true")

        # A scanner checks someone in; the open page shows it by itself.
        check_in(server, token, ids[0])
        expect(checked_in).to_have_text("1 / 3", timeout=wait_ms)
        expect(page.get_by_test_id("door-expected")).to_have_text("2")
        expect(page.locator('figure[data-chart="checkins-over-time"] circle.mark').last).to_have_attribute(
            "data-value", "1")
        expect(page.locator("[data-door-live]")).to_have_text("受付済み 1 人、未到着 2 人")
        status = page.get_by_test_id("door-panel-status")
        expect(status).to_contain_text("（日本時間）に更新")
        assert page.evaluate("window.notReloaded") is True

        # The server cannot be reached: the figures stay, and the page says they may be old.
        page.route("**/admin/door-panel", lambda route: route.abort())
        expect(status).to_have_class("refresh-status failed", timeout=wait_ms)
        expect(status).to_contain_text("更新できませんでした")
        expect(checked_in).to_have_text("1 / 3")
        shot(page, "refresh-failed")
        page.unroute("**/admin/door-panel")
        check_in(server, token, ids[1])
        expect(checked_in).to_have_text("2 / 3", timeout=wait_ms)
        expect(status).not_to_have_class("refresh-status failed")
        assert page.evaluate("window.notReloaded") is True
        assert failed == []
        shot(page, "desktop-after-checkins")

        # A 390-pixel phone: the same page, nothing scrolls sideways, the charts fit.
        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        phone.goto(server.url + "/admin")
        expect(phone.get_by_test_id("admin-checked-in")).to_have_text("2 / 3")
        fits_the_screen(phone)
        for figure in phone.locator("figure[data-chart] svg").all():
            box = figure.bounding_box()
            assert box is None or box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        shot(phone, "phone")
        phone.evaluate("document.querySelectorAll('figure[data-chart] details').forEach(d => { d.open = true; })")
        fits_the_screen(phone)
        shot(phone, "phone-tables")
    finally:
        context.close()
