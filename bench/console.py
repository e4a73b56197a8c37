"""How fast the organisers' console is with 10,000 and 100,000 registrants, on SQLite and PostgreSQL.

    .venv/bin/python bench/console.py [--sizes 10000,100000] [--backends sqlite,postgresql] [--out bench/CONSOLE.md]

For each size and database: a fresh database (a new SQLite file; a PostgreSQL database made with `createdb`),
`db upgrade`, `event load`, the 49-session test program, `demo-data`, an admin account; then gunicorn (2 workers on
127.0.0.1, as scripts/serve runs it, on a rehearsal clock at the event day's afternoon) and, signed in as the admin,
many requests to each console page, sequentially and from 4 clients at once: p50/p99 in ms, beside a static file
through the same server measured just before (the ratio says how much of the time is the page's own work). Then the
registrant export from a freshly started server: time to the first byte, total time, bytes, and the peak memory
(VmHWM) of the worker that served it. Pages that do not exist (yet) are reported as such, not as failures of the
bench. Takes about 5-10 minutes.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PROGRAM = ROOT / "tests" / "data" / "program-49.csv"
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432")
ADMIN, PASSWORD = "bench-admin", "bench admin password 2023"
#: The event day in the afternoon: the door panel and dashboard at their busiest.
REHEARSAL_CLOCK = "2023-09-14T15:00:00+09:00"
WORKERS = 2
CONCURRENCY = 4
#: Per page: at most this many sequential requests, or as many as fit in SEQUENTIAL_SECONDS (at least 3).
SEQUENTIAL_REQUESTS, SEQUENTIAL_SECONDS = 30, 6.0
#: Per page: each of CONCURRENCY clients sends at most this many, or as many as fit in CONCURRENT_SECONDS.
CONCURRENT_REQUESTS, CONCURRENT_SECONDS = 8, 6.0
STATIC = "/static/style.css"


# --- setting up ------------------------------------------------------------------------------------------------

def flask(env: dict, *args: str, input: str | None = None, timeout: float = 600) -> tuple[float, str]:
    """Run `flask --app registration ...`; (seconds, output). Raises on failure."""
    started = time.perf_counter()
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "registration", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, input=input, timeout=timeout)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout


def fresh_database(backend: str, size: int, workdir: Path) -> str:
    """A new, empty database for one run; its URL."""
    if backend == "sqlite":
        path = workdir / f"console-{size}.sqlite"
        for leftover in workdir.glob(f"console-{size}.sqlite*"):
            leftover.unlink()
        return f"sqlite:///{path}"
    name = f"helper_demo_bench_{size}"
    host = urllib.parse.urlsplit(PG_SERVER)
    options = ["-h", host.hostname or "127.0.0.1", "-p", str(host.port or 5432), "-U", host.username or "root"]
    subprocess.run(["dropdb", "--if-exists", *options, name], check=True, capture_output=True)
    subprocess.run(["createdb", *options, name], check=True, capture_output=True)
    return f"{PG_SERVER}/{name}"


@dataclass
class Setup:
    """What preparing one database took."""

    seconds: dict[str, float] = field(default_factory=dict)
    demo_output: str = ""
    seats_check: str = ""


def prepare(env: dict, size: int) -> Setup:
    """Migrate, load the event and the program, generate the registrants, add the admin."""
    setup = Setup()
    setup.seconds["db upgrade"], _ = flask(env, "db", "upgrade")
    setup.seconds["event load"], _ = flask(env, "event", "load")
    setup.seconds["program import"], _ = flask(env, "program", "import", str(PROGRAM))
    # The check runs apart below, with a time limit: at 100,000 it is quadratic in the waiting list (see CONSOLE.md).
    setup.seconds["demo-data"], setup.demo_output = flask(env, "demo-data", "--registrants", str(size), "--no-check")
    setup.seconds["staff add"], _ = flask(env, "staff", "add", ADMIN, "--role", "admin", "--password-stdin",
                                          input=PASSWORD + "\n")
    limit = 120 if size <= 10_000 else 30
    try:
        seconds, output = flask(env, "seats", "check", timeout=limit)
        setup.seconds["seats check"] = seconds
        setup.seats_check = output.strip().splitlines()[-1]
    except subprocess.TimeoutExpired:
        setup.seats_check = f"did not finish within {limit} s"
    except RuntimeError as error:
        setup.seats_check = f"FAILED: {str(error)[:300]}"
    flask(env, "rehearsal", "restart")
    return setup


# --- the server ------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with WORKERS workers on a port of its own."""

    def __init__(self, env: dict, log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
                 "--chdir", str(ROOT), "--log-level", "warning", "registration:create_app()"],
                env={**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}"}, stdout=subprocess.DEVNULL,
                stderr=log_file)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
            if len(self.workers()) == WORKERS:
                try:
                    status, _ = request(self.port, STATIC)
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def workers(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS in KiB, and CPU ticks (user + system), of a process."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    values["ticks"] = int(stat[11]) + int(stat[12])
    return values


# --- requests --------------------------------------------------------------------------------------------------

def request(port: int, path: str, cookie: str = "", *, method: str = "GET", body: bytes | None = None,
            headers: dict | None = None, timeout: float = 120) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body,
                           headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _cookies(response, jar: dict[str, str]) -> dict[str, str]:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name.strip()] = value
    return jar


