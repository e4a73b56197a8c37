"""The closing-event reminder: `mail remind-closing` (once per seat holder), the two answer pages (GET asks, POST
acts), and the console's /admin/reminders with scheduled releases of unanswered seats."""

import re
from email import message_from_bytes, policy

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import AuditEntry, OutboxMessage, Registrant, SeatRelease, Ticket
from registration.services import audit, registrations, reminders, seats
from tests.conftest import jst

OPEN = jst(2023, 8, 25, 10)
REMINDED = jst(2023, 9, 11, 9)
DEADLINE = jst(2023, 9, 14, 10)


def subject(template: str, locale: str) -> str:
    with force_locale(locale):
        return str(registrations._SUBJECTS[template])


def mails(app, template: str) -> list[tuple[int, str, object]]:
    """(registrant id, recipient, parsed message) of every queued mail of this template (by its subject)."""
    with app.app_context():
        subjects = {subject(template, "ja"), subject(template, "en")}
        rows = db.session.execute(select(OutboxMessage.registrant_id, OutboxMessage.recipient, OutboxMessage.message)
                                  .where(OutboxMessage.subject.in_(subjects)).order_by(OutboxMessage.id)).all()
        return [(rid, to, message_from_bytes(raw, policy=policy.default)) for rid, to, raw in rows]


def ids(found) -> list[int]:
    return sorted(row[0] for row in found)


def person(app, registrant_id: int) -> Registrant:
    with app.app_context():
        row = db.session.get(Registrant, registrant_id)
        db.session.expunge(row)
        return row


def invariants(app) -> list[str]:
    with app.app_context():
        return seats.invariant_problems()


def snapshot(app) -> tuple:
    """Everything an answer could change: people, tickets, mail, audit entries, releases."""
    with app.app_context():
        people = db.session.execute(select(Registrant.id, Registrant.seat_status, Registrant.ticket_code,
                                           Registrant.reminder_answer, Registrant.reminder_answered_at,
                                           Registrant.reminder_sent_at).order_by(Registrant.id)).all()
        counts = [db.session.scalar(select(func.count()).select_from(model))
                  for model in (OutboxMessage, AuditEntry, Ticket, SeatRelease)]
        retired = db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.retired_at.is_not(None)))
        return people, counts, retired


@pytest.fixture
def staff(make_staff):
    """An admin and a door account, (name, password) each; made before `cast` (the default app's `event load`
    would set the capacity back to 100)."""
    return {"admin": make_staff("admin"), "door": make_staff("door")}


@pytest.fixture
def cast(staff, make_app, make_details, frozen_clock):
    """Capacity 3. Seat holders a (ja), b (en), f (ja); e cancelled, x erased (both held seats); c then w on the
    waiting list; d not attending. Returns the app and the people by letter."""
    app = make_app(CLOSING_CAPACITY=3)
    frozen_clock(OPEN)
    people, secrets = {}, {}
    with app.app_context():
        def add(letter, attend=True, locale="ja"):
            people[letter] = registrations.register(
                make_details(email=f"{letter}@example.jp", given_name=f"Taro{letter}", family_name="Yamada",
                             attend_closing=attend), locale=locale, at=OPEN).registrant
            db.session.commit()
            secrets[letter] = people[letter].secret  # as mailed: erasure replaces it
        add("a"), add("b", locale="en"), add("e")
        registrations.cancel(people["e"], at=OPEN)
        db.session.commit()
        add("x")
        registrations.erase_own(people["x"], at=OPEN)
        db.session.commit()
        add("f"), add("c"), add("w"), add("d", attend=False)
        result = {letter: row.id for letter, row in people.items()}
        erased_secret = db.session.get(Registrant, result["x"]).secret
        assert [db.session.get(Registrant, result[k]).seat_status for k in "abfcwd"] == [
            "confirmed", "confirmed", "confirmed", "waitlisted", "waitlisted", "none"]
    return app, result, secrets | {"x_now": erased_secret}


