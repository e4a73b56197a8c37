"""Health checks for the load balancer: /healthz (the process answers) and /readyz (it can serve: database reachable
and migrated to this code's head revision, rate-limit storage answering)."""

from functools import cache
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from registration.extensions import db, limiter

bp = Blueprint("health", __name__)
limiter.exempt(bp)  # a load balancer asks every few seconds from one address

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@cache
def _scripts() -> ScriptDirectory:
    # Read once per process: the revisions on disk are the ones this process's code was written for.
    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    """The head revision of migrations/ (one head: the history is linear)."""
    return _scripts().get_current_head()


@bp.get("/healthz")
def healthz():
    """The process is up and answers; asks nothing of the database."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """200 when this process can serve requests (also while a newer release's migration is ahead of it), else 503
    saying what is missing (never why in detail: no URLs,
    no error texts)."""
    head = head_revision()
    answer: dict = {"database": "ok"}
    try:
        with db.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # A database that takes the connection but does not answer must not hold this worker until
                # gunicorn kills it (the connection itself is bounded by connect_timeout).
                connection.execute(text("SET LOCAL statement_timeout = 2000"))
            revision = MigrationContext.configure(connection).get_current_revision()
            connection.rollback()
    except SQLAlchemyError:
        answer["database"] = "unreachable"
    except CommandError:  # alembic_version holds several rows: no single revision to compare
        answer.update(migrations="unknown", head=head)
    else:
        answer["revision"] = revision
        migrations = _compare(revision, head)
        if migrations != "ok":
            answer.update(migrations=migrations, head=head)
    try:
        storage_answers = limiter.storage.check()
    except Exception:  # noqa: BLE001 - whatever the storage's client raises, the answer is the same
        storage_answers = False
    answer["rate_limits"] = "ok" if storage_answers else "unreachable"
    # A database ahead of this code is the middle of a deploy: the new release migrated it, and this process serves
    # until its reload. Migrations keep the previous release working (columns are added before they are used and
    # dropped a release later), so it stays in the pool; taking every old server out at once would be an outage.
    ready = answer["database"] == "ok" and answer.get("migrations") in (None, "ahead") and bool(storage_answers)
    return jsonify(status="ready" if ready else "not_ready", **answer), 200 if ready else 503


def _compare(revision: str | None, head: str) -> str:
    """ok, missing (never migrated), behind (an older revision) or ahead (one this code does not know: a newer
    release migrated the database)."""
    if revision == head:
        return "ok"
    if revision is None:
        return "missing"
    try:
        known = _scripts().get_revision(revision) is not None
    except CommandError:
        known = False
    return "behind" if known else "ahead"