def sign_in(port: int) -> str:
    """Sign in as the admin the way a browser does (CSRF token from the form); the Cookie header to send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    jar = _cookies(response, {})
    connection.close()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "name": ADMIN, "password": PASSWORD}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/login", body=body, headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()), "Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    jar = _cookies(response, jar)
    connection.close()
    if response.status not in (302, 303):
        raise RuntimeError(f"sign-in answered {response.status}")
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    # A light page: the export's memory figure must not include what a heavy page (the dashboard) took.
    status, _ = request(port, "/admin/door-panel", cookie)
    if status in (302, 303, 401, 403):
        raise RuntimeError(f"signed in, but /admin/door-panel answered {status}")
    return cookie


@dataclass
class Timing:
    """Latencies of one page, one way of asking."""

    times_ms: list[float]
    statuses: dict[int, int]
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return len(self.times_ms) / self.seconds if self.seconds else 0.0


def timed(port: int, path: str, cookie: str, *, count: int, seconds: float,
          at_least: int = 3) -> tuple[list[float], dict[int, int]]:
    times, statuses = [], {}
    started = time.perf_counter()
    while len(times) < count and (len(times) < at_least or time.perf_counter() - started < seconds):
        begun = time.perf_counter()
        status, _ = request(port, path, cookie)
        times.append((time.perf_counter() - begun) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
    return times, statuses


def sequential(port: int, path: str, cookie: str) -> Timing:
    started = time.perf_counter()
    times, statuses = timed(port, path, cookie, count=SEQUENTIAL_REQUESTS, seconds=SEQUENTIAL_SECONDS)
    return Timing(times, statuses, time.perf_counter() - started)


def concurrent(port: int, path: str, cookie: str) -> Timing:
    results: list = [None] * CONCURRENCY
    barrier = threading.Barrier(CONCURRENCY)

    def client(number: int) -> None:
        barrier.wait()
        results[number] = timed(port, path, cookie, count=CONCURRENT_REQUESTS, seconds=CONCURRENT_SECONDS,
                                at_least=2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    times = [t for result in results for t in result[0]]
    statuses: dict[int, int] = {}
    for result in results:
        for status, number in result[1].items():
            statuses[status] = statuses.get(status, 0) + number
    return Timing(times, statuses, seconds)


@dataclass
class PageResult:
    name: str
    path: str
    status: int
    static_p50: float = 0.0
    alone: Timing | None = None
    together: Timing | None = None
    note: str = ""


def measure_page(port: int, cookie: str, name: str, path: str) -> PageResult:
    """The static baseline just before, then the page alone and from CONCURRENCY clients at once."""
    status, _ = request(port, path, cookie)  # a first request: warms the worker's caches, tells if the page exists
    result = PageResult(name, path, status)
    if status != 200:
        result.note = {404: "not there (404)", 500: "server error (500)"}.get(status, f"answered {status}")
        return result
    baseline, _ = timed(port, STATIC, "", count=20, seconds=2)
    result.static_p50 = statistics.median(baseline)
    result.alone = sequential(port, path, cookie)
    result.together = concurrent(port, path, cookie)
    if set(result.alone.statuses) | set(result.together.statuses) != {200}:
        result.note = f"statuses {result.alone.statuses | result.together.statuses}"
    return result


@dataclass
class ExportResult:
    status: int = 0
    first_byte_ms: float = 0.0
    total_ms: float = 0.0
    bytes: int = 0
    rows: int = 0
    worker_hwm_before_kib: int = 0
    worker_hwm_after_kib: int = 0
    worker_rss_after_kib: int = 0
    static_p50: float = 0.0
    note: str = ""


def measure_export(env: dict, log: Path, path: str = "/admin/registrants.csv") -> ExportResult:
    """The export from a freshly started server: first byte, total, size, and the serving worker's peak memory."""
    server = Server(env, log)
    result = ExportResult()
    try:
        cookie = sign_in(server.port)
        baseline, _ = timed(server.port, STATIC, "", count=20, seconds=2)
        result.static_p50 = statistics.median(baseline)
        before = {pid: proc_status(pid) for pid in server.workers()}
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        result.status = response.status
        first = response.read(1)
        result.first_byte_ms = (time.perf_counter() - started) * 1000
        size, lines = len(first), first.count(b"\n")
        try:
            while chunk := response.read(65536):
                size += len(chunk)
                lines += chunk.count(b"\n")
        except (http.client.IncompleteRead, ConnectionError) as error:
            result.note = f"cut off: {type(error).__name__} (a worker timeout?)"
        result.total_ms = (time.perf_counter() - started) * 1000
        result.bytes, result.rows = size, max(0, lines - 1)
        connection.close()
        after = {pid: proc_status(pid) for pid in server.workers() if pid in before}
        if after:
            # The worker that served it is the one that spent the CPU.
            served = max(after, key=lambda pid: after[pid]["ticks"] - before[pid]["ticks"])
            result.worker_hwm_before_kib = before[served]["VmHWM"]
            result.worker_hwm_after_kib = after[served]["VmHWM"]
            result.worker_rss_after_kib = after[served]["VmRSS"]
        if result.status != 200 and not result.note:
            result.note = {404: "not there (404)"}.get(result.status, f"answered {result.status}")
    finally:
        server.stop()
    return result