def remind(app, frozen_clock, at=REMINDED):
    frozen_clock(at)
    result = app.test_cli_runner().invoke(args=["mail", "remind-closing"])
    assert result.exit_code == 0, result.output
    return result.output


# --- the command ---------------------------------------------------------------------------------------------

def test_remind_closing_mails_each_seat_holder_once_with_ticket_and_links(cast, frozen_clock):
    app, who, secrets = cast
    assert remind(app, frozen_clock).strip() == "Reminded 3 seat holders; 0 had been reminded already."
    assert remind(app, frozen_clock).strip() == "Reminded 0 seat holders; 3 had been reminded already."
    sent = mails(app, "reminder")
    assert ids(sent) == sorted([who["a"], who["b"], who["f"]])
    for registrant_id, recipient, message in sent:
        letter = next(k for k, v in who.items() if v == registrant_id)
        locale = "en" if letter == "b" else "ja"
        with app.app_context():
            assert message["Subject"] == subject("reminder", locale)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for path in ("coming", "not-coming"):
            url = f"http://codt.test/me/{secrets[letter]}/{path}"
            assert url in text and f'href="{url}"' in html
        assert 'src="cid:ticket-qr"' in html
        images = [part for part in message.walk() if part.get_content_type() == "image/png"]
        assert len(images) == 1 and images[0]["Content-ID"] == "<ticket-qr>"
        attachments = [part.get_filename() for part in message.iter_attachments()]
        assert any(name.endswith(".ics") for name in attachments), attachments
        with app.app_context():
            code = db.session.get(Registrant, registrant_id).ticket_code
        assert code[:4] in text.replace(" ", "")
    with app.app_context():
        assert {r.reminder_sent_at for r in db.session.scalars(select(Registrant).where(
            Registrant.id.in_([who["a"], who["b"], who["f"]])))} == {REMINDED}
        assert db.session.scalar(select(func.count()).select_from(Registrant).where(
            Registrant.reminder_sent_at.is_not(None))) == 3
    assert invariants(app) == []


def test_a_person_promoted_between_runs_is_reminded_by_the_next(cast, frozen_clock):
    app, who, _ = cast
    remind(app, frozen_clock)
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, who["a"]), at=REMINDED)  # c moves up
        db.session.commit()
        assert db.session.get(Registrant, who["c"]).seat_status == "confirmed"
    assert remind(app, frozen_clock).strip() == "Reminded 1 seat holder; 2 had been reminded already."
    assert remind(app, frozen_clock).strip() == "Reminded 0 seat holders; 3 had been reminded already."
    assert ids(mails(app, "reminder")) == sorted([who["a"], who["b"], who["f"], who["c"]])
    assert invariants(app) == []


def test_small_batches_remind_everyone(cast, frozen_clock):
    app, who, _ = cast
    frozen_clock(REMINDED)
    result = app.test_cli_runner().invoke(args=["mail", "remind-closing", "--batch", "1"])
    assert result.exit_code == 0 and "Reminded 3 seat holders" in result.output
    assert ids(mails(app, "reminder")) == sorted([who["a"], who["b"], who["f"]])


# --- the answer pages ----------------------------------------------------------------------------------------

