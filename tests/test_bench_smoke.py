"""The load benchmarks keep working: ``scripts/bench/run_all.py --smoke`` (seconds long).

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


@pytest.mark.timeout(150)
def test_run_all_smoke_writes_json_and_png(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    for name in ("register_rate", "call_rate"):
        data = json.loads((out / f"{name}.json").read_text())
        assert data["smoke"] is True
        assert set(data["steps"]) and all(data["steps"].values()), data
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert [row["figure"][0] for row in summary["rows"]] == ["1", "2"]
