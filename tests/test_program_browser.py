"""The on-demand program (issue 4) end to end, in a real Chromium (Playwright) against real gunicorn servers.

The organisers import their program with the CLI (`flask program import`) into the live server's database, a
visitor registers and picks sessions on the form, changes them on the personal page and presses "watch" inside
the on-demand window (rehearsal clock): the browser is sent to the video's own site. That site does not exist,
so a small HTTPS server on loopback stands in for it (see VideoSite for why not `page.route`). An admin then
sees the view on /admin/attendance and in its CSV.
Outside the windows there is no watch button, and a stale page's button is refused with a message saying when.

Japanese UI text comes from the compiled catalog through `ja()` / `ja_n()`, as in test_browser.py.
"""

import csv
import http.server
import io
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import ROOT, LiveServer, run_flask
from tests.test_browser import (JST, PHONE, SECRET_URL, _catalog, banner_time, fill_registration, ja, navigate,
                                no_horizontal_scroll, shot, submit)

pytestmark = pytest.mark.browser

PROGRAM_FILE = ROOT / "tests" / "data" / "program-49.csv"
VIDEO = "https://video.example/codt2023/"
#: Sessions per category in the 49-session file, in the program's order.
COUNTS = {"troubleshooting": 9, "automation": 15, "observability": 10, "openstack": 4, "cost": 1, "public-cloud": 10}
ENGLISH = {"test-automation-03", "test-automation-13", "line-private-cloud-openstack", "openinfra-loki-stack",
           "test-openstack-02"}
ADMIN, ADMIN_PASSWORD = "kato", "a long admin password 2023"

# The sessions the visitor of the main test picks, drops and watches.
YAHOO = "yahoo-nonstop-architecture"          # troubleshooting: picked at registration, kept, watched twice
JCB = "jcb-remote-operations"                 # observability: picked at registration, dropped later
LINE = "line-private-cloud-openstack"         # openstack, in English: added on the personal page
PUBLIC = "test-public-cloud-01"               # public cloud: watched without a sign-up
TITLES = {
    YAHOO: "大規模プラットフォームの無停止アーキテクチャ刷新から学んだ、運用ナレッジを開発に還元することの大切さ",
    JCB: "クレジットカード会社が取り組んだ、リモート運用の仕組みをセキュリティ規定に準拠しつつ実現した話",
    LINE: "A beginner's journey of operating production-level Private Cloud using OpenStack",
    PUBLIC: "テストセッション 31（テストデータ）",
}


# --- helpers ---------------------------------------------------------------------------------------------

def ja_n(singular: str, plural: str, num: int, **values) -> str:
    """The Japanese text of an ngettext message as the app shows it (flask-babel fills in `num`)."""
    return _catalog().ngettext(singular, plural, num) % {"num": num, **values}


def import_program(server: LiveServer, path: Path, *options: str):
    """`flask --app registration program import PATH` against the live server's database, as organisers run it."""
    return run_flask(server.env, "program", "import", *options, str(path))


def import_ok(server: LiveServer) -> None:
    done = import_program(server, PROGRAM_FILE)
    assert done.returncode == 0, done.stderr
    assert "Imported 49 sessions" in done.stdout, done.stdout



