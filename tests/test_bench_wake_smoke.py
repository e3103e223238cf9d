"""The wake benchmarks keep working: ``scripts/bench/{wake_latency,held_requests,push_throughput}.py
--smoke`` (a few seconds each, peers on loopback).

No speed assertion: the smoke runs only prove that the peers start, the device farm registers,
sleeps, wakes on its push and answers, sipush's timeline lines are read, every held request is
released once, and the JSON and PNG are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "scripts" / "bench"
ROW_KEYS = {"figure", "measured", "baseline", "target", "met"}


def smoke(name: str, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), "--smoke", "--out", str(out)],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    png = out / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    assert data["smoke"] is True
    for row in data["summary"]:
        assert set(row) >= ROW_KEYS, row
        assert isinstance(row["met"], bool) and row["measured"] and row["target"]
    return data


@pytest.mark.timeout(200)
def test_wake_benchmarks_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results"

    wake = smoke("wake_latency", out)
    assert [row["figure"][:2] for row in wake["summary"]] == ["3a", "3b"]
    calls = wake["calls"]
    assert wake["caller"]["successful"] == calls, wake["caller"]
    assert wake["pushes"] == calls and wake["released_once"] == calls
    for event in ("wake-push", "wake-release"):
        assert len(wake["samples_ms"][event]) == calls, event

    held = smoke("held_requests", out)
    [row] = held["summary"]
    assert row["figure"].startswith("4 ")
    assert row["held"] == held["count"] and row["pushed"] == held["count"]
    assert row["released"] == held["count"] and row["failed"] == 0, held["devices"]
    assert held["invites_before_wake"] == 0, "nothing is released before its device wakes"
    assert held["memory_kb"]["held"]["VmRSS"] > 0

    pushes = smoke("push_throughput", out)
    [row] = pushes["summary"]
    assert row["figure"].startswith("6 ")
    assert pushes["raw"]["ok"] == pushes["raw"]["count"] and row["raw"] > 0
    [step] = pushes["steps"]
    assert step["pushes"] == step["calls"] == step["delivered"], step
    assert step["answered"] == step["calls"], "every held call was released and answered"
