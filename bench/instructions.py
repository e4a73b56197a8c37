#!/usr/bin/env python3
"""Instructions the app process executes per check-in request, counted by valgrind (repeatable, unlike timings).

  .venv/bin/python bench/instructions.py [--scenarios first,repeat,unknown] [--n 200]

Needs bench/setup.py first (database codt_bench) and valgrind. Runs the app in-process, calling its WSGI entry
point directly (no HTTP, no test client), twice under `valgrind --tool=callgrind`: with 20 and with 20 + N scans
per scenario; the difference divided by N is what one request costs, start-up excluded. The count is the same
from run to run whatever else the machine is doing, so two versions of the code can be compared exactly; it
leaves out the kernel (system calls, the socket to PostgreSQL) and PostgreSQL itself. Uses codes from the end
of codes.txt and deletes the check-ins and scans it made, so run it between benchmark runs, not during one.
"""
import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", "/tmp/codt-bench"))


def scan(scenarios: list[str], n: int) -> None:
    """The measured body: 20 warm-up scans, then n scans of each scenario."""
    env = dict(line.split("=", 1) for line in (OUT / "env").read_text().splitlines())
    os.environ.pop("REHEARSAL_CLOCK", None)
    os.environ.update(DATABASE_URL=env["CODT_DATABASE_URL"], SECRET_KEY=env["CODT_SECRET_KEY"],
                      APP_ENV="production", CLOSING_CAPACITY=env["CODT_CAPACITY"])
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import text

    from registration import create_app
    from registration.extensions import db

    app = create_app()
    codes = (OUT / "codes.txt").read_text().split()[-(n + 20):]
    unknown = (OUT / "unknown.txt").read_text().split()[:n]
    with app.app_context():
        db.session.execute(text("DELETE FROM scans WHERE registrant_id IN (SELECT id FROM registrants WHERE "
                                "ticket_code = ANY(:codes)) OR registrant_id IS NULL"), {"codes": codes})
        db.session.execute(text("DELETE FROM checkins WHERE registrant_id IN (SELECT id FROM registrants WHERE "
                                "ticket_code = ANY(:codes))"), {"codes": codes})
        db.session.commit()

    def call(code: str) -> str:
        body = json.dumps({"code": code, "gate": "door-1"}).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/checkins", "SCRIPT_NAME": "", "QUERY_STRING": "",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8210", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
                   "wsgi.run_once": False, "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                   "HTTP_AUTHORIZATION": f"Bearer {env['CODT_TOKEN']}", "HTTP_HOST": "127.0.0.1:8210"}
        status = []
        b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        return status[0][:3]

    expected = {"first": "201", "repeat": "409", "unknown": "404"}
    for code in codes[:20]:
        call(code)
    for scenario in scenarios:
        for code in unknown if scenario == "unknown" else codes[20:20 + n]:
            got = call(code)
            assert got == expected[scenario], f"{scenario}: HTTP {got}"


def count(scenarios: list[str], n: int) -> int:
    """Instructions of one whole run under callgrind."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--inner", f"--scenarios={','.join(scenarios)}", "--n", str(n)],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", default="first,repeat,unknown", help="what to report (or, inner: to run)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    scenarios = [s for s in a.scenarios.split(",") if s]
    if a.inner:
        scan(scenarios, a.n)
        return
    start_up = count([], 0)
    first = count(["first"], a.n)
    totals = {"first": (first, start_up), "repeat": (count(["first", "repeat"], a.n), first),
              "unknown": (count(["unknown"], a.n), start_up)}
    for scenario in scenarios:
        with_it, without = totals[scenario]
        print(f"{scenario}: {(with_it - without) / a.n / 1e6:.2f} million instructions per request")


if __name__ == "__main__":
    main()
