"""On-demand viewing: the windows, registrants' sign-ups (kept as history), watches, and online attendance."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from flask import current_app
from sqlalchemy import distinct, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from registration import clock
from registration.errors import ProgramError
from registration.extensions import db
from registration.models import Category, ProgramSession, Registrant, SessionView, ViewingSignup
from registration.text import fold_for_search

WindowName = Literal["on_demand", "archive"]
#: Watches of one session by one person within the same quarter of an hour count as one view.
VIEW_SLOT_SECONDS = 15 * 60


@dataclass(frozen=True)
class Window:
    """A period in which the sessions can be watched; `ends_at` None means open-ended."""

    name: WindowName
    starts_at: datetime
    ends_at: datetime | None

    def contains(self, at: datetime) -> bool:
        """Whether `at` falls inside the window (start included, end excluded)."""
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)

    def is_over(self, at: datetime) -> bool:
        """Whether the window has ended by `at`."""
        return self.ends_at is not None and at >= self.ends_at


def windows() -> list[Window]:
    """The viewing windows from the configuration, in time order."""
    config = current_app.config
    return [Window("on_demand", config["ON_DEMAND_STARTS_AT"], config["ON_DEMAND_ENDS_AT"]),
            Window("archive", config["ARCHIVE_STARTS_AT"], config["ARCHIVE_ENDS_AT"])]


def open_window(at: datetime) -> Window | None:
    """The window sessions can be watched in at `at`, if any."""
    return next((window for window in windows() if window.contains(at)), None)


def next_window(at: datetime) -> Window | None:
    """The next window to open after `at`, if any."""
    return next((window for window in windows() if window.starts_at > at), None)


def signups_open(at: datetime) -> bool:
    """Sign-ups stay open while any window is open or ahead."""
    return any(not window.is_over(at) for window in windows())


@dataclass(frozen=True)
class ProgramCategory:
    """A category and the sessions a page lists under it."""

    category: Category
    sessions: list[ProgramSession]


def program(*, include_withdrawn: bool = False) -> list[ProgramCategory]:
    """The categories in display order with their sessions (two queries whatever the size of the program)."""
    categories = db.session.scalars(
        select(Category).options(selectinload(Category.sessions)).order_by(Category.position)).all()
    return [ProgramCategory(category, [session for session in category.sessions
                                       if include_withdrawn or not session.is_withdrawn])
            for category in categories]


def search_program(query: str, entries: list[ProgramCategory] | None = None) -> list[ProgramCategory]:
    """The program (or `entries` of it) with only the sessions whose title, speakers, abstract, key or category
    contain `query` (width, case and kana script ignored); everything for an empty query."""
    entries = program() if entries is None else entries
    needle = fold_for_search(query.strip())
    if not needle:
        return entries
    return [ProgramCategory(entry.category, [
        session for session in entry.sessions
        if needle in fold_for_search(" ".join((session.title, session.speaker_organization, session.speakers,
                                               session.abstract, session.key, entry.category.name_ja,
                                               entry.category.name_en)))])
        for entry in entries]


def _order(session: ProgramSession) -> tuple:
    return session.category_id, session.position, session.key


def find_session(key: str) -> ProgramSession | None:
    """The session with this key, withdrawn or not."""
    if not isinstance(key, str) or not key or len(key) > 80 or not key.isprintable():
        return None
    return db.session.scalar(select(ProgramSession).where(ProgramSession.key == key))


def current_signups(registrant: Registrant) -> dict[int, ViewingSignup]:
    """The registrant's current sign-ups, by session id."""
    rows = db.session.scalars(select(ViewingSignup).where(
        ViewingSignup.registrant_id == registrant.id, ViewingSignup.withdrawn_at.is_(None)))
    return {row.session_id: row for row in rows}


