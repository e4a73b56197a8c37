#!/usr/bin/env python3
"""Where one registration's CPU goes, in-process (Flask test client, one thread, no queueing), production settings.

    .venv/bin/python bench/profile_registration.py [--n 300] [--top 25]

Uses a fresh copy (h4_profile) of the burst's template database (bench/registration_burst.py builds it) and Redis
limits under a fresh prefix, as the burst runs. The same mix of people as the burst. Reports CPU ms (process time)
and wall ms per GET /register and per POST, the database round trips of each, and cProfile's top functions of
each (by own time and by cumulative time). Writes bench/profile_registration.json.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from registration_burst import CAPACITY, CSRF_TOKEN, SESSION_KEY, TEMPLATE_DB, person  # noqa: E402

DB = "h4_profile"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=str(benchlib.ROOT / "bench" / "profile_registration.json"))
    a = ap.parse_args()
    benchlib.recreate_database(DB, TEMPLATE_DB)
    prefix = benchlib.fresh_redis_prefix("profile")
    os.environ.update(benchlib.app_env(DB, port=8399, redis_prefix=prefix, CLOSING_CAPACITY=str(CAPACITY),
                                       LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO")))
    os.environ.pop("REHEARSAL_CLOCK", None)
    sys.path.insert(0, str(benchlib.ROOT))
    import psycopg
    from registration import create_app

    trips = {"n": 0}
    original = psycopg.Cursor.execute

    def counted(self, *args, **kwargs):
        trips["n"] += 1
        return original(self, *args, **kwargs)

    psycopg.Cursor.execute = counted
    app = create_app()
    rng = random.Random(7)
    people = [person(100_000 + i, rng) for i in range(a.n + 50)]
    kinds = {"GET": {"cpu": [], "wall": [], "trips": []}, "POST": {"cpu": [], "wall": [], "trips": []}}
    # CPU time, not wall: what a request costs the machine, not its waits on PostgreSQL or Redis.
    profiles = {"GET": cProfile.Profile(time.process_time), "POST": cProfile.Profile(time.process_time)}

    def timed(kind: str, call, profile: bool):
        before_trips = trips["n"]
        c0, w0 = time.process_time(), time.perf_counter()
        if profile:
            profiles[kind].enable()
        answer = call()
        if profile:
            profiles[kind].disable()
        c1, w1 = time.process_time(), time.perf_counter()
        if not profile:
            kinds[kind]["cpu"].append(1000 * (c1 - c0))
            kinds[kind]["wall"].append(1000 * (w1 - w0))
            kinds[kind]["trips"].append(trips["n"] - before_trips)
        return answer

    def one(p: dict, profile: bool) -> None:
        client = app.test_client()
        headers = {"X-Forwarded-For": p["address"], "Accept-Language": p["locale"]}
        page = timed("GET", lambda: client.get("/register", headers=headers), profile)
        assert page.status_code == 200, page.status_code
        token = CSRF_TOKEN.search(page.data).group(1).decode()
        fields = [("csrf_token", token), ("email", p["email"]), ("locale", p["locale"]), *p["fields"],
                  ("consent", "y")] + ([("attend_closing", "y")] if p["closing"] else [])
        offered = SESSION_KEY.findall(page.data)
        if p["sessions"]:
            start = int(p["pick"] * len(offered))
            fields += [("sessions", offered[(start + k) % len(offered)].decode()) for k in range(p["sessions"])]
        body = urlencode(fields)
        answer = timed("POST", lambda: client.post("/register", data=body, headers={
            **headers, "Content-Type": "application/x-www-form-urlencoded"}), profile)
        assert answer.status_code == 303, (answer.status_code, answer.data[:300])

    for p in people[:50]:  # warm-up: templates compiled, pools filled
        one(p, False)
    for kind in kinds.values():
        for values in kind.values():
            values.clear()
    for p in people[50:50 + a.n]:
        one(p, False)
    # Profiled apart (cProfile slows what it measures), on the next people.
    extra = [person(200_000 + i, rng) for i in range(min(a.n, 200))]
    for p in extra:
        one(p, True)
    benchlib.drop_redis_prefix(prefix)

    result = {"n": a.n, "loadavg": benchlib.utc_now() + " " + open("/proc/loadavg").read().strip(), "kinds": {}}
    print("| request | CPU ms median (mean) | wall ms median | DB round trips (median) |\n|---|---|---|---|")
    for kind, v in kinds.items():
        row = {"cpu_ms_median": round(statistics.median(v["cpu"]), 2),
               "cpu_ms_mean": round(statistics.mean(v["cpu"]), 2),
               "wall_ms_median": round(statistics.median(v["wall"]), 2),
               "db_round_trips_median": statistics.median(v["trips"])}
        result["kinds"][kind] = row
        print(f"| {kind} /register | {row['cpu_ms_median']} ({row['cpu_ms_mean']}) | {row['wall_ms_median']} | "
              f"{row['db_round_trips_median']} |")
    for kind, profile in profiles.items():
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.strip_dirs().sort_stats(order).print_stats(a.top)
            text = out.getvalue()
            result[f"{kind}_{order}"] = text
            print(f"\n== {kind} /register, cProfile by {order} ({len(extra)} requests)\n"
                  + "\n".join(line for line in text.splitlines() if line.strip())[-6000:])
    benchlib.write_result(Path(a.out), result)


if __name__ == "__main__":
    main()
