"""The README's one-command demo keeps working (examples/wake_demo.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wake_demo_runs_to_an_answered_call() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "wake_demo.py")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "APNs got a voip push" in done.stdout
    assert "the caller saw [200, 200]" in done.stdout
