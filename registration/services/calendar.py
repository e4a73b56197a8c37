"""The closing event as an iCalendar (RFC 5545) entry: attached to ticket mail and served to seat holders."""

from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from registration import clock, formatting
from registration.models import Event, Registrant
from registration.urls import absolute_url

#: Parameters of the MIME type: the charset, so mail programs decode the Japanese title as UTF-8 (without it, a
#: text/* part is US-ASCII), and the method, which Gmail and Outlook read to offer "Add to calendar".
CONTENT_TYPE = "text/calendar; charset=utf-8; method=PUBLISH"


def closing_event_ics(event: Event, registrant: Registrant | None = None, *,
                      locale: str | None = None) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the closing event's calendar entry, in the registrant's language.

    Timed in Japan time when CLOSING_STARTS_AT is set, else an all-day entry on the closing day. Given a
    registrant, the entry links their personal page: it is then for that person's own mail or download only.
    """
    locale = locale or (registrant.locale if registrant is not None else "ja")
    with force_locale(locale):
        calendar = _calendar(event, registrant, locale)
    # to_ical() folds lines at 75 octets (never inside a UTF-8 sequence), escapes , ; \ and newlines, and ends
    # every line with CRLF, as RFC 5545 requires.
    return f"{event.key}-closing-event.ics", CONTENT_TYPE, calendar.to_ical()


def _calendar(event: Event, registrant: Registrant | None, locale: str) -> icalendar.Calendar:
    config = current_app.config
    starts, ends = config["CLOSING_STARTS_AT"], config["CLOSING_ENDS_AT"]
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//CODT2023 registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")

    entry = icalendar.Event()
    # One UID for the event whoever downloads it, so that importing a newer copy (times announced later) updates
    # the entry instead of adding a second one.
    entry.add("uid", f"{event.key}-closing-event@{_site_host()}")
    entry.add("dtstamp", clock.now())
    name = event.name_ja if locale == "ja" else event.name_en
    entry.add("summary", _("%(event)s closing event", event=name))
    if starts is not None:
        # TZID=Asia/Tokyo with its VTIMEZONE rather than UTC ("Z") times: RFC 5545 asks for the VTIMEZONE of every
        # TZID, and with it Google Calendar (which knows the IANA name) and Outlook (which reads the VTIMEZONE when
        # the TZID is not a Windows zone name) both import the entry at the right moment and show it as Tokyo
        # time, which is where people will be. Japan has had no daylight saving since 1951: the VTIMEZONE is one
        # fixed +09:00 rule, nothing for a client to get wrong.
        entry.add("dtstart", clock.to_tokyo(starts))
        if ends is not None:
            entry.add("dtend", clock.to_tokyo(ends))
    else:
        # The article states the day only: an all-day entry (DTEND is exclusive: the next day).
        entry.add("dtstart", event.closing_date)
        entry.add("dtend", event.closing_date + timedelta(days=1))
    entry.add("location", location(event, locale))
    entry.add("description", _description(event, registrant, locale, starts, ends))
    if registrant is not None:
        entry.add("url", absolute_url("public.personal", secret=registrant.secret))
    else:
        entry.add("url", absolute_url("public.index"))
    calendar.add_component(entry)
    if starts is not None:
        # The VTIMEZONE for Asia/Tokyo, built from the zone data by icalendar.
        calendar.add_missing_timezones(first_date=date(1970, 1, 1), last_date=date(2038, 1, 1))
    return calendar


def location(event: Event, locale: str) -> str:
    """The venue, its area and, when configured, its street address: one line for LOCATION."""
    area = event.venue_area_ja if locale == "ja" else event.venue_area_en
    address = current_app.config["VENUE_ADDRESS"]
    return f"{event.venue} ({area}), {address}" if address else f"{event.venue} ({area})"


def _description(event: Event, registrant: Registrant | None, locale: str, starts: datetime | None,
                 ends: datetime | None) -> str:
    config = current_app.config
    tba = _("To be announced")
    if starts is not None:
        when = formatting.time_range(starts, ends, locale)
        if ends is None:
            when = f"{when} ({_('end time to be announced')})"
    else:
        when = f"{formatting.day(event.closing_date, locale)} ({_('time to be announced')})"
    lines = [
        f"{_('When')}: {when}",
        f"{_('Venue')}: {location(event, locale)}",
        f"{_('Address')}: {config['VENUE_ADDRESS'] or tba}",
        f"{_('Map')}: {config['VENUE_MAP_URL'] or tba}",
    ]
    if registrant is not None:
        lines.append(f"{_('Your registration and ticket')}: "
                     f"{absolute_url('public.personal', secret=registrant.secret)}")
    return "\n".join(lines)


def _site_host() -> str:
    return urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost"