def test_opening_the_links_changes_nothing(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    client = app.test_client()
    before = snapshot(app)
    for path in ("coming", "not-coming"):
        for _ in range(2):
            response = client.get(f"/me/{secrets['a']}/{path}")
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            page = response.get_data(as_text=True)
            assert f'action="/me/{secrets["a"]}/{path}"' in page and 'name="csrf_token"' in page
        response = client.head(f"/me/{secrets['a']}/{path}")
        assert response.status_code == 200
    assert snapshot(app) == before


def test_pages_speak_the_registrants_language(cast, frozen_clock):
    app, who, secrets = cast
    client = app.test_client()
    page = client.get(f"/me/{secrets['b']}/not-coming", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert '<html lang="en"' in page and "Give your seat back?" in page and "Yes, give my seat back" in page
    page = client.get(f"/me/{secrets['a']}/coming", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ja"' in page
    with app.test_request_context(), force_locale("ja"):
        from flask_babel import gettext
        assert gettext("Yes, I'm coming") in page


def test_coming_is_recorded_once(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    client = app.test_client()
    outbox_before = snapshot(app)[1][0]
    response = client.post(f"/me/{secrets['a']}/coming")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/me/{secrets['a']}/coming")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-success"' in page
    frozen_clock(jst(2023, 9, 12, 9))
    client.post(f"/me/{secrets['a']}/coming")
    page = client.get(f"/me/{secrets['a']}/coming").get_data(as_text=True)
    assert 'class="flash flash-info"' in page
    assert f'action="/me/{secrets["a"]}/coming"' not in page  # answered: nothing left to press
    a = person(app, who["a"])
    assert (a.reminder_answer, a.reminder_answered_at, a.seat_status) == ("coming", jst(2023, 9, 12, 8), "confirmed")
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "reminder.coming")).all()
        assert [(e.actor, e.registrant_id, audit.values(e)) for e in entries] == [
            ("registrant", who["a"], ({"reminder_answer": None}, {"reminder_answer": "coming"}))]
    assert snapshot(app)[1][0] == outbox_before  # no mail for "coming"
    assert invariants(app) == []


def test_declining_frees_the_seat_and_promotes_the_first_waiting_at_once(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    client = app.test_client()
    response = client.post(f"/me/{secrets['b']}/not-coming")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-success"' in page and 'data-state="no_seat"' in page
    b, c, w = person(app, who["b"]), person(app, who["c"]), person(app, who["w"])
    assert (b.seat_status, b.attend_closing, b.ticket_code, b.reminder_answer) == ("none", False, None, "declined")
    assert b.cancelled_at is None  # the registration stays
    assert c.seat_status == "confirmed" and w.seat_status == "waitlisted"
    assert ids(mails(app, "promoted")) == [who["c"]]
    [(_, to, confirmation)] = mails(app, "seat_released")
    assert to == "b@example.jp"
    text = confirmation.get_body(("plain",)).get_content()
    assert "As you asked" in text and "sign-ups for on-demand sessions" in text
    assert not [p for p in confirmation.walk() if p.get_content_type() == "image/png"]
    with app.app_context():
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "reminder.declined")).all()
        assert (entry.actor, entry.registrant_id) == ("registrant", who["b"])
        assert audit.values(entry) == ({"seat_status": "confirmed", "reminder_answer": None},
                                       {"seat_status": "none", "reminder_answer": "declined"})
        assert db.session.scalar(select(Ticket.retired_reason).where(Ticket.registrant_id == who["b"])) == "declined"
    # A second tap: nothing more is released, promoted or mailed.
    before = snapshot(app)
    assert client.post(f"/me/{secrets['b']}/not-coming").status_code == 303
    assert client.post(f"/me/{secrets['b']}/coming").status_code == 303
    assert snapshot(app) == before
    assert invariants(app) == []


def test_declining_after_the_deadline_frees_the_seat_without_promoting(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 14, 11))
    assert app.test_client().post(f"/me/{secrets['a']}/not-coming").status_code == 303
    assert person(app, who["a"]).seat_status == "none"
    assert person(app, who["c"]).seat_status == "waitlisted"  # after the deadline an admin gives seats by hand
    assert ids(mails(app, "seat_released")) == [who["a"]] and mails(app, "promoted") == []
    assert invariants(app) == []


