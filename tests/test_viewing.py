"""Viewing sign-ups, the watch button, the windows and online attendance: services and pages."""

import csv
import email
import email.policy
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from registration.errors import ProgramError
from registration.extensions import db
from registration.models import OutboxMessage, Registrant, SessionView, ViewingSignup
from registration.services import program_import, registrations, viewing
from tests.conftest import form_data, jst
from tests.test_program_import import PROGRAM_49, session_row, write_csv
from tests.test_staff import login

IN_ON_DEMAND = jst(2023, 8, 25, 10)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def program_49(app):
    """The 49-session test program, imported."""
    with app.app_context():
        program_import.import_program(program_import.read_program_file(PROGRAM_49))
        db.session.commit()


@pytest.fixture
def secret_of(app):
    """The personal-link secret of a registrant."""
    def find(registrant) -> str:
        with app.app_context():
            return db.session.get(Registrant, registrant.id).secret
    return find


def current_keys(app, registrant) -> set[str]:
    with app.app_context():
        return {s.key for s in viewing.signed_up_sessions(db.session.get(Registrant, registrant.id))}


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+" role="\w+"[^>]*>([^<]*)<', html)




# --- windows ----------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("app_ctx", "server_tz")
@pytest.mark.parametrize("moment, expected", [
    (jst(2023, 8, 20, 23, 59, 59, 999000), None),
    (jst(2023, 8, 21, 0, 0), "on_demand"),
    (jst(2023, 9, 3, 23, 59, 59, 999000), "on_demand"),
    (jst(2023, 9, 4, 0, 0), None),
    (jst(2023, 9, 30, 23, 59, 59, 999000), None),
    (jst(2023, 10, 1, 0, 0), "archive"),
    (jst(2024, 6, 1), "archive"),
])
def test_the_windows_by_the_millisecond(moment, expected):
    window = viewing.open_window(moment)
    assert (window.name if window else None) == expected


@pytest.mark.usefixtures("server_tz")
def test_configured_windows_close_sign_ups_at_the_last_end(make_app, make_registrant):
    app = make_app(ARCHIVE_ENDS_AT=jst(2024, 3, 31))
    with app.app_context():
        registrant = db.session.get(Registrant, make_registrant().id)
        assert viewing.signups_open(jst(2024, 3, 30, 23, 59, 59, 999000))
        assert not viewing.signups_open(jst(2024, 3, 31))
        with pytest.raises(ProgramError) as refused:
            viewing.change_signups(registrant, ["ntt-east-aws-tagging"], at=jst(2024, 3, 31))
        assert refused.value.code == "signups_closed"
        with pytest.raises(ProgramError) as refused:
            viewing.watch(registrant, "ntt-east-aws-tagging", at=jst(2024, 3, 31))
        assert refused.value.code == "not_in_window"
        assert count(ViewingSignup) == count(SessionView) == 0


# --- sign-ups -----------------------------------------------------------------------------------------------

def test_each_sign_up_and_withdrawal_is_kept_with_its_time(app, make_registrant, frozen_clock):
    registrant = make_registrant()
    with app.app_context():
        person = db.session.get(Registrant, registrant.id)
        first = viewing.change_signups(person, ["ntt-east-aws-tagging", "openinfra-loki-stack"],
                                       at=jst(2023, 8, 1, 9))
        db.session.commit()
        assert {s.key for s in first.added} == {"ntt-east-aws-tagging", "openinfra-loki-stack"}
        second = viewing.change_signups(person, ["openinfra-loki-stack"], at=jst(2023, 8, 2, 9))
        db.session.commit()
        assert [s.key for s in second.removed] == ["ntt-east-aws-tagging"] and second.added == []
        viewing.change_signups(person, ["openinfra-loki-stack", "ntt-east-aws-tagging"], at=jst(2023, 8, 3, 9))
        db.session.commit()
        history = sorted((row.session.key, row.signed_up_at, row.withdrawn_at)
                         for row in db.session.scalars(select(ViewingSignup)))
    assert history == [
        ("ntt-east-aws-tagging", jst(2023, 8, 1, 9), jst(2023, 8, 2, 9)),
        ("ntt-east-aws-tagging", jst(2023, 8, 3, 9), None),
        ("openinfra-loki-stack", jst(2023, 8, 1, 9), None),
    ]


