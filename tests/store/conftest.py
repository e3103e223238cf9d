"""Fixtures of the store tests: ``backend`` runs a test once on SQLite and once on PostgreSQL.

The store is asyncio-only; ``async def`` tests here are run with :func:`asyncio.run` by the
``pytest_pyfunc_call`` hook below (no pytest plugin needed), one fresh event loop per test.
"""

from __future__ import annotations

import asyncio
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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty database: a SQLite file, or a new schema in the real PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_backend(tmp_path)
        return
    require_postgresql()
    schema = new_schema_name()
    try:
        yield Backend("postgresql", POSTGRESQL_URL, schema)
    finally:
        drop_schema(schema)
