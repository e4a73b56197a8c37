"""The door page without a network (issue 13), in a real Chromium (Playwright) against a real gunicorn server.

The network fails in the two ways a venue's does: the browser goes offline (`context.set_offline`), or the server
goes away (the gunicorn process is stopped, connections are refused) and comes back on the same address and
database. The page was loaded while online and holds its local copy; it decides on its own (marked offline), keeps
the scans in its queue across a reload, and sends them once the server answers. The database then says what
happened: one scan row per scan (by nonce), in the order scanned, at the device's scan time.

One server and one browser serve the whole module (each test registers people of its own).
"""

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import RestartableServer, run_flask
from tests.test_browser import PHONE, ja
from tests.test_door_browser import (CHROMIUM_ARGS, UNKNOWN_CODE, Attendee, Watch, register_attendee, result,
                                     shot)

pytestmark = [pytest.mark.browser, pytest.mark.real_clock]

#: Long enough for a slow CI machine: the page refreshes its copy every few seconds and retries the same way.
WAIT = 30_000
#: What Chromium logs while the network is down (the page's requests fail; that is the point).
OFFLINE_ERRORS = r"Failed to load resource: net::ERR_(INTERNET_DISCONNECTED|CONNECTION_REFUSED|FAILED)"


@dataclass
class Staff:
    name: str
    password: str


DOOR_A = Staff("door-a", "a long password for door a")
DOOR_B = Staff("door-b", "a long password for door b")
ADMIN = Staff("admin-13", "a long password for the admin")


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module (no camera: the scanner is the keyboard)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def module_server(module_live_server) -> RestartableServer:
    """One gunicorn for the module, with two door staff and an admin."""
    server = module_live_server()
    for staff, role in ((DOOR_A, "door"), (DOOR_B, "door"), (ADMIN, "admin")):
        added = run_flask(server.env, "staff", "add", staff.name, "--role", role, "--password-stdin",
                          input=staff.password + "\n")
        assert added.returncode == 0, added.stderr
    return server


@pytest.fixture
def server(module_server: RestartableServer) -> Iterator[RestartableServer]:
    """The module's server, running at the start of each test and again after it (a test may stop it)."""
    module_server.start()
    logged = len(module_server.errors())
    yield module_server
    module_server.start()
    errors = module_server.errors()[logged:]  # this test's part of the log
    assert "Traceback" not in errors, errors[-5000:]


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    """Assertions wait up to WAIT in this module (the page works on intervals of seconds), then as before."""
    expect.set_options(timeout=WAIT)
    yield
    expect.set_options(timeout=None)


@pytest.fixture
def contexts(browser: Browser) -> Iterator:
    """New browser contexts (each one device), closed after the test."""
    made: list[BrowserContext] = []

    def new(phone: bool = False) -> BrowserContext:
        options = dict(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True) if phone else \
            dict(viewport={"width": 1280, "height": 900})
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", **options)
        context.set_default_timeout(WAIT)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


# --- helpers ---------------------------------------------------------------------------------------------

def door(page: Page):
    return page.locator("#door")


def sign_in(page: Page, server: RestartableServer, staff: Staff, gate: str) -> None:
    """Sign in at the door page, set the gate, and wait until the page can work without the server: its local copy
    is ready and a service worker controls it."""
    page.goto(server.url + "/door")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login\?next="))
    page.locator("#name").fill(staff.name)
    page.locator("#password").fill(staff.password)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name=ja("Sign in")).click()
    expect(page).to_have_url(server.url + "/door")
    expect(door(page)).to_have_attribute("data-ready", "true")
    gate_field = page.locator("#door-gate")
    gate_field.fill(gate)
    gate_field.press("Enter")
    expect(page.locator("#door-code")).to_be_focused()
    expect(door(page)).to_have_attribute("data-dataset", "ready")
    expect(door(page)).to_have_attribute("data-sw", "ready")
    expect(door(page)).to_have_attribute("data-connection", "online")
    expect(door(page)).to_have_attribute("data-queue", "0")


def scan(page: Page, code: str) -> None:
    """What a keyboard-wedge scanner does: type into the focused scanner field, then Enter."""
    expect(page.locator("#door-code")).to_be_focused()
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def offline_answer(page: Page, kind: str):
    """The answer on screen, of this kind, decided by the page on its own."""
    box = result(page, kind, timeout=WAIT)
    expect(box).to_have_attribute("data-offline", "true")
    expect(box).to_contain_text(ja("Offline: decided on this device"))
    return box


def dismiss(page: Page) -> None:
    page.get_by_test_id("result").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-kind", "")
    page.locator("#door-code").focus()