# --- one configuration -----------------------------------------------------------------------------------------

def pages(env: dict, size: int) -> list[tuple[str, str]]:
    """The console's pages, with ids from the database: a seat holder who was checked in, a waiting person."""
    script = ("from sqlalchemy import select, func\n"
              "from registration import create_app\nfrom registration.extensions import db\n"
              "from registration.models import Registrant, CheckIn\n"
              "app = create_app()\n"
              "with app.app_context():\n"
              "    held = db.session.scalar(select(CheckIn.registrant_id).order_by(CheckIn.id).limit(1))\n"
              "    waiting = db.session.scalar(select(Registrant.id).where(Registrant.seat_status == 'waitlisted')"
              ".order_by(Registrant.waitlisted_at.desc()).limit(1))\n"
              "    print(held or 1, waiting or 1)\n")
    output = subprocess.run([str(VENV_BIN / "python"), "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    holder, waiting = output[-2], output[-1]
    deep = max(2, int(size / 50 * 0.9))
    return [
        ("dashboard", "/admin"),
        ("door panel", "/admin/door-panel"),
        ("registrants, page 1", "/admin/registrants"),
        (f"registrants, page {deep}", f"/admin/registrants?page={deep}"),
        ("filter: waiting list", "/admin/registrants?closing=waitlisted"),
        ("filter: checked in, by name", "/admin/registrants?checked_in=yes&sort=name"),
        ("filter: cancelled, English", "/admin/registrants?cancelled=yes&language=en"),
        ("search ヤマダ", "/admin/registrants?q=" + urllib.parse.quote("ヤマダ")),
        ("search demo-12", "/admin/registrants?q=demo-12"),
        ("person (checked in)", f"/admin/registrants/{holder}"),
        ("person (last in line)", f"/admin/registrants/{waiting}"),
        ("audit log", "/admin/audit"),
        ("audit log, one person", f"/admin/audit?registrant={holder}"),
    ]


@dataclass
class Run:
    backend: str
    size: int
    setup: Setup
    pages: list[PageResult]
    export: ExportResult
    seconds: float


def run_one(backend: str, size: int, workdir: Path) -> Run:
    started = time.perf_counter()
    url = fresh_database(backend, size, workdir)
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-console-secret-" + "x" * 32,
           "REHEARSAL_CLOCK": REHEARSAL_CLOCK, "PYTHONPATH": str(ROOT), "APP_ENV": "development",
           "MAIL_URL": f"file://{workdir / 'outbox'}"}
    env.pop("RATELIMIT_STORAGE_URI", None)
    print(f"== {backend}, {size:,} registrants: setting up", flush=True)
    setup = prepare(env, size)
    print("   " + "; ".join(f"{key} {value:.1f} s" for key, value in setup.seconds.items()), flush=True)
    log = workdir / f"gunicorn-{backend}-{size}.log"
    server = Server(env, log)
    results = []
    try:
        cookie = sign_in(server.port)
        for name, path in pages(env, size):
            result = measure_page(server.port, cookie, name, path)
            results.append(result)
            if result.alone:
                print(f"   {name:30} p50 {result.alone.p50:8.1f} ms  p99 {result.alone.p99:8.1f} ms  "
                      f"x4 p50 {result.together.p50:8.1f} ms  {result.note}", flush=True)
            else:
                print(f"   {name:30} {result.note}", flush=True)
    finally:
        server.stop()
    export = measure_export(env, log)
    print(f"   export: {export.status} first byte {export.first_byte_ms:.0f} ms, total {export.total_ms:.0f} ms, "
          f"{export.bytes:,} bytes, worker peak {export.worker_hwm_after_kib / 1024:.0f} MiB {export.note}",
          flush=True)
    if backend == "postgresql":
        subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "root", f"helper_demo_bench_{size}"],
                       capture_output=True)
    return Run(backend, size, setup, results, export, time.perf_counter() - started)


