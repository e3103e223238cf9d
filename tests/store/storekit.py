"""Test kit for the binding store: binding factories and the two real backends.

``Backend`` is one database the contract suite runs against: a SQLite file in the test's
temporary directory, or a fresh schema (``sipush_test_<pid>_<random>``) in the real PostgreSQL
at ``SIPUSH_TEST_POSTGRESQL_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``),
dropped after the test. PostgreSQL not being reachable FAILS the test with the reason: the
acceptance of issue #3 requires the suite to pass on both backends, so it never silently skips.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from sipush.push.params import PushInfo
from sipush.store import Binding, BindingStore, PushRecord
from sipush.store.binding_store import sql_statements
from sipush.store.tables import binding_to_row, bindings

POSTGRESQL_URL = os.environ.get(
    "SIPUSH_TEST_POSTGRESQL_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
APNS_VOIP_TOKEN = "3f1a9c" + "0" * 54 + "2468"  # 64 hex digits, like an APNs token
APNS_ALERT_TOKEN = "a1b2c3" + "f" * 54 + "9999"
SCHEMA_V1_DIR = Path(__file__).parent / "schema_v1"  # the DDL of schema version 1, verbatim


def make_binding(
    aor: str = "sip:alice@example.com",
    device_id: str = "<urn:uuid:00000000-0000-4000-8000-000000000001>",
    *,
    at: datetime = T0,
    expires_in: float = 3600,
    created_at: datetime | None = None,
    push: PushInfo | None = None,
    **changes: Any,
) -> Binding:
    """A realistic binding registered at ``at`` for ``expires_in`` seconds; override anything."""
    fields: dict[str, Any] = {
        "aor": aor,
        "device_id": device_id,
        "contact": "sip:alice@127.0.0.1:40111;transport=udp",
        "expires_at": at + timedelta(seconds=expires_in),
        "registered_at": at,
        "created_at": created_at or at,
        "transport": "udp",
        "flow_local": "127.0.0.1:5060",
        "flow_remote": "127.0.0.1:40111",
        "call_id": f"reg-{uuid.uuid4().hex[:12]}@127.0.0.1",
        "cseq": 1,
        "user_agent": "pjsua2/2.15.1",
        "push": push,
    }
    fields.update(changes)
    return Binding(**fields)


def make_push(
    aor: str = "sip:alice@example.com",
    device_id: str = "<urn:uuid:00000000-0000-4000-8000-000000000001>",
    *,
    at: datetime = T0,
    **changes: Any,
) -> PushRecord:
    """A delivered incomingCall APNs push sent at ``at`` (not stored: no id); override anything."""
    fields: dict[str, Any] = {
        "aor": aor,
        "device_id": device_id,
        "kind": "incomingCall",
        "provider": "apns",
        "outcome": "delivered",
        "status": 200,
        "reason": None,
        "call_id": f"call-{uuid.uuid4().hex[:12]}@127.0.0.1",
        "sent_at": at,
        "latency_ms": 41.25,
        "attempts": 1,
        "reregistered_at": None,
    }
    fields.update(changes)
    return PushRecord(**fields)


def ios_push(**changes: Any) -> PushInfo:
    """Every PushInfo field set, none to its default (X-Push with two iOS tokens)."""
    fields: dict[str, Any] = {
        "provider": "apns",
        "prid": APNS_VOIP_TOKEN,
        "param": "ABCD1234.com.example.phone.voip",
        "app_id": "com.example.phone",
        "platform": "ios",
        "device_uid": f"{APNS_VOIP_TOKEN}|{APNS_ALERT_TOKEN}",
        "alert_token": APNS_ALERT_TOKEN,
        "allow_call_push": False,
        "allow_message_push": False,
        "source": "x-push",
    }
    fields.update(changes)
    return PushInfo(**fields)


def android_push() -> PushInfo:
    """An RFC 8599 FCM registration: only provider, prid and param."""
    return PushInfo(provider="fcm", prid="fcm-" + "x" * 150, param="example-project")


@dataclass
class Backend:
    """One real database for one test: ``url`` (+ ``schema`` on PostgreSQL); ``cache_ttl`` > 0:
    the stores it opens keep a binding cache (``BindingStore.open(cache_ttl=...)``)."""

    name: str
    url: str
    schema: str | None = None
    cache_ttl: float = 0.0

    async def open(self, **options: Any) -> BindingStore:
        if self.schema is not None:
            options.setdefault("schema", self.schema)
        if self.cache_ttl > 0:
            options.setdefault("cache_ttl", self.cache_ttl)
        return await BindingStore.open(self.url, **options)


async def create_v1_database(backend: Backend, saved: tuple[Binding, ...] = ()) -> None:
    """Make ``backend`` a database as sipush wrote it at schema version 1 (``schema_v1/``), with
    ``saved`` in its ``bindings`` table (unchanged since version 1). Not through the store: its
    ``open`` would upgrade it."""
    options: dict[str, Any] = {"connect_args": {"timeout": 10}}
    if backend.schema is not None:
        await execute_sql(backend.url, f'CREATE SCHEMA IF NOT EXISTS "{backend.schema}"')
        options["connect_args"]["server_settings"] = {"search_path": backend.schema}
    engine = create_async_engine(backend.url, **options)
    try:
        async with engine.begin() as connection:
            for statement in sql_statements(SCHEMA_V1_DIR / f"{backend.name}.sql"):
                await connection.exec_driver_sql(statement)
            if saved:
                await connection.execute(insert(bindings), [binding_to_row(b) for b in saved])
    finally:
        await engine.dispose()


def sqlite_backend(directory: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{directory / 'bindings.db'}")


async def execute_sql(url: str, statement: str) -> None:
    engine = create_async_engine(url, connect_args={"timeout": 10})
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def require_postgresql(url: str = POSTGRESQL_URL) -> None:
    """Fail (never skip) the calling test when PostgreSQL cannot be reached."""
    try:
        asyncio.run(execute_sql(url, "SELECT 1"))
    except (OSError, SQLAlchemyError) as err:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = " ".join(str(getattr(err, "orig", None) or err).split())
        pytest.fail(
            f"PostgreSQL at {shown} is not reachable ({type(err).__name__}: {reason}). The "
            "store contract tests must pass on PostgreSQL too: start it (trust auth, database "
            "'test') or point SIPUSH_TEST_POSTGRESQL_URL at one.",
            pytrace=False,
        )


def new_schema_name() -> str:
    return f"sipush_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def drop_schema(schema: str, url: str = POSTGRESQL_URL) -> None:
    asyncio.run(execute_sql(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
