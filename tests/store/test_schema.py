"""The DDL in ``sql/<dialect>/schema.sql`` (which creates the tables) matches
``sipush/store/tables.py`` (which the queries are built from), on both real databases.

``BindingStore.open`` creates a fresh database from the DDL; the test reflects it and compares
table by table: column names and order, type (the SQL type name the model compiles to on that
dialect, and its type affinity), nullability, timezone-awareness, primary key, indexes; and no
table the model does not know.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Table, inspect, select, update
from sqlalchemy.types import TypeDecorator, TypeEngine

from sipush.errors import StoreError
from sipush.store.binding_store import SQL_DIR, schema_statements
from sipush.store.tables import SCHEMA_VERSION, metadata, schema_version
from tests.store.storekit import Backend


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


async def test_ddl_matches_the_table_definitions(backend: Backend) -> None:
    async with await backend.open() as store, store._transaction("reflect", write=False) as conn:
        reflected = await conn.run_sync(_reflect)
        dialect = conn.dialect
        version = (await conn.execute(select(schema_version.c.version))).scalar_one()
    assert version == SCHEMA_VERSION
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


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_files_are_read_as_separate_statements(dialect: str) -> None:
    statements = schema_statements(dialect)
    assert (SQL_DIR / dialect / "schema.sql").is_file()
    assert [s.split("(")[0].split()[:3] for s in statements] == [
        ["CREATE", "TABLE", "bindings"],
        ["CREATE", "INDEX", "bindings_expires_at"],
        ["CREATE", "TABLE", "schema_version"],
        ["INSERT", "INTO", "schema_version"],
    ]
    assert not any("--" in statement for statement in statements)


async def test_a_newer_schema_version_is_refused(backend: Backend) -> None:
    async with await backend.open() as store, store._transaction("bump", write=True) as conn:
        await conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}; this sipush"):
        await backend.open()
