"""Request ids on every answer, JSON-line logs without personal data, and the load balancer's health checks."""

import json
import logging
import re
import socket
import signal
import smtplib
import subprocess
import sys
import urllib.request
from contextlib import contextmanager

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from tests.conftest import ROOT, VENV_BIN, free_port, server_env, wait_for_port
from registration import create_app, logs
from registration.extensions import db
from registration.health import _scripts, head_revision
from registration.services.mail import TemporaryFailure, failure_kind

NEW_ID = re.compile(r"[0-9a-f]{32}")
HOSTILE_IDS = ["x" * 129, "abc\r\nSet-Cookie: a=b", "abc\ndef", "ünïcödé", "a b", "", "<script>",
               "victim@example.com", "a+b", "k=v"]


def stamped(app, revision: str | None):
    """Set the database's alembic_version to `revision` (None: drop the table), as `db upgrade` or `db stamp` do."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if revision is not None:
            MigrationContext.configure(connection).stamp(_scripts(), "head")  # alembic's table, made by alembic
            # Then any revision, one from a newer release too (which stamp would refuse).
            connection.execute(text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})


@contextmanager
def version_table_dropped_after(app):
    """The PostgreSQL test database is shared by every test: leave it without alembic_version, as it was."""
    try:
        yield
    finally:
        stamped(app, None)


def test_request_id_is_echoed_when_valid_and_replaced_when_hostile(client):
    for valid in ("req-1.a:b_c", "0123456789abcdef" * 2, "x" * 128, "6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"):
        assert client.get("/healthz", headers={"X-Request-ID": valid}).headers["X-Request-ID"] == valid
    seen = set()
    for hostile in HOSTILE_IDS:
        # Through the environ: the test client (like a browser) refuses to send a line break in a header.
        answer = client.get("/healthz", environ_base={"HTTP_X_REQUEST_ID": hostile})
        assert NEW_ID.fullmatch(answer.headers["X-Request-ID"]), hostile
        seen.add(answer.headers["X-Request-ID"])
    assert len(seen) == len(HOSTILE_IDS)  # made anew for each request


def test_every_kind_of_answer_carries_its_request_id(app, client, make_registrant, make_device):
    def boom(*args, **kwargs):
        raise RuntimeError("alice@example.com")  # an unexpected failure whose message must not reach the log

    app.view_functions["public.privacy"] = boom
    app.view_functions["api.stats"] = boom
    registrant = make_registrant()
    cases = [  # (request, status, where the id shows: "page", "json" or None)
        (lambda: client.get("/"), 200, None),
        (lambda: client.get(f"/me/{registrant.secret}"), 200, None),
        (lambda: client.get("/static/style.css"), 200, None),
        (lambda: client.get("/no-such-page"), 404, "page"),
        (lambda: client.post("/language", data={"lang": "en", "next": "/"}, without_csrf=True), 400, "page"),
        (lambda: client.post("/register", data="x" * (app.config["MAX_CONTENT_LENGTH"] + 1)), 413, "page"),
        (lambda: client.get("/privacy"), 500, "page"),
        (lambda: client.get("/api/v1/stats"), 401, "json"),
        (lambda: client.post("/api/v1/checkins", data="[", content_type="application/json",
                             headers={"Authorization": "Bearer nope"}), 401, "json"),
        (lambda: client.get("/api/v1/nothing-here"), 404, "json"),
        (lambda: client.post("/api/v1/checkins", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
                             content_type="application/json", headers={"Authorization": "Bearer x"}), 413, "json"),
    ]
    for send, status, shown in cases:
        with send() as answer:
            request_id = answer.headers.get("X-Request-ID", "")
            assert answer.status_code == status and NEW_ID.fullmatch(request_id), (answer.request.path, answer.status)
            if shown == "page":
                assert f"<code>{request_id}</code>" in answer.get_data(as_text=True)
            elif shown == "json":
                assert answer.get_json()["request_id"] == request_id
    failed = client.get("/api/v1/stats", headers={**make_device(), "X-Request-ID": "lb-42"})
    assert (failed.status_code, failed.get_json()) == (500, {"result": "server_error", "request_id": "lb-42"})
    assert failed.headers["X-Request-ID"] == "lb-42"


def test_an_unexpected_error_is_logged_as_json_without_its_message(app, client, caplog):
    address = "taro@" + "example.jp"  # not in the source line that a traceback shows

    def boom():
        raise RuntimeError(address)

    app.view_functions["public.privacy"] = boom
    caplog.handler.setFormatter(logs.JsonFormatter())  # formats as each line is written, as a handler does
    with caplog.at_level(logging.INFO, logger="registration"):
        answer = client.get("/privacy", headers={"X-Request-ID": "trace-7"})
        answer.close()  # the request line is written when the server closes the response
    assert answer.status_code == 500
    lines = [json.loads(line) for line in caplog.text.splitlines()]
    error, request_line = lines[0], lines[-1]
    assert error["level"] == "error" and error["request_id"] == "trace-7"
    assert "RuntimeError" in error["exception"] and "boom" in error["exception"]
    assert request_line == {**request_line, "logger": "registration.request", "request_id": "trace-7",
                            "method": "GET", "route": "/privacy", "endpoint": "public.privacy", "status": 500}
    assert all("taro@example.jp" not in json.dumps(line) for line in lines)


def test_a_deferred_mail_is_logged_without_the_address():
    refused = smtplib.SMTPRecipientsRefused({"hanako@example.jp": (450, b"<hanako@example.jp> mailbox busy")})
    try:
        try:
            raise refused
        except smtplib.SMTPRecipientsRefused as exc:
            raise TemporaryFailure(f"recipient refused for now: {exc.recipients}") from exc
    except TemporaryFailure as failure:
        assert failure_kind(failure) == "TemporaryFailure from SMTPRecipientsRefused"
        formatted = logs.JsonFormatter().formatException(sys.exc_info())
    assert "SMTPRecipientsRefused" in formatted and "hanako" not in formatted


def test_healthz_and_readyz(make_app):
    app = make_app()
    client = app.test_client()
    with version_table_dropped_after(app):
        for method in (client.get, client.head):
            answer = method("/healthz")
            assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
            assert answer.headers["Cache-Control"] == "no-store" and NEW_ID.fullmatch(answer.headers["X-Request-ID"])
        assert client.get("/healthz").get_json() == {"status": "ok"}

        head = head_revision()
        older = _scripts().get_revision(head).down_revision
        expected = {
            head: (200, {"status": "ready", "database": "ok", "revision": head, "rate_limits": "ok"}),
            older: (503, {"status": "not_ready", "database": "ok", "revision": older, "migrations": "behind",
                          "head": head, "rate_limits": "ok"}),
            "f00dfeedbeef": (200, {"status": "ready", "database": "ok", "revision": "f00dfeedbeef",
                                   "migrations": "ahead", "head": head, "rate_limits": "ok"}),
            None: (503, {"status": "not_ready", "database": "ok", "revision": None, "migrations": "missing",
                         "head": head, "rate_limits": "ok"}),
        }
        for revision, (status, body) in expected.items():
            stamped(app, revision)
            answer = client.get("/readyz")
            assert (answer.status_code, answer.get_json()) == (status, body), revision
            assert "Set-Cookie" not in answer.headers and answer.headers["Cache-Control"] == "no-store"

        # Two rows in alembic_version (a botched manual stamp): no revision to compare, not ready, no 500.
        stamped(app, head)
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('f00dfeedbeef')"))
        answer = client.get("/readyz")
        assert (answer.status_code, answer.get_json()) == (503, {"status": "not_ready", "database": "ok",
                                                                 "migrations": "unknown", "head": head,
                                                                 "rate_limits": "ok"})
        # A monitor that sends a JSON content type with its GET is answered like any other.
        assert client.get("/healthz", content_type="application/json").status_code == 200
        assert client.get("/readyz", content_type="application/json").status_code == 503

        stamped(app, head)
        # Rate limits counted in a Redis that does not answer: not ready, and said so rather than failing.
        unreachable_redis = create_app({**app.config, "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}"},
                                       instance_path=app.instance_path)
        answer = unreachable_redis.test_client().get("/readyz")
        assert (answer.status_code, answer.get_json()["rate_limits"]) == (503, "unreachable")
        with unreachable_redis.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("database", ["postgresql+psycopg://root@127.0.0.1:{port}/codt",
                                      "postgresql+psycopg://root@127.0.0.1:{silent}/codt",
                                      "sqlite:///{tmp}/no-such-directory/codt.sqlite"])
def test_readyz_is_503_when_the_database_is_unreachable(database, tmp_path):
    # {silent}: a host that takes the connection and never says a word (a hung server, a half-open firewall).
    silent = socket.create_server(("127.0.0.1", 0))
    silent.listen()
    uri = database.format(port=free_port(), tmp=tmp_path, silent=silent.getsockname()[1])
    # The rehearsal clock's hook writes to the database before every page: with none, it must not fail the checks.
    # (The silent host without it: each request's rehearsal hook would wait its own connect_timeout first.)
    rehearsal = {} if "{silent}" in database else {"REHEARSAL_CLOCK": "2023-08-25T10:00:00+09:00"}
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "SECRET_KEY": "s" * 64, **rehearsal},
                     instance_path=str(tmp_path / "instance"))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "not_ready", "database": "unreachable", "rate_limits": "ok"}
    assert NEW_ID.fullmatch(answer.headers["X-Request-ID"])
    silent.close()


def test_gunicorn_with_the_deploy_settings_logs_json_lines_without_personal_data(make_app, database_url,
                                                                                 make_registrant, tmp_path):
    app = make_app()
    registrant = make_registrant(attend_closing=True, family_name="Nakamura", given_name="Hiroko",
                                 email="hiroko.nakamura@example.jp")
    assert registrant.ticket_code
    port = free_port()
    log = tmp_path / "gunicorn.log"
    # Behind one proxy: the client's address comes from X-Forwarded-For, and must not reach the log either.
    env = server_env(database_url, port, tmp_path / "outbox", PROXY_COUNT="1", LOG_LEVEL="INFO")
    with version_table_dropped_after(app):
        stamped(app, head_revision())
        with log.open("ab") as log_file:
            server = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "--workers", "1",
                 "--bind", f"127.0.0.1:{port}"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            wait_for_port(port, server, log)
            base = f"http://127.0.0.1:{port}"
            headers = {"X-Forwarded-For": "203.0.113.77", "X-Request-ID": "visit-1"}
            for path in (f"/me/{registrant.secret}?from=hiroko.nakamura%40example.jp", "/readyz", "/healthz",
                         "/static/style.css"):
                with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)) as answer:
                    assert answer.status == 200 and answer.headers["X-Request-ID"] == "visit-1"
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON, gunicorn's own included
    assert any(e["logger"] == "gunicorn.error" and e["message"].startswith("Booting worker") for e in entries)
    requests = {e["route"]: e for e in entries if e["logger"] == "registration.request"}
    assert requests["/me/<secret>"] == {**requests["/me/<secret>"], "request_id": "visit-1", "method": "GET",
                                        "endpoint": "public.personal", "status": 200}
    assert {"/readyz", "/healthz", "/static/<path:filename>"} <= set(requests)
    text_of_log = "\n".join(lines)
    for personal in ("hiroko", "Hiroko", "Nakamura", "example.jp", registrant.secret, registrant.ticket_code,
                     "203.0.113.77", "from="):
        assert personal not in text_of_log, personal