@pytest.mark.parametrize("keys, code", [
    (["no-such-session"], "unknown_session"),
    (["ntt-east-aws-tagging", "<script>"], "unknown_session"),
    (["test-automation-01"], "withdrawn_session"),
])
def test_forged_and_withdrawn_keys_store_nothing(app, make_registrant, program_49, tmp_path, keys, code):
    registrant = make_registrant()
    with app.app_context():
        program_import.import_program(program_import.read_program_file(write_csv(
            tmp_path / "p.csv", [session_row("test-automation-01")])))
        program_import.import_program(program_import.read_program_file(PROGRAM_49))  # restores it
        db.session.commit()
        viewing.change_signups(db.session.get(Registrant, registrant.id), ["test-automation-01"])
        db.session.commit()
        program_import.import_program(program_import.read_program_file(write_csv(
            tmp_path / "q.csv", [session_row("ntt-east-aws-tagging", "cost")])))  # withdraws test-automation-01
        db.session.commit()
        before = count(ViewingSignup)
        with pytest.raises(ProgramError) as refused:
            viewing.change_signups(db.session.get(Registrant, registrant.id), keys)
        db.session.rollback()
        assert refused.value.code == code
        assert count(ViewingSignup) == before


def test_saving_without_a_withdrawn_session_keeps_its_sign_up(app, make_registrant, tmp_path):
    registrant = make_registrant()
    with app.app_context():
        person = db.session.get(Registrant, registrant.id)
        viewing.change_signups(person, ["ntt-east-aws-tagging", "openinfra-loki-stack"])
        rows = [session_row("ntt-east-aws-tagging", "cost")]
        program_import.import_program(program_import.read_program_file(write_csv(tmp_path / "p.csv", rows)))
        viewing.change_signups(person, [])  # the form no longer lists openinfra-loki-stack
        db.session.commit()
        assert count(ViewingSignup, ViewingSignup.withdrawn_at.is_(None)) == 1
        active = db.session.scalar(select(ViewingSignup).where(ViewingSignup.withdrawn_at.is_(None)))
        assert active.session.key == "openinfra-loki-stack"


def test_a_cancelled_registration_cannot_sign_up_and_cancelling_withdraws(app, make_registrant):
    registrant = make_registrant()
    with app.app_context():
        person = db.session.get(Registrant, registrant.id)
        viewing.change_signups(person, ["ntt-east-aws-tagging"])
        registrations.cancel(person)
        db.session.commit()
        assert count(ViewingSignup, ViewingSignup.withdrawn_at.is_(None)) == 0
        assert count(ViewingSignup) == 1
        for attempt in (lambda: viewing.change_signups(person, ["ntt-east-aws-tagging"]),
                        lambda: viewing.watch(person, "ntt-east-aws-tagging")):
            with pytest.raises(ProgramError) as refused:
                attempt()
            assert refused.value.code == "cancelled"


# --- the registration form ---------------------------------------------------------------------------------

