#!/usr/bin/env python3
"""The public pages under load: landing page, program, a personal page, beside a static file of the same server.

    .venv/bin/python bench/pages.py [--reps 3] [--duration 10] [--concurrency 16]

One gunicorn of our app (deploy/gunicorn.conf.py, WORKERS=2, APP_ENV=production, Redis limits, registration open
around the real clock, as in bench/registration_burst.py) on PostgreSQL: a copy of the burst's template database
(event, 49-session program; bench/registration_burst.py builds it, or this script does) with 2,000 generated
registrants (`demo-data`). The shared load generator (../shared/bench/loadgen.py, asyncio + uvloop, keep-alive
where the server allows) GETs each URL for --duration seconds at --concurrency connections, alternately:
static, /, /program, /me/<secret> (one confirmed registrant with sessions), static, ... --reps times. Reports the
median over the repetitions of req/s, p50 and p99, each page's ratio to the static file measured in the same
minutes, and app CPU per request. Writes bench/pages.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import ROOT, Server  # noqa: E402
from httpload import CPUMeter, loadavg  # noqa: E402

DB, PORT = "h4_pages", 8330
LOADGEN = ROOT.parent / "shared" / "bench" / "loadgen.py"
REGISTRANTS = 2000
CAPACITY = 1000


def prepare() -> str:
    """The database, with registrants; the secret of a confirmed registrant who watches sessions."""
    from registration_burst import TEMPLATE_DB, build_template
    exists = benchlib.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,))
    if not exists:
        build_template(CAPACITY)
    benchlib.recreate_database(DB, TEMPLATE_DB)
    # demo-data refuses production settings (it writes fake people): it runs with the development configuration.
    env = benchlib.app_env(DB, port=PORT, redis_prefix="h4-pages-setup-", CLOSING_CAPACITY=str(CAPACITY))
    env.pop("APP_ENV")
    benchlib.flask(env, "demo-data", "--registrants", str(REGISTRANTS), "--no-check")
    subprocess.run(["psql", "-qd", DB, "-c", "VACUUM ANALYZE"], check=True)
    rows = benchlib.query(DB, "SELECT r.secret FROM registrants r JOIN viewing_signups v ON v.registrant_id = r.id "
                              "WHERE r.seat_status = 'confirmed' AND r.cancelled_at IS NULL "
                              "GROUP BY r.id, r.secret ORDER BY count(*) DESC, r.id LIMIT 1")
    if not rows:
        rows = benchlib.query(DB, "SELECT secret FROM registrants WHERE cancelled_at IS NULL ORDER BY id LIMIT 1")
    return rows[0][0]


def run_loadgen(url: str, label: str, duration: float, concurrency: int, codes: Path, out: Path) -> dict:
    """One run of the shared load generator: GET `url` for `duration` seconds; its JSON summary."""
    subprocess.run([str(benchlib.BENCH_VENV / "python"), str(LOADGEN), "--url", url, "--method", "GET",
                    "--codes", str(codes), "--order", "cycle", "--concurrency", str(concurrency),
                    "--duration", str(duration), "--classify", "ok=^200 ", "--label", label, "--json", str(out),
                    # The load generator says JSON unless told otherwise, and the app refuses JSON outside /api/ (415).
                    "--header", "Content-Type: text/plain", "--header", "Accept-Language: ja"],
                   check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "bench" / "pages.json"))
    a = ap.parse_args()
    benchlib.ensure_bench_venv()
    started = benchlib.utc_now()
    secret = prepare()
    prefix = benchlib.fresh_redis_prefix("pages")
    env = benchlib.app_env(DB, port=PORT, redis_prefix=prefix, CLOSING_CAPACITY=str(CAPACITY))
    cmd, how = benchlib.app_gunicorn_command(PORT)
    server = Server(cmd, env=env, cwd=ROOT, port=PORT, log=Path("/tmp/h4-bench-logs/pages.log"),
                    ready_path="/static/style.css")
    pages = [("static /static/style.css", "/static/style.css"), ("landing /", "/"), ("program /program", "/program"),
             ("personal /me/<secret>", f"/me/{secret}")]
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            codes = Path(tmp) / "codes.txt"
            codes.write_text("page\n")  # one dummy line: the load generator cycles it; a GET sends no body
            for label, path in pages:  # warm-up: templates compiled, connections made; and every page answers 200
                warm = run_loadgen(f"http://127.0.0.1:{PORT}{path}", label, 2, a.concurrency, codes,
                                   Path(tmp) / "w.json")
                if warm["classes"].keys() != {"ok"}:
                    sys.exit(f"{label} did not answer 200 only: {warm['classes']}")
            for rep in range(1, a.reps + 1):
                for label, path in pages:
                    load = loadavg()
                    meter = CPUMeter(masters=[server.process.pid])
                    summary = run_loadgen(f"http://127.0.0.1:{PORT}{path}", label, a.duration, a.concurrency, codes,
                                          Path(tmp) / "r.json")
                    cpu = meter.stop()
                    answered = summary["answered"]
                    runs.append({"page": label, "rep": rep, "req_per_s": summary["throughput_rps"],
                                 "p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"], "p99_ms": summary["p99_ms"],
                                 "answered": answered, "classes": summary["classes"], "errors": summary["errors"],
                                 "app_cpu_ms_per_req": round(1000 * cpu["server_cpu_s"] / max(1, answered), 2),
                                 "loadgen_cpu_pct_of_core": summary["loadgen_cpu_pct_of_one_core"],
                                 "machine_busy_pct": summary["machine_cpu_busy_pct"], "loadavg": load})
                    print(f"rep {rep} {label}: {summary['throughput_rps']} req/s, p50 {summary['p50_ms']} "
                          f"p99 {summary['p99_ms']} ms, classes {summary['classes']}", flush=True)
    finally:
        server.stop()
        benchlib.drop_redis_prefix(prefix)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["page"] == label)

    static = pages[0][0]
    rows = []
    lines = ["| page | req/s | p50 ms | p99 ms | req/s vs static | p50 vs static | p99 vs static | app CPU ms/req | "
             "errors |", "|---|---|---|---|---|---|---|---|---|"]
    for label, _ in pages:
        row = {"page": label, **{k: med(label, k) for k in ("req_per_s", "p50_ms", "p99_ms", "app_cpu_ms_per_req")},
               "errors": sum(r["errors"] for r in runs if r["page"] == label)}
        row["req_per_s_vs_static"] = round(row["req_per_s"] / med(static, "req_per_s"), 3)
        row["p50_vs_static"] = round(row["p50_ms"] / med(static, "p50_ms"), 2)
        row["p99_vs_static"] = round(row["p99_ms"] / med(static, "p99_ms"), 2)
        rows.append(row)
        lines.append(f"| {label} | {row['req_per_s']:.0f} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['req_per_s_vs_static']:.2f}x | {row['p50_vs_static']:.1f}x | {row['p99_vs_static']:.1f}x | "
                     f"{row['app_cpu_ms_per_req']} | {row['errors']} |")
    result = {"benchmark": "pages", "started": started, "finished": benchlib.utc_now(), "machine": benchlib.cpu_model(),
              "gunicorn": how, "concurrency": a.concurrency, "duration_s": a.duration, "reps": a.reps,
              "registrants": REGISTRANTS, "medians": rows, "runs": runs}
    benchlib.write_result(Path(a.out), result)
    print()
    print("\n".join(lines))
    print(f"\nmedians of {a.reps} alternating repetitions of {a.duration:.0f} s at {a.concurrency} connections; "
          f"gunicorn: {how}; written to {a.out}")


if __name__ == "__main__":
    main()