# --- the report ------------------------------------------------------------------------------------------------

def report(runs: list[Run], started: float) -> str:
    lines = [RESULTS_HEADER.format(minutes=(time.perf_counter() - started) / 60, when=time.strftime("%Y-%m-%d %H:%M"),
                                   cpus=os.cpu_count(), python=sys.version.split()[0])]
    lines.append("### Setting up\n")
    lines.append("| database | registrants | demo-data | rows written | seats check |")
    lines.append("|---|---:|---:|---:|---|")
    for run in runs:
        rows = sum(int(n.replace(",", "")) for n in re.findall(r"^  \w+ +([\d,]+)$", run.setup.demo_output, re.M))
        check = run.setup.seats_check
        if "seats check" in run.setup.seconds:
            check += f" ({run.setup.seconds['seats check']:.1f} s)"
        lines.append(f"| {run.backend} | {run.size:,} | {run.setup.seconds['demo-data']:.1f} s | {rows:,} | {check} |")
    lines.append("")
    for run in runs:
        lines.append(f"### {run.backend}, {run.size:,} registrants\n")
        lines.append("| page | alone p50 | alone p99 | ×static | 4 at once p50 | 4 at once p99 | req/s (4) | n |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for page in run.pages:
            if page.alone is None:
                lines.append(f"| {page.name} (`{page.path}`) | {page.note} | | | | | | |")
                continue
            ratio = page.alone.p50 / page.static_p50 if page.static_p50 else 0
            note = f" ({page.note})" if page.note else ""
            lines.append(f"| {page.name}{note} | {page.alone.p50:.0f} ms | {page.alone.p99:.0f} ms | {ratio:.0f}× | "
                         f"{page.together.p50:.0f} ms | {page.together.p99:.0f} ms | {page.together.throughput:.1f} | "
                         f"{len(page.alone.times_ms)}+{len(page.together.times_ms)} |")
        static = statistics.median([page.static_p50 for page in run.pages if page.static_p50] or [0])
        lines.append(f"\nStatic file ({STATIC}) through the same server, measured before each page: p50 "
                     f"{static:.1f} ms.\n")
        export = run.export
        if export.status == 200:
            lines.append(f"Export `/admin/registrants.csv` (fresh server): first byte {export.first_byte_ms:.0f} ms, "
                         f"complete {export.total_ms / 1000:.1f} s, {export.bytes / 1e6:.1f} MB ({export.rows:,} "
                         f"lines), peak memory of the worker that served it {export.worker_hwm_after_kib / 1024:.0f} "
                         f"MiB (it was {export.worker_hwm_before_kib / 1024:.0f} MiB before){'; ' + export.note if export.note else ''}.\n")
        else:
            lines.append(f"Export `/admin/registrants.csv`: {export.note or export.status}.\n")
    return "\n".join(lines) + "\n"


RESULTS_HEADER = """## Results

Measured {when} on this machine ({cpus} CPUs, Python {python}) by `bench/console.py`, {minutes:.1f} minutes in all.
gunicorn with 2 sync workers on 127.0.0.1, the rehearsal clock at 2023-09-14 15:00 JST (the event day), signed in as
an admin. "alone": one client after another; "4 at once": 4 clients without pause; "×static": alone p50 divided by
the p50 of `/static/style.css` through the same server in the same minute. p99 of a few dozen requests is close to
the slowest one.
"""


def write_report(out: Path, results: str) -> None:
    """Keep the hand-written text of the file (everything before '## Results') and replace the results."""
    text = out.read_text() if out.exists() else ""
    head = text.split("## Results", 1)[0].rstrip() + "\n\n" if text else ""
    out.write_text(head + results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(ROOT / "bench" / "CONSOLE.md"))
    parser.add_argument("--json", default=None, help="Also write the raw figures here.")
    args = parser.parse_args()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="codt-console-bench-"))
    runs = []
    try:
        for size in [int(size) for size in args.sizes.split(",")]:
            for backend in args.backends.split(","):
                runs.append(run_one(backend, size, workdir))
    finally:
        if runs:
            write_report(Path(args.out), report(runs, started))
            print(f"Wrote {args.out}")
        if args.json:
            Path(args.json).write_text(json.dumps([
                {"backend": run.backend, "size": run.size, "setup": run.setup.seconds,
                 "seats_check": run.setup.seats_check,
                 "pages": [{"name": p.name, "path": p.path, "status": p.status, "static_p50": p.static_p50,
                            "alone_ms": p.alone.times_ms if p.alone else None,
                            "together_ms": p.together.times_ms if p.together else None, "note": p.note}
                           for p in run.pages],
                 "export": vars(run.export)} for run in runs], indent=1))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
