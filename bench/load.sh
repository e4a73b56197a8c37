#!/usr/bin/env bash
# The load benchmarks of issue 14 in sequence, each beside its baseline in the same minutes (bench/LOAD.md):
#   bash bench/load.sh
# 1. the opening-day burst (5,000 registrations through the form, 32 clients) against the bare ceiling's inserts,
# 2. landing, program and personal page against a static file of the same gunicorn (16 connections),
# 4. the mail sender (10,000 queued mails to a local aiosmtpd) against plain smtplib.
# 3, the door's check-in API, is bench/run.sh (about 10 minutes each):
#   bash bench/run.sh /tmp/codt-bench-out/c8 && CONCURRENCY=64 bash bench/run.sh /tmp/codt-bench-out/c64
# Options pass through the environment: BURST_ARGS, PAGES_ARGS, MAIL_ARGS (e.g. BURST_ARGS="--rounds 3").
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. registration burst"
.venv/bin/python bench/registration_burst.py ${BURST_ARGS:-}
echo
echo "== 2. pages"
.venv/bin/python bench/pages.py ${PAGES_ARGS:-}
echo
echo "== 4. mail sender"
.venv/bin/python bench/mail_sender.py ${MAIL_ARGS:-}
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "3. the check-in API: bash bench/run.sh OUT (8 connections) and CONCURRENCY=64 bash bench/run.sh OUT"
