"""The organisers' console tried as an organiser would, in Chromium against real gunicorn processes, on 10,000
registrants made by `flask demo-data`: the dashboard's charts and figures against the database, search by kana typed
in hiragana and by full-width latin, every action from a person's page and each of them in the audit log, the
exports opening with correct Japanese in UTF-8 and Shift_JIS, and a door account refused everywhere. Screenshots go
to test-artifacts/screenshots/console-*.png."""

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import LiveServer, run_flask
from tests.test_browser import PHONE, SCREENSHOTS, browser, ja, navigate  # noqa: F401

pytestmark = pytest.mark.browser

REGISTRANTS = 10_000
ADMIN, DOOR, PASSWORD = "console-admin", "console-door", "a console password 2023"
TOKYO = ZoneInfo("Asia/Tokyo")
HIRAGANA = {code + 0x60: code for code in range(0x3041, 0x3097)}


def as_utc(value) -> datetime:
    """A timestamp as the raw query gives it: a string from SQLite (naive UTC), a datetime from PostgreSQL."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.locator("[name=name]").fill(name)
    page.locator("[name=password]").fill(PASSWORD)
    navigate(page, lambda: page.locator("main").get_by_role("button").click())


def marks(page: Page, chart: str, series: str) -> dict[str, float]:
    """The values a chart draws for one series, by label, read from its SVG marks."""
    found = {}
    for mark in page.locator(f'figure[data-chart="{chart}"] .mark[data-series="{series}"]').all():
        found[mark.get_attribute("data-label")] = float(mark.get_attribute("data-value"))
    return found


def search(page: Page, server: LiveServer, typed: str) -> tuple[int, list[str]]:
    """Type into the registrant list's search box; (the total it reports, the ids on the first page)."""
    page.goto(server.url + "/admin/registrants")
    page.locator("#q").fill(typed)
    navigate(page, lambda: page.locator("[data-testid=registrant-filters] button[type=submit]").click())
    total = int(re.search(r"[\d,]+", page.locator("[data-testid=registrants-total] strong").inner_text())
                .group().replace(",", ""))
    return total, page.locator("[data-testid=registrant-row]").evaluate_all("rows => rows.map(r => r.dataset.id)")


def act(page: Page, server: LiveServer, registrant_id: int, link: str | None, button: str) -> None:
    """On the person's page, open a confirmation panel through its link if any, then press the button."""
    page.goto(f"{server.url}/admin/registrants/{registrant_id}")
    if link:
        navigate(page, lambda: page.get_by_role("link", name=link).first.click())
    response = navigate(page, lambda: page.locator("main").get_by_role("button", name=button).first.click())
    assert response.status == 200, (button, response.status)
    expect(page.locator(".flash-success")).to_have_count(1)


def download(page: Page, link) -> bytes:
    with page.expect_download() as arrived:
        link.click()
    return Path(arrived.value.path()).read_bytes()


