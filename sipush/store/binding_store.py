"""The binding store: bindings in SQLite (one process or a few on one machine) or PostgreSQL.

Theory of operation
-------------------
SQLAlchemy 2.x Core on its asyncio engine (``aiosqlite``, ``asyncpg``). Core, not the ORM: a
binding is a frozen value (:class:`~sipush.store.model.Binding`), never a tracked mutable entity,
and every write is one explicit statement (``INSERT ... ON CONFLICT DO UPDATE``, ``DELETE``),
so there is no session, identity map or flush order to reason about.

* :meth:`BindingStore.open` checks the URL, creates the engine and, when the database has no
  ``bindings`` table, runs ``sql/<dialect>/schema.sql`` (the schema's source of truth) in one
  transaction. A database of an older schema version is upgraded in place, in one transaction
  (version 1 -> 2: the ``pushes`` table and its indexes, from the same ``schema.sql``); one
  written by a newer sipush (``schema_version``) is refused.
* :meth:`BindingStore.apply` commits a whole :class:`~sipush.store.model.ChangeSet` in ONE
  transaction: removals first, then upserts. An upsert replaces the row of its
  ``(aor, device_id)`` but keeps the row's ``created_at``.
* Push records (:class:`~sipush.store.model.PushRecord`): :meth:`BindingStore.record_push`
  keeps one per push sent, :meth:`BindingStore.mark_reregistered` stamps the device's recent
  pushes when its REGISTER is accepted, :meth:`BindingStore.pushes` reads them newest first,
  and :meth:`BindingStore.purge_expired` deletes those older than ``PUSH_RETENTION`` (7 days)
  along with the expired bindings.
* SQLite: the path is made absolute against the working directory at open time. The file is
  switched to WAL journal mode (readers never block the writer, so ``sipush bindings list`` runs
  while ``sipush serve`` writes) with ``synchronous=NORMAL``, and every connection waits up to
  ``busy_timeout`` seconds for another process's write lock. Write transactions start with
  ``BEGIN IMMEDIATE``, so they take the write lock up front (and wait for it) instead of failing
  half-way when another process wrote first; writes within one process queue on an asyncio lock.
* Group commit: writes that arrive while one is being committed wait, then share the next
  transaction (one BEGIN/COMMIT, one connection, one lock for all of them), so a burst of
  REGISTER 2xx costs a few transactions instead of one each. A write that fails inside a shared
  transaction is not blamed on the others: the batch is rolled back and each write is retried
  alone (see :mod:`sipush.store.group_commit`).
* PostgreSQL: an optional ``schema`` (created if missing) becomes the connections' search_path;
  schema creation runs under an advisory lock; a transaction that loses a deadlock or
  serialization race is retried (it is all-or-nothing, so a retry is safe).
* Every database failure leaves as :class:`~sipush.errors.StoreError` with one readable line
  (``cannot open the SQLite database /srv/sipush.db: unable to open database file``,
  ``cannot connect to PostgreSQL postgres@127.0.0.1:5432/test: ...``); passwords never appear.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from errno import ECONNREFUSED
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from sqlalchemy import (
    Delete,
    Insert,
    Select,
    Update,
    delete,
    event,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from sipush.errors import StoreError
from sipush.store.binding_cache import DEFAULT_MAX_AORS, BindingCache
from sipush.store.group_commit import GroupCommit, MergedWrites
from sipush.store.model import ALL_DEVICES, Binding, ChangeSet, PushRecord, as_utc
from sipush.store.tables import (
    ADDED_TABLES,
    KEY_COLUMNS,
    OLDEST_UPGRADABLE,
    SCHEMA_VERSION,
    binding_to_row,
    bindings,
    push_record_to_row,
    row_to_binding,
    row_to_push_record,
    schema_version,
)
from sipush.store.tables import pushes as push_table

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "sqlite+aiosqlite:///sipush.db"
# sipush/store/sql/<dialect>/schema.sql link to the repository's sql/ files and are copied into
# the wheel as package data, so an installed sipush finds its DDL too.
SQL_DIR: Final = Path(__file__).parent / "sql"
DEFAULT_BUSY_TIMEOUT: Final = 5.0  # seconds a SQLite connection waits for another's write lock
SQLITE_CACHE_KIB: Final = 65536  # page cache per SQLite connection
SQLITE_MMAP_BYTES: Final = 1 << 28  # SQLite reads the file through a mapping of up to 256 MiB
DEFAULT_CONNECT_TIMEOUT: Final = 10.0  # seconds to reach PostgreSQL
RETRIED_SQLSTATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
MAX_ATTEMPTS: Final = 3
PUSH_RETENTION: Final = timedelta(days=7)  # purge_expired deletes push records older than this
PURGE_CHUNK: Final = 2000  # expired bindings deleted per transaction by purge_expired
REREGISTER_WINDOW: Final = timedelta(minutes=2)  # mark_reregistered: pushes this recent count
_SCHEMA_LOCK_KEY: Final = 0x5150_5553_4800  # pg_advisory_xact_lock key: "sipush" schema setup
_WRITE_OPTION: Final = "sipush_write"  # execution option: begin the transaction IMMEDIATE
_URL_EXAMPLES: Final = "sqlite+aiosqlite:///sipush.db or postgresql+asyncpg://USER@HOST:5432/DB"
_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class BindingStore:
    """Bindings in a database; create with ``await BindingStore.open(url)``, end with ``close()``.

    Safe for concurrent use by many tasks of one event loop, and by several processes on the
    same database (SQLite: on one machine). Usable as ``async with await open_store(url) as s:``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        where: str,
        *,
        serialize_all: bool,
        driver_errors: tuple[type[Exception], ...] = (),
        cache: BindingCache | None = None,
    ) -> None:
        """Internal: use :meth:`open`. ``where`` names the database in error messages;
        ``driver_errors`` are what the driver may raise without SQLAlchemy wrapping it (asyncpg
        connect errors under SQLAlchemy 2.0)."""
        self._engine = engine
        self._driver_errors: tuple[type[Exception], ...] = (
            SQLAlchemyError,
            sqlite3.Error,
            OSError,
            *driver_errors,
        )
        self._where = where
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._serialize_all = serialize_all  # in-memory SQLite: one shared connection
        self._lock = asyncio.Lock()
        self._closed = False
        self._upsert = _upsert_statement(engine.dialect.name)
        self._group: GroupCommit[AsyncConnection] = GroupCommit(self._write_alone)
        self.cache = cache
        self._checkpointer: asyncio.Task[None] | None = None
        self._changes: MergedWrites[AsyncConnection, ChangeSet] = MergedWrites(
            self._group, "apply a change set", self._write_change_sets, self._cache_applied
        )
        self._push_records: MergedWrites[AsyncConnection, PushRecord] = MergedWrites(
            self._group, "record pushes", self._write_push_records
        )

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        schema: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        create: bool = True,
        cache_ttl: float = 0.0,
        cache_size: int = DEFAULT_MAX_AORS,
        checkpoint_interval: float = 0.0,
    ) -> BindingStore:
        """Open the store at ``url``, creating its tables when missing.

        ``url``: ``sqlite+aiosqlite:///sipush.db`` (relative to the working directory; four
        slashes for an absolute path; ``sqlite+aiosqlite://`` for a private in-memory
        database) or ``postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB`` (``sqlite://`` and
        ``postgresql://`` mean the same drivers). ``schema`` (PostgreSQL only): keep the
        tables in that schema, created if missing, instead of the connection's search_path.
        ``busy_timeout``: seconds to wait for another process's SQLite write lock.
        ``create=False``: refuse (rather than create) a missing SQLite file or missing tables,
        as the ``sipush bindings`` commands do. ``cache_ttl`` > 0: keep the bindings this
        process reads and writes in memory (:class:`~sipush.store.binding_cache.BindingCache`,
        at most ``cache_size`` AORs), trusting each for that many seconds; ``sipush serve``
        does, the CLI does not. ``checkpoint_interval`` > 0 (a SQLite file): SQLite's
        automatic WAL checkpoint, which runs inside a commit and makes the writes queued behind
        it wait, is replaced by a PASSIVE checkpoint every that many seconds from a thread of
        its own, alongside the writes. Raises :class:`StoreError`.
        """
        parsed = _parse_url(url)
        memory = False
        sqlite_file: str | None = None
        if parsed.get_backend_name() == "sqlite":
            if schema is not None:
                raise StoreError("a schema can only be given for a PostgreSQL store")
            memory = parsed.database in (None, "", ":memory:")
            if not memory:
                assert parsed.database is not None
                sqlite_file = os.path.abspath(parsed.database)
                parsed = parsed.set(database=sqlite_file)
                if not create and not os.path.isfile(sqlite_file):
                    raise StoreError(
                        f"no binding store: the SQLite database {sqlite_file} does not exist"
                    )
            engine = _sqlite_engine(
                parsed,
                memory=memory,
                busy_timeout=busy_timeout,
                autocheckpoint=memory or checkpoint_interval <= 0,
            )
            where = "SQLite database " + (":memory:" if memory else str(parsed.database))
        else:
            engine = _postgresql_engine(parsed, schema=schema)
            where = "PostgreSQL " + _describe_postgresql(parsed, schema)
        driver_errors = () if parsed.get_backend_name() == "sqlite" else _asyncpg_errors()
        cache = BindingCache(ttl=cache_ttl, max_aors=cache_size) if cache_ttl > 0 else None
        store = cls(engine, where, serialize_all=memory, driver_errors=driver_errors, cache=cache)
        try:
            if sqlite_file is not None:
                with store._mapped_errors("open", connecting=True):
                    await asyncio.to_thread(_probe_sqlite_file, sqlite_file, busy_timeout)
            await store._prepare_schema(schema, create=create)
        except BaseException:
            await engine.dispose()
            raise
        if sqlite_file is not None and checkpoint_interval > 0:
            store._checkpointer = asyncio.get_running_loop().create_task(
                store._checkpoint_every(checkpoint_interval, sqlite_file, busy_timeout)
            )
        return store

    async def _checkpoint_every(self, interval: float, path: str, busy_timeout: float) -> None:
        """Copy the WAL into the database file every ``interval`` seconds, beside the writes."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(_wal_checkpoint, path, busy_timeout)
            except (sqlite3.Error, OSError) as err:
                logger.warning("%s: WAL checkpoint failed: %s", self._where, err)

    async def apply(self, changes: ChangeSet) -> None:
        """Commit ``changes`` in one transaction: removals, then upserts (keeping created_at).

        Change sets applied while a write is in flight are merged (in order, with the same
        effect as one after the other) into the next transaction's statements: one DELETE per
        removal and ONE multi-row upsert for all their bindings, instead of a statement per
        REGISTER. If that shared commit fails, each change set is committed alone, so only a
        bad one reports the error.
        """
        if not changes:
            return
        await self._changes.submit(changes)  # the cache follows in _cache_applied

    async def get(self, aor: str) -> builtins.list[Binding]:
        """Every binding of ``aor``, expired ones included (the caller decides with its clock)."""
        if self.cache is None:
            return await self.list(aor, include_expired=True)
        cached = self.cache.lookup(aor)
        if cached is not None:
            return cached
        generation = self.cache.generation
        found = await self.list(aor, include_expired=True)
        self.cache.loaded(aor, found, generation)
        return found

    def find_in_memory(
        self, aor: str, matches: Callable[[Binding], bool]
    ) -> tuple[bool, Binding | None]:
        """``(True, binding)`` when the cache alone answers :meth:`find` (a fresh binding that
        matches, or a fresh complete entry with none: ``(True, None)``); ``(False, None)``
        when only the database can tell."""
        if self.cache is None:
            return False, None
        found = self.cache.find(aor, matches)
        if found is not None:
            return True, found
        if self.cache.lookup(aor) is not None:
            return True, None
        return False, None

    async def find(self, aor: str, matches: Callable[[Binding], bool]) -> Binding | None:
        """The first binding of ``aor`` (by device id) for which ``matches`` is true: from the
        cache when it knows one, else from :meth:`get`."""
        if self.cache is not None:
            found = self.cache.find(aor, matches)
            if found is not None:
                return found
        for binding in await self.get(aor):
            if matches(binding):
                return binding
        return None

    async def list(
        self, aor: str | None = None, *, include_expired: bool = False, now: datetime | None = None
    ) -> builtins.list[Binding]:
        """Bindings of ``aor`` (all AORs when ``None``), sorted by AOR then device id.

        Bindings whose ``expires_at`` has been reached at ``now`` (default: the current time)
        are left out unless ``include_expired``.
        """
        query: Select[Any] = select(bindings).order_by(bindings.c.aor, bindings.c.device_id)
        if aor is not None:
            query = query.where(bindings.c.aor == aor)
        if not include_expired:
            moment = datetime.now(UTC) if now is None else as_utc(now, "now")
            query = query.where(bindings.c.expires_at > moment)
        async with self._transaction("read bindings", write=False) as conn:
            result = await conn.execute(query)
            return [row_to_binding(row) for row in result.mappings()]

    async def delete(self, aor: str, device_id: str | None = None) -> int:
        """Remove one device's binding of ``aor`` (all of them when ``device_id`` is ``None`` or
        ``"*"``); return how many rows went."""
        cache = self.cache
        return await self._write_count(
            "delete bindings",
            _delete_statement(aor, device_id or ALL_DEVICES),
            None if cache is None else lambda _: cache.forget(aor),
        )

    async def purge_expired(
        self, now: datetime, *, push_retention: timedelta = PUSH_RETENTION
    ) -> int:
        """Remove every binding whose ``expires_at`` is reached at ``now``; return how many.

        Push records sent more than ``push_retention`` (default ``PUSH_RETENTION``, 7 days)
        before ``now`` are deleted too; they are not counted. Bindings go ``PURGE_CHUNK`` at a
        time, each chunk its own short transaction: a mass expiry (a third of a million rows
        took 1.8 s in one DELETE on PostgreSQL) never holds up the REGISTER commits queued
        behind it for longer than one chunk.
        """
        moment = as_utc(now, "now")
        cutoff = moment - _non_negative(push_retention, "push_retention")
        key = tuple_(bindings.c.aor, bindings.c.device_id)

        async def chunk(conn: AsyncConnection) -> int:
            expired = select(bindings.c.aor, bindings.c.device_id).where(
                bindings.c.expires_at <= moment
            )
            keys = [tuple(row) for row in (await conn.execute(expired.limit(PURGE_CHUNK))).all()]
            if not keys:
                return 0
            result = await conn.execute(
                delete(bindings).where(key.in_(keys), bindings.c.expires_at <= moment)
            )
            return len(keys) if result.rowcount is None else int(result.rowcount)

        async def old_pushes(conn: AsyncConnection) -> None:
            await conn.execute(delete(push_table).where(push_table.c.sent_at < cutoff))

        cache = self.cache
        expired: Callable[[int], None] | None = (
            None if cache is None else lambda _: cache.expire(moment)
        )
        removed = 0
        while True:
            count = await self._write("purge expired bindings", chunk, expired)
            removed += count
            if count < PURGE_CHUNK:
                break
        await self._write("purge old push records", old_pushes)
        return removed

    async def _write_change_sets(
        self, conn: AsyncConnection, change_sets: builtins.list[ChangeSet]
    ) -> None:
        """The statements of ``change_sets`` applied in order (see :func:`merged_segments`)."""
        for removals, upserts in merged_segments(change_sets):
            for aor, device_id in removals:
                await conn.execute(_delete_statement(aor, device_id))
            if upserts:
                await conn.execute(self._upsert, [binding_to_row(b) for b in upserts])

    def _cache_applied(self, change_sets: builtins.list[ChangeSet]) -> None:
        """Committed: the cache follows, in commit order (before any caller resumes)."""
        if self.cache is not None:
            for changes in change_sets:
                self.cache.applied(changes)

    async def _write_push_records(
        self, conn: AsyncConnection, records: builtins.list[PushRecord]
    ) -> None:
        await conn.execute(insert(push_table), [push_record_to_row(r) for r in records])

    async def add_push_record(self, record: PushRecord) -> None:
        """Store ``record`` like :meth:`record_push`, without learning its id: records added
        while a write is in flight go in together, as one multi-row insert (the wake path
        records every push it sends)."""
        _check_new_record(record)
        await self._push_records.submit(record)

    async def record_push(self, record: PushRecord) -> int:
        """Store ``record`` (one push sent) and return the id the database gave it.

        ``record.id`` must be ``None``: the store assigns ids (increasing, never reused).
        """
        _check_new_record(record)
        statement = insert(push_table).values(push_record_to_row(record)).returning(push_table.c.id)

        async def body(conn: AsyncConnection) -> int:
            return int((await conn.execute(statement)).scalar_one())

        return await self._write("record a push", body)

    async def mark_reregistered(
        self,
        aor: str,
        device_id: str,
        at: datetime,
        *,
        within: timedelta = REREGISTER_WINDOW,
    ) -> int:
        """The device's REGISTER was accepted at ``at``: set ``reregistered_at = at`` on its push
        records sent from ``at - within`` to ``at`` (inclusive) that have none yet; return how
        many. Older pushes (the app did not come back for them) and records already stamped
        (by an earlier REGISTER) keep theirs."""
        moment = as_utc(at, "at")
        since = moment - _non_negative(within, "within")
        statement = (
            update(push_table)
            .where(
                push_table.c.aor == aor,
                push_table.c.device_id == device_id,
                push_table.c.reregistered_at.is_(None),
                push_table.c.sent_at >= since,
                push_table.c.sent_at <= moment,
            )
            .values(reregistered_at=moment)
        )
        return await self._write_count("mark pushes re-registered", statement)

    async def pushes(
        self, aor: str | None = None, *, device_id: str | None = None, limit: int = 100
    ) -> builtins.list[PushRecord]:
        """Push records, newest first (by ``sent_at``, then id): of ``aor`` (every AOR when
        ``None``), of one ``device_id`` if given; at most ``limit`` (>= 1)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        query: Select[Any] = select(push_table).order_by(
            push_table.c.sent_at.desc(), push_table.c.id.desc()
        )
        if aor is not None:
            query = query.where(push_table.c.aor == aor)
        if device_id is not None:
            query = query.where(push_table.c.device_id == device_id)
        async with self._transaction("read push records", write=False) as conn:
            result = await conn.execute(query.limit(limit))
            return [row_to_push_record(row) for row in result.mappings()]

    async def close(self) -> None:
        """Release every connection. Idempotent; the store is unusable afterwards."""
        if not self._closed:
            if self._checkpointer is not None:
                self._checkpointer.cancel()
                await asyncio.gather(self._checkpointer, return_exceptions=True)
            await self._changes.drain()  # change sets and records already submitted commit
            await self._push_records.drain()
            await self._group.drain()
            self._closed = True
            await self._engine.dispose()

    async def __aenter__(self) -> BindingStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<BindingStore {self._where}{' (closed)' if self._closed else ''}>"

    # Internals.

    @asynccontextmanager
    async def _transaction(self, action: str, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """One database transaction, with errors mapped to :class:`StoreError`."""
        if self._closed:
            raise StoreError(f"{self._where}: the store is closed")
        serialize = self._serialize_all or (write and self._is_sqlite)
        async with self._lock if serialize else _no_lock():
            with self._mapped_errors(action, connecting=True):
                conn = await self._engine.connect()
            try:
                with self._mapped_errors(action, connecting=False):
                    if write:
                        await conn.execution_options(**{_WRITE_OPTION: True})
                    async with conn.begin():
                        yield conn
            finally:
                with self._mapped_errors(action, connecting=False):
                    await conn.close()

    async def _write(
        self,
        action: str,
        body: Callable[[AsyncConnection], Awaitable[_T]],
        on_commit: Callable[[_T], None] | None = None,
    ) -> _T:
        """Run ``body`` in a write transaction, sharing it with the writes queued meanwhile
        (group commit, see :class:`~sipush.store.group_commit.GroupCommit`); ``on_commit``
        runs right after the commit, in commit order."""
        if self._closed:
            raise StoreError(f"{self._where}: the store is closed")
        return await self._group.submit(action, body, on_commit)

    async def _write_alone(
        self, action: str, body: Callable[[AsyncConnection], Awaitable[_T]]
    ) -> _T:
        """Run ``body`` in a write transaction of its own; on PostgreSQL, run it again (in a new
        transaction, up to ``MAX_ATTEMPTS`` in all) when it lost a deadlock or serialization
        race."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._transaction(action, write=True) as conn:
                    return await body(conn)
            except StoreError as err:
                if attempt == MAX_ATTEMPTS or _sqlstate(err.__cause__) not in RETRIED_SQLSTATES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_count(
        self,
        action: str,
        statement: Delete | Update,
        on_commit: Callable[[int], None] | None = None,
    ) -> int:
        async def body(conn: AsyncConnection) -> int:
            result = await conn.execute(statement)
            return int(result.rowcount)

        return await self._write(action, body, on_commit)

    @contextmanager
    def _mapped_errors(self, action: str, *, connecting: bool) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except self._driver_errors as err:
            raise StoreError(self._failure_text(action, err, connecting)) from err

    def _failure_text(self, action: str, err: BaseException, connecting: bool) -> str:
        reason = _reason(err)
        if self._is_sqlite:
            if "unable to open database file" in reason:
                return f"cannot open the {self._where}: {reason} (does its directory exist?)"
            if "not a database" in reason:
                return f"cannot open the {self._where}: {reason} (is it a SQLite database?)"
            if "locked" in reason or "busy" in reason:
                return f"{self._where} stayed locked by another process: {reason}"
        if connecting:
            verb = "open the" if self._is_sqlite else "connect to"
            return f"cannot {verb} {self._where}: {reason}"
        return f"{self._where}: cannot {action}: {reason}"

    async def _prepare_schema(self, schema: str | None, *, create: bool) -> None:
        """Check the schema version; without a ``bindings`` table, run ``sql/<dialect>/schema.sql``
        (``create``) or refuse; upgrade an older version (even with ``create=False``: the store
        exists, it only gains tables). The checks are reads, so they never wait for a writer."""
        async with self._transaction("read the schema", write=False) as conn:
            present = await conn.run_sync(_has_table, bindings.name)
        if not present:
            if not create:
                raise StoreError(f"no binding store in the {self._where}: it has no tables yet")
            await self._create_schema(schema)
        found = await self._schema_version()
        if isinstance(found, int) and OLDEST_UPGRADABLE <= found < SCHEMA_VERSION:
            await self._upgrade_schema()
            found = await self._schema_version()
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"{self._where} has schema version {found}; this sipush reads {SCHEMA_VERSION}"
            )

    async def _schema_version(self) -> Any:
        async with self._transaction("read the schema version", write=False) as conn:
            return await _read_schema_version(conn, self._where)

    async def _upgrade_schema(self) -> None:
        """Bring an older database to ``SCHEMA_VERSION`` in one transaction: create the tables
        (and their indexes) of ``ADDED_TABLES`` from ``schema.sql``, then set the version. Safe
        against concurrent openers: they serialise (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
        schema advisory lock) and the later ones find the work done."""
        async with self._transaction("upgrade the schema", write=True) as conn:
            if not self._is_sqlite:
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            found = await _read_schema_version(conn, self._where)
            if not isinstance(found, int) or not OLDEST_UPGRADABLE <= found < SCHEMA_VERSION:
                return  # done meanwhile by another opener (or not ours to upgrade)
            for statement in upgrade_statements(conn.dialect.name, found):
                await conn.exec_driver_sql(statement)
            await conn.execute(update(schema_version).values(version=SCHEMA_VERSION))

    async def _create_schema(self, schema: str | None) -> None:
        """Run the DDL in one transaction, unless a concurrent opener just did."""
        async with self._transaction("create the schema", write=True) as conn:
            if not self._is_sqlite:  # SQLite: BEGIN IMMEDIATE already serialises creators
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
                if schema is not None:
                    quoted = conn.dialect.identifier_preparer.quote_identifier(schema)
                    await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            if not await conn.run_sync(_has_table, bindings.name):
                for statement in schema_statements(conn.dialect.name):
                    await conn.exec_driver_sql(statement)


async def _read_schema_version(conn: AsyncConnection, where: str) -> Any:
    if not await conn.run_sync(_has_table, schema_version.name):
        raise StoreError(f"{where} has a bindings table but no schema_version table")
    return (await conn.execute(select(schema_version.c.version))).scalar()


_CREATES = re.compile(
    r"^CREATE\s+(?:TABLE\s+(?P<table>\w+)|(?:UNIQUE\s+)?INDEX\s+\w+\s+ON\s+(?P<indexed>\w+))",
    re.IGNORECASE,
)


def upgrade_statements(dialect: str, from_version: int) -> builtins.list[str]:
    """The statements of ``sql/<dialect>/schema.sql`` that upgrade a database of schema version
    ``from_version``: those creating the tables that later versions added (``ADDED_TABLES``)
    and their indexes, in file order. Not the version update."""
    added = {
        table
        for version, tables in ADDED_TABLES.items()
        if version > from_version
        for table in tables
    }
    chosen = []
    for statement in schema_statements(dialect):
        match = _CREATES.match(statement)
        if match and (match["table"] or match["indexed"]) in added:
            chosen.append(statement)
    return chosen


def schema_statements(dialect: str) -> builtins.list[str]:
    """The statements of ``sql/<dialect>/schema.sql`` (comments removed), in order."""
    return sql_statements(SQL_DIR / dialect / "schema.sql")


def sql_statements(path: Path) -> builtins.list[str]:
    """The statements of the SQL file at ``path`` (``--`` comments removed), in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StoreError(f"cannot read the schema file {path}: {err.strerror or err}") from None
    without_comments = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def _parse_url(text: str) -> URL:
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        shown = _PASSWORD.sub(r"\1***@", text)
        raise StoreError(f"bad store URL {shown!r}: expected {_URL_EXAMPLES}") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        shown = url.render_as_string(hide_password=True)
        raise StoreError(f"unsupported store URL {shown!r}: expected {_URL_EXAMPLES}")
    return url.set(drivername=driver)


def _sqlite_engine(
    url: URL, *, memory: bool, busy_timeout: float, autocheckpoint: bool = True
) -> AsyncEngine:
    options: dict[str, Any] = {"connect_args": {"timeout": busy_timeout}}
    if memory:
        options["poolclass"] = StaticPool  # one connection, or each would see its own database
    engine = create_async_engine(url, **options)
    busy_ms = max(0, round(busy_timeout * 1000))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (the "begin" hook below) emit BEGIN, not the sqlite3 module's guesswork.
        dbapi_connection.isolation_level = None
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
                # A big table's index pages stay in memory: 64 MiB of page cache (the default
                # 2 MiB holds ~3,000 bindings) and the file mapped rather than read.
                cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
                if not autocheckpoint:
                    cursor.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_every
            finally:
                cursor.close()
        except BaseException:
            dbapi_connection.close()  # else aiosqlite's thread outlives the event loop
            raise

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _wal_checkpoint(path: str, busy_timeout: float) -> None:
    """``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own: it copies what it can
    without waiting for (or blocking) the writers."""
    connection = sqlite3.connect(path, timeout=busy_timeout)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        connection.close()


def _probe_sqlite_file(path: str, busy_timeout: float) -> None:
    """Open ``path`` with the standard sqlite3 module and read its header, so that an unusable
    file fails here, in one readable error, before aiosqlite is involved (a failed aiosqlite
    connect leaves a worker thread that reports to the event loop after it may have closed,
    printing a traceback at the exit of a short-lived ``sipush bindings`` command)."""
    connection = sqlite3.connect(path, timeout=busy_timeout)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    finally:
        connection.close()


def _postgresql_engine(url: URL, *, schema: str | None) -> AsyncEngine:
    connect_args: dict[str, Any] = {"timeout": DEFAULT_CONNECT_TIMEOUT}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _asyncpg_errors() -> tuple[type[Exception], ...]:
    import asyncpg  # type: ignore[import-untyped]  # only for PostgreSQL stores

    return (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def _describe_postgresql(url: URL, schema: str | None) -> str:
    user = f"{url.username}@" if url.username else ""
    port = f":{url.port}" if url.port else ""
    where = f"{user}{url.host or 'localhost'}{port}/{url.database or ''}"
    return where + (f" (schema {schema})" if schema else "")


def _upsert_statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (aor, device_id) DO UPDATE`` every column but created_at."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_statement = pg_insert(bindings)
        replaced = _replaced_columns(pg_statement.excluded)
        return pg_statement.on_conflict_do_update(index_elements=KEY_COLUMNS, set_=replaced)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    sqlite_statement = sqlite_insert(bindings)
    replaced = _replaced_columns(sqlite_statement.excluded)
    return sqlite_statement.on_conflict_do_update(index_elements=KEY_COLUMNS, set_=replaced)


def _replaced_columns(excluded: Any) -> dict[str, Any]:
    keep = {*KEY_COLUMNS, "created_at"}
    return {column.name: excluded[column.name] for column in bindings.c if column.name not in keep}


def merged_segments(
    change_sets: builtins.list[ChangeSet],
) -> builtins.list[tuple[builtins.list[tuple[str, str]], builtins.list[Binding]]]:
    """Change sets applied in order, as few (removals, upserts) segments as give the same result.

    Within a segment the removals run first, then one multi-row upsert; a change set whose
    removal would hit a binding upserted earlier in the segment starts a new segment. Keys are
    sorted (one lock order for every writer) and each key is upserted once per segment (the last
    binding wins, as when applied one after the other).
    """
    segments: builtins.list[tuple[builtins.list[tuple[str, str]], builtins.list[Binding]]] = []
    removals: set[tuple[str, str]] = set()
    upserts: dict[tuple[str, str], Binding] = {}
    upserted_aors: set[str] = set()
    for changes in change_sets:
        hits_earlier = any(
            (aor in upserted_aors) if device_id == ALL_DEVICES else ((aor, device_id) in upserts)
            for aor, device_id in changes.removals
        )
        if hits_earlier:
            segments.append((sorted(removals), [upserts[key] for key in sorted(upserts)]))
            removals, upserts, upserted_aors = set(), {}, set()
        removals.update(changes.removals)
        for binding in changes.final_upserts():
            earlier = upserts.get(binding.key)
            if earlier is not None:  # as if applied in order: the row keeps its first created_at
                binding = dataclasses.replace(binding, created_at=earlier.created_at)
            upserts[binding.key] = binding
            upserted_aors.add(binding.aor)
    if removals or upserts:
        segments.append((sorted(removals), [upserts[key] for key in sorted(upserts)]))
    return segments


def _check_new_record(record: PushRecord) -> None:
    if not isinstance(record, PushRecord):
        raise TypeError(f"record_push takes a PushRecord, got {record!r}")
    if record.id is not None:
        raise ValueError(f"this push record is stored already (id {record.id})")


def _delete_statement(aor: str, device_id: str) -> Delete:
    statement = delete(bindings).where(bindings.c.aor == aor)
    if device_id != ALL_DEVICES:
        statement = statement.where(bindings.c.device_id == device_id)
    return statement


def _non_negative(span: timedelta, name: str) -> timedelta:
    if not isinstance(span, timedelta) or span < timedelta(0):
        raise ValueError(f"{name} must be a timedelta >= 0, got {span!r}")
    return span


def _has_table(connection: Connection, name: str) -> bool:
    return inspect(connection).has_table(name)


def _sqlstate(err: BaseException | None) -> str | None:
    """The PostgreSQL SQLSTATE of a (wrapped or raw asyncpg) error, if it has one."""
    if isinstance(err, DBAPIError):
        err = err.orig
    state = getattr(err, "sqlstate", None)
    return state if isinstance(state, str) else None


_PASSWORD = re.compile(r"(//[^:/@]*:)[^@/]*@")  # user:PASSWORD@ in a URL we could not parse
_CLASS_PREFIX = re.compile(r"^<class '[\w.]+'>:\s*")


def _reason(err: BaseException) -> str:
    """The driver's own message on one line, without SQLAlchemy's SQL echo and links."""
    cause: BaseException = err
    if isinstance(err, DBAPIError) and err.orig is not None:
        cause = err.orig
    if isinstance(cause, OSError) and cause.strerror and not isinstance(cause, TimeoutError):
        text = cause.strerror
    else:
        text = str(cause) or type(cause).__name__
    if isinstance(cause, TimeoutError):
        text = f"timed out ({text})" if str(cause) else "timed out"
    elif isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == ECONNREFUSED:
        text = f"connection refused, is the server running and listening there? ({text})"
    text = _CLASS_PREFIX.sub("", text)
    return " ".join(text.split())


@asynccontextmanager
async def _no_lock() -> AsyncIterator[None]:
    yield


open_store = BindingStore.open
"""``await open_store(url)``: the same as :meth:`BindingStore.open`."""
