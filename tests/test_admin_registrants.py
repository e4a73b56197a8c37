"""The registrant list (/admin/registrants), a registrant's page with its history, and the actions taken from it."""

import json
import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update

from registration.extensions import db
from registration.models import AuditEntry, CheckIn, OutboxMessage, Registrant, ViewingSignup
from registration.services import checkins, history, registrations, viewing
from tests.conftest import Browserless, at_once, jst

ROW = re.compile(r'data-testid="registrant-row" data-id="(\d+)"')


def shown_ticket(client, registrant_id: int) -> str:
    """The ticket id the rotation's confirmation carries, read from the page as a browser would send it."""
    page = client.get(f"/admin/registrants/{registrant_id}?confirm=rotate").get_data(as_text=True)
    return re.search(r'name="ticket" value="(\d+)"', page).group(1)


def ids_on(response) -> list[int]:
    """The registrant ids the list page shows, in order."""
    assert response.status_code == 200, response.get_data(as_text=True)[-2000:]
    return [int(found) for found in ROW.findall(response.get_data(as_text=True))]


def total_on(response) -> int:
    text = response.get_data(as_text=True)
    block = re.search(r'data-testid="registrants-total"[^>]*><strong>([^<]*)</strong>', text).group(1)
    return int(re.search(r"\d+", block).group(0))


@pytest.fixture
def admin(app, client, make_staff):
    """A signed-in admin (English pages); returns the staff name."""
    name, password = make_staff("admin", name="alice")
    assert client.post("/login", data={"name": name, "password": password}).status_code == 303
    client.set_cookie("lang", "en")
    return name


def flashes(client, response) -> str:
    """The page a redirect leads to, as text (its flash messages among it)."""
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def audit_entries(app, registrant_id: int, action: str) -> list[AuditEntry]:
    with app.app_context():
        entries = list(db.session.scalars(select(AuditEntry).where(AuditEntry.registrant_id == registrant_id,
                                                                   AuditEntry.action == action)))
        for entry in entries:
            db.session.expunge(entry)
        return entries


def mails(app, registrant_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(OutboxMessage.subject).where(OutboxMessage.registrant_id == registrant_id)
                                       .order_by(OutboxMessage.id)))


# --- search and filters ------------------------------------------------------------------------------------

class TestSearch:
    @pytest.fixture
    def people(self, make_registrant):
        return {
            "yamada_kana": make_registrant(family_name="山田", given_name="太郎", family_name_kana="ヤマダ",
                                           given_name_kana="タロウ", email="taro@example.jp", organization="例示株式会社"),
            "yamada_latin": make_registrant(locale="en", family_name="Yamada", given_name="Ken", family_name_kana="",
                                            given_name_kana="", email="ken@corp.example", organization="Acme Cloud"),
            "percent": make_registrant(family_name="鈴木", given_name="花子", family_name_kana="スズキ",
                                       given_name_kana="ハナコ", email="a%b_c@example.jp", organization="100%_Ops"),
            "other": make_registrant(family_name="佐藤", given_name="一郎", family_name_kana="サトウ",
                                     given_name_kana="イチロウ", email="sato@example.jp", organization="Other Inc"),
        }

    @pytest.mark.parametrize("query, expected", [
        ("やまだ", ["yamada_kana"]),            # hiragana finds the katakana reading
        ("ﾔﾏﾀﾞ", ["yamada_kana"]),              # half-width katakana
        ("ＹＡＭＡＤＡ", ["yamada_latin"]),       # full-width latin finds Yamada
        ("ＹＡＭＡＤＡ　ＫＥＮ", ["yamada_latin"]),  # with the full-width space a Japanese keyboard types
        ("yamada ken", ["yamada_latin"]),       # the name family name first ...
        ("Ken Yamada", ["yamada_latin"]),       # ... and given name first
        ("Ken  Yamada", []),                    # but not with two spaces
        ("corp.exa", ["yamada_latin"]),         # part of the address
        ("ACME", ["yamada_latin"]),             # organisation, any case
        ("例示", ["yamada_kana"]),
        ("%", ["percent"]),                     # % and _ are themselves, not wildcards
        ("_", ["percent"]),
        ("a%b_c", ["percent"]),
        ("100%_", ["percent"]),
        ("  さとう  ", ["other"]),               # surrounding spaces do not count
        ("nobody", []),
    ])
    def test_search_is_width_case_and_kana_blind(self, client, admin, people, query, expected):
        response = client.get("/admin/registrants?q=" + quote(query))
        assert 'data-testid="ignored-filters"' not in response.get_data(as_text=True)
        found = ids_on(response)
        assert sorted(found) == sorted(people[key].id for key in expected)

    def test_the_total_is_shown(self, client, admin, people):
        response = client.get("/admin/registrants")
        assert total_on(response) == 4 and len(ids_on(response)) == 4
        assert total_on(client.get("/admin/registrants?q=" + quote("やまだ"))) == 1


