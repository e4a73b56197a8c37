"""The door page (/door) in a real Chromium (Playwright) against real gunicorn servers, as door staff use it.

Attendees register through the registration form; their ticket QR code (the PNG the personal page shows) is
decoded with a real decoder and turned into a fake camera stream (a y4m made with ffmpeg) that Chromium plays
to the page as its webcam. The keyboard-wedge scanner is the keyboard: it types the code, then Enter.
Texts are looked up in the compiled Japanese catalog with `ja()`, exactly as the app shows them.
"""

import io
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect, sync_playwright

from registration import tickets
from tests.conftest import Browserless, LiveServer, form_data, run_flask
from tests.test_browser import PHONE, SCREENSHOTS, ja, no_horizontal_scroll

pytestmark = pytest.mark.browser

STAFF, PASSWORD = "door1", "a long password 123"
UNKNOWN_CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the shape of a ticket code, but nobody's
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# --- helpers ---------------------------------------------------------------------------------------------

@dataclass
class Attendee:
    name: str
    organization: str
    personal_url: str
    code: str | None = None
    qr_png: bytes | None = None
    details: dict | None = None  # as the registration form was filled in


def register_attendee(server: LiveServer, *, family_name: str, given_name: str, email: str,
                      organization: str, family_name_kana: str = "", given_name_kana: str = "",
                      attend_closing: bool = True, language: str = "ja") -> Attendee:
    """Register through the form as a visitor does (whose browser asks for `language`); for a confirmed seat, fetch
    and decode the ticket's QR code."""
    visitor = Browserless(server.url)
    visitor.opener.addheaders.append(("Accept-Language", language))
    data = form_data(family_name=family_name, given_name=given_name, email=email, organization=organization,
                     family_name_kana=family_name_kana, given_name_kana=given_name_kana,
                     attend_closing="y" if attend_closing else None, csrf_token=visitor.csrf_token("/register"))
    location = post_for_redirect(visitor, "/register", data)
    match = re.fullmatch(r"(/me/[A-Za-z0-9_-]+)/welcome", location)
    assert match, location
    attendee = Attendee(name=f"{family_name} {given_name}", organization=organization,
                        personal_url=server.url + match.group(1),
                        details={k: v for k, v in data.items() if k not in ("csrf_token", "consent")})
    if attend_closing:
        page = visitor.get(match.group(1))
        shown = re.search(r'data-testid="ticket-code">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
        with visitor.opener.open(attendee.personal_url + "/ticket.png", timeout=30) as response:
            assert response.headers["Content-Type"] == "image/png"
            attendee.qr_png = response.read()
        [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(attendee.qr_png)))
        assert decoded.format == zxingcpp.BarcodeFormat.QRCode
        assert decoded.text == shown, "the QR code must encode exactly the code shown for manual entry"
        attendee.code = decoded.text
    return attendee


def post_for_redirect(client: Browserless, path: str, data: dict) -> str:
    """POST a form and return the Location of its 303 (the client does not follow redirects)."""
    body = urllib.parse.urlencode(data).encode()
    with pytest.raises(urllib.error.HTTPError) as caught:
        client.opener.open(client.base + path, data=body, timeout=60)
    redirect = caught.value
    redirect.close()
    assert redirect.code == 303, redirect.code
    return redirect.headers["Location"].removeprefix(client.base)


def cancel_registration(server: LiveServer, attendee: Attendee) -> None:
    """Cancel through the personal page's cancel form, as the attendee would."""
    visitor = Browserless(server.url)
    path = attendee.personal_url.removeprefix(server.url) + "/cancel"
    post_for_redirect(visitor, path, {"csrf_token": visitor.csrf_token(path)})


def set_closing(server: LiveServer, attendee: Attendee, attend: bool) -> None:
    """Tick or untick the closing event on the personal page, as the attendee would."""
    visitor = Browserless(server.url)
    path = attendee.personal_url.removeprefix(server.url)
    data = {**attendee.details, "csrf_token": visitor.csrf_token(path)}
    data.pop("attend_closing", None)
    if attend:
        data["attend_closing"] = "y"
    post_for_redirect(visitor, path, data)


def current_code(server: LiveServer, attendee: Attendee) -> str:
    """The ticket code the personal page shows now."""
    page = Browserless(server.url).get(attendee.personal_url.removeprefix(server.url))
    return re.search(r'data-testid="ticket-code">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")


def replace_ticket(server: LiveServer, attendee: Attendee) -> None:
    """An admin replaces the person's ticket code at /admin (the old code then answers "replaced")."""
    name, password = "admin1", "an admin password 123"
    added = run_flask(server.env, "staff", "add", name, "--role", "admin", "--password-stdin", input=password + "\n")
    assert added.returncode == 0, added.stderr
    admin = Browserless(server.url)
    post_for_redirect(admin, "/login", {"name": name, "password": password, "csrf_token": admin.csrf_token("/login")})
    email = attendee.details["email"]
    [person] = json.loads(admin.get(f"/api/v1/registrants?q={urllib.parse.quote(email)}"))["results"]
    confirmation = admin.get(f"/admin/registrants/{person['registrant_id']}?confirm=rotate")
    ticket = re.search(r'name="ticket" value="(\d+)"', confirmation).group(1)
    post_for_redirect(admin, f"/admin/registrants/{person['registrant_id']}/rotate-ticket",
                      {"csrf_token": admin.csrf_token("/admin"), "ticket": ticket})


def camera_file(png: bytes, folder: Path) -> Path:
    """A 1 s y4m of the QR code on a white 640x480 frame, which Chromium loops as its fake webcam."""
    folder.mkdir(parents=True, exist_ok=True)
    source, video = folder / "qr.png", folder / "qr.y4m"
    source.write_bytes(png)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(source), "-vf",
                    "scale=300:300:flags=neighbor,pad=640:480:(ow-iw)/2:(oh-ih)/2:white,format=yuv420p",
                    "-t", "1", "-r", "30", str(video)], check=True, timeout=60)
    return video


def add_door_staff(server: LiveServer) -> None:
    added = run_flask(server.env, "staff", "add", STAFF, "--role", "door", "--password-stdin", input=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr



class Watch:
    """What the page did behind the scenes: script errors, CSP violations, requests to other hosts."""

    #: Chromium logs every 4xx it receives; these are the API's answers (refusals, 401) and the missing favicon.
    EXPECTED = re.compile(r"/api/v1/checkins$|/favicon\.ico$")

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"{error}"))
        page.on("console", self.console)
        page.on("request", lambda request: None if request.url.startswith((server.url, "data:", "blob:"))
                else self.foreign.append(request.url))

    def console(self, message) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not (message.text.startswith("Failed to load resource")
                                            and self.EXPECTED.search(url)):
            self.errors.append(f"{message.text} ({url})")

    def check(self, *, expected_errors: str | None = None) -> None:
        errors = [e for e in self.errors if not (expected_errors and re.search(expected_errors, e))]
        assert errors == [], errors
        assert self.foreign == [], f"the door page must use no other host (no CDN): {self.foreign}"


