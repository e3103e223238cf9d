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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")
_C = TypeVar("_C")

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # bodies in one shared transaction; the rest wait for the next one


@dataclass(eq=False)
class _Queued(Generic[_C]):
    action: str
    body: Callable[[_C], Awaitable[Any]]
    future: asyncio.Future[Any]


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

    async def submit(self, action: str, body: Callable[[_C], Awaitable[_T]]) -> _T:
        """Run ``body`` in a write transaction (possibly shared); return its result."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(action, body, future))
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
            _settle(item.future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
