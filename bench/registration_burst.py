#!/usr/bin/env python3
"""The opening-day burst: 5,000 registrations through the real form, beside the bare ceiling's inserts.

    .venv/bin/python bench/registration_burst.py [--registrations 5000] [--concurrency 32] [--rounds 2]

Our app: PostgreSQL (a fresh copy of a migrated database with the event and the 49-session program per round),
gunicorn with deploy/gunicorn.conf.py and WORKERS=2, APP_ENV=production (SECRET_KEY, rate limits in Redis under a
fresh key prefix, PROXY_COUNT=1 as behind one nginx), the registration window open around the real clock
(REGISTRATION_OPENS_AT/REGISTRATION_DEADLINE: production refuses a rehearsal clock), CLOSING_CAPACITY=1000.
Each of --concurrency clients is a browser: for each person it forgets its cookies, GETs /register, takes the
CSRF token from the form and the session cookie from the answer, and POSTs the form; 303 to the welcome page is a
registration. Every person comes from a different address (X-Forwarded-For, as nginx would pass it), so the
per-address limits see 5,000 people, not one client. The mix: 70% Japanese and 30% English pages, 40% ask for a
closing-event seat (2,000 for 1,000 seats: seats, then a waiting list), half choose 1-3 sessions to watch, some
without a job title or kana.

Baseline, in the same minutes (A B A B): bench/ceiling_insert/app.py (the shared bare ceiling plus POST /register:
one INSERT of name and address, unique address, 201/409), gunicorn -w 2 on its own database, driven by the same
client code at the same concurrency (one POST per person: it has no form to fetch).

Afterwards, per round of ours: zero 5xx; exactly one registration per address sent (none lost, none doubled), each
the one its 303 pointed to; one confirmation mail in the outbox per registration; seats and waiting list as asked.
Then, apart from the rounds, CPU per request: 1,000 GETs of the form alone, then 1,000 whole registrations, on a
fresh server; POST = registration - GET. Prints a Markdown table; writes bench/registration_burst.json.
"""

import argparse
import asyncio
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import ROOT, Server  # noqa: E402
from httpload import CSRF_TOKEN, Browser, CPUMeter, install_uvloop, latency_ms, loadavg, process_cpu  # noqa: E402

TEMPLATE_DB, APP_DB, CEILING_DB = "h4_burst_template", "h4_burst", "h4_ceiling_insert"
APP_PORT, CEILING_PORT = 8310, 8320
CAPACITY = 1000
LOGS = Path("/tmp/h4-bench-logs")
SESSION_KEY = re.compile(rb'name="sessions" value="([^"]+)"')
WELCOME = re.compile(r"/me/([^/]+)/welcome$")

FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
          ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ")]
GIVEN = [("太郎", "タロウ"), ("花子", "ハナコ"), ("健", "ケン"), ("陽菜", "ヒナ"), ("翔", "ショウ"), ("結衣", "ユイ"),
         ("大輔", "ダイスケ"), ("美咲", "ミサキ")]
ORGS = ["株式会社クラウド運用", "Example Systems K.K.", "オダイバ・テック合同会社", "Northwind Cloud", "個人"]
TITLES = ["SRE", "インフラエンジニア", "Platform Engineer", "CTO", ""]


def person(i: int, rng: random.Random) -> dict:
    """The i-th person of the burst: what they type and tick."""
    family, family_kana = rng.choice(FAMILY)
    given, given_kana = rng.choice(GIVEN)
    with_kana = rng.random() < 0.9
    return {
        "email": f"burst.{i:05d}@example.com", "address": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
        "locale": "ja" if rng.random() < 0.7 else "en",
        "fields": [("family_name", family), ("given_name", given),
                   ("family_name_kana", family_kana if with_kana else ""),
                   ("given_name_kana", given_kana if with_kana else ""),
                   ("organization", rng.choice(ORGS)), ("job_title", rng.choice(TITLES))],
        "closing": rng.random() < 0.4,
        "sessions": rng.randint(1, 3) if rng.random() < 0.5 else 0,
        "pick": rng.random(),
    }


class Tally:
    """What one run saw: latencies per request kind, status counts, the registrations answered."""

    def __init__(self) -> None:
        self.get, self.post = [], []
        self.statuses: dict[str, int] = {}
        self.errors: list[str] = []
        self.secrets: dict[str, str] = {}  # email -> personal-link secret from the 303
        self.sessions_chosen = 0
        self.started = self.ended = 0.0

    def count(self, kind: str, status) -> None:
        key = f"{kind} {status}"
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def fives(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.split()[1].startswith("5"))


