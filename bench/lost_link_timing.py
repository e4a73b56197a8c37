#!/usr/bin/env python3
"""Does "Lost your link?" take as long for a stranger's address as for a registrant's? (run with the app's venv)

  .venv/bin/python bench/lost_link_timing.py [--per-group 50] [--database-url postgresql://...]

Builds a throwaway database (a SQLite file by default) with 50 seat holders and 50 registrants without a seat,
starts the app in gunicorn (one sync worker, production settings) on 127.0.0.1, and posts the lost-link form
for three groups of addresses, `--per-group` requests each, interleaved in a shuffled order so that drift hits
every group alike: seat holders, registrants, and addresses nobody registered. Each POST is timed from sending
to the last byte of the answer, on a fresh connection, as a stranger's script would time it. The rate limit is
raised for the run (the real one would refuse the script after five requests).

Prints each group's median, 10th and 90th percentiles, and exits 1 when two medians differ by more than 1 ms.
"""
import argparse
import http.client
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GROUPS = ("seat holder", "registrant", "unknown")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(env: dict, per_group: int) -> None:
    """Schema, event and people, through the app's own commands and services."""
    subprocess.run([str(VENV_BIN / "flask"), "--app", "registration", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    subprocess.run([str(VENV_BIN / "flask"), "--app", "registration", "event", "load"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    code = f"""
from registration import create_app
from registration.extensions import db
from registration.services import registrations
app = create_app()
with app.app_context():
    for group, closing in (("holder", True), ("plain", False)):
        for n in range({per_group}):
            registrations.register(registrations.Details(family_name="計測", given_name=f"{{group}}{{n}}",
                email=f"{{group}}{{n}}@example.jp", organization="ベンチ株式会社", attend_closing=closing), locale="ja")
    db.session.commit()
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def post_lost_link(port: int, cookie: str, token: str, email: str) -> float:
    """Seconds from sending the POST to the answer's last byte."""
    body = urllib.parse.urlencode({"email": email, "csrf_token": token})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.connect()
    started = time.perf_counter()
    connection.request("POST", "/lost-link", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    if response.status != 200:
        raise SystemExit(f"unexpected answer {response.status} for {email}")
    return elapsed


def session_and_token(port: int) -> tuple[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/lost-link")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    connection.close()
    return cookie, token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-group", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="codt-lost-link-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REHEARSAL_CLOCK", "FLASK_APP")}
    env.update(
        DATABASE_URL=args.database_url or f"sqlite:///{workdir / 'bench.sqlite'}",
        APP_ENV="production", SECRET_KEY=secrets.token_hex(32), SESSION_COOKIE_SECURE="0",
        RATELIMIT_STORAGE_URI="memory://", LOST_LINK_RATE_LIMIT="1000000 per minute",
        CLOSING_CAPACITY=str(2 * args.per_group), MAIL_URL=f"file://{workdir / 'outbox'}",
        # Inside the registration window, so that the people can be registered; the door is not involved.
        REGISTRATION_OPENS_AT="2000-01-01T00:00:00+09:00", REGISTRATION_DEADLINE="2100-01-01T00:00:00+09:00",
    )
    seed(env, args.per_group)

    port = free_port()
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "registration:create_app()"], cwd=ROOT, env=env, start_new_session=True)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cookie, token = session_and_token(port)
        addresses = {
            "seat holder": [f"holder{n}@example.jp" for n in range(args.per_group)],
            "registrant": [f"plain{n}@example.jp" for n in range(args.per_group)],
            "unknown": [f"stranger{n}@example.jp" for n in range(args.per_group)],
        }
        for n in range(20):  # warm-up: imports, template compilation, connection pool
            post_lost_link(port, cookie, token, f"warmup{n}@example.jp")
        order = [(group, n) for n in range(args.per_group) for group in GROUPS]
        rng = random.Random(2023)
        for start in range(0, len(order), len(GROUPS)):  # each round of three in a random order
            block = order[start:start + len(GROUPS)]
            rng.shuffle(block)
            order[start:start + len(GROUPS)] = block
        timings: dict[str, list[float]] = {group: [] for group in GROUPS}
        for group, n in order:
            timings[group].append(post_lost_link(port, cookie, token, addresses[group][n]))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print(f"POST /lost-link, {args.per_group} requests per group, one gunicorn sync worker, "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}:")
    medians = {}
    for group in GROUPS:
        values = sorted(t * 1000 for t in timings[group])
        medians[group] = statistics.median(values)
        deciles = statistics.quantiles(values, n=10)
        print(f"  {group:<12} median {medians[group]:6.2f} ms   p10 {deciles[0]:6.2f} ms   p90 {deciles[-1]:6.2f} ms")
    spread = max(medians.values()) - min(medians.values())
    print(f"  largest difference between medians: {spread:.2f} ms (target: within 1 ms)")
    return 0 if spread <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
