"""Run every load benchmark in scripts/bench/, write their JSON + PNG and a combined table.

    python scripts/bench/run_all.py                 # full runs (about 5-8 minutes)
    python scripts/bench/run_all.py --smoke         # seconds long (tests/test_bench_smoke.py)
    python scripts/bench/run_all.py --out /tmp/bench --duration 10

Writes ``<out>/register_rate.{json,png}``, ``<out>/call_rate.{json,png}`` and
``<out>/summary.json`` (the rows of the combined table).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import call_rate
import register_rate
from common import RESULTS, machine, print_table, write_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all sipush load benchmarks.")
    parser.add_argument("--smoke", action="store_true", help="seconds-long version")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate step")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = [
        register_rate.run(args.out, smoke=args.smoke, duration=args.duration),
        call_rate.run(args.out, smoke=args.smoke, duration=args.duration),
    ]
    write_json(args.out, "summary", {"smoke": args.smoke, "rows": rows, "machine": machine()})
    print()
    print_table(rows)
    print(f"\nresults in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