def shot(page: Page, request: pytest.FixtureRequest, step: str, *, full_page: bool = False) -> None:
    """A screenshot of what the screen shows (the answer covers it) at test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{step}.png"), full_page=full_page)


def sign_in(page: Page, server: LiveServer) -> None:
    """Sign in as door staff; the sign-in leads to the door page."""
    page.goto(server.url + "/door")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login\?next="))
    page.locator("#name").fill(STAFF)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name=ja("Sign in")).click()
    expect(page).to_have_url(server.url + "/door")
    expect(page.locator("#door")).to_have_attribute("data-ready", "true")


def scan_with_wedge(page: Page, code: str, *, focused: bool = True) -> None:
    """What a keyboard-wedge scanner does: type into whatever has the focus, then Enter."""
    if focused:
        expect(page.locator("#door-code")).to_be_focused()
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def result(page: Page, kind: str, timeout: float = 10_000):
    """The answer on screen, of this kind (ok, already, refused, error)."""
    box = page.get_by_test_id("result")
    expect(box).to_have_attribute("data-kind", kind, timeout=timeout)
    return box


def dismiss(page: Page) -> None:
    page.get_by_test_id("result").click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-kind", "")


def counter(page: Page):
    return page.get_by_test_id("counter")


def api_stats(page: Page) -> dict:
    """GET /api/v1/stats with the page's own session."""
    response = page.request.get(page.url.split("/door")[0] + "/api/v1/stats")
    assert response.status == 200
    return response.json()


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch(playwright: Playwright) -> Iterator:
    """Launch Chromium, with a fake camera playing a y4m file when given one (a camera is per browser)."""
    browsers: list[Browser] = []

    def start(camera: Path | None = None) -> Browser:
        args = list(CHROMIUM_ARGS)
        if camera is not None:
            args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-video-capture={camera}"]
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        browsers.append(browser)
        return browser

    yield start
    for browser in browsers:
        browser.close()


def desktop(browser: Browser) -> BrowserContext:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    return context


# --- 1. camera, scanner, undo ----------------------------------------------------------------------------

