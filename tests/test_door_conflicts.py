"""Door conflicts in the console: what an offline door decided and the server did not (a ticket admitted twice, a
code let in that admits nobody, a ticket holder turned away). The service's list in the door data set's shape, in
one query; the dashboard, the door panel, the person page and /admin/conflicts in English and Japanese; "Dealt
with" once, audited, from several processes at once; the exports' new columns.

Conflicts are written as the check-in API records them: a Scan row with offline_result, conflict and a device scan
time earlier than the time received, beside the standing check-in of the door that was first.
"""

import re
from datetime import datetime

import pytest
from babel.support import Translations
from sqlalchemy import event, func, select

from registration.extensions import db
from registration.models import AuditEntry, DeviceToken, Registrant, Scan
from registration.services import checkins, door_conflicts, registrations
from registration.services import staff as staff_service
from registration.services.door_conflicts import ConflictError
from tests.conftest import ROOT, Browserless, at_once, jst

EVENT_DAY = (2023, 9, 14)


def ja(msgid: str, **values) -> str:
    """The Japanese text of a msgid as the compiled catalog gives it."""
    text = Translations.load(str(ROOT / "registration" / "translations"), ["ja"]).gettext(msgid)
    return text % values if values else text


def conflict_scan(*, registrant_id: int | None, kind: str, offline_result: str, result: str, gate: str,
                  staff_id: int, at: datetime, received_at: datetime, reason: str | None = None,
                  device_id: int | None = None) -> int:
    """A scan queued offline and recorded later with a conflict, as the check-in API writes it."""
    scan = Scan(at=at, received_at=received_at, nonce=f"n-{gate}-{at.timestamp()}", code=None, result=result,
                reason=reason, registrant_id=registrant_id, gate=gate, staff_id=staff_id, device_id=device_id,
                status_code=409 if result == "already_checked_in" else 403, response="{}",
                offline_result=offline_result, conflict=kind)
    db.session.add(scan)
    db.session.flush()
    return scan.id


@pytest.fixture
def world(app, make_attendee, make_staff):
    """Three people, each with one kind of conflict:

    - 秋山 一郎 admitted at door-1 at 13:00:00 (online), and again offline at door-2 at 13:00:05 (received 13:10:00);
    - 取消 次郎 cancelled, but let in offline at door-2 at 13:01:00 (received 13:10:01);
    - 待合 花子 holding a ticket, turned away offline at door-3 at 13:02:00 (received 13:10:02)."""
    make_staff("admin", name="kato")
    make_staff("door", name="door-a")
    make_staff("door", name="door-b")
    twice = make_attendee(family_name="秋山", given_name="一郎", family_name_kana="アキヤマ", given_name_kana="イチロウ",
                          organization="例示株式会社")
    gone = make_attendee(family_name="取消", given_name="次郎", organization="取消商事")
    refused = make_attendee(family_name="待合", given_name="花子", organization="待合工業")
    with app.app_context():
        door_a, door_b = staff_service.find_staff("door-a"), staff_service.find_staff("door-b")
        staff_service.new_device_token(door_b, device_name="ipad-2")
        device = db.session.scalar(select(DeviceToken).where(DeviceToken.name == "ipad-2"))
        registrations.cancel(db.session.get(Registrant, gone.id), by=staff_service.find_staff("kato"),
                             at=jst(*EVENT_DAY, 12, 0))
        code = db.session.get(Registrant, twice.id).ticket_code
        first = checkins.check_in(code=code, gate="door-1", staff_id=door_a.id, at=jst(*EVENT_DAY, 13, 0, 0))
        assert first.status == 201
        ids = {
            "twice": conflict_scan(registrant_id=twice.id, kind="admitted_twice", offline_result="ok",
                                   result="already_checked_in", gate="door-2", staff_id=door_b.id,
                                   device_id=device.id,
                                   at=jst(*EVENT_DAY, 13, 0, 5), received_at=jst(*EVENT_DAY, 13, 10, 0)),
            "gone": conflict_scan(registrant_id=gone.id, kind="admitted_without_ticket", offline_result="ok",
                                  result="not_admitted", reason="cancelled", gate="door-2", staff_id=door_b.id,
                                  at=jst(*EVENT_DAY, 13, 1, 0), received_at=jst(*EVENT_DAY, 13, 10, 1)),
            "refused": conflict_scan(registrant_id=refused.id, kind="refused_with_ticket",
                                     offline_result="unknown_code", result="unknown_code", gate="door-3",
                                     staff_id=door_a.id, at=jst(*EVENT_DAY, 13, 2, 0),
                                     received_at=jst(*EVENT_DAY, 13, 10, 2)),
        }
        db.session.commit()
        staff_ids = {"door-a": door_a.id, "door-b": door_b.id, "kato": staff_service.find_staff("kato").id}
    return {"scans": ids, "people": {"twice": twice.id, "gone": gone.id, "refused": refused.id}, "staff": staff_ids}