async def register_through_form(browser: Browser, p: dict, tally: Tally) -> None:
    """One person: GET the form (new session), POST it with its CSRF token."""
    browser.forget()
    headers = {"X-Forwarded-For": p["address"], "Accept-Language": p["locale"]}
    got = await browser.request("GET", "/register", headers=headers)
    tally.count("GET", got.status)
    if got.status is None:
        tally.errors.append(got.error)
        return
    tally.get.append(got.seconds)
    token = CSRF_TOKEN.search(got.body)
    if got.status != 200 or token is None:
        tally.errors.append(f"GET /register {got.status} without a form")
        return
    fields = [("csrf_token", token.group(1).decode()), ("email", p["email"]), ("locale", p["locale"]), *p["fields"],
              ("consent", "y")]
    if p["closing"]:
        fields.append(("attend_closing", "y"))
    offered = SESSION_KEY.findall(got.body)
    if p["sessions"] and offered:
        start = int(p["pick"] * len(offered))
        chosen = [offered[(start + k) % len(offered)].decode() for k in range(p["sessions"])]
        fields += [("sessions", key) for key in chosen]
        tally.sessions_chosen += len(chosen)
    body = urlencode(fields).encode()
    answer = await browser.request("POST", "/register", body=body, headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{browser.port}",
        "Referer": f"http://127.0.0.1:{browser.port}/register"})
    tally.count("POST", answer.status)
    if answer.status is None:
        tally.errors.append(answer.error)
        return
    tally.post.append(answer.seconds)
    match = WELCOME.search(answer.header("location") or "")
    if answer.status == 303 and match:
        tally.secrets[p["email"]] = match.group(1)
    elif len(tally.errors) < 20:
        tally.errors.append(f"POST /register {answer.status}: {answer.body[:200]!r}")


