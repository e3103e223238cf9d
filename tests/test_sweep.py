"""A running ``sipush serve`` sweeps expired bindings from the store (issue #3)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sipush.store import Binding, BindingStore, ChangeSet
from tests.conftest import free_port, run_sipush


def binding(device: str, expires_in: float) -> Binding:
    now = datetime.now(UTC)
    return Binding(
        aor="sip:alice@example.org", device_id=device,
        contact=f"sip:alice@192.0.2.7:{4000 + len(device)}",
        expires_at=now + timedelta(seconds=expires_in), registered_at=now, created_at=now,
        transport="udp", flow_local="127.0.0.1:5060", flow_remote="192.0.2.7:4000",
        call_id="c1", cseq=1, user_agent=None, push=None,
    )  # fmt: skip


def listed(workdir: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "sipush", "bindings", "list", "--include-expired", "--json"],
        cwd=workdir, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    return sorted(b["device_id"] for b in json.loads(out.stdout or "[]"))


def test_expired_bindings_are_swept_live_ones_stay(tmp_path: Path) -> None:
    async def seed() -> None:
        store = await BindingStore.open(f"sqlite+aiosqlite:///{tmp_path / 'sipush.db'}")
        await store.apply(ChangeSet(upserts=(binding("gone", -5), binding("live", 3600))))
        await store.close()

    asyncio.run(seed())
    assert listed(tmp_path) == ["gone", "live"]
    (tmp_path / "sipush.toml").write_text("[store]\nsweep_interval = 0.2\n")
    with run_sipush(tmp_path, free_port(), "--config", str(tmp_path / "sipush.toml")):
        deadline = time.monotonic() + 10
        while listed(tmp_path) != ["live"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listed(tmp_path) == ["live"]
