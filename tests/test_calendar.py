"""The closing event's times, address and map on the ticket and in mail, and its calendar entry (.ics): parsed
back with icalendar and checked line by line against RFC 5545."""

import re
import subprocess
import sys
from datetime import UTC, date, datetime
from email import message_from_bytes, policy

import icalendar
import pytest
from sqlalchemy import select

import config
from registration import formatting
from registration.extensions import db
from registration.models import Event, OutboxMessage, Registrant
from registration.services import privacy, registrations
from registration.services.calendar import closing_event_ics
from tests.conftest import ROOT, jst

ADDRESS = "東京都江東区青海2-5-10, テレコムセンタービル; 10F"
MAP_URL = "https://www.openstreetmap.org/?mlat=35.6178&mlon=139.7794#map=18/35.6178/139.7794"
CONFIGURED = {"CLOSING_STARTS_AT": jst(2023, 9, 14, 13), "CLOSING_ENDS_AT": jst(2023, 9, 14, 18),
              "VENUE_ADDRESS": ADDRESS, "VENUE_MAP_URL": MAP_URL}
TBA_JA = "未定（決まり次第お知らせします）"


@pytest.fixture
def settings() -> dict:
    """Configuration for this test's app; the defaults (nothing announced) unless a test parametrizes it."""
    return {}


@pytest.fixture
def app(make_app, settings):
    """The app with this test's settings; make_registrant and client use it."""
    return make_app(**settings)


def ics_of(app, registrant=None, **kwargs) -> bytes:
    with app.app_context():
        event = db.session.scalar(select(Event))
        person = db.session.get(Registrant, registrant.id) if registrant is not None else None
        filename, content_type, data = closing_event_ics(event, person, **kwargs)
    assert filename == "codt2023-closing-event.ics"
    assert content_type == "text/calendar; charset=utf-8; method=PUBLISH"
    return data


def rfc5545_lines(data: bytes) -> list[bytes]:
    """The content lines as sent, after checking what RFC 5545 asks of them: CRLF endings, at most 75 octets a
    line, folds that never split a UTF-8 character, continuation lines starting with a space."""
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, line
        assert len(line) <= 75, (len(line), line)
        line.decode("utf-8")  # each physical line on its own: a fold inside a character would fail here
    assert lines[0] == b"BEGIN:VCALENDAR" and lines[-1] == b"END:VCALENDAR"
    return lines


def unfolded(data: bytes) -> str:
    """The content lines joined again (RFC 5545 3.1), as text."""
    return re.sub(rb"\r\n[ \t]", b"", data).decode("utf-8")


def only_event(data: bytes) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(data)
    [event] = calendar.walk("VEVENT")
    return event


# --- configuration -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "message"), [
    ({"CLOSING_ENDS_AT": jst(2023, 9, 14, 18)}, "CLOSING_STARTS_AT is not"),
    ({"CLOSING_STARTS_AT": jst(2023, 9, 14, 18), "CLOSING_ENDS_AT": jst(2023, 9, 14, 13)}, "must be later"),
    ({"CLOSING_STARTS_AT": jst(2023, 9, 14, 13), "CLOSING_ENDS_AT": jst(2023, 9, 14, 13)}, "must be later"),
    ({"CLOSING_STARTS_AT": datetime(2023, 9, 14, 13)}, "UTC offset"),
    ({"VENUE_MAP_URL": "javascript:alert(1)"}, "VENUE_MAP_URL"),
    ({"VENUE_MAP_URL": "www.openstreetmap.org/?mlat=35.6"}, "VENUE_MAP_URL"),
    ({"VENUE_MAP_URL": "ftp://maps.example/odaiba"}, "VENUE_MAP_URL"),
    ({"VENUE_MAP_URL": "https://"}, "VENUE_MAP_URL"),
    ({"VENUE_MAP_URL": "https://maps.example/a b"}, "VENUE_MAP_URL"),
])
def test_config_refuses_misleading_closing_event_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        config.check_closing_event(settings)


@pytest.mark.parametrize("settings", [
    {},
    CONFIGURED,
    {"CLOSING_STARTS_AT": jst(2023, 9, 14, 13)},
    {"VENUE_MAP_URL": "http://maps.example/odaiba"},
])
def test_config_accepts_closing_event_settings(settings):
    config.check_closing_event(settings)