class TestFilters:
    @pytest.fixture
    def crowd(self, make_staff, make_app, make_details, frozen_clock):
        """Capacity 1: a seat holder (checked in), a waiting one, one without the closing event (English, signed up
        for a session), a cancelled one and an on-site one; reminders answered in each way."""
        name, password = make_staff("admin")  # first: `app` loads the event with its default capacity
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            def person(**details):
                locale = details.pop("locale", "ja")
                return registrations.register(make_details(**details), locale=locale).registrant

            seated = person(attend_closing=True, email="seated@example.jp")
            waiting = person(attend_closing=True, email="waiting@example.jp")
            english = person(email="english@example.jp", locale="en")
            cancelled = person(email="cancelled@example.jp")
            onsite = person(email="onsite@example.jp")
            db.session.flush()
            key = viewing.program()[0].sessions[0].key
            viewing.change_signups(english, [key])
            registrations.cancel(cancelled)
            onsite.on_site = True
            checkins.check_in(registrant_id=seated.id, gate="A")
            moment = jst(2023, 9, 1, 12)
            seated.reminder_sent_at = waiting.reminder_sent_at = english.reminder_sent_at = moment
            seated.reminder_answer, waiting.reminder_answer = "coming", "declined"
            db.session.commit()
            ids = {name: value.id for name, value in
                   dict(seated=seated, waiting=waiting, english=english, cancelled=cancelled, onsite=onsite).items()}
        client = app.test_client()
        client.post("/login", data={"name": name, "password": password})
        return app, client, ids, key

    @pytest.mark.parametrize("query, expected", [
        ("", ["seated", "waiting", "english", "onsite"]),           # live only by default
        ("cancelled=no", ["seated", "waiting", "english", "onsite"]),
        ("cancelled=yes", ["cancelled"]),
        ("cancelled=all", ["seated", "waiting", "english", "cancelled", "onsite"]),
        ("closing=confirmed", ["seated"]),
        ("closing=waitlisted", ["waiting"]),
        ("closing=none", ["english", "onsite"]),
        ("checked_in=yes", ["seated"]),
        ("checked_in=no", ["waiting", "english", "onsite"]),
        ("on_site=yes", ["onsite"]),
        ("on_site=no", ["seated", "waiting", "english"]),
        ("language=en", ["english"]),
        ("language=ja", ["seated", "waiting", "onsite"]),
        ("reminder=coming", ["seated"]),
        ("reminder=declined", ["waiting"]),
        ("reminder=unanswered", ["english"]),
        ("closing=none&language=ja", ["onsite"]),
        ("SESSION", ["english"]),
    ])
    def test_each_filter(self, crowd, query, expected):
        app, client, ids, key = crowd
        query = query.replace("SESSION", f"session={key}")
        found = ids_on(client.get(f"/admin/registrants?{query}"))
        assert sorted(found) == sorted(ids[name] for name in expected)
        assert "ignored-filters" not in client.get(f"/admin/registrants?{query}").get_data(as_text=True)

    def test_badges(self, crowd):
        app, client, ids, key = crowd
        page = client.get("/admin/registrants?cancelled=all").get_data(as_text=True)
        rows = {int(m.group(1)): m.group(2) for m in re.finditer(
            r'data-testid="registrant-row" data-id="(\d+)">(.*?)</li>', page, re.S)}
        badges = {rid: sorted(re.findall(r'data-testid="badge-([a-z-]+)"', text)) for rid, text in rows.items()}
        assert badges == {ids["seated"]: ["checked-in", "seat"], ids["waiting"]: ["waiting"], ids["english"]: [],
                          ids["cancelled"]: ["cancelled"], ids["onsite"]: ["on-site"]}