class VideoSite:
    """Stands in for https://video.example, which does not exist: an HTTPS server on loopback that Chromium reaches
    through a host-resolver rule, answering every path with a small page and keeping what it was asked.

    Playwright's `page.route("https://video.example/**")` would be the lighter stand-in, but with this Chromium
    it never sees the target of a redirect (a navigation the browser follows from a 303, whether the server or a
    route answered it): the watch button's redirect would end in ERR_NAME_NOT_RESOLVED. A real server also sees
    what the browser really sends, such as the Referer header.
    """

    def __init__(self, folder: Path) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        key, cert = folder / "video-key.pem", folder / "video-cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "2", "-subj", "/CN=video.example",
                        "-addext", "subjectAltName=DNS:video.example"], check=True, capture_output=True, timeout=60)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                site.requests.append(("https://video.example" + self.path, headers))
                body = b"<!doctype html><title>video</title><h1 data-testid=video>The video plays here</h1>"
                self.send_response(200 if self.path.startswith("/codt2023/") else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # connections Chromium opens ahead or drops when a context closes

        self.server = Server(("127.0.0.1", 0), Handler)
        # The handshake happens in the request's own thread: a stalled connection never blocks the others.
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def videos(self) -> list[tuple[str, dict[str, str]]]:
        """The requests for videos (not the favicon the browser asks for after them)."""
        return [(url, headers) for url, headers in self.requests if url.startswith(VIDEO)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def program_count(page: Page, total: int) -> None:
    expect(page.get_by_test_id("program-count")).to_have_text(ja_n("%(num)d session.", "%(num)d sessions.", total))


def category_counts(page: Page) -> dict[str, str]:
    """Each category section's count as shown, by category key (in page order)."""
    sections = page.locator("section.program-category")
    return {sections.nth(i).get_attribute("id"): sections.nth(i).locator("h2 .count").inner_text().strip()
            for i in range(sections.count())}


def session_count_text(num: int) -> str:
    return ja_n("%(num)d session", "%(num)d sessions", num)


def row(page: Page, key: str):
    """A session's row in the personal page's sessions section."""
    return page.locator("#sessions").get_by_test_id(f"session-{key}")


def open_category_of(page: Page, key: str, scope: str) -> None:
    """Open the <details> holding a session's checkbox the way a visitor does: click its summary."""
    details = page.locator(f"{scope} details").filter(has=page.locator(f"#session-{key}"))
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    expect(page.locator(f"#session-{key}")).to_be_visible()


def watch_button(page: Page, key: str):
    # The accessible name carries the title: screen readers hear which session the button plays.
    return row(page, key).get_by_role("button", name=ja("Watch: %(title)s", title=TITLES[key]), exact=True)


def attendance_cells(page: Page, testid: str) -> list[str]:
    """Sign-ups, watchers, views and without-sign-up of one row of the attendance table."""
    return [cell.strip() for cell in page.get_by_test_id(testid).locator("td").all_inner_texts()]


def sign_in_as_admin(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/admin")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login\?next="))
    page.locator("#name").fill(ADMIN)
    page.locator("#password").fill(ADMIN_PASSWORD)
    navigate(page, lambda: page.locator("main").get_by_role("button", name=ja("Sign in")).click())
    expect(page).to_have_url(server.url + "/admin")


def download_csv(page: Page, link_name: str) -> tuple[str, list[dict]]:
    """Click a CSV link as an admin does; the suggested file name and the rows (UTF-8 with BOM, as Excel opens it)."""
    with page.expect_download() as download_info:
        page.get_by_role("link", name=link_name).click()
    download = download_info.value
    raw = Path(download.path()).read_bytes()
    assert raw.startswith("\ufeff".encode()), "Excel needs the byte order mark to read UTF-8"
    return download.suggested_filename, list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def wait_for_simulated(page: Page, server: LiveServer, moment: datetime, give_up_after: float = 60) -> None:
    """Reload a page until the rehearsal banner shows `moment` or later."""
    give_up = time.monotonic() + give_up_after
    while True:
        page.goto(server.url + "/")
        if banner_time(page) >= moment:
            return
        assert time.monotonic() < give_up, "the rehearsal clock does not move"
        page.wait_for_timeout(500)


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def module_video_site(tmp_path_factory) -> Iterator[VideoSite]:
    site = VideoSite(tmp_path_factory.mktemp("video-site"))
    yield site
    site.stop()


@pytest.fixture
def video_site(module_video_site: VideoSite) -> VideoSite:
    """The stand-in video site, with no requests recorded yet."""
    module_video_site.requests.clear()
    return module_video_site


@pytest.fixture(scope="module")
def browser(module_video_site: VideoSite) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            f"--host-resolver-rules=MAP video.example 127.0.0.1:{module_video_site.port}"])
        yield browser
        browser.close()


