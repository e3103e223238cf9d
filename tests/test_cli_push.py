"""``sipush push test AOR``: a test push to every device of an AOR, through the real provider."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sipush.push.params import PushInfo
from sipush.store import Binding, BindingStore, ChangeSet
from tests.wake_kit import BUNDLE, apns_emulator

TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"


def seed(store_url: str) -> None:
    now = datetime.now(UTC)
    binding = Binding(
        aor="sip:alice@example.org", device_id=TOKEN, contact="sip:alice@192.0.2.7:4000",
        expires_at=now + timedelta(hours=1), registered_at=now, created_at=now, transport="udp",
        flow_local="127.0.0.1:5060", flow_remote="192.0.2.7:4000", call_id="c", cseq=1,
        user_agent=None,
        push=PushInfo(provider="apns", prid=TOKEN, param=None, app_id=BUNDLE, platform="ios",
                      device_uid=TOKEN, alert_token=None, source="x-push"),
    )  # fmt: skip

    async def run() -> None:
        store = await BindingStore.open(store_url)
        await store.apply(ChangeSet(upserts=(binding,)))
        await store.close()

    asyncio.run(run())


def push_test(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipush", "push", "test", "alice@example.org",
         "--config", str(config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_push_test_reaches_the_device_and_prints_the_answer(tmp_path: Path) -> None:
    with apns_emulator(tmp_path / "apns") as apns:
        config = tmp_path / "sipush.toml"
        store_url = f"sqlite+aiosqlite:///{tmp_path / 'sipush.db'}"
        config.write_text(apns.config() + f'\n[store]\nurl = "{store_url}"\n')
        seed(store_url)
        done = push_test(config, "--json")
        assert done.returncode == 0, done.stderr
        [result] = json.loads(done.stdout)
        assert result["outcome"] == "delivered" and result["token"] == "0a1b2c…e8f9"
        [push] = apns.requests()
        assert push.token == TOKEN and push.payload is not None
        assert push.payload["type"] == "incomingCall"

        apns.call(apns.emulator.script, TOKEN, 410, "Unregistered")
        done = push_test(config, "--type", "missedCall")
        assert done.returncode == 1 and "token-invalid" in done.stdout and "410" in done.stdout


def test_push_test_with_a_missing_store_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "sipush.toml"
    config.write_text(f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "nothing.db"}"\n')
    done = push_test(config)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