async def insert_into_ceiling(browser: Browser, p: dict, tally: Tally) -> None:
    """One person at the ceiling: POST name and address."""
    body = urlencode([("name", dict(p["fields"])["family_name"] + " " + dict(p["fields"])["given_name"]),
                      ("email", p["email"])]).encode()
    answer = await browser.request("POST", "/register", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": p["address"]})
    tally.count("POST", answer.status)
    if answer.status is None:
        tally.errors.append(answer.error)
        return
    tally.post.append(answer.seconds)
    if answer.status == 201:
        tally.secrets[p["email"]] = "ok"
    elif len(tally.errors) < 20:
        tally.errors.append(f"POST /register {answer.status}: {answer.body[:200]!r}")


async def drive(port: int, people: list[dict], concurrency: int, flow) -> Tally:
    """`concurrency` browsers take the next person from one shared list until it is empty."""
    tally = Tally()
    queue = iter(people)
    browsers = [Browser("127.0.0.1", port) for _ in range(concurrency)]

    async def client(browser: Browser) -> None:
        for p in queue:
            await flow(browser, p, tally)
        browser.close()

    tally.started = time.perf_counter()
    await asyncio.gather(*(client(b) for b in browsers))
    tally.ended = time.perf_counter()
    return tally


def pg_backends(db_name: str) -> list[int]:
    """The PostgreSQL backends serving a database (the app's pool), this query's own left out."""
    return [r[0] for r in benchlib.query(db_name, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                                                  "pid <> pg_backend_pid()", (db_name,))]


def build_template(capacity: int) -> None:
    """The migrated database with the event and the program, copied for every round of ours."""
    benchlib.recreate_database(TEMPLATE_DB)
    env = benchlib.app_env(TEMPLATE_DB, port=APP_PORT, redis_prefix="h4-setup-", CLOSING_CAPACITY=str(capacity))
    benchlib.flask(env, "db", "upgrade")
    benchlib.flask(env, "event", "load")
    benchlib.flask(env, "program", "import", str(benchlib.PROGRAM))
    subprocess.run(["psql", "-qd", TEMPLATE_DB, "-c", "VACUUM ANALYZE"], check=True)


def start_ours(capacity: int, tag: str) -> tuple[Server, str, str]:
    """A fresh copy of the database and our app on it; (server, redis prefix, how gunicorn was configured)."""
    benchlib.recreate_database(APP_DB, TEMPLATE_DB)
    prefix = benchlib.fresh_redis_prefix("burst")
    env = benchlib.app_env(APP_DB, port=APP_PORT, redis_prefix=prefix, CLOSING_CAPACITY=str(capacity))
    cmd, how = benchlib.app_gunicorn_command(APP_PORT)
    server = Server(cmd, env=env, cwd=ROOT, port=APP_PORT, log=LOGS / f"burst-ours-{tag}.log",
                    ready_path="/static/style.css")
    return server, prefix, how


def start_ceiling(tag: str) -> Server:
    """The ceiling's registrations table emptied, and the ceiling on it."""
    here = ROOT / "bench" / "ceiling_insert"
    env = {"CEILING_DB": f"postgresql+psycopg2:///{CEILING_DB}", "PATH": "/usr/bin:/bin"}
    subprocess.run([str(benchlib.BENCH_VENV / "python"), "app.py", "create-registrations"], cwd=here, env=env,
                   check=True, capture_output=True)
    subprocess.run(["psql", "-qd", CEILING_DB, "-c", "VACUUM ANALYZE"], check=True)
    cmd = [str(benchlib.BENCH_VENV / "gunicorn"), "app:app", "-w", str(benchlib.WORKERS), "-b",
           f"127.0.0.1:{CEILING_PORT}", "--no-control-socket"]
    return Server(cmd, env=env, cwd=here, port=CEILING_PORT, log=LOGS / f"burst-ceiling-{tag}.log",
                  ready_path="/register", ready_status=405)


def measure(server: Server, db_name: str, people: list[dict], concurrency: int, flow) -> tuple[Tally, dict]:
    """Run the burst against a started server; the tally and the CPU seconds of client, app and PostgreSQL."""
    before = {pid: process_cpu(pid) for pid in pg_backends(db_name)}
    load_before = loadavg()
    meter = CPUMeter(masters=[server.process.pid])
    tally = asyncio.run(drive(server.port, people, concurrency, flow))
    cpu = meter.stop()
    cpu["pg_cpu_s"] = sum(process_cpu(pid) - before.get(pid, 0.0) for pid in pg_backends(db_name))
    cpu["loadavg_before"], cpu["loadavg_after"] = load_before, loadavg()
    return tally, cpu


def check_ours(people: list[dict], tally: Tally, capacity: int) -> dict:
    """What the database holds after a round, against what was sent and answered."""
    rows = benchlib.query(APP_DB, "SELECT email_key, secret, attend_closing, seat_status FROM registrants")
    by_email: dict[str, list] = {}
    for email, secret, closing, status in rows:
        by_email.setdefault(email, []).append((secret, closing, status))
    sent = {p["email"] for p in people}
    asked = sum(1 for p in people if p["closing"])
    mail = dict(benchlib.query(APP_DB, "SELECT r.id, count(o.id) FROM registrants r LEFT JOIN outbox o ON "
                                       "o.registrant_id = r.id GROUP BY r.id"))
    statuses = [r[3] for r in rows]
    counter = benchlib.query(APP_DB, "SELECT taken, capacity FROM seat_counters")[0]
    signups = benchlib.query(APP_DB, "SELECT count(*) FROM viewing_signups WHERE withdrawn_at IS NULL")[0][0]
    outbox_total = benchlib.query(APP_DB, "SELECT count(*) FROM outbox")[0][0]
    link_requests = benchlib.query(APP_DB, "SELECT count(*) FROM link_requests")[0][0]
    result = {
        "registrations_in_db": len(rows),
        "addresses_sent": len(sent),
        "lost": len(sent - set(by_email)),
        "doubled": sum(1 for v in by_email.values() if len(v) > 1),
        "strangers": len(set(by_email) - sent),
        "answered_303": len(tally.secrets),
        "answer_points_to_its_registration": sum(1 for e, s in tally.secrets.items()
                                                  if by_email.get(e) and by_email[e][0][0] == s),
        "outbox_messages": outbox_total,
        "registrations_with_exactly_one_mail": sum(1 for n in mail.values() if n == 1),
        "link_requests": link_requests,
        "closing_asked": asked,
        "seats_confirmed": statuses.count("confirmed"),
        "waitlisted": statuses.count("waitlisted"),
        "seat_counter_taken": counter[0], "capacity": counter[1],
        "sessions_chosen": tally.sessions_chosen, "signups_in_db": signups,
    }
    n = len(people)
    result["exact"] = (result["registrations_in_db"] == n and result["lost"] == 0 and result["doubled"] == 0
                       and result["strangers"] == 0 and result["answered_303"] == n
                       and result["answer_points_to_its_registration"] == n and result["outbox_messages"] == n
                       and result["registrations_with_exactly_one_mail"] == n
                       and result["seats_confirmed"] == min(capacity, asked) == result["seat_counter_taken"]
                       and result["waitlisted"] == asked - min(capacity, asked)
                       and result["sessions_chosen"] == signups)
    return result


def check_ceiling(people: list[dict]) -> dict:
    """The ceiling's table after a round."""
    total, distinct = benchlib.query(CEILING_DB, "SELECT count(*), count(DISTINCT email) FROM registrations")[0]
    n = len(people)
    return {"registrations_in_db": total, "distinct_addresses": distinct, "exact": total == distinct == n}


def summarise(system: str, rnd: int, people: list[dict], tally: Tally, cpu: dict, check: dict) -> dict:
    """One run's figures."""
    elapsed = tally.ended - tally.started
    done = len(tally.secrets)
    return {
        "system": system, "round": rnd, "people": len(people), "registered": done,
        "elapsed_s": round(elapsed, 2), "registrations_per_s": round(done / elapsed, 1),
        "requests_per_s": round((len(tally.get) + len(tally.post)) / elapsed, 1),
        "get": latency_ms(tally.get), "post": latency_ms(tally.post),
        "statuses": tally.statuses, "5xx": tally.fives(), "transport_errors": sum(
            n for k, n in tally.statuses.items() if k.endswith(" None")),
        "error_samples": tally.errors[:5],
        "client_cpu_pct_of_core": round(100 * cpu["client_cpu_s"] / elapsed, 1),
        "app_cpu_ms_per_registration": round(1000 * cpu["server_cpu_s"] / max(1, done), 2),
        "pg_cpu_ms_per_registration": round(1000 * cpu["pg_cpu_s"] / max(1, done), 2),
        "client_cpu_ms_per_registration": round(1000 * cpu["client_cpu_s"] / max(1, done), 2),
        "machine_busy_pct": cpu["machine_busy_pct"], "loadavg_before": cpu["loadavg_before"],
        "loadavg_after": cpu["loadavg_after"], "check": check,
    }


async def gets_only(port: int, people: list[dict], concurrency: int) -> Tally:
    """GET the form as a new visitor each time (what the GET half of a registration costs)."""
    async def flow(browser: Browser, p: dict, tally: Tally) -> None:
        browser.forget()
        got = await browser.request("GET", "/register", headers={"X-Forwarded-For": p["address"],
                                                                 "Accept-Language": p["locale"]})
        tally.count("GET", got.status)
        if got.status is not None:
            tally.get.append(got.seconds)
            tally.secrets[p["email"]] = "got"
    return await drive(port, people, concurrency, flow)


def split_cpu(people: list[dict], concurrency: int, capacity: int) -> dict:
    """App CPU per GET of the form and per POST, on a fresh server: 1,000 GETs alone, then 1,000 registrations."""
    server, prefix, _ = start_ours(capacity, "split")
    try:
        sample = people[:1000]
        meter = CPUMeter(masters=[server.process.pid])
        tally_get = asyncio.run(gets_only(server.port, sample, concurrency))
        get_cpu = meter.stop()
        meter = CPUMeter(masters=[server.process.pid])
        tally_reg = asyncio.run(drive(server.port, sample, concurrency, register_through_form))
        reg_cpu = meter.stop()
    finally:
        server.stop()
        benchlib.drop_redis_prefix(prefix)
    get_ms = 1000 * get_cpu["server_cpu_s"] / max(1, len(tally_get.get))
    reg_ms = 1000 * reg_cpu["server_cpu_s"] / max(1, len(tally_reg.secrets))
    return {"get_cpu_ms": round(get_ms, 2), "registration_cpu_ms": round(reg_ms, 2),
            "post_cpu_ms": round(reg_ms - get_ms, 2), "gets": len(tally_get.get),
            "registrations": len(tally_reg.secrets),
            "client_cpu_ms_per_get": round(1000 * get_cpu["client_cpu_s"] / max(1, len(tally_get.get)), 2)}


def table(runs: list[dict]) -> str:
    """The Markdown table of every run."""
    lines = ["| system | round | registered | reg/s | GET p50 / p95 / p99 ms | POST p50 / p95 / p99 ms | 5xx | "
             "exact | app CPU ms/reg | PG CPU ms/reg | client CPU % of a core | machine busy % | load before |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        g, p = r["get"], r["post"]
        get = "-" if g["p50_ms"] is None else f"{g['p50_ms']} / {g['p95_ms']} / {g['p99_ms']}"
        lines.append(f"| {r['system']} | {r['round']} | {r['registered']} | {r['registrations_per_s']} | {get} | "
                     f"{p['p50_ms']} / {p['p95_ms']} / {p['p99_ms']} | {r['5xx']} | "
                     f"{'yes' if r['check']['exact'] else 'NO'} | {r['app_cpu_ms_per_registration']} | "
                     f"{r['pg_cpu_ms_per_registration']} | {r['client_cpu_pct_of_core']} | {r['machine_busy_pct']} | "
                     f"{r['loadavg_before']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registrations", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of ours and of the ceiling, alternately")
    ap.add_argument("--capacity", type=int, default=CAPACITY, help="closing-event seats")
    ap.add_argument("--target", type=float, default=0.5, help="ours / ceiling registrations per second")
    ap.add_argument("--no-split", action="store_true", help="skip the CPU-per-request measurement")
    ap.add_argument("--out", default=str(ROOT / "bench" / "registration_burst.json"))
    a = ap.parse_args()
    loop = install_uvloop()
    LOGS.mkdir(parents=True, exist_ok=True)
    benchlib.ensure_bench_venv()
    rng = random.Random(2023)
    people = [person(i, rng) for i in range(a.registrations)]
    started = benchlib.utc_now()
    print(f"{started}: building {TEMPLATE_DB} and {CEILING_DB}; load {loadavg()}", flush=True)
    build_template(a.capacity)
    benchlib.recreate_database(CEILING_DB)

    runs, how = [], ""
    for rnd in range(1, a.rounds + 1):
        server, prefix, how = start_ours(a.capacity, str(rnd))
        try:
            tally, cpu = measure(server, APP_DB, people, a.concurrency, register_through_form)
        finally:
            server.stop()
            benchlib.drop_redis_prefix(prefix)
        runs.append(summarise("ours", rnd, people, tally, cpu, check_ours(people, tally, a.capacity)))
        print(f"ours round {rnd}: {runs[-1]['registrations_per_s']} reg/s, exact {runs[-1]['check']['exact']}, "
              f"5xx {runs[-1]['5xx']}", flush=True)
        server = start_ceiling(str(rnd))
        try:
            tally, cpu = measure(server, CEILING_DB, people, a.concurrency, insert_into_ceiling)
        finally:
            server.stop()
        runs.append(summarise("ceiling", rnd, people, tally, cpu, check_ceiling(people)))
        print(f"ceiling round {rnd}: {runs[-1]['registrations_per_s']} inserts/s", flush=True)

    split = None if a.no_split else split_cpu(people, a.concurrency, a.capacity)
    ours = [r for r in runs if r["system"] == "ours"]
    ceiling = [r for r in runs if r["system"] == "ceiling"]
    med = lambda rs, key: sorted(r[key] for r in rs)[len(rs) // 2] if len(rs) % 2 else \
        sum(sorted(r[key] for r in rs)[len(rs) // 2 - 1:len(rs) // 2 + 1]) / 2  # noqa: E731
    paired = [o["registrations_per_s"] / c["registrations_per_s"] for o, c in zip(ours, ceiling)]
    ratio = med(ours, "registrations_per_s") / med(ceiling, "registrations_per_s")
    all_exact = all(r["check"]["exact"] and r["5xx"] == 0 and r["transport_errors"] == 0 for r in runs)
    result = {
        "benchmark": "registration_burst", "started": started, "finished": benchlib.utc_now(),
        "machine": benchlib.cpu_model(), "gunicorn": how, "event_loop": loop,
        "registrations": a.registrations, "concurrency": a.concurrency, "capacity": a.capacity,
        "runs": runs, "ratio_median": round(ratio, 3), "ratio_paired": [round(x, 3) for x in paired],
        "target": a.target, "target_met": ratio >= a.target, "all_exact": all_exact, "cpu_split": split,
    }
    benchlib.write_result(Path(a.out), result)
    print()
    print(table(runs))
    print()
    verdict = "met" if ratio >= a.target else "MISSED"
    print(f"ours / ceiling (medians): {ratio:.2f}x registrations per second (paired by round: "
          f"{', '.join(f'{x:.2f}' for x in paired)}); target >= {a.target}x: {verdict}")
    print(f"zero 5xx, none lost or doubled, one mail each, seats as asked, in every run: "
          f"{'yes' if all_exact else 'NO'}")
    if split:
        print(f"app CPU per request (fresh server, {split['gets']} GETs then {split['registrations']} registrations): "
              f"GET /register {split['get_cpu_ms']} ms, POST {split['post_cpu_ms']} ms, "
              f"whole registration {split['registration_cpu_ms']} ms")
    print(f"gunicorn: {how}; written to {a.out}")


if __name__ == "__main__":
    main()