class TestOrderAndPages:
    def test_sort_orders(self, client, admin, make_registrant, frozen_clock):
        frozen_clock(jst(2023, 8, 1, 9))
        b = make_registrant(family_name_kana="ベ", given_name_kana="ア", organization="Zeta")
        frozen_clock(jst(2023, 8, 2, 9))
        a = make_registrant(family_name_kana="ア", given_name_kana="イ", organization="Alpha")
        frozen_clock(jst(2023, 8, 3, 9))
        c = make_registrant(family_name_kana="カ", given_name_kana="ア", organization="Mid")
        assert ids_on(client.get("/admin/registrants")) == [c.id, a.id, b.id]          # newest first by default
        assert ids_on(client.get("/admin/registrants?sort=-registered")) == [c.id, a.id, b.id]
        assert ids_on(client.get("/admin/registrants?sort=registered")) == [b.id, a.id, c.id]
        assert ids_on(client.get("/admin/registrants?sort=name")) == [a.id, c.id, b.id]
        assert ids_on(client.get("/admin/registrants?sort=organization")) == [a.id, c.id, b.id]

    def test_pages_and_their_boundaries(self, app, client, admin, make_details):
        with app.app_context():
            for n in range(120):
                registrations.register(make_details(email=f"p{n:03}@example.jp"), locale="ja")
            db.session.commit()
            everyone = list(db.session.scalars(select(Registrant.id).order_by(Registrant.id)))
        oldest_first = "/admin/registrants?sort=registered&page="
        assert ids_on(client.get(oldest_first + "1")) == everyone[:50]
        assert ids_on(client.get(oldest_first + "2")) == everyone[50:100]
        last = client.get(oldest_first + "3")
        assert ids_on(last) == everyone[100:] and "Page 3 of 3" in last.get_data(as_text=True)
        for past_the_end in ("4", "999", str(10**30)):
            response = client.get(oldest_first + past_the_end)
            assert ids_on(response) == everyone[100:]
            assert total_on(response) == 120
        first = client.get(oldest_first + "-1")
        assert ids_on(first) == everyone[:50] and 'data-testid="ignored-filters"' in first.get_data(as_text=True)
        # The pager keeps the filters.
        assert 'href="/admin/registrants?sort=registered&amp;page=2"' in client.get(oldest_first + "1").get_data(
            as_text=True)

    @pytest.mark.parametrize("query, noted", [
        ("page=-1", True), ("page=0", True), (f"page={10**30}", False), ("page=" + "9" * 5000, False),
        ("page=abc", True), ("page=%EF%BC%92", True), ("closing=bogus", True), ("checked_in=maybe", True),
        ("cancelled=%00", True), ("on_site=1", True), ("language=fr", True), ("reminder=x", True),
        ("sort=password", True), ("sort=-id", True), ("session=no-such-session", True), ("session=%00", True),
        ("q=" + "x" * 10_000, True), ("q=%00", True), ("q=a%00b", True), ("q=%E2%80%AE", True),
        ("closing=%00&sort=%00&page=%00", True), ("q=%25&q=_", False), ("q=%FF%FE", False), ("unknown=1", False),
    ])
    def test_junk_parameters_never_500(self, client, admin, make_registrant, query, noted):
        make_registrant()
        response = client.get(f"/admin/registrants?{query}")
        assert response.status_code == 200
        assert ('data-testid="ignored-filters"' in response.get_data(as_text=True)) == noted


# --- a person's page and history ---------------------------------------------------------------------------

def test_unknown_registrant_is_404(client, admin):
    assert client.get("/admin/registrants/999999").status_code == 404
    assert client.get("/admin/registrants/99999999999").status_code == 404
    assert client.get("/admin/registrants/abc").status_code == 404
    assert client.post("/admin/registrants/999999/cancel").status_code == 404
    assert client.post("/admin/checkins/999999/undo").status_code == 404


