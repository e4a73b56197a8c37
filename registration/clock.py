"""The one clock of the application: aware UTC, optionally shifted for a rehearsal."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

TOKYO = ZoneInfo("Asia/Tokyo")


def real_now() -> datetime:
    """The machine's real time as aware UTC; only rehearsal bookkeeping should need it."""
    return datetime.now(UTC)


def now() -> datetime:
    """The application's current moment, aware UTC (the rehearsal clock when one runs)."""
    return real_now() + rehearsal_offset()


def rehearsal_offset() -> timedelta:
    """How far the rehearsal clock is ahead of real time (zero outside a rehearsal)."""
    if not has_app_context():
        return timedelta(0)
    state = current_app.extensions.get("rehearsal")
    if state is None:
        return timedelta(0)
    return state.current_offset()


def to_tokyo(moment: datetime) -> datetime:
    """The same instant in Japan Standard Time, for display."""
    return moment.astimezone(TOKYO)