def test_pages_for_unknown_erased_cancelled_no_seat_and_after_the_event(cast, frozen_clock):
    app, who, secrets = cast
    client = app.test_client()
    for path in ("coming", "not-coming"):
        assert client.get(f"/me/{'A' * 32}/{path}").status_code == 404
        assert client.get(f"/me/{secrets['x']}/{path}").status_code == 404  # erased: the old secret is dead
        assert client.post(f"/me/{secrets['x']}/{path}").status_code == 404
        assert client.get(f"/me/{secrets['x_now']}/{path}").status_code == 404  # nobody's link, but never a page
        assert 'data-state="cancelled"' in client.get(f"/me/{secrets['e']}/{path}").get_data(as_text=True)
        assert 'data-state="no_seat"' in client.get(f"/me/{secrets['d']}/{path}").get_data(as_text=True)
        page = client.get(f"/me/{secrets['c']}/{path}").get_data(as_text=True)
        assert 'data-state="no_seat"' in page and "キャンセル待ち 1 番目" in page
    before = snapshot(app)
    for letter in "ecd":
        for path in ("coming", "not-coming"):
            assert client.post(f"/me/{secrets[letter]}/{path}").status_code == 303
    assert snapshot(app) == before
    frozen_clock(jst(2023, 9, 15, 0, 1))
    for path in ("coming", "not-coming"):
        page = client.get(f"/me/{secrets['a']}/{path}").get_data(as_text=True)
        assert 'data-state="over"' in page and "<form method=\"post\" action=\"/me/" not in page
        assert client.post(f"/me/{secrets['a']}/{path}").status_code == 303
    assert snapshot(app) == before
    # On the event day itself a seat can still be given back.
    frozen_clock(jst(2023, 9, 14, 23, 59))
    assert 'data-state="open"' in client.get(f"/me/{secrets['a']}/not-coming").get_data(as_text=True)


def test_answers_need_the_csrf_token(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    client = app.test_client()
    before = snapshot(app)
    for path in ("coming", "not-coming"):
        assert client.post(f"/me/{secrets['a']}/{path}", without_csrf=True).status_code == 400
        assert client.post(f"/me/{secrets['a']}/{path}", data={"csrf_token": "forged"},
                           without_csrf=True).status_code == 400
    assert snapshot(app) == before


# --- the console ---------------------------------------------------------------------------------------------

def sign_in(app, staff, role="admin"):
    client = app.test_client()
    name, password = staff[role]
    assert client.post("/login", data={"name": name, "password": password}).status_code == 303
    return client


def test_door_staff_and_strangers_cannot_use_the_reminder_console(cast, staff):
    app, *_ = cast
    with app.app_context():
        release = SeatRelease(run_at=jst(2023, 9, 13, 12))
        db.session.add(release)
        db.session.commit()
        release_id = release.id
    door = sign_in(app, staff, "door")
    assert door.get("/admin/reminders").status_code == 403
    assert door.post("/admin/reminders/releases", data={"when": "now"}).status_code == 403
    assert door.post(f"/admin/reminders/releases/{release_id}/cancel").status_code == 403
    stranger = app.test_client()
    assert stranger.get("/admin/reminders").status_code in (302, 303)
    assert stranger.post("/admin/reminders/releases", data={"when": "now"}).status_code in (302, 303, 401)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SeatRelease)) == 1
        assert db.session.get(SeatRelease, release_id).cancelled_at is None


def test_console_posts_need_the_csrf_token(cast, staff):
    app, *_ = cast
    admin = sign_in(app, staff)
    assert admin.post("/admin/reminders/releases", data={"when": "now"}, without_csrf=True).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SeatRelease)) == 0


def test_the_console_counts_answers_and_lists_who_has_not_answered(cast, frozen_clock, staff):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    client = app.test_client()
    client.post(f"/me/{secrets['a']}/coming")
    client.post(f"/me/{secrets['b']}/not-coming")  # c is promoted, not reminded yet
    admin = sign_in(app, staff)
    response = admin.get("/admin/reminders")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    counts = dict(re.findall(r'data-testid="count-([a-z-]+)">(\d+)<', page))
    assert counts == {"holders": "3", "reminded": "2", "coming": "1", "unanswered": "1", "not-reminded": "1",
                      "declined": "1", "released": "0"}
    unanswered = page.split('data-testid="unanswered"')[1].split("</ul>")[0]
    assert re.findall(r'href="/admin/registrants/(\d+)"', unanswered) == [str(who["f"])]
    assert 'aria-current="page"' in page and 'href="/admin/reminders"' in page