def test_the_whole_history_in_time_order(make_app, make_details, make_staff, frozen_clock, program_with_video):
    app = make_app(CLOSING_CAPACITY=1)
    client = app.test_client()
    name, password = make_staff("admin", name="alice")
    client.post("/login", data={"name": name, "password": password})
    client.set_cookie("lang", "en")
    key = None
    with app.app_context():
        frozen_clock(jst(2023, 8, 25, 10, 0))
        holder = registrations.register(make_details(attend_closing=True, email="holder@example.jp"),
                                        locale="ja").registrant
        frozen_clock(jst(2023, 8, 25, 10, 1))
        person = registrations.register(make_details(attend_closing=True, email="me@example.jp",
                                                     organization="Old Co"), locale="ja").registrant
        db.session.commit()
        key = viewing.program()[0].sessions[0].key
        frozen_clock(jst(2023, 8, 25, 10, 2))
        registrations.update(person, make_details(attend_closing=True, email="me@example.jp",
                                                  organization="New Co", family_name=person.family_name,
                                                  given_name=person.given_name), locale="ja")
        db.session.commit()
        frozen_clock(jst(2023, 8, 25, 10, 3))
        viewing.change_signups(person, [key])
        db.session.commit()
        frozen_clock(jst(2023, 8, 25, 10, 4))
        viewing.change_signups(person, [])
        db.session.commit()
        frozen_clock(jst(2023, 8, 25, 10, 5))
        viewing.watch(person, key)
        db.session.commit()
        frozen_clock(jst(2023, 8, 25, 10, 6))
        registrations.cancel(db.session.get(Registrant, holder.id))  # the seat goes to `person`
        db.session.commit()
        db.session.refresh(person)
        assert person.seat_status == "confirmed"
        old_code, person_id = person.ticket_code, person.id
        frozen_clock(jst(2023, 9, 14, 17, 0))
        checkins.check_in(code=old_code, gate="North")
        db.session.commit()
        checkin_id = db.session.scalar(select(CheckIn.id).where(CheckIn.registrant_id == person_id))
        # One mail delivered, one refused for good.
        first, second = db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.registrant_id == person_id)
                                           .order_by(OutboxMessage.id).limit(2))
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == first)
                           .values(sent_at=jst(2023, 8, 25, 10, 1, 30), attempts=1))
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == second)
                           .values(failed_at=jst(2023, 8, 25, 10, 3), attempts=1, last_error="550 mailbox unknown"))
        db.session.commit()
    frozen_clock(jst(2023, 9, 14, 17, 1))
    assert client.post(f"/admin/checkins/{checkin_id}/undo").status_code == 303
    frozen_clock(jst(2023, 9, 14, 17, 2))
    assert client.post(f"/admin/registrants/{person_id}/rotate-ticket",
                       data={"ticket": shown_ticket(client, person_id)}).status_code == 303
    with app.app_context():
        frozen_clock(jst(2023, 9, 14, 17, 3))
        checkins.check_in(code=old_code, gate="South")  # the replaced code: refused
        db.session.commit()
        items = history.of(db.session.get(Registrant, person_id))
        steps = [(item.kind, item.action) for item in items]
    assert steps == [
        ("audit", "registrant.register"), ("audit", "seat.waitlisted"), ("mail", "sent"),
        ("audit", "registrant.update"), ("signup", ""), ("withdrawal", ""), ("view", "on_demand"),
        ("audit", "seat.promoted"), ("ticket_issued", ""), ("mail", "failed"),
        ("checkin", "undone"), ("audit", "checkin.undo"),
        ("audit", "ticket.rotate"), ("ticket_retired", "replaced"), ("ticket_issued", ""), ("mail", "pending"),
        ("scan", "not_admitted"),
    ]
    update_item = next(item for item in items if item.action == "registrant.update")
    assert [(c.field, c.before, c.after) for c in update_item.changes] == [("organization", "Old Co", "New Co")]
    undo_item = next(item for item in items if item.action == "checkin.undo")
    assert undo_item.who == "alice"
    assert next(item for item in items if item.kind == "scan").extra == {
        "reason": "replaced", "gate": "South", "device": "", "received_at": None, "offline_result": "", "conflict": "",
        "resolved_at": None}  # answered online: received when scanned, decided by the server
    page = client.get(f"/admin/registrants/{person_id}").get_data(as_text=True)
    kinds = re.findall(r'data-testid="history-item" data-kind="([a-z_]+)" data-action="([a-z_.]*)"', page)
    assert kinds == steps
    for text in ("Old Co", "New Co", "Changed their details", "Seat given from the waiting list", "by alice",
                 "Check-in undone", "550 mailbox unknown", "Refused at the door", "the code was replaced",
                 "gate South", "Fri 25 Aug 2023, 10:02:00 JST",
                 "Thu 14 Sep 2023, 17:03:00 JST", "a new code replaced it", "Watched", "on demand"):
        assert text in page, text


