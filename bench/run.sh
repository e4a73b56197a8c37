#!/usr/bin/env bash
# The check-in benchmark, our app against the bare Flask ceiling (issue 3, "Speed"), in one command:
#   bash bench/run.sh [OUT [more bench.py options]]
# REPS=3 DURATION=20 CONCURRENCY=8 by default; OUT defaults to /tmp/codt-bench-out/<time>. Examples:
#   REPS=2 bash bench/run.sh /tmp/codt-bench-out/today --max-attempts 2 --quiet-wait 20    # a busy machine
#   CONCURRENCY=64 bash bench/run.sh /tmp/codt-bench-out/c64                                  # 64 connections
# Builds both sides (ceiling_bench + /tmp/bench-venv, codt_bench + /tmp/codt-bench), then runs the shared harness:
# scenarios first, repeat, unknown and race; 2 gunicorn workers per instance; CONCURRENCY connections (default 8);
# A B A B alternation.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
OUT="${1:-/tmp/codt-bench-out/$(date +%Y%m%d-%H%M%S)}"
shift || true
REPS="${REPS:-3}"
DURATION="${DURATION:-20}"
CONCURRENCY="${CONCURRENCY:-8}"

bash "$HARNESS/ceiling/setup.sh"
"$ROOT/.venv/bin/python" "$ROOT/bench/setup.py"
cd "$ROOT"
/tmp/bench-venv/bin/python "$HARNESS/bench.py" --config bench/systems.json --systems codt,ceiling \
    --workers 2 --concurrency "$CONCURRENCY" --reps "$REPS" --duration "$DURATION" --out "$OUT" "$@"
echo
echo "== $OUT/summary.md ($CONCURRENCY connections, $REPS x $DURATION s; load $(cut -d" " -f1-3 /proc/loadavg))"
cat "$OUT/summary.md"
/tmp/bench-venv/bin/python bench/report.py "$OUT"
