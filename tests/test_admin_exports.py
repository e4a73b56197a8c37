"""The organisers' exports: exact rows for data made here, UTF-8 with a BOM or Shift_JIS (with its problems listed
first), formulas defused everywhere, and who may download."""

import csv
import io
import re

import pytest
from sqlalchemy import select, update

from registration.extensions import db
from registration.models import DeviceToken, ProgramSession, Registrant
from registration.services import checkins, registrations, viewing
from registration.services import staff as staff_service
from tests.conftest import jst
from tests.test_staff import login

EXPORT_PATHS = ["/admin/registrants.csv", "/admin/checkins.csv", "/admin/refused-scans.csv", "/admin/signups.csv",
                "/admin/views.csv", "/admin/attendance/records.csv", "/admin/attendance.csv"]
TAGGING, LOKI = "ntt-east-aws-tagging", "openinfra-loki-stack"


def read_csv(response) -> list[dict]:
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff") and "\r\n" in body
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"), newline="")))


def rows_of(response, encoding: str = "utf-8-sig") -> list[list[str]]:
    """The CSV as a spreadsheet reads it: decoded, then split by the csv module (header included)."""
    return list(csv.reader(io.StringIO(response.get_data().decode(encoding), newline="")))


def test_the_registrations_export_says_who_registered_for_what_and_who_came(app, client, make_staff,
                                                                             make_registrant, make_attendee):
    came = make_attendee(family_name="来場", organization="@SUM(A1)")
    stayed_home = make_registrant(family_name="在宅")
    gone = make_registrant(family_name="取消")
    door_name, door_password = make_staff("door")
    with app.app_context():
        viewing.change_signups(db.session.get(Registrant, stayed_home.id), [TAGGING, LOKI])
        door = staff_service.find_staff(door_name)
        checkins.check_in(code=db.session.get(Registrant, came.id).ticket_code, gate="door-2", staff_id=door.id)
        registrations.cancel(db.session.get(Registrant, gone.id))
        db.session.commit()

    login(client, door_name, door_password)
    assert client.get("/admin/registrants.csv").status_code == 403
    client.post("/logout")
    login(client, *make_staff("admin"))
    response = client.get("/admin/registrants.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=codt2023-registrants.csv"
    rows = {row["family_name"]: row for row in read_csv(response)}
    assert set(rows) == {"来場", "在宅", "取消"}
    assert (rows["来場"]["closing_event"], rows["来場"]["gate"], rows["来場"]["organization"]) == (
        "confirmed", "door-2", "'@SUM(A1)")
    assert rows["来場"]["checked_in_at_jst"] == "2023-08-25T10:00:00.000+09:00"
    assert (rows["在宅"]["closing_event"], rows["在宅"]["checked_in_at_jst"], rows["在宅"]["sessions_signed_up"]) == (
        "none", "", "2")
    assert rows["取消"]["cancelled_at_jst"] == "2023-08-25T10:00:00.000+09:00"
    assert rows["取消"]["sessions_signed_up"] == "0"


# --- a small world with every kind of row ----------------------------------------------------------------

@pytest.fixture
def world(app, make_registrant, make_attendee, make_staff, frozen_clock, program_with_video):
    """Registrants (one checked in, undone and checked in again; one cancelled; one erased; one in English), scans
    refused for each reason, sign-ups with a withdrawal, and views; every moment chosen. Returns the ids."""
    frozen_clock(jst(2023, 8, 25, 9, 0))
    came = make_attendee(family_name="髙橋", given_name="一郎", family_name_kana="タカハシ", given_name_kana="イチロウ",
                         organization="+Plus 株式会社", job_title="課長〜部長", email="ichiro@example.jp")
    frozen_clock(jst(2023, 8, 25, 9, 1))
    watcher = make_registrant(family_name="佐藤", given_name="花子", family_name_kana="サトウ",
                              given_name_kana="ハナコ", organization='=HYPERLINK("http://evil.example")',
                              job_title="ＳＲＥ", email="hanako@example.jp")
    frozen_clock(jst(2023, 8, 25, 9, 2))
    gone = make_attendee(family_name="取消", given_name="次郎", family_name_kana="トリケシ", given_name_kana="ジロウ",
                         organization="-1+2", job_title="", email="jiro@example.jp")
    frozen_clock(jst(2023, 8, 25, 9, 3))
    erased = make_registrant(family_name="消去", given_name="三郎", organization="消える株式会社",
                             email="saburo@example.jp")
    frozen_clock(jst(2023, 8, 25, 9, 4))
    english = make_registrant(locale="en", family_name="Smith", given_name="John", family_name_kana="",
                              given_name_kana="", organization="@Acme", job_title="CTO", email="john@example.com")
    admin_name, _ = make_staff("admin", name="kato")
    door_name, _ = make_staff("door", name="suzuki")
    with app.app_context():
        admin = staff_service.find_staff(admin_name)
        door = staff_service.find_staff(door_name)
        staff_service.new_device_token(door, device_name="gate-ipad")
        device = db.session.scalar(select(DeviceToken).where(DeviceToken.name == "gate-ipad"))
        person = {r.id: r for r in db.session.scalars(select(Registrant))}
        came_code, gone_code = person[came.id].ticket_code, person[gone.id].ticket_code
        # A speaker organisation that reads as a formula, for the attendance figures.
        db.session.execute(update(ProgramSession).where(ProgramSession.key == LOKI)
                           .values(speaker_organization="@Loki Team"))

        first = checkins.check_in(code=came_code, gate="door-2", staff_id=door.id, at=jst(2023, 8, 25, 10, 0))
        checkins.undo(first.body["checkin_id"], staff_id=admin.id, at=jst(2023, 8, 25, 10, 5))
        checkins.check_in(code=came_code, gate="door-1", staff_id=door.id, device_id=device.id,
                          at=jst(2023, 8, 25, 10, 10))
        registrations.cancel(person[gone.id], at=jst(2023, 8, 25, 9, 30), by=admin)

        viewing.change_signups(person[watcher.id], [TAGGING, LOKI], at=jst(2023, 8, 25, 11, 0))
        viewing.change_signups(person[watcher.id], [TAGGING], at=jst(2023, 8, 25, 11, 30))
        viewing.change_signups(person[erased.id], [LOKI], at=jst(2023, 8, 25, 11, 40))
        viewing.watch(person[watcher.id], TAGGING, at=jst(2023, 8, 25, 12, 0))
        viewing.watch(person[watcher.id], TAGGING, at=jst(2023, 8, 25, 12, 5))  # same quarter: not another view
        viewing.watch(person[erased.id], LOKI, at=jst(2023, 8, 25, 12, 20))
        viewing.watch(person[came.id], LOKI, at=jst(2023, 8, 25, 12, 30))
        registrations.erase(person[erased.id], by=admin, at=jst(2023, 8, 25, 13, 0))

        refusals = [
            dict(code="=1+1", at=jst(2023, 8, 25, 14, 0)),                        # cannot be a code at all
            dict(code="Z" * 26, at=jst(2023, 8, 25, 14, 1)),                      # the shape of one, but nobody's
            dict(code=gone_code, at=jst(2023, 8, 25, 14, 2)),                     # cancelled
            dict(registrant_id=watcher.id, at=jst(2023, 8, 25, 14, 3)),           # no ticket (manual button)
            dict(code=came_code, device_id=device.id, at=jst(2023, 8, 25, 14, 4)),  # already in
        ]
        for refusal in refusals:
            checkins.check_in(gate="door-1", staff_id=door.id, **refusal)
        db.session.commit()
        titles = dict(db.session.execute(select(ProgramSession.key, ProgramSession.title)).all())
    return {"came": came.id, "watcher": watcher.id, "gone": gone.id, "erased": erased.id, "english": english.id,
            "titles": titles, "admin": admin_name}


@pytest.fixture
def admin_client(client, world):
    login(client, world["admin"], f"correct horse {world['admin']}")
    return client


def test_registrants_export_exact_rows(admin_client, world):
    rows = rows_of(admin_client.get("/admin/registrants.csv"))
    ids = world
    assert rows == [
        ["registrant_id", "registered_at_jst", "cancelled_at_jst", "erased_at_jst", "family_name", "given_name",
         "family_name_kana", "given_name_kana", "email", "organization", "job_title", "language", "closing_event",
         "seat_confirmed_at_jst", "on_site", "checked_in_at_jst", "gate", "sessions_signed_up", "sessions_watched"],
        [str(ids["came"]), "2023-08-25T09:00:00.000+09:00", "", "", "髙橋", "一郎", "タカハシ", "イチロウ",
         "ichiro@example.jp", "'+Plus 株式会社", "課長〜部長", "ja", "confirmed", "2023-08-25T09:00:00.000+09:00", "",
         "2023-08-25T10:10:00.000+09:00", "door-1", "0", "1"],
        [str(ids["watcher"]), "2023-08-25T09:01:00.000+09:00", "", "", "佐藤", "花子", "サトウ", "ハナコ",
         "hanako@example.jp", "'=HYPERLINK(\"http://evil.example\")", "ＳＲＥ", "ja", "none", "", "", "", "", "1",
         "1"],
        [str(ids["gone"]), "2023-08-25T09:02:00.000+09:00", "2023-08-25T09:30:00.000+09:00", "", "取消", "次郎",
         "トリケシ", "ジロウ", "jiro@example.jp", "'-1+2", "", "ja", "none", "", "", "", "", "0", "0"],
        # Erased: the row stays for the counts, without the person; the placeholder address is not shown.
        [str(ids["erased"]), "2023-08-25T09:03:00.000+09:00", "2023-08-25T13:00:00.000+09:00",
         "2023-08-25T13:00:00.000+09:00", "", "", "", "", "", "", "", "ja", "none", "", "", "", "", "0", "1"],
        [str(ids["english"]), "2023-08-25T09:04:00.000+09:00", "", "", "Smith", "John", "", "", "john@example.com",
         "'@Acme", "CTO", "en", "none", "", "", "", "", "0", "0"],
    ]


def test_checkins_export_lists_every_admission_with_the_undone_one(admin_client, world):
    response = admin_client.get("/admin/checkins.csv")
    assert response.headers["Content-Disposition"] == "attachment; filename=codt2023-checkins.csv"
    came = str(world["came"])
    assert rows_of(response) == [
        ["checkin_id", "checked_in_at_jst", "gate", "staff", "device", "undone_at_jst", "undone_by", "registrant_id",
         "family_name", "given_name", "email", "organization", "received_at_jst"],
        ["1", "2023-08-25T10:00:00.000+09:00", "door-2", "suzuki", "", "2023-08-25T10:05:00.000+09:00", "kato",
         came, "髙橋", "一郎", "ichiro@example.jp", "'+Plus 株式会社", "2023-08-25T10:00:00.000+09:00"],
        ["2", "2023-08-25T10:10:00.000+09:00", "door-1", "suzuki", "gate-ipad", "", "", came, "髙橋", "一郎",
         "ichiro@example.jp", "'+Plus 株式会社", "2023-08-25T10:10:00.000+09:00"],
    ]


def test_refused_scans_export_gives_each_reason_and_what_was_scanned(admin_client, world):
    rows = rows_of(admin_client.get("/admin/refused-scans.csv"))
    assert rows[0] == ["scan_id", "scanned_at_jst", "gate", "staff", "device", "result", "reason", "code_problem",
                       "scanned", "registrant_id", "family_name", "given_name", "email", "organization",
                       "received_at_jst", "offline_result", "conflict", "conflict_dealt_with_at_jst"]
    # Answered online: received when scanned, no offline decision, no conflict (tests/test_door_conflicts.py has one).
    assert all(row[14] == row[1] and row[15:] == ["", "", ""] for row in rows[1:])
    rows = [row[:14] for row in rows]
    # The two admissions are scans 1 and 3 (the undo is not a scan): the refused ones follow, in time order.
    assert [row[1:] for row in rows[1:]] == [
        ["2023-08-25T14:00:00.000+09:00", "door-1", "suzuki", "", "unknown_code", "", "bad_characters", "'=1+1", "", "",
         "", "", ""],
        ["2023-08-25T14:01:00.000+09:00", "door-1", "suzuki", "", "unknown_code", "", "", "ZZZZ…", "", "", "", "",
         ""],
        ["2023-08-25T14:02:00.000+09:00", "door-1", "suzuki", "", "not_admitted", "cancelled", "",
         rows[3][8], str(world["gone"]), "取消", "次郎", "jiro@example.jp", "'-1+2"],
        ["2023-08-25T14:03:00.000+09:00", "door-1", "suzuki", "", "not_admitted", "no_ticket", "",
         f"#{world['watcher']}", str(world["watcher"]), "佐藤", "花子", "hanako@example.jp",
         "'=HYPERLINK(\"http://evil.example\")"],
        ["2023-08-25T14:04:00.000+09:00", "door-1", "suzuki", "gate-ipad", "already_checked_in", "", "",
         rows[5][8], str(world["came"]), "髙橋", "一郎", "ichiro@example.jp", "'+Plus 株式会社"],
    ]
    # A scan shows by its first four characters: a whole code (known, or inside an unknown text) would let anyone
    # reading the file in.
    assert re.fullmatch(r"[2-7A-Z]{4}…", rows[3][8]) and re.fullmatch(r"[2-7A-Z]{4}…", rows[5][8])
    assert [row[0] for row in rows[1:]] == ["3", "4", "5", "6", "7"]


def test_signups_views_and_history_exports(admin_client, world):
    tagging, loki = world["titles"][TAGGING], world["titles"][LOKI]
    watcher, erased, came = str(world["watcher"]), str(world["erased"]), str(world["came"])
    hanako = [watcher, "佐藤", "花子", "hanako@example.jp", "'=HYPERLINK(\"http://evil.example\")"]
    nobody = [erased, "", "", "", ""]
    signups = rows_of(admin_client.get("/admin/signups.csv"))
    assert signups[0] == ["signed_up_at_jst", "withdrawn_at_jst", "registrant_id", "family_name", "given_name",
                          "email", "organization", "session", "title"]
    # Both made by one save, at the same moment: in either order.
    assert sorted(signups[1:3]) == sorted([
        ["2023-08-25T11:00:00.000+09:00", "", *hanako, TAGGING, tagging],
        ["2023-08-25T11:00:00.000+09:00", "2023-08-25T11:30:00.000+09:00", *hanako, LOKI, loki]])
    # The erased person's sign-up was withdrawn by the erasure; the row keeps only the id.
    assert signups[3:] == [["2023-08-25T11:40:00.000+09:00", "2023-08-25T13:00:00.000+09:00", *nobody, LOKI, loki]]
    assert rows_of(admin_client.get("/admin/views.csv")) == [
        ["viewed_at_jst", "window", "registrant_id", "family_name", "given_name", "email", "organization", "session",
         "title"],
        ["2023-08-25T12:00:00.000+09:00", "on_demand", *hanako, TAGGING, tagging],
        ["2023-08-25T12:20:00.000+09:00", "on_demand", *nobody, LOKI, loki],
        ["2023-08-25T12:30:00.000+09:00", "on_demand", came, "髙橋", "一郎", "ichiro@example.jp", "'+Plus 株式会社",
         LOKI, loki],
    ]
    history = rows_of(admin_client.get("/admin/attendance/records.csv"))
    assert history[0] == ["at_jst", "record", "email", "name", "organization", "session", "title", "window",
                          "registrant_id"]
    assert [row[:2] + row[5:6] + row[7:] for row in history[1:]] == [
        ["2023-08-25T11:00:00.000+09:00", "signup", history[1][5], "", watcher],
        ["2023-08-25T11:00:00.000+09:00", "signup", history[2][5], "", watcher],
        ["2023-08-25T11:30:00.000+09:00", "withdrawal", LOKI, "", watcher],
        ["2023-08-25T11:40:00.000+09:00", "signup", LOKI, "", erased],
        ["2023-08-25T12:00:00.000+09:00", "view", TAGGING, "on_demand", watcher],
        ["2023-08-25T12:20:00.000+09:00", "view", LOKI, "on_demand", erased],
        ["2023-08-25T12:30:00.000+09:00", "view", LOKI, "on_demand", came],
        ["2023-08-25T13:00:00.000+09:00", "withdrawal", LOKI, "", erased],
    ]
    assert {history[1][5], history[2][5]} == {TAGGING, LOKI}
    assert history[1][2:5] == ["hanako@example.jp", "佐藤 花子", "'=HYPERLINK(\"http://evil.example\")"]
    assert history[4][2:5] == ["", "", ""]  # erased


def test_attendance_figures_per_session(admin_client, world):
    rows = {row["session"]: row for row in csv.DictReader(
        io.StringIO(admin_client.get("/admin/attendance.csv").get_data().decode("utf-8-sig"), newline=""))}
    assert {key: (row["signups"], row["watchers"], row["views"], row["watched_without_signup"])
            for key, row in rows.items() if key in (TAGGING, LOKI)} == {
        TAGGING: ("1", "1", "1", "0"), LOKI: ("0", "2", "2", "2")}
    assert rows[LOKI]["speaker_organization"] == "'@Loki Team"
    assert all(row["signups"] == row["views"] == "0" for key, row in rows.items() if key not in (TAGGING, LOKI))


@pytest.mark.parametrize("path", EXPORT_PATHS)
def test_every_export_is_a_streamed_bom_crlf_csv_with_formulas_defused(admin_client, world, path):
    response = admin_client.get(path)
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"attachment; filename=codt2023-[a-z-]+\.csv", response.headers["Content-Disposition"])
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
    # Every export holds one of the formula-looking values made above, and none of them unguarded.
    assert any(cell.startswith("'") and cell[1:2] in "=+-@" for cell in cells), path
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells), path


