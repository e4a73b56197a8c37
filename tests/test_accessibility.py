"""Accessibility, checked by tools nobody here wrote, on every page attendees, door staff and organisers use, in
Japanese and English, at desktop (1280x800) and phone (390x844) sizes:

- axe-core (node_modules/axe-core; both tools are pinned in package-lock.json) finds no serious or critical
  WCAG 2.1 A/AA violation;
- the W3C Nu HTML checker (node_modules/vnu-jar) finds no error in the HTML the server sent;
- on a phone, no page scrolls sideways, and every tap target (buttons, form controls, links that are not inside a
  sentence) is at least 44x44 CSS px (WCAG 2.5.5; a checkbox's label is part of its target, the box itself must
  still be 24x24, WCAG 2.5.8).

And forms with errors, as a screen reader meets them (Chromium's accessibility tree and Playwright's aria snapshot):
an error summary at the top, focused and in view when the page loads, that links each field in error, the fields
marked invalid and described by their message.

One server and one walk through every page per module (per database backend): the walk records what each tool says,
and the tests below assert page by page, so that a failure names the page, the size and the problem.
"""

import json
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from babel.support import Translations
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright
from sqlalchemy import create_engine, text

from registration import create_app
from registration.extensions import db
from registration.services import event as event_service
from registration.services import staff as staff_service
from registration.services.registrations import Details, register
from tests.conftest import (
    BACKENDS,
    ROOT,
    VENV_BIN,
    LiveServer,
    _base_config,
    free_port,
    jst,
    pg_url,
    wait_for_port,
)
from tests.test_browser import navigate

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
TRANSLATIONS = ROOT / "registration" / "translations"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LANGUAGES = ["ja", "en"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: The impacts the tests fail on (axe-core's moderate and minor findings are not failed).
BLOCKING = ("serious", "critical")

#: Every page state the walk visits, in the order it visits them, with the status it must answer.
STATES = {
    "landing": 200, "program": 200, "program-session": 200, "privacy": 200,
    "register": 200, "register-errors": 422, "welcome": 200,
    "personal-seat": 200, "personal-errors": 422, "personal-waiting": 200,
    "ticket": 200, "cancel": 200, "erase": 200,
    "lost-link": 200, "lost-link-errors": 422, "lost-link-sent": 200,
    "not-found": 404,
    "login": 200, "login-errors": 401, "door": 200, "admin": 200, "attendance": 200,
    "walk-in": 200, "walk-in-errors": 422,
}
CASES = [(lang, state) for lang in LANGUAGES for state in STATES]
CASE_IDS = [f"{lang}-{state}" for lang, state in CASES]


def msg(lang: str, msgid: str, **values) -> str:
    """The UI text for a msgid in a language, as the app shows it."""
    text_ = Translations.load(str(TRANSLATIONS), [lang], domain="messages").gettext(msgid) if lang == "ja" else msgid
    return text_ % values if values else text_


# --- what the browser measures ---------------------------------------------------------------------------

RUN_AXE = """async tags => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 240),
                              summary: (n.failureSummary || '').replace(/\\s+/g, ' ')}))}));
}"""

#: A short readable name for an element, for the measurements below.
DESCRIBE = """const describe = el => {
  let name = el.tagName.toLowerCase();
  if (el.id) name += '#' + el.id;
  else if (typeof el.className === 'string' && el.className.trim()) {
    name += '.' + el.className.trim().split(/\\s+/).join('.');
  }
  const said = (el.getAttribute('aria-label') || el.innerText || el.value || el.name || '').trim();
  return said ? `${name} "${said.replace(/\\s+/g, ' ').slice(0, 50)}"` : name;
};"""

OVERFLOW = """() => {
  """ + DESCRIBE + """
  const root = document.documentElement, width = root.clientWidth;
  if (root.scrollWidth <= width) return {scrollWidth: root.scrollWidth, clientWidth: width, culprits: []};
  // The innermost elements reaching past the right edge: the ones to fix.
  const past = [...document.body.querySelectorAll('*')].filter(el => el.getBoundingClientRect().right > width + 0.5);
  const innermost = past.filter(el => !past.some(other => other !== el && el.contains(other)));
  const culprits = innermost.slice(0, 8)
    .map(el => `${describe(el)} reaches ${Math.round(el.getBoundingClientRect().right)}px`);
  return {scrollWidth: root.scrollWidth, clientWidth: width, culprits};
}"""

SMALL_TARGETS = """([min, minControl]) => {
  """ + DESCRIBE + """
  const rendered = el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  // WCAG 2.5.5's inline exception: a link inside a sentence or block of text. An inline link is, when the line box
  // it sits in holds other words (letters or digits) than those of links and buttons: "·" or "/" between links
  // make no sentence. A link laid out as a box of its own (a button, a block) is a target like any other.
  const blockOf = el => {
    while (el && getComputedStyle(el).display.startsWith('inline')) el = el.parentElement;
    return el;
  };
  const inSentence = link => {
    if (getComputedStyle(link).display !== 'inline') return false;
    const box = blockOf(link.parentElement);
    if (!box) return false;
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    let rest = '';
    while (walker.nextNode()) {
      const node = walker.currentNode, parent = node.parentElement, owner = parent.closest('a[href], button');
      if ((owner && box.contains(owner)) || blockOf(parent) !== box || !parent.checkVisibility()) continue;
      rest += node.data;
    }
    return /[\\p{L}\\p{N}]/u.test(rest);
  };
  const problems = [];
  const targets = document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary');
  for (const el of targets) {
    if (!rendered(el) || (el.matches('a') && inSentence(el))) continue;
    const own = el.getBoundingClientRect();
    let {left, top, right, bottom} = own;
    if (el.matches('input[type=checkbox], input[type=radio]')) {
      // Clicking the label ticks the box: the label is part of the target; the box itself must still be 24x24.
      if (own.width < minControl - 0.01 || own.height < minControl - 0.01) {
        problems.push(`${describe(el)}: the box is ${own.width.toFixed(1)}x${own.height.toFixed(1)}px`);
      }
      for (const label of el.labels || []) {
        const box = label.getBoundingClientRect();
        left = Math.min(left, box.left); top = Math.min(top, box.top);
        right = Math.max(right, box.right); bottom = Math.max(bottom, box.bottom);
      }
    }
    const width = right - left, height = bottom - top;
    if (width < min - 0.01 || height < min - 0.01) {
      problems.push(`${describe(el)}: ${width.toFixed(1)}x${height.toFixed(1)}px`);
    }
  }
  return problems;
}"""


@dataclass
class Finding:
    """What the tools said about one page state."""

    url: str
    html_file: Path
    axe: dict[str, list[dict]] = field(default_factory=dict)  # size -> violations (all impacts)
    overflow: dict = field(default_factory=dict)
    small_targets: list[str] = field(default_factory=list)
    viewport_meta: str | None = None


def run_axe(page: Page) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE, AXE_TAGS)


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING]


