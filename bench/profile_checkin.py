#!/usr/bin/env python3
"""Where one check-in's time goes, in-process (Flask test client) against the benchmark database.

  .venv/bin/python bench/profile_checkin.py [--n 300] [--pyinstrument DIR_WITH_PYINSTRUMENT]

Needs bench/setup.py first; resets the check-ins of codt_bench (do not run it during bench/run.sh).
Reports, for first scans, repeated scans and unknown codes:
- every database round trip of one request (DBAPI level, so the pool's pre-ping and COMMIT are counted too),
- wall and CPU milliseconds per request, single-threaded (no queueing),
- the cost of each before/after-request hook (Flask-Login, CSRF, limiter, babel, our own), timed around each,
- variants of configuration (pool_pre_ping back on, the limiter off altogether) to show what they cost,
- a cProfile (or pyinstrument) summary of the first-scan path.
"""
import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", "/tmp/codt-bench"))


def load_env() -> dict:
    env = {}
    for line in (OUT / "env").read_text().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


ENV = load_env()
os.environ.pop("REHEARSAL_CLOCK", None)
os.environ.update(DATABASE_URL=ENV["CODT_DATABASE_URL"], SECRET_KEY=ENV["CODT_SECRET_KEY"], APP_ENV="production",
                  CLOSING_CAPACITY=ENV["CODT_CAPACITY"])
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from registration import create_app  # noqa: E402
from registration.extensions import db  # noqa: E402

# --- DBAPI-level statement log: sees the pool's pre-ping, BEGIN and COMMIT as well ---------------------------
STATEMENTS: list[tuple[str, float]] = []
_execute, _commit, _rollback = psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback


