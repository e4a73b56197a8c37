#!/usr/bin/env python3
"""Build the check-in benchmark's database and inputs for our app (run with the app's venv).

  .venv/bin/python bench/setup.py [--registrants 20000]

- drops and recreates the PostgreSQL database `codt_bench` (BENCH_DB to change it),
- `flask --app registration db upgrade` and `event load` against it,
- 20,000 registrants with confirmed closing-event seats and random ticket codes
  (registration.tickets.new_ticket_code), inserted in bulk through the app's models;
  each with its one current row in the ticket history; seat_counters.taken is set to match,
- a door staff member `bench-door` and a device token for it (through the CLI, as organisers do),
- /tmp/codt-bench/codes.txt (the ticket codes), unknown.txt (codes of the same shape that are no ticket),
  token (the device token) and env (what bench/systems.json reads: token, database URL, secret key, root).
"""
import argparse
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", "/tmp/codt-bench"))
DB = os.environ.get("BENCH_DB", "codt_bench")
DATABASE_URL = f"postgresql://root@127.0.0.1:5432/{DB}"
STAFF = "bench-door"
#: Far above the registrants, so that nothing in the run is ever short of seats.
CAPACITY = 100_000


def app_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "REHEARSAL_CLOCK"}
    secret = (OUT / "secret_key").read_text().strip()
    # The check-in API is not rate limited, so where limits count does not matter to this benchmark.
    env.update(DATABASE_URL=DATABASE_URL, SECRET_KEY=secret, APP_ENV="production", RATELIMIT_STORAGE_URI="memory://",
               CLOSING_CAPACITY=str(CAPACITY), FLASK_APP="registration")
    return env


def flask(*args: str, stdin: str | None = None) -> str:
    cmd = [str(ROOT / ".venv/bin/flask"), "--app", "registration", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=app_env(), input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registrants", type=int, default=20_000)
    a = ap.parse_args()
    t0 = time.time()
    OUT.mkdir(parents=True, exist_ok=True)
    key = OUT / "secret_key"
    if not key.exists():
        key.write_text(secrets.token_hex(32) + "\n")
        key.chmod(0o600)

    subprocess.run(["dropdb", "--if-exists", DB], check=True)
    subprocess.run(["createdb", DB], check=True)
    flask("db", "upgrade")
    flask("event", "load")

    os.environ.update(app_env())
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert, select, update

    from registration import create_app
    from registration.extensions import db
    from registration.models import Registrant, SeatCounter, Ticket
    from registration.services.registrations import new_secret
    from registration.services.seats import COUNTER
    from registration.tickets import new_ticket_code

    app = create_app()
    now = datetime.now(timezone.utc)
    codes: set[str] = set()
    while len(codes) < a.registrants:
        codes.add(new_ticket_code())
    codes_list = list(codes)
    rows = [{
        "secret": new_secret(), "email": f"bench{i}@example.com", "email_key": f"bench{i}@example.com",
        "family_name": "ベンチ", "given_name": f"太郎{i}", "family_name_kana": "ベンチ", "given_name_kana": "タロウ",
        "organization": f"Bench Org {i % 500}", "job_title": "", "attend_closing": True, "locale": "ja",
        "consented_at": now, "registered_at": now, "updated_at": now, "seat_status": "confirmed",
        "seat_confirmed_at": now, "ticket_code": code, "on_site": False,
    } for i, code in enumerate(codes_list)]
    with app.app_context():
        for start in range(0, len(rows), 2000):
            db.session.execute(insert(Registrant), rows[start:start + 2000])
        # The door looks codes up in the ticket history: each seat's code is its one current ticket.
        issued = [{"code": code, "registrant_id": registrant_id, "issued_at": now} for registrant_id, code in
                  db.session.execute(select(Registrant.id, Registrant.ticket_code))]
        for start in range(0, len(issued), 2000):
            db.session.execute(insert(Ticket), issued[start:start + 2000])
        db.session.execute(update(SeatCounter).where(SeatCounter.key == COUNTER).values(taken=len(rows)))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    subprocess.run(["psql", "-qd", DB, "-c", "VACUUM ANALYZE"], check=True)

    flask("staff", "add", STAFF, "--role", "door", "--password-stdin", stdin=secrets.token_urlsafe(18) + "\n")
    token = flask("staff", "token", STAFF, "--device", "bench-scanner").strip().splitlines()[-1]

    unknown: set[str] = set()
    while len(unknown) < 20_000:
        code = new_ticket_code()
        if code not in codes:
            unknown.add(code)
    (OUT / "codes.txt").write_text("\n".join(codes_list) + "\n")
    (OUT / "unknown.txt").write_text("\n".join(unknown) + "\n")
    (OUT / "token").write_text(token + "\n")
    (OUT / "env").write_text(
        f"CODT_ROOT={ROOT}\nCODT_DATABASE_URL={DATABASE_URL}\nCODT_SECRET_KEY={key.read_text().strip()}\n"
        f"CODT_CAPACITY={CAPACITY}\nCODT_TOKEN={token}\n")
    for p in (OUT / "token", OUT / "env"):
        p.chmod(0o600)
    print(f"codt_bench ready in {time.time() - t0:.0f} s: {len(codes_list)} confirmed registrants, "
          f"staff {STAFF} with a device token; inputs in {OUT}")


if __name__ == "__main__":
    main()
