"""The six benchmarks keep working: ``scripts/bench/run_all.py --smoke`` (under a minute).

No speed assertion: the smoke run only proves that the peers start, SIPp's statistics are read,
and the JSON and PNG are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_ALL = REPO / "scripts" / "bench" / "run_all.py"


NAMES = ("register_rate", "call_rate", "wake_latency", "held_requests", "store_scale",
         "push_throughput")  # fmt: skip


@pytest.mark.timeout(300)
def test_run_all_smoke_writes_json_and_png_for_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    for name in NAMES:
        data = json.loads((out / f"{name}.json").read_text())
        assert data["smoke"] is True, name
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    for name in ("register_rate", "call_rate"):
        data = json.loads((out / f"{name}.json").read_text())
        assert set(data["steps"]) and all(data["steps"].values()), data
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert [row["figure"][0] for row in rows] == ["1", "2", "3", "3", "4", "5", "5", "6"]
    for row in rows:
        assert row["measured"] and row["target"] and isinstance(row["met"], bool), row
    # The combined table is printed, one line per row.
    assert all(row["figure"] in done.stdout for row in rows)