@pytest.mark.parametrize("path", EXPORT_PATHS)
def test_every_export_in_shift_jis_decodes_to_the_same_text(admin_client, world, path):
    utf8 = admin_client.get(path).get_data().decode("utf-8-sig")
    response = admin_client.get(path + "?encoding=cp932")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=shift_jis"
    assert response.headers["Content-Disposition"].endswith("-sjis.csv")
    body = response.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    # The JIS wave dash is written as cp932's (～), the one difference; 髙 is in cp932 (NEC-selected IBM ext.).
    assert body.decode("cp932") == utf8.replace("〜", "～")
    if path == "/admin/registrants.csv":
        assert "課長～部長" in body.decode("cp932") and "髙橋" in body.decode("cp932")
        assert "〓" not in body.decode("cp932")


def test_characters_shift_jis_cannot_hold_are_listed_not_mangled(admin_client, world, app, make_registrant):
    frozen_registered = make_registrant(family_name="𠮷田", given_name="太郎", organization="寿司🍣〜屋",
                                        job_title="—", email="yoshida@example.jp")
    response = admin_client.get("/admin/registrants.csv?encoding=cp932")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    problems = re.findall(r'<tr data-testid="problem">(.*?)</tr>', page, re.S)
    assert len(problems) == 2  # the name and the organisation; 〜 and — have cp932 equivalents, 髙 is in cp932
    person = f'href="/admin/registrants/{frozen_registered.id}"'
    assert person in problems[0] and "<code>family_name</code>" in problems[0] and "𠮷" in problems[0]
    assert "U+20BB7" in problems[0]
    assert person in problems[1] and "<code>organization</code>" in problems[1] and "🍣" in problems[1]
    assert "〜" not in re.search(r'class="problem-characters">(.*?)</td>', problems[1], re.S).group(1)
    assert "<td>7</td>" in problems[0]  # the sixth registration: row 7 under the header
    assert 'href="/admin/registrants.csv"' in page
    assert 'href="/admin/registrants.csv?encoding=cp932&amp;unrepresentable=replace"' in page

    replaced = admin_client.get("/admin/registrants.csv?encoding=cp932&unrepresentable=replace")
    assert replaced.status_code == 200 and replaced.headers["Content-Type"] == "text/csv; charset=shift_jis"
    row = rows_of(replaced, "cp932")[-1]
    assert row[4:6] == ["〓田", "太郎"] and row[9:11] == ["寿司〓～屋", "―"]
    # UTF-8 keeps every character.
    assert rows_of(admin_client.get("/admin/registrants.csv"))[-1][4:11] == [
        "𠮷田", "太郎", "ヤマダ", "タロウ", "yoshida@example.jp", "寿司🍣〜屋", "—"]