def sign_in(client, name: str, role: str) -> None:
    assert client.post("/login", data={"name": name, "password": f"correct horse {name}"}).status_code == 303


# --- the service ---------------------------------------------------------------------------------------------

def test_open_conflicts_have_the_data_set_shape_newest_first(app, world, frozen_clock):
    frozen_clock(jst(*EVENT_DAY, 13, 11))
    with app.app_context():
        found = door_conflicts.open_conflicts()
        assert [c["kind"] for c in found] == ["refused_with_ticket", "admitted_without_ticket", "admitted_twice"]
        assert found[2] == {
            "scan_id": world["scans"]["twice"], "kind": "admitted_twice", "registrant_id": world["people"]["twice"],
            "name": "秋山 一郎", "organization": "例示株式会社",
            "admission": {"at": "2023-09-14T13:00:00+09:00", "gate": "door-1", "by": "door-a"},
            "scan": {"at": "2023-09-14T13:00:05+09:00", "received_at": "2023-09-14T13:10:00+09:00", "gate": "door-2",
                     "by": "door-b", "offline_result": "ok"},
        }
        assert found[1]["admission"] is None and found[1]["name"] == "取消 次郎"
        assert found[0]["admission"] is None and found[0]["scan"]["offline_result"] == "unknown_code"
        assert door_conflicts.count_open() == 3
        assert door_conflicts.open_conflicts(limit=1) == found[:1]
        assert [c["kind"] for c in door_conflicts.conflicts_for(world["people"]["twice"])] == ["admitted_twice"]


def test_open_conflicts_is_one_query_however_many(app, world):
    with app.app_context():
        statements = []
        listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert len(door_conflicts.open_conflicts()) == 3
            assert len(door_conflicts.listing()) == 3
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(statements) == 2


def test_resolve_once_with_an_audit_entry_then_refuse(app, world, frozen_clock):
    frozen_clock(jst(*EVENT_DAY, 13, 20))
    scan_id, admin_id = world["scans"]["twice"], world["staff"]["kato"]
    with app.app_context():
        assert door_conflicts.resolve(scan_id, staff_id=admin_id) == world["people"]["twice"]
        db.session.commit()
        with pytest.raises(ConflictError) as again:
            door_conflicts.resolve(scan_id, staff_id=world["staff"]["door-a"])
        assert again.value.code == "already_resolved"
        db.session.rollback()
        for unknown in (999_999, 0, -1, 10**12):
            with pytest.raises(ConflictError) as missing:
                door_conflicts.resolve(unknown, staff_id=admin_id)
            assert missing.value.code == "unknown"
        plain = db.session.scalar(select(Scan.id).where(Scan.conflict.is_(None)))  # the online admission
        with pytest.raises(ConflictError) as no_conflict:
            door_conflicts.resolve(plain, staff_id=admin_id)
        assert no_conflict.value.code == "unknown"
        db.session.rollback()
        scan = db.session.get(Scan, scan_id)
        assert (scan.conflict_resolved_at, scan.conflict_resolved_by_id) == (jst(*EVENT_DAY, 13, 20), admin_id)
        assert scan.conflict == "admitted_twice"  # the record stays; only its state changes
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "door.conflict_resolved")).all()
        assert len(entries) == 1 and entries[0].registrant_id == world["people"]["twice"]
        assert entries[0].staff_id == admin_id and "admitted_twice" in entries[0].details
        assert door_conflicts.count_open() == 2
        assert scan_id not in [c["scan_id"] for c in door_conflicts.open_conflicts()]
        assert door_conflicts.conflicts_for(world["people"]["twice"])[0]["resolved_by"] == "kato"


