"""The organisers' list of registrants: filters read from a query string, one select, a count and one page."""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, and_, exists, func, select

from registration.extensions import db
from registration.models import CheckIn, ProgramSession, Registrant, ViewingSignup
from registration.services import registrations
from registration.text import fold_for_search

PER_PAGE = 50
#: A search longer than any field it is matched against finds nothing anyway; refusing it keeps LIKE cheap.
QUERY_MAX = 100

#: Each filter and the values it takes; the first of each is what the list shows when the parameter is absent.
CHOICES: dict[str, tuple[str, ...]] = {
    "closing": ("", "confirmed", "waitlisted", "none"),
    "checked_in": ("", "yes", "no"),
    # Live registrations unless asked otherwise: a cancelled one is history, not somebody to look after.
    "cancelled": ("no", "yes", "all"),
    "on_site": ("", "yes", "no"),
    "language": ("", "ja", "en"),
    "reminder": ("", "coming", "declined", "unanswered"),
    "sort": ("-registered", "registered", "name", "organization"),
}
_DIGITS = re.compile(r"[0-9]+")
#: Past this, a page number means "the end" (the last page): no int() of thousands of digits.
_PAGE_MAX = 10**9


@dataclass(frozen=True)
class Filters:
    """What the organiser asked the list for; every value already checked."""

    q: str = ""
    closing: str = ""
    checked_in: str = ""
    cancelled: str = "no"
    on_site: str = ""
    language: str = ""
    session: str = ""
    reminder: str = ""
    sort: str = "-registered"
    page: int = 1

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query parameters that ask for this list again (with `changes`), defaults left out: for links."""
        values = replace(self, **changes)
        defaults = Filters()
        return {name: getattr(values, name) for name in self.__dataclass_fields__
                if getattr(values, name) != getattr(defaults, name)}


@dataclass(frozen=True)
class Page:
    """One page of the list, with what it takes to draw the pager and the badges."""

    filters: Filters
    people: list[Registrant]
    total: int
    page: int
    pages: int
    #: Ids of the people on this page who are checked in now (one query for the page).
    checked_in_ids: set[int] = field(default_factory=set)

    @property
    def first(self) -> int:
        """The position of the page's first row in the whole list (1-based; 0 when nothing was found)."""
        return (self.page - 1) * PER_PAGE + 1 if self.people else 0

    @property
    def last(self) -> int:
        """The position of the page's last row."""
        return self.first + len(self.people) - 1 if self.people else 0


def parse(args: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """Filters from query parameters, and the names of those whose values were not understood (then ignored)."""
    ignored: list[str] = []
    values: dict[str, Any] = {}
    for name, allowed in CHOICES.items():
        value = args.get(name, "")
        if value in allowed:
            values[name] = value
        elif value == "":
            values[name] = allowed[0]
        else:
            ignored.append(name)
    q = args.get("q", "").strip()
    # Printable only: a NUL byte or a control character is nobody's name, and PostgreSQL refuses NUL outright. Checked
    # after NFKC, as search compares: a full-width space typed by a Japanese input method is a space, not junk.
    if len(q) <= QUERY_MAX and unicodedata.normalize("NFKC", q).isprintable():
        values["q"] = q
    else:
        ignored.append("q")
    session = args.get("session", "")
    if session:
        if session in session_keys():
            values["session"] = session
        else:
            ignored.append("session")
    raw_page = args.get("page", "")
    if raw_page:
        if _DIGITS.fullmatch(raw_page) and raw_page.strip("0"):
            values["page"] = _PAGE_MAX if len(raw_page.lstrip("0")) > 9 else int(raw_page)
        else:
            ignored.append("page")
    return Filters(**values), ignored


def session_keys() -> dict[str, ProgramSession]:
    """The program's sessions by key (withdrawn ones too: people may still hold a sign-up), in program order."""
    sessions = db.session.scalars(select(ProgramSession).order_by(ProgramSession.category_id, ProgramSession.position,
                                                                  ProgramSession.key))
    return {session.key: session for session in sessions}


def _checked_in():
    return exists().where(CheckIn.registrant_id == Registrant.id, CheckIn.undone_at.is_(None))


def conditions(filters: Filters, sessions: Mapping[str, ProgramSession] | None = None) -> list:
    """The WHERE clauses of the list for these filters."""
    where = []
    needle = fold_for_search(filters.q)
    if needle:
        where.append(registrations.search_key_contains(needle))
    if filters.closing:
        where.append(Registrant.seat_status == filters.closing)
    if filters.checked_in:
        where.append(_checked_in() if filters.checked_in == "yes" else ~_checked_in())
    if filters.cancelled == "no":
        where.append(Registrant.cancelled_at.is_(None))
    elif filters.cancelled == "yes":
        where.append(Registrant.cancelled_at.is_not(None))
    if filters.on_site:
        where.append(Registrant.on_site.is_(filters.on_site == "yes"))
    if filters.language:
        where.append(Registrant.locale == filters.language)
    if filters.session:
        session = (sessions if sessions is not None else session_keys()).get(filters.session)
        session_id = session.id if session is not None else -1
        where.append(exists().where(ViewingSignup.registrant_id == Registrant.id,
                                    ViewingSignup.session_id == session_id, ViewingSignup.withdrawn_at.is_(None)))
    if filters.reminder in ("coming", "declined"):
        where.append(Registrant.reminder_answer == filters.reminder)
    elif filters.reminder == "unanswered":
        where.append(and_(Registrant.reminder_sent_at.is_not(None), Registrant.reminder_answer.is_(None)))
    return where


_ORDER = {
    "registered": (Registrant.registered_at, Registrant.id),
    "-registered": (Registrant.registered_at.desc(), Registrant.id.desc()),
    "name": (Registrant.family_name_kana, Registrant.given_name_kana, Registrant.family_name, Registrant.id),
    "organization": (Registrant.organization, Registrant.family_name_kana, Registrant.given_name_kana,
                     Registrant.id),
}


def build(filters: Filters, sessions: Mapping[str, ProgramSession] | None = None) -> Select:
    """The one select of the list: filtered and ordered, not yet paged."""
    return select(Registrant).where(*conditions(filters, sessions)).order_by(*_ORDER[filters.sort])


def page_of(filters: Filters, sessions: Mapping[str, ProgramSession] | None = None) -> Page:
    """Count what the filters find, and load one page of it; a page past the end gives the last page."""
    where = conditions(filters, sessions)
    total = db.session.scalar(select(func.count(Registrant.id)).where(*where)) or 0
    pages = max(1, -(-total // PER_PAGE))
    number = min(filters.page, pages)
    people = list(db.session.scalars(build(filters, sessions).limit(PER_PAGE).offset((number - 1) * PER_PAGE)))
    ids = [person.id for person in people]
    checked_in_ids = set(db.session.scalars(
        select(CheckIn.registrant_id).where(CheckIn.registrant_id.in_(ids), CheckIn.undone_at.is_(None)))) if ids \
        else set()
    return Page(filters=replace(filters, page=number), people=people, total=total, page=number, pages=pages,
                checked_in_ids=checked_in_ids)
