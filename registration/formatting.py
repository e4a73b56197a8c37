"""Dates and times as the pages and mails show them: always in Japan Standard Time."""

from datetime import date, datetime

from flask import Flask
from flask_babel import get_locale

from registration.clock import to_tokyo

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")


def _locale(locale: str | None) -> str:
    return locale or str(get_locale() or "ja")


def day(value: date, locale: str | None = None) -> str:
    """2023年9月14日(木) / Thu 14 Sep 2023."""
    if isinstance(value, datetime):
        value = to_tokyo(value).date()
    if _locale(locale) == "ja":
        return f"{value.year}年{value.month}月{value.day}日({WEEKDAYS_JA[value.weekday()]})"
    return f"{WEEKDAYS_EN[value.weekday()]} {value.day} {MONTHS_EN[value.month - 1][:3]} {value.year}"


def moment(value: datetime, locale: str | None = None, seconds: bool = False) -> str:
    """2023年9月14日(木) 10:00 / Thu 14 Sep 2023, 10:00 JST."""
    local = to_tokyo(value)
    clock_time = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if _locale(locale) == "ja":
        return f"{day(local.date(), 'ja')} {clock_time}"
    return f"{day(local.date(), 'en')}, {clock_time} JST"


def deadline(value: datetime, locale: str | None = None) -> str:
    """2023年9月14日(木) 10:00 締切 / Closes Thu 14 Sep 2023, 10:00 JST."""
    if _locale(locale) == "ja":
        return f"{moment(value, 'ja')} 締切"
    return f"Closes {moment(value, 'en')}"


def month(value: str, locale: str | None = None) -> str:
    """'2023-10' as 2023年10月 / October 2023."""
    year, number = (int(part) for part in value.split("-"))
    if _locale(locale) == "ja":
        return f"{year}年{number}月"
    return f"{MONTHS_EN[number - 1]} {year}"


def iso_tokyo(value: datetime) -> str:
    """2023-09-14T10:00:00.123+09:00: an exact instant for exports, in Japan Standard Time."""
    return to_tokyo(value).isoformat(timespec="milliseconds")


def person_name(registrant, locale: str | None = None) -> str:
    """A registrant's name in the language of the page or mail: Smith John reads "John Smith" in English."""
    return registrant.name_in(_locale(locale))


def grouped_code(code: str) -> str:
    """A ticket code in groups of four for reading and typing: 2HTJ JPRJ YPJX ..."""
    return " ".join(code[start:start + 4] for start in range(0, len(code), 4))


def time_range(starts: datetime, ends: datetime | None = None, locale: str | None = None) -> str:
    """2023年9月14日(木) 13:00–18:00 / Thu 14 Sep 2023, 13:00–18:00 JST; without an end, 13:00 開始 / from 13:00."""
    start = to_tokyo(starts)
    language = "ja" if _locale(locale) == "ja" else "en"
    first_day = day(start.date(), language)
    if ends is None:
        return f"{first_day} {start:%H:%M} 開始" if language == "ja" else f"{first_day}, from {start:%H:%M} JST"
    end = to_tokyo(ends)
    if end.date() != start.date():
        return f"{moment(start, language)} – {moment(end, language)}"
    if language == "ja":
        return f"{first_day} {start:%H:%M}–{end:%H:%M}"
    return f"{first_day}, {start:%H:%M}–{end:%H:%M} JST"


def clock_range(starts: datetime, ends: datetime | None = None, locale: str | None = None,
                on: date | None = None) -> str:
    """13:00–18:00 / 13:00–18:00 JST, for a line under the day `on`; with the day (as time_range) when the times
    fall on another day, so that a start configured for the wrong day shows instead of hiding."""
    start = to_tokyo(starts)
    end = to_tokyo(ends) if ends is not None else None
    if (on is not None and start.date() != on) or (end is not None and end.date() != start.date()):
        return time_range(starts, ends, locale)
    ja = _locale(locale) == "ja"
    if end is None:
        return f"{start:%H:%M} 開始" if ja else f"from {start:%H:%M} JST"
    return f"{start:%H:%M}–{end:%H:%M}" if ja else f"{start:%H:%M}–{end:%H:%M} JST"


def register(app: Flask) -> None:
    """Make the formatters available to templates as filters."""
    app.add_template_filter(day, "day")
    app.add_template_filter(moment, "moment")
    app.add_template_filter(deadline, "deadline")
    app.add_template_filter(month, "month")
    app.add_template_filter(person_name, "person_name")
    app.add_template_filter(grouped_code, "grouped_code")
    app.add_template_filter(time_range, "time_range")
    app.add_template_filter(clock_range, "clock_range")
