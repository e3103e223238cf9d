"""``sipush pushes list`` against a real SQLite file, in-process (CliRunner) and as a real
subprocess: the table for people, JSON for scripts, filters, token masking, store resolution,
errors, and a version-1 store (upgraded in place by the first command that opens it).

The store is seeded through the public store API with four push records: Alice's iPhone woken
by an incomingCall (re-registered 1.4 s later), a missedCall to it that found its token dead
(410), a retried FCM push to Alice's Android phone (whose device id IS its token), and a
message push to Bob that failed.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sipush.store import BindingStore, ChangeSet
from tests.store.storekit import (
    APNS_VOIP_TOKEN,
    android_push,
    create_v1_database,
    ios_push,
    make_binding,
    make_push,
    sqlite_backend,
)
from tests.test_cli import RUNNERS, Outcome, Runner, assert_one_error_line

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
IPHONE = "urn:uuid:00000000-0000-4000-8000-00000000a11e"  # +sip.instance, as the proxy keys it
FCM_TOKEN = android_push().prid
MASKED_FCM = f"{FCM_TOKEN[:6]}…{FCM_TOKEN[-4:]}"
BOB_DEVICE = f"{APNS_VOIP_TOKEN}|{'b' * 64}"  # an X-Push device-uid of two tokens
MASKED_BOB_DEVICE = "3f1a9c…2468|bbbbbb…bbbb"
with_runners = pytest.mark.parametrize("run", RUNNERS)


def seed(path: Path) -> datetime:
    """Create ``path`` with two bindings and four push records; return the newest push's time
    (the others were sent 5, 20 and 60 s before it)."""
    newest = datetime.now(UTC).replace(microsecond=250000) - timedelta(seconds=1)

    async def write() -> None:
        async with await BindingStore.open(f"sqlite+aiosqlite:///{path}") as store:
            await store.apply(
                ChangeSet(
                    upserts=(
                        make_binding(ALICE, IPHONE, push=ios_push()),
                        make_binding(ALICE, FCM_TOKEN, push=android_push()),
                    )
                )
            )
            for record in (
                make_push(
                    ALICE, IPHONE, at=newest - timedelta(seconds=60), call_id="call-1@pbx",
                    latency_ms=41.6, reregistered_at=newest - timedelta(seconds=58.6),
                ),
                make_push(
                    ALICE, IPHONE, at=newest - timedelta(seconds=20), kind="missedCall",
                    outcome="token-invalid", status=410, reason="Unregistered", latency_ms=3.25,
                ),
                make_push(
                    ALICE, FCM_TOKEN, at=newest - timedelta(seconds=5), provider="fcm",
                    status=200, latency_ms=1520.5, attempts=3,
                    reregistered_at=newest - timedelta(seconds=2),
                ),
                make_push(
                    BOB, BOB_DEVICE, at=newest, kind="messageReceived", outcome="failed",
                    status=None, reason="timeout", latency_ms=10000.0,
                ),
            ):  # fmt: skip
                await store.record_push(record)

    asyncio.run(write())
    return newest


@pytest.fixture
def seeded(tmp_path: Path) -> datetime:
    """``tmp_path/sipush.db`` (the default store of a CLI run in ``tmp_path``), seeded."""
    return seed(tmp_path / "sipush.db")


def rows(outcome: Outcome) -> list[list[str]]:
    """The table's lines split into cells (two or more spaces separate columns)."""
    return [re.split(r"\s{2,}", line.strip()) for line in outcome.stdout.splitlines()]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def assert_no_token_leaks(text: str) -> None:
    for token in (APNS_VOIP_TOKEN, FCM_TOKEN, "b" * 64):
        assert token not in text


