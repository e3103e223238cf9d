"""Run the six benchmarks of issue #5, write their JSON + PNG and one combined table.

    python scripts/bench/run_all.py                 # full runs (about 12 minutes here)
    python scripts/bench/run_all.py --smoke         # seconds long (tests/test_bench_smoke.py)
    python scripts/bench/run_all.py --only 1,2      # some figures
    python scripts/bench/run_all.py --out /tmp/bench

| figure | script |
| --- | --- |
| 1 REGISTER relay rate, sipush in front of Kamailio vs Kamailio alone | register_rate.py |
| 2 calls to live apps, with and without sipush | call_rate.py |
| 3 wake latency added by sipush (INVITE -> push, REGISTER 2xx -> INVITE) | wake_latency.py |
| 4 memory per held INVITE, 10,000 held at once, all released | held_requests.py |
| 5 REGISTER rate with 100k (SQLite) / 1M (PostgreSQL) bindings vs 1k | store_scale.py |
| 6 push throughput through sipush vs raw aioapns | push_throughput.py |

Each writes ``<out>/<name>.json`` and ``<out>/<name>.png``; this script adds
``<out>/summary.json`` (the rows of the combined table, with the machine) and prints the table.
A figure whose benchmark fails is reported as such and the others still run (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import call_rate
import held_requests
import push_throughput
import register_rate
import store_scale
import wake_latency
from common import RESULTS, machine, print_table, summary_row, write_json

Runner = Callable[[Path, bool, float], list[dict[str, Any]]]

FIGURES: dict[str, tuple[str, Runner]] = {
    "1": ("register_rate", lambda out, smoke, d: [register_rate.run(out, smoke=smoke, duration=d)]),
    "2": ("call_rate", lambda out, smoke, d: [call_rate.run(out, smoke=smoke, duration=d)]),
    "3": ("wake_latency", lambda out, smoke, d: wake_latency.run(out, smoke=smoke)),
    "4": ("held_requests", lambda out, smoke, d: held_requests.run(out, smoke=smoke)),
    "5": ("store_scale", lambda out, smoke, d: store_scale.run(out, smoke=smoke)),
    "6": ("push_throughput", lambda out, smoke, d: push_throughput.run(out, smoke=smoke)),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all sipush benchmarks (issue #5).")
    parser.add_argument("--smoke", action="store_true", help="seconds-long version")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per rate step (1, 2)")
    parser.add_argument("--only", default=",".join(FIGURES), help="figures to run, e.g. 1,2,5")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    wanted = [number.strip() for number in args.only.split(",") if number.strip()]
    unknown = [number for number in wanted if number not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
    rows: list[dict[str, Any]] = []
    failed = False
    started = time.monotonic()
    for number in wanted:
        name, run = FIGURES[number]
        began = time.monotonic()
        try:
            figure_rows = run(args.out, args.smoke, args.duration)
        except Exception:  # one broken benchmark must not hide the others' figures
            failed = True
            traceback.print_exc()
            figure_rows = [summary_row(f"{number} {name}", "benchmark failed", "", False)]
        for row in figure_rows:
            row["seconds"] = round(time.monotonic() - began, 1)
        rows.extend(figure_rows)
        print(flush=True)
    write_json(
        args.out,
        "summary",
        {
            "smoke": args.smoke,
            "rows": rows,
            "seconds": round(time.monotonic() - started, 1),
            "machine": machine(),
        },
    )
    print_table(rows)
    print(f"\n{time.monotonic() - started:.0f} s; results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
