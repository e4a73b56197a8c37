"""Fixtures: a fresh app and real database per test (SQLite file, and PostgreSQL when TEST_DATABASE_URL is set),
a frozen clock, a real SMTP server on loopback, factories, and live gunicorn servers."""

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from registration import clock, create_app
from flask.testing import FlaskClient

from registration.extensions import db, limiter
from registration.services import event as event_service
from registration.services.registrations import Details, register

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
JST = clock.TOKYO
#: Server time zones the tests run under: the app's moments must not move with them.
ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati"]


def jst(*args: int) -> datetime:
    """A moment given in Japan Standard Time: jst(2023, 9, 14, 10)."""
    return datetime(*args, tzinfo=JST)


def pg_url() -> str:
    """TEST_DATABASE_URL in the psycopg 3 spelling."""
    url = TEST_DATABASE_URL
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return url


@pytest.fixture(scope="session")
def pg_schema_ready() -> Iterator[None]:
    """Create the schema once per run on the PostgreSQL test database; tests truncate after themselves."""
    app = create_app(_base_config(pg_url()))
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        db.create_all()
        db.engine.dispose()
    yield


def _base_config(database_url: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-key",
        # CSRF and rate limits stay on, as in production: test clients carry tokens as a browser would.
        "MAIL_URL": None,
        "PUBLIC_BASE_URL": "http://codt.test",
        "REHEARSAL_CLOCK": None,
    }


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A database for one test: a new SQLite file, or the PostgreSQL test database emptied afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
        return
    request.getfixturevalue("pg_schema_ready")
    url = pg_url()
    yield url
    _empty_pg(url)


@pytest.fixture
def make_app(database_url, tmp_path) -> Iterator[Callable[..., object]]:
    """Build an app on this test's database with config overrides; the schema exists, the event is loaded."""
    apps = []

    def build(**overrides):
        app = create_app({**_base_config(database_url), **overrides}, instance_path=str(tmp_path / "instance"))
        app.test_client_class = BrowserClient
        limiter.reset()  # the limiter's in-memory counts live in the process: each test starts with none
        with app.app_context():
            if database_url.startswith("sqlite"):
                db.create_all()
            event_service.load_event(event_service.read_event_data())
            db.session.commit()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    """The default test app: the production settings (CSRF and rate limits on), registration open by the frozen
    clock."""
    return make_app()