def waiting(page: Page, count: int) -> None:
    """The page is offline with this many scans in its queue, and says so."""
    expect(door(page)).to_have_attribute("data-connection", "offline", timeout=WAIT)
    expect(door(page)).to_have_attribute("data-queue", str(count), timeout=WAIT)
    expect(page.get_by_test_id("connection")).to_contain_text(
        ja("Offline: 1 scan waiting") if count == 1 else ja("Offline: %(count)s scans waiting", count=count))


def back_online(page: Page) -> None:
    """The page found the server again by itself and sent its whole queue."""
    expect(door(page)).to_have_attribute("data-connection", "online", timeout=WAIT)
    expect(door(page)).to_have_attribute("data-queue", "0", timeout=WAIT)
    expect(page.get_by_test_id("connection")).to_contain_text(ja("Online"))
    expect(page.get_by_test_id("connection")).not_to_contain_text(ja("Offline: 1 scan waiting"))


def sent_scans(page: Page) -> list[dict]:
    """Collect the bodies of the check-in requests the page sends from now on (whether they arrive or not)."""
    bodies: list[dict] = []

    def seen(request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/checkins"):
            bodies.append(json.loads(request.post_data))

    page.on("request", seen)
    return bodies


def admit_by_device(server: RestartableServer, code: str, gate: str) -> None:
    """Another door admits the ticket through the API with a device token."""
    token = run_flask(server.env, "staff", "token", DOOR_B.name, "--device", f"{gate}-phone")
    assert token.returncode == 0, token.stderr
    request = urllib.request.Request(
        server.url + "/api/v1/checkins", method="POST", data=json.dumps({"code": code, "gate": gate}).encode(),
        headers={"Authorization": f"Bearer {token.stdout.strip().splitlines()[-1]}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def last_scan_id(server: RestartableServer) -> int:
    return server.query("SELECT coalesce(max(id), 0) FROM scans")[0][0]


def scans_since(server: RestartableServer, scan_id: int) -> list:
    return server.query("SELECT nonce, code, result, offline_result, conflict, gate, at, received_at FROM scans"
                        f" WHERE id > {scan_id} ORDER BY id")


def registrant_id(server: RestartableServer, attendee: Attendee) -> int:
    [(number,)] = server.query(f"SELECT id FROM registrants WHERE ticket_code = '{attendee.code}'")
    return number


def standing_checkins(server: RestartableServer, attendee: Attendee) -> list:
    return server.query("SELECT gate, at, received_at FROM checkins WHERE undone_at IS NULL AND registrant_id = "
                        f"{registrant_id(server, attendee)}")


# --- 1. offline (browser or server): decide, search, reload, send once -----------------------------------

NETWORK_FAILURES = {
    # how the network fails: (person to admit, their kana, the same kana typed as hiragana and half-width katakana)
    "browser-offline": ("高橋", "三郎", "タカハシ", "サブロウ", "たかはし", "ﾀｶﾊｼ"),
    "server-stopped": ("渡辺", "五郎", "ワタナベ", "ゴロウ", "わたなべ", "ﾜﾀﾅﾍﾞ"),
}


@pytest.mark.parametrize("failure", list(NETWORK_FAILURES))
def test_offline_door_decides_searches_survives_a_reload_and_sends_each_scan_once(server, contexts, failure,
                                                                                   request):
    family, given, family_kana, given_kana, hiragana, half_width = NETWORK_FAILURES[failure]
    slug = failure.replace("-", "")
    person = register_attendee(server, family_name=family, given_name=given, family_name_kana=family_kana,
                               given_name_kana=given_kana, email=f"{slug}-1@example.jp", organization="オフライン株式会社")
    earlier = register_attendee(server, family_name="先着", given_name=given, email=f"{slug}-2@example.jp",
                                organization="先着株式会社")
    admit_by_device(server, earlier.code, "door-2")  # already in: the local copy knows it when the page loads

    phone = failure == "server-stopped"
    context = contexts(phone=phone)
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server, DOOR_A, "door-1")
    expect(page.get_by_test_id("connection")).to_be_visible()
    before = last_scan_id(server)
    sent = sent_scans(page)

    if failure == "browser-offline":
        context.set_offline(True)
    else:
        server.stop()

    # A valid code: green at once, marked offline, with the name.
    scan(page, person.code)
    answer = offline_answer(page, "ok")
    expect(answer).to_contain_text(person.name)
    shot(page, request, "offline-green")
    waiting(page, 1)
    dismiss(page)

    # A code nobody holds: red.
    scan(page, UNKNOWN_CODE)
    answer = offline_answer(page, "refused")
    expect(answer).to_contain_text(ja("Not a current ticket (unknown, cancelled or replaced). Search by name instead."))
    expect(answer).not_to_contain_text(person.name)
    shot(page, request, "offline-red")
    dismiss(page)

    # A ticket another door admitted before the network failed: amber, where it was admitted.
    scan(page, earlier.code)
    answer = offline_answer(page, "already")
    expect(answer).to_contain_text(earlier.name)
    expect(answer).to_contain_text("door-2")
    shot(page, request, "offline-amber")
    dismiss(page)
    waiting(page, 3)

    # Found by kana on the local copy, typed in hiragana or half-width katakana for a katakana name.
    search = page.locator("#door-search-input")
    people = page.get_by_test_id("search-results").locator("li")
    for typed in (hiragana, half_width, family_kana):
        search.fill(typed)
        expect(people).to_have_count(1)
        expect(people.first).to_contain_text(person.name)
        expect(page.locator("#door-search-status")).to_have_text(
            ja("%(count)s found in this device's list (offline)", count=1))
    shot(page, request, "offline-search")
    search.fill("")
    page.locator("#door-code").focus()

    # A reload while offline: the service worker serves the page, the queue is still there and still said.
    page.reload()
    expect(door(page)).to_have_attribute("data-ready", "true")
    expect(door(page)).to_have_attribute("data-dataset", "ready")
    waiting(page, 3)
    shot(page, request, "offline-waiting-after-reload")
    # ... and the copy still knows whom this page admitted before the reload.
    page.locator("#door-code").focus()
    scan(page, person.code)
    expect(offline_answer(page, "already")).to_contain_text(person.name)
    dismiss(page)
    waiting(page, 4)
    assert scans_since(server, before) == [], "nothing reached the server while it was unreachable"

    # The server is back: the page notices by itself and sends the queue, each scan once, in order.
    if failure == "browser-offline":
        context.set_offline(False)
    else:
        server.start()
    back_online(page)
    shot(page, request, "back-online")
    rows = scans_since(server, before)
    assert [(code, result_, offline) for _, code, result_, offline, *_ in rows] == [
        (person.code, "ok", "ok"),
        (UNKNOWN_CODE, "unknown_code", "unknown_code"),
        (earlier.code, "already_checked_in", "already_checked_in"),
        (person.code, "already_checked_in", "already_checked_in"),
    ]
    nonces = [row[0] for row in rows]
    assert len(set(nonces)) == 4 and set(nonces) == {body["nonce"] for body in sent}
    assert all(row[4] is None for row in rows), "no conflict: the page decided as the server would have"
    assert all(row[5] == "door-1" for row in rows)
    assert all(row[6] < row[7] for row in rows), "each scan carries when the door scanned it, before it arrived"
    assert [row[6] for row in rows] == sorted(row[6] for row in rows)
    [(gate, at, received_at)] = standing_checkins(server, person)
    assert gate == "door-1" and at == rows[0][6] and at < received_at
    [(gate, *_)] = standing_checkins(server, earlier)
    assert gate == "door-2"

    # Online again, the page asks the server: the answer is not marked offline.
    scan(page, UNKNOWN_CODE)
    answer = result(page, "refused", timeout=WAIT)
    expect(answer).not_to_have_attribute("data-offline", "true")
    back_online(page)
    watch.check(expected_errors=OFFLINE_ERRORS)


# --- 2. the same ticket twice at once, offline --------------------------------------------------------------

def test_a_double_tap_offline_admits_once_and_answers_amber(server, contexts, request):
    person = register_attendee(server, family_name="二度", given_name="押子", email="double@example.jp",
                               organization="連打株式会社")
    context = contexts(phone=True)
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server, DOOR_A, "door-1")
    before = last_scan_id(server)
    context.set_offline(True)

    scan(page, person.code)
    scan(page, person.code)  # at once, before anyone looked at the first answer
    answer = offline_answer(page, "already")
    expect(answer).to_contain_text(person.name)
    expect(answer).to_contain_text("door-1")
    waiting(page, 2)
    shot(page, request, "double-tap-amber")

    context.set_offline(False)
    back_online(page)
    rows = scans_since(server, before)
    assert [(code, result_, offline, conflict) for _, code, result_, offline, conflict, *_ in rows] == [
        (person.code, "ok", "ok", None), (person.code, "already_checked_in", "already_checked_in", None)]
    assert len(standing_checkins(server, person)) == 1
    watch.check(expected_errors=OFFLINE_ERRORS)


# --- 3. two devices offline admit one ticket: one admission, one conflict everyone sees ---------------------

def test_two_doors_offline_admitting_one_ticket_give_one_admission_and_a_visible_conflict(server, contexts, request):
    person = register_attendee(server, family_name="重複", given_name="入場", family_name_kana="チョウフク",
                               given_name_kana="ニュウジョウ", email="twice@example.jp", organization="二重株式会社")
    first_context, second_context = contexts(), contexts(phone=True)
    first, second = first_context.new_page(), second_context.new_page()
    watches = [Watch(first, server), Watch(second, server)]
    sign_in(first, server, DOOR_A, "door-1")
    sign_in(second, server, DOOR_B, "door-2")
    before = last_scan_id(server)

    # The venue's network fails for both; each door admits the same ticket on its own.
    first_context.set_offline(True)
    second_context.set_offline(True)
    scan(first, person.code)
    expect(offline_answer(first, "ok")).to_contain_text(person.name)
    scan(second, person.code)
    expect(offline_answer(second, "ok")).to_contain_text(person.name)
    shot(second, request, "second-door-offline-green")
    waiting(first, 1)
    waiting(second, 1)
    dismiss(first)
    dismiss(second)

    # Back online one after the other: the first to arrive is the admission, the other a conflict.
    first_context.set_offline(False)
    back_online(first)
    second_context.set_offline(False)
    back_online(second)
    rows = scans_since(server, before)
    assert [(gate, result_, offline, conflict) for _, _, result_, offline, conflict, gate, *_ in rows] == [
        ("door-1", "ok", "ok", None), ("door-2", "already_checked_in", "ok", "admitted_twice")]
    [(gate, at, _)] = standing_checkins(server, person)
    assert gate == "door-1" and at == rows[0][6]

    # Both doors show it: who, and at which gates.
    for page in (first, second):
        conflicts = page.get_by_test_id("door-conflicts")
        expect(conflicts).to_be_visible(timeout=WAIT)
        expect(conflicts).to_contain_text(person.name, timeout=WAIT)
        expect(conflicts).to_contain_text("door-1")
        expect(conflicts).to_contain_text("door-2")
    shot(first, request, "conflict-first-door")
    shot(second, request, "conflict-second-door")

    # And the console.
    admin = contexts().new_page()
    admin.goto(server.url + "/login")
    admin.locator("#name").fill(ADMIN.name)
    admin.locator("#password").fill(ADMIN.password)
    with admin.expect_navigation():
        admin.locator("main").get_by_role("button", name=ja("Sign in")).click()
    admin.goto(server.url + "/admin")
    item = admin.get_by_test_id("door-conflicts").get_by_test_id("conflict").filter(has_text=person.name)
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-kind", "admitted_twice")
    expect(item.get_by_test_id("conflict-admission")).to_contain_text("door-1")
    expect(item.get_by_test_id("conflict-scan")).to_contain_text("door-2")
    shot(admin, request, "conflict-console")

    # Staff dealt with it: it leaves the console and both doors.
    with admin.expect_navigation():
        item.get_by_role("button").click()
    expect(admin.get_by_test_id("door-conflicts").get_by_test_id("conflict").filter(has_text=person.name)) \
        .to_have_count(0)
    assert server.query("SELECT count(*) FROM scans WHERE conflict IS NOT NULL AND conflict_resolved_at IS NULL"
                        f" AND registrant_id = {registrant_id(server, person)}") == [(0,)]
    for page in (first, second):
        expect(page.get_by_test_id("door-conflicts").filter(has_text=person.name)).to_have_count(0, timeout=WAIT)
    for watch in watches:
        watch.check(expected_errors=OFFLINE_ERRORS)


# --- 4. two tabs of one browser, offline: an admission in one is "already checked in" in the other ------------

def test_two_tabs_of_one_browser_offline_admit_a_ticket_once(server, contexts, request):
    person = register_attendee(server, family_name="二窓", given_name="花子", email="two-tabs@example.jp",
                               organization="タブ株式会社")
    context = contexts()
    first = context.new_page()
    watches = [Watch(first, server)]
    sign_in(first, server, DOOR_A, "door-1")
    second = context.new_page()  # the same browser, the same session: a second door tab
    watches.append(Watch(second, server))
    second.goto(server.url + "/door")
    for page in (first, second):
        expect(door(page)).to_have_attribute("data-dataset", "ready")
        expect(door(page)).to_have_attribute("data-sw", "ready")
    before = last_scan_id(server)

    context.set_offline(True)
    first.bring_to_front()
    first.locator("#door-code").focus()
    scan(first, person.code)
    expect(offline_answer(first, "ok")).to_contain_text(person.name)
    second.bring_to_front()
    second.locator("#door-code").focus()
    scan(second, person.code)
    answer = offline_answer(second, "already")
    expect(answer).to_contain_text(person.name)
    expect(answer).to_contain_text("door-1")
    shot(second, request, "second-tab-amber")
    waiting(second, 2)

    context.set_offline(False)
    back_online(first)
    back_online(second)
    rows = scans_since(server, before)
    assert [(code, result_, offline, conflict) for _, code, result_, offline, conflict, *_ in rows] == [
        (person.code, "ok", "ok", None), (person.code, "already_checked_in", "already_checked_in", None)]
    assert len(standing_checkins(server, person)) == 1
    for watch in watches:
        watch.check(expected_errors=OFFLINE_ERRORS)