def signed_up_sessions(registrant: Registrant) -> list[ProgramSession]:
    """The sessions in the program the registrant currently signs up for, in program order."""
    return list(db.session.scalars(
        select(ProgramSession).join(ViewingSignup, ViewingSignup.session_id == ProgramSession.id)
        .join(Category, Category.id == ProgramSession.category_id)
        .where(ViewingSignup.registrant_id == registrant.id, ViewingSignup.withdrawn_at.is_(None),
               ProgramSession.withdrawn_at.is_(None))
        .order_by(Category.position, ProgramSession.position, ProgramSession.key)))


def watched_session_ids(registrant: Registrant) -> set[int]:
    """The sessions the registrant has pressed "watch" on."""
    return set(db.session.scalars(
        select(SessionView.session_id).where(SessionView.registrant_id == registrant.id).distinct()))


@dataclass(frozen=True)
class SignupChange:
    """What a change of sign-ups did."""

    added: list[ProgramSession]
    removed: list[ProgramSession]


def change_signups(registrant: Registrant, keys: Iterable[str], *, at: datetime | None = None) -> SignupChange:
    """Make the registrant's sign-ups among the current program exactly `keys`, recording each change."""
    at = at or clock.now()
    keys = set(keys)
    if registrant.is_cancelled or not _still_active(registrant):
        raise ProgramError("cancelled")
    sessions = {s.key: s for s in db.session.scalars(select(ProgramSession).where(ProgramSession.key.in_(keys)))}
    if keys - sessions.keys():
        raise ProgramError("unknown_session")
    if any(session.is_withdrawn for session in sessions.values()):
        raise ProgramError("withdrawn_session")
    current = current_signups(registrant)
    offered = {s.id: s for s in db.session.scalars(select(ProgramSession).where(
        ProgramSession.withdrawn_at.is_(None), ProgramSession.id.in_(current.keys())))}
    wanted = {session.id: session for session in sessions.values()}
    # Sign-ups of withdrawn sessions stay: the form cannot show them, so leaving them out removes nothing.
    removed = [offered[session_id] for session_id in offered.keys() - wanted.keys()]
    added = [wanted[session_id] for session_id in wanted.keys() - current.keys()]
    if (added or removed) and not signups_open(at):
        raise ProgramError("signups_closed")
    if removed:
        db.session.execute(
            update(ViewingSignup)
            .where(ViewingSignup.registrant_id == registrant.id, ViewingSignup.withdrawn_at.is_(None),
                   ViewingSignup.session_id.in_([session.id for session in removed]))
            .values(withdrawn_at=at)
            .execution_options(synchronize_session=False))
    if added:
        # Two tabs saving at once: the partial unique index keeps one current sign-up, the other insert is skipped.
        db.session.execute(
            _insert_ignoring_duplicates(ViewingSignup, ["registrant_id", "session_id"],
                                        where=ViewingSignup.withdrawn_at.is_(None))
            .values([{"registrant_id": registrant.id, "session_id": session.id, "signed_up_at": at}
                     for session in added]))
    return SignupChange(added=sorted(added, key=_order), removed=sorted(removed, key=_order))


def _still_active(registrant: Registrant) -> bool:
    """Lock the registration's row if it is not cancelled: a cancellation at the same moment either comes first (and
    this matches nothing) or waits for this request, and then withdraws what it signed up."""
    return db.session.execute(
        update(Registrant).where(Registrant.id == registrant.id, Registrant.cancelled_at.is_(None))
        .values(updated_at=Registrant.updated_at).execution_options(synchronize_session=False)
    ).rowcount == 1