class BrowserClient(FlaskClient):
    """A test client that sends what a browser holding the page would: every state-changing request carries the
    session's CSRF token (a form field, or X-CSRFToken for JSON), read from a page the way a browser gets it.

    `without_csrf=True` sends a request as a forging page would. Requests with an Authorization header (a scanner
    device) carry no session and no token.
    """

    def open(self, *args, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        forged = kwargs.pop("without_csrf", False)
        headers = kwargs.get("headers") or {}
        if method not in ("GET", "HEAD", "OPTIONS") and not forged and "Authorization" not in headers:
            token = self.csrf_token()
            data = kwargs.get("data")
            if kwargs.get("json") is not None or isinstance(data, (str, bytes)):
                kwargs["headers"] = {"X-CSRFToken": token, **dict(headers)}
            elif data is None:
                kwargs["data"] = {"csrf_token": token}
            elif isinstance(data, dict) and "csrf_token" not in data:
                kwargs["data"] = {**data, "csrf_token": token}
            elif isinstance(data, list) and all(name != "csrf_token" for name, _ in data):
                kwargs["data"] = [*data, ("csrf_token", token)]
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """The CSRF token of this client's session, from the sign-in page's form."""
        page = super().open("/login", method="GET").get_data(as_text=True)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def app_ctx(app) -> Iterator[None]:
    """An application context for service tests."""
    with app.app_context():
        yield


@pytest.fixture
def frozen_clock(monkeypatch) -> Callable[[datetime], None]:
    """Freeze the clock (event time and the real time mail scheduling uses) at a moment; by default inside
    the registration window."""
    state = {"now": jst(2023, 8, 25, 10)}
    monkeypatch.setattr(clock, "now", lambda: state["now"])
    monkeypatch.setattr(clock, "real_now", lambda: state["now"])

    def set_to(moment: datetime) -> None:
        assert moment.tzinfo is not None
        state["now"] = moment

    return set_to


@pytest.fixture(autouse=True)
def _default_frozen_clock(request, monkeypatch):
    """Unless a test asks for real time, the clock is frozen inside the registration window."""
    if "real_clock" in request.keywords or "live_server" in request.fixturenames:
        return
    request.getfixturevalue("frozen_clock")


@pytest.fixture(params=ZONES)
def server_tz(request, monkeypatch):
    """Run the test with the process's TZ set to another zone: the server's zone must not matter."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def make_details() -> Callable[..., Details]:
    """Valid registration details with overrides."""
    counter = iter(range(1, 10_000))

    def build(**overrides) -> Details:
        n = next(counter)
        values = {
            "family_name": "山田", "given_name": f"太郎{n}", "email": f"taro{n}@example.jp",
            "organization": "例示株式会社", "family_name_kana": "ヤマダ", "given_name_kana": "タロウ",
            "job_title": "SRE", "attend_closing": False,
        }
        values.update(overrides)
        return Details(**values)

    return build


@pytest.fixture
def make_registrant(app, make_details):
    """Register someone through the service and commit; returns the Registrant."""

    def build(locale: str = "ja", **overrides):
        with app.app_context():
            outcome = register(make_details(**overrides), locale=locale)
            db.session.commit()
            registrant = outcome.registrant
            db.session.refresh(registrant)
            db.session.expunge(registrant)
            return registrant

    return build


@pytest.fixture
def program_with_video(app):
    """The shipped sessions, each with a video address."""
    from registration.services import viewing

    with app.app_context():
        for entry in viewing.program():
            for session in entry.sessions:
                session.video_url = f"https://video.example/codt2023/{session.key}"
        db.session.commit()


@pytest.fixture
def make_staff(app):
    """Create a staff member; returns (name, password)."""
    from registration.services import staff as staff_service
    counter = iter(range(1, 10_000))

    def build(role: str = "door", name: str | None = None) -> tuple[str, str]:
        name = name or f"{role}-{next(counter)}"
        password = f"correct horse {name}"
        with app.app_context():
            staff_service.add_staff(name, role=role, password=password)
            db.session.commit()
        return name, password

    return build


@pytest.fixture
def make_device(app, make_staff):
    """Issue a device token for a new door staff member; returns the bearer header."""
    from registration.services import staff as staff_service

    def build(device_name: str = "door-1", role: str = "door") -> dict:
        name, _ = make_staff(role)
        with app.app_context():
            token = staff_service.new_device_token(staff_service.find_staff(name), device_name=device_name)
            db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return build


@pytest.fixture
def make_attendee(make_registrant):
    """A registrant holding a confirmed seat (and so a ticket code)."""

    def build(**overrides):
        return make_registrant(attend_closing=True, **overrides)

    return build


def form_data(**overrides) -> dict:
    """A valid registration form post."""
    data = {
        "family_name": "山田", "given_name": "花子", "family_name_kana": "やまだ", "given_name_kana": "はなこ",
        "email": "hanako@example.jp", "organization": "例示株式会社", "job_title": "", "consent": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- real SMTP -------------------------------------------------------------------------------------------

@dataclass
class SMTPSink:
    """An aiosmtpd server on loopback that keeps what it receives; stop() and start() simulate an outage."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list = field(default_factory=list)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SMTPSink]:
    """A running SMTP server on loopback."""
    sink = SMTPSink(port=free_port())
    sink.start()
    yield sink
    sink.stop()


# --- shared rate-limit storage ----------------------------------------------------------------------------

#: A Redis database of the tests' own on the local Redis (README: the tests need it).
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own on a Redis database of the tests', removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL}: start it (the README's test command needs it)")
    prefix = f"codt-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.close()


# --- live servers ----------------------------------------------------------------------------------------