def test_conflicts_the_check_in_service_records_are_listed(app, client, make_attendee, make_staff):
    """The same lists from conflicts recorded the way the API records them (scanned_at, offline_result)."""
    make_staff("admin", name="kato")
    make_staff("door", name="door-a")
    twice, refused = make_attendee(family_name="二重", given_name="一"), make_attendee(family_name="拒否", given_name="二")
    with app.app_context():
        door = staff_service.find_staff("door-a").id
        codes = {p.id: db.session.get(Registrant, p.id).ticket_code for p in (twice, refused)}
        received = jst(*EVENT_DAY, 14, 0)
        assert checkins.check_in(code=codes[twice.id], gate="door-1", staff_id=door, nonce="a", at=received,
                                 scanned_at=jst(*EVENT_DAY, 13, 50), offline_result="ok").status == 201
        answers = [
            checkins.check_in(code=codes[twice.id], gate="door-2", staff_id=door, nonce="b", at=received,
                              scanned_at=jst(*EVENT_DAY, 13, 51), offline_result="ok"),
            checkins.check_in(code=codes[refused.id], gate="door-2", staff_id=door, nonce="c", at=received,
                              scanned_at=jst(*EVENT_DAY, 13, 52), offline_result="unknown_code"),
            checkins.check_in(code="Z" * 26, gate="door-3", staff_id=door, nonce="d", at=received,
                              scanned_at=jst(*EVENT_DAY, 13, 53), offline_result="ok"),
        ]
        db.session.commit()
        assert [answer.body.get("conflict") for answer in answers] == [
            "admitted_twice", "refused_with_ticket", "admitted_without_ticket"]
        found = {c["kind"]: c for c in door_conflicts.open_conflicts()}
        assert found["admitted_twice"]["admission"] == {"at": "2023-09-14T13:50:00+09:00", "gate": "door-1",
                                                        "by": "door-a"}
        assert found["admitted_twice"]["scan"]["at"] == "2023-09-14T13:51:00+09:00"
        assert found["admitted_twice"]["scan"]["received_at"] == "2023-09-14T14:00:00+09:00"
        assert found["refused_with_ticket"]["admission"] is None and found["refused_with_ticket"]["name"] == "拒否 二"
        nobody = found["admitted_without_ticket"]
        assert (nobody["registrant_id"], nobody["name"], nobody["admission"]) == (None, "", None)
    sign_in(client, "kato", "admin")
    client.set_cookie("lang", "en")
    page = client.get("/admin").get_data(as_text=True)
    assert "3 door conflicts to deal with" in page and "A code nobody holds" in page
    # A scan of nobody's code, dealt with, goes back to the list of conflicts.
    response = client.post(f"/admin/conflicts/{nobody['scan_id']}/resolve")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/conflicts"
    person = client.get(f"/admin/registrants/{refused.id}").get_data(as_text=True)
    assert "Decided offline at the door: unknown code" in person and "turned away while offline" in person


# --- the console ---------------------------------------------------------------------------------------------

def conflict_items(page: str) -> list[str]:
    return re.findall(r'<li class="conflict[^"]*" data-testid="conflict".*?</li>', page, re.S)