def test_registering_with_sessions_signs_up_and_the_mail_lists_them(app, client):
    response = client.post("/register", data=form_data(
        sessions=["openinfra-loki-stack", "ntt-east-aws-tagging", "openinfra-loki-stack"]))
    assert response.status_code == 303
    with app.app_context():
        registrant = db.session.scalar(select(Registrant))
        assert [s.key for s in viewing.signed_up_sessions(registrant)] == [
            "openinfra-loki-stack", "ntt-east-aws-tagging"]  # program order, the repeated key once
        mail = email.message_from_bytes(db.session.scalar(select(OutboxMessage)).message, policy=email.policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert "- The LOKI Stack: Linux OpenStack Kubernetes Infrastructure (OpenInfra Foundation)" in text
    assert "LINE株式会社" not in text


def test_a_forged_session_key_on_the_form_keeps_the_input_and_stores_nothing(app, client):
    response = client.post("/register", data=form_data(sessions=["ntt-east-aws-tagging", "forged-key"]))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "forged-key" in html and 'value="hanako@example.jp"' in html
    assert re.search(r'value="ntt-east-aws-tagging"\s+checked', html)
    with app.app_context():
        assert count(Registrant) == count(ViewingSignup) == 0


def test_a_repeat_registration_does_not_touch_the_owners_sessions(app, client, make_registrant):
    registrant = make_registrant(email="hanako@example.jp")
    with app.app_context():
        viewing.change_signups(db.session.get(Registrant, registrant.id), ["ntt-east-aws-tagging"])
        db.session.commit()
    client.post("/register", data=form_data(sessions=["openinfra-loki-stack"]))
    assert current_keys(app, registrant) == {"ntt-east-aws-tagging"}


# --- the personal page --------------------------------------------------------------------------------------

def test_the_personal_page_lists_signed_up_sessions_first_and_saves_changes(app, client, make_registrant,
                                                                              secret_of, program_49):
    registrant = make_registrant()
    secret = secret_of(registrant)
    response = client.post(f"/me/{secret}/sessions", data={"sessions": ["test-public-cloud-09", "test-cost-x"]})
    assert response.status_code == 422
    assert current_keys(app, registrant) == set()
    response = client.post(f"/me/{secret}/sessions", data={"sessions": ["test-public-cloud-09", "test-automation-02"]})
    assert response.status_code == 303 and response.location.endswith("#sessions")
    html = client.get(f"/me/{secret}").get_data(as_text=True)
    mine = html.split('data-testid="my-sessions"')[1].split("<h3>")[0]
    assert mine.index("test-automation-02") < mine.index("test-public-cloud-09")
    assert "video.example" not in html  # the address is only ever a redirect
    assert len(re.findall(r'name="session" value="', html)) == 49  # a watch button for every session


def test_the_personal_page_and_sessions_of_a_cancelled_registration(app, client, make_registrant, secret_of):
    registrant = make_registrant(locale="en")
    secret = secret_of(registrant)
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, registrant.id))
        db.session.commit()
    client.set_cookie("lang", "en")
    response = client.post(f"/me/{secret}/sessions", data={"sessions": ["ntt-east-aws-tagging"]})
    assert response.status_code == 303
    assert flashes(client.get(f"/me/{secret}").get_data(as_text=True)) == ["This registration is cancelled."]
    assert current_keys(app, registrant) == set()


# --- watching ------------------------------------------------------------------------------------------------

def test_watch_counts_a_view_and_redirects_to_the_video(app, client, make_registrant, secret_of, frozen_clock,
                                                         program_with_video):
    registrant = make_registrant()
    secret = secret_of(registrant)
    response = client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"})
    assert response.status_code == 303
    assert response.location == "https://video.example/codt2023/openinfra-loki-stack"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"})  # a double click
    frozen_clock(IN_ON_DEMAND + timedelta(minutes=15))
    client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"})  # later: another view
    frozen_clock(jst(2023, 10, 2, 21))
    client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"})
    with app.app_context():
        views = db.session.scalars(select(SessionView).order_by(SessionView.at)).all()
        assert [(v.at, v.window) for v in views] == [
            (IN_ON_DEMAND, "on_demand"), (IN_ON_DEMAND + timedelta(minutes=15), "on_demand"),
            (jst(2023, 10, 2, 21), "archive")]


@pytest.mark.parametrize("moment, key, message", [
    (jst(2023, 8, 20, 23, 59, 59, 999000), "openinfra-loki-stack", "Sessions can be watched from Mon 21 Aug 2023, 00:00 JST."),
    (jst(2023, 9, 4), "openinfra-loki-stack", "Sessions can be watched from Sun 1 Oct 2023, 00:00 JST."),
    (IN_ON_DEMAND, "no-such-session", "That session is not in the program."),
    (IN_ON_DEMAND, "", "That session is not in the program."),
    (IN_ON_DEMAND, "x" * 500, "That session is not in the program."),
    (IN_ON_DEMAND, "ntt-east-aws-tagging\x00", "That session is not in the program."),
])
def test_watch_refusals_explain_and_store_nothing(app, client, make_registrant, secret_of, frozen_clock,
                                                  moment, key, message):
    secret = secret_of(make_registrant(locale="en"))
    frozen_clock(moment)
    client.set_cookie("lang", "en")
    response = client.post(f"/me/{secret}/watch", data={"session": key})
    assert response.status_code == 303 and response.location.endswith(f"/me/{secret}#sessions")
    assert flashes(client.get(f"/me/{secret}").get_data(as_text=True)) == [message]
    with app.app_context():
        assert count(SessionView) == 0