def new_context(browser: Browser, **options) -> BrowserContext:
    """A Japanese visitor's browser; it accepts the stand-in video site's self-made certificate."""
    context = browser.new_context(**{"locale": "ja-JP", "timezone_id": "Asia/Tokyo",
                                     "viewport": {"width": 1280, "height": 900}, "ignore_https_errors": True,
                                     **options})
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# --- 1. import, register with sessions, change them, watch, and the admin's count --------------------------

def test_register_pick_sessions_change_them_watch_and_admin_counts(live_server, browser: Browser, page: Page,
                                                                    video_site: VideoSite, request):
    server = live_server()  # rehearsal clock 2023-08-25 10:00 JST: inside the on-demand window
    import_ok(server)
    added = run_flask(server.env, "staff", "add", ADMIN, "--role", "admin", "--password-stdin",
                      input=ADMIN_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr

    # Register, picking two sessions from two categories (each in its closed <details>).
    page.goto(server.url + "/register")
    sessions_box = page.locator("form.stack fieldset.sessions")
    expect(sessions_box.locator("details")).to_have_count(len(COUNTS))
    expect(sessions_box.locator("details[open]")).to_have_count(0)
    expect(sessions_box.locator("input[type=checkbox][name=sessions]")).to_have_count(49)
    expect(sessions_box.get_by_test_id("viewing-windows")).to_contain_text(
        ja("On-demand streaming is on now, until %(end)s.", end="2023年9月4日(月) 00:00"))
    fill_registration(page, email_address="watcher@example.jp", attend_closing=False)
    for key in (YAHOO, JCB):
        open_category_of(page, key, "fieldset.sessions")
        page.locator(f"#session-{key}").check()
    shot(page, request, "register-sessions-picked")
    response = submit(page, ja("Register"))
    assert response.status == 200, response.status
    expect(page).to_have_url(re.compile(re.escape(server.url) + SECRET_URL + "/welcome$"))
    personal_url = page.get_by_test_id("personal-link").inner_text().strip()

    # The personal page: the picks first, ticked, then every session by category.
    page.goto(personal_url)
    sessions = page.locator("#sessions")
    expect(sessions.get_by_role("heading", level=2)).to_have_text(ja("My on-demand sessions"))
    expect(sessions.get_by_test_id("viewing-windows")).to_contain_text(
        ja("On-demand streaming is on now, until %(end)s.", end="2023年9月4日(月) 00:00"))
    expect(sessions.get_by_role("heading", level=3).first).to_have_text(ja("Signed up (%(num)d)", num=2))
    mine = sessions.get_by_test_id("my-sessions")
    expect(mine.locator("li.session-row")).to_have_count(2)
    expect(mine.locator("li.session-row").nth(0)).to_have_attribute("data-testid", f"session-{YAHOO}")
    expect(mine.locator("li.session-row").nth(1)).to_have_attribute("data-testid", f"session-{JCB}")
    for key in (YAHOO, JCB):
        expect(mine.locator(f"#session-{key}")).to_be_checked()
    expect(sessions.locator("input[type=checkbox][name=sessions]")).to_have_count(49)
    expect(sessions.locator("input[type=checkbox][name=sessions]:checked")).to_have_count(2)
    expect(sessions.locator("button.watch")).to_have_count(49)  # every session has its video
    assert "video.example" not in page.content(), "the video address is handed out only by the watch redirect"
    shot(page, request, "personal-sessions")

    # Change the picks: drop one, add an English session from a closed category, save.
    mine.locator(f"#session-{JCB}").uncheck()
    open_category_of(page, LINE, "#sessions")
    expect(row(page, LINE).locator(".badge")).to_have_text(ja("English"))
    page.locator(f"#session-{LINE}").check()
    navigate(page, lambda: sessions.get_by_role("button", name=ja("Save my sessions"), exact=True).click())
    expect(page).to_have_url(personal_url + "#sessions")
    expect(page.locator(".flash-success")).to_have_text(
        ja("Your sessions are saved: %(added)d added, %(removed)d removed.", added=1, removed=1))
    expect(mine.locator("li.session-row")).to_have_count(2)
    expect(mine.get_by_test_id(f"session-{YAHOO}")).to_be_visible()
    expect(mine.get_by_test_id(f"session-{LINE}")).to_be_visible()
    expect(mine.get_by_test_id(f"session-{JCB}")).to_have_count(0)
    expect(page.locator(f"#session-{JCB}")).not_to_be_checked()
    expect(page.locator(f"#session-{LINE}")).to_be_checked()
    shot(page, request, "personal-sessions-changed")
    page.reload()
    expect(page.locator(".flash-success")).to_have_count(0)
    expect(sessions.locator("input[type=checkbox][name=sessions]:checked")).to_have_count(2)

    # Watch: the button posts, the app counts the view and sends the browser on to the video's own site.
    navigate(page, lambda: watch_button(page, YAHOO).click())
    expect(page).to_have_url(VIDEO + YAHOO)
    expect(page.get_by_test_id("video")).to_be_visible()
    shot(page, request, "video-site")
    [(url, headers)] = video_site.videos()
    assert url == VIDEO + YAHOO
    assert "referer" not in headers, f"the personal link must not reach the video site: {headers.get('referer')}"

    # Back on the personal page the session is marked watched; a second click in the same quarter hour
    # is the same view; a session without a sign-up can be watched too.
    page.goto(personal_url)
    expect(row(page, YAHOO).locator(".badge.watched")).to_have_text(ja("Watched"))
    expect(row(page, LINE).locator(".badge.watched")).to_have_count(0)
    navigate(page, lambda: watch_button(page, YAHOO).click())
    expect(page).to_have_url(VIDEO + YAHOO)
    page.goto(personal_url)
    open_category_of(page, PUBLIC, "#sessions")
    navigate(page, lambda: watch_button(page, PUBLIC).click())
    expect(page).to_have_url(VIDEO + PUBLIC)
    assert [url for url, _ in video_site.videos()] == [VIDEO + YAHOO, VIDEO + YAHOO, VIDEO + PUBLIC]

    # On a phone the sessions section fits the screen: no sideways scrolling.
    phone = new_context(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        small.goto(personal_url + "#sessions")
        assert small.evaluate("window.innerWidth") == PHONE["width"]
        for details in small.locator("#sessions details").all():
            if details.get_attribute("open") is None:
                details.locator("summary").click()  # every category open, with its long titles and watch buttons
        expect(small.locator("#sessions details:not([open])")).to_have_count(0)
        no_horizontal_scroll(small)
        box = small.locator("#sessions").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        button = small.locator("#sessions").get_by_test_id(f"session-{YAHOO}").locator("button.watch")
        button_box = button.bounding_box()
        assert button_box is not None and button_box["x"] + button_box["width"] <= PHONE["width"], button_box
        shot(small, request, "personal-sessions-phone")
    finally:
        phone.close()

    # The admin sees the sign-ups, watchers and views.
    sign_in_as_admin(page, server)
    navigate(page, lambda: page.get_by_role("navigation", name=ja("Admin console"))
             .get_by_role("link", name=ja("Online attendance")).click())
    expect(page).to_have_url(server.url + "/admin/attendance")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("Online attendance"))
    expect(page.get_by_test_id("attendance").locator("tr[data-testid^=attendance-]")).to_have_count(49 + 1)
    expect(page.get_by_test_id(f"attendance-{YAHOO}")).to_contain_text(TITLES[YAHOO])
    assert attendance_cells(page, f"attendance-{YAHOO}") == ["1", "1", "1", "0"]  # two clicks, one view
    assert attendance_cells(page, f"attendance-{JCB}") == ["0", "0", "0", "0"]    # dropped
    assert attendance_cells(page, f"attendance-{LINE}") == ["1", "0", "0", "0"]
    assert attendance_cells(page, f"attendance-{PUBLIC}") == ["0", "1", "1", "1"]  # watched without a sign-up
    assert attendance_cells(page, "category-troubleshooting") == ["1", "1", "1", "0"]
    assert attendance_cells(page, "category-public-cloud") == ["0", "1", "1", "1"]
    assert attendance_cells(page, "category-cost") == ["0", "0", "0", "0"]
    assert attendance_cells(page, "attendance-total") == ["2", "1", "2", "1"]
    shot(page, request, "admin-attendance")

    filename, rows = download_csv(page, ja("Figures per session (CSV)"))
    assert filename == "codt2023-attendance.csv"
    assert len(rows) == 49
    by_session = {r["session"]: r for r in rows}
    assert {k: by_session[YAHOO][k] for k in ("category", "title", "signups", "watchers", "views",
                                              "watched_without_signup")} == {
        "category": "troubleshooting", "title": TITLES[YAHOO], "signups": "1", "watchers": "1", "views": "1",
        "watched_without_signup": "0"}
    assert [by_session[PUBLIC][k] for k in ("signups", "watchers", "views", "watched_without_signup")] == \
        ["0", "1", "1", "1"]

    filename, records = download_csv(page, ja("Every sign-up, withdrawal and view (CSV)"))
    assert filename == "codt2023-viewing-records.csv"
    assert {r["email"] for r in records} == {"watcher@example.jp"}
    assert sorted((r["record"], r["session"], r["window"]) for r in records) == sorted([
        ("signup", YAHOO, ""), ("signup", JCB, ""), ("withdrawal", JCB, ""), ("signup", LINE, ""),
        ("view", YAHOO, "on_demand"), ("view", PUBLIC, "on_demand")])
    for record in records:
        assert re.fullmatch(r"2023-08-25T10:\d\d:\d\d\.\d{3}\+09:00", record["at_jst"]), record["at_jst"]
    assert server.errors().count("Traceback") == 0, server.errors()[-3000:]


# --- 2. outside the windows ------------------------------------------------------------------------------

def test_watch_outside_the_windows_is_refused_with_when(live_server, context: BrowserContext, page: Page,
                                                        video_site: VideoSite, request):
    # Before the window (10 August): the sessions can be chosen, but there is nothing to watch yet.
    early = live_server(REHEARSAL_CLOCK="2023-08-10T10:00:00+09:00", workers=1)
    import_ok(early)
    page.goto(early.url + "/register")
    fill_registration(page, email_address="early@example.jp", attend_closing=False)
    open_category_of(page, YAHOO, "fieldset.sessions")
    page.locator(f"#session-{YAHOO}").check()
    assert submit(page, ja("Register")).status == 200
    personal_path = page.get_by_test_id("personal-link").inner_text().strip().removeprefix(early.url)

    page.goto(early.url + personal_path)
    sessions = page.locator("#sessions")
    note = sessions.get_by_test_id("viewing-windows")
    expect(note).to_contain_text(ja("Sessions can be watched from %(when)s.", when="2023年8月21日(月) 00:00"))
    expect(note).to_contain_text(ja("On demand: %(start)s – %(end)s.", start="2023年8月21日(月) 00:00",
                                    end="2023年9月4日(月) 00:00"))
    expect(note).to_contain_text(ja("Archive: from %(start)s.", start="2023年10月1日(日) 00:00"))
    expect(row(page, YAHOO).locator("#session-" + YAHOO)).to_be_checked()
    expect(sessions.locator("button.watch")).to_have_count(0)
    expect(sessions.get_by_text(ja("The video is not available yet."))).to_have_count(0)
    expect(sessions.get_by_role("button", name=ja("Save my sessions"))).to_be_visible()  # sign-ups are open
    shot(page, request, "personal-before-window")

    # A watch request all the same (an old bookmark's form, a crafted post): refused, saying when.
    page.evaluate("""key => { const form = document.getElementById('watch-form');
        const input = document.createElement('input'); input.type = 'hidden'; input.name = 'session';
        input.value = key; form.append(input); form.submit(); }""", YAHOO)
    expect(page).to_have_url(early.url + personal_path + "#sessions")
    expect(page.locator(".flash-error")).to_have_text(
        ja("Sessions can be watched from %(when)s.", when="2023年8月21日(月) 00:00"))
    shot(page, request, "watch-before-window")

    # The last seconds of the on-demand window (same database): the page loaded in the window shows the
    # watch button; pressed after midnight, it is refused and says when the archive opens.
    late = live_server(REHEARSAL_CLOCK="2023-09-03T23:59:52+09:00", workers=1)
    end = datetime(2023, 9, 4, tzinfo=JST)
    page.goto(late.url + personal_path)
    loaded_at = banner_time(page)
    assert loaded_at < end, f"the server took too long to start: the page was loaded at {loaded_at}"
    expect(page.locator("#sessions").get_by_test_id("viewing-windows")).to_contain_text(
        ja("On-demand streaming is on now, until %(end)s.", end="2023年9月4日(月) 00:00"))
    expect(watch_button(page, YAHOO)).to_be_visible()
    shot(page, request, "personal-last-seconds")

    other = context.new_page()
    wait_for_simulated(other, late, end)
    other.close()

    navigate(page, lambda: watch_button(page, YAHOO).click())
    expect(page).to_have_url(late.url + personal_path + "#sessions")
    expect(page.locator(".flash-error")).to_have_text(
        ja("Sessions can be watched from %(when)s.", when="2023年10月1日(日) 00:00"))
    expect(page.locator("#sessions").get_by_test_id("viewing-windows")).to_contain_text(
        ja("Sessions can be watched from %(when)s.", when="2023年10月1日(日) 00:00"))
    expect(page.locator("#sessions button.watch")).to_have_count(0)
    assert banner_time(page) >= end
    shot(page, request, "watch-after-window")

    assert video_site.requests == [], "nobody may be sent to the video outside the windows"
    assert late.query("SELECT count(*) FROM session_views") == [(0,)]


# --- 3. the program page and imports refused as a whole ---------------------------------------------------

BROKEN_HEADER = "key,category,title,speaker_organization,language,abstract\n" \
                "brand-new-session,automation,新しいセッション,新組織,ja,概要\n"

BROKEN_ROWS = (
    "key,category,title,speaker_organization,language,abstract,video_url\n"                       # line 1
    "yahoo-nonstop-architecture,troubleshooting,書き換えられたタイトル,ヤフー株式会社,ja,"          # line 2
    "\"二行の\n概要\",https://video.example/codt2023/yahoo-nonstop-architecture\n"                 # line 3
    "brand-new-session,kubernetes,新しいセッション,新組織,ja,,https://video.example/x\n"           # line 4
    "yahoo-nonstop-architecture,troubleshooting,重複,ヤフー株式会社,ja,,\n"                        # line 5
    "bad-url-session,cost,URLが不正,組織,ja,,http://video.example/insecure\n"                     # line 6
    "no-title,cost,,組織,fr,,\n"                                                                  # line 7
)

BROKEN_YAML = """\
sessions:
  - key: brand-new-session
    category: automation
    title: 新しいセッション
    speaker_organization: 新組織
    language: ja
  - key: second-new-session
    category: automation
    title: もう一つ
    speaker_organization: 新組織
    language: de
    video_url: ftp://video.example/y
"""


def test_program_page_counts_search_english_marker_and_broken_imports(live_server, page: Page, tmp_path, request):
    server = live_server()

    # Before the organisers' import the program holds the sessions the press article names.
    page.goto(server.url + "/program")
    program_count(page, 10)

    dry = import_program(server, PROGRAM_FILE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 49 sessions checked; nothing was changed." in dry.stdout, dry.stdout
    page.reload()
    program_count(page, 10)

    done = import_program(server, PROGRAM_FILE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        "Imported 49 sessions: 39 added, 10 updated, 0 restored, 0 unchanged, 0 withdrawn, 0 deleted."), done.stdout

    # The program page: every category with its count, English sessions marked, no video address.
    page.goto(server.url + "/")
    navigate(page, lambda: page.locator("main").get_by_role("link", name=ja("See the program")).click())
    expect(page).to_have_url(server.url + "/program")
    expect(page.get_by_role("heading", level=1)).to_have_text(ja("On-demand program"))
    program_count(page, 49)
    assert category_counts(page) == {key: session_count_text(num) for key, num in COUNTS.items()}
    expect(page.locator(".program-list li")).to_have_count(49)
    expect(page.locator(".program-list li .badge")).to_have_count(len(ENGLISH))
    for key in ENGLISH:
        expect(page.get_by_test_id(f"program-{key}").locator(".badge")).to_have_text(ja("English"))
    expect(page.get_by_test_id(f"program-{YAHOO}").locator(".badge")).to_have_count(0)
    html = page.content()
    assert "video.example" not in html and "video_url" not in html
    shot(page, request, "program")

    # One session's page, from the program.
    navigate(page, lambda: page.get_by_test_id(f"program-{LINE}").get_by_role("link").click())
    expect(page).to_have_url(server.url + f"/program/openstack/{LINE}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLES[LINE])
    expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text(ja("English"))
    expect(page.locator(".speaker")).to_have_text("LINE株式会社")
    assert "video.example" not in page.content()
    shot(page, request, "program-session")
    assert page.goto(server.url + f"/program/cost/{LINE}").status == 404  # another category's key

    # Search narrows the list (full-width letters and case do not matter); empty categories are left out.
    page.goto(server.url + "/program")
    page.locator("#program-q").fill("ｋｕｂｅｒｎｅｔｅｓ")
    navigate(page, lambda: page.locator("form.program-search").get_by_role("button", name=ja("Search")).click())
    expect(page).to_have_url(re.compile(r"/program\?q="))
    expect(page.get_by_test_id("program-count")).to_have_text(ja_n(
        "%(num)d session matches “%(query)s”.", "%(num)d sessions match “%(query)s”.", 2, query="ｋｕｂｅｒｎｅｔｅｓ"))
    expect(page.locator(".program-list li")).to_have_count(2)
    expect(page.get_by_test_id("program-pepabo-multicloud-kubernetes")).to_be_visible()
    expect(page.get_by_test_id("program-openinfra-loki-stack")).to_be_visible()
    assert category_counts(page) == {"troubleshooting": session_count_text(1), "openstack": session_count_text(1)}
    shot(page, request, "program-search")
    page.locator("#program-q").fill("セブン銀行")  # an organisation
    navigate(page, lambda: page.locator("#program-q").press("Enter"))
    expect(page.get_by_test_id("program-count")).to_have_text(ja_n(
        "%(num)d session matches “%(query)s”.", "%(num)d sessions match “%(query)s”.", 1, query="セブン銀行"))
    expect(page.get_by_test_id("program-seven-bank-anomaly-detection")).to_be_visible()
    expect(page.locator(".program-list li")).to_have_count(1)
    navigate(page, lambda: page.get_by_role("link", name=ja("Show all")).click())
    program_count(page, 49)

    # No video address on the registration form either.
    page.goto(server.url + "/register")
    expect(page.locator("fieldset.sessions input[name=sessions]")).to_have_count(49)
    assert "video.example" not in page.content()

    # Broken files are refused as a whole, every problem listed with its line; nothing changes.
    missing_column = tmp_path / "program-missing-column.csv"
    missing_column.write_text(BROKEN_HEADER, encoding="utf-8")
    refused = import_program(server, missing_column)
    assert refused.returncode == 1, refused
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"{missing_column}: line 1: missing column(s): video_url (the header must name key, category, title, "
        "speaker_organization, language, abstract, video_url)",
        "Error: 1 problem(s) found; the program is unchanged."]

    broken = tmp_path / "program-broken.csv"
    broken.write_text(BROKEN_ROWS, encoding="utf-8")
    refused = import_program(server, broken)
    assert refused.returncode == 1, refused
    problems = refused.stderr.splitlines()
    assert problems == [
        f"{broken}: line 4: category 'kubernetes' is unknown (known: automation, cost, observability, openstack, "
        "public-cloud, troubleshooting)",
        f"{broken}: line 5: key 'yahoo-nonstop-architecture' is already used on line 2",
        f"{broken}: line 6: video_url 'http://video.example/insecure': must be an https:// address",
        f"{broken}: line 7: title: missing",
        f"{broken}: line 7: language 'fr': use ja or en",
        "Error: 5 problem(s) found; the program is unchanged."], refused.stderr

    broken_yaml = tmp_path / "program-broken.yaml"
    broken_yaml.write_text(BROKEN_YAML, encoding="utf-8")
    refused = import_program(server, broken_yaml, "--dry-run")
    assert refused.returncode == 1, refused
    assert refused.stderr.splitlines() == [
        f"{broken_yaml}: line 7: language 'de': use ja or en",
        f"{broken_yaml}: line 7: video_url 'ftp://video.example/y': must be an https:// address",
        "Error: 2 problem(s) found; the program is unchanged."], refused.stderr

    page.goto(server.url + "/program")
    program_count(page, 49)
    assert category_counts(page) == {key: session_count_text(num) for key, num in COUNTS.items()}
    expect(page.get_by_test_id(f"program-{YAHOO}")).to_contain_text(TITLES[YAHOO])  # not the broken file's title
    expect(page.get_by_test_id("program-brand-new-session")).to_have_count(0)
    expect(page.get_by_test_id("program-bad-url-session")).to_have_count(0)
    page.goto(server.url + f"/program/troubleshooting/{YAHOO}")
    expect(page.locator(".abstract")).to_have_count(0)  # nor its abstract
    assert server.errors().count("Traceback") == 0, server.errors()[-3000:]


# --- 4. the category names follow the page's language ----------------------------------------------------

CATEGORY_NAMES = {"troubleshooting": ("運用苦労話（しくじり、トラシュー）", "Operations war stories (failures, troubleshooting)"),
                  "openstack": ("OpenStack", "OpenStack"), "cost": ("コスト管理", "Cost management")}


def test_category_names_follow_the_language(live_server, page: Page, request):
    server = live_server()
    import_ok(server)

    page.goto(server.url + "/program")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    for key, (name_ja, _) in CATEGORY_NAMES.items():
        expect(page.locator(f"#category-{key}")).to_contain_text(name_ja)
    page.goto(server.url + f"/program/troubleshooting/{YAHOO}")
    expect(page.locator(".facts")).to_contain_text(CATEGORY_NAMES["troubleshooting"][0])
    page.goto(server.url + "/register")
    expect(page.locator("fieldset.sessions summary").first).to_contain_text(CATEGORY_NAMES["troubleshooting"][0])
    fill_registration(page, email_address="names@example.jp", attend_closing=False)
    submit(page, ja("Register"))
    page.goto(page.get_by_test_id("personal-link").inner_text().strip())
    expect(page.locator("#sessions summary").first).to_contain_text(CATEGORY_NAMES["troubleshooting"][0])

    navigate(page, page.locator("button[name=lang]").click)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#sessions summary").first).to_contain_text(CATEGORY_NAMES["troubleshooting"][1])
    page.goto(server.url + "/program")
    for key, (_, name_en) in CATEGORY_NAMES.items():
        expect(page.locator(f"#category-{key}")).to_contain_text(name_en)