def test_the_problem_list_is_capped_and_counted(app):
    from registration.services import exports

    rows = ((n, ["🍣", "ok", "𠮷"]) for n in range(1000))
    export = exports.Export("test", "staff.exports", "test.csv", ("a", "b", "c"), lambda: iter(()))
    found = exports.problems(export, rows=rows)
    assert found.count == 2000 and len(found.items) == exports.PROBLEM_LIMIT
    assert (found.items[0].row, found.items[0].field, found.items[1].field, found.items[-1].row) == (2, "a", "c", 101)


@pytest.mark.parametrize("path", EXPORT_PATHS)
def test_problems_page_on_every_export(admin_client, world, app, path):
    with app.app_context():
        db.session.execute(update(Registrant).where(Registrant.id.in_([world["watcher"], world["came"]]))
                           .values(organization="🍣 Corp"))
        db.session.execute(update(ProgramSession).where(ProgramSession.key == LOKI).values(title="Loki 🪵"))
        db.session.commit()
    response = admin_client.get(path + "?encoding=cp932")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "problem-characters" in response.get_data(as_text=True)
    replaced = admin_client.get(path + "?encoding=cp932&unrepresentable=replace").get_data().decode("cp932")
    assert "〓" in replaced and "\ufffd" not in replaced


@pytest.mark.parametrize("query", ["encoding=latin-1", "encoding=", "encoding=%00%ff", "encoding=" + "x" * 5000,
                                   "encoding=cp932&unrepresentable=drop", "unrepresentable=x"])
