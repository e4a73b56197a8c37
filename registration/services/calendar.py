"""The closing event as an iCalendar entry, attached to ticket mail."""

from datetime import timedelta

from registration import clock
from registration.models import Event


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def closing_event_ics(event: Event) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of an all-day entry: the article states the day, not the hours."""
    day = event.closing_date
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//CODT2023 registration//EN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{event.key}-closing-event@cloudopsdays.example",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
        f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{_escape(event.name_en)} closing event / {_escape(event.name_ja)} クロージングイベント",
        f"LOCATION:{_escape(event.venue)} ({_escape(event.venue_area_en)})",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return f"{event.key}-closing-event.ics", "text/calendar", ("\r\n".join(lines) + "\r\n").encode("utf-8")