def test_bad_release_forms_are_refused_with_a_message(cast, frozen_clock, staff):
    app, *_ = cast
    frozen_clock(jst(2023, 9, 12, 8))
    admin = sign_in(app, staff)
    for data in ({"when": "at", "run_at": ""}, {"when": "at", "run_at": "tomorrow"},
                 {"when": "at", "run_at": "2023-09-12T07:59"}, {"when": "later"}, {},
                 {"when": "at", "run_at": "99999-01-01T00:00"}, {"when": "at", "run_at": "2023-13-40T25:61"},
                 # Year 1 in Tokyo's local mean time has no UTC (it was a 500); after the closing day is a typo.
                 {"when": "at", "run_at": "0001-01-01T00:00"}, {"when": "at", "run_at": "9999-12-31T23:59"},
                 {"when": "at", "run_at": "2023-09-15T00:00"}):
        response = admin.post("/admin/reminders/releases", data=data)
        assert response.status_code == 422, data
        assert 'class="error"' in response.get_data(as_text=True), data
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SeatRelease)) == 0


def test_a_scheduled_release_gives_back_only_unanswered_seats_at_its_moment(cast, frozen_clock, staff):
    app, who, secrets = cast
    with app.app_context():  # capacity 4 now, so that g holds a seat but is never reminded
        seats.lock()
        seats.set_capacity(4)
        seats.promote_waiting(at=OPEN)  # c gets the fourth seat: not reminded below, as if promoted later
        db.session.commit()
    frozen_clock(REMINDED)
    result = app.test_cli_runner().invoke(args=["mail", "remind-closing"])
    assert "Reminded 4" in result.output
    with app.app_context():  # c's reminder is taken back, as if c had been promoted after the run
        db.session.get(Registrant, who["c"]).reminder_sent_at = None
        db.session.commit()
    frozen_clock(jst(2023, 9, 12, 8))
    app.test_client().post(f"/me/{secrets['a']}/coming")
    admin = sign_in(app, staff)
    # After the deadline: the waiting list moves up all the same, since the admin chose this.
    response = admin.post("/admin/reminders/releases", data={"when": "at", "run_at": "2023-09-14T12:00"})
    assert response.status_code == 303
    with app.app_context():
        [release] = db.session.scalars(select(SeatRelease)).all()
        assert release.run_at == jst(2023, 9, 14, 12) and release.executed_at is None
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "seat_release.schedule")).all()
        assert entry.actor == "staff" and entry.staff_id is not None
    page = admin.get("/admin/reminders").get_data(as_text=True)
    assert f'data-testid="release-{release.id}"' in page and f"/admin/reminders/releases/{release.id}/cancel" in page

    frozen_clock(jst(2023, 9, 14, 11, 59))
    before = snapshot(app)
    with app.app_context():
        assert reminders.run_due_releases() == 0
        db.session.commit()
    assert snapshot(app) == before

    frozen_clock(jst(2023, 9, 14, 12))
    with app.app_context():
        assert reminders.run_due_releases() == 2
        db.session.commit()
        assert reminders.run_due_releases() == 0
        db.session.commit()
        release = db.session.get(SeatRelease, release.id)
        assert (release.executed_at, release.released) == (jst(2023, 9, 14, 12), 2)
        status = {k: db.session.get(Registrant, v).seat_status for k, v in who.items()}
        assert status == {"a": "confirmed", "b": "none", "f": "none", "c": "confirmed", "w": "confirmed",
                          "e": "none", "x": "none", "d": "none"}
        assert sorted(db.session.scalars(select(Ticket.registrant_id).where(Ticket.retired_reason == "no_answer"))) \
            == sorted([who["b"], who["f"]])
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "reminder.no_answer")).all()
        assert sorted(e.registrant_id for e in entries) == sorted([who["b"], who["f"]])
        assert {e.actor for e in entries} == {"system"}
    released = mails(app, "seat_released")
    assert ids(released) == sorted([who["b"], who["f"]])
    for _, _, message in released:
        text = message.get_body(("plain",)).get_content()
        assert ("no answer to our reminder" in text) or ("ご回答がなかった" in text)
    assert ids(mails(app, "promoted")) == [who["w"]]
    assert invariants(app) == []
    page = admin.get("/admin/reminders").get_data(as_text=True)
    assert 'data-testid="count-released">2<' in page
    assert f"/admin/reminders/releases/{release.id}/cancel" not in page


