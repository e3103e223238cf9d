"""Stands in for ``sipush serve`` in tests: holds a store open and writes to it in a loop.

    python -m tests.store.busy_writer URL STOP_FILE MAX_SECONDS

Opens the store at URL, prints ``ready`` once its first change set is committed, then keeps
applying change sets (REGISTERs of 20 devices of ``sip:busy@example.com``, a removal every 5th,
an already-expired ``sip:stale@example.com`` binding every 7th) every few milliseconds until
STOP_FILE exists or MAX_SECONDS have passed. Prints ``applied N`` and exits 0; on a
StoreError prints it and exits 1, which is what the CLI tests check never happens.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sipush.errors import StoreError
from sipush.store import BindingStore, ChangeSet
from tests.store.storekit import android_push, make_binding

BUSY_AOR = "sip:busy@example.com"
STALE_AOR = "sip:stale@example.com"
PAUSE = 0.005  # seconds between change sets


def change_set(number: int) -> ChangeSet:
    now = datetime.now(UTC)
    upserts = [make_binding(BUSY_AOR, f"d{number % 20}", at=now, cseq=number, push=android_push())]
    if number % 7 == 0:
        upserts.append(make_binding(STALE_AOR, f"s{number}", at=now, expires_in=-60))
    removals = ((BUSY_AOR, f"d{(number + 10) % 20}"),) if number % 5 == 0 else ()
    return ChangeSet(upserts=tuple(upserts), removals=removals)


async def write_until(url: str, stop_file: Path, max_seconds: float) -> int:
    deadline = time.monotonic() + max_seconds
    async with await BindingStore.open(url) as store:
        applied = 0
        while True:
            await store.apply(change_set(applied))
            applied += 1
            if applied == 1:
                print("ready", flush=True)
            if stop_file.exists() or time.monotonic() > deadline:
                return applied
            await asyncio.sleep(PAUSE)


def main(argv: list[str]) -> int:
    url, stop_file, max_seconds = argv[1], Path(argv[2]), float(argv[3])
    try:
        applied = asyncio.run(write_until(url, stop_file, max_seconds))
    except StoreError as err:
        print(f"store error: {err}", flush=True)
        return 1
    print(f"applied {applied}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
