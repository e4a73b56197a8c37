"""The figures of the admin dashboard: one function per panel, each one aggregate query (GROUP BY) or a few.

Moments are bucketed by their day, ten minutes or minute in Japan Standard Time, in SQL (see `jst_text`), so that
the figures are the same whatever the server's or the database's time zone, and cost one pass over an index or a
table rather than a loop over people.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import String, and_, distinct, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from registration import clock
from registration.extensions import db
from registration.models import CheckIn, Registrant, Scan, SessionView, ViewingSignup
from registration.services import checkins, seats, viewing

#: Lengths of a `jst_text` prefix: "2023-09-14", "2023-09-14 13:4" (ten minutes), "2023-09-14 13:45" (a minute).
DAY, TEN_MINUTES, MINUTE = 10, 15, 16
#: The door panel's check-in chart stops at this many ten-minute buckets (a day).
_MAX_BUCKETS = 144


class _JSTText(FunctionElement):
    """A UTC timestamp column as Japan Standard Time text, "YYYY-MM-DD HH:MM:SS" (compiled per database)."""

    type = String()
    inherit_cache = True
    name = "jst_text"


@compiles(_JSTText, "sqlite")
def _jst_text_sqlite(element, compiler, **kw):
    # SQLite keeps naive UTC text (registration/types.py); Japan has had no daylight saving time since 1951.
    # Literals, not bound parameters: GROUP BY must repeat exactly the expression the SELECT list holds.
    return f"strftime('%Y-%m-%d %H:%M:%S', {compiler.process(element.clauses, **kw)}, '+9 hours')"


@compiles(_JSTText)  # PostgreSQL, and what str(statement) prints
def _jst_text_postgresql(element, compiler, **kw):
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS')"


def jst_text(column, length: int = DAY) -> ColumnElement[str]:
    """The first `length` characters of a timestamp as JST text: DAY, TEN_MINUTES or MINUTE, for GROUP BY."""
    return func.substr(_JSTText(column), 1, length)


def _jst_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=clock.TOKYO)


def _today(at: datetime) -> date:
    return clock.to_tokyo(at).date()


# --- registrations and cancellations per day ----------------------------------------------------------------

@dataclass(frozen=True)
class Day:
    """One JST day of the registration figures."""

    day: date
    registered: int
    cancelled: int
    #: Registrations made up to the end of this day, and of them not cancelled by then.
    registered_total: int
    still_registered: int


def _per_day(column, since: date | None, until: date | None) -> dict[date, int]:
    """Rows per JST day of `column` (not null), from `since` to `until` (both included; None: no limit)."""
    bucket = jst_text(column, DAY)
    query = select(bucket, func.count()).where(column.is_not(None)).group_by(bucket)
    if since is not None:
        query = query.where(column >= _jst_midnight(since))
    if until is not None:
        query = query.where(column < _jst_midnight(until + timedelta(1)))
    return {date.fromisoformat(day): count for day, count in db.session.execute(query).all()}


def _before(column, day: date) -> int:
    return db.session.scalar(select(func.count()).where(column.is_not(None), column < _jst_midnight(day)))


def registrations_per_day(*, since: date | None = None, until: date | None = None,
                          at: datetime | None = None) -> list[Day]:
    """Registrations and cancellations per JST day, and the running totals, from `since` (default: the first
    registration's day) to `until` (default: today, or the last day with figures if later); every day listed."""
    registered = _per_day(Registrant.registered_at, since, until)
    cancelled = _per_day(Registrant.cancelled_at, since, until)
    if not registered and not cancelled and since is None:
        return []
    first = since or min(registered | cancelled)
    until = until or max(_today(at or clock.now()), *registered, *cancelled)
    total = _before(Registrant.registered_at, first) if since else 0
    gone = _before(Registrant.cancelled_at, first) if since else 0
    days = []
    for offset in range((until - first).days + 1):
        day = first + timedelta(offset)
        total += registered.get(day, 0)
        gone += cancelled.get(day, 0)
        days.append(Day(day, registered.get(day, 0), cancelled.get(day, 0), total, total - gone))
    return days


# --- seats, reminders, on demand ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Seats:
    """The closing event's seats."""

    capacity: int
    confirmed: int
    waiting: int

    @property
    def free(self) -> int:
        """Seats nobody holds (never below zero, even if the capacity was lowered under the seats held)."""
        return max(0, self.capacity - self.confirmed)


def closing_seats() -> Seats:
    """Capacity, confirmed seats and the waiting list's length (seats.summary: one GROUP BY)."""
    summary = seats.summary()
    return Seats(summary.capacity, summary.confirmed, summary.waitlisted)


@dataclass(frozen=True)
class Reminders:
    """Answers to the closing-event reminder."""

    reminded: int
    coming: int
    declined: int

    @property
    def no_answer(self) -> int:
        """Reminded people who have not answered."""
        return self.reminded - self.coming - self.declined


def reminder_answers() -> Reminders | None:
    """How the reminded answered, or None while no reminder has been written."""
    counts = dict(db.session.execute(
        select(Registrant.reminder_answer, func.count()).where(Registrant.reminder_sent_at.is_not(None))
        .group_by(Registrant.reminder_answer)).all())
    if not counts:
        return None
    return Reminders(sum(counts.values()), counts.get("coming", 0), counts.get("declined", 0))


def on_demand() -> tuple[list[viewing.CategoryAttendance], viewing.Attendance]:
    """Current sign-ups and views per category and session, and how many people watched in all.

    Three grouped queries: the dashboard draws sign-ups and views only. The distinct watchers per session and
    category, and watchers without a sign-up (viewing.attendance, six queries, 0.45 s with 100,000 registrants on
    SQLite), are on /admin/attendance; here they stay 0 but for the total's watchers.
    """
    signups = dict(db.session.execute(
        select(ViewingSignup.session_id, func.count())
        .where(ViewingSignup.withdrawn_at.is_(None)).group_by(ViewingSignup.session_id)).all())
    views = dict(db.session.execute(
        select(SessionView.session_id, func.count()).group_by(SessionView.session_id)).all())
    watchers = db.session.scalar(select(func.count(distinct(SessionView.registrant_id)))) or 0
    categories = []
    for entry in viewing.program(include_withdrawn=True):
        rows = [viewing.SessionAttendance(session, viewing.Attendance(
            signups=signups.get(session.id, 0), views=views.get(session.id, 0))) for session in entry.sessions]
        categories.append(viewing.CategoryAttendance(entry.category, rows, viewing.Attendance(
            signups=sum(row.attendance.signups for row in rows), views=sum(row.attendance.views for row in rows))))
    return categories, viewing.Attendance(signups=sum(signups.values()), views=sum(views.values()),
                                          watchers=watchers)


# --- the event day's door -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bucket:
    """Check-ins up to the end of a ten-minute bucket (JST), and in it."""

    starts: datetime
    added: int
    total: int


def checkins_over_time(at: datetime | None = None) -> list[Bucket]:
    """Standing check-ins per ten minutes of the latest day with check-ins (JST), cumulative, counting the days
    before too: from the bucket before that day's first check-in up to `at`'s bucket (or the day's last)."""
    at = at or clock.now()
    active = and_(CheckIn.undone_at.is_(None), CheckIn.at <= at)
    last = db.session.scalar(select(func.max(CheckIn.at)).where(active))
    if last is None:
        return []
    day = _today(last)
    start, end = _jst_midnight(day), _jst_midnight(day + timedelta(1))
    bucket = jst_text(CheckIn.at, TEN_MINUTES)
    counts = {_parse_minute(text + "0"): count for text, count in db.session.execute(
        select(bucket, func.count()).where(active, CheckIn.at >= start, CheckIn.at < end).group_by(bucket)).all()}
    total = db.session.scalar(select(func.count()).where(active, CheckIn.at < start))
    # From the bucket before the first check-in (when the day has one), so that the curve shows the rise.
    first = max(min(counts) - timedelta(minutes=10), start.astimezone(clock.TOKYO))
    stop = _floor(clock.to_tokyo(min(at, end - timedelta(microseconds=1))), 10)
    buckets = []
    moment = first
    while moment <= stop and len(buckets) < _MAX_BUCKETS:
        total += counts.get(moment, 0)
        buckets.append(Bucket(moment, counts.get(moment, 0), total))
        moment += timedelta(minutes=10)
    return buckets


def _parse_minute(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=clock.TOKYO)


def _floor(moment: datetime, minutes: int) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def scans_per_minute(at: datetime | None = None, minutes: int = 60) -> tuple[list[datetime], dict[str, list[int]]]:
    """Scans per JST minute and gate over the last `minutes` minutes up to `at`: the minutes, and each gate's
    counts in their order (gates in name order)."""
    at = at or clock.now()
    last = _floor(clock.to_tokyo(at), 1)
    first = last - timedelta(minutes=minutes - 1)
    bucket = jst_text(Scan.at, MINUTE)
    rows = db.session.execute(
        select(Scan.gate, bucket, func.count()).where(Scan.at >= first, Scan.at <= at)
        .group_by(Scan.gate, bucket)).all()
    axis = [first + timedelta(minutes=n) for n in range(minutes)]
    gates: dict[str, list[int]] = {}
    for gate, text, count in rows:
        gates.setdefault(gate, [0] * minutes)[int((_parse_minute(text) - first).total_seconds()) // 60] = count
    return axis, dict(sorted(gates.items()))


@dataclass(frozen=True)
class Refusal:
    """Refused scans of one kind: the result sent to the door, and its reason when it has one."""

    result: str
    reason: str | None
    count: int


def refused_scans() -> list[Refusal]:
    """Scans that admitted nobody, by result and reason, most frequent first."""
    rows = db.session.execute(
        select(Scan.result, Scan.reason, func.count()).where(Scan.result != "ok")
        .group_by(Scan.result, Scan.reason)).all()
    return sorted((Refusal(*row) for row in rows), key=lambda r: (-r.count, r.result, r.reason or ""))


def door_speed() -> dict | None:
    """The door pages' scan-to-answer times (checkins.door_speed)."""
    return checkins.door_speed()


def still_expected() -> int:
    """Seat holders (confirmed, not cancelled) not checked in yet."""
    checked_in = select(CheckIn.id).where(CheckIn.registrant_id == Registrant.id, CheckIn.undone_at.is_(None))
    return db.session.scalar(select(func.count()).select_from(Registrant).where(
        Registrant.seat_status == "confirmed", Registrant.cancelled_at.is_(None), ~checked_in.exists()))


@dataclass(frozen=True)
class DoorPanel:
    """Everything the event day's door panel shows, as of `at`."""

    at: datetime
    checked_in: int
    #: Checked in, but no longer holding a seat (cancelled or gave it up since).
    checked_in_without_seat: int
    expected: int
    confirmed: int
    over_time: list[Bucket]
    minutes: list[datetime]
    scans: dict[str, list[int]]
    refused: list[Refusal]
    speed: dict | None


def door_panel(at: datetime | None = None) -> DoorPanel:
    """The door panel's figures."""
    at = at or clock.now()
    stats = checkins.stats()
    minutes, scans = scans_per_minute(at)
    return DoorPanel(at=at, checked_in=stats["checked_in"],
                     checked_in_without_seat=stats["checked_in_without_seat"], expected=still_expected(), confirmed=stats["confirmed"],
                     over_time=checkins_over_time(at), minutes=minutes, scans=scans, refused=refused_scans(),
                     speed=door_speed())