def test_watch_refuses_withdrawn_sessions_missing_videos_and_cancelled_registrations(
        app, client, make_registrant, secret_of, tmp_path):
    client.set_cookie("lang", "en")
    registrant = make_registrant(locale="en")
    secret = secret_of(registrant)
    with app.app_context():
        viewing.change_signups(db.session.get(Registrant, registrant.id), ["openinfra-loki-stack"])
        program_import.import_program(program_import.read_program_file(write_csv(
            tmp_path / "p.csv", [session_row("ntt-east-aws-tagging", "cost", video_url="")])))
        db.session.add(SessionView(registrant_id=registrant.id, session_id=viewing.find_session("ntt-east-aws-tagging").id,
                                   at=IN_ON_DEMAND, window="on_demand", slot=0))
        db.session.commit()
    client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"})
    assert flashes(client.get(f"/me/{secret}").get_data(as_text=True)) == [
        "That session is no longer in the program."]
    client.post(f"/me/{secret}/watch", data={"session": "ntt-east-aws-tagging"})
    assert flashes(client.get(f"/me/{secret}").get_data(as_text=True)) == [
        "The video of this session is not available yet. Please try again later."]
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, registrant.id))
        db.session.commit()
    client.post(f"/me/{secret}/watch", data={"session": "ntt-east-aws-tagging"})
    assert flashes(client.get(f"/me/{secret}").get_data(as_text=True)) == ["This registration is cancelled."]
    with app.app_context():
        assert count(SessionView) == 1  # only the one added by hand above


def test_watch_without_the_secret_gives_nothing_away(app, client, program_with_video):
    for path in ("/me/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/watch", "/me/short/watch", "/me/%00/watch"):
        response = client.post(path, data={"session": "openinfra-loki-stack"})
        assert response.status_code == 404 and "video.example" not in response.get_data(as_text=True)
    assert client.get("/me/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/watch").status_code in (404, 405)
    with app.app_context():
        assert count(SessionView) == 0


