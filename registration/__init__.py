"""CODT2023 registration and attendance: the application factory."""

import io
import os
import secrets
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, Request, abort, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms.validators import Length

import config
from registration import clock, formatting, logs
from registration.extensions import babel, csrf, db, limiter, login_manager, migrate
from registration.urls import absolute_url


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the app from config.py and the environment, with `test_config` on top when given."""
    app = Flask(__name__, instance_relative_config=True, template_folder="../templates",
                instance_path=instance_path)
    app.request_class = RuleKeepingRequest
    app.config.from_object(config.config_class())
    if test_config is not None:
        app.config.from_mapping(test_config)
    logs.configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    config.check_closing_event(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    configure_secret_key(app)
    configure_rate_limit_storage(app)
    configure_database(app)
    configure_rehearsal(app)
    configure_wsgi(app)
    register_body_limit(app)  # before the extensions: CSRFProtect reads the form in its own before_request
    register_extensions(app)
    if "rehearsal" in app.extensions:
        with app.app_context():  # every process, CLI commands included, records it before any transaction
            app.extensions["rehearsal"].record_beginning()
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_response_headers(app)
    register_commands(app)
    return app


def configure_secret_key(app: Flask) -> None:
    """Use SECRET_KEY; locally, generate one once into instance/secret_key (mode 0600)."""
    key = app.config.get("SECRET_KEY")
    if key and app.config["REQUIRE_SECRET_KEY"]:
        minimum = app.config["SECRET_KEY_MIN_BYTES"]
        length = len(key if isinstance(key, bytes) else key.encode())
        if length < minimum:
            raise RuntimeError(
                f"SECRET_KEY is too short ({length} bytes): production refuses to start with fewer than {minimum} "
                "bytes, which could be guessed from a session cookie. Generate one with "
                "python -c 'import secrets; print(secrets.token_hex(32))' and use the same on every host.")
    if key:
        return
    if app.config["REQUIRE_SECRET_KEY"]:
        raise RuntimeError("SECRET_KEY is not set: production refuses to start without it.")
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        # Written whole under another name, then linked into place: a process starting at the same moment
        # either wins the link or reads the winner's complete key, never an empty file.
        partial = path.with_name(f"secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    app.config["SECRET_KEY"] = path.read_text().strip()


def configure_rate_limit_storage(app: Flask) -> None:
    """Production names where rate limits count; locally they count in the one process's memory."""
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        raise RuntimeError(
            "RATELIMIT_STORAGE_URI is not set: production needs to say where rate limits count. Use "
            "redis://host:6379 when several processes or hosts serve (each would otherwise count on its own and let "
            "every limit through once per process), or memory:// for one process with threads.")


def configure_database(app: Flask) -> None:
    """Accept postgres:// and postgresql:// URLs by pointing them at psycopg 3."""
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            uri = "postgresql+psycopg://" + uri[len(prefix):]
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    # Errors carry the statement but never its values: those can be e-mail addresses or tokens, and errors get logged.
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "hide_parameters": True}
    if uri.startswith("postgresql"):
        # No pool_pre_ping: it costs every request a round trip (a tenth of a door scan's work). After a database
        # restart the first request of each process fails once, and SQLAlchemy then replaces the whole pool;
        # the door retries with the same nonce. Connections are renewed hourly all the same.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("pool_recycle", 3600)
        # A database host that stops answering fails a request in seconds instead of the kernel's minutes, so requests
        # and /readyz answer (with an error) before gunicorn kills the worker: a new connection gives up after 5 s,
        # an open one whose packets go unacknowledged for 10 s is dropped. Parameters in DATABASE_URL win.
        connect_args = app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {})
        for name, value in (("connect_timeout", 5), ("tcp_user_timeout", 10000), ("keepalives_idle", 30),
                            ("keepalives_interval", 10), ("keepalives_count", 3)):
            if f"{name}=" not in uri:
                connect_args.setdefault(name, value)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """Foreign keys on, WAL so readers never wait for the writer, and a wait instead of 'database is locked'."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 15000")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()


def configure_rehearsal(app: Flask) -> None:
    """Start the rehearsal clock when REHEARSAL_CLOCK is set."""
    from registration.rehearsal import Rehearsal

    if app.config.get("REHEARSAL_CLOCK"):
        if not app.config["ALLOW_REHEARSAL_CLOCK"]:
            raise RuntimeError("REHEARSAL_CLOCK is set, but this configuration runs on the real clock only.")
        rehearsal = app.extensions["rehearsal"] = Rehearsal(app.config["REHEARSAL_CLOCK"])
        # Record the beginning before a request opens a write transaction of its own.
        app.before_request(rehearsal.record_beginning)


def configure_wsgi(app: Flask) -> None:
    """Read streamed request bodies up to the limit, and trust PROXY_COUNT proxies' X-Forwarded-* headers."""
    app.wsgi_app = StreamedBodyLimit(app.wsgi_app, app)
    count = app.config["PROXY_COUNT"]
    if count:
        # Without it every client has the proxy's address: one shared rate limit for the whole venue. Trusting more
        # proxies than there are would let a client pick its own address with a forged X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    # Outermost, so that every answer carries X-Request-ID and is logged, the body limit's 413 included.
    app.wsgi_app = logs.RequestLog(app.wsgi_app)