def import_config(**env: str) -> subprocess.CompletedProcess:
    """Import config.py in a process of its own, with these environment variables, as the app starts."""
    return subprocess.run([sys.executable, "-c", "import config; c = config.Config; "
                           "print(c.CLOSING_STARTS_AT.isoformat(), c.CLOSING_ENDS_AT.isoformat(), c.VENUE_ADDRESS, "
                           "c.VENUE_MAP_URL)"],
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)


def test_the_app_refuses_to_start_with_a_bad_setting_and_reads_good_ones():
    bad_map = import_config(VENUE_MAP_URL="javascript:alert(1)")
    assert bad_map.returncode != 0 and "ValueError: VENUE_MAP_URL must be an http:// or https://" in bad_map.stderr
    backwards = import_config(CLOSING_STARTS_AT="2023-09-14T18:00:00+09:00", CLOSING_ENDS_AT="2023-09-14T13:00+09:00")
    assert backwards.returncode != 0 and "CLOSING_ENDS_AT" in backwards.stderr
    end_only = import_config(CLOSING_ENDS_AT="2023-09-14T18:00:00+09:00")
    assert end_only.returncode != 0 and "CLOSING_STARTS_AT is not" in end_only.stderr
    good = import_config(CLOSING_STARTS_AT="2023-09-14T13:00:00+09:00", CLOSING_ENDS_AT="2023-09-14T09:00:00Z",
                         VENUE_ADDRESS=f" {ADDRESS} ", VENUE_MAP_URL=MAP_URL)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == f"2023-09-14T13:00:00+09:00 2023-09-14T09:00:00+00:00 {ADDRESS} {MAP_URL}"


def test_unset_means_to_be_announced():
    assert (config.Config.CLOSING_STARTS_AT, config.Config.CLOSING_ENDS_AT) == (None, None)
    assert (config.Config.VENUE_ADDRESS, config.Config.VENUE_MAP_URL) == ("", "")


# --- formatting ----------------------------------------------------------------------------------------------

def test_times_are_shown_in_japan_time_in_both_languages():
    starts, ends = jst(2023, 9, 14, 13), jst(2023, 9, 14, 18)
    assert formatting.time_range(starts, ends, "ja") == "2023年9月14日(木) 13:00–18:00"
    assert formatting.time_range(starts, ends, "en") == "Thu 14 Sep 2023, 13:00–18:00 JST"
    # The same instants given in UTC read the same.
    assert formatting.time_range(starts.astimezone(UTC), ends.astimezone(UTC), "en") == (
        "Thu 14 Sep 2023, 13:00–18:00 JST")
    assert formatting.time_range(starts, None, "ja") == "2023年9月14日(木) 13:00 開始"
    assert formatting.time_range(starts, None, "en") == "Thu 14 Sep 2023, from 13:00 JST"
    assert formatting.time_range(starts, jst(2023, 9, 15, 1), "en") == (
        "Thu 14 Sep 2023, 13:00 JST – Fri 15 Sep 2023, 01:00 JST")
    assert formatting.clock_range(starts, ends, "ja", date(2023, 9, 14)) == "13:00–18:00"
    assert formatting.clock_range(starts, ends, "en", date(2023, 9, 14)) == "13:00–18:00 JST"
    assert formatting.clock_range(starts, None, "en", date(2023, 9, 14)) == "from 13:00 JST"
    # A start configured for another day than the closing day shows its day instead of hiding the mismatch.
    assert formatting.clock_range(starts, ends, "ja", date(2023, 9, 15)) == "2023年9月14日(木) 13:00–18:00"


