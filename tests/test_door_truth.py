"""The scan, the name search, the live counter, /admin and the CSV tell the same story about every person."""

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import AuditEntry, CheckIn
from registration.services import checkins, registrations, seats


@pytest.fixture
def csrf_app(app, make_app):
    """Three seats; CSRF on, as in every test. After `app` (which make_staff uses): the last `event load` sets the
    capacity in the database."""
    return make_app(CLOSING_CAPACITY=3)


def token_of(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def sign_in(client, make_staff, role: str = "admin") -> None:
    name, password = make_staff(role)
    token = token_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code == 303


class TestSearch:
    @pytest.mark.parametrize("query", ["ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "ｓｍｉｔｈ", "SMITH", "smith john", "john smith",
                                       "taro_yamada@", "TARO_YAMADA", "Ｅｘａｍｐｌｅ ＫＫ"])
    def test_width_case_and_kana_script_do_not_matter(self, app_ctx, make_details, query):
        person = registrations.register(make_details(
            family_name="Smith", given_name="John", family_name_kana="やまだ", given_name_kana="ﾀﾛｳ",
            email="taro_yamada@example.jp", organization="Example KK"), locale="en").registrant
        registrations.register(make_details(email="taroXyamada@example.jp", family_name="佐藤",
                                            family_name_kana="サトウ", organization="Other"), locale="ja")
        db.session.flush()
        assert person.family_name_kana == "ヤマダ" and person.given_name_kana == "タロウ"  # one script, stored
        found = registrations.search(query)
        assert [p.id for p in found] == [person.id]

    @pytest.mark.parametrize(("query", "matches"), [("%%", True), ("__", True), ("\\\\", True), ("b_", True),
                                                    ("%_", False), ("_%", False), ("a_b", False), ("\\%", False)])
    def test_wildcards_match_only_themselves(self, app_ctx, make_details, query, matches):
        registrations.register(make_details(email="plain@example.jp", organization="Plain"), locale="ja")
        marked = registrations.register(make_details(email="marked@example.jp", organization="a%%b__c\\\\d"),
                                        locale="ja").registrant
        db.session.flush()
        assert [p.id for p in registrations.search(query)] == ([marked.id] if matches else [])

    def test_the_door_api_and_admin_find_the_same_people(self, csrf_app, make_details, make_staff):
        with csrf_app.app_context():
            person = registrations.register(make_details(family_name_kana="やまだ", attend_closing=True),
                                            locale="ja").registrant
            db.session.commit()
            person_id = person.id
        client = csrf_app.test_client()
        sign_in(client, make_staff)
        api = client.get("/api/v1/registrants?q=ﾔﾏﾀﾞ").get_json()["results"]
        assert [row["registrant_id"] for row in api] == [person_id]
        found = client.get("/admin/registrants?q=ﾔﾏﾀﾞ").get_data(as_text=True)
        assert f'href="/admin/registrants/{person_id}"' in found and "例示株式会社" in found


class TestCheckedInThenCancelled:
    def test_counter_admin_csv_and_search_agree(self, csrf_app, make_details, make_staff):
        with csrf_app.app_context():
            stays, leaves, waits = (registrations.register(make_details(attend_closing=True), locale="ja").registrant
                                    for _ in range(3))
            db.session.commit()
            for person in (stays, leaves):
                assert checkins.check_in(code=person.ticket_code, gate="door-1").status == 201
            code = leaves.ticket_code
            registrations.cancel(leaves)
            db.session.commit()
            assert checkins.stats() == {"checked_in": 1, "confirmed": 2, "capacity": 3, "waitlisted": 0,
                                        "checked_in_without_seat": 1}
            refused = checkins.check_in(code=code, gate="door-2")
            assert (refused.status, refused.body["reason"]) == (403, "cancelled")
            db.session.commit()
            assert seats.invariant_problems() == []
            leaves_id, leaves_email = leaves.id, leaves.email
        client = csrf_app.test_client()
        sign_in(client, make_staff)
        page = client.get("/admin").get_data(as_text=True)
        assert re.search(r'data-testid="admin-checked-in">\s*1 / 2', page)
        assert re.search(r'data-testid="admin-checked-in-without-seat">\s*1', page)
        assert client.get("/api/v1/stats").get_json()["checked_in"] == 1
        [row] = [r for r in client.get("/api/v1/registrants?q=" + leaves_email).get_json()["results"]]
        assert (row["registrant_id"], row["seat_status"], row["checked_in"]) == (leaves_id, "cancelled", True)
        rows = list(csv.DictReader(io.StringIO(client.get("/admin/registrants.csv").get_data(as_text=True)
                                               .lstrip("\ufeff"))))
        [exported] = [r for r in rows if r["email"] == leaves_email]
        assert exported["cancelled_at_jst"] and exported["checked_in_at_jst"] and exported["closing_event"] == "none"


class TestUndoFromTheAdmin:
    def test_undo_is_a_post_with_csrf_and_audited(self, csrf_app, make_details, make_staff):
        with csrf_app.app_context():
            person = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            db.session.commit()
            checkin_id = checkins.check_in(code=person.ticket_code, gate="door-1").body["checkin_id"]
            db.session.commit()
            email = person.email
        client = csrf_app.test_client()
        sign_in(client, make_staff)
        found = client.get(f"/admin/registrants?q={email}").get_data(as_text=True)
        person_page = re.search(r'href="(/admin/registrants/\d+)"', found).group(1)
        assert f"confirm=undo&amp;checkin={checkin_id}" in client.get(person_page).get_data(as_text=True)
        page = client.get(f"{person_page}?confirm=undo&checkin={checkin_id}").get_data(as_text=True)
        assert f"/admin/checkins/{checkin_id}/undo" in page
        assert client.get(f"/admin/checkins/{checkin_id}/undo").status_code == 405  # no change on GET
        forged = client.post(f"/admin/checkins/{checkin_id}/undo", without_csrf=True)
        assert forged.status_code == 400  # no token, no change
        assert client.post(f"/admin/checkins/{checkin_id}/undo", data={"csrf_token": token_of(page)}).status_code == 303
        again = client.post(f"/admin/checkins/{checkin_id}/undo", data={"csrf_token": token_of(page)})
        assert again.status_code == 303
        with csrf_app.app_context():
            assert db.session.get(CheckIn, checkin_id).undone_at is not None
            assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                     .where(AuditEntry.action == "checkin.undo")) == 1
            assert checkins.stats()["checked_in"] == 0


@pytest.mark.parametrize("path", ["/admin/registrants/{}/promote", "/admin/registrants/{}/rotate-ticket",
                                  "/admin/checkins/{}/undo"])
@pytest.mark.parametrize("bad_id", [str(2**64), str(2**31), "١٢", "１２", "0", "-1", "012"])
def test_admin_ids_out_of_range_are_not_found(csrf_app, make_staff, path, bad_id):
    client = csrf_app.test_client()
    sign_in(client, make_staff)
    token = token_of(client.get("/admin").get_data(as_text=True))
    assert client.post(path.format(bad_id), data={"csrf_token": token}).status_code == 404