class RuleKeepingRequest(Request):
    """Flask's request, which leaves its matched URL rule in the environ when Flask closes it, for the request log
    (Flask clears the environ's reference to the request itself at that moment)."""

    def close(self) -> None:
        """Close the request's files; keep the rule (None when nothing matched) for the log line."""
        self.environ[logs.RULE_ENVIRON_KEY] = self.url_rule
        super().close()


class StreamedBodyLimit:
    """WSGI middleware: a chunked request body is read here, at most one byte past MAX_CONTENT_LENGTH, and handed
    on with a Content-Length like any other body, so that one over the limit is answered 413 as well."""

    def __init__(self, wsgi_app, app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ, start_response):
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        # Transfer-Encoding wins over any Content-Length sent with it (RFC 9112 6.3), as in Werkzeug.
        if (limit is not None and "wsgi.input_terminated" in environ
                and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()):
            # Werkzeug would read such a stream only up to the limit and parse what it got: a form cut before its
            # CSRF token (422 or 400 instead of 413), half a JSON body. The rest of a longer body stays unread.
            stream, body = environ["wsgi.input"], bytearray()
            while len(body) <= limit:
                chunk = stream.read(limit + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            del environ["HTTP_TRANSFER_ENCODING"], environ["wsgi.input_terminated"]
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.wsgi_app(environ, start_response)


def register_body_limit(app: Flask) -> None:
    """A body declared longer than MAX_CONTENT_LENGTH gets 413 at once, on pages and the API alike."""

    @app.before_request
    def refuse_oversized_bodies():
        # Werkzeug refuses only when something reads the body: the API would first answer 401 or 404.
        limit, length = request.max_content_length, request.content_length
        if limit is not None and length is not None and length > limit:
            abort(413)


def select_locale() -> str:
    """A registrant's own pages in their language; elsewhere the switch's choice, else the browser's, else Japanese."""
    from flask import g

    languages = app_languages()
    owner = g.get("registrant_locale")
    if owner in languages:
        return owner
    chosen = request.cookies.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or languages[0]


def app_languages() -> list[str]:
    """The configured languages, Japanese (the default) first."""
    from flask import current_app

    return list(current_app.config["LANGUAGES"])


def register_extensions(app: Flask) -> None:
    """Bind the extension singletons."""
    db.init_app(app)
    migrate.init_app(app, db)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, default_timezone="Asia/Tokyo")
    # Flask-Limiter checks every request, exempt ones too; that was a sixth of the CPU of a door scan, and the API
    # is exempt as a whole (registration/api/views.py), so its hooks stay out of the API's way altogether. The health
    # checks skip them too: /readyz reports a rate-limit storage that is down instead of failing on it.
    with hooks_skipped_for_api(app):
        limiter.init_app(app)
    login_manager.init_app(app)


@contextmanager
def hooks_skipped_for_api(app: Flask):
    """Request hooks that an extension registers inside this block do not run for the API and the health checks."""
    registries = {"before": app.before_request_funcs, "after": app.after_request_funcs,
                  "teardown": app.teardown_request_funcs}
    existing = {kind: list(registry.get(None, ())) for kind, registry in registries.items()}
    yield
    for kind, registry in registries.items():
        registry[None] = [hook if hook in existing[kind] else _outside_api(hook, returns_response=kind == "after")
                          for hook in registry.get(None, ())]


#: Blueprints that the hooks registered in hooks_skipped_for_api skip.
HOOKLESS_BLUEPRINTS = frozenset({"api", "health"})


def _outside_api(hook, *, returns_response: bool):
    def run_outside_api(*args):
        if request.blueprint in HOOKLESS_BLUEPRINTS:
            return args[0] if returns_response else None
        return hook(*args)

    return run_outside_api