# --- the .ics ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [CONFIGURED])
def test_timed_entry_in_tokyo_time_folded_and_escaped(app, make_attendee):
    person = make_attendee(locale="ja")
    data = ics_of(app, person)
    lines = rfc5545_lines(data)
    assert any(len(line) > 70 for line in lines) and any(line.startswith(b" ") for line in lines)  # it did fold
    text = unfolded(data)
    assert "DTSTART;TZID=Asia/Tokyo:20230914T130000\r\n" in text
    assert "DTEND;TZID=Asia/Tokyo:20230914T180000\r\n" in text
    assert "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\n" in text and "TZOFFSETTO:+0900\r\n" in text
    assert "METHOD:PUBLISH\r\n" in text and "VERSION:2.0\r\n" in text
    assert re.search(r"\r\nDTSTAMP:\d{8}T\d{6}Z\r\n", text)
    # Commas and semicolons in a TEXT value are escaped; in the raw file, not just after parsing.
    assert ("LOCATION:@docomo R&D OPEN LAB ODAIBA (お台場)\\, 東京都江東区青海2-5-10\\, テレコムセンタービル\\; 10F\r\n"
            in text)

    event = only_event(data)
    assert event.decoded("dtstart") == jst(2023, 9, 14, 13) and event.decoded("dtend") == jst(2023, 9, 14, 18)
    assert str(event["dtstart"].params["TZID"]) == "Asia/Tokyo"
    assert str(event["location"]) == f"@docomo R&D OPEN LAB ODAIBA (お台場), {ADDRESS}"
    assert str(event["summary"]) == "クラウドオペレーターデイズ東京 2023 クロージングイベント"
    description = str(event["description"])
    assert "2023年9月14日(木) 13:00–18:00" in description
    assert ADDRESS in description and MAP_URL in description
    assert f"http://codt.test/me/{person.secret}" in description
    assert str(event["url"]) == f"http://codt.test/me/{person.secret}"
    assert str(event["uid"]) == "codt2023-closing-event@codt.test"
    [timezone] = icalendar.Calendar.from_ical(data).walk("VTIMEZONE")
    assert str(timezone["tzid"]) == "Asia/Tokyo"


@pytest.mark.parametrize("settings", [CONFIGURED])
def test_english_entry_and_a_stable_uid_with_a_personal_link_only_in_ones_own_file(app, make_attendee):
    jane = make_attendee(locale="en", family_name="Doe", given_name="Jane", email="jane@example.com")
    taro = make_attendee(locale="ja", email="taro@example.jp")
    janes, taros = only_event(ics_of(app, jane)), only_event(ics_of(app, taro))
    assert str(janes["summary"]) == "Cloud Operator Days Tokyo 2023 closing event"
    assert "Thu 14 Sep 2023, 13:00–18:00 JST" in str(janes["description"])
    assert "(Odaiba)" in str(janes["location"])
    assert janes["uid"] == taros["uid"]  # one event: a newer copy updates the entry
    assert jane.secret in unfolded(ics_of(app, jane)) and taro.secret not in unfolded(ics_of(app, jane))
    assert taro.secret in unfolded(ics_of(app, taro)) and jane.secret not in unfolded(ics_of(app, taro))
    # Without a registrant (nobody's file), no personal link at all.
    anonymous = unfolded(ics_of(app, locale="en"))
    assert "/me/" not in anonymous and "URL:http://codt.test/\r\n" in anonymous


def test_all_day_entry_when_no_time_is_announced(app, make_attendee):
    person = make_attendee(locale="en")
    data = ics_of(app, person)
    rfc5545_lines(data)
    text = unfolded(data)
    assert "DTSTART;VALUE=DATE:20230914\r\n" in text and "DTEND;VALUE=DATE:20230915\r\n" in text
    assert "VTIMEZONE" not in text and "TZID" not in text
    event = only_event(data)
    assert event.decoded("dtstart") == date(2023, 9, 14) and event.decoded("dtend") == date(2023, 9, 15)
    description = str(event["description"])
    assert "Thu 14 Sep 2023 (time to be announced)" in description
    assert "Address: To be announced" in description and "Map: To be announced" in description
    assert str(event["location"]) == "@docomo R&D OPEN LAB ODAIBA (Odaiba)"


def test_all_day_entry_in_japanese_says_the_time_is_not_decided(app, make_attendee):
    description = str(only_event(ics_of(app, make_attendee(locale="ja")))["description"])
    assert "2023年9月14日(木) (時間は未定、決まり次第お知らせします)" in description
    assert f"住所: {TBA_JA}" in description


@pytest.mark.parametrize("settings", [{"CLOSING_STARTS_AT": jst(2023, 9, 14, 13)}])
def test_a_start_without_an_end_is_timed_and_says_the_end_is_not_decided(app, make_attendee):
    data = ics_of(app, make_attendee(locale="en"))
    event = only_event(data)
    assert event.decoded("dtstart") == jst(2023, 9, 14, 13) and "dtend" not in event
    assert "from 13:00 JST (end time to be announced)" in str(event["description"])
    assert "BEGIN:VTIMEZONE" in unfolded(data)


