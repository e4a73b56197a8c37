"""The admin dashboard (/admin) and its door panel (/admin/door-panel): every figure against the data it counts,
the charts' data attributes against the figures, who may see them, and that no figure loops over people."""

import html
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event, select, update

from registration import charts
from registration.charts import Series
from registration.extensions import db
from registration.models import Registrant
from registration.services import checkins, dashboard, registrations, viewing
from registration.services import staff as staff_service
from registration.staffarea.admin import WAITING_SHOWN
from tests.conftest import jst

EVENT_DAY = (2023, 9, 14)


def sign_in(client, make_staff, role="admin"):
    name, password = make_staff(role)
    assert client.post("/login", data={"name": name, "password": password}).status_code == 303
    return name


def chart(page: str, key: str) -> dict[str, list[tuple[str, float]]]:
    """A chart's marks as the page carries them: {series: [(label, value), ...]} in drawing order."""
    match = re.search(rf'<figure class="chart" data-chart="{key}">(.*?)</figure>', page, re.S)
    assert match, f"no chart {key}"
    found: dict[str, list] = {}
    for label, series, value in re.findall(
            r'class="mark [^"]*" data-label="([^"]*)" data-series="([^"]*)" data-value="([^"]*)"', match.group(1)):
        found.setdefault(html.unescape(series), []).append((html.unescape(label), float(value)))
    return found


def values(page: str, key: str, series: str | None = None) -> list[tuple[str, float]]:
    drawn = chart(page, key)
    return drawn[series] if series is not None else next(iter(drawn.values()))


# --- the JST day helper ------------------------------------------------------------------------------------

@pytest.mark.usefixtures("server_tz")
def test_jst_text_buckets_by_japan_time_whatever_the_server_zone(app, make_registrant, frozen_clock):
    frozen_clock(datetime(2023, 8, 1, 14, 59, 59, tzinfo=UTC))  # 23:59:59 JST
    late = make_registrant()
    frozen_clock(datetime(2023, 8, 1, 15, 0, 0, tzinfo=UTC))  # midnight JST
    early = make_registrant()
    with app.app_context():
        text = {length: dict(db.session.execute(select(Registrant.id, dashboard.jst_text(
            Registrant.registered_at, length))).all()) for length in (dashboard.DAY, dashboard.TEN_MINUTES, dashboard.MINUTE)}
    assert [text[length][late.id] for length in text] == ["2023-08-01", "2023-08-01 23:5", "2023-08-01 23:59"]
    assert [text[length][early.id] for length in text] == ["2023-08-02", "2023-08-02 00:0", "2023-08-02 00:00"]


# --- registrations -----------------------------------------------------------------------------------------

@pytest.mark.usefixtures("server_tz")
def test_registrations_and_cancellations_per_jst_day(app, client, make_staff, make_registrant, frozen_clock):
    frozen_clock(jst(2023, 8, 1, 23, 59, 59))
    first, _ = make_registrant(), make_registrant()
    frozen_clock(jst(2023, 8, 2, 0, 0, 0))
    make_registrant()
    frozen_clock(jst(2023, 8, 5, 9))
    make_registrant()
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, first.id), at=jst(2023, 8, 3, 0, 0, 0))
        db.session.commit()
        days = dashboard.registrations_per_day(at=jst(2023, 8, 5, 10))
        assert [(d.day, d.registered, d.cancelled, d.registered_total, d.still_registered) for d in days] == [
            (date(2023, 8, 1), 2, 0, 2, 2), (date(2023, 8, 2), 1, 0, 3, 3), (date(2023, 8, 3), 0, 1, 3, 2),
            (date(2023, 8, 4), 0, 0, 3, 2), (date(2023, 8, 5), 1, 0, 4, 3)]
        window = dashboard.registrations_per_day(since=date(2023, 8, 2), until=date(2023, 8, 3))
        assert [(d.day, d.registered, d.cancelled, d.registered_total, d.still_registered) for d in window] == [
            (date(2023, 8, 2), 1, 0, 3, 3), (date(2023, 8, 3), 0, 1, 3, 2)]
        # Until a later day than the data: every day listed, the totals carried on.
        longer = dashboard.registrations_per_day(at=jst(2023, 8, 7, 0, 0, 1))
        assert [(d.day, d.registered, d.still_registered) for d in longer[-2:]] == [
            (date(2023, 8, 6), 0, 3), (date(2023, 8, 7), 0, 3)]

    sign_in(client, make_staff)
    page = client.get("/admin").get_data(as_text=True)  # the frozen clock stands at 2023-08-05 09:00 JST
    labels = ["2023-08-01", "2023-08-02", "2023-08-03", "2023-08-04", "2023-08-05"]
    drawn = chart(page, "registrations-per-day")
    assert list(drawn.values())[0] == list(zip(labels, [2, 1, 0, 0, 1]))
    assert list(drawn.values())[1] == list(zip(labels, [0, 0, 1, 0, 0]))
    cumulative = list(chart(page, "registrations-cumulative").values())
    assert cumulative == [list(zip(labels, [2, 3, 3, 3, 4])), list(zip(labels, [2, 3, 2, 2, 3]))]
    assert re.search(r'data-testid="admin-registered">3<', page)