def axe_report(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"  {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:6]:
            lines.append(f"    at {node['target']}: {node['html']}")
            lines.append(f"       {node['summary']}")
        if len(v["nodes"]) > 6:
            lines.append(f"    ... and {len(v['nodes']) - 6} more")
    return "\n".join(lines)


# --- the server and the walk -----------------------------------------------------------------------------

@dataclass
class Site:
    server: LiveServer
    late: LiveServer  # the same database after the registration deadline
    secrets: dict[str, str]  # "seat-ja", "wait-en", ...: personal-link secrets
    staff: dict[str, tuple[str, str]]  # role -> (name, password)

    @property
    def url(self) -> str:
        return self.server.url


def _details(name: str, **overrides) -> Details:
    values = {"family_name": "検査", "given_name": name, "email": f"{name}@example.jp", "organization": "例示株式会社",
              "family_name_kana": "ケンサ", "given_name_kana": "タロウ", "job_title": "SRE", "attend_closing": True}
    return Details(**{**values, **overrides})


def _serve(database_url: str, tmp: Path, rehearsal_clock: str, *, workers: int) -> LiveServer:
    """A gunicorn on a free port with the rehearsal clock at `rehearsal_clock`."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "a11y-test-secret",
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "MAIL_URL": f"file://{tmp / 'outbox'}",
           "REHEARSAL_CLOCK": rehearsal_clock, "PYTHONPATH": str(ROOT)}
    log = tmp / f"gunicorn-{port}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--chdir",
             str(ROOT), "--log-level", "warning", "registration:create_app()"],
            env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    wait_for_port(port, process, log)
    return LiveServer(url=f"http://127.0.0.1:{port}", process=process, outbox=tmp / "outbox", env=env, log=log)


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, tmp_path_factory) -> Iterator[Site]:
    """One gunicorn for the module, with two seats (taken by a Japanese and an English registrant), two people on
    the waiting list, a door staff member and an admin."""
    tmp = tmp_path_factory.mktemp(f"a11y-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp / 'a11y.sqlite'}"
    else:
        request.getfixturevalue("pg_schema_ready")
        database_url = pg_url()
    app = create_app({**_base_config(database_url), "CLOSING_CAPACITY": 2}, instance_path=str(tmp / "instance"))
    secrets: dict[str, str] = {}
    staff = {"door": ("door-a11y", "correct horse door"), "admin": ("admin-a11y", "correct horse admin")}
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        event_service.load_event(event_service.read_event_data())
        for key in ("seat-ja", "seat-en", "wait-ja", "wait-en"):  # in this order: the first two get the seats
            outcome = register(_details(key.replace("-", "")), locale=key[-2:], at=jst(2023, 8, 25, 10))
            secrets[key] = outcome.registrant.secret
        for role, (name, password) in staff.items():
            staff_service.add_staff(name, role=role, password=password)
        db.session.commit()
        db.engine.dispose()

    server = _serve(database_url, tmp, "2023-08-25T10:00:00+09:00", workers=2)
    # The same data on the event day after the deadline, when /admin offers the walk-in form (the rehearsal clock of
    # each value runs on its own: the two servers do not disturb each other).
    late = _serve(database_url, tmp, "2023-09-14T12:00:00+09:00", workers=1)
    try:
        yield Site(server=server, late=late, secrets=secrets, staff=staff)
    finally:
        server.stop()
        late.stop()
        if request.param != "sqlite":
            engine = create_engine(database_url)
            with engine.begin() as conn:
                tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                                           " AND tablename <> 'alembic_version'")).all()
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


def submit(page: Page, form: str = "main form.stack") -> Response:
    """Press the submit button of a form."""
    return navigate(page, lambda: page.locator(f"{form} button[type=submit]").click())


def sign_in(page: Page, name: str, password: str) -> Response:
    page.locator("#name").fill(name)
    page.locator("#password").fill(password)
    return submit(page)


def measure(page: Page, html_file: Path) -> Finding:
    """Run every browser check on the page as loaded at desktop size, then at phone size."""
    finding = Finding(url=page.url, html_file=html_file)
    finding.viewport_meta = page.locator("meta[name=viewport]").get_attribute("content")
    # Every closed <details> opened, as a visitor would: the controls inside are checked too.
    page.evaluate("document.querySelectorAll('details').forEach(details => { details.open = true; })")
    finding.axe["desktop"] = run_axe(page)
    page.set_viewport_size(PHONE)
    finding.axe["phone"] = run_axe(page)
    finding.overflow = page.evaluate(OVERFLOW)
    finding.small_targets = page.evaluate(SMALL_TARGETS, [44, 24])
    page.set_viewport_size(DESKTOP)
    return finding


def walk(browser: Browser, site: Site, lang: str, html_dir: Path) -> dict[str, Finding]:
    """Visit every page state in one language; at each, run every check at desktop size, then at phone size."""
    # axe is injected as a script tag: the browser (not the server) is told to let it past the site's CSP.
    context = browser.new_context(viewport=DESKTOP, locale="ja-JP" if lang == "ja" else "en-GB",
                                  timezone_id="Asia/Tokyo", bypass_csp=True)
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "lang", "value": lang, "url": server.url} for server in (site.server, site.late)])
    page = context.new_page()
    found: dict[str, Finding] = {}

    def record(state: str, response: Response) -> None:
        assert state not in found and list(STATES)[len(found)] == state, f"walk out of order at {state}"
        assert response.status == STATES[state], f"{lang}-{state}: {page.url} answered {response.status}"
        assert page.locator("html").get_attribute("lang") == lang, f"{lang}-{state}: {page.url} is not in {lang}"
        html_file = html_dir / f"{lang}-{state}.html"
        html_file.write_bytes(response.body())  # the HTML as sent, before any script ran
        found[state] = measure(page, html_file)

    try:
        url = site.url
        record("landing", page.goto(url + "/"))
        record("program", page.goto(url + "/program"))
        record("program-session", page.goto(url + page.locator(".program-list a").first.get_attribute("href")))
        record("privacy", page.goto(url + "/privacy"))
        record("register", page.goto(url + "/register"))
        record("register-errors", submit(page))
        for name, value in {"family_name": "検査", "given_name": f"歓迎{lang}", "email": f"welcome-{lang}@example.jp",
                            "organization": "例示株式会社"}.items():
            page.locator(f"#{name}").fill(value)
        page.locator("#consent").check()
        record("welcome", submit(page))
        record("personal-seat", page.goto(f"{url}/me/{site.secrets['seat-' + lang]}"))
        page.locator("#family_name").fill("")
        page.locator("#email").fill("not an address")
        record("personal-errors", submit(page, "main form:has(#family_name)"))
        record("personal-waiting", page.goto(f"{url}/me/{site.secrets['wait-' + lang]}"))
        record("ticket", page.goto(f"{url}/me/{site.secrets['seat-' + lang]}/ticket"))
        record("cancel", page.goto(f"{url}/me/{site.secrets['seat-' + lang]}/cancel"))
        record("erase", page.goto(f"{url}/me/{site.secrets['seat-' + lang]}/delete"))
        record("lost-link", page.goto(url + "/lost-link"))
        record("lost-link-errors", submit(page))
        page.locator("#email").fill(f"seat{lang}@example.jp")
        record("lost-link-sent", submit(page))
        record("not-found", page.goto(url + "/no-such-page"))
        record("login", page.goto(url + "/login"))
        door_name, door_password = site.staff["door"]
        record("login-errors", sign_in(page, door_name, "not the password"))
        record("door", sign_in(page, door_name, door_password))
        page.goto(url + "/login")
        sign_in(page, *site.staff["admin"])
        record("admin", page.goto(url + "/admin"))
        record("attendance", page.goto(url + "/admin/attendance"))
        # After the deadline /admin holds the walk-in form for people at the door who did not register.
        page.goto(site.late.url + "/login")
        sign_in(page, *site.staff["admin"])
        record("walk-in", page.goto(site.late.url + "/admin"))
        record("walk-in-errors", submit(page, "main form:has(#family_name)"))
    finally:
        context.close()
    return found


#: A page with one fault for each check: proof that the checks, as run here, can fail.
PLANTED = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Planted faults</title></head>
<body><main>
<h1>Planted faults</h1>
<img src="data:,">
<p id="twice">One id,</p><p id="twice">twice.</p>
<div style="width: 600px">Wider than a phone.</div>
<p><button style="padding: 0; font-size: 10px">x</button></p>
</main></body>
</html>
"""


@dataclass
class Survey:
    findings: dict[tuple[str, str], Finding]
    planted: Finding
    html_dir: Path


@pytest.fixture(scope="module")
def survey(site, browser, tmp_path_factory) -> Survey:
    html_dir = tmp_path_factory.mktemp("a11y-html")
    findings = {}
    for lang in LANGUAGES:
        findings.update({(lang, state): finding for state, finding in walk(browser, site, lang, html_dir).items()})
    planted_file = html_dir / "planted-faults.html"
    planted_file.write_text(PLANTED)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.set_content(PLANTED)
        planted = measure(page, planted_file)
    finally:
        context.close()
    return Survey(findings=findings, planted=planted, html_dir=html_dir)


@pytest.fixture(scope="module")
def vnu_messages(survey) -> dict[str, list[dict]]:
    """The Nu HTML checker's messages per page file, from one run over every page (the JVM starts slowly)."""
    java = shutil.which("java")
    assert java, "The HTML checks need Java (apt-get install default-jre-headless; scripts/test installs it)"
    files = sorted(survey.html_dir.glob("*.html"))
    result = subprocess.run([java, "-jar", str(VNU), "--format", "json", *map(str, files)],
                            capture_output=True, text=True, timeout=600)
    report = json.loads(result.stderr)  # vnu writes its report to stderr; exit status 1 when it found errors
    by_page: dict[str, list[dict]] = defaultdict(list)
    for message in report["messages"]:
        by_page[Path(unquote(urlsplit(message.get("url", "")).path)).stem].append(message)
    assert set(by_page) <= {f.stem for f in files}, f"vnu could not read: {set(by_page) - {f.stem for f in files}}"
    return by_page


# --- the checks, page by page ----------------------------------------------------------------------------

def test_every_check_finds_the_planted_faults(survey, vnu_messages):
    """The checks below pass because the pages are right, not because a tool did not run."""
    planted = survey.planted
    for size in ("desktop", "phone"):
        assert "image-alt" in {v["id"] for v in blocking(planted.axe[size])}, planted.axe[size]
    vnu = [m["message"] for m in vnu_messages["planted-faults"] if m["type"] == "error"]
    assert any("Duplicate ID" in m for m in vnu) and any("alt" in m for m in vnu), vnu
    assert planted.overflow["scrollWidth"] > planted.overflow["clientWidth"], planted.overflow
    assert any(target.startswith('button "x"') for target in planted.small_targets), planted.small_targets



def fail_unless_empty(problems, heading: str) -> None:
    """Fail with a readable list (not pytest's rewrite of a long assert)."""
    if problems:
        pytest.fail(heading + "\n" + (problems if isinstance(problems, str) else "\n".join(problems)), pytrace=False)


@pytest.mark.parametrize(("lang", "state"), CASES, ids=CASE_IDS)
def test_axe_finds_no_serious_or_critical_violation(survey, lang, state):
    finding = survey.findings[lang, state]
    report = "\n".join(f"{size} ({'x'.join(map(str, (DESKTOP if size == 'desktop' else PHONE).values()))}):\n"
                       f"{axe_report(blocking(found))}" for size, found in finding.axe.items() if blocking(found))
    fail_unless_empty(report, f"axe-core on {finding.url}:")


@pytest.mark.parametrize(("lang", "state"), CASES, ids=CASE_IDS)
def test_nu_html_checker_finds_no_error(vnu_messages, survey, lang, state):
    finding = survey.findings[lang, state]
    errors = [m for m in vnu_messages.get(finding.html_file.stem, []) if m["type"] in ("error", "non-document-error")]
    fail_unless_empty([f"  line {m.get('lastLine', '?')}: {m['message']}\n    {m.get('extract', '').strip()}"
                       for m in errors], f"vnu on the HTML of {finding.url} (saved as {finding.html_file}):")


@pytest.mark.parametrize(("lang", "state"), CASES, ids=CASE_IDS)
def test_phone_page_does_not_scroll_sideways(survey, lang, state):
    finding = survey.findings[lang, state]
    if not finding.viewport_meta or "width=device-width" not in finding.viewport_meta:
        pytest.fail(f"{finding.url}: no <meta name=viewport content=width=device-width>: a phone shows it zoomed out",
                    pytrace=False)
    overflow = finding.overflow
    if overflow["scrollWidth"] > overflow["clientWidth"]:
        fail_unless_empty([f"  {culprit}" for culprit in overflow["culprits"]],
                          f"{finding.url} is {overflow['scrollWidth']}px wide on a {overflow['clientWidth']}px phone:")


@pytest.mark.parametrize(("lang", "state"), CASES, ids=CASE_IDS)
def test_phone_tap_targets_are_44px(survey, lang, state):
    finding = survey.findings[lang, state]
    fail_unless_empty([f"  {target}" for target in finding.small_targets],
                      f"tap targets under 44x44 CSS px on {finding.url} at 390px:")


# --- forms with errors, as a screen reader meets them ------------------------------------------------------

SIZES = {
    "desktop": {"viewport": DESKTOP},
    "phone": {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(params=[(lang, size) for lang in LANGUAGES for size in SIZES], ids=lambda p: f"{p[0]}-{p[1]}")
def visitor(request, browser, site) -> Iterator[tuple[Page, str]]:
    """A page in one language at one size, as the site serves it (its CSP enforced: no test script injected)."""
    lang, size = request.param
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-GB", timezone_id="Asia/Tokyo",
                                  **SIZES[size])
    context.set_default_timeout(10_000)
    context.add_cookies([{"name": "lang", "value": lang, "url": site.url}])
    try:
        yield context.new_page(), lang
    finally:
        context.close()


def accessibility_node(page: Page, selector: str) -> dict:
    """The element's node in Chromium's accessibility tree (what a screen reader is given): role, name,
    description and whether it is invalid."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node_id = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node_id, f"no element {selector}"
        [node, *_] = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False})["nodes"]
    finally:
        cdp.detach()
    properties = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
    return {"role": node["role"]["value"], "name": node.get("name", {}).get("value", ""),
            "description": node.get("description", {}).get("value", ""), "invalid": properties.get("invalid")}


def assert_summary_focused_and_in_view(page: Page) -> None:
    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_focused()  # autofocus, no script
    box = page.evaluate("""() => { const r = document.activeElement.getBoundingClientRect();
                                   return {top: r.top, bottom: r.bottom, height: innerHeight}; }""")
    assert 0 <= box["top"] < box["height"], f"the focused error summary is out of view: {box}"


def assert_summary_lists(page: Page, lang: str, expected: list[tuple[str, str]]) -> None:
    """The summary is a region named by its heading, with a list of links to the fields: (id, link text)."""
    heading = msg(lang, "There is a problem")

    def node(role: str, name: str, attributes: str = "") -> str:  # quoted as YAML: a name may hold ": "
        key = f"{role} {json.dumps(name, ensure_ascii=False)}{attributes}"
        return "'" + key.replace("'", "''") + "'"

    items = "".join(f"\n    - listitem:\n      - {node('link', text_)}:\n        - /url: '#{id_}'"
                    for id_, text_ in expected)
    expect(page.get_by_test_id("error-summary")).to_match_aria_snapshot(
        f"- {node('region', heading)}:\n  - {node('heading', heading, ' [level=2]')}\n  - list:{items}")
    links = page.get_by_test_id("error-summary").get_by_role("link")
    expect(links).to_have_count(len(expected))  # and no other
    for id_, _ in expected:
        expect(page.locator(f"#{id_}")).to_have_count(1)


def assert_field_announced_invalid(page: Page, id_: str, message: str) -> None:
    """A screen reader on the field hears it is invalid, and its message as the description."""
    node = accessibility_node(page, f"#{id_}")
    assert node["invalid"] == "true" and message in node["description"], f"#{id_} in the accessibility tree: {node}"


def assert_group_described(page: Page, id_: str, message: str) -> None:
    """Entering the group (fieldset), a screen reader hears its message."""
    node = accessibility_node(page, f"#{id_}")
    assert node["role"] == "group" and message in node["description"], f"#{id_} in the accessibility tree: {node}"


def field_error(lang: str, label: str, message: str) -> str:
    return msg(lang, "%(field)s: %(message)s", field=msg(lang, label), message=message)


def test_register_errors_summary_focused_and_linked(visitor, site, request):
    page, lang = visitor
    page.goto(site.url + "/register")
    # Errors of every kind of field: required text, kana, email, the language radios and the sessions checkboxes
    # (values a forged or outdated form would send), and the consent checkbox.
    page.locator("#given_name").fill("太郎")
    page.locator("#family_name_kana").fill("Yamada")
    page.locator("#email").fill("not an address")
    page.evaluate("""() => {
        const radio = document.querySelector('input[name=locale]'); radio.value = 'xx'; radio.checked = true;
        const form = document.querySelector('main form.stack'), box = document.createElement('input');
        Object.assign(box, {type: 'checkbox', name: 'sessions', value: 'no-such-session', checked: true, hidden: true});
        form.append(box); }""")
    response = submit(page)
    assert response.status == 422
    assert_summary_focused_and_in_view(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = f"accessibility-register-errors-{request.node.callspec.id}"
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))  # what the visitor sees first
    page.screenshot(path=str(SCREENSHOTS / f"{name}-full.png"), full_page=True)

    fill_in = msg(lang, "Please fill in this field.")
    kana = msg(lang, "Please write this in katakana or hiragana.")
    email = msg(lang, "Please enter a valid email address, e.g. taro@example.jp.")
    language = msg(lang, "Please choose 日本語 or English.")
    sessions = msg(lang, "These sessions are not in the program (any more): %(keys)s. Please choose again.",
                   keys="no-such-session")
    consent = msg(lang, "Please agree to the privacy policy to register.")
    assert_summary_lists(page, lang, [
        ("family_name", field_error(lang, "Family name", fill_in)),
        ("family_name_kana", field_error(lang, "Family name (kana)", kana)),
        ("email", field_error(lang, "Email", email)),
        ("organization", field_error(lang, "Organization", fill_in)),
        ("locale", field_error(lang, "Language for your pages and mail", language)),
        ("sessions", field_error(lang, "Sessions to watch", sessions)),
        ("consent", consent),
    ])
    # A link in the summary takes the visitor to the field, ready to type.
    page.get_by_test_id("error-summary").locator('a[href="#email"]').click()
    expect(page.locator("#email")).to_be_focused()
    expect(page.locator("label[for=email]")).to_be_in_viewport()  # what to type is in view too
    for id_, message in [("family_name", fill_in), ("family_name_kana", kana), ("email", email),
                         ("organization", fill_in), ("consent", consent)]:
        assert_field_announced_invalid(page, id_, message)
    assert_group_described(page, "locale", language)
    assert_group_described(page, "sessions", sessions)


def test_personal_page_errors_scrolled_to_the_summary(visitor, site):
    page, lang = visitor
    page.goto(f"{site.url}/me/{site.secrets['wait-' + lang]}")
    page.locator("#organization").fill("")
    response = submit(page, "main form:has(#family_name)")
    assert response.status == 422
    # The details form is far down the page: the summary above it is focused and scrolled into view (on a loaded
    # machine the scroll can land a moment after the load event, so it is waited for, and fails if it never comes).
    page.wait_for_function("scrollY > 0", timeout=5000)
    assert_summary_focused_and_in_view(page)
    fill_in = msg(lang, "Please fill in this field.")
    assert_summary_lists(page, lang, [("organization", field_error(lang, "Organization", fill_in))])
    assert_field_announced_invalid(page, "organization", fill_in)


def test_sign_in_errors_summary(visitor, site):
    page, lang = visitor
    page.goto(site.url + "/login")
    response = sign_in(page, "nobody-here", "not the password")
    assert response.status == 401
    assert_summary_focused_and_in_view(page)
    wrong = msg(lang, "Wrong name or password.")
    assert_summary_lists(page, lang, [("password", field_error(lang, "Password", wrong))])
    assert_field_announced_invalid(page, "password", wrong)


def test_expired_form_keeps_its_own_message(visitor, site):
    page, lang = visitor
    page.goto(site.url + "/register")
    page.locator("#family_name").fill("山田")
    page.evaluate("document.querySelector('main form.stack [name=csrf_token]').value = 'expired'")
    response = submit(page)
    assert response.status == 422
    expect(page.get_by_role("alert")).to_have_text(
        msg(lang, "This form had expired. Your input is kept: please check it and send it again."))
    expect(page.get_by_test_id("error-summary")).to_have_count(0)
    expect(page.locator("#family_name")).to_have_value("山田")
