"""``sipush bindings list|show|delete|purge`` against a real SQLite file, in-process (CliRunner)
and as a real subprocess, including while another process holds the file open and writes.

The store is seeded through the public store API with three bindings: Alice's iPhone (APNs,
X-Push, its token also inside the Contact), Alice's Android phone (FCM; its device id IS its
token) and Bob's desk phone (no push, expired an hour ago). The ``show`` tests with pushes add
push records (``seed_pushes``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sipush.cli_bindings import mask_token
from sipush.store import BindingStore, ChangeSet
from tests.store.busy_writer import BUSY_AOR
from tests.store.storekit import (
    APNS_ALERT_TOKEN,
    APNS_VOIP_TOKEN,
    android_push,
    ios_push,
    make_binding,
    make_push,
)
from tests.test_cli import RUNNERS, Outcome, Runner, assert_one_error_line

REPO_ROOT = Path(__file__).resolve().parent.parent
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
IPHONE = "<urn:uuid:00000000-0000-4000-8000-00000000a11e>"
FCM_TOKEN = android_push().prid
MASKED_VOIP = "3f1a9c…2468"
MASKED_ALERT = "a1b2c3…9999"
MASKED_FCM = f"{FCM_TOKEN[:6]}…{FCM_TOKEN[-4:]}"
with_runners = pytest.mark.parametrize("run", RUNNERS)


def seed(path: Path) -> datetime:
    """Create ``path`` with the three bindings; return the time they were registered at."""
    # A fixed fraction (checked in the output) and a second in the past, so that "now" in the
    # CLI is never earlier than the seed (else "expired 1h00m ago" reads "59m59s").
    now = datetime.now(UTC).replace(microsecond=123456) - timedelta(seconds=1)

    async def write() -> None:
        async with await BindingStore.open(f"sqlite+aiosqlite:///{path}") as store:
            await store.apply(
                ChangeSet(
                    upserts=(
                        make_binding(
                            ALICE,
                            IPHONE,
                            at=now,
                            created_at=now - timedelta(days=2),
                            push=ios_push(),
                            contact=f"sip:alice@10.0.0.5:40111;transport=tcp;pn-prid={APNS_VOIP_TOKEN}",
                            transport="tcp",
                            call_id="iphone-call-id",
                            cseq=42,
                        ),
                        make_binding(ALICE, FCM_TOKEN, at=now, expires_in=600, push=android_push()),
                        make_binding(BOB, "<urn:uuid:b0b>", at=now - timedelta(hours=2)),
                    )
                )
            )

    asyncio.run(write())
    return now


@pytest.fixture
def seeded(tmp_path: Path) -> datetime:
    """``tmp_path/sipush.db`` (the default store of a CLI run in ``tmp_path``), seeded."""
    return seed(tmp_path / "sipush.db")


def rows(outcome: Outcome) -> list[list[str]]:
    """The table's lines split into cells (two or more spaces separate columns)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in outcome.stdout.splitlines()]


def assert_no_token_leaks(text: str) -> None:
    for token in (APNS_VOIP_TOKEN, APNS_ALERT_TOKEN, FCM_TOKEN):
        assert token not in text