# --- serving it ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [CONFIGURED])
def test_a_seat_holder_downloads_the_entry(client, make_attendee):
    person = make_attendee()
    response = client.get(f"/me/{person.secret}/closing-event.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="codt2023-closing-event.ics"'
    assert response.headers["Cache-Control"] == "no-store"
    rfc5545_lines(response.data)
    event = only_event(response.data)
    assert event.decoded("dtstart") == jst(2023, 9, 14, 13)
    assert f"http://codt.test/me/{person.secret}" in str(event["description"])


@pytest.mark.parametrize("settings", [{"CLOSING_CAPACITY": 1}])
def test_no_entry_without_a_confirmed_seat(app, client, make_attendee, make_registrant):
    seated = make_attendee()
    waiting = make_attendee()
    not_attending = make_registrant(attend_closing=False)
    with app.app_context():
        assert db.session.get(Registrant, waiting.id).seat_status == "waitlisted"
    assert client.get(f"/me/{seated.secret}/closing-event.ics").status_code == 200
    for person in (waiting, not_attending):
        assert client.get(f"/me/{person.secret}/closing-event.ics").status_code == 404
    assert client.get("/me/not-a-real-secret-at-all/closing-event.ics").status_code == 404
    with app.app_context():
        registrations.cancel(db.session.get(Registrant, seated.id))
        db.session.commit()
    assert client.get(f"/me/{seated.secret}/closing-event.ics").status_code == 404


def test_no_entry_after_erasure(app, client, make_attendee):
    person = make_attendee()
    with app.app_context():
        stored = db.session.get(Registrant, person.id)
        registrations.cancel(stored, notify=False)
        privacy.erase(stored)
        db.session.commit()
    assert client.get(f"/me/{person.secret}/closing-event.ics").status_code == 404


# --- the ticket page -----------------------------------------------------------------------------------------

def closing_details(page: str) -> str:
    return re.search(r'<dl class="facts closing-details".*?</dl>', page, re.S).group(0)


def dd(details: str, name: str) -> str:
    return re.search(rf'data-testid="closing-{name}">(.*?)</dd>', details, re.S).group(1).strip()


@pytest.mark.parametrize("settings", [CONFIGURED])
def test_ticket_shows_times_address_map_and_calendar_link(client, make_attendee):
    person = make_attendee()
    page = client.get(f"/me/{person.secret}/ticket").get_data(as_text=True)
    details = closing_details(page)
    assert dd(details, "date") == "2023年9月14日(木)"
    assert dd(details, "time") == "13:00–18:00"
    assert dd(details, "venue") == "@docomo R&amp;D OPEN LAB ODAIBA (お台場)"
    assert dd(details, "address") == ADDRESS
    map_link = ('<a href="https://www.openstreetmap.org/?mlat=35.6178&amp;mlon=139.7794#map=18/35.6178/139.7794"'
                ' target="_blank" rel="noopener noreferrer">地図を開く</a>')
    assert dd(details, "map") == map_link
    assert f'href="/me/{person.secret}/closing-event.ics"' in details and "カレンダーに追加" in details
    assert TBA_JA not in page
    code = formatting.grouped_code(person.ticket_code)
    assert f'data-testid="ticket-code">{code}</code>' in page and " " in code

    jane = make_attendee(locale="en", family_name="Doe", given_name="Jane", email="jane@example.com")
    client.set_cookie("lang", "en")  # a registrant's own pages may also follow their registration's language
    english = closing_details(client.get(f"/me/{jane.secret}/ticket").get_data(as_text=True))
    assert dd(english, "date") == "Thu 14 Sep 2023" and dd(english, "time") == "13:00–18:00 JST"
    assert dd(english, "venue") == "@docomo R&amp;D OPEN LAB ODAIBA (Odaiba)"
    assert ">Open the map</a>" in dd(english, "map") and "Add to calendar" in english


def test_ticket_says_to_be_announced_for_what_is_unset(client, make_attendee):
    person = make_attendee()
    details = closing_details(client.get(f"/me/{person.secret}/ticket").get_data(as_text=True))
    assert dd(details, "date") == "2023年9月14日(木)"
    assert dd(details, "time") == dd(details, "address") == dd(details, "map") == TBA_JA
    assert "<a href=\"http" not in details  # no map link
    assert f'href="/me/{person.secret}/closing-event.ics"' in details  # the all-day entry all the same
    jane = make_attendee(locale="en", family_name="Doe", given_name="Jane", email="jane@example.com")
    client.set_cookie("lang", "en")
    english = closing_details(client.get(f"/me/{jane.secret}/ticket").get_data(as_text=True))
    assert dd(english, "time") == dd(english, "address") == dd(english, "map") == "To be announced"


# --- mail ----------------------------------------------------------------------------------------------------

def bodies(message) -> tuple[str, str]:
    """The text and HTML parts, with the CRLFs of the wire turned into newlines."""
    return tuple(message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def mails_to(app, address: str) -> list:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)
                                  .order_by(OutboxMessage.id)).all()
        return [message_from_bytes(row.message, policy=policy.default) for row in rows]


