"""The audit log: who did what to whom, when, with the values before and after. Services write it in the caller's
transaction, so an entry exists exactly when the change it describes was committed."""

import json
from datetime import datetime
from typing import Any, Literal

from registration import clock
from registration.extensions import db
from registration.models import AuditEntry, Staff

Actor = Literal["staff", "registrant", "system", "cli"]


def record(action: str, *, registrant_id: int | None = None, by: Staff | None = None, actor: Actor | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, details: str = "",
           at: datetime | None = None) -> AuditEntry:
    """Add an audit entry. `by` is the staff member who acted; without one, `actor` says who did ("system" if
    neither is given). `before`/`after` hold only what changed, as JSON-able values."""
    entry = AuditEntry(at=at or clock.now(), staff_id=by.id if by is not None else None,
                       actor="staff" if by is not None else (actor or "system"), action=action,
                       registrant_id=registrant_id, details=details,
                       before=_json(before), after=_json(after))
    db.session.add(entry)
    return entry


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, from each side: what an entry's before/after should hold."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def values(entry: AuditEntry) -> tuple[dict[str, Any], dict[str, Any]]:
    """An entry's before and after values as dicts (empty when it has none)."""
    return _load(entry.before), _load(entry.after)


def _json(value: dict[str, Any] | None) -> str | None:
    if not value:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_jsonable)


def _jsonable(value: Any) -> str:
    if isinstance(value, datetime):
        return clock.to_tokyo(value).isoformat(timespec="seconds")
    raise TypeError(f"not JSON-able in an audit entry: {type(value).__name__}")


def _load(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}
