"""The schema comes from the migrations, and the migrations match the models."""

import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from registration import create_app
from registration.extensions import db
from tests.conftest import BACKENDS, ROOT, pg_url


def assert_migrations_match_models(url: str, tmp_path) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"}, instance_path=str(tmp_path))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
            tables = set(inspect(conn).get_table_names())
        db.engine.dispose()
    assert diff == []
    assert {"registrants", "outbox", "events", "categories", "program_sessions", "rehearsal_runs"} <= tables


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_models(backend, tmp_path):
    if backend == "sqlite":
        assert_migrations_match_models(f"sqlite:///{tmp_path / 'migrated.sqlite'}", tmp_path)
        return
    name = f"codt_migrations_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(pg_url().replace("postgresql+psycopg", "postgresql"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_url().rsplit("/", 1)[0] + "/" + name
        assert_migrations_match_models(url, tmp_path)
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
