#!/usr/bin/env python3
"""Our app against the ceiling and the issue's targets, from a bench.py output folder.

  python bench/report.py OUT [--system codt] [--ceiling ceiling]

Targets (issue 3, "Speed"), in the same run: throughput >= 0.8 x the ceiling's, p99 <= 1.25 x the ceiling's,
app CPU per check-in <= 1.3 x the ceiling's. Ratios are of the medians over the repetitions; the paired
column is the median of per-repetition ratios (runs taken back to back). Writes OUT/targets.md and prints it.
"""
import argparse
import json
import os
import statistics

TARGETS = {"throughput": 0.8, "p99": 1.25, "cpu": 1.3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--system", default="codt")
    ap.add_argument("--ceiling", default="ceiling")
    a = ap.parse_args()
    results = json.load(open(os.path.join(a.out, "results.json")))
    for r in results:
        tp = r["throughput_rps"]
        r["app_ms"] = 10 * r["cpu_app_pct_of_core"] / tp if tp else None

    def runs(system, scenario):
        return [r for r in results if r["system"] == system and r["scenario"] == scenario]

    def med(rs, key):
        v = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(v) if v else None

    lines = [f"## {a.system} against {a.ceiling} (targets: throughput >= {TARGETS['throughput']}x, "
             f"p99 <= {TARGETS['p99']}x, app CPU/req <= {TARGETS['cpu']}x)", "",
             "| scenario | req/s ours / ceiling | ratio (paired) | p99 ms ours / ceiling | ratio | "
             "app CPU ms/req ours / ceiling | ratio | targets met |",
             "|---|---|---|---|---|---|---|---|"]
    scenarios = [s for s in dict.fromkeys(r["scenario"] for r in results) if s != "race"]
    for sc in scenarios:
        ours, ceil = runs(a.system, sc), runs(a.ceiling, sc)
        if not ours or not ceil:
            continue
        tp_o, tp_c = med(ours, "throughput_rps"), med(ceil, "throughput_rps")
        p99_o, p99_c = med(ours, "p99_ms"), med(ceil, "p99_ms")
        cpu_o, cpu_c = med(ours, "app_ms"), med(ceil, "app_ms")
        by_rep = {(r["system"], r["rep"]): r["throughput_rps"] for r in ours + ceil}
        paired = [by_rep[(a.system, rep)] / by_rep[(a.ceiling, rep)]
                  for (s, rep) in by_rep if s == a.system and (a.ceiling, rep) in by_rep]
        r_tp, r_p99, r_cpu = tp_o / tp_c, p99_o / p99_c, cpu_o / cpu_c
        met = [r_tp >= TARGETS["throughput"], r_p99 <= TARGETS["p99"], r_cpu <= TARGETS["cpu"]]
        verdict = "yes" if all(met) else "no (" + ", ".join(
            n for n, m in zip(("throughput", "p99", "CPU"), met) if not m) + ")"
        lines.append(f"| {sc} | {tp_o:.0f} / {tp_c:.0f} | {r_tp:.2f} ({statistics.median(paired):.2f}) | "
                     f"{p99_o:.1f} / {p99_c:.1f} | {r_p99:.2f} | {cpu_o:.2f} / {cpu_c:.2f} | {r_cpu:.2f} | {verdict} |")
    race = [r for r in results if r["scenario"] == "race"]
    if race:
        lines += ["", "## race (every code sent to two app instances at once, each with the same workers)", "",
                  "| system | rep | codes | all in flight together | codes with one ok | with >1 ok | with 0 ok | "
                  "DB lost / dup / unanswered | exactly one ok per code |", "|---|---|---|---|---|---|---|---|---|"]
        for r in race:
            one = r["race_codes"] - r["codes_with_multiple_ok"] - r["race_codes_with_zero_ok"]
            exact = (r["codes_with_multiple_ok"] == 0 and r["race_codes_with_zero_ok"] == 0
                     and r["lost"] == 0 and r["db_duplicates"] == 0 and r["unanswered_checkins"] == 0)
            lines.append(f"| {r['system']} | {r['rep']} | {r['race_codes']} | {r['race_codes_all_in_flight_together']} | "
                         f"{one} | {r['codes_with_multiple_ok']} | {r['race_codes_with_zero_ok']} | "
                         f"{r['lost']} / {r['db_duplicates']} / {r['unanswered_checkins']} | {'yes' if exact else 'NO'} |")
    bad = [r for r in results if r["scenario"] != "race" and (r["lost"] or r["db_duplicates"] or r["unanswered_checkins"])]
    lines += ["", f"Consistency (every ok is exactly one stored check-in, none without an ok): "
              f"{'all runs consistent' if not bad else f'{len(bad)} run(s) inconsistent'}."]
    text = "\n".join(lines) + "\n"
    open(os.path.join(a.out, "targets.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