def withdraw_all_signups(registrant: Registrant, *, at: datetime | None = None) -> None:
    """End every current sign-up of the registrant (when the registration is cancelled)."""
    db.session.execute(
        update(ViewingSignup)
        .where(ViewingSignup.registrant_id == registrant.id, ViewingSignup.withdrawn_at.is_(None))
        .values(withdrawn_at=at or clock.now())
        .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Watch:
    """A granted watch: where to send the viewer, and whether this click counted as a new view."""

    video_url: str
    window: Window
    counted: bool


def watch(registrant: Registrant, key: str, *, at: datetime | None = None) -> Watch:
    """Record that the registrant watches a session now, and hand out its video address."""
    at = at or clock.now()
    if registrant.is_cancelled:
        raise ProgramError("cancelled")
    session = find_session(key)
    if session is None:
        raise ProgramError("unknown_session")
    if session.is_withdrawn:
        raise ProgramError("withdrawn_session")
    window = open_window(at)
    if window is None:
        raise ProgramError("not_in_window")
    if not session.video_url:
        raise ProgramError("no_video")
    counted = db.session.execute(
        _insert_ignoring_duplicates(SessionView, ["registrant_id", "session_id", "slot"])
        .values(registrant_id=registrant.id, session_id=session.id, at=at, window=window.name,
                slot=int(at.timestamp()) // VIEW_SLOT_SECONDS)).rowcount == 1
    return Watch(video_url=session.video_url, window=window, counted=counted)


@dataclass
class Attendance:
    """Online attendance of a session, a category or the whole program."""

    signups: int = 0
    watchers: int = 0
    views: int = 0
    watched_without_signup: int = 0


@dataclass
class SessionAttendance:
    """A session and its attendance."""

    session: ProgramSession
    attendance: Attendance


@dataclass
class CategoryAttendance:
    """A category, its sessions' attendance, and its own (registrants counted once per category)."""

    category: Category
    sessions: list[SessionAttendance]
    attendance: Attendance


def attendance() -> tuple[list[CategoryAttendance], Attendance]:
    """Sign-ups, watchers, views and watchers without a sign-up, per session, per category and in all.

    Sign-ups are the current ones; "without sign-up" counts watchers who hold no current sign-up for what they
    watched. Six queries plus the program's two, whatever the size of the program.
    """
    signups = dict(db.session.execute(
        select(ViewingSignup.session_id, func.count())
        .where(ViewingSignup.withdrawn_at.is_(None)).group_by(ViewingSignup.session_id)).all())
    views = dict(db.session.execute(
        select(SessionView.session_id, func.count()).group_by(SessionView.session_id)).all())
    by_session, by_category = SessionView.session_id, ProgramSession.category_id
    watchers = {by: _watchers(by) for by in (by_session, by_category)}
    without = {by: _watchers(by, without_signup=True) for by in (by_session, by_category)}

    result = []
    for entry in program(include_withdrawn=True):
        rows = [SessionAttendance(session, Attendance(
            signups=signups.get(session.id, 0), watchers=watchers[by_session].get(session.id, 0),
            views=views.get(session.id, 0), watched_without_signup=without[by_session].get(session.id, 0)))
            for session in entry.sessions]
        key = entry.category.id
        result.append(CategoryAttendance(entry.category, rows, Attendance(
            signups=sum(row.attendance.signups for row in rows), watchers=watchers[by_category].get(key, 0),
            views=sum(row.attendance.views for row in rows),
            watched_without_signup=without[by_category].get(key, 0))))
    total = Attendance(signups=sum(signups.values()), watchers=_watchers(None).get(None, 0),
                       views=sum(views.values()), watched_without_signup=_watchers(None, without_signup=True).get(None, 0))
    return result, total


def _watchers(group_by, *, without_signup: bool = False) -> dict:
    """Distinct registrants who watched, grouped by session, by category, or (None) over everything."""
    counted = func.count(distinct(SessionView.registrant_id))
    query = (select(counted) if group_by is None else select(group_by, counted).group_by(group_by))
    query = query.select_from(SessionView).join(ProgramSession, ProgramSession.id == SessionView.session_id)
    if without_signup:
        query = query.where(~select(ViewingSignup.id).where(
            ViewingSignup.registrant_id == SessionView.registrant_id,
            ViewingSignup.session_id == SessionView.session_id,
            ViewingSignup.withdrawn_at.is_(None)).exists())
    if group_by is None:
        return {None: db.session.scalar(query)}
    return dict(db.session.execute(query).all())


def _insert_ignoring_duplicates(model, index_elements: list[str], *, where=None):
    """An INSERT that skips rows a unique index already holds, on PostgreSQL and on SQLite alike."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing(index_elements=index_elements, index_where=where)
