#!/usr/bin/env python3
"""The mail sender: 10,000 queued confirmation mails delivered to a local SMTP server, beside plain smtplib.

    .venv/bin/python bench/mail_sender.py [--messages 10000] [--rounds 2] [--interval 0.1] [--rebuild]

Queue (built once into the database h4_mail_template, reused until --rebuild): `demo-data` registrants (names, seats,
waiting list, sessions), then for 10,000 live ones the app's own confirmation mail, written by the registration
service's mail function (`registrations._enqueue_mail(registrant, "registered")`: text and HTML in the person's
language, with the ticket's QR code and calendar entry for those holding a seat), committed to the outbox.

Each round (A B A B), on a fresh copy (h4_mail) and a fresh counting aiosmtpd process (bench/smtp_counter.py, a
separate process on 127.0.0.1:8340):
- ours: `flask --app registration mail send --worker --interval 0.1`, APP_ENV=production, MAIL_URL=smtp://..., until
  the outbox has nothing left to send; messages/s from the worker's start to the last message received;
- baseline: plain smtplib, one connection, sendmail() of the same 10,000 messages (the outbox's own bytes, so the
  same sizes) to the same kind of server.
Checks: the server received every outbox message exactly once (by Message-ID), and the outbox marks all sent, none
failed, each after one attempt. Also, once: how much a worker at the default --interval (2 s) delivers in 20 s (each
round takes at most 100; a full one goes straight on to the next), and what one `mail send` without --worker sends.
Prints a Markdown table; writes bench/mail_sender.json.
"""

import argparse
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import ROOT  # noqa: E402
from httpload import loadavg, process_cpu  # noqa: E402

TEMPLATE_DB, DB, PORT = "h4_mail_template", "h4_mail", 8340
LOGS = Path("/tmp/h4-bench-logs")
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


def build_queue(messages: int) -> None:
    """The template database: registrants, and `messages` confirmation mails queued through the app."""
    from registration_burst import TEMPLATE_DB as BURST_TEMPLATE, build_template
    if not benchlib.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (BURST_TEMPLATE,)):
        build_template(1000)
    benchlib.recreate_database(TEMPLATE_DB, BURST_TEMPLATE)
    env = benchlib.app_env(TEMPLATE_DB, port=PORT, redis_prefix="h4-mail-setup-", CLOSING_CAPACITY="1000")
    env.pop("APP_ENV")  # demo-data refuses production settings
    benchlib.flask(env, "demo-data", "--registrants", str(int(messages * 1.1)), "--no-check")
    os.environ.update(env)
    os.environ.pop("REHEARSAL_CLOCK", None)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import delete, select

    from registration import create_app
    from registration.extensions import db
    from registration.models import OutboxMessage, Registrant
    from registration.services import registrations

    app = create_app()
    with app.app_context():
        db.session.execute(delete(OutboxMessage))
        ids = db.session.scalars(select(Registrant.id).where(Registrant.cancelled_at.is_(None))
                                 .order_by(Registrant.id).limit(messages)).all()
        if len(ids) < messages:
            sys.exit(f"only {len(ids)} live registrants for {messages} messages")
        started = time.perf_counter()
        for start in range(0, len(ids), 250):
            for registrant in db.session.scalars(select(Registrant).where(Registrant.id.in_(ids[start:start + 250]))):
                registrations._enqueue_mail(registrant, "registered")  # noqa: SLF001 - the service's own mail
            db.session.commit()
            db.session.expunge_all()
        print(f"queued {len(ids)} mails in {time.perf_counter() - started:.0f} s", flush=True)
        db.session.remove()
        db.engine.dispose()
    subprocess.run(["psql", "-qd", TEMPLATE_DB, "-c", "VACUUM ANALYZE"], check=True)