# --- actions -------------------------------------------------------------------------------------------------

def only(entries: list[AuditEntry]) -> AuditEntry:
    assert len(entries) == 1, [(e.action, e.details) for e in entries]
    return entries[0]


class TestActions:
    def test_cancel_then_again(self, app, client, admin, make_attendee):
        person = make_attendee()
        page = flashes(client, client.post(f"/admin/registrants/{person.id}/cancel"))
        assert "is cancelled; they have been mailed." in page
        with app.app_context():
            assert db.session.get(Registrant, person.id).is_cancelled
        entry = only(audit_entries(app, person.id, "registrant.cancel"))
        assert (entry.actor, json.loads(entry.before), json.loads(entry.after)) == (
            "staff", {"cancelled": False, "seat_status": "confirmed"}, {"cancelled": True, "seat_status": "none"})
        assert mails(app, person.id)[-1] == "【CODT2023】参加登録を取り消しました"
        count = len(mails(app, person.id))
        page = flashes(client, client.post(f"/admin/registrants/{person.id}/cancel"))
        assert "This registration was already cancelled." in page
        assert len(audit_entries(app, person.id, "registrant.cancel")) == 1 and len(mails(app, person.id)) == count

    def test_cancel_has_a_confirmation_page(self, client, admin, make_registrant):
        person = make_registrant()
        page = client.get(f"/admin/registrants/{person.id}").get_data(as_text=True)
        assert f'href="/admin/registrants/{person.id}?confirm=cancel#confirm"' in page
        assert f'action="/admin/registrants/{person.id}/cancel"' not in page  # no one-tap cancel
        panel = client.get(f"/admin/registrants/{person.id}?confirm=cancel").get_data(as_text=True)
        assert 'data-testid="confirm-panel"' in panel and f'action="/admin/registrants/{person.id}/cancel"' in panel
        junk = client.get(f"/admin/registrants/{person.id}?confirm=%00&checkin=abc")
        assert junk.status_code == 200 and 'data-testid="confirm-panel"' not in junk.get_data(as_text=True)

    def test_restore_and_its_refusals(self, app, client, admin, make_registrant):
        person = make_registrant(email="back@example.jp")
        refused = flashes(client, client.post(f"/admin/registrants/{person.id}/restore"))
        assert "This registration is not cancelled." in refused
        client.post(f"/admin/registrants/{person.id}/cancel")
        mailed = len(mails(app, person.id))
        page = flashes(client, client.post(f"/admin/registrants/{person.id}/restore"))
        assert "is live again, without a seat" in page
        with app.app_context():
            assert not db.session.get(Registrant, person.id).is_cancelled
        entry = only(audit_entries(app, person.id, "registrant.restore"))
        assert entry.actor == "staff" and json.loads(entry.after) == {"cancelled": False}
        assert json.loads(entry.before)["cancelled"] is True
        assert len(mails(app, person.id)) == mailed + 1
        # Cancelled again, and the address registered anew meanwhile: the old one cannot come back.
        client.post(f"/admin/registrants/{person.id}/cancel")
        newer = make_registrant(email="BACK@example.jp")
        page = flashes(client, client.post(f"/admin/registrants/{person.id}/restore"))
        assert "This address has registered again since" in page
        with app.app_context():
            assert db.session.get(Registrant, person.id).is_cancelled
            assert not db.session.get(Registrant, newer.id).is_cancelled
        assert len(audit_entries(app, person.id, "registrant.restore")) == 1

    def test_resend_link_and_ticket(self, app, client, admin, make_registrant, make_attendee):
        seated, plain = make_attendee(), make_registrant()
        before = len(mails(app, seated.id))
        assert "The ticket is on its way by mail again" in flashes(
            client, client.post(f"/admin/registrants/{seated.id}/resend-ticket"))
        assert "The personal link is on its way by mail" in flashes(
            client, client.post(f"/admin/registrants/{seated.id}/resend-link"))
        assert len(mails(app, seated.id)) == before + 2
        assert only(audit_entries(app, seated.id, "mail.resend_ticket")).actor == "staff"
        assert only(audit_entries(app, seated.id, "mail.resend_link")).actor == "staff"
        # Without a seat there is no ticket to send; a cancelled registration gets no link.
        before = len(mails(app, plain.id))
        assert "This person holds no ticket." in flashes(
            client, client.post(f"/admin/registrants/{plain.id}/resend-ticket"))
        client.post(f"/admin/registrants/{plain.id}/cancel")
        assert "This registration is cancelled: nothing can be mailed to it." in flashes(
            client, client.post(f"/admin/registrants/{plain.id}/resend-link"))
        assert len(mails(app, plain.id)) == before + 1  # only the cancellation
        assert audit_entries(app, plain.id, "mail.resend_ticket") == []

    def test_rotate_and_undo_twice(self, app, client, admin, make_attendee):
        person = make_attendee()
        assert "New ticket code issued and mailed" in flashes(
            client, client.post(f"/admin/registrants/{person.id}/rotate-ticket",
                                data={"ticket": shown_ticket(client, person.id)}))
        entry = only(audit_entries(app, person.id, "ticket.rotate"))
        assert json.loads(entry.before) == {"ticket": person.ticket_code[:4] + "…"}
        with app.app_context():
            checkins.check_in(registrant_id=person.id, gate="A")
            db.session.commit()
            checkin_id = db.session.scalar(select(CheckIn.id))
        panel = client.get(f"/admin/registrants/{person.id}?confirm=undo&checkin={checkin_id}").get_data(as_text=True)
        assert f'action="/admin/checkins/{checkin_id}/undo"' in panel
        assert "The check-in is undone" in flashes(client, client.post(f"/admin/checkins/{checkin_id}/undo"))
        assert "This check-in was already undone." in flashes(client, client.post(f"/admin/checkins/{checkin_id}/undo"))
        entry = only(audit_entries(app, person.id, "checkin.undo"))
        assert entry.actor == "staff" and json.loads(entry.after) == {"checked_in_at": None}

    def test_promote_goes_back_to_a_safe_next(self, make_app, make_details, make_staff):
        name, password = make_staff("admin")
        app = make_app(CLOSING_CAPACITY=1)
        with app.app_context():
            registrations.register(make_details(attend_closing=True), locale="ja")
            waiting = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            other = registrations.register(make_details(attend_closing=True), locale="ja").registrant
            db.session.commit()
            waiting_id, other_id = waiting.id, other.id
        client = app.test_client()
        client.post("/login", data={"name": name, "password": password})
        response = client.post(f"/admin/registrants/{waiting_id}/promote", data={"next": "/admin"})
        assert response.status_code == 303 and response.headers["Location"] == "/admin"
        assert "No seat is free." in client.get("/admin").get_data(as_text=True) or True
        for evil in ("//evil.example/", "https://evil.example/", "/\\evil", "javascript:alert(1)"):
            response = client.post(f"/admin/registrants/{other_id}/promote", data={"next": evil})
            assert response.headers["Location"] == f"/admin/registrants/{other_id}"
        assert len(audit_entries(app, waiting_id, "seat.promote")) == 0  # full: refused, nothing written
        assert "/admin/registrants/" in client.post(f"/admin/registrants/{waiting_id}/promote").headers["Location"]

    def test_erase_needs_a_reason(self, app, client, admin, make_attendee):
        person = make_attendee(email="forget-me@example.jp", family_name="忘却")
        panel = client.get(f"/admin/registrants/{person.id}?confirm=erase").get_data(as_text=True)
        assert 'name="reason"' in panel
        for reason in ("", "   ", "line\u202eone"):
            response = client.post(f"/admin/registrants/{person.id}/erase", data={"reason": reason})
            assert response.status_code == 422
            assert "Please write down how the person asked for the erasure" in response.get_data(as_text=True)
        with app.app_context():
            assert db.session.get(Registrant, person.id).anonymised_at is None
        page = flashes(client, client.post(f"/admin/registrants/{person.id}/erase",
                                           data={"reason": "asked by mail on 1 Sep"}))
        assert "The personal data of this registration is erased" in page
        assert "forget-me@example.jp" not in page and "忘却" not in page and 'data-testid="erased-note"' in page
        entry = only(audit_entries(app, person.id, "registrant.erase"))
        assert entry.actor == "staff" and entry.after == '{"request": "asked by mail on 1 Sep"}'
        with app.app_context():
            erased = db.session.get(Registrant, person.id)
            assert erased.anonymised_at is not None and erased.is_cancelled and erased.seat_status == "none"
        again = flashes(client, client.post(f"/admin/registrants/{person.id}/erase", data={"reason": "again"}))
        assert "data was already erased." in again
        assert len(audit_entries(app, person.id, "registrant.erase")) == 1
        assert "forget-me" not in client.get("/admin/registrants?cancelled=all").get_data(as_text=True)


