"""The exports stream: in a real gunicorn worker, a large export starts arriving long before its end, and the
worker's peak memory stays low, on SQLite and on PostgreSQL."""

import csv
import io
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from registration.extensions import db
from registration.models import ProgramSession, Registrant, SessionView
from registration.services import staff as staff_service
from tests.conftest import Browserless, jst

REGISTRANTS = 100_000
VIEWS = 20_000
PEAK_RSS_LIMIT_KB = 150 * 1024


def _fill(app) -> list[int]:
    """REGISTRANTS registrations and VIEWS views, written with Core executemany in batches (seconds, not minutes)."""
    registered = jst(2023, 8, 1, 9)
    with app.app_context():
        staff_service.add_staff("export-admin", role="admin", password="a long admin password")
        session_ids = db.session.scalars(select(ProgramSession.id).order_by(ProgramSession.id)).all()
        for start in range(0, REGISTRANTS, 10_000):
            db.session.execute(insert(Registrant), [{
                "secret": f"secret-{n:08d}-{'x' * 30}", "email": f"person{n}@example.jp",
                "email_key": f"person{n}@example.jp", "family_name": "山田", "given_name": f"太郎{n}",
                "family_name_kana": "ヤマダ", "given_name_kana": "タロウ", "organization": f"例示株式会社 第{n % 97}部",
                "job_title": "SRE", "attend_closing": False, "locale": "ja", "consented_at": registered,
                "registered_at": registered, "updated_at": registered, "seat_status": "none", "on_site": False,
                "search_key": ""} for n in range(start, min(start + 10_000, REGISTRANTS))])
        first_id = db.session.scalar(select(Registrant.id).order_by(Registrant.id).limit(1))
        db.session.execute(insert(SessionView), [{
            "registrant_id": first_id + n, "session_id": session_ids[n % len(session_ids)],
            "at": jst(2023, 8, 25, 12), "window": "on_demand", "slot": 0} for n in range(VIEWS)])
        db.session.commit()
    return session_ids


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in kB (VmHWM: the peak resident set size so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _download(visitor: Browserless, url: str) -> tuple[float, float, bytes, dict]:
    """Seconds to the first 64 KiB, seconds to the end, the body and the headers."""
    started = time.monotonic()
    with visitor.opener.open(url, timeout=120) as response:
        headers = dict(response.headers)
        first = response.read(64 * 1024)
        first_at = time.monotonic() - started
        rest = response.read()
    return first_at, time.monotonic() - started, first + rest, headers


@pytest.mark.timeout(600)
def test_a_large_export_streams_in_constant_memory(live_server, make_app, database_url):
    server = live_server(workers=1)
    app = make_app()
    started = time.monotonic()
    _fill(app)
    filled = time.monotonic() - started
    worker = _worker_pid(server.process.pid)
    visitor = Browserless(server.url)
    token = visitor.csrf_token("/login")
    assert visitor.post("/login", {"name": "export-admin", "password": "a long admin password",
                                   "csrf_token": token}) == 303
    baseline = _status(worker, "VmHWM")

    report = [f"{database_url.split(':')[0]}: filled {REGISTRANTS} registrants and {VIEWS} views in {filled:.1f}s; "
              f"worker peak before the exports {baseline // 1024} MB"]
    for path, rows in (("/admin/registrants.csv", REGISTRANTS), ("/admin/registrants.csv?encoding=cp932", REGISTRANTS),
                       ("/admin/views.csv", VIEWS), ("/admin/attendance/records.csv", VIEWS)):
        first_at, total, body, headers = _download(visitor, server.url + path)
        cp932 = "cp932" in path
        assert headers["Content-Type"] == ("text/csv; charset=shift_jis" if cp932 else "text/csv; charset=utf-8")
        assert headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers
        text = body.decode("cp932" if cp932 else "utf-8-sig")
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        assert len(parsed) == rows + 1, path
        peak = _status(worker, "VmHWM")
        report.append(f"{path}: {len(body) / 2**20:.1f} MiB, first 64 KiB after {first_at:.3f}s, whole after "
                      f"{total:.2f}s, worker peak {peak // 1024} MB")
        assert peak < PEAK_RSS_LIMIT_KB, report
        # Not one row too many held: loading the 100,000 registrants (as the old export did) added well over 100 MB.
        assert peak - baseline < 20 * 1024, report
        if not cp932:
            # The first bytes come at once, while most of the file is still being read from the database.
            assert first_at < 1.0 and first_at < total / 2, report
    print("\n".join(report))
    assert "Traceback" not in server.errors()


# --- in a real browser -----------------------------------------------------------------------------------

@pytest.mark.browser
def test_exports_page_and_problems_page_in_chromium(live_server, make_app):
    from playwright.sync_api import expect, sync_playwright

    from registration.services.registrations import Details, register
    from tests.test_browser import PHONE, SCREENSHOTS, ja, navigate, no_horizontal_scroll

    server = live_server(workers=1)
    app = make_app()
    with app.app_context():
        staff_service.add_staff("export-admin", role="admin", password="a long admin password")
        for family, given, organization in (("𠮷田", "太郎", "寿司🍣株式会社"), ("髙橋", "花子", "波〜ダッシュ商事"),
                                            ("Smith", "John", "=cmd|' /C calc'!A0")):
            register(Details(family_name=family, given_name=given, email=f"{given}@example.jp",
                             organization=organization, family_name_kana="ヨシダ", given_name_kana="タロウ",
                             job_title="", attend_closing=False), locale="ja", at=jst(2023, 8, 25, 10))
        db.session.commit()
        yoshida = db.session.scalar(select(Registrant.id).where(Registrant.family_name == "𠮷田"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True,
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(server.url + "/login")
            page.locator("[name=name]").fill("export-admin")
            page.locator("[name=password]").fill("a long admin password")
            navigate(page, lambda: page.locator("main").get_by_role("button").click())
            page.goto(server.url + "/admin/exports")
            expect(page.locator("h1")).to_have_text(ja("Exports"))
            expect(page.locator("[data-testid=exports] > li")).to_have_count(7)
            page.screenshot(path=str(SCREENSHOTS / "admin-exports.png"), full_page=True)

            # UTF-8 downloads straight away, every character kept.
            with page.expect_download() as download:
                page.locator("[data-testid=export-registrants]").get_by_role("link", name=ja("UTF-8 (CSV)")).click()
            assert download.value.suggested_filename == "codt2023-registrants.csv"
            utf8 = Path(download.value.path()).read_bytes().decode("utf-8-sig")
            assert "𠮷田" in utf8 and "寿司🍣株式会社" in utf8 and "'=cmd|' /C calc'!A0" in utf8

            # Shift_JIS first lists what it cannot hold, naming the person.
            navigate(page, lambda: page.locator("[data-testid=export-registrants]")
                     .get_by_role("link", name=ja("Shift_JIS (CSV)")).click())
            expect(page.locator("h1")).to_have_text(ja("Characters Shift_JIS cannot hold"))
            problems = page.locator("[data-testid=problem]")
            expect(problems).to_have_count(2)
            expect(problems.nth(0)).to_contain_text("family_name")
            expect(problems.nth(0)).to_contain_text("𠮷")
            expect(problems.nth(1)).to_contain_text("🍣")
            assert problems.nth(0).get_by_role("link").get_attribute("href") == f"/admin/registrants/{yoshida}"
            page.screenshot(path=str(SCREENSHOTS / "admin-exports-problems.png"), full_page=True)
            with page.expect_download() as download:
                page.get_by_role("link", name=ja("Download in Shift_JIS with these characters replaced by 〓")).click()
            assert download.value.suggested_filename == "codt2023-registrants-sjis.csv"
            sjis = Path(download.value.path()).read_bytes().decode("cp932")
            assert "〓田" in sjis and "寿司〓株式会社" in sjis and "波～ダッシュ商事" in sjis and "髙橋" in sjis

            page.set_viewport_size(PHONE)
            page.reload()
            no_horizontal_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "admin-exports-problems-phone.png"), full_page=True)
            page.goto(server.url + "/admin/exports")
            no_horizontal_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "admin-exports-phone.png"), full_page=True)
            page.goto(server.url + "/admin/registrants.csv?encoding=latin-1")
            page.screenshot(path=str(SCREENSHOTS / "admin-exports-bad-encoding-phone.png"), full_page=True)
        finally:
            browser.close()
    assert "Traceback" not in server.errors()
