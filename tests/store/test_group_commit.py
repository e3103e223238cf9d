"""``GroupCommit``: writes queued while one transaction runs share the next one.

Driven through a real SQLite file (SQLAlchemy's aiosqlite engine, the same stack as the store),
so "one transaction" and "rolled back" are the database's own: each body INSERTs a row, a
body that fails INSERTs a duplicate primary key. One test goes through :class:`BindingStore`
itself. Nothing here measures time: a write is kept "in flight" by an event the test sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from sipush.errors import StoreError
from sipush.store import ChangeSet
from sipush.store.group_commit import GroupCommit
from tests.store.storekit import Backend, make_binding, make_push

Body = Callable[[AsyncConnection], Awaitable[Any]]


class Database:
    """A SQLite file with one table ``writes(name PRIMARY KEY, txid)``; ``run`` is a faithful
    "one body, one transaction" runner that numbers its transactions, and each body written by
    ``insert`` stamps its row with the number of the transaction it ran in."""

    def __init__(self, path: Path) -> None:
        self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        self.transactions: list[str] = []  # the action of each transaction that began

    async def create(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE writes (name TEXT PRIMARY KEY, txid INT)"))

    async def run(self, action: str, body: Body) -> Any:
        self.transactions.append(action)
        async with self.engine.begin() as conn:
            return await body(conn)

    def insert(self, name: str, gate: asyncio.Event | None = None) -> Body:
        """A body that inserts ``name`` and returns it upper-cased; with ``gate``, it waits for
        the gate first (its transaction stays in flight)."""

        async def body(conn: AsyncConnection) -> str:
            if gate is not None:
                await gate.wait()
            txid = len(self.transactions)
            await conn.execute(
                text("INSERT INTO writes VALUES (:name, :txid)"), {"name": name, "txid": txid}
            )
            return name.upper()

        return body

    async def rows(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            result = await conn.execute(text("SELECT name, txid FROM writes ORDER BY rowid"))
            return {name: txid for name, txid in result}


@asynccontextmanager
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "group.db")
    try:
        await db.create()
        yield db
    finally:
        await db.engine.dispose()


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (no clock: a bounded number of turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_writes_submitted_during_a_transaction_share_the_next_one(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run)
        gate = asyncio.Event()
        first = asyncio.create_task(group.submit("first", db.insert("w0", gate)))
        await until(lambda: len(db.transactions) == 1)  # w0's transaction is in flight
        queued = [
            asyncio.create_task(group.submit(f"write {i}", db.insert(f"w{i}")))
            for i in range(1, 10)
        ]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(first, *queued)

        assert results == [f"W{i}" for i in range(10)]  # each caller its own result, in order
        assert group.transactions == 2 < len(results)
        assert db.transactions == ["first", "commit 9 writes"]
        rows = await db.rows()
        assert list(rows) == [f"w{i}" for i in range(10)]  # committed in submission order
        assert set(rows.values()) == {1, 2}
        assert {name for name, txid in rows.items() if txid == 2} == {f"w{i}" for i in range(1, 10)}


async def test_a_batch_is_at_most_max_batch_writes(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run, max_batch=3)
        gate = asyncio.Event()
        first = asyncio.create_task(group.submit("first", db.insert("w0", gate)))
        await until(lambda: len(db.transactions) == 1)
        queued = [asyncio.create_task(group.submit("w", db.insert(f"w{i}"))) for i in range(1, 8)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(first, *queued) == [f"W{i}" for i in range(8)]
        assert db.transactions == ["first", "commit 3 writes", "commit 3 writes", "w"]
        assert list(await db.rows()) == [f"w{i}" for i in range(8)]


async def test_a_failing_body_fails_only_its_own_caller(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run)
        gate = asyncio.Event()
        first = asyncio.create_task(group.submit("first", db.insert("taken", gate)))
        await until(lambda: len(db.transactions) == 1)
        names = ["a", "b", "taken", "c", "d"]  # "taken" again: a primary key violation
        queued = [asyncio.create_task(group.submit(name, db.insert(name))) for name in names]
        await asyncio.sleep(0)
        gate.set()
        outcomes = await asyncio.gather(first, *queued, return_exceptions=True)

        assert outcomes[:3] == ["TAKEN", "A", "B"]
        assert isinstance(outcomes[3], IntegrityError)
        assert outcomes[4:] == ["C", "D"]
        # the shared transaction rolled back whole, then each write ran alone
        assert db.transactions == ["first", "commit 5 writes", "a", "b", "taken", "c", "d"]
        rows = await db.rows()
        assert list(rows) == ["taken", "a", "b", "c", "d"]
        assert rows["taken"] == 1  # the first one, never overwritten

        # the drain task survived: the next write runs, alone
        assert await group.submit("later", db.insert("e")) == "E"
        assert group.transactions == len(db.transactions) == 8


async def test_a_cancelled_caller_does_not_break_the_others(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run)
        gate = asyncio.Event()
        first = asyncio.create_task(group.submit("first", db.insert("w0", gate)))
        await until(lambda: len(db.transactions) == 1)
        queued = [
            asyncio.create_task(group.submit(f"w{i}", db.insert(f"w{i}"))) for i in range(1, 5)
        ]
        await asyncio.sleep(0)
        queued[1].cancel()  # w2 stops waiting while its write is queued
        gate.set()
        outcomes = await asyncio.gather(first, *queued, return_exceptions=True)

        assert isinstance(outcomes[2], asyncio.CancelledError)
        assert [outcomes[i] for i in (0, 1, 3, 4)] == ["W0", "W1", "W3", "W4"]
        # documented: a cancelled caller's write is not cancelled (it shares a transaction)
        assert list(await db.rows()) == ["w0", "w1", "w2", "w3", "w4"]
        assert await group.submit("later", db.insert("w5")) == "W5"


async def test_a_caller_cancelled_during_its_own_transaction(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run)
        gate = asyncio.Event()
        alone = asyncio.create_task(group.submit("alone", db.insert("w0", gate)))
        await until(lambda: len(db.transactions) == 1)
        alone.cancel()
        later = asyncio.create_task(group.submit("later", db.insert("w1")))
        await asyncio.sleep(0)
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await alone
        assert await later == "W1"
        assert list(await db.rows()) == ["w0", "w1"]


async def test_drain_waits_for_everything_queued(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run, max_batch=4)
        await group.drain()  # nothing queued: returns at once
        gate = asyncio.Event()
        tasks = [asyncio.create_task(group.submit("first", db.insert("w0", gate)))]
        await until(lambda: len(db.transactions) == 1)
        tasks += [asyncio.create_task(group.submit("w", db.insert(f"w{i}"))) for i in range(1, 11)]
        await asyncio.sleep(0)
        draining = asyncio.create_task(group.drain())
        await asyncio.sleep(0)
        assert not draining.done()
        gate.set()
        await draining
        assert list(await db.rows()) == [f"w{i}" for i in range(11)]
        assert all(task.done() for task in tasks)
        assert [task.result() for task in tasks] == [f"W{i}" for i in range(11)]
        assert group.transactions == 4  # 1 alone, then batches of 4, 4 and 2


async def test_drain_survives_its_caller_being_cancelled(tmp_path: Path) -> None:
    async with database(tmp_path) as db:
        group: GroupCommit[AsyncConnection] = GroupCommit(db.run)
        gate = asyncio.Event()
        write = asyncio.create_task(group.submit("first", db.insert("w0", gate)))
        await until(lambda: len(db.transactions) == 1)
        draining = asyncio.create_task(group.drain())
        await asyncio.sleep(0)
        draining.cancel()  # shielded: the writes go on
        gate.set()
        assert await write == "W0"
        assert list(await db.rows()) == ["w0"]


async def test_a_bad_write_in_a_shared_store_transaction_fails_alone(backend: Backend) -> None:
    """Through the real store: pushes recorded while a write is in flight share a
    transaction with a change set the database rejects (a NULL contact); only that change set
    fails, every push is stored with its own id."""
    bad = make_binding("sip:carol@example.com")
    object.__setattr__(bad, "contact", None)  # NOT NULL in the schema
    async with await backend.open() as store:
        first = asyncio.create_task(store.record_push(make_push(device_id="first")))
        await asyncio.sleep(0)  # its transaction has begun; what follows queues behind it
        pushes = [store.record_push(make_push(device_id=f"d{i}")) for i in range(5)]
        outcomes = await asyncio.gather(
            first,
            *pushes[:2],
            store.apply(ChangeSet(upserts=(bad,))),
            store.apply(ChangeSet(upserts=(make_binding("sip:dave@example.com"),))),
            *pushes[2:],
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], StoreError), outcomes
        assert outcomes[3] is errors[0]
        assert outcomes[4] is None
        ids = [o for i, o in enumerate(outcomes) if i not in (3, 4)]
        assert len(set(ids)) == 6 and all(isinstance(i, int) for i in ids)
        stored = await store.pushes(limit=10)
        assert sorted(r.device_id for r in stored) == ["d0", "d1", "d2", "d3", "d4", "first"]
        assert {r.id for r in stored} == set(ids)
        assert [b.aor for b in await store.list(include_expired=True)] == ["sip:dave@example.com"]