def test_the_dashboard_and_door_panel_show_each_kind_in_english(client, world):
    sign_in(client, "kato", "admin")
    client.set_cookie("lang", "en")
    for path in ("/admin", "/admin/door-panel"):
        page = client.get(path).get_data(as_text=True)
        assert "3 door conflicts to deal with" in page, path
        items = conflict_items(page)
        assert len(items) == 3
        twice, gone, refused = items[2], items[1], items[0]
        assert f'href="/admin/registrants/{world["people"]["twice"]}"' in twice and "Ichiro" not in twice
        assert "Admitted twice while offline" in twice
        assert "gate door-1" in twice and "13:00:00" in twice and "by door-a" in twice  # the admission that counts
        assert "gate door-2" in twice and "13:00:05" in twice and "received Thu 14 Sep 2023, 13:10:00" in twice
        assert "decided offline: admitted" in twice
        assert "Let in offline without a valid ticket" in gone and "none: nobody is checked in" in gone
        assert "Turned away offline despite a valid ticket" in refused and "decided offline: unknown code" in refused
        assert page.count(">Dealt with<") == 3
    summary = re.search(r'data-summary="([^"]*)"', client.get("/admin/door-panel").get_data(as_text=True)).group(1)
    assert summary.endswith("3 door conflicts to deal with")


def test_the_dashboard_shows_each_kind_in_japanese(client, world):
    sign_in(client, "kato", "admin")
    page = client.get("/admin").get_data(as_text=True)
    for msgid in ("Admitted twice while offline", "Let in offline without a valid ticket",
                  "Turned away offline despite a valid ticket", "The admission that counts", "Dealt with"):
        assert ja(msgid) != msgid, f"untranslated: {msgid}"
        assert ja(msgid) in page, msgid
    catalog = Translations.load(str(ROOT / "registration" / "translations"), ["ja"])
    plural = catalog.ngettext("%(num)d door conflict to deal with", "%(num)d door conflicts to deal with", 3)
    assert plural != "%(num)d door conflicts to deal with" and plural % {"num": 3} in page
    assert ja("received %(when)s", when="2023年9月14日(木) 13:10:00") in page


def test_no_conflicts_no_section(client, make_staff):
    sign_in(client, make_staff("admin")[0], "admin")
    page = client.get("/admin").get_data(as_text=True)
    assert 'data-testid="door-conflicts-panel"' not in page
    assert "data-testid=\"conflicts-empty\"" in client.get("/admin/conflicts").get_data(as_text=True)


def test_the_person_page_shows_their_conflict_and_scan_times(client, world):
    sign_in(client, "kato", "admin")
    client.set_cookie("lang", "en")
    page = client.get(f"/admin/registrants/{world['people']['twice']}").get_data(as_text=True)
    assert 'data-testid="person-conflicts"' in page and len(conflict_items(page)) == 1
    assert "Admitted twice while offline" in page
    # The history: the admission at door-1, and the offline scan at door-2, scanned 13:00:05, received 13:10:00.
    assert "Decided offline at the door: admitted" in page and "the server: already checked in" in page
    assert "received Thu 14 Sep 2023, 13:10:00" in page
    other = client.get(f"/admin/registrants/{world['people']['refused']}").get_data(as_text=True)
    assert "Turned away offline despite a valid ticket" in other and "Admitted twice" not in other


