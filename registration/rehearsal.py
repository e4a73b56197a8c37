"""The rehearsal clock: simulated time that every process of a deployment agrees on."""

import time
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, ProgrammingError

from registration import clock
from registration.extensions import db
from registration.models import RehearsalRun

#: How often a process looks again at the shared beginning (a restart reaches it within this time).
REREAD_SECONDS = 1.0


def parse_instant(value: str) -> datetime:
    """An ISO-8601 instant with an explicit offset, as REHEARSAL_CLOCK takes it."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"REHEARSAL_CLOCK must carry a UTC offset, e.g. 2023-08-25T10:00:00+09:00 (got {value!r})")
    return moment


class Rehearsal:
    """A running rehearsal: REHEARSAL_CLOCK's instant maps to the real moment the rehearsal began."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.simulated_start = parse_instant(value)
        self.process_started = clock.real_now()
        self._offset: timedelta | None = None
        self._read_at = 0.0

    def current_offset(self) -> timedelta:
        """How far simulated time is ahead of real time. Only reads: safe inside any transaction."""
        # Read the shared beginning again now and then, so that a `rehearsal restart` reaches running processes.
        if self._offset is None or time.monotonic() - self._read_at > REREAD_SECONDS:
            try:
                with db.engine.connect() as conn:
                    began = conn.scalar(self._beginning())
            except (OperationalError, ProgrammingError):
                began = None  # before `db upgrade` there is no table yet
            if began is None:
                # Not recorded yet: run from this process's start until a safe moment records it.
                return self._offset if self._offset is not None else self.simulated_start - self.process_started
            self._offset = self.simulated_start - began
            self._read_at = time.monotonic()
        return self._offset

    def record_beginning(self) -> None:
        """Record when this rehearsal began, unless a process already did. Writes: call outside transactions."""
        if self._offset is not None:
            return
        upsert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        try:
            with db.engine.begin() as conn:
                conn.execute(
                    upsert(RehearsalRun)
                    .values(clock_value=self.value, began_at=self.process_started)
                    .on_conflict_do_nothing()
                )
        except (OperationalError, ProgrammingError):
            return  # before `db upgrade`: nothing to record in yet
        self.current_offset()

    def _beginning(self):
        return select(RehearsalRun.began_at).where(RehearsalRun.clock_value == self.value)

    def restart(self) -> None:
        """Begin this rehearsal again from REHEARSAL_CLOCK's instant, for every process of the deployment."""
        began = clock.real_now()
        with db.engine.begin() as conn:
            # Replace in one transaction: no process ever finds the row missing and records its own start.
            conn.execute(delete(RehearsalRun).where(RehearsalRun.clock_value == self.value))
            conn.execute(insert(RehearsalRun).values(clock_value=self.value, began_at=began))
        self._offset = None
