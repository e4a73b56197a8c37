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


def register(app: Flask) -> None:
    """Make the formatters available to templates as filters."""
    app.add_template_filter(day, "day")
    app.add_template_filter(moment, "moment")
    app.add_template_filter(deadline, "deadline")
    app.add_template_filter(month, "month")
    app.add_template_filter(person_name, "person_name")
    app.add_template_filter(grouped_code, "grouped_code")
