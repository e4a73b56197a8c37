#!/usr/bin/env python3
"""Summarise a py-spy raw (collapsed) profile of the gunicorn workers into where a check-in's CPU goes.

  py-spy record -p <gunicorn master> --subprocesses -f raw -o prof.txt -d 15 -r 250 --nonblocking
  python bench/pyspy_summary.py prof.txt

Caveat: py-spy without --idle drops samples of idle threads, but a worker blocked inside psycopg's C code
waiting for PostgreSQL still counts as busy, so this is closer to wall time per request than to CPU: use it to
see the shape of a live request; use bench/profile_checkin.py (CPU-time cProfile) for CPU shares.
Each sample is put in the first bucket whose pattern appears in its stack (innermost match wins for the
"inside" buckets), and a second table shows inclusive shares of interesting frames.
"""
import sys
from collections import Counter

# Inclusive: share of samples whose stack contains the frame (frames may overlap).
INCLUSIVE = [
    ("gunicorn worker (all)", "SyncWorker.handle "),
    ("Flask.wsgi_app (the app, all)", "Flask.wsgi_app"),
    ("  before_request hooks", "Flask.preprocess_request"),
    ("    authenticate (one joined device + staff query)", "authenticate (registration/api/views.py"),
    ("    Flask-Limiter check", "_check_request_limit"),
    ("    CSRFProtect hook", "csrf_protect"),
    ("  view create_checkin", "create_checkin (registration/api/views.py"),
    ("    checkins.check_in", "check_in (registration/services/checkins.py"),
    ("      _find (registrant by code)", "_find (registration/services/checkins.py"),
    ("      _admit (INSERT ... ON CONFLICT, standing check-in)", "_admit (registration/services/checkins.py"),
    ("      attendee_json / _iso", "attendee_json"),
    ("      json.dumps (scan.response)", "dumps (json/__init__.py"),
    ("    session.commit", "commit (registration/api/views.py"),
    ("    jsonify", "jsonify"),
    ("  after_request hooks", "Flask.process_response"),
    ("    Flask-Login remember cookie", "_update_remember_cookie"),
    ("    session save (cookie)", "save_session"),
    ("  teardown (session.remove, limiter)", "Flask.do_teardown"),
    ("SQLAlchemy: statement compile", "compile"),
    ("SQLAlchemy: pool checkout", "_ConnectionFairy._checkout"),
    ("SQLAlchemy: ORM row loading", "loading.py"),
    ("psycopg (driver, incl. waits it spins on)", "psycopg/"),
    ("logging", "logging/__init__.py"),
    ("gunicorn HTTP parsing", "gunicorn/http/"),
    ("gunicorn response write", "gunicorn/http/wsgi.py"),
    ("werkzeug Request/Response objects", "werkzeug/"),
]


def main() -> None:
    stacks: Counter = Counter()
    for line in open(sys.argv[1]):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        frames = stack.split(";")
        # Only worker samples (the master's are not requests).
        if "SyncWorker" not in stack:
            continue
        stacks[";".join(frames[2:])] += int(n)
    total = sum(stacks.values())
    print(f"{total} samples in the workers\n")
    print("| where | share of worker CPU samples |\n|---|---|")
    for label, pat in INCLUSIVE:
        n = sum(c for s, c in stacks.items() if pat in s)
        print(f"| {label} | {100 * n / total:.1f}% |")
    leaf = Counter()
    for s, c in stacks.items():
        leaf[s.split(";")[-1].split(" (")[0] + " (" + s.split(";")[-1].split(" (")[-1]] += c
    print("\nTop leaf frames (self time):")
    for f, c in leaf.most_common(15):
        print(f"  {100 * c / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