def test_dealt_with_from_the_dashboard_once(app, client, world):
    sign_in(client, "kato", "admin")
    client.set_cookie("lang", "en")
    scan_id = world["scans"]["gone"]
    assert client.get(f"/admin/conflicts/{scan_id}/resolve").status_code == 405  # nothing changes on a GET
    response = client.post(f"/admin/conflicts/{scan_id}/resolve", data={"next": "/admin"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin"
    page = client.get("/admin").get_data(as_text=True)
    assert "The door conflict is marked as dealt with." in page
    assert "2 door conflicts to deal with" in page and len(conflict_items(page)) == 2
    again = client.post(f"/admin/conflicts/{scan_id}/resolve")
    assert again.status_code == 303
    assert again.headers["Location"] == f"/admin/registrants/{world['people']['gone']}"
    assert "Somebody has already marked this conflict as dealt with." in client.get(
        again.headers["Location"]).get_data(as_text=True)
    assert client.post("/admin/conflicts/999999/resolve").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "door.conflict_resolved")) == 1
    # The list page has them all, the dealt-with one marked, after the open ones.
    listing = client.get("/admin/conflicts").get_data(as_text=True)
    items = conflict_items(listing)
    assert len(items) == 3 and "conflict-resolved" in items[2] and "by kato" in items[2]
    assert "2 open" in listing and "3 in all" in listing
    # The person page: the audit entry reads as words.
    person = client.get(f"/admin/registrants/{world['people']['gone']}").get_data(as_text=True)
    assert "Door conflict dealt with" in person and 'data-testid="conflict-resolved"' in person


def test_door_staff_cannot_reach_the_console_nor_resolve(app, client, world):
    sign_in(client, "door-a", "door")
    assert client.get("/admin/conflicts").status_code == 403
    assert client.post(f"/admin/conflicts/{world['scans']['twice']}/resolve").status_code == 403
    with app.app_context():
        assert door_conflicts.count_open() == 3


def test_resolve_needs_the_csrf_token(app, client, world):
    sign_in(client, "kato", "admin")
    assert client.post(f"/admin/conflicts/{world['scans']['twice']}/resolve", without_csrf=True).status_code == 400
    with app.app_context():
        assert door_conflicts.count_open() == 3


# --- exports -------------------------------------------------------------------------------------------------

def test_refused_scans_export_has_received_time_offline_decision_and_conflict(client, world):
    sign_in(client, "kato", "admin")
    text = client.get("/admin/refused-scans.csv").get_data().decode("utf-8-sig")
    rows = [line.split(",") for line in text.strip().split("\r\n")]
    header = rows[0]
    assert header[-4:] == ["received_at_jst", "offline_result", "conflict", "conflict_dealt_with_at_jst"]
    by_id = {row[0]: dict(zip(header, row)) for row in rows[1:]}
    twice = by_id[str(world["scans"]["twice"])]
    assert (twice["scanned_at_jst"], twice["received_at_jst"], twice["offline_result"], twice["conflict"],
            twice["conflict_dealt_with_at_jst"]) == (
        "2023-09-14T13:00:05.000+09:00", "2023-09-14T13:10:00.000+09:00", "ok", "admitted_twice", "")
    checkins_csv = client.get("/admin/checkins.csv").get_data().decode("utf-8-sig").split("\r\n")
    assert checkins_csv[0].endswith(",received_at_jst")


# --- several processes at once -------------------------------------------------------------------------------

def test_dealt_with_at_once_through_two_processes_is_audited_once(frozen_clock, live_server, world, app):
    server = live_server(workers=2)
    scan_id = world["scans"]["twice"]
    taps = []
    for _ in range(4):
        visitor = Browserless(server.url)
        token = visitor.csrf_token("/login")
        assert visitor.post("/login", {"name": "kato", "password": "correct horse kato", "csrf_token": token}) == 303
        taps.append((visitor, visitor.csrf_token("/admin/conflicts")))
    statuses = at_once([lambda v=v, t=t: v.post(f"/admin/conflicts/{scan_id}/resolve", {"csrf_token": t})
                        for v, t in taps])
    assert statuses == [303] * 4, server.errors()[-3000:]
    assert "Traceback" not in server.errors()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "door.conflict_resolved")) == 1
        assert door_conflicts.count_open() == 2
        assert db.session.get(Scan, scan_id).conflict_resolved_by_id == world["staff"]["kato"]