def test_an_organiser_uses_the_console_on_ten_thousand_registrants(live_server, browser: Browser):  # noqa: F811
    server = live_server(workers=2, REHEARSAL_CLOCK="2023-09-14T15:00:00+09:00")
    for args in (("program", "import", "tests/data/program-49.csv"), ("demo-data", "--registrants", str(REGISTRANTS))):
        done = run_flask(server.env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "seats check: all seat invariants hold" in done.stdout
    for name, role in ((ADMIN, "admin"), (DOOR, "door")):
        added = run_flask(server.env, "staff", "add", name, "--role", role, "--password-stdin", input=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    sign_in(page, server, ADMIN)

    # --- the dashboard's figures are the database's ---------------------------------------------------------
    page.goto(server.url + "/admin")
    registered = [as_utc(row[0]) for row in server.query("SELECT registered_at FROM registrants")]
    cancelled = [as_utc(row[0]) for row in server.query(
        "SELECT cancelled_at FROM registrants WHERE cancelled_at IS NOT NULL")]
    assert len(registered) > REGISTRANTS  # a few walk-ins on the event day too
    per_day = Counter(moment.astimezone(TOKYO).date().isoformat() for moment in registered)
    drawn = marks(page, "registrations-per-day", ja("Registrations"))
    assert {day: value for day, value in drawn.items() if value} == per_day
    cancellations = Counter(moment.astimezone(TOKYO).date().isoformat() for moment in cancelled)
    assert {day: v for day, v in marks(page, "registrations-per-day", ja("Cancellations")).items() if v} == cancellations
    assert max(marks(page, "registrations-cumulative", ja("Registered in all")).values()) == len(registered)
    [(confirmed, waiting, capacity)] = server.query(
        "SELECT (SELECT count(*) FROM registrants WHERE seat_status = 'confirmed' AND cancelled_at IS NULL),"
        " (SELECT count(*) FROM registrants WHERE seat_status = 'waitlisted' AND cancelled_at IS NULL),"
        " (SELECT capacity FROM seat_counters)")
    assert page.locator("[data-testid=admin-seats]").inner_text() == f"{confirmed} / {capacity}"
    assert page.locator("[data-testid=admin-waiting]").inner_text() == str(waiting)
    [(admitted,)] = server.query(
        "SELECT count(*) FROM checkins JOIN registrants ON registrants.id = checkins.registrant_id"
        " WHERE checkins.undone_at IS NULL AND registrants.seat_status = 'confirmed'"
        " AND registrants.cancelled_at IS NULL")
    assert admitted > 0
    assert page.locator("[data-testid=admin-checked-in]").inner_text() == f"{admitted} / {confirmed}"
    assert page.locator("[data-testid=door-expected]").inner_text() == str(confirmed - admitted)
    shot(page, "dashboard")
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(server.url + "/admin")
    assert phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    shot(phone, "dashboard-phone")
    phone.close()

    # --- search: kana typed in hiragana, latin typed full-width ----------------------------------------------
    [(kana, kana_count)] = server.query(
        "SELECT family_name_kana || ' ' || given_name_kana, count(*) FROM registrants"
        " WHERE cancelled_at IS NULL AND family_name_kana <> '' GROUP BY family_name_kana, given_name_kana"
        " ORDER BY count(*) DESC, 1 LIMIT 1")
    total, ids = search(page, server, kana.translate(HIRAGANA))
    assert total == kana_count and ids
    shown = {row[0] for row in server.query(
        f"SELECT family_name_kana || ' ' || given_name_kana FROM registrants WHERE id IN ({','.join(ids)})")}
    assert shown == {kana}
    shot(page, "search-kana")
    [(latin,)] = server.query("SELECT family_name FROM registrants WHERE locale = 'en' AND cancelled_at IS NULL"
                              " AND family_name <> '' ORDER BY id LIMIT 1")
    wide = "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in latin.upper())
    total, ids = search(page, server, wide)
    [(latin_count,)] = server.query(
        f"SELECT count(*) FROM registrants WHERE cancelled_at IS NULL AND search_key LIKE '%{latin.lower()}%'")
    assert total == latin_count and total > 0
    shot(page, "search-full-width")

    # --- every action from a person's page, then the audit log -----------------------------------------------
    [(checked_in, checkin_id)] = server.query(
        "SELECT checkins.registrant_id, checkins.id FROM checkins JOIN registrants ON registrants.id ="
        " checkins.registrant_id WHERE checkins.undone_at IS NULL AND registrants.seat_status = 'confirmed'"
        " AND registrants.cancelled_at IS NULL ORDER BY checkins.id LIMIT 1")
    [(holder,)] = server.query(
        "SELECT id FROM registrants WHERE seat_status = 'confirmed' AND cancelled_at IS NULL"
        f" AND id <> {checked_in} AND id NOT IN (SELECT registrant_id FROM checkins) ORDER BY id LIMIT 1")
    [(first_waiting,)] = server.query(
        "SELECT id FROM registrants WHERE seat_status = 'waitlisted' AND cancelled_at IS NULL"
        " ORDER BY waitlisted_at, id LIMIT 1")
    [(plain,)] = server.query("SELECT id FROM registrants WHERE seat_status = 'none' AND cancelled_at IS NULL"
                              " AND anonymised_at IS NULL ORDER BY id LIMIT 1")
    act(page, server, checked_in, ja("Undo the check-in…"), ja("Yes, undo the check-in"))
    act(page, server, checked_in, None, ja("Mail the ticket again"))
    act(page, server, checked_in, ja("Issue a new ticket code…"), ja("Yes, issue a new code"))
    act(page, server, holder, ja("Cancel the registration…"), ja("Yes, cancel the registration"))  # a seat comes free
    act(page, server, first_waiting, None, ja("Give a seat"))
    act(page, server, holder, None, ja("Take back the cancellation"))
    act(page, server, plain, None, ja("Mail the personal link again"))
    page.goto(f"{server.url}/admin/registrants/{plain}")
    navigate(page, lambda: page.get_by_role("link", name=ja("Erase the data at the person's request…")).click())
    page.locator("textarea").fill("本人からメールで依頼(9月14日)")
    navigate(page, lambda: page.locator("main").get_by_role("button", name=ja("Yes, erase the data")).click())
    expect(page.locator(".flash-success")).to_have_count(1)
    shot(page, "person-erased")
    page.goto(f"{server.url}/admin/registrants/{checked_in}")
    shot(page, "person-history")

    page.goto(f"{server.url}/admin/audit?who={ADMIN}")
    logged = page.locator("[data-testid=audit-entry]").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert Counter(logged) == Counter({
        "checkin.undo": 1, "mail.resend_ticket": 1, "ticket.rotate": 1, "registrant.cancel": 2, "seat.promote": 1,
        "registrant.restore": 1, "mail.resend_link": 1, "registrant.erase": 1}), logged
    shot(page, "audit")
    checked = run_flask(server.env, "seats", "check")
    assert checked.returncode == 0, checked.stdout

    # --- the exports open with correct Japanese --------------------------------------------------------------
    page.goto(server.url + "/admin/exports")
    shot(page, "exports")
    row = page.locator("[data-testid=exports] li").filter(has=page.locator('a[href="/admin/registrants.csv"]'))
    utf8 = download(page, row.get_by_role("link", name=ja("UTF-8 (CSV)")))
    assert utf8.startswith(b"\xef\xbb\xbf")
    text = utf8.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    [(everyone,)] = server.query("SELECT count(*) FROM registrants")
    assert len(rows) == everyone
    [(family, given, organization)] = server.query(
        "SELECT family_name, given_name, organization FROM registrants WHERE locale = 'ja'"
        " AND anonymised_at IS NULL ORDER BY id LIMIT 1")
    assert any((r["family_name"], r["given_name"], r["organization"]) == (family, given, organization) for r in rows)
    sjis = download(page, row.get_by_role("link", name=ja("Shift_JIS (CSV)")))
    assert sjis.decode("cp932") == text  # the same cells, every Japanese character kept

    # --- a door account gets 403 on every console page -------------------------------------------------------
    door = browser.new_context(locale="ja-JP")
    door_page = door.new_page()
    sign_in(door_page, server, DOOR)
    for path in ("/admin", "/admin/door-panel", "/admin/registrants", f"/admin/registrants/{holder}", "/admin/audit",
                 "/admin/exports", "/admin/reminders", "/admin/registrants.csv", "/admin/attendance"):
        assert door_page.goto(server.url + path).status == 403, path
    door.close()
    context.close()
    assert " 500 " not in server.errors() and "Traceback" not in server.errors()