@pytest.mark.browser
def test_camera_scan_counts_once_then_wedge_amber_unknown_red_and_undo(live_server, launch, tmp_path, request):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    context = desktop(launch(camera_file(taro.qr_png, tmp_path)))
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    door = page.locator("#door")
    expect(door).to_have_attribute("data-decoder", "zxing")  # no BarcodeDetector on Linux: the self-hosted wasm
    # One confirmed seat; the fake camera may already have scanned the ticket by now.
    expect(counter(page)).to_have_text(re.compile(r"^[01] / 1$"))

    # The fake camera shows the ticket: green, with the name and organisation, within a few seconds.
    answer = result(page, "ok", timeout=8_000)
    expect(answer).to_contain_text(ja("OK"))
    expect(answer).to_contain_text("山田 太郎")
    expect(answer).to_contain_text("例示株式会社")
    expect(door).to_have_attribute("data-camera", "on")
    shot(page, request, "green")
    expect(counter(page)).to_have_text("1 / 1")

    # The code stays in front of the camera for more than the quiet time: still one check-in, one scan sent.
    time.sleep(4)
    expect(answer).to_have_attribute("data-kind", "ok")
    assert api_stats(page)["checked_in"] == 1
    assert server.query("SELECT count(*) FROM checkins") == [(1,)]
    assert server.query("SELECT result, gate FROM scans") == [("ok", "door-1")]

    # The same code through the keyboard-wedge field (the next scan replaces the answer): amber, when and where.
    scan_with_wedge(page, taro.code.lower())
    answer = result(page, "already")
    expect(answer).to_contain_text(ja("Already checked in"))
    expect(answer).to_contain_text(re.compile(r"\d\d:\d\d"))
    expect(answer).to_contain_text("door-1")
    expect(answer).to_contain_text(STAFF)
    expect(answer).to_contain_text("山田 太郎")
    shot(page, request, "amber")

    # An unknown code: red.
    scan_with_wedge(page, UNKNOWN_CODE)
    answer = result(page, "refused")
    expect(answer).to_contain_text(ja("Unknown code"))
    expect(answer).not_to_contain_text("山田 太郎")
    shot(page, request, "red-unknown")
    expect(page.locator("#door-code")).to_be_focused()
    dismiss(page)
    expect(page.locator("#door-code")).to_be_focused()

    # Undo the last check-in, after a confirmation; the counter goes down without a reload.
    page.get_by_role("button", name=ja("Undo last check-in")).click()
    dialog = page.locator("#door-undo-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("山田 太郎")
    shot(page, request, "undo-confirm")
    dialog.get_by_role("button", name=ja("Yes, undo the check-in")).click()
    expect(counter(page)).to_have_text("0 / 1")
    expect(page.locator("#door-undone")).to_contain_text("山田 太郎")
    expect(page.get_by_role("button", name=ja("Undo last check-in"))).to_be_hidden()
    assert api_stats(page)["checked_in"] == 0
    [(undone_at,)] = server.query("SELECT undone_at FROM checkins")
    assert undone_at is not None
    # The ticket still held up to the camera is not admitted again by itself.
    time.sleep(1)
    scans = server.query("SELECT result FROM scans ORDER BY id")
    assert scans == [("ok",), ("already_checked_in",), ("unknown_code",)]
    watch.check()
    context.close()


# --- 2. no camera: cancelled codes, manual search, the live counter, failures ----------------------------

@pytest.mark.browser
def test_search_cancelled_and_absent_people_live_counter_and_failures(live_server, launch, request):
    server = live_server()
    add_door_staff(server)
    hanako = register_attendee(server, family_name="佐藤", given_name="花子", email="hanako@example.jp",
                               organization="取消株式会社", family_name_kana="サトウ", given_name_kana="ハナコ")
    register_attendee(server, family_name="鈴木", given_name="次郎", email="jiro@example.jp",
                             organization="不参加合同会社", family_name_kana="スズキ", given_name_kana="ジロウ",
                             attend_closing=False)
    saburo = register_attendee(server, family_name="高橋", given_name="三郎", email="saburo@example.jp",
                               organization="参加株式会社", family_name_kana="タカハシ", given_name_kana="サブロウ")
    walkin = register_attendee(server, family_name="田中", given_name="四郎", email="shiro@example.jp",
                               organization="別の会場株式会社")
    cancel_registration(server, hanako)

    context = desktop(launch())  # this browser has no camera at all
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    expect(page.locator("#door-camera-status")).to_have_text(ja("No camera: use the scanner field or search by name."))
    expect(counter(page)).to_have_text("0 / 2")

    # Another door checks someone in through the API: this page's counter follows without a reload.
    token = run_flask(server.env, "staff", "token", STAFF, "--device", "door-2-phone").stdout.strip().splitlines()[-1]
    api = urllib.request.Request(server.url + "/api/v1/checkins", method="POST",
                                 data=json.dumps({"code": walkin.code, "gate": "door-2"}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(api, timeout=30) as response:
        assert response.status == 201
    expect(counter(page)).to_have_text("1 / 2", timeout=8_000)

    # The cancelled person's old code: red, with the reason and whose code it was.
    scan_with_wedge(page, hanako.code)
    answer = result(page, "refused")
    expect(answer).to_contain_text(ja("Registration cancelled"))
    expect(answer).to_contain_text("佐藤 花子")
    shot(page, request, "red-cancelled")
    expect(page.locator("#door-code")).to_be_focused()
    dismiss(page)

    # Found by name instead: listed as cancelled, with no button that would look like a way in.
    search = page.locator("#door-search-input")
    search.fill("佐藤")
    people = page.get_by_test_id("search-results").locator("li")
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("佐藤 花子")
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Cancelled"))
    expect(people.first.get_by_role("button")).to_have_count(0)
    shot(page, request, "search")

    # Registered, but not for the closing event: found by organisation; no button either.
    search.fill("不参加")
    expect(people).to_have_count(1)
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Not attending the closing event"))
    expect(people.first.get_by_role("button")).to_have_count(0)

    # Someone who lost their mail: found by kana, checked in with the button, then listed as checked in.
    search.fill("タカハシ")
    expect(people).to_have_count(1)
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Seat confirmed"))
    people.first.get_by_role("button", name=ja("Check in")).click()
    expect(result(page, "ok")).to_contain_text("高橋 三郎")
    expect(counter(page)).to_have_text("2 / 2")
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Checked in"))
    dismiss(page)
    search.fill("saburo@example")
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("高橋 三郎")
    assert server.query("SELECT count(*) FROM checkins WHERE undone_at IS NULL") == [(2,)]

    # The scanner fires while the search box has the focus: still a scan, and the scanner gets its field back.
    expect(search).to_be_focused()
    page.keyboard.type(saburo.code, delay=5)
    page.keyboard.press("Enter")
    expect(result(page, "already")).to_contain_text("高橋 三郎")
    expect(search).to_have_value("saburo@example")  # the search text stays, without the code
    expect(page.locator("#door-code")).to_be_focused()
    dismiss(page)

    # The network fails: the page decides from its local copy at once (Saburo is inside: amber), marked offline, and
    # keeps the scan; it sends it by itself once the server answers, and the next scan goes online again.
    door = page.locator("#door")
    expect(door).to_have_attribute("data-dataset", "ready")
    page.route("**/api/v1/checkins", lambda route: route.abort("internetdisconnected"))
    scan_with_wedge(page, saburo.code)
    answer = result(page, "already")
    expect(answer).to_have_attribute("data-offline", "true")
    expect(answer).to_contain_text(ja("Offline: decided on this device"))
    expect(answer).to_contain_text("高橋 三郎")
    expect(answer).to_contain_text("door-1")
    expect(door).to_have_attribute("data-queue", "1")
    shot(page, request, "offline-amber")
    page.unroute("**/api/v1/checkins")
    expect(door).to_have_attribute("data-queue", "0", timeout=10_000)
    expect(door).to_have_attribute("data-connection", "online")
    assert server.query("SELECT result, offline_result FROM scans WHERE offline_result IS NOT NULL") == [
        ("already_checked_in", "already_checked_in")]
    dismiss(page)
    scan_with_wedge(page, saburo.code)
    answer = result(page, "already")
    expect(answer).to_contain_text("高橋 三郎")
    expect(answer).not_to_have_attribute("data-offline", "true")

    # The session ends (signed out elsewhere, or expired): the page says so, with a way to sign in again.
    context.clear_cookies()
    scan_with_wedge(page, saburo.code)
    answer = result(page, "error")
    expect(answer).to_contain_text(ja("Your session has expired."))
    link = answer.get_by_role("link", name=ja("Sign in again"))
    expect(link).to_have_attribute("href", "/login?next=/door")
    shot(page, request, "session-expired")
    with page.expect_navigation():
        link.click()
    expect(page).to_have_url(server.url + "/login?next=/door")
    watch.check(expected_errors=r"^Failed to load resource: (net::ERR_INTERNET_DISCONNECTED|.* status of 401 )"
                                r".*/api/v1/")
    context.close()


# --- 3. a phone in one hand ------------------------------------------------------------------------------

@pytest.mark.browser
def test_phone_gate_and_latency_of_the_previous_scan(live_server, launch, tmp_path, request):
    server = live_server()
    add_door_staff(server)
    people = [register_attendee(server, family_name="伊藤", given_name=given, email=f"{given_en}@example.jp",
                                organization="携帯株式会社")
              for given, given_en in (("一郎", "ichiro"), ("二郎", "jiro"), ("三郎", "saburo"))]
    browser = launch(camera_file(people[0].qr_png, tmp_path))
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(10_000)
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)

    # The camera is on by default: the first ticket is admitted through it.
    expect(result(page, "ok", timeout=8_000)).to_contain_text("伊藤 一郎")
    shot(page, request, "phone-green")
    page.get_by_test_id("result").tap()
    expect(page.get_by_test_id("result")).to_have_attribute("data-kind", "")

    # No on-screen keyboard pops up for the scanner field; big enough targets; nothing wider than the phone.
    expect(page.locator("#door-code")).to_have_attribute("inputmode", "none")
    expect(page.locator("#door-code")).to_be_focused()
    no_horizontal_scroll(page)
    for button in page.locator("#door button:visible").all():
        box = button.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 48, (button.inner_text(), box)
    shot(page, request, "phone")
    shot(page, request, "phone-whole", full_page=True)

    # This phone is the second door: typed once, then back to scanning.
    gate = page.locator("#door-gate")
    gate.fill("door-2")
    gate.press("Enter")
    expect(page.locator("#door-code")).to_be_focused()

    # Two scans: each carries how long the previous one took, from the code in the camera (or the Enter key)
    # to the answer on screen.
    scan_with_wedge(page, people[1].code)
    expect(result(page, "ok")).to_contain_text("伊藤 二郎")
    expect(counter(page)).to_have_text("2 / 3")
    page.get_by_test_id("result").tap()
    page.get_by_role("button", name=ja("Stop camera")).tap()
    expect(page.locator("#door")).to_have_attribute("data-camera", "off")
    page.get_by_role("button", name=ja("Sign out")).focus()  # say, someone tabbed there
    scan_with_wedge(page, people[1].code, focused=False)  # the scanner's keys still reach the field
    answer = result(page, "already")
    expect(answer).to_contain_text("door-2")
    no_horizontal_scroll(page)
    shot(page, request, "phone-amber")

    rows = server.query("SELECT result, gate, previous_latency_ms FROM scans ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [("ok", "door-1"), ("ok", "door-2"), ("already_checked_in", "door-2")]
    assert rows[0][2] is None, "the first scan has no previous one"
    for row in rows[1:]:
        assert row[2] is not None and 0 <= row[2] < 5_000, rows
    assert server.query("SELECT gate FROM checkins ORDER BY id") == [("door-1",), ("door-2",)]

    # The gate and the camera's off switch are kept on this device.
    page.reload()
    expect(page.locator("#door")).to_have_attribute("data-ready", "true")
    expect(gate).to_have_value("door-2")
    expect(page.locator("#door-camera-status")).to_have_text(ja("Camera off"))
    expect(page.locator("#door")).not_to_have_attribute("data-camera", "on")
    no_horizontal_scroll(page)
    shot(page, request, "phone-camera-off")

    # The venue network fails: the phone decides from its local copy, says so, and counts what waits to be sent.
    door = page.locator("#door")
    expect(door).to_have_attribute("data-dataset", "ready")
    context.set_offline(True)
    scan_with_wedge(page, people[2].code)
    answer = result(page, "ok")
    expect(answer).to_have_attribute("data-offline", "true")
    expect(answer).to_contain_text(ja("Offline: decided on this device"))
    expect(answer).to_contain_text("伊藤 三郎")
    no_horizontal_scroll(page)
    shot(page, request, "phone-offline-green")
    page.get_by_test_id("result").tap()
    expect(door).to_have_attribute("data-queue", "1")
    expect(door).to_have_attribute("data-connection", "offline")
    expect(page.get_by_test_id("connection")).to_contain_text(ja("Offline: 1 scan waiting"))
    expect(counter(page)).to_have_text("3 / 3")  # counted from the local copy
    no_horizontal_scroll(page)
    shot(page, request, "phone-offline-waiting", full_page=True)

    # Meanwhile another door, online, admitted the same ticket. When the phone's scan arrives, the server keeps
    # the first admission, records both, and the phone shows the conflict: who, which gates, which times.
    token = run_flask(server.env, "staff", "token", STAFF, "--device", "door-3-phone").stdout.strip().splitlines()[-1]
    other_door = urllib.request.Request(
        server.url + "/api/v1/checkins", method="POST",
        data=json.dumps({"code": people[2].code, "gate": "door-3"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(other_door, timeout=30) as response:
        assert response.status == 201
    context.set_offline(False)
    expect(door).to_have_attribute("data-queue", "0", timeout=15_000)
    expect(door).to_have_attribute("data-connection", "online")
    conflicts = page.get_by_test_id("door-conflicts")
    expect(conflicts).to_be_visible(timeout=10_000)
    expect(conflicts).to_contain_text("伊藤 三郎")
    expect(conflicts).to_contain_text(ja("Admitted twice while offline"))
    expect(conflicts).to_contain_text("door-3")  # the admission that counts
    expect(conflicts).to_contain_text("door-2")  # this phone's scan
    assert server.query("SELECT gate, offline_result, conflict FROM scans WHERE conflict IS NOT NULL") == [
        ("door-2", "ok", "admitted_twice")]
    assert server.query("SELECT count(*) FROM checkins WHERE undone_at IS NULL") == [(3,)]
    no_horizontal_scroll(page)
    shot(page, request, "phone-conflict", full_page=True)
    watch.check(expected_errors=r"^Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    context.close()


# --- 4. codes that no longer admit: red with the reason, by camera and by typing -------------------------

REFUSALS = {  # reason -> the headline the door shows
    "cancelled": "Registration cancelled",
    "waitlisted": "On the waiting list: no seat",
    "no_ticket": "Not registered for the closing event",
    "replaced": "This code was replaced by a newer ticket",
}


@pytest.mark.browser
def test_codes_that_no_longer_admit_are_red_with_the_reason(live_server, launch, tmp_path, request):
    server = live_server(CLOSING_CAPACITY="2")
    add_door_staff(server)

    def attendee(family_name, given_name, email, kana):
        return register_attendee(server, family_name=family_name, given_name=given_name, email=email,
                                 organization=f"{family_name}株式会社", family_name_kana=kana, given_name_kana="ハナコ")

    # Each of these held a seat and so a ticket; then each code stopped admitting, for its own reason.
    hanako = attendee("佐藤", "花子", "hanako@example.jp", "サトウ")
    cancel_registration(server, hanako)  # cancelled
    goro = attendee("伊藤", "五郎", "goro@example.jp", "イトウ")
    set_closing(server, goro, False)  # no longer coming to the closing event
    jiro = attendee("鈴木", "次郎", "jiro@example.jp", "スズキ")
    set_closing(server, jiro, False)
    taro = attendee("山田", "太郎", "taro@example.jp", "ヤマダ")
    saburo = attendee("高橋", "三郎", "saburo@example.jp", "タカハシ")  # the two seats are taken now
    set_closing(server, jiro, True)  # coming again after all: the waiting list
    replace_ticket(server, saburo)  # a leaked code, replaced by an admin
    retired = {"cancelled": hanako, "waitlisted": jiro, "no_ticket": goro, "replaced": saburo}
    assert current_code(server, saburo) != saburo.code

    # The fake camera shows each old ticket to a door page of its own: red, the reason, and whose code it was.
    for reason, person in retired.items():
        context = desktop(launch(camera_file(person.qr_png, tmp_path / reason)))
        page = context.new_page()
        watch = Watch(page, server)
        sign_in(page, server)
        answer = result(page, "refused", timeout=8_000)
        expect(answer).to_contain_text(ja(REFUSALS[reason]))
        expect(answer).to_contain_text(ja("Not admitted"))
        expect(answer).to_contain_text(person.name)
        expect(page.locator("#door")).to_have_attribute("data-camera", "on")
        shot(page, request, f"camera-{reason}")
        watch.check()
        context.close()

    # Typed (or a handheld scanner): the same answers; the seat holders' current codes admit.
    context = desktop(launch())
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    for reason, person in retired.items():
        scan_with_wedge(page, person.code)
        answer = result(page, "refused")
        expect(answer).to_contain_text(ja(REFUSALS[reason]))
        expect(answer).to_contain_text(person.name)
        shot(page, request, f"typed-{reason}")
        dismiss(page)
    scan_with_wedge(page, current_code(server, saburo))
    expect(result(page, "ok")).to_contain_text("高橋 三郎")
    dismiss(page)
    scan_with_wedge(page, taro.code)
    expect(result(page, "ok")).to_contain_text("山田 太郎")
    dismiss(page)

    # Search shows who may enter: the waiting person has no button; a person checked in who then cancelled is
    # not a plain "checked in", and has no button either.
    search = page.locator("#door-search-input")
    people = page.get_by_test_id("search-results").locator("li")
    search.fill("スズキ")
    expect(people).to_have_count(1)
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Waiting list"))
    expect(people.first.get_by_role("button")).to_have_count(0)
    cancel_registration(server, taro)
    search.fill("ヤマダ")
    expect(people).to_have_count(1)
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Checked in, then cancelled"))
    expect(people.first).to_contain_text("door-1")
    expect(people.first.get_by_role("button")).to_have_count(0)
    shot(page, request, "search-checked-in-then-cancelled")
    search.fill("タカハシ")
    expect(people).to_have_count(1)
    expect(people.first.get_by_test_id("person-status")).to_have_text(ja("Checked in"))
    expect(people.first.get_by_role("button", name=ja("Check in %(name)s", name="高橋 三郎"))).to_be_visible()
    scan_with_wedge(page, taro.code, focused=False)  # the scanner's keys still reach the field
    expect(result(page, "refused")).to_contain_text(ja("Registration cancelled"))
    assert [row[0] for row in server.query("SELECT reason FROM scans WHERE result = 'not_admitted' ORDER BY id")] \
        == list(retired) * 2 + ["cancelled"]
    watch.check()
    context.close()


# --- 5. undo from any amber answer; no answer: decided offline, sent again with the same nonce -------------

@pytest.mark.browser
def test_amber_answers_can_be_undone_and_unanswered_scans_are_decided_offline_and_resent(live_server, launch, tmp_path,
                                                                                        request):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    jiro = register_attendee(server, family_name="鈴木", given_name="次郎", email="jiro@example.jp",
                             organization="再送株式会社")
    saburo = register_attendee(server, family_name="高橋", given_name="三郎", email="saburo@example.jp",
                               organization="中止株式会社")
    shiro = register_attendee(server, family_name="田中", given_name="四郎", email="shiro@example.jp",
                              organization="遅延株式会社")

    # Another door admitted Taro (a device through the API): this page has never admitted him.
    token = run_flask(server.env, "staff", "token", STAFF, "--device", "door-2-phone").stdout.strip().splitlines()[-1]
    api = urllib.request.Request(server.url + "/api/v1/checkins", method="POST",
                                 data=json.dumps({"code": taro.code, "gate": "door-2"}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(api, timeout=30) as response:
        assert response.status == 201

    # The camera shows his ticket: amber, where and by whom, with a button to undo that check-in.
    context = desktop(launch(camera_file(taro.qr_png, tmp_path)))
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    answer = result(page, "already", timeout=8_000)
    expect(answer).to_contain_text("door-2")
    expect(answer).to_contain_text("山田 太郎")
    expect(page.get_by_role("button", name=ja("Undo last check-in"))).to_be_hidden()  # not this page's admission
    undo = answer.get_by_role("button", name=ja("Undo this check-in"))
    shot(page, request, "amber-with-undo")
    undo.click()
    dialog = page.locator("#door-undo-dialog")
    expect(dialog).to_contain_text("山田 太郎")
    dialog.get_by_role("button", name=ja("No, keep it")).click()  # asked first: nothing happens without a yes
    expect(answer).to_have_attribute("data-kind", "already")
    assert server.query("SELECT count(*) FROM checkins WHERE undone_at IS NULL") == [(1,)]
    undo.click()
    dialog.get_by_role("button", name=ja("Yes, undo the check-in")).click()
    expect(page.get_by_test_id("result")).to_have_attribute("data-kind", "")
    expect(page.locator("#door-undone")).to_contain_text("山田 太郎")
    expect(counter(page)).to_have_text("0 / 4")
    assert server.query("SELECT count(*) FROM checkins WHERE undone_at IS NULL") == [(0,)]
    # The ticket still in front of the camera is not admitted again by itself; scanned on purpose, it is.
    time.sleep(1)
    expect(page.get_by_test_id("result")).to_have_attribute("data-kind", "")
    scan_with_wedge(page, taro.code)
    expect(result(page, "ok")).to_contain_text("山田 太郎")
    expect(counter(page)).to_have_text("1 / 4")
    dismiss(page)

    # The server fails: the first answer is lost on the way back (it was decided), then two errors without one.
    # The page decides from its local copy at once (green, marked offline) and sends the same scan (the same nonce,
    # now with its scan time and what the door decided) again until the server answers: nothing is decided twice.
    door = page.locator("#door")
    expect(door).to_have_attribute("data-dataset", "ready")
    sent = []

    def flaky(route):
        sent.append(json.loads(route.request.post_data))
        if len(sent) == 1:
            route.fetch()  # the server admits ...
            route.fulfill(status=502, content_type="text/html", body="<h1>Bad Gateway</h1>")  # ... the answer is lost
        elif len(sent) == 2:
            route.fulfill(status=500, json={"result": "server_error"})
        elif len(sent) == 3:
            route.fulfill(status=503, content_type="text/plain", body="Service Unavailable")
        else:
            route.continue_()

    page.route("**/api/v1/checkins", flaky)
    scan_with_wedge(page, jiro.code)
    answer = result(page, "ok")
    expect(answer).to_have_attribute("data-offline", "true")
    expect(answer).to_contain_text("鈴木 次郎")
    shot(page, request, "offline-green")
    expect(door).to_have_attribute("data-queue", "0", timeout=20_000)
    assert len(sent) == 4 and len({body["nonce"] for body in sent}) == 1 and {body["code"] for body in sent} == {
        jiro.code}
    assert "offline_result" not in sent[0] and [body["offline_result"] for body in sent[1:]] == ["ok"] * 3
    assert len({body["scanned_at"] for body in sent[1:]}) == 1
    assert server.query("SELECT result, offline_result, conflict FROM scans WHERE nonce = '%s'" % sent[0]["nonce"]) \
        == [("ok", "ok", None)]
    assert server.query("SELECT count(*) FROM checkins") == [(3,)]  # Taro twice (one undone), Jiro once
    expect(counter(page)).to_have_text("2 / 4")
    page.unroute("**/api/v1/checkins")
    dismiss(page)

    # No answer at all (the request hangs): after the page's short timeout it decides, and sends the same scan again.
    stalled = []

    def stall_first(route):
        stalled.append(json.loads(route.request.post_data))
        if len(stalled) > 1:
            route.continue_()  # the first one is never answered

    page.route("**/api/v1/checkins", stall_first)
    scan_with_wedge(page, shiro.code)
    answer = result(page, "ok")
    expect(answer).to_have_attribute("data-offline", "true")
    expect(answer).to_contain_text("田中 四郎")
    expect(door).to_have_attribute("data-queue", "0", timeout=15_000)
    assert len(stalled) == 2 and stalled[0]["nonce"] == stalled[1]["nonce"]
    page.unroute("**/api/v1/checkins")
    dismiss(page)

    # Still failing: the scan waits in the queue, sent again every few seconds with its nonce, never decided twice.
    refused = []
    page.route("**/api/v1/checkins", lambda route: (refused.append(json.loads(route.request.post_data)),
                                                    route.fulfill(status=503, body="Service Unavailable")))
    scan_with_wedge(page, saburo.code)
    expect(result(page, "ok")).to_have_attribute("data-offline", "true")
    expect(door).to_have_attribute("data-queue", "1")
    for _ in range(300):  # sent again by itself (the page tries every few seconds): wait for the third try
        if len(refused) >= 3:
            break
        page.wait_for_timeout(100)
    assert len(refused) >= 3 and len({body["nonce"] for body in refused}) == 1
    expect(door).to_have_attribute("data-queue", "1")
    assert server.query("SELECT count(*) FROM scans WHERE result = 'ok'") == [(4,)]
    page.unroute("**/api/v1/checkins")
    expect(door).to_have_attribute("data-queue", "0", timeout=10_000)
    assert server.query("SELECT count(*) FROM scans WHERE result = 'ok'") == [(5,)]
    dismiss(page)

    # A reused nonce (a fault: the page makes a new one for every scan) is said as such, not as a refusal.
    page.route("**/api/v1/checkins", lambda route: route.fulfill(status=422, json={"result": "nonce_reused"}))
    scan_with_wedge(page, saburo.code)
    answer = result(page, "error")
    expect(answer).to_contain_text(ja("Scan the ticket again."))
    page.unroute("**/api/v1/checkins")
    dismiss(page)
    scan_with_wedge(page, saburo.code)
    expect(result(page, "already")).to_contain_text("高橋 三郎")  # admitted by the queued scan
    watch.check()
    context.close()


# --- 6. a code typed by hand: in groups, lower case, with hyphens; what is wrong with it said plainly --------

def grouped(code: str, separators: str = " ") -> str:
    """The code in groups of four, `separators` taken in turn between them (a space by default)."""
    groups = [code[start:start + 4] for start in range(0, len(code), 4)]
    return "".join(group + (separators[n % len(separators)] if n < len(groups) - 1 else "")
                   for n, group in enumerate(groups))


def lines_of(page: Page, selector: str) -> int:
    """On how many lines the text of an element is laid out."""
    return page.evaluate("""(selector) => {
        const range = document.createRange();
        range.selectNodeContents(document.querySelector(selector));
        return new Set(Array.from(range.getClientRects(), (rect) => Math.round(rect.top))).size;
    }""", selector)


def fits_the_width(page: Page) -> None:
    """Nothing wider than the screen: neither the document nor the code field with its grouped line."""
    sizes = page.evaluate("""() => ({
        scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
        right: Math.max(...["#door-code", "#door-code-preview", "#door-code-count"].map(
            (selector) => document.querySelector(selector).getBoundingClientRect().right)),
    })""")
    assert sizes["scroll"] <= sizes["client"] and sizes["right"] <= sizes["client"], sizes
    no_horizontal_scroll(page)


@pytest.mark.browser
def test_a_code_typed_by_hand_is_read_in_groups_and_a_wrong_one_says_what_is_wrong(live_server, launch, request):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    john = register_attendee(server, family_name="Smith", given_name="John", email="john@example.com",
                             organization="Example Inc.", language="en")
    context = launch().new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                   locale="ja-JP", timezone_id="Asia/Tokyo")  # a phone without a camera
    context.set_default_timeout(10_000)
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    field, groups = page.locator("#door-code"), page.locator("#door-code-groups")
    count = page.locator("#door-code-count")
    preview = page.get_by_test_id("code-preview")
    expect(preview).to_be_hidden()

    # Typed off the ticket: lower case, in groups, with a hyphen and spaces. The line under the field shows it as the
    # ticket prints it, on one line, counted.
    page.get_by_role("button", name=ja("Type a code with the keyboard")).tap()
    expect(field).to_have_attribute("inputmode", "text")
    expect(field).to_be_focused()
    page.keyboard.type(grouped(taro.code.lower(), " - ー "), delay=5)
    expect(groups).to_have_text(grouped(taro.code))
    expect(count).to_have_text("26/26")
    expect(preview).to_have_attribute("data-complete", "true")
    assert lines_of(page, "#door-code-groups") == 1
    assert abs(groups.bounding_box()["y"] - count.bounding_box()["y"]) < 8, "the count is on the code's line"
    fits_the_width(page)
    shot(page, request, "typed-grouped")
    page.keyboard.press("Enter")
    expect(result(page, "ok")).to_contain_text("山田 太郎")
    expect(field).to_have_value("")
    expect(preview).to_be_hidden()
    page.get_by_test_id("result").tap()

    # One character short: not "unknown code", but how many characters it has.
    page.get_by_role("button", name=ja("Type a code with the keyboard")).tap()
    page.keyboard.type(grouped(john.code[:-1]), delay=5)
    expect(count).to_have_text("25/26")
    expect(preview).to_have_attribute("data-complete", "false")
    fits_the_width(page)
    page.keyboard.press("Enter")
    answer = result(page, "refused")
    expect(answer).to_contain_text(ja("Too short: this code has %(length)s of %(expected)s characters",
                                      length=25, expected=26))
    expect(answer).to_contain_text(ja("Compare it with the code on the ticket and type it again, or search by name."))
    expect(answer).to_contain_text(grouped(john.code[:-1]))
    expect(answer).not_to_contain_text(ja("Unknown code"))
    assert lines_of(page, ".door-answer-code") == 1
    fits_the_width(page)
    shot(page, request, "too-short")
    page.get_by_test_id("result").tap()

    # One character too many, and a 9, which no code has.
    scan_with_wedge(page, john.code + "A")
    expect(result(page, "refused")).to_contain_text(ja(
        "Too long: this code has %(length)s characters, a ticket code %(expected)s", length=27, expected=26))
    page.get_by_test_id("result").tap()
    scan_with_wedge(page, john.code[:25] + "9")
    expect(result(page, "refused")).to_contain_text(ja("Not a ticket code: it contains %(characters)s",
                                                       characters="9"))
    page.get_by_test_id("result").tap()

    # Someone who registered in English is shown given name first, at the door and in the search.
    scan_with_wedge(page, grouped(john.code, "-"))
    expect(result(page, "ok")).to_contain_text("John Smith")
    page.get_by_test_id("result").tap()
    page.locator("#door-search-input").fill("Smith")
    expect(page.get_by_test_id("search-results").locator(".door-person-name")).to_have_text("John Smith")
    fits_the_width(page)

    # The page reads a typed code as the server does (registration/tickets.py), whatever the keyboard sent.
    field.focus()
    for raw in ("２ｈｔｊ\u3000ｊｐｒｊ", "0O1I8B\u00a0-\u2013\u2014\u2212ーｰ・。．.\u2009\t", "ab9!é"):
        field.fill(raw)
        cleaned = tickets._clean(raw)
        expect(groups).to_have_text(grouped(cleaned))
        expect(count).to_have_text(f"{len(cleaned)}/26")
    field.fill(grouped(john.code.lower().replace("o", "0").replace("i", "1").replace("b", "8"), "・"))
    expect(groups).to_have_text(grouped(john.code))
    expect(preview).to_have_attribute("data-complete", "true")
    field.fill("")
    expect(preview).to_be_hidden()

    assert server.query("SELECT result FROM scans ORDER BY id") == [
        ("ok",), ("unknown_code",), ("unknown_code",), ("unknown_code",), ("ok",)]
    assert server.query("SELECT count(*) FROM checkins") == [(2,)]
    watch.check()
    context.close()


# --- 7. the local copy: wiped on sign-out (unsent scans stay for the next sign-in); none after the event ----------

def local_storage(page: Page) -> dict:
    """What this origin keeps: rows of the door's IndexedDB stores, and the service worker's cache names."""
    return page.evaluate("""async () => {
        const db = await new Promise((resolve, reject) => {
            const request = indexedDB.open("codt-door");
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
        });
        const count = (name) => new Promise((resolve) => {
            const request = db.transaction(name).objectStore(name).count();
            request.onsuccess = () => resolve(request.result);
        });
        const found = { queue: await count("queue"), people: await count("people"), meta: await count("meta"),
                        caches: await caches.keys() };
        db.close();
        return found;
    }""")


def offline_ready_door(server: LiveServer, browser: Browser) -> tuple[BrowserContext, Page, Watch, Locator]:
    """A desktop door page signed in, with its service worker and its local list of seat holders ready."""
    context = desktop(browser)
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    door = page.locator("#door")
    expect(door).to_have_attribute("data-sw", "ready", timeout=15_000)
    expect(door).to_have_attribute("data-dataset", "ready")
    return context, page, watch, door


@pytest.mark.browser
def test_signing_out_wipes_the_local_copy_and_keeps_unsent_scans_for_the_next_sign_in(live_server, launch):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    context, page, watch, door = offline_ready_door(server, launch())
    expect(door).to_have_attribute("data-dataset-count", "1")
    assert "codt-door-page" in local_storage(page)["caches"]

    # A scan the server never got: decided here, waiting in the queue, when staff sign out.
    page.route("**/api/v1/checkins", lambda route: route.abort("internetdisconnected"))
    scan_with_wedge(page, taro.code)
    expect(result(page, "ok")).to_have_attribute("data-offline", "true")
    dismiss(page)
    expect(door).to_have_attribute("data-queue", "1")
    with page.expect_navigation():
        page.get_by_role("button", name=ja("Sign out")).click()
    expect(page).to_have_url(server.url + "/login")
    kept = local_storage(page)
    assert (kept["queue"], kept["people"], kept["meta"]) == (1, 0, 0), kept  # the copy is gone, the scan is not
    assert "codt-door-page" not in kept["caches"], "the saved door page goes with the session"
    assert server.query("SELECT count(*) FROM scans") == [(0,)]

    # The next sign-in on this device sends it, once, with what the door decided.
    page.unroute("**/api/v1/checkins")
    sign_in(page, server)
    expect(door).to_have_attribute("data-dataset", "ready")
    expect(door).to_have_attribute("data-queue", "0", timeout=10_000)
    expect(counter(page)).to_have_text("1 / 1", timeout=10_000)
    assert server.query("SELECT result, offline_result, gate FROM scans") == [("ok", "ok", "door-1")]
    watch.check(expected_errors=r"^Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    context.close()


@pytest.mark.browser
def test_after_the_event_day_the_door_keeps_no_local_copy(live_server, launch, request):
    server = live_server(REHEARSAL_CLOCK="2023-09-15T09:00:00+09:00")  # the morning after the closing event
    add_door_staff(server)
    context = desktop(launch())
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    door = page.locator("#door")
    expect(door).to_have_attribute("data-dataset", "expired")
    expect(page.get_by_test_id("connection")).to_contain_text(ja("the offline list has expired (the event is over)"))
    kept = local_storage(page)
    assert (kept["people"], kept["meta"]) == (0, 0), kept
    shot(page, request, "expired")
    watch.check()
    context.close()


# --- 8. attack findings (issue 13): the gate as the server keeps it, refused scans in sight, conflicts counted,
#        signing out without network -----------------------------------------------------------------------------

def people_rows(page: Page) -> list[dict]:
    """The local copy's people, as IndexedDB holds them."""
    return page.evaluate("""async () => {
        const db = await new Promise((resolve, reject) => {
            const request = indexedDB.open("codt-door");
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
        });
        const rows = await new Promise((resolve) => {
            const request = db.transaction("people").objectStore("people").getAll();
            request.onsuccess = () => resolve(request.result);
        });
        db.close();
        return rows;
    }""")


#: Pasted into the gate field: a zero-width space, a line separator, a tab, a lone surrogate, and an emoji that a
#: cut at 40 UTF-16 units would split (JavaScript source: the lone surrogate cannot travel as JSON).
PASTED_GATE = r'"\u200b ゲート\u2028A\t" + "x".repeat(35) + "\ud83d\ude00" + "\ud800tail"'
#: What the page keeps and sends: as the server keeps a gate (printable, trimmed, 40 code points).
CLEAN_GATE = "ゲートA" + "x" * 35 + "😀"


@pytest.mark.browser
def test_the_gate_is_kept_as_the_server_keeps_it_and_a_refused_queued_scan_stays_in_sight(live_server, launch,
                                                                                           request):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    jiro = register_attendee(server, family_name="鈴木", given_name="次郎", email="jiro@example.jp",
                             organization="拒否株式会社")
    context, page, watch, door = offline_ready_door(server, launch())

    # The gate field gets junk pasted in: the page keeps (and shows) it as the server will.
    page.evaluate(f"""() => {{
        const field = document.getElementById("door-gate");
        field.value = {PASTED_GATE};
        field.dispatchEvent(new Event("change"));
    }}""")
    assert page.locator("#door-gate").input_value() == CLEAN_GATE
    assert local_storage_item(page, "door.gate") == CLEAN_GATE
    page.locator("#door-code").focus()

    # Offline, Taro is let in; back online, the scan is recorded at that gate (no 400 for the gate).
    context.set_offline(True)
    scan_with_wedge(page, taro.code)
    expect(result(page, "ok", timeout=15_000)).to_have_attribute("data-offline", "true")
    dismiss(page)
    expect(door).to_have_attribute("data-queue", "1")
    context.set_offline(False)
    expect(door).to_have_attribute("data-queue", "0", timeout=15_000)
    assert server.query("SELECT result, offline_result, gate FROM scans") == [("ok", "ok", CLEAN_GATE)]
    assert server.query("SELECT gate FROM checkins WHERE undone_at IS NULL") == [(CLEAN_GATE,)]

    # Jiro is let in offline, and the server refuses that scan as a request (here: its scan time is spoilt on
    # the way, a real 400 invalid_request from the server). It leaves the queue but stays listed, with the reason.
    page.locator("#door-code").focus()
    context.set_offline(True)
    scan_with_wedge(page, jiro.code)
    expect(result(page, "ok", timeout=15_000)).to_have_attribute("data-offline", "true")
    dismiss(page)

    def spoil(route) -> None:
        body = json.loads(route.request.post_data)
        body["scanned_at"] = "not a time"
        route.continue_(post_data=json.dumps(body))

    page.route("**/api/v1/checkins", spoil)
    context.set_offline(False)
    expect(door).to_have_attribute("data-queue", "0", timeout=15_000)
    expect(door).to_have_attribute("data-refused", "1")
    refused = page.get_by_test_id("door-refused")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text(ja("Scans the server did not accept"))
    expect(refused).to_contain_text("(1)")
    expect(refused).to_contain_text("鈴木 次郎")
    expect(refused).to_contain_text(ja("OK"))
    expect(refused).to_contain_text(ja("refused by the server: %(result)s, %(field)s", result="invalid_request",
                                       field="scanned_at"))
    expect(refused).to_contain_text(CLEAN_GATE)
    shot(page, request, "refused-scan-listed")
    page.unroute("**/api/v1/checkins")
    assert server.query("SELECT count(*) FROM scans") == [(1,)], "the server recorded nothing of Jiro's scan"

    # The door let him in: its copy says so, across a reload and a refresh of the copy, until staff dismiss it.
    page.reload()
    expect(door).to_have_attribute("data-ready", "true")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("鈴木 次郎")
    status_line = page.get_by_test_id("connection")
    expect(status_line).to_contain_text(ja("Online"))
    first_line = status_line.text_content()
    expect(status_line).not_to_have_text(first_line, timeout=15_000)  # the copy was refreshed since
    [jiro_row] = [row for row in people_rows(page) if row["name"] == "鈴木 次郎"]
    assert jiro_row["checkin"] and jiro_row["checkin"]["pending"], jiro_row

    refused.get_by_role("button", name=ja("Dismiss")).click()
    expect(refused).to_be_hidden()
    expect(door).to_have_attribute("data-refused", "0")
    assert local_storage(page)["queue"] == 0
    watch.check(expected_errors=r"^Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    context.close()


def local_storage_item(page: Page, key: str) -> str | None:
    return page.evaluate("(key) => localStorage.getItem(key)", key)


@pytest.mark.browser
def test_the_door_counts_every_open_conflict_while_it_lists_the_newest(live_server, launch, request):
    server = live_server()
    add_door_staff(server)
    taro = register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                             organization="例示株式会社")
    token = run_flask(server.env, "staff", "token", STAFF, "--device", "door-2-phone").stdout.strip().splitlines()[-1]

    def post(body: dict) -> int:
        call = urllib.request.Request(server.url + "/api/v1/checkins", method="POST", data=json.dumps(body).encode(),
                                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(call, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as refused:
            refused.close()
            return refused.code

    # Taro is in; 23 doors' offline admissions of his ticket arrive later: 23 open conflicts.
    assert post({"code": taro.code, "gate": "door-2"}) == 201
    for number in range(23):
        assert post({"code": taro.code, "gate": f"door-{number + 3}", "offline_result": "ok"}) == 409
    assert server.query("SELECT count(*) FROM scans WHERE conflict IS NOT NULL") == [(23,)]

    context = desktop(launch())
    page = context.new_page()
    watch = Watch(page, server)
    sign_in(page, server)
    conflicts = page.get_by_test_id("door-conflicts")
    expect(conflicts).to_be_visible(timeout=15_000)
    expect(conflicts.locator("li")).to_have_count(20)
    expect(page.locator("#door-conflict-count")).to_have_text("(23)")
    shot(page, request, "conflicts-counted")
    watch.check()
    context.close()


@pytest.mark.browser
def test_signing_out_without_network_wipes_the_device_says_so_and_ends_the_session_once_online(live_server, launch,
                                                                                                request):
    server = live_server()
    add_door_staff(server)
    register_attendee(server, family_name="山田", given_name="太郎", email="taro@example.jp",
                      organization="例示株式会社")
    context, page, watch, door = offline_ready_door(server, launch())

    context.set_offline(True)
    page.get_by_role("button", name=ja("Sign out")).click()
    notice = page.locator("#door-notice")
    expect(notice).to_be_visible(timeout=15_000)
    expect(notice).to_have_text(ja("This device's list and saved page are wiped. No connection: signing out will "
                                   "complete when the network is back."))
    expect(door).to_have_attribute("data-sign-out", "pending")
    expect(page).to_have_url(server.url + "/door")  # the page, not the browser's network error
    kept = local_storage(page)
    assert (kept["people"], kept["meta"]) == (0, 0) and "codt-door-page" not in kept["caches"], kept
    expect(door).to_have_attribute("data-dataset", "none")
    shot(page, request, "signing-out-offline")

    # The network is back: the sign-out completes by itself, and the session is over.
    context.set_offline(False)
    expect(page).to_have_url(server.url + "/login", timeout=15_000)
    page.goto(server.url + "/door")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login\?next="))
    kept = local_storage(page)
    assert (kept["people"], kept["meta"]) == (0, 0), "the copy was not fetched again before the sign-out"
    watch.check(expected_errors=r"^Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    context.close()