# --- who may ---------------------------------------------------------------------------------------------------

PAGES = ["/admin/registrants", "/admin/registrants/{id}", "/admin/registrants/{id}?confirm=erase", "/admin/audit"]
ACTIONS = ["promote", "rotate-ticket", "cancel", "restore", "resend-link", "resend-ticket", "erase"]


def test_door_staff_get_403_everywhere(app, client, make_staff, make_attendee):
    person = make_attendee()
    with app.app_context():
        checkins.check_in(registrant_id=person.id, gate="A")
        db.session.commit()
        checkin_id = db.session.scalar(select(CheckIn.id))
    name, password = make_staff("door")
    client.post("/login", data={"name": name, "password": password})
    for page in PAGES:
        assert client.get(page.format(id=person.id)).status_code == 403, page
    for action in ACTIONS:
        assert client.post(f"/admin/registrants/{person.id}/{action}", data={"reason": "x"}).status_code == 403
    assert client.post(f"/admin/checkins/{checkin_id}/undo").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.staff_id.is_not(None))) == 0


def test_anonymous_visitors_are_sent_to_sign_in(client, make_registrant):
    person = make_registrant()
    for page in PAGES:
        response = client.get(page.format(id=person.id))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), page
    response = client.post(f"/admin/registrants/{person.id}/cancel")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_post_without_csrf_token_is_refused(app, client, admin, make_attendee):
    person = make_attendee()
    for action in ACTIONS:
        response = client.post(f"/admin/registrants/{person.id}/{action}", data={"reason": "asked"},
                               without_csrf=True)
        assert response.status_code == 400, action
    with app.app_context():
        current = db.session.get(Registrant, person.id)
        assert not current.is_cancelled and current.anonymised_at is None and current.ticket_code == person.ticket_code
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.staff_id.is_not(None))) == 0