@with_runners
def test_list_table_for_people(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["pushes", "list"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0 and outcome.stderr == "", outcome
    header, *table = rows(outcome)
    assert header == [
        "TIME", "AOR", "DEVICE", "TYPE", "PROVIDER", "OUTCOME", "STATUS", "LATENCY", "TRIES",
        "RE-REGISTERED",
    ]  # fmt: skip
    assert table == [
        [stamp(seeded), BOB, MASKED_BOB_DEVICE, "messageReceived", "apns", "failed",
         "timeout", "10.00 s", "1", "-"],
        [stamp(seeded - timedelta(seconds=5)), ALICE, MASKED_FCM, "incomingCall", "fcm",
         "delivered", "200", "1.52 s", "3", "after 3.0 s"],
        [stamp(seeded - timedelta(seconds=20)), ALICE, IPHONE, "missedCall", "apns",
         "token-invalid", "410 Unregistered", "3.2 ms", "1", "-"],
        [stamp(seeded - timedelta(seconds=60)), ALICE, IPHONE, "incomingCall", "apns",
         "delivered", "200", "42 ms", "1", "after 1.4 s"],
    ]  # fmt: skip
    assert_no_token_leaks(outcome.stdout)


@with_runners
def test_list_json_for_scripts(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["pushes", "list", "--json"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0 and outcome.stderr == "", outcome
    found = json.loads(outcome.stdout)
    assert [p["type"] for p in found] == [
        "messageReceived", "incomingCall", "missedCall", "incomingCall",
    ]  # fmt: skip
    first_call = found[-1]
    assert first_call == {
        "id": 1,
        "sent_at": (seeded - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.250000Z"),
        "aor": ALICE,
        "device_id": IPHONE,
        "type": "incomingCall",
        "provider": "apns",
        "outcome": "delivered",
        "status": 200,
        "reason": None,
        "call_id": "call-1@pbx",
        "latency_ms": 41.6,
        "attempts": 1,
        "reregistered_at": (seeded - timedelta(seconds=58.6)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reregistered_after_s": 1.4,
    }
    assert datetime.fromisoformat(first_call["sent_at"]) == seeded - timedelta(seconds=60)
    dead = found[2]
    assert (dead["outcome"], dead["status"], dead["reason"]) == (
        "token-invalid",
        410,
        "Unregistered",
    )
    assert dead["reregistered_at"] is None and dead["reregistered_after_s"] is None
    assert (found[1]["device_id"], found[1]["attempts"]) == (MASKED_FCM, 3)
    assert found[0]["device_id"] == MASKED_BOB_DEVICE
    assert_no_token_leaks(outcome.stdout)


@with_runners
def test_show_tokens_reveals_device_ids(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["pushes", "list", "--json", "--show-tokens"], tmp_path, monkeypatch)
    assert [p["device_id"] for p in json.loads(outcome.stdout)] == [
        BOB_DEVICE, FCM_TOKEN, IPHONE, IPHONE,
    ]  # fmt: skip
    table = run(["pushes", "list", "--show-tokens"], tmp_path, monkeypatch)
    assert FCM_TOKEN in table.stdout and BOB_DEVICE in table.stdout


@with_runners
def test_filters_and_limit(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    def listed(*args: str) -> list[tuple[str, str]]:
        outcome = run(["pushes", "list", "--json", *args], tmp_path, monkeypatch)
        assert outcome.exit_code == 0, outcome
        return [(p["aor"], p["type"]) for p in json.loads(outcome.stdout)]

    assert listed("--aor", "alice@EXAMPLE.com:5060") == [
        (ALICE, "incomingCall"), (ALICE, "missedCall"), (ALICE, "incomingCall"),
    ]  # fmt: skip
    assert listed("--aor", ALICE, "--device", IPHONE) == [
        (ALICE, "missedCall"), (ALICE, "incomingCall"),
    ]  # fmt: skip
    assert listed("--device", FCM_TOKEN) == [(ALICE, "incomingCall")]  # the full id, unmasked
    assert listed("--limit", "1") == [(BOB, "messageReceived")]
    assert listed("--aor", ALICE, "--limit", "2") == [
        (ALICE, "incomingCall"),
        (ALICE, "missedCall"),
    ]
    assert listed("--aor", "sip:carol@example.com") == []
    empty = run(["pushes", "list", "--aor", "sip:carol@example.com"], tmp_path, monkeypatch)
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "sipush: no pushes\n")


@with_runners
def test_store_from_flag_then_config_then_default(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    seed(tmp_path / "data" / "from-config.db")
    flag_store = tmp_path / "from-flag.db"
    asyncio.run(_empty_store(flag_store))
    config = tmp_path / "sipush.toml"
    config.write_text('[store]\nurl = "sqlite+aiosqlite:///data/from-config.db"\n')
    from_config = run(["pushes", "list", "--config", str(config), "--json"], tmp_path, monkeypatch)
    assert len(json.loads(from_config.stdout)) == 4
    from_flag = run(
        ["pushes", "list", "--config", str(config), "--store", f"sqlite:///{flag_store}", "--json"],
        tmp_path,
        monkeypatch,
    )
    assert (from_flag.exit_code, json.loads(from_flag.stdout)) == (0, [])
    default = run(["pushes", "list"], tmp_path, monkeypatch)  # no sipush.db here
    assert_one_error_line(default, f"no binding store: the SQLite database {tmp_path}/sipush.db")
    assert not (tmp_path / "sipush.db").exists()  # the CLI never creates a store


async def _empty_store(path: Path) -> None:
    async with await BindingStore.open(f"sqlite+aiosqlite:///{path}"):
        pass


@with_runners
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1"),
        (["--limit", "many"], "Invalid value for '--limit': 'many' is not a valid integer"),
        (["--aor", "sip:alice@"], "Invalid value for '--aor'"),
        (["--aor", "tel:+15551234"], "is not a sip: or sips: AOR"),
        (["--device", " "], "'--device': must not be empty"),
        (["--store", ""], "'--store': must not be empty"),
        (["--store", "mysql://root@db/sipush"], "unsupported store URL"),
        (["--config", "missing.toml"], "missing.toml: cannot read config file"),
        (["--bogus"], "No such option"),
    ],
)
def test_bad_arguments_are_one_error_line_exit_2(
    run: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seeded: datetime,
    args: list[str],
    expected: str,
) -> None:
    assert_one_error_line(run(["pushes", "list", *args], tmp_path, monkeypatch), expected)


@with_runners
def test_unreachable_stores_are_one_error_line_exit_2(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    postgresql = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/test"
    line = assert_one_error_line(
        run(["pushes", "list", "--store", postgresql], tmp_path, monkeypatch),
        f"cannot connect to PostgreSQL postgres@127.0.0.1:{port}/test",
        "connection refused",
    )
    assert "hunter2" not in line
    (tmp_path / "junk.db").write_bytes(b"not sqlite" * 200)
    assert_one_error_line(
        run(["pushes", "list", "--store", "sqlite:///junk.db"], tmp_path, monkeypatch),
        f"cannot open the SQLite database {tmp_path}/junk.db: file is not a database",
    )


@with_runners
def test_a_version_1_store_is_upgraded_in_place(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written by a sipush of schema version 1 (no pushes table) works with the new
    commands: the first one upgrades it, the bindings stay."""
    backend = sqlite_backend(tmp_path)  # tmp_path/bindings.db
    binding = make_binding(ALICE, IPHONE, at=datetime.now(UTC), push=ios_push())
    asyncio.run(create_v1_database(backend, (binding,)))
    store = ["--store", backend.url]
    listed = run(["pushes", "list", "--json", *store], tmp_path, monkeypatch)
    assert (listed.exit_code, listed.stdout.strip(), listed.stderr) == (0, "[]", "")
    shown = run(["bindings", "show", ALICE, *store], tmp_path, monkeypatch)
    assert shown.exit_code == 0, shown
    assert f"device           {IPHONE}" in shown.stdout
    assert "recent pushes    none" in shown.stdout


@with_runners
def test_help_documents_the_command_and_exit_statuses(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = run(["pushes", "list", "--help"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0
    for text in (
        "Exit status: 0 done (also when no push matched); 2 bad arguments",
        "--limit N",
        "[default: 100",
        "--show-tokens",
        "--store URL",
        "--config FILE",
        "--device ID",
    ):
        assert text in outcome.stdout, text
    top = run(["--help"], tmp_path, monkeypatch)
    assert re.search(r"^\s+pushes\s+See the pushes sipush sent", top.stdout, re.MULTILINE)