def test_no_registrations_yet(app, client, make_staff):
    with app.app_context():
        assert dashboard.registrations_per_day() == []
    sign_in(client, make_staff)
    page = client.get("/admin").get_data(as_text=True)
    assert 'data-chart="registrations-per-day"' not in page and 'data-testid="admin-registered">0<' in page


# --- seats, reminders, on demand ---------------------------------------------------------------------------

def test_seats_and_reminder_answers(make_app, make_staff, make_registrant):
    app = make_app(CLOSING_CAPACITY=3)
    people = [make_registrant(attend_closing=True) for _ in range(4)]  # three seats, one waiting
    make_registrant()  # not coming to the closing event
    client = app.test_client()
    with app.app_context():
        assert dashboard.reminder_answers() is None
        registrations.cancel(db.session.get(Registrant, people[0].id))  # the waiting person moves up
        db.session.commit()
        assert dashboard.closing_seats() == dashboard.Seats(capacity=3, confirmed=3, waiting=0)
        remind = update(Registrant).values(reminder_sent_at=jst(2023, 9, 11, 9))
        db.session.execute(remind.where(Registrant.id.in_([p.id for p in people[1:]])))
        db.session.execute(update(Registrant).where(Registrant.id == people[1].id).values(reminder_answer="coming"))
        db.session.execute(update(Registrant).where(Registrant.id == people[2].id).values(reminder_answer="declined"))
        db.session.commit()
        answers = dashboard.reminder_answers()
        assert (answers.reminded, answers.coming, answers.declined, answers.no_answer) == (3, 1, 1, 1)
    sign_in(client, make_staff)
    page = client.get("/admin").get_data(as_text=True)
    assert [value for _, value in values(page, "closing-seats")] == [3, 0, 0, 3]  # confirmed, waiting, free, capacity
    assert [value for _, value in values(page, "reminder-answers")] == [3, 1, 1, 1]
    assert re.search(r'data-testid="admin-seats">3 / 3<', page)


def test_on_demand_per_category_and_session(app, client, make_staff, make_registrant, program_with_video,
                                            frozen_clock):
    frozen_clock(jst(2023, 8, 22, 10))  # the on-demand window is open
    one, two = make_registrant(), make_registrant()
    with app.app_context():
        a, b = (db.session.get(Registrant, person.id) for person in (one, two))
        viewing.change_signups(a, ["ntt-east-aws-tagging", "openinfra-loki-stack"])
        viewing.change_signups(b, ["ntt-east-aws-tagging"])
        viewing.watch(a, "ntt-east-aws-tagging", at=jst(2023, 8, 22, 10))
        viewing.watch(a, "ntt-east-aws-tagging", at=jst(2023, 8, 22, 11))  # another quarter: a second view
        viewing.watch(b, "openinfra-loki-stack", at=jst(2023, 8, 22, 10))
        db.session.commit()
        categories, total = dashboard.on_demand()
        assert (total.signups, total.views, total.watchers) == (3, 3, 2)
        by_session = {row.session.key: row for entry in categories for row in entry.sessions}
        tagging, loki = by_session["ntt-east-aws-tagging"], by_session["openinfra-loki-stack"]
        assert (tagging.attendance.signups, tagging.attendance.views) == (2, 2)
        assert (loki.attendance.signups, loki.attendance.views) == (1, 1)
        expected_categories = [(entry.category.name_ja, entry.attendance.signups, entry.attendance.views)
                               for entry in categories]
        titles = {tagging.session.title: (2, 2), loki.session.title: (1, 1)}
    assert sum(signups for _, signups, _ in expected_categories) == 3
    sign_in(client, make_staff)
    page = client.get("/admin").get_data(as_text=True)
    drawn = list(chart(page, "viewing-categories").values())
    assert [(label, signups, views) for (label, signups), (_, views) in zip(*drawn)] == expected_categories
    sessions = list(chart(page, "viewing-sessions").values())
    shown = {label: (signups, views) for (label, signups), (_, views) in zip(*sessions)}
    assert {title: shown[title] for title in titles} == titles
    assert sum(signups for signups, _ in shown.values()) == 3 and sum(v for _, v in shown.values()) == 3


