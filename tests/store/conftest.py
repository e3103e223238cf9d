"""Fixtures of the store tests: ``backend`` runs a test once on SQLite and once on PostgreSQL.

The store is asyncio-only; ``async def`` tests here are run with :func:`asyncio.run` by the
``pytest_pyfunc_call`` hook below (no pytest plugin needed), one fresh event loop per test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.storekit import (
    POSTGRESQL_URL,
    Backend,
    drop_schema,
    new_schema_name,
    require_postgresql,
    sqlite_backend,
)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this directory in a fresh event loop."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(function(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def postgresql_url() -> str:
    """The real PostgreSQL's URL, after checking that it answers (else the test FAILS)."""
    require_postgresql()
    return POSTGRESQL_URL


@pytest.fixture
def store_cache_ttl() -> float:
    """``cache_ttl`` of the stores that ``backend`` opens: 0, no binding cache, unless a module
    overrides this fixture (test_store_contract.py runs its tests without and with one)."""
    return 0.0


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, store_cache_ttl: float
) -> Iterator[Backend]:
    """A fresh, empty database: a SQLite file, or a new schema in the real PostgreSQL."""
    if request.param == "sqlite":
        yield dataclasses.replace(sqlite_backend(tmp_path), cache_ttl=store_cache_ttl)
        return
    require_postgresql()
    schema = new_schema_name()
    try:
        yield Backend("postgresql", POSTGRESQL_URL, schema, cache_ttl=store_cache_ttl)
    finally:
        drop_schema(schema)
