"""SQLite WAL checkpoints from a thread of their own (``checkpoint_interval``), not inside the
commits that REGISTER 2xx responses wait for.

The main database file is read with ``immutable=1``, which makes SQLite ignore the WAL: a row
is there only once a checkpoint has copied it from the WAL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sipush.store import BindingStore, ChangeSet
from tests.store.storekit import make_binding


def rows_in_main_file(path: Path) -> int:
    """Bindings in the database file itself (0 while even the schema is only in the WAL)."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM bindings").fetchone()[0])
    except sqlite3.OperationalError as err:
        assert "no such table" in str(err)
        return 0
    finally:
        connection.close()


async def wait_for_rows(path: Path, expected: int, seconds: float) -> int:
    found = -1
    for _ in range(round(seconds / 0.05)):
        found = rows_in_main_file(path)
        if found == expected:
            break
        await asyncio.sleep(0.05)
    return found


async def test_the_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "sipush.db"
    async with await BindingStore.open(f"sqlite:///{path}", checkpoint_interval=0.05) as store:
        await store.apply(ChangeSet(upserts=(make_binding(),)))
        assert await wait_for_rows(path, 1, 5.0) == 1
        # The commits themselves no longer checkpoint (that is the thread's job now).
        async with store._engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0


async def test_without_it_a_small_write_stays_in_the_wal(tmp_path: Path) -> None:
    # The control: SQLite's own checkpoint waits for 1,000 pages of WAL, so the test above
    # would fail without the background checkpoint.
    path = tmp_path / "sipush.db"
    async with await BindingStore.open(f"sqlite:///{path}") as store:
        await store.apply(ChangeSet(upserts=(make_binding(),)))
        await asyncio.sleep(0.3)
        assert rows_in_main_file(path) == 0
