"""Failures of the real databases become one-line StoreErrors; SQLite file handling.

Covers: unopenable and non-database SQLite files, the path being relative to the working
directory at open time, WAL mode and the busy timeout (a reader is never blocked by another
connection's write transaction; a writer waits, then fails readably), PostgreSQL that refuses
connections or lacks the database, bad URLs (never echoing a password), and in-memory SQLite.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sipush.errors import StoreError
from sipush.store import BindingStore, ChangeSet
from tests.store.storekit import execute_sql, make_binding, new_schema_name

ALICE = "sip:alice@example.com"


def _assert_one_line(err: StoreError, *parts: str) -> None:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    assert "sqlalche.me" not in text and "[SQL:" not in text, text
    for part in parts:
        assert part in text, text


async def test_sqlite_directory_missing(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "sipush.db"
    with pytest.raises(StoreError) as caught:
        await BindingStore.open(f"sqlite+aiosqlite:///{path}")
    _assert_one_line(caught.value, f"cannot open the SQLite database {path}", "unable to open")


async def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the bindings you are looking for\n" * 100)
    with pytest.raises(StoreError) as caught:
        await BindingStore.open(f"sqlite+aiosqlite:///{path}")
    _assert_one_line(caught.value, str(path), "not a database")


async def test_sqlite_path_is_relative_to_the_working_directory_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = await BindingStore.open("sqlite+aiosqlite:///relative.db")
    try:
        assert str(tmp_path / "relative.db") in repr(store)
        monkeypatch.chdir(tmp_path / "elsewhere")  # later connections still use the same file
        await store.apply(ChangeSet(upserts=(make_binding(ALICE),)))
        assert len(await store.get(ALICE)) == 1
    finally:
        await store.close()
    assert (tmp_path / "relative.db").is_file()
    assert not (tmp_path / "elsewhere" / "relative.db").exists()


async def test_default_url_is_sipush_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await BindingStore.open():
        pass
    assert (tmp_path / "sipush.db").is_file()


async def test_sqlite_uses_wal_and_readers_are_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with await BindingStore.open(f"sqlite+aiosqlite:///{path}", busy_timeout=0.3) as store:
        await store.apply(ChangeSet(upserts=(make_binding(ALICE),)))
        other = sqlite3.connect(path, isolation_level=None)  # "another process" holding a write
        try:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM bindings")
            assert len(await store.get(ALICE)) == 1  # WAL: the committed state, no waiting
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreError) as caught:
                await store.apply(ChangeSet(upserts=(make_binding("sip:bob@example.com"),)))
            waited = asyncio.get_running_loop().time() - started
            _assert_one_line(caught.value, str(path), "locked by another process")
            assert 0.25 <= waited < 5, waited  # it waited for the busy timeout, then gave up
            other.execute("ROLLBACK")
        finally:
            other.close()
        await store.apply(ChangeSet(upserts=(make_binding("sip:bob@example.com"),)))
        assert len(await store.list(include_expired=True)) == 2


async def test_a_writer_waits_for_another_connection_within_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wait.db"
    async with await BindingStore.open(f"sqlite+aiosqlite:///{path}", busy_timeout=10) as store:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, other.execute, "COMMIT")
        await store.apply(ChangeSet(upserts=(make_binding(ALICE),)))  # waits ~0.3 s, succeeds
        other.close()
        assert len(await store.get(ALICE)) == 1


async def test_in_memory_sqlite_is_private_and_shared_by_concurrent_tasks() -> None:
    async with await BindingStore.open("sqlite+aiosqlite://") as store:
        await asyncio.gather(
            *(store.apply(ChangeSet(upserts=(make_binding(ALICE, f"d{n}"),))) for n in range(20)),
            *(store.list(include_expired=True) for _ in range(20)),
        )
        assert len(await store.get(ALICE)) == 20
    async with await BindingStore.open("sqlite+aiosqlite:///:memory:") as other:
        assert await other.get(ALICE) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_postgresql_refusing_connections() -> None:
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{_closed_port()}/test"
    with pytest.raises(StoreError) as caught:
        await BindingStore.open(url)
    _assert_one_line(caught.value, "cannot connect to PostgreSQL postgres@127.0.0.1:", "refused")
    assert "hunter2" not in str(caught.value)


async def test_postgresql_database_missing(postgresql_url: str) -> None:
    url = postgresql_url.rsplit("/", 1)[0] + "/sipush_no_such_database"
    with pytest.raises(StoreError) as caught:
        await BindingStore.open(url)
    _assert_one_line(
        caught.value, "cannot connect to PostgreSQL", 'database "sipush_no_such_database"'
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "bad store URL 'not a url'"),
        ("mysql+aiomysql://root:hunter2@db/sipush", "unsupported store URL"),
        ("sqlite+pysqlite:///x.db", "unsupported store URL"),
        ("postgresql+psycopg2://u@h/d", "unsupported store URL"),
    ],
)
async def test_bad_urls(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as caught:
        await BindingStore.open(url)
    _assert_one_line(caught.value, expected, "sqlite+aiosqlite:///sipush.db")
    assert "hunter2" not in str(caught.value)


async def test_plain_scheme_names_mean_the_async_drivers(tmp_path: Path) -> None:
    async with await BindingStore.open(f"sqlite:///{tmp_path / 'plain.db'}") as store:
        assert "plain.db" in repr(store)


async def test_a_schema_is_postgresql_only(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="PostgreSQL"):
        await BindingStore.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", schema="s")


async def test_postgresql_deadlock_victim_is_retried(postgresql_url: str) -> None:
    """A real deadlock: another session holds d2 and then wants d1 while ``apply`` holds d1 and
    wants d2. PostgreSQL aborts ``apply``'s transaction (it waited first; the other session's
    deadlock_timeout is longer); ``apply`` runs again and succeeds, all or nothing."""
    schema = new_schema_name()
    other_engine = create_async_engine(
        postgresql_url, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        async with await BindingStore.open(postgresql_url, schema=schema) as store:
            await store.apply(
                ChangeSet(upserts=(make_binding(ALICE, "d1"), make_binding(ALICE, "d2")))
            )
            async with other_engine.connect() as other:
                await other.execute(text("SET deadlock_timeout = '20s'"))
                await other.execute(
                    text("SELECT 1 FROM bindings WHERE device_id = 'd2' FOR UPDATE")
                )
                applying = asyncio.create_task(
                    store.apply(ChangeSet(removals=((ALICE, "d1"), (ALICE, "d2"))))
                )
                await asyncio.sleep(0.3)  # apply has deleted d1 and now waits for d2
                assert not applying.done()
                await other.execute(text("UPDATE bindings SET cseq = 99 WHERE device_id = 'd1'"))
                await other.commit()  # reached only once apply's first attempt was aborted
            await asyncio.wait_for(applying, timeout=30)  # the retry succeeded
            assert await store.get(ALICE) == []
    finally:
        await other_engine.dispose()
        await execute_sql(postgresql_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