def register_blueprints(app: Flask) -> None:
    """Mount the blueprints."""
    from registration.api import bp as api_bp
    from registration.auth import SessionInterface
    from registration.converters import IdConverter
    from registration.health import bp as health_bp
    from registration.public import bp as public_bp
    from registration.staffarea import bp as staff_bp

    app.session_interface = SessionInterface()  # importing registration.auth also registered the user loader
    app.url_map.converters["id"] = IdConverter  # before the blueprints: a rule looks its converter up when added
    for blueprint in (public_bp, staff_bp, api_bp, health_bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def pages_take_forms_only():
        # Flask-WTF would read a JSON body as form data, and a JSON string or list breaks it: only the API takes JSON.
        # Health checks take no body at all: a monitor that sends a JSON content type with its GET still gets an answer.
        if request.is_json and not request.path.startswith("/api/") and request.blueprint != "health":
            abort(415)


def register_errorhandlers(app: Flask) -> None:
    """Every error as a page in Japanese and English, never a stack trace; under /api/, JSON."""
    from registration.api.views import http_error

    def render_error(error: HTTPException):
        if error.code and error.code >= 500:
            db.session.rollback()
        if request.path.startswith("/api/"):
            return http_error(error)  # one mapping of status to result for the whole API
        return render_template("errors/error.html", error=error), error.code

    def render_csrf_error(error: CSRFError):
        return render_template("errors/error.html", error=error, csrf_failed=True), 400

    def render_unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return render_error(InternalServerError())

    app.register_error_handler(CSRFError, render_csrf_error)
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, render_unexpected)


def register_template_helpers(app: Flask) -> None:
    """Formatting filters and what every page needs to know."""
    from flask import has_request_context

    from registration.public.forms import LanguageForm

    formatting.register(app)
    app.add_template_global(absolute_url)
    app.add_template_global(field_maxlength)
    app.add_template_global(request_id)

    @app.context_processor
    def page_globals() -> dict:
        # Mail is rendered outside any request (CLI, mail worker) and passes its own locale; the language switch
        # needs the visitor's session for its CSRF token, and the banner and switch are for pages only.
        if not has_request_context():
            return {}
        rehearsal = app.extensions.get("rehearsal")
        return {
            "locale": str(get_locale()),
            "rehearsal_now": clock.now() if rehearsal else None,
            "language_form": LanguageForm(formdata=None),
        }


def request_id() -> str | None:
    """The id of the request being answered (its X-Request-ID), for error pages to show."""
    from flask import has_request_context

    return request.environ.get(logs.ENVIRON_KEY) if has_request_context() else None


def field_maxlength(field) -> int | None:
    """The Length(max=...) of a form field, for the input's maxlength attribute."""
    return next((v.max for v in field.validators if isinstance(v, Length) and v.max > 0), None)


#: The only pages a browser or proxy may keep: the event's public facts, the same for everyone. Every other answer
#: (personal pages, tickets and their QR codes, forms echoing what someone typed, staff pages, exports, the API)
#: is `no-store`, and so is any endpoint added later until it is listed here.
CACHEABLE_ENDPOINTS = frozenset({"public.index", "public.privacy", "public.program", "public.program_session",
                                 "static"})


def register_response_headers(app: Flask) -> None:
    """Conservative browser security headers, HSTS where configured; only public pages may be cached."""
    hsts = app.config["HSTS_HEADER"] if app.config["HSTS"] else None

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        )
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            headers["Cache-Control"] = "no-store"
        elif request.endpoint != "static":
            # The same address answers in Japanese or English by the language cookie or Accept-Language. And the page
            # carries the language switch's CSRF token, bound to this visitor's session: a browser may keep it, a
            # shared cache must not hand it (or the session cookie) to someone else.
            response.vary.update(("Accept-Language", "Cookie"))
            headers.setdefault("Cache-Control", "private")
        if hsts:
            headers["Strict-Transport-Security"] = hsts
        return response


def register_commands(app: Flask) -> None:
    """flask --app registration event|mail|privacy|program|rehearsal|seats|staff ..."""
    from registration.cli import (event_cli, mail_cli, privacy_cli, program_cli, rehearsal_cli, seats_cli,
                                  staff_cli)

    from registration import cli_reminders  # noqa: F401 - adds `mail remind-closing` to mail_cli
    from registration.cli_demo import demo_data

    for group in (event_cli, mail_cli, privacy_cli, program_cli, rehearsal_cli, seats_cli, staff_cli):
        app.cli.add_command(group)
    app.cli.add_command(demo_data)
