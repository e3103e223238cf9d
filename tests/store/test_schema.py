"""The DDL in ``sql/<dialect>/schema.sql`` (which creates the tables) matches
``sipush/store/tables.py`` (which the queries are built from), on both real databases; and a
database of schema version 1 is upgraded in place to the same result.

``BindingStore.open`` creates a fresh database from the DDL; the test reflects it and compares
table by table: column names and order, type (the SQL type name the model compiles to on that
dialect, and its type affinity), nullability, timezone-awareness, primary key, indexes; and no
table the model does not know. The upgrade tests start from ``schema_v1/<dialect>.sql`` (the
version-1 DDL, verbatim) with bindings in it, and compare the upgraded database the same way.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Dialect, Table, inspect, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import TypeDecorator, TypeEngine

from sipush.errors import StoreError
from sipush.store import BindingStore
from sipush.store.binding_store import SQL_DIR, schema_statements, upgrade_statements
from sipush.store.tables import SCHEMA_VERSION, metadata, schema_version
from tests.store.storekit import (
    T0,
    Backend,
    android_push,
    create_v1_database,
    ios_push,
    make_binding,
    make_push,
)

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
PHONE = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
TABLET = "<urn:uuid:00000000-0000-4000-8000-000000000002>"


def _model_type(table: Table, column: str) -> TypeEngine[Any]:
    declared: TypeEngine[Any] = table.c[column].type
    return declared.impl_instance if isinstance(declared, TypeDecorator) else declared


def _reflect(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        name: {
            "columns": inspector.get_columns(name),
            "pk": inspector.get_pk_constraint(name),
            "indexes": inspector.get_indexes(name),
        }
        for name in inspector.get_table_names()
    }


def assert_matches_the_tables(reflected: dict[str, Any], dialect: Dialect) -> None:
    """``reflected`` (:func:`_reflect` of a database) is exactly the tables of ``tables.py``."""
    assert set(reflected) == set(metadata.tables)
    for name, table in metadata.tables.items():
        found = reflected[name]
        assert [c["name"] for c in found["columns"]] == list(table.c.keys()), name
        for column in found["columns"]:
            model = table.c[column["name"]]
            wanted = _model_type(table, model.name)
            where = f"{name}.{model.name}"
            assert column["type"]._type_affinity is wanted._type_affinity, where
            assert column["type"].compile(dialect) == wanted.compile(dialect), where
            assert column["nullable"] == model.nullable, where
            if dialect.name == "postgresql" and hasattr(wanted, "timezone"):
                assert column["type"].timezone == wanted.timezone, where  # TIMESTAMPTZ
        assert found["pk"]["constrained_columns"] == [c.name for c in table.primary_key], name
        if table.primary_key.name is not None:
            assert found["pk"]["name"] == table.primary_key.name, name
        indexes = {
            (index["name"], tuple(index["column_names"]), bool(index["unique"]))
            for index in found["indexes"]
        }
        wanted_indexes = {
            (index.name, tuple(c.name for c in index.columns), bool(index.unique))
            for index in table.indexes
        }
        assert indexes == wanted_indexes, name


async def _reflect_store(store: BindingStore) -> tuple[dict[str, Any], Dialect, int]:
    async with store._transaction("reflect", write=False) as conn:
        reflected = await conn.run_sync(_reflect)
        version = (await conn.execute(select(schema_version.c.version))).scalar_one()
        return reflected, conn.dialect, version


async def test_ddl_matches_the_table_definitions(backend: Backend) -> None:
    async with await backend.open() as store:
        reflected, dialect, version = await _reflect_store(store)
    assert version == SCHEMA_VERSION == 2
    assert_matches_the_tables(reflected, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_files_are_read_as_separate_statements(dialect: str) -> None:
    statements = schema_statements(dialect)
    assert (SQL_DIR / dialect / "schema.sql").is_file()
    assert [s.split("(")[0].split()[:3] for s in statements] == [
        ["CREATE", "TABLE", "bindings"],
        ["CREATE", "INDEX", "bindings_expires_at"],
        ["CREATE", "TABLE", "pushes"],
        ["CREATE", "INDEX", "pushes_aor_sent_at"],
        ["CREATE", "INDEX", "pushes_aor_device_sent_at"],
        ["CREATE", "INDEX", "pushes_sent_at"],
        ["CREATE", "TABLE", "schema_version"],
        ["INSERT", "INTO", "schema_version"],
    ]
    assert not any("--" in statement for statement in statements)
    assert statements[-1].endswith(f"VALUES ({SCHEMA_VERSION})")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_upgrade_statements_create_only_what_version_2_added(dialect: str) -> None:
    assert [s.split("(")[0].split()[:3] for s in upgrade_statements(dialect, 1)] == [
        ["CREATE", "TABLE", "pushes"],
        ["CREATE", "INDEX", "pushes_aor_sent_at"],
        ["CREATE", "INDEX", "pushes_aor_device_sent_at"],
        ["CREATE", "INDEX", "pushes_sent_at"],
    ]
    assert upgrade_statements(dialect, SCHEMA_VERSION) == []
    assert set(schema_statements(dialect)) >= set(upgrade_statements(dialect, 1))


async def test_a_newer_schema_version_is_refused(backend: Backend) -> None:
    async with await backend.open() as store, store._transaction("bump", write=True) as conn:
        await conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}; this sipush"):
        await backend.open()


# -- upgrading a version-1 database in place ----------------------------------------------------


async def test_a_version_1_database_is_upgraded_in_place(backend: Backend) -> None:
    """A database sipush wrote at schema version 1 (``schema_v1/<dialect>.sql``, with bindings)
    is upgraded by ``open``, even with ``create=False`` (the CLI): it ends up exactly like a
    fresh one, keeps its bindings, and records pushes."""
    saved = (
        make_binding(ALICE, PHONE, push=ios_push(), created_at=T0 - timedelta(days=3)),
        make_binding(ALICE, TABLET, push=android_push(), expires_in=600),
        make_binding(BOB, PHONE, user_agent=None),
    )
    await create_v1_database(backend, saved)
    async with await backend.open(create=False) as store:
        reflected, dialect, version = await _reflect_store(store)
        assert version == SCHEMA_VERSION
        assert_matches_the_tables(reflected, dialect)
        assert await store.list(include_expired=True) == list(saved)
        record_id = await store.record_push(make_push(ALICE, PHONE))
        assert await store.mark_reregistered(ALICE, PHONE, T0 + timedelta(seconds=2)) == 1
    async with await backend.open() as reopened:  # already version 2: nothing to do
        assert (await _reflect_store(reopened))[2] == SCHEMA_VERSION
        (found,) = await reopened.pushes(ALICE)
        assert found.id == record_id and found.reregistered_after == 2.0
        assert await reopened.get(BOB) == [saved[2]]


async def test_concurrent_openers_upgrade_once(backend: Backend) -> None:
    """Several processes starting on the same version-1 database at once: one upgrades, the
    others wait for it and find the work done (none fails on "table pushes already exists")."""
    await create_v1_database(backend, (make_binding(ALICE, PHONE),))
    stores = await asyncio.gather(*(backend.open() for _ in range(4)))
    try:
        for store in stores:
            assert await store.record_push(make_push(ALICE, PHONE)) > 0
        assert len(await stores[0].pushes()) == 4
        reflected, dialect, version = await _reflect_store(stores[-1])
        assert version == SCHEMA_VERSION
        assert_matches_the_tables(reflected, dialect)
    finally:
        for store in stores:
            await store.close()


async def test_a_failed_upgrade_changes_nothing(backend: Backend) -> None:
    """The upgrade is one transaction: when it fails (here on a stray ``pushes`` table that is
    not ours), the database stays at version 1 with nothing half-created, and the failure is one
    readable line. Once the obstacle is gone, the next open upgrades."""
    await create_v1_database(backend, (make_binding(ALICE, PHONE),))
    stray = "CREATE TABLE pushes (note TEXT)"
    await execute_in(backend, stray)
    with pytest.raises(StoreError, match="cannot upgrade the schema") as caught:
        await backend.open()
    assert "\n" not in str(caught.value) and "pushes" in str(caught.value)
    assert await query_in(backend, "SELECT version FROM schema_version") == [(1,)]
    await execute_in(backend, "DROP TABLE pushes")
    async with await backend.open() as store:
        reflected, dialect, version = await _reflect_store(store)
        assert version == SCHEMA_VERSION
        assert_matches_the_tables(reflected, dialect)
        assert [b.device_id for b in await store.get(ALICE)] == [PHONE]


async def test_a_failed_upgrade_leaves_no_half_created_table(backend: Backend) -> None:
    """The ``pushes`` table is created, then its index collides with a stray one: rolled back."""
    await create_v1_database(backend)
    await execute_in(backend, "CREATE INDEX pushes_sent_at ON bindings (registered_at)")
    with pytest.raises(StoreError, match="cannot upgrade the schema"):
        await backend.open()
    versions = await query_in(backend, "SELECT version FROM schema_version")
    tables = await query_in(backend, TABLE_NAMES[backend.name])
    assert versions == [(1,)]
    assert sorted(name for (name,) in tables) == ["bindings", "schema_version"]  # no pushes


async def test_an_unknown_older_version_is_refused(backend: Backend) -> None:
    await create_v1_database(backend)
    await execute_in(backend, "UPDATE schema_version SET version = 0")
    with pytest.raises(StoreError, match=f"schema version 0; this sipush reads {SCHEMA_VERSION}"):
        await backend.open()


TABLE_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}


async def query_in(backend: Backend, statement: str) -> list[tuple[Any, ...]]:
    """Rows of ``statement`` run on ``backend`` outside the store (which would upgrade)."""
    engine = create_async_engine(backend.url, connect_args=_connect_args(backend))
    try:
        async with engine.begin() as connection:
            result = await connection.exec_driver_sql(statement)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def execute_in(backend: Backend, statement: str) -> None:
    await query_in(backend, statement)


def _connect_args(backend: Backend) -> dict[str, Any]:
    if backend.schema is None:
        return {}
    return {"timeout": 10, "server_settings": {"search_path": backend.schema}}
