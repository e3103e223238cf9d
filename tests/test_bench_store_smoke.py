"""Figure 5's benchmark keeps working: ``scripts/bench/store_scale.py --smoke`` (seconds long).

No speed assertion: the smoke run proves that each store is created and prefilled (the rows
were in it when the REGISTERs were measured), that the measured REGISTERs inserted new rows,
that the JSON and PNG are written with one summary row per backend, and that the PostgreSQL
databases it created are gone afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.storekit import POSTGRESQL_URL, require_postgresql

REPO = Path(__file__).resolve().parents[1]
STORE_SCALE = REPO / "scripts" / "bench" / "store_scale.py"
TIMEOUT = 50.0  # the smoke run takes about 15 s here
SUMMARY_KEYS = {"figure", "measured", "baseline", "ratio", "target", "met"}


def run_bounded(command: list[str], cwd: Path, timeout: float) -> tuple[int, int, str]:
    """Run ``command``; past ``timeout``, SIGTERM it (it then stops its peers and drops its
    databases), and kill it if that takes more than 10 s. Return (pid, exit status, output)."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"store_scale.py --smoke took more than {timeout} s:\n{output}")
    return proc.pid, proc.returncode, output


async def bench_databases(pid: int) -> list[str]:
    import asyncpg  # type: ignore[import-untyped]

    dsn = POSTGRESQL_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"sipush_bench_{pid}_%"
        )
    finally:
        await connection.close()
    return [row[0] for row in rows]


@pytest.mark.timeout(90)
def test_store_scale_smoke_writes_json_and_png(tmp_path: Path) -> None:
    require_postgresql()
    out = tmp_path / "results"
    command = [sys.executable, str(STORE_SCALE), "--smoke", "--out", str(out)]
    command += ["--postgresql-url", POSTGRESQL_URL]
    pid, code, output = run_bounded(command, tmp_path, TIMEOUT)
    assert code == 0, output

    data = json.loads((out / "store_scale.json").read_text())
    assert data["smoke"] is True
    cases = data["cases"]
    assert sorted(cases) == ["PostgreSQL 10k", "PostgreSQL 1k", "SQLite 10k", "SQLite 1k"]
    for label, case in cases.items():
        steps = case["steps"]
        assert steps, label
        # The prefilled bindings were in the store when the first REGISTERs were measured...
        assert steps[0]["rows_before"] == case["rows"], (label, case)
        for before, after in itertools.pairwise(steps):
            assert after["rows_before"] == before["rows_after"], (label, case)
        for step in steps:
            # ...and every REGISTER answered 200 was a new device: it added a row.
            assert step["inserted"] == step["rows_after"] - step["rows_before"], step
            assert step["inserted"] >= step["successful"] > 0, (label, step)
            assert step["latency_ms"], (label, step)

    summary = data["summary"]
    assert [row["figure"] for row in summary] == [
        "5 store size: SQLite 10k",
        "5 store size: PostgreSQL 10k",
    ]
    for row in summary:
        assert set(row) >= SUMMARY_KEYS, row
        assert row["measured"].endswith("/s") and row["baseline"].endswith("/s with 1k"), row
        assert isinstance(row["ratio"], float) and isinstance(row["met"], bool), row
        assert row["target"] == ">= 80 %"
    png = out / "store_scale.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"

    # The databases it created (sipush_bench_<its pid>_<case>) were dropped.
    assert asyncio.run(bench_databases(pid)) == []