# --- the event day's door ----------------------------------------------------------------------------------

@pytest.fixture
def door_day(app, make_attendee, make_staff, frozen_clock):
    """Four seat holders and one cancelled; check-ins and refused scans around the event day's JST midnight."""
    people = [make_attendee() for _ in range(5)]
    admin = make_staff("admin")
    with app.app_context():
        admin_id = staff_service.find_staff(admin[0]).id
        registrations.cancel(db.session.get(Registrant, people[4].id))
        db.session.commit()
        # The day before, a minute before midnight JST: counted in the totals, not in the event day's buckets.
        scan = [
            (people[0], "door-1", jst(2023, 9, 13, 23, 59, 59), 100),
            (people[1], "door-1", jst(*EVENT_DAY, 13, 5, 0), 200),
            (people[2], "door-1", jst(*EVENT_DAY, 13, 9, 59), 300),
            (people[3], "door-2", jst(*EVENT_DAY, 13, 10, 0), None),
            (people[4], "door-2", jst(*EVENT_DAY, 13, 12, 0), None),  # cancelled: refused
            (people[1], "door-2", jst(*EVENT_DAY, 13, 15, 30), None),  # already checked in: refused
            (None, "door-2", jst(*EVENT_DAY, 12, 20, 59), None),  # unknown code, 60 minutes and a second before 13:20
            (None, "door-1", jst(*EVENT_DAY, 12, 21, 0), None),  # unknown code, just inside the last 60 minutes
        ]
        answers = []
        for person, gate, at, latency in scan:
            answers.append(checkins.check_in(code=person.ticket_code if person else "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                             gate=gate, at=at, previous_latency_ms=latency))
        # The 13:10 check-in was a mistake and is undone: it counts nowhere.
        checkins.undo(answers[3].body["checkin_id"], staff_id=admin_id, at=jst(*EVENT_DAY, 13, 11))
        db.session.commit()
        assert [a.body["result"] for a in answers] == ["ok", "ok", "ok", "ok", "not_admitted", "already_checked_in",
                                                       "unknown_code", "unknown_code"]
    frozen_clock(jst(*EVENT_DAY, 13, 20, 0))
    return people


@pytest.mark.usefixtures("server_tz")
def test_door_figures(app, door_day):
    at = jst(*EVENT_DAY, 13, 20, 0)
    with app.app_context():
        buckets = dashboard.checkins_over_time(at)
        assert [(b.starts, b.added, b.total) for b in buckets] == [
            (jst(*EVENT_DAY, 12, 50), 0, 1), (jst(*EVENT_DAY, 13, 0), 2, 3), (jst(*EVENT_DAY, 13, 10), 0, 3), (jst(*EVENT_DAY, 13, 20), 0, 3)]
        assert all(b.starts.utcoffset().total_seconds() == 9 * 3600 for b in buckets)
        minutes, gates = dashboard.scans_per_minute(at)
        assert (minutes[0], minutes[-1], len(minutes)) == (jst(*EVENT_DAY, 12, 21), jst(*EVENT_DAY, 13, 20), 60)
        by_minute = {gate: {f"{m:%H:%M}": n for m, n in zip(minutes, counts) if n} for gate, counts in gates.items()}
        assert by_minute == {"door-1": {"12:21": 1, "13:05": 1, "13:09": 1},
                             "door-2": {"13:10": 1, "13:12": 1, "13:15": 1}}
        refused = [(r.result, r.reason, r.count) for r in dashboard.refused_scans()]
        assert refused == [("unknown_code", None, 2), ("already_checked_in", None, 1),
                           ("not_admitted", "cancelled", 1)]
        assert dashboard.door_speed() == {"count": 3, "median_ms": 200, "p95_ms": 300}
        assert dashboard.still_expected() == 1  # people[3]: their check-in was undone
        # Before anyone came in: no buckets; a moment on a later day still shows the latest day with check-ins.
        assert dashboard.checkins_over_time(jst(2023, 9, 13, 23, 59, 58)) == []
        later = dashboard.checkins_over_time(jst(2023, 9, 15, 9))
        assert (later[0].starts, later[-1].starts, later[-1].total) == (
            jst(*EVENT_DAY, 12, 50), jst(*EVENT_DAY, 23, 50), 3)


def test_the_door_panel_endpoint_and_its_charts(app, client, make_staff, door_day):
    sign_in(client, make_staff)
    response = client.get("/admin/door-panel")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and 'data-door-panel data-updated-at="13:20:00"' in fragment
    assert re.search(r'data-testid="admin-checked-in">3 / 4<', fragment)
    assert "admin-checked-in-without-seat" not in fragment  # the cancelled person was refused, not let in
    assert re.search(r'data-testid="door-expected">1<', fragment)
    assert 'href="/admin/registrants?closing=confirmed&amp;checked_in=no"' in fragment
    assert values(fragment, "checkins-over-time") == [("12:50", 1), ("13:00", 3), ("13:10", 3), ("13:20", 3)]
    scans = chart(fragment, "scans-per-minute")
    assert sorted(scans) == ["door-1", "door-2"] and all(len(marks) == 60 for marks in scans.values())
    assert [(label, n) for label, n in scans["door-1"] if n] == [("12:21", 1), ("13:05", 1), ("13:09", 1)]
    assert [(label, n) for label, n in scans["door-2"] if n] == [("13:10", 1), ("13:12", 1), ("13:15", 1)]
    table = re.search(r'data-chart="scans-per-minute">.*?<tbody>(.*?)</tbody>', fragment, re.S).group(1)
    assert re.findall(r'<th scope="row">([^<]*)</th>', table) == ["12:21", "13:05", "13:09", "13:10", "13:12",
                                                                   "13:15"]  # the minutes with scans only
    assert [n for _, n in values(fragment, "refused-scans")] == [2, 1, 1]
    speed = re.search(r'data-testid="door-speed">(.*?)</dd>', fragment, re.S).group(1)
    assert [int(n) for n in re.findall(r"\d+", speed) if n != "95"] == [200, 300, 3]
    # The dashboard holds the same panel, and the refresh settings for dashboard.js.
    page = client.get("/admin").get_data(as_text=True)
    assert values(page, "checkins-over-time") == values(fragment, "checkins-over-time")
    assert 'data-door-panel-url="/admin/door-panel"' in page and 'data-refresh-seconds="15"' in page
    assert 'aria-live="polite"' in page and "admin/dashboard.js" in page


def test_the_refresh_interval_comes_from_the_configuration(make_app, make_staff):
    app = make_app(DASHBOARD_REFRESH_SECONDS=2)
    client = app.test_client()
    sign_in(client, make_staff)
    assert 'data-refresh-seconds="2"' in client.get("/admin").get_data(as_text=True)


def test_an_empty_door_panel(client, make_staff):
    sign_in(client, make_staff)
    fragment = client.get("/admin/door-panel").get_data(as_text=True)
    assert 'data-testid="admin-checked-in">0 / 0<' in fragment and 'data-chart=' not in fragment


# --- who may see it ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin", "/admin/door-panel"])
def test_door_staff_are_refused_and_strangers_sent_to_sign_in(client, make_staff, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    sign_in(client, make_staff, role="door")
    assert client.get(path).status_code == 403


def test_the_door_panel_is_read_only(client, make_staff):
    sign_in(client, make_staff)
    assert client.post("/admin/door-panel").status_code == 405


def test_the_dashboard_keeps_the_waiting_list_search_and_exports(make_app, make_staff, make_registrant):
    app = make_app(CLOSING_CAPACITY=1)
    make_registrant(attend_closing=True)
    waiting = make_registrant(attend_closing=True, family_name="待機")
    client = app.test_client()
    sign_in(client, make_staff)
    page = client.get("/admin?page=99999999999&q=").get_data(as_text=True)
    assert f'action="/admin/registrants/{waiting.id}/promote"' in page and "待機" in page
    assert re.search(r'<form class="dashboard-search" role="search" method="get" action="/admin/registrants">', page)
    assert 'name="q"' in page
    assert 'href="/admin/registrants.csv"' in page and 'href="/admin/exports"' in page
    assert client.post(f"/admin/registrants/{waiting.id}/promote").status_code == 303
    # The old search address leads to the registrant list's search.
    moved = client.get("/admin?q=%E5%BE%85%E6%A9%9F%20")
    assert moved.status_code == 302 and moved.headers["Location"] == "/admin/registrants?q=%E5%BE%85%E6%A9%9F"


def test_a_long_waiting_list_shows_its_head_and_links_to_the_rest(make_app, make_staff, make_registrant):
    app = make_app(CLOSING_CAPACITY=0)
    waiting = [make_registrant(attend_closing=True) for _ in range(WAITING_SHOWN + 2)]
    client = app.test_client()
    sign_in(client, make_staff)
    page = client.get("/admin").get_data(as_text=True)
    buttons = re.findall(r'action="/admin/registrants/(\d+)/promote"', page)
    assert buttons == [str(person.id) for person in waiting[:WAITING_SHOWN]]  # next in line first
    assert 'href="/admin/registrants?closing=waitlisted&amp;sort=registered"' in page
    assert f"{WAITING_SHOWN + 2}" in page


# --- aggregate queries, not loops over people --------------------------------------------------------------

def _statements(app, client) -> int:
    seen = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/admin").status_code == 200
        assert client.get("/admin/door-panel").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def test_the_number_of_queries_does_not_grow_with_the_registrants(make_app, make_staff, make_registrant,
                                                                  frozen_clock):
    app = make_app(CLOSING_CAPACITY=1000)
    client = app.test_client()
    sign_in(client, make_staff)

    def add(days, per_day, checked_in):
        for day in days:
            frozen_clock(jst(2023, 8, day, 12))
            for _ in range(per_day):
                make_registrant(attend_closing=True)
        with app.app_context():
            waiting = select(Registrant).where(~Registrant.checkins.any()).limit(checked_in)
            for n, person in enumerate(db.session.scalars(waiting).all()):
                checkins.check_in(code=person.ticket_code, gate=f"door-{n % 3}", at=jst(*EVENT_DAY, 13, n))
            db.session.commit()
        frozen_clock(jst(*EVENT_DAY, 13, 30))

    add((1, 2), 1, 1)
    few = _statements(app, client)
    add(range(3, 23), 3, 20)
    assert _statements(app, client) == few


# --- the charts themselves ---------------------------------------------------------------------------------

def test_charts_say_what_they_show(app):
    with app.test_request_context():
        bar = str(charts.bar_chart("k", "Per <day>", ["2023-08-01", "2023-08-02"],
                                   [Series("Registrations", [3, 0]), Series("Cancellations", [1, 2])]))
        line = str(charts.line_chart("c", "Cumulative", ["a", "b", "c"], [Series("Total", [1, 2.5, 4])], area=True))
        hbar = str(charts.hbar_chart("h", "Reasons", ["<script>x</script>", "長い" * 100], [Series("Scans", [7, 1])]))
    assert chart(bar, "k") == {"Registrations": [("2023-08-01", 3), ("2023-08-02", 0)],
                               "Cancellations": [("2023-08-01", 1), ("2023-08-02", 2)]}
    assert "<title>2023-08-02: Cancellations, 2</title>" in bar
    assert 'role="img" aria-label="Per &lt;day&gt;"' in bar and 'viewBox="0 0 400 ' in bar and 'width="100%"' in bar
    assert "<details" in bar and '<th scope="row">2023-08-01</th><td>3</td><td>1</td>' in bar
    assert values(line, "c") == [("a", 1), ("b", 2.5), ("c", 4)] and "<polygon" in line
    assert "<title>b: 2.5</title>" in line  # one series: the value alone
    assert "<script>" not in hbar and "&lt;script&gt;" in hbar
    shown = re.findall(r'<text class="label"[^>]*>([^<]*)</text>', hbar)[1]
    assert shown.endswith("…") and len(shown) < 40  # cut to fit the drawing; the whole label stays in the title
    assert [(label, n) for label, n in values(hbar, "h")][1] == ("長い" * 100, 1)


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (250, 500), (1000, 1000)])
def test_value_axes_end_on_a_round_number(value, top):
    assert charts.nice_ceiling(value) == top