@dataclass
class LiveServer:
    """A gunicorn serving the app as production would, on this test's database."""

    url: str
    process: subprocess.Popen
    outbox: Path
    env: dict
    log: Path

    def errors(self) -> str:
        """What the server wrote to stderr (tracebacks of 500s among it)."""
        return self.log.read_text(errors="replace")

    def query(self, sql: str) -> list:
        """Rows from the server's database."""
        engine = create_engine(self.env["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).all()
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Block until something accepts connections on the port, or fail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


@pytest.fixture
def live_server(database_url, tmp_path, make_app) -> Iterator[Callable[..., LiveServer]]:
    """Start gunicorn servers (`gunicorn "registration:create_app()"`) with environment overrides."""
    make_app()  # schema and event data, through the same code path as the tests
    servers: list[LiveServer] = []

    def start(workers: int = 2, **env_overrides: str) -> LiveServer:
        if "CLOSING_CAPACITY" in env_overrides:
            # The capacity takes effect through `event load`, as on a deploy: the database holds it for every server.
            make_app(CLOSING_CAPACITY=int(env_overrides["CLOSING_CAPACITY"]))
        port = free_port()
        outbox = tmp_path / "outbox"
        env = server_env(database_url, port, outbox, **env_overrides)
        log = tmp_path / f"gunicorn-{port}.log"
        process = spawn_gunicorn(port, workers, env, log)
        server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, outbox=outbox, env=env, log=log)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Browserless:
    """A cookie-keeping HTTP client, like one visitor's browser without redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def csrf_token(self, path: str = "/register") -> str:
        """Load a form page and return its CSRF token, as a browser holding the form would have it."""
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', self.get(path)).group(1)

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            return response.read().decode()

    def post(self, path: str, data: dict) -> int:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def at_once(actions: list[Callable[[], object]]) -> list:
    """Run the callables in their own threads, released at the same moment; their results, in order."""
    start = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(n: int) -> None:
        start.wait()
        results[n] = actions[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def register_simultaneously(server: "LiveServer", forms: list[dict]) -> list[int]:
    """Post each form to /register from its own visitor (own session and CSRF token), all at the same moment;
    returns the statuses in the order of the forms."""
    visitors = [Browserless(server.url) for _ in forms]
    tokens = [visitor.csrf_token() for visitor in visitors]
    return at_once([lambda n=n: visitors[n].post("/register", {**forms[n], "csrf_token": tokens[n]})
                    for n in range(len(forms))])


def run_flask(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `flask --app registration ...` as an organiser would, in its own process."""
    return subprocess.run([str(VENV_BIN / "flask"), "--app", "registration", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, input=input, timeout=120)


def pytest_configure(config):
    config.addinivalue_line("markers", "real_clock: the test runs on the real clock, not a frozen one")


# --- a live server that goes away and comes back (the door's offline tests) --------------------------------

def server_env(database_url: str, port: int, outbox: Path, **overrides: str) -> dict:
    """The environment a test's gunicorn runs with: this database, a file outbox, the rehearsal clock."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "live-test-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MAIL_URL": f"file://{outbox}",
        "REHEARSAL_CLOCK": "2023-08-25T10:00:00+09:00",
        "PYTHONPATH": str(ROOT),
        **overrides,
    }


#: The gunicorn settings production runs with (README: `gunicorn -c deploy/gunicorn.conf.py ...`).
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def spawn_gunicorn(port: int, workers: int, env: dict, log: Path, *, conf: Path | None = None) -> subprocess.Popen:
    """Start `gunicorn "registration:create_app()"` on the port (with the settings file `conf`, if given: the
    command line's --workers and --bind override it), its stderr appended to the log; wait until it accepts
    connections."""
    settings = ["-c", str(conf)] if conf is not None else []
    with log.open("ab") as log_file:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), *settings, "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
             "--chdir", str(ROOT), "--log-level", "warning", "registration:create_app()"],
            env=env, stdout=subprocess.DEVNULL, stderr=log_file,
        )
    wait_for_port(port, process, log)
    return process


@dataclass
class RestartableServer(LiveServer):
    """A LiveServer that can be stopped and started again on the same port and database, as a venue's network
    outage looks to the door page: connections refused, then the same server back at the same address."""

    port: int = 0
    workers: int = 2

    def running(self) -> bool:
        return self.process.poll() is None

    def start(self) -> None:
        """Start the server again (same port, database, secret key and rehearsal clock), unless it runs."""
        if not self.running():
            self.process = spawn_gunicorn(self.port, self.workers, self.env, self.log)


@pytest.fixture(scope="module", params=BACKENDS)
def module_live_server(request, tmp_path_factory) -> Iterator[Callable[..., RestartableServer]]:
    """Start gunicorn servers shared by the tests of one module, on a database of the module's own (a SQLite
    file, or the PostgreSQL test database emptied before and after), schema and event data loaded."""
    folder = tmp_path_factory.mktemp("module-live")
    if request.param == "sqlite":
        database_url = f"sqlite:///{folder / 'live.sqlite'}"
    else:
        request.getfixturevalue("pg_schema_ready")
        database_url = pg_url()
        _empty_pg(database_url)
    app = create_app(_base_config(database_url), instance_path=str(folder / "instance"))
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        event_service.load_event(event_service.read_event_data())
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    servers: list[RestartableServer] = []

    def start(workers: int = 2, **env_overrides: str) -> RestartableServer:
        port = free_port()
        env = server_env(database_url, port, folder / "outbox", **env_overrides)
        log = folder / f"gunicorn-{port}.log"
        process = spawn_gunicorn(port, workers, env, log)
        server = RestartableServer(url=f"http://127.0.0.1:{port}", process=process, outbox=folder / "outbox",
                                   env=env, log=log, port=port, workers=workers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.running():
            server.stop()
    if request.param != "sqlite":
        _empty_pg(database_url)


def _empty_pg(url: str) -> None:
    """Empty every table of the PostgreSQL test database (the schema stays)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                                   " AND tablename <> 'alembic_version'")).all()
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