def test_release_now_from_the_console(cast, frozen_clock, staff):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    admin = sign_in(app, staff)
    response = admin.post("/admin/reminders/releases", data={"when": "now", "run_at": ""})
    assert response.status_code == 303
    page = admin.get("/admin/reminders").get_data(as_text=True)
    assert 'class="flash flash-success"' in page
    status = {k: person(app, v).seat_status for k, v in who.items() if k in "abfcw"}
    assert status == {"a": "none", "b": "none", "f": "none", "c": "confirmed", "w": "confirmed"}
    assert ids(mails(app, "seat_released")) == sorted([who["a"], who["b"], who["f"]])
    assert ids(mails(app, "promoted")) == sorted([who["c"], who["w"]])
    assert invariants(app) == []


def test_a_cancelled_release_never_runs(cast, frozen_clock, staff):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    admin = sign_in(app, staff)
    admin.post("/admin/reminders/releases", data={"when": "at", "run_at": "2023-09-13T09:00"})
    with app.app_context():
        release_id = db.session.scalar(select(SeatRelease.id))
    assert admin.post(f"/admin/reminders/releases/{release_id}/cancel").status_code == 303
    assert 'class="flash flash-success"' in admin.get("/admin/reminders").get_data(as_text=True)
    assert admin.post(f"/admin/reminders/releases/{release_id}/cancel").status_code == 303
    assert 'class="flash flash-error"' in admin.get("/admin/reminders").get_data(as_text=True)
    assert admin.post("/admin/reminders/releases/999999/cancel").status_code == 404
    frozen_clock(jst(2023, 9, 13, 10))
    before = snapshot(app)
    with app.app_context():
        assert reminders.run_due_releases() == 0
        db.session.commit()
        release = db.session.get(SeatRelease, release_id)
        assert release.executed_at is None and release.cancelled_at == jst(2023, 9, 12, 8)
        assert [e.action for e in db.session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("seat_release.%")).order_by(AuditEntry.id))] == [
            "seat_release.schedule", "seat_release.cancel"]
    assert snapshot(app) == before


def test_a_new_seat_after_declining_starts_a_new_reminder_round(cast, frozen_clock):
    app, who, secrets = cast
    remind(app, frozen_clock)
    frozen_clock(jst(2023, 9, 12, 8))
    assert app.test_client().post(f"/me/{secrets['a']}/not-coming").status_code == 303
    with app.app_context():
        # c was promoted into a's seat; w leaves the waiting list and c gives the seat back, so a can ask again.
        registrations.cancel(db.session.get(Registrant, who["w"]))
        registrations.cancel(db.session.get(Registrant, who["c"]))
        seats.lock()
        assert seats.request_seat(db.session.get(Registrant, who["a"])) == "confirmed"
        db.session.commit()
        a = db.session.get(Registrant, who["a"])
        assert (a.reminder_sent_at, a.reminder_answer, a.reminder_answered_at) == (None, None, None)
    assert remind(app, frozen_clock, at=jst(2023, 9, 12, 9)).strip() == "Reminded 1 seat holder; 2 had been reminded already."
    assert ids(mails(app, "reminder")).count(who["a"]) == 2
    assert invariants(app) == []