def test_junk_parameters_get_a_clear_400(admin_client, world, query):
    for path in EXPORT_PATHS:
        response = admin_client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert 'data-testid="export-bad-request"' in response.get_data(as_text=True)


def test_only_admins_download(client, make_staff, world):
    for path in EXPORT_PATHS + ["/admin/exports"]:
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
    login(client, *make_staff("door"))
    for path in EXPORT_PATHS + ["/admin/exports"]:
        assert client.get(path).status_code == 403, path
        assert client.get(path + "?encoding=cp932").status_code == 403, path


def test_the_exports_page_links_each_export_in_both_encodings(admin_client, world):
    response = admin_client.get("/admin/exports")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'aria-current="page"' in page
    for path in EXPORT_PATHS:
        assert f'href="{path}"' in page and f'href="{path}?encoding=cp932"' in page, path
    for path in EXPORT_PATHS:
        assert admin_client.get(path).status_code == 200


@pytest.mark.parametrize("encoding", ["", "?encoding=cp932&unrepresentable=replace"])
def test_full_width_formula_starts_are_defused_too(admin_client, make_registrant, encoding):
    # Excel in Japan reads a leading full-width ＝ ＋ － ＠ as the ASCII one, and runs the cell; cp932 writes the minus
    # sign (U+2212) as －, and NFKC folds the small forms (﹦).
    person = make_registrant(organization="＝HYPERLINK(\"http://evil.example\")", job_title="−SUM(1+1)",
                             family_name="＠山田", given_name="﹦太郎")
    response = admin_client.get("/admin/registrants.csv" + encoding)
    rows = rows_of(response, "cp932" if encoding else "utf-8-sig")
    row = next(row for row in rows if row[0] == str(person.id))
    minus = "－" if encoding else "−"
    assert "'＝HYPERLINK(\"http://evil.example\")" in row and f"'{minus}SUM(1+1)" in row and "'＠山田" in row
    assert ("'" + ("〓" if encoding else "﹦") + "太郎") in row