def test_watch_and_sign_ups_need_the_csrf_token(make_app, make_registrant, secret_of, program_with_video):
    app = make_app()
    client = app.test_client()
    secret = secret_of(make_registrant())
    forged = client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack"}, without_csrf=True)
    assert forged.status_code == 400
    response = client.post(f"/me/{secret}/sessions", data={"sessions": ["openinfra-loki-stack"]}, without_csrf=True)
    assert response.status_code == 422  # the choice is kept on the page, nothing stored
    assert re.search(r'value="openinfra-loki-stack"\s+checked', response.get_data(as_text=True))
    with app.app_context():
        assert count(SessionView) == count(ViewingSignup) == 0
    html = client.get(f"/me/{secret}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(f"/me/{secret}/watch", data={"session": "openinfra-loki-stack", "csrf_token": token})
    assert response.status_code == 303 and response.location.startswith("https://video.example/")


def test_the_personal_page_lets_the_watch_buttons_leave_for_https_only(client, make_registrant, secret_of):
    policy = client.get(f"/me/{secret_of(make_registrant())}").headers["Content-Security-Policy"]
    assert "form-action 'self' https:;" in policy


def test_no_watch_button_outside_a_window_but_the_note_says_when(client, make_registrant, secret_of, frozen_clock,
                                                                  program_with_video):
    secret = secret_of(make_registrant(locale="en"))
    client.set_cookie("lang", "en")
    frozen_clock(jst(2023, 8, 1))
    html = client.get(f"/me/{secret}").get_data(as_text=True)
    assert 'name="session" value=' not in html
    assert "Sessions can be watched from Mon 21 Aug 2023, 00:00 JST." in html
    frozen_clock(IN_ON_DEMAND)
    assert 'name="session" value="openinfra-loki-stack"' in client.get(f"/me/{secret}").get_data(as_text=True)


# --- the public program --------------------------------------------------------------------------------------

def test_the_program_page_groups_counts_marks_english_and_searches(client, program_49):
    client.set_cookie("lang", "en")
    html = client.get("/program").get_data(as_text=True)
    assert "49 sessions." in html
    for name, number in (("Operations war stories", 9), ("Operations automation", 15), ("OpenStack", 4),
                         ("Cost management", 1), ("Public cloud operations", 10)):
        assert re.search(rf"{re.escape(name)}.*?\n\s*<span class=\"count\">{number} sessions?</span>", html), name
    loki = html.split('data-testid="program-openinfra-loki-stack"')[1].split("</li>")[0]
    assert 'class="badge"' in loki and "English" in loki
    assert "video.example" not in html
    found = client.get("/program?q=ｏｐｅｎｓｔａｃｋ").get_data(as_text=True)  # full-width, any case
    assert "4 sessions match" in found  # the category's name matches its sessions
    across = client.get("/program?q=kubernetes").get_data(as_text=True)
    assert "2 sessions match" in across
    assert re.findall(r'data-testid="program-([^"]+)"', across) == [
        "count", "pepabo-multicloud-kubernetes", "openinfra-loki-stack"]
    assert "0 sessions match" in client.get("/program?q=%3Cscript%3E").get_data(as_text=True)


def test_a_session_page_shows_no_video_and_refuses_other_categories(client, program_with_video):
    response = client.get("/program/openstack/openinfra-loki-stack")
    assert response.status_code == 200 and "video.example" not in response.get_data(as_text=True)
    assert client.get("/program/cost/openinfra-loki-stack").status_code == 404
    assert client.get("/program/openstack/nope").status_code == 404
    assert client.get("/program/openstack/" + "x" * 300).status_code == 404


def test_a_withdrawn_session_has_no_page_and_is_not_listed(app, client, tmp_path):
    with app.app_context():
        program_import.import_program(program_import.read_program_file(write_csv(
            tmp_path / "p.csv", [session_row("ntt-east-aws-tagging", "cost")])))
        db.session.commit()
    assert client.get("/program/openstack/openinfra-loki-stack").status_code == 404
    assert "openinfra-loki-stack" not in client.get("/program").get_data(as_text=True)


# --- attendance -------------------------------------------------------------------------------------------------

def test_attendance_per_session_category_and_in_all(app, make_registrant, program_with_video, frozen_clock):
    people = [make_registrant() for _ in range(3)]
    with app.app_context():
        a, b, c = (db.session.get(Registrant, p.id) for p in people)
        viewing.change_signups(a, ["openinfra-loki-stack", "line-private-cloud-openstack"])
        viewing.change_signups(b, ["openinfra-loki-stack"])
        viewing.change_signups(c, ["ntt-east-aws-tagging"])
        viewing.watch(a, "openinfra-loki-stack")
        viewing.watch(a, "openinfra-loki-stack", at=IN_ON_DEMAND + timedelta(hours=1))
        viewing.watch(c, "openinfra-loki-stack")             # without a sign-up
        viewing.watch(c, "line-private-cloud-openstack")     # without a sign-up, same category
        viewing.watch(c, "ntt-east-aws-tagging")
        db.session.commit()
        categories, total = viewing.attendance()
    by_key = {entry.category.key: entry for entry in categories}
    loki = next(r for r in by_key["openstack"].sessions if r.session.key == "openinfra-loki-stack").attendance
    assert (loki.signups, loki.watchers, loki.views, loki.watched_without_signup) == (2, 2, 3, 1)
    openstack = by_key["openstack"].attendance
    assert (openstack.signups, openstack.watchers, openstack.views, openstack.watched_without_signup) == (3, 2, 4, 1)
    assert (total.signups, total.watchers, total.views, total.watched_without_signup) == (4, 2, 5, 1)


def test_the_attendance_page_and_csv_are_for_admins(app, client, make_staff, make_registrant, program_with_video):
    registrant = make_registrant(organization="=HYPERLINK(\"http://evil.example\")")
    with app.app_context():
        viewing.watch(db.session.get(Registrant, registrant.id), "openinfra-loki-stack")
        db.session.commit()
    assert client.get("/admin/attendance").status_code == 302
    login(client, *make_staff("door"))
    assert client.get("/admin/attendance").status_code == 403
    assert client.get("/admin/attendance.csv").status_code == 403
    client.post("/logout")
    login(client, *make_staff("admin"))
    assert 'href="/admin/attendance"' in client.get("/admin").get_data(as_text=True)
    page = client.get("/admin/attendance").get_data(as_text=True)
    assert 'data-testid="attendance-openinfra-loki-stack"' in page
    response = client.get("/admin/attendance.csv")
    assert response.headers["Content-Disposition"] == "attachment; filename=codt2023-attendance.csv"
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeffcategory,") and "\r\n" in body
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert len(rows) == 10
    loki = next(row for row in rows if row["session"] == "openinfra-loki-stack")
    assert (loki["signups"], loki["watchers"], loki["views"], loki["watched_without_signup"]) == ("0", "1", "1", "1")
    records = list(csv.DictReader(io.StringIO(
        client.get("/admin/attendance/records.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["record"], r["session"], r["window"], r["at_jst"]) for r in records] == [
        ("view", "openinfra-loki-stack", "on_demand", "2023-08-25T10:00:00.000+09:00")]
    assert records[0]["organization"] == "'=HYPERLINK(\"http://evil.example\")"  # not a formula in Excel


# --- bounded queries --------------------------------------------------------------------------------------------

@pytest.fixture
def count_queries(app):
    """Count the SQL statements a request runs."""
    def run(do) -> int:
        statements = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            response = do()
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert response.status_code == 200
        return len(statements)
    return run


def test_program_and_personal_pages_do_a_bounded_number_of_queries(app, client, make_registrant, secret_of,
                                                                   count_queries, frozen_clock):
    registrant = make_registrant()
    secret = secret_of(registrant)
    with app.app_context():
        viewing.change_signups(db.session.get(Registrant, registrant.id), ["ntt-east-aws-tagging"])
        db.session.commit()
    small = [count_queries(lambda: client.get(path)) for path in ("/program", f"/me/{secret}", "/register")]

    with app.app_context():
        program_import.import_program(program_import.read_program_file(PROGRAM_49))
        person = db.session.get(Registrant, registrant.id)
        keys = [s.key for entry in viewing.program() for s in entry.sessions]
        viewing.change_signups(person, keys)
        viewing.change_signups(person, keys[:20])  # 29 withdrawals in the history too
        for key in keys[:30]:
            viewing.watch(person, key)
        db.session.commit()
    large = [count_queries(lambda: client.get(path)) for path in ("/program", f"/me/{secret}", "/register")]
    assert large == small, (small, large)
    assert all(0 < n <= 12 for n in large), large


def test_a_refused_sessions_form_leaves_the_details_form_as_stored(app, client, make_registrant, secret_of):
    registrant = make_registrant(attend_closing=True)
    secret = secret_of(registrant)
    response = client.post(f"/me/{secret}/sessions", data={"sessions": ["forged"]})
    assert response.status_code == 422
    # Ticked as stored: saving the details form as shown must not give the seat away.
    assert re.search(r'<input checked id="attend_closing"|<input[^>]*id="attend_closing"[^>]*checked',
                     response.get_data(as_text=True))


@pytest.mark.parametrize("path", ["/register", "/me/{secret}", "/me/{secret}/sessions", "/me/{secret}/watch",
                                  "/lost-link", "/login"])
@pytest.mark.parametrize("body", ['"x"', "[1, 2]", '{"session": 5}'])
def test_pages_refuse_json_bodies_with_415(app, client, make_registrant, secret_of, path, body):
    secret = secret_of(make_registrant())
    response = client.post(path.format(secret=secret), data=body, content_type="application/json")
    assert response.status_code == 415
    assert "この形式の送信は受け付けていません" in response.get_data(as_text=True)
    with app.app_context():
        assert count(SessionView) == count(ViewingSignup) == 0
