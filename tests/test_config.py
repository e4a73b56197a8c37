"""Configuration: secrets, database URLs, production refusals, the CLI data loader."""

import os
import stat

import pytest
from sqlalchemy import func, select

import config
from registration import create_app
from registration.extensions import db
from registration.models import Category, Event, ProgramSession


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SECRET_KEY": None}, instance_path=str(tmp_path))


def test_production_refuses_a_rehearsal_clock(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match="REHEARSAL_CLOCK"):
        create_app({"SECRET_KEY": "x" * 32, "RATELIMIT_STORAGE_URI": "memory://",
                    "REHEARSAL_CLOCK": "2023-09-14T09:59:00+09:00"},
                   instance_path=str(tmp_path))


def test_unknown_app_env_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging-typo")
    with pytest.raises(ValueError, match="APP_ENV"):
        config.config_class()


def test_local_secret_key_is_generated_once_with_mode_0600(tmp_path):
    first = create_app({"SECRET_KEY": None}, instance_path=str(tmp_path))
    second = create_app({"SECRET_KEY": None}, instance_path=str(tmp_path))
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 64


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_postgresql_urls_use_psycopg3(given, expected, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": given, "SECRET_KEY": "x"}, instance_path=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected


def test_sqlite_pragmas(tmp_path):
    from sqlalchemy import text
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite'}", "SECRET_KEY": "x"},
                     instance_path=str(tmp_path))
    with app.app_context(), db.engine.connect() as conn:
        assert conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert conn.scalar(text("PRAGMA busy_timeout")) == 15000


def test_deadline_and_opening_need_an_offset(monkeypatch):
    monkeypatch.setenv("REGISTRATION_DEADLINE", "2023-09-14T10:00:00")
    with pytest.raises(ValueError, match="offset"):
        config._instant("REGISTRATION_DEADLINE", None)


def test_event_load_is_idempotent_and_states_only_the_article(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["event", "load"])
        assert result.exit_code == 0, result.output
        assert "6 categories, 10 sessions in the program" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event)) == 1
        assert db.session.scalar(select(func.count()).select_from(ProgramSession)) == 10
        counts = dict(db.session.execute(select(Category.key, Category.announced_sessions)).all())
        assert counts == {"troubleshooting": 9, "automation": 15, "observability": 10, "openstack": 4,
                          "cost": 1, "public-cloud": 10}
        assert sum(counts.values()) == 49
        english = db.session.scalars(select(ProgramSession.key).where(ProgramSession.language == "en")).all()
        assert sorted(english) == ["line-private-cloud-openstack", "openinfra-loki-stack"]


@pytest.mark.real_clock
@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati"])
def test_the_clock_is_aware_utc_whatever_the_servers_zone(monkeypatch, zone):
    import time
    from datetime import UTC
    from registration import clock, formatting
    from tests.conftest import jst
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        now = clock.real_now()
        assert now.tzinfo is UTC
        assert abs(now.timestamp() - time.time()) < 1
        assert formatting.moment(jst(2023, 9, 14, 10), "en") == "Thu 14 Sep 2023, 10:00 JST"
        assert formatting.deadline(jst(2023, 9, 14, 10), "ja") == "2023年9月14日(木) 10:00 締切"
    finally:
        monkeypatch.undo()
        time.tzset()