def _timed(kind, fn):
    def wrapper(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(self, *args, **kwargs)
        finally:
            label = kind if kind != "execute" else " ".join(str(args[0]).split())[:110]
            STATEMENTS.append((label, time.perf_counter() - t))
    return wrapper


psycopg.Cursor.execute = _timed("execute", _execute)
psycopg.Connection.commit = _timed("COMMIT", _commit)
psycopg.Connection.rollback = _timed("ROLLBACK", _rollback)


def make_app(**overrides):
    return create_app(overrides or None)


def _package(filename: str, func: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if "/registration/" in filename or "/bench/" in filename:
        return "our code (registration/, bench/)"
    if filename == "~":
        return f"builtins ({func.split(' ')[-1].strip('<>')[:40]})" if "method" in func else "builtins/C calls"
    return "stdlib " + filename.rsplit("/", 1)[-1]


def reset(app) -> None:
    with app.app_context():
        db.session.execute(text("DELETE FROM scans"))
        db.session.execute(text("DELETE FROM checkins"))
        db.session.commit()


class Scenario:
    def __init__(self, codes: list[str], unknown: list[str]):
        self.codes, self.unknown, self.i = codes, unknown, 0

    def take(self, n: int) -> list[str]:
        out = self.codes[self.i:self.i + n]
        self.i += n
        return out


def post(client, code: str, token: str, nonce: str | None = None):
    body = {"code": code, "gate": "door-1", **({"nonce": nonce} if nonce else {})}
    return client.post("/api/v1/checkins", json=body, headers={"Authorization": f"Bearer {token}"})


def hook_timer(app) -> Counter:
    """Wrap every before/after-request and teardown function; returns the counter the wrappers add to."""
    spent: Counter = Counter()

    def wrap(name, fn):
        def inner(*a, **kw):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t
                spent["cpu " + name] += time.process_time() - c
        return inner

    for registry in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs",
                     "teardown_appcontext_funcs"):
        funcs = getattr(app, registry)
        items = funcs.items() if isinstance(funcs, dict) else [(None, funcs)]
        for bp, fns in items:
            for i, fn in enumerate(fns):
                name = f"{registry.split('_')[0]}[{bp or 'app'}] {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
                fns[i] = wrap(name, fn)
    return spent


def measure(app, codes, token, n_warm=20):
    client = app.test_client()
    for c in codes[:n_warm]:
        post(client, c, token)
    walls, cpus = [], []
    for c in codes[n_warm:]:
        t, p = time.perf_counter(), time.process_time()
        post(client, c, token)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - p)
    return statistics.median(walls) * 1000, statistics.mean(cpus) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pyinstrument", help="folder where pyinstrument is importable (pip install --target)")
    a = ap.parse_args()
    token = ENV["CODT_TOKEN"]
    all_codes = (OUT / "codes.txt").read_text().split()
    unknown = (OUT / "unknown.txt").read_text().split()
    pool = list(reversed(all_codes))  # the benchmark's runs use the file from the top
    app = make_app()
    reset(app)

    # 1. Statements of one request per scenario.
    client = app.test_client()
    post(client, pool.pop(), token)  # warm up: the first request of a process loads mappers, opens the pool
    first_code, nonce_code = pool.pop(0), pool.pop(0)
    print("== Database round trips of one request (DBAPI level)")
    for label, code, nonce in (("first scan", first_code, None), ("repeat scan", first_code, None),
                               ("unknown code", unknown[0], None), ("first scan with a nonce", nonce_code, "p-1"),
                               ("retry of that nonce", nonce_code, "p-1")):
        STATEMENTS.clear()
        resp = post(client, code, token, nonce)
        print(f"-- {label}: HTTP {resp.status_code}, {len(STATEMENTS)} round trips, "
              f"{sum(t for _, t in STATEMENTS) * 1000:.2f} ms in them")
        for stmt, t in STATEMENTS:
            print(f"   {t * 1000:6.2f} ms  {stmt}")
    print("   response headers:", dict(resp.headers))

    # 2. Per-request time, and the hooks' share.
    n = a.n
    reset(app)
    print(f"\n== Per request, single-threaded, {n} requests each "
          f"(median wall ms, mean CPU ms of this process, test client included)")
    spent = hook_timer(app)
    firsts = pool[:n + 20]
    del pool[:n + 20]
    for label, codes in (("first", firsts), ("repeat", firsts), ("unknown", unknown[1:n + 21])):
        spent.clear()
        STATEMENTS.clear()
        wall, cpu = measure(app, codes, token)
        db_ms = sum(t for _, t in STATEMENTS) / len(codes) * 1000
        hooks = sorted(((k, v) for k, v in spent.items() if not k.startswith("cpu ")), key=lambda kv: -kv[1])
        print(f"-- {label}: wall {wall:.2f} ms, CPU {cpu:.2f} ms, {len(STATEMENTS) / len(codes):.1f} round trips "
              f"taking {db_ms:.2f} ms (wall); hooks over 0.01 ms, wall / CPU ms per request:")
        for name, t in hooks:
            if t / len(codes) > 1e-5:
                print(f"   {t / len(codes) * 1000:6.3f} / {spent['cpu ' + name] / len(codes) * 1000:6.3f}  {name}")

    # 3. Variants of configuration.
    print("\n== Variants (first scans, median wall ms / mean CPU ms; 4 interleaved rounds, medians)")
    variants = {
        "as configured": {},
        "pool_pre_ping back on": {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}},
        "limiter off altogether": {"RATELIMIT_ENABLED": False},
    }
    apps = {label: make_app(**overrides) for label, overrides in variants.items()}
    got = {label: [] for label in variants}
    per = max(40, n // 4)
    for _round in range(4):  # interleaved, so that a noisy moment hits every variant
        for label, v_app in apps.items():
            codes = pool[:per + 20]
            del pool[:per + 20]
            got[label].append(measure(v_app, codes, token))
    for label, vals in got.items():
        print(f"   {label:36s} {statistics.median(v[0] for v in vals):6.2f} / "
              f"{statistics.median(v[1] for v in vals):5.2f}")
    for v_app in apps.values():
        with v_app.app_context():
            db.engine.dispose()

    # 4. Profile of the first-scan path: CPU by package (self time), then the call tree's biggest items.
    client = app.test_client()
    codes = pool[:n]
    del pool[:n]
    if a.pyinstrument:
        sys.path.insert(0, a.pyinstrument)
        from pyinstrument import Profiler
        prof = Profiler(interval=0.0002)
        prof.start()
        for c in codes:
            post(client, c, token)
        prof.stop()
        print(f"\n== pyinstrument, {n} first scans")
        print(prof.output_text(unicode=True, color=False))
    else:
        pr = cProfile.Profile(time.process_time)  # CPU time, not wall: what the CPU target is about
        pr.enable()
        for c in codes:
            post(client, c, token)
        pr.disable()
        by_pkg: Counter = Counter()
        for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in pstats.Stats(pr).stats.items():
            by_pkg[_package(filename, func)] += tt
        total = sum(by_pkg.values())
        print(f"\n== cProfile (CPU time, profiler overhead included: compare shares, not ms), "
              f"{n} first scans: self time by package")
        for pkg, tt in by_pkg.most_common(16):
            print(f"   {100 * tt / total:5.1f}%  {pkg}")
        s_io = io.StringIO()
        pstats.Stats(pr, stream=s_io).sort_stats("cumulative").print_stats(r"registration|flask_|flask/", 40)
        print(s_io.getvalue())
    reset(app)


if __name__ == "__main__":
    main()