def calendar_parts(message) -> list:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


@pytest.mark.parametrize("settings", [CONFIGURED])
def test_ticket_mail_attaches_a_calendar_entry_mail_programs_accept(app, make_attendee):
    person = make_attendee(locale="ja", email="taro@example.jp")
    [message] = mails_to(app, "taro@example.jp")
    [part] = calendar_parts(message)
    assert part.get_content_disposition() == "attachment"
    assert part.get_filename() == "codt2023-closing-event.ics"
    assert part.get_param("charset") == "utf-8" and part.get_param("method") == "PUBLISH"
    assert part.get_content_charset() == "utf-8"
    data = part.get_payload(decode=True)
    rfc5545_lines(data)  # the bytes arrive as sent: base64 keeps the CRLFs and folds
    event = only_event(data)
    assert str(event["summary"]) == "クラウドオペレーターデイズ東京 2023 クロージングイベント"
    assert event.decoded("dtstart") == jst(2023, 9, 14, 13)
    assert str(event["location"]).endswith(ADDRESS)
    # The mailed entry is the person's own: it links their personal page.
    assert f"http://codt.test/me/{person.secret}" in str(event["description"])


@pytest.mark.parametrize("settings", [CONFIGURED])
def test_mail_text_and_html_give_times_address_map_and_grouped_code(app, make_attendee):
    person = make_attendee(locale="en", family_name="Doe", given_name="Jane", email="jane@example.com")
    [message] = mails_to(app, "jane@example.com")
    text, html = bodies(message)
    code = formatting.grouped_code(person.ticket_code)
    ics_link = f"http://codt.test/me/{person.secret}/closing-event.ics"
    for line in ("Date: Thu 14 Sep 2023", "Time: 13:00–18:00 JST", "Venue: @docomo R&D OPEN LAB ODAIBA (Odaiba)",
                 f"Address: {ADDRESS}", f"Map: {MAP_URL}"):
        assert f"\n{line}\n" in text, line
    assert ics_link in text and f"for manual entry: {code}\n" in text
    assert "To be announced" not in text + html
    assert "13:00–18:00 JST" in html and ADDRESS in html and f'href="{ics_link}"' in html
    assert 'href="https://www.openstreetmap.org/?mlat=35.6178&amp;mlon=139.7794#map=18/35.6178/139.7794"' in html
    assert f">{code}</code>" in html


def test_mail_says_to_be_announced_in_both_parts(app, make_attendee):
    make_attendee(locale="ja", email="taro@example.jp")
    [message] = mails_to(app, "taro@example.jp")
    text, html = bodies(message)
    for line in ("開催日: 2023年9月14日(木)", f"時間: {TBA_JA}", f"住所: {TBA_JA}", f"地図: {TBA_JA}"):
        assert f"\n{line}\n" in text, line
    assert html.count(TBA_JA) == 3
    [part] = calendar_parts(message)
    assert "DTSTART;VALUE=DATE:20230914" in unfolded(part.get_payload(decode=True))


@pytest.mark.parametrize("settings", [{**CONFIGURED, "CLOSING_CAPACITY": 1}])
def test_waiting_list_mail_gives_the_facts_but_no_calendar_entry(app, make_attendee):
    make_attendee(email="first@example.jp")
    make_attendee(locale="en", email="second@example.jp")
    [message] = mails_to(app, "second@example.jp")
    text, _ = bodies(message)
    assert "number 1 on the waiting list" in text
    assert "Time: 13:00–18:00 JST" in text and f"Address: {ADDRESS}" in text
    assert calendar_parts(message) == [] and "closing-event.ics" not in text
