"""Group commit: the writes that queue up while one transaction runs share the next one.

Theory of operation
-------------------
Every write of :class:`~sipush.store.BindingStore` is a *body*: an async function that runs its
statements on a connection inside a transaction. :meth:`GroupCommit.submit` queues a body and
waits for its result. One drain task runs at a time:

* the first write of a quiet period starts the drain task and runs at once, alone (no added
  latency when the store is idle);
* writes submitted while a transaction is in flight queue up; when it ends, the drain task runs
  everything queued in ONE transaction (bodies in submission order), then sets each caller's
  result;
* when that shared transaction fails, it was rolled back as a whole, so each of its bodies runs
  again in a transaction of its own: only the write that really fails reports the error, the
  others commit as if they had run alone.

So under load the number of transactions (and on SQLite, of write-lock round trips and
``COMMIT`` fsyncs) grows with the number of *batches*, not of writes, while every write still
commits atomically and in order. A caller that is cancelled while waiting does not cancel its
write (it may already be committed with others); its result is dropped.

:class:`MergedWrites` goes one step further for writes of one kind (change sets, push
records): everything queued becomes ONE body, written with one multi-row statement.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")
_C = TypeVar("_C")
_X = TypeVar("_X")

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # bodies in one shared transaction; the rest wait for the next one


@dataclass(eq=False)
class _Queued(Generic[_C]):
    action: str
    body: Callable[[_C], Awaitable[Any]]
    future: asyncio.Future[Any]
    on_commit: Callable[[Any], None] | None = None


class GroupCommit(Generic[_C]):
    """Runs write bodies through ``run_in_transaction(action, body)`` in shared transactions.

    ``run_in_transaction`` is the store's own "one body, one transaction" runner (with its error
    mapping and retries); a batch is handed to it as one body that runs every queued body.
    """

    def __init__(
        self,
        run_in_transaction: Callable[[str, Callable[[_C], Awaitable[Any]]], Awaitable[Any]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run = run_in_transaction
        self._max_batch = max_batch
        self._queue: list[_Queued[_C]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # how many transactions ran (for tests and benchmarks)

    async def submit(
        self,
        action: str,
        body: Callable[[_C], Awaitable[_T]],
        on_commit: Callable[[_T], None] | None = None,
    ) -> _T:
        """Run ``body`` in a write transaction (possibly shared); return its result.

        ``on_commit(result)`` runs as soon as the transaction has committed, in commit order
        (writes of one batch in submission order), before any caller resumes: what must follow
        the database exactly (the binding cache) is updated there, not by the callers."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(action, body, future, on_commit))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def drain(self) -> None:
        """Wait until every queued write has committed (or failed)."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            if len(batch) == 1:
                await self._run_alone(batch[0])
            else:
                await self._run_shared(batch)

    async def _run_alone(self, item: _Queued[_C]) -> None:
        self.transactions += 1
        try:
            result = await self._run(item.action, item.body)
        except Exception as err:
            _settle(item.future, error=err)
        else:
            _committed(item, result)
            _settle(item.future, result=result)

    async def _run_shared(self, batch: list[_Queued[_C]]) -> None:
        async def together(conn: _C) -> list[Any]:
            return [await item.body(conn) for item in batch]

        self.transactions += 1
        try:
            results = await self._run(f"commit {len(batch)} writes", together)
        except Exception as err:
            # Rolled back as a whole: find the write that fails by running each alone.
            logger.debug("%d writes failed together (%s); retrying each alone", len(batch), err)
            for item in batch:
                await self._run_alone(item)
            return
        for item, result in zip(batch, results, strict=True):
            _committed(item, result)
        for item, result in zip(batch, results, strict=True):
            _settle(item.future, result=result)


def _committed(item: _Queued[Any], result: Any) -> None:
    if item.on_commit is not None:
        try:
            item.on_commit(result)
        except Exception:  # a hook's bug must not lose the write's result
            logger.exception("after committing %s", item.action)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class MergedWrites(Generic[_C, _X]):
    """Items (change sets, push records) written by ONE merged body per shared transaction.

    :meth:`submit` queues an item and waits until it is committed. The first item of a batch
    submits one body to the :class:`GroupCommit`; when that body runs, it takes every item
    queued by then and writes them all with ``write_all(conn, items)`` (e.g. one multi-row
    statement). If that fails, each item of the batch is written alone (``write_all(conn,
    [item])`` in its own transaction), so only a bad item reports the error.
    """

    def __init__(
        self,
        group: GroupCommit[_C],
        action: str,
        write_all: Callable[[_C, list[_X]], Awaitable[None]],
        on_committed: Callable[[list[_X]], None] | None = None,
    ) -> None:
        self._group = group
        self._action = action
        self._write_all = write_all
        self._on_committed = on_committed
        self._pending: list[tuple[_X, asyncio.Future[None]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: _X) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            task = asyncio.get_running_loop().create_task(self._write_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def drain(self) -> None:
        """Wait until every submitted item has been written (or failed)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write_pending(self) -> None:
        taken: list[tuple[_X, asyncio.Future[None]]] = []

        async def body(conn: _C) -> None:
            if not taken:  # first run; a re-run after a failed shared transaction reuses them
                taken.extend(self._pending)
                self._pending.clear()
                self._scheduled = False
            await self._write_all(conn, [item for item, _ in taken])

        def committed(_: None) -> None:
            if self._on_committed is not None:
                self._on_committed([item for item, _ in taken])

        try:
            await self._group.submit(self._action, body, committed)
        except Exception as err:
            if not taken:  # the body never ran (no connection): fail what waits
                self._scheduled = False
                taken.extend(self._pending)
                self._pending.clear()
            if len(taken) == 1:
                _settle(taken[0][1], error=err)
                return
            for item, future in taken:  # find the bad one: each alone
                try:
                    await self._group.submit(
                        self._action,
                        functools.partial(_write_one, self._write_all, item),
                        None
                        if self._on_committed is None
                        else _call_with([item], self._on_committed),
                    )
                except Exception as alone_err:
                    _settle(future, error=alone_err)
                else:
                    _settle(future)
            return
        for _, future in taken:
            _settle(future)


def _call_with(items: list[_X], hook: Callable[[list[_X]], None]) -> Callable[[None], None]:
    return lambda _: hook(items)


async def _write_one(
    write_all: Callable[[_C, list[_X]], Awaitable[None]], item: _X, conn: _C
) -> None:
    await write_all(conn, [item])