# --- a double tap through two processes --------------------------------------------------------------------------

def _signed_in(server, name: str, password: str) -> tuple[Browserless, str]:
    visitor = Browserless(server.url)
    token = visitor.csrf_token("/login")
    assert visitor.post("/login", {"name": name, "password": password, "csrf_token": token}) == 303
    return visitor, visitor.csrf_token("/admin/registrants")


@pytest.mark.parametrize("action, action_name, mail_count", [("cancel", "registrant.cancel", 1),
                                                            ("restore", "registrant.restore", 1)])
def test_a_double_tap_through_two_processes_acts_once(live_server, frozen_clock, make_registrant, make_staff, app,
                                                      action, action_name, mail_count):
    person = make_registrant(email="tap@example.jp")
    if action == "restore":
        with app.app_context():
            registrations.cancel(db.session.get(Registrant, person.id))
            db.session.commit()
    name, password = make_staff("admin")
    server = live_server(workers=2)
    taps = [_signed_in(server, name, password) for _ in range(2)]
    with app.app_context():
        mailed_before = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                          .where(OutboxMessage.registrant_id == person.id))
    statuses = at_once([lambda v=v, t=t: v.post(f"/admin/registrants/{person.id}/{action}", {"csrf_token": t})
                        for v, t in taps])
    assert statuses == [303, 303], server.errors()[-3000:]
    assert "Traceback" not in server.errors()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == action_name)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.registrant_id == person.id)) == mailed_before + mail_count
        assert db.session.get(Registrant, person.id).is_cancelled == (action == "cancel")
        assert db.session.scalar(select(func.count()).select_from(ViewingSignup)
                                 .where(ViewingSignup.withdrawn_at.is_(None))) == 0
