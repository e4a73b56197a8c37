"""What the load benchmarks share: databases, the app's production environment, gunicorn processes, Redis keys."""

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
PG = os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PROGRAM = ROOT / "tests" / "data" / "program-49.csv"
#: The shared harness's venv (../shared/bench/ceiling/setup.sh builds it): the ceilings run there, with psycopg2.
BENCH_VENV = Path("/tmp/bench-venv/bin")
SHARED_CEILING_REQUIREMENTS = ROOT.parent / "shared" / "bench" / "ceiling" / "requirements.txt"
WORKERS = 2


def database_url(name: str) -> str:
    """The app's URL of a database on the benchmark's PostgreSQL server."""
    return f"{PG}/{name}"


def recreate_database(name: str, template: str | None = None) -> None:
    """Drop and create a database (as a copy of `template` if given)."""
    subprocess.run(["dropdb", "--if-exists", "--force", name], check=True, capture_output=True)
    subprocess.run(["createdb", *(["-T", template] if template else []), name], check=True, capture_output=True)


def query(name: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on a database and return its rows (psycopg 3, the app's driver)."""
    import psycopg
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def open_window_env() -> dict:
    """Registration open now, on the real clock: production refuses a rehearsal clock, so the window moves instead."""
    now = datetime.now(timezone.utc)
    return {"REGISTRATION_OPENS_AT": (now - timedelta(hours=1)).isoformat(timespec="seconds"),
            "REGISTRATION_DEADLINE": (now + timedelta(days=1)).isoformat(timespec="seconds")}


def app_env(db_name: str, *, port: int, redis_prefix: str, **extra: str) -> dict:
    """The app's environment as a production host behind one nginx has it (APP_ENV=production, Redis limits)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REHEARSAL_CLOCK", "MAIL_URL", "FLASK_APP")}
    env.update(APP_ENV="production", DATABASE_URL=database_url(db_name), SECRET_KEY=secret_key(),
               RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix, PROXY_COUNT="1",
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", WORKERS=str(WORKERS),
               **open_window_env())
    env.update(extra)
    return env


def secret_key() -> str:
    """One random 32-byte key per benchmark process (sessions only need to survive the run)."""
    global _SECRET
    if _SECRET is None:
        _SECRET = secrets.token_hex(32)
    return _SECRET


_SECRET: str | None = None


def fresh_redis_prefix(name: str) -> str:
    """A key prefix no earlier run used, so that rate limits start from zero."""
    return f"h4-{name}-{secrets.token_hex(4)}-"


def drop_redis_prefix(prefix: str) -> None:
    """Delete the keys a run left under its prefix."""
    import redis
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


def flask(env: dict, *args: str, stdin: str | None = None) -> str:
    """Run `flask --app registration ...`; its output. Exits on failure."""
    cmd = [str(VENV_BIN / "flask"), "--app", "registration", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    return done.stdout


def app_gunicorn_command(port: int) -> tuple[list[str], str]:
    """Our app under gunicorn as production runs it: deploy/gunicorn.conf.py with WORKERS=2 (from the environment);
    plain flags when the file does not exist (an older checkout). The command and a note of which."""
    base = [str(VENV_BIN / "gunicorn")]
    if GUNICORN_CONF.exists():
        return base + ["-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}", "registration:create_app()"], \
            "deploy/gunicorn.conf.py, WORKERS=2"
    return base + ["--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--no-control-socket",
                   "registration:create_app()"], "gunicorn --workers 2 (deploy/gunicorn.conf.py not found)"


def ensure_bench_venv() -> None:
    """The ceilings' venv (Flask, Flask-SQLAlchemy, psycopg2, gunicorn, uvloop), as the shared harness builds it."""
    if (BENCH_VENV / "gunicorn").exists():
        return
    subprocess.run(["python3.11", "-m", "venv", str(BENCH_VENV.parent)], check=True)
    subprocess.run([str(BENCH_VENV / "pip"), "install", "-q", "-r", str(SHARED_CEILING_REQUIREMENTS)], check=True)


class Server:
    """One gunicorn (master + workers) on a port; ready when `ready_path` answers `ready_status`."""

    def __init__(self, cmd: list[str], *, env: dict, cwd: Path, port: int, log: Path, ready_path: str = "/",
                 ready_method: str = "GET", ready_status: int = 200) -> None:
        self.port, self.log = port, log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as log_file:
            # A session of its own, so that stopping it reaches the workers too and nothing else.
            self.process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server on {port} exited: {log.read_text(errors='replace')[-3000:]}")
            if len(self.workers()) >= WORKERS:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request(ready_method, ready_path)
                    if conn.getresponse().status == ready_status:
                        conn.close()
                        return
                    conn.close()
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server on {port} did not become ready: {log.read_text(errors='replace')[-3000:]}")

    def workers(self) -> list[int]:
        """The worker processes' ids."""
        from httpload import children
        return children(self.process.pid)

    def pids(self) -> list[int]:
        """Master and workers."""
        return [self.process.pid, *self.workers()]

    def stop(self) -> None:
        """Graceful stop (TERM), then KILL after 20 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def write_result(path: Path, result: dict) -> None:
    """Write a benchmark's JSON result."""
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def utc_now() -> str:
    """Now, UTC, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cpu_model() -> str:
    """The machine's CPU model and core count, for the record."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "?")
    return f"{model}, {os.cpu_count()} cores"