class Counter:
    """The counting SMTP server, a process of its own."""

    def __init__(self, tag: str) -> None:
        self.out = LOGS / f"smtp-{tag}.json"
        self.out.unlink(missing_ok=True)
        self.process = subprocess.Popen([str(benchlib.VENV_BIN / "python"), str(ROOT / "bench" / "smtp_counter.py"),
                                         "--port", str(PORT), "--out", str(self.out)], stdout=subprocess.PIPE,
                                        text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP counter did not start")

    def stop(self) -> dict:
        """Stop it; what it counted."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        return json.loads(self.out.read_text())


def sender_env(prefix: str) -> dict:
    """The mail worker's environment: production, real SMTP to the counter."""
    return benchlib.app_env(DB, port=PORT, redis_prefix=prefix, CLOSING_CAPACITY="1000",
                            MAIL_URL=f"smtp://127.0.0.1:{PORT}")


def unsent() -> int:
    return benchlib.query(DB, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")[0][0]


def run_ours(messages: int, interval: float, tag: str) -> dict:
    """The app's worker until the outbox is empty."""
    benchlib.recreate_database(DB, TEMPLATE_DB)
    counter = Counter(f"ours-{tag}")
    load = loadavg()
    log = (LOGS / f"mail-worker-{tag}.log").open("wb")
    started = time.time()
    worker = subprocess.Popen([str(benchlib.VENV_BIN / "flask"), "--app", "registration", "mail", "send", "--worker",
                               "--interval", str(interval)], cwd=ROOT, env=sender_env("h4-mail-"), stdout=log,
                              stderr=log)
    deadline = time.monotonic() + 1200
    while unsent() and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.5)
    cpu = process_cpu(worker.pid)
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    log.close()
    counts = counter.stop()
    return summarise("ours (mail send --worker)", tag, messages, counts, started, cpu, load, check_outbox(counts))


def run_baseline(messages: int, tag: str) -> dict:
    """smtplib, one connection, the outbox's own messages."""
    benchlib.recreate_database(DB, TEMPLATE_DB)
    rows = benchlib.query(DB, "SELECT recipient, message FROM outbox ORDER BY id")
    counter = Counter(f"baseline-{tag}")
    load = loadavg()
    cpu0 = time.process_time()
    started = time.time()
    with smtplib.SMTP("127.0.0.1", PORT, timeout=30) as smtp:
        for recipient, message in rows:
            options = () if recipient.isascii() else ("SMTPUTF8",)
            smtp.sendmail("noreply@cloudopsdays.example", [recipient], bytes(message), mail_options=options)
    cpu = time.process_time() - cpu0
    counts = counter.stop()
    ids = {MESSAGE_ID.search(bytes(m)[:4096]).group(1).decode() for _, m in rows}
    check = {"outbox_ids_received_once": sum(1 for i in ids if i in set(counts["message_ids"])),
             "exact": counts["messages"] == len(rows) == counts["distinct_message_ids"] == messages
             and counts["duplicates"] == 0}
    return summarise("baseline (smtplib, one connection)", tag, messages, counts, started, cpu, load, check)


def check_outbox(counts: dict) -> dict:
    """Every outbox message marked sent once, received once."""
    rows = benchlib.query(DB, "SELECT message, sent_at IS NOT NULL, failed_at IS NOT NULL, attempts FROM outbox")
    ids = [MESSAGE_ID.search(bytes(m)[:4096]).group(1).decode() for m, *_ in rows]
    received = set(counts["message_ids"])
    result = {"outbox": len(rows), "marked_sent": sum(1 for r in rows if r[1]),
              "failed": sum(1 for r in rows if r[2]), "more_than_one_attempt": sum(1 for r in rows if r[3] != 1),
              "received": counts["messages"], "duplicates": counts["duplicates"],
              "outbox_ids_received": sum(1 for i in ids if i in received)}
    result["exact"] = (result["marked_sent"] == result["outbox"] == result["received"] == result["outbox_ids_received"]
                       and result["failed"] == result["duplicates"] == result["more_than_one_attempt"] == 0)
    return result


def summarise(system: str, tag: str, messages: int, counts: dict, started: float, cpu: float, load: str,
              check: dict) -> dict:
    """One run's figures."""
    span = (counts["last"] or started) - started
    flow = (counts["last"] or 0) - (counts["first"] or 0)
    return {"system": system, "round": tag, "messages": counts["messages"],
            "seconds_start_to_last": round(span, 2),
            "messages_per_s": round(counts["messages"] / span, 1) if span else 0,
            "messages_per_s_first_to_last": round(counts["messages"] / flow, 1) if flow else 0,
            "mean_message_bytes": round(counts["bytes"] / max(1, counts["messages"])),
            "sender_cpu_ms_per_message": round(1000 * cpu / max(1, counts["messages"]), 2),
            "loadavg_before": load, "check": check}


def default_interval_probe(seconds: float) -> dict:
    """A worker at the default interval for `seconds`, and one `mail send` without --worker."""
    benchlib.recreate_database(DB, TEMPLATE_DB)
    counter = Counter("probe-worker")
    worker = subprocess.Popen([str(benchlib.VENV_BIN / "flask"), "--app", "registration", "mail", "send", "--worker"],
                              cwd=ROOT, env=sender_env("h4-mail-"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    in_window = counter.stop()["messages"]
    benchlib.recreate_database(DB, TEMPLATE_DB)
    counter = Counter("probe-once")
    started = time.time()
    subprocess.run([str(benchlib.VENV_BIN / "flask"), "--app", "registration", "mail", "send"], cwd=ROOT,
                   env=sender_env("h4-mail-"), check=True, capture_output=True)
    once_seconds = time.time() - started
    once = counter.stop()["messages"]
    return {"default_interval_window_s": seconds, "default_interval_messages": in_window,
            "default_interval_messages_per_s": round(in_window / seconds, 1),
            "once_messages": once, "once_seconds_incl_start": round(once_seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--interval", type=float, default=0.1, help="the worker's --interval between rounds")
    ap.add_argument("--rebuild", action="store_true", help="queue the mails anew")
    ap.add_argument("--no-probe", action="store_true", help="skip the default-interval and once probe")
    ap.add_argument("--out", default=str(ROOT / "bench" / "mail_sender.json"))
    a = ap.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    started = benchlib.utc_now()
    have = benchlib.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,))
    queued = benchlib.query(TEMPLATE_DB, "SELECT count(*) FROM outbox")[0][0] if have else 0
    if a.rebuild or queued != a.messages:
        build_queue(a.messages)
    runs = []
    for rnd in range(1, a.rounds + 1):
        runs.append(run_ours(a.messages, a.interval, str(rnd)))
        print(f"ours round {rnd}: {runs[-1]['messages_per_s']} msg/s, exact {runs[-1]['check']['exact']}", flush=True)
        runs.append(run_baseline(a.messages, str(rnd)))
        print(f"baseline round {rnd}: {runs[-1]['messages_per_s']} msg/s", flush=True)
    probe = None if a.no_probe else default_interval_probe(20)
    ours = sorted(r["messages_per_s"] for r in runs if r["system"].startswith("ours"))
    base = sorted(r["messages_per_s"] for r in runs if r["system"].startswith("baseline"))
    median = lambda v: (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2  # noqa: E731
    ratio = median(ours) / median(base)
    result = {"benchmark": "mail_sender", "started": started, "finished": benchlib.utc_now(),
              "machine": benchlib.cpu_model(), "messages": a.messages, "interval": a.interval, "runs": runs,
              "ratio_median": round(ratio, 3), "all_exact": all(r["check"]["exact"] for r in runs), "probe": probe}
    benchlib.write_result(Path(a.out), result)
    lines = ["| system | round | messages | msg/s (start to last) | msg/s (first to last) | mean bytes | "
             "sender CPU ms/msg | exactly once | load before |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['system']} | {r['round']} | {r['messages']} | {r['messages_per_s']} | "
                     f"{r['messages_per_s_first_to_last']} | {r['mean_message_bytes']} | "
                     f"{r['sender_cpu_ms_per_message']} | {'yes' if r['check']['exact'] else 'NO'} | "
                     f"{r['loadavg_before']} |")
    print()
    print("\n".join(lines))
    print(f"\nours / baseline (medians): {ratio:.2f}x messages per second; every message exactly once and marked "
          f"sent: {'yes' if result['all_exact'] else 'NO'}")
    if probe:
        print(f"a worker at the default --interval 2 delivered {probe['default_interval_messages']} in "
              f"{probe['default_interval_window_s']:.0f} s ({probe['default_interval_messages_per_s']}/s); one "
              f"`mail send` without --worker sent {probe['once_messages']} in {probe['once_seconds_incl_start']} s")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