@with_runners
def test_list_table_for_people(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "list"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0 and outcome.stderr == "", outcome
    header, *table = rows(outcome)
    assert header == [
        "AOR", "DEVICE", "PLATFORM", "PROVIDER", "APP ID", "TOKEN", "CONTACT", "TRANSPORT",
        "CALL PUSH", "MSG PUSH", "EXPIRES", "CREATED", "LAST REGISTERED",
    ]  # fmt: skip
    assert len(table) == 2  # Bob's binding has expired
    by_device = {row[1]: dict(zip(header, row, strict=True)) for row in table}
    iphone = by_device[IPHONE]
    assert iphone["AOR"] == ALICE
    assert (iphone["PLATFORM"], iphone["PROVIDER"], iphone["APP ID"]) == (
        "ios", "apns", "com.example.phone",
    )  # fmt: skip
    assert iphone["TOKEN"] == MASKED_VOIP
    assert iphone["CONTACT"] == f"sip:alice@10.0.0.5:40111;transport=tcp;pn-prid={MASKED_VOIP}"
    assert (iphone["TRANSPORT"], iphone["CALL PUSH"], iphone["MSG PUSH"]) == ("tcp", "no", "no")
    expires = seeded + timedelta(hours=1)
    assert iphone["EXPIRES"].startswith(expires.strftime("%Y-%m-%d %H:%M:%SZ (in "))
    assert iphone["CREATED"] == (seeded - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%SZ")
    assert iphone["LAST REGISTERED"] == seeded.strftime("%Y-%m-%d %H:%M:%SZ")
    android = by_device[MASKED_FCM]  # the device id is the FCM token: masked too
    assert (android["PROVIDER"], android["PLATFORM"], android["TOKEN"]) == ("fcm", "-", MASKED_FCM)
    assert (android["CALL PUSH"], android["MSG PUSH"]) == ("yes", "yes")
    assert_no_token_leaks(outcome.stdout)


@with_runners
def test_list_json_for_scripts(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "list", "--json", "--include-expired"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0, outcome
    found = json.loads(outcome.stdout)
    assert [(b["aor"], b["expired"]) for b in found] == [
        (ALICE, False),
        (ALICE, False),
        (BOB, True),
    ]
    iphone = next(b for b in found if b["device_id"] == IPHONE)
    assert iphone["registered_at"] == seeded.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    assert datetime.fromisoformat(iphone["expires_at"]) == seeded + timedelta(hours=1)
    assert (iphone["call_id"], iphone["cseq"], iphone["transport"]) == ("iphone-call-id", 42, "tcp")
    assert iphone["push"] == {
        "provider": "apns",
        "prid": MASKED_VOIP,
        "param": "ABCD1234.com.example.phone.voip",
        "app_id": "com.example.phone",
        "platform": "ios",
        "device_uid": f"{MASKED_VOIP}|{MASKED_ALERT}",
        "alert_token": MASKED_ALERT,
        "allow_call_push": False,
        "allow_message_push": False,
        "source": "x-push",
    }
    assert found[2]["push"] is None
    assert_no_token_leaks(outcome.stdout)


@with_runners
def test_show_tokens_reveals_them(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "list", "--json", "--show-tokens"], tmp_path, monkeypatch)
    found = json.loads(outcome.stdout)
    assert {b["device_id"] for b in found} == {IPHONE, FCM_TOKEN}
    iphone = next(b for b in found if b["device_id"] == IPHONE)
    assert iphone["push"]["prid"] == APNS_VOIP_TOKEN
    assert iphone["push"]["alert_token"] == APNS_ALERT_TOKEN
    assert APNS_VOIP_TOKEN in iphone["contact"]
    table = run(["bindings", "list", "--show-tokens"], tmp_path, monkeypatch)
    assert APNS_VOIP_TOKEN in table.stdout and FCM_TOKEN in table.stdout


@with_runners
def test_list_one_aor_given_loosely(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(
        ["bindings", "list", "--aor", "bob@EXAMPLE.com:5060", "--include-expired", "--json"],
        tmp_path,
        monkeypatch,
    )
    assert [b["aor"] for b in json.loads(outcome.stdout)] == [BOB]
    empty = run(["bindings", "list", "--aor", "sip:carol@example.com"], tmp_path, monkeypatch)
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "sipush: no bindings\n")


@with_runners
def test_show_details_include_expired(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "show", "alice@example.com"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0, outcome
    text = outcome.stdout
    for expected in (
        f"device           {IPHONE}",
        "flow             tcp 127.0.0.1:5060 <- 127.0.0.1:40111",
        "call-id          iphone-call-id",
        "(CSeq 42)",
        "push             apns (x-push)",
        f"token            {MASKED_VOIP}",
        f"alert token      {MASKED_ALERT}",
        "message push     no",
        "push             fcm (rfc8599)",
    ):
        assert expected in text, expected
    assert_no_token_leaks(text)
    bob = run(["bindings", "show", BOB], tmp_path, monkeypatch)
    assert "(expired 1h00m ago)" in bob.stdout, bob.stdout  # registered 2 h ago for 1 h
    assert "push             none" in bob.stdout


def seed_pushes(path: Path, registered: datetime) -> None:
    """Seven pushes to Alice's iPhone (one a second, the last 10 s before ``registered``; the
    newest two: a dead-token missedCall and a retried incomingCall that woke the app) and
    none to her Android phone; one to a device Alice no longer has."""

    async def write() -> None:
        async with await BindingStore.open(f"sqlite+aiosqlite:///{path}") as store:
            start = registered - timedelta(seconds=16)
            for number in range(5):
                await store.record_push(
                    make_push(ALICE, IPHONE, at=start + timedelta(seconds=number))
                )
            await store.record_push(
                make_push(
                    ALICE, IPHONE, at=registered - timedelta(seconds=11), outcome="retry",
                    status=429, reason="TooManyRequests", latency_ms=2250.0, attempts=3,
                    reregistered_at=registered,
                )
            )  # fmt: skip
            await store.record_push(
                make_push(
                    ALICE, IPHONE, at=registered - timedelta(seconds=10), kind="missedCall",
                    outcome="token-invalid", status=410, reason="Unregistered", latency_ms=3.25,
                )
            )  # fmt: skip
            await store.record_push(make_push(ALICE, "urn:uuid:old-phone", at=registered))

    asyncio.run(write())


@with_runners
def test_show_lists_each_devices_recent_pushes(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    seed_pushes(tmp_path / "sipush.db", seeded)
    outcome = run(["bindings", "show", ALICE], tmp_path, monkeypatch)
    assert outcome.exit_code == 0, outcome
    iphone, android = outcome.stdout.split("\n\n")
    lines = iphone.splitlines()
    first = lines.index(next(line for line in lines if "recent pushes" in line))
    pushed = [line.strip() for line in lines[first:]]
    stamp = (seeded - timedelta(seconds=10)).strftime("%Y-%m-%d %H:%M:%S.123Z")
    assert pushed[0] == (
        f"recent pushes    {stamp} missedCall via apns: token-invalid (410 Unregistered), 3.2 ms"
    )
    assert pushed[1].endswith(
        "incomingCall via apns: retry (429 TooManyRequests), 2.25 s, 3 tries, "
        "re-registered after 11.0 s"
    )
    assert pushed[2].endswith("incomingCall via apns: delivered (200), 41 ms")
    assert len(pushed) == 5  # the 5 newest of 7
    assert lines[first + 1].startswith(" " * 19 + "20")  # aligned under the first one
    assert "recent pushes    none" in android  # pushable, never pushed
    assert "old-phone" not in outcome.stdout  # no binding, not shown here
    assert_no_token_leaks(outcome.stdout)
    one = run(["bindings", "show", ALICE, "--pushes", "1"], tmp_path, monkeypatch)
    assert one.stdout.count(" via apns: ") == 1
    hidden = run(["bindings", "show", ALICE, "--pushes", "0"], tmp_path, monkeypatch)
    assert "recent pushes" not in hidden.stdout and "via apns" not in hidden.stdout
    bob = run(["bindings", "show", BOB], tmp_path, monkeypatch)
    assert "recent pushes" not in bob.stdout  # no push info, no pushes
    bad = run(["bindings", "show", ALICE, "--pushes", "-1"], tmp_path, monkeypatch)
    assert_one_error_line(bad, "Invalid value for '--pushes': -1 is not in the range x>=0")


@with_runners
def test_show_json_has_each_devices_pushes(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    seed_pushes(tmp_path / "sipush.db", seeded)
    outcome = run(["bindings", "show", ALICE, "--json", "--pushes", "2"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0, outcome
    found = {b["device_id"]: b for b in json.loads(outcome.stdout)}
    assert found[MASKED_FCM]["pushes"] == []
    dead, woke = found[IPHONE]["pushes"]
    assert dead["type"] == "missedCall" and dead["reregistered_at"] is None
    assert (dead["device_id"], dead["status"], dead["reason"]) == (IPHONE, 410, "Unregistered")
    assert dead["sent_at"] == (seeded - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    assert (woke["outcome"], woke["attempts"], woke["latency_ms"]) == ("retry", 3, 2250.0)
    assert woke["reregistered_after_s"] == 11.0
    assert woke["reregistered_at"] == seeded.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    listed = run(["bindings", "list", "--json"], tmp_path, monkeypatch)
    assert all("pushes" not in b for b in json.loads(listed.stdout))  # only show has them


@with_runners
def test_show_unknown_aor_exits_1(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "show", "sip:carol@example.com"], tmp_path, monkeypatch)
    assert (outcome.exit_code, outcome.stdout) == (1, "")
    assert outcome.stderr == "sipush: no bindings of sip:carol@example.com\n"
    as_json = run(["bindings", "show", "sip:carol@example.com", "--json"], tmp_path, monkeypatch)
    assert (as_json.exit_code, json.loads(as_json.stdout)) == (1, [])


@with_runners
def test_delete_one_device_then_all(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    one = run(["bindings", "delete", ALICE, "--device", FCM_TOKEN], tmp_path, monkeypatch)
    assert (one.exit_code, one.stderr) == (0, ""), one
    assert one.stdout == f"deleted 1 binding of device {FCM_TOKEN} of {ALICE}\n"
    again = run(["bindings", "delete", ALICE, "--device", FCM_TOKEN], tmp_path, monkeypatch)
    assert (again.exit_code, again.stdout) == (1, "")
    assert again.stderr.startswith("sipush: nothing deleted: no binding of device ")
    run(["bindings", "delete", BOB], tmp_path, monkeypatch)
    rest = run(["bindings", "list", "--json", "--include-expired"], tmp_path, monkeypatch)
    assert [b["device_id"] for b in json.loads(rest.stdout)] == [IPHONE]
    everything = run(["bindings", "delete", "alice@example.com"], tmp_path, monkeypatch)
    assert everything.stdout == f"deleted 1 binding of {ALICE}\n"
    none = run(["bindings", "delete", "alice@example.com"], tmp_path, monkeypatch)
    assert (none.exit_code, none.stderr) == (1, f"sipush: nothing deleted: no binding of {ALICE}\n")


@with_runners
def test_purge_expired(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: datetime
) -> None:
    outcome = run(["bindings", "purge", "--expired"], tmp_path, monkeypatch)
    assert (outcome.exit_code, outcome.stdout) == (0, "purged 1 expired binding\n")
    again = run(["bindings", "purge", "--expired"], tmp_path, monkeypatch)
    assert (again.exit_code, again.stdout) == (0, "purged 0 expired bindings\n")
    left = run(["bindings", "list", "--json", "--include-expired"], tmp_path, monkeypatch)
    assert {b["aor"] for b in json.loads(left.stdout)} == {ALICE}


@with_runners
def test_store_from_flag_then_config_then_default(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    seed(tmp_path / "data" / "from-config.db")
    seed(tmp_path / "from-flag.db")

    async def only_bob(path: Path) -> None:
        async with await BindingStore.open(f"sqlite+aiosqlite:///{path}") as store:
            await store.delete(ALICE)

    asyncio.run(only_bob(tmp_path / "from-flag.db"))
    config = tmp_path / "sipush.toml"
    # A relative SQLite path is relative to the working directory, as for `sipush serve`.
    config.write_text('[store]\nurl = "sqlite+aiosqlite:///data/from-config.db"\n')
    from_config = run(
        ["bindings", "list", "--config", str(config), "--json"], tmp_path, monkeypatch
    )
    assert {b["aor"] for b in json.loads(from_config.stdout)} == {ALICE}
    flag = ["--store", f"sqlite:///{tmp_path / 'from-flag.db'}"]
    from_flag = run(
        ["bindings", "list", "--config", str(config), *flag, "--include-expired", "--json"],
        tmp_path,
        monkeypatch,
    )
    assert {b["aor"] for b in json.loads(from_flag.stdout)} == {BOB}
    default = run(["bindings", "list"], tmp_path, monkeypatch)  # no sipush.db here
    assert_one_error_line(default, f"no binding store: the SQLite database {tmp_path}/sipush.db")
    assert not (tmp_path / "sipush.db").exists()  # the CLI never creates a store


@with_runners
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["list", "--store", "mysql://root@db/sipush"], "unsupported store URL"),
        (["list", "--store", ""], "'--store': must not be empty"),
        (["list", "--config", "missing.toml"], "missing.toml: cannot read config file"),
        (["show", "sip:@@"], "Invalid value for 'AOR': 'sip:@@' is not a SIP AOR"),
        (["show", "tel:+15551234"], "is not a sip: or sips: AOR"),
        (["list", "--aor", "sip:alice@"], "Invalid value for '--aor'"),
        (["delete", ALICE, "--device", " "], "'--device': must not be empty"),
        (["purge"], "purge needs --expired"),
        (["list", "--bogus"], "No such option"),
        (["show"], "Missing argument 'AOR'"),
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
    assert_one_error_line(run(["bindings", *args], tmp_path, monkeypatch), expected)


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
        run(["bindings", "list", "--store", postgresql], tmp_path, monkeypatch),
        f"cannot connect to PostgreSQL postgres@127.0.0.1:{port}/test",
        "connection refused",
    )
    assert "hunter2" not in line
    (tmp_path / "junk.db").write_bytes(b"not sqlite" * 200)
    assert_one_error_line(
        run(
            ["bindings", "purge", "--expired", "--store", "sqlite:///junk.db"],
            tmp_path,
            monkeypatch,
        ),
        f"cannot open the SQLite database {tmp_path}/junk.db: file is not a database",
    )


@with_runners
def test_help_documents_the_exit_statuses(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = run(["bindings", "delete", "--help"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0
    assert "Exit status: 0 done; 1 nothing matched (show, delete); 2 bad" in outcome.stdout
    assert "--device ID" in outcome.stdout
    listed = run(["bindings", "--help"], tmp_path, monkeypatch)
    for command in ("list", "show", "delete", "purge"):
        assert f"  {command}  " in listed.stdout


@with_runners
def test_cli_works_while_another_process_writes(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in for ``sipush serve`` holds the file open and commits every few ms; every
    command still succeeds (WAL: reads never wait; writes wait out the busy timeout)."""
    database = tmp_path / "sipush.db"
    stop_file = tmp_path / "stop"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.busy_writer",
            f"sqlite:///{database}",
            str(stop_file),
            "60",
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(3):
            listed = run(["bindings", "list", "--json"], tmp_path, monkeypatch)
            assert listed.exit_code == 0, listed
            assert BUSY_AOR in {b["aor"] for b in json.loads(listed.stdout)}
            shown = run(["bindings", "show", BUSY_AOR], tmp_path, monkeypatch)
            assert shown.exit_code == 0, shown
            deleted = run(["bindings", "delete", BUSY_AOR, "--device", "d3"], tmp_path, monkeypatch)
            assert deleted.exit_code in (0, 1), deleted  # 1: the writer had just removed d3
            purged = run(["bindings", "purge", "--expired"], tmp_path, monkeypatch)
            assert purged.exit_code == 0, purged
            assert purged.stdout.startswith("purged "), purged
        assert writer.poll() is None, "the writer stopped before the CLI was done"
    finally:
        stop_file.touch()
        try:
            output, _ = writer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            output, _ = writer.communicate()
    assert writer.returncode == 0, output
    applied = int(output.split("applied ")[1])
    assert applied >= 20, output


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        (APNS_VOIP_TOKEN, "3f1a9c…2468"),
        ("abcdefghij0123456789", "abcdef…6789"),  # 20 characters: head and tail
        ("abcdefghij012345678", "…78"),  # shorter: head and tail would show most of it
        ("abcdefg", "…"),
    ],
)
def test_mask_token(token: str, masked: str) -> None:
    assert mask_token(token) == masked
