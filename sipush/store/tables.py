"""SQLAlchemy Core table definitions of the binding store, and value <-> row conversion.

The DDL in ``sql/<dialect>/schema.sql`` is the source of truth and is what creates the tables;
these definitions describe the same tables for building queries, and
``tests/store/test_schema.py`` reflects a freshly created database and proves the two agree
(columns and their order, types, nullability, primary key, indexes).

``bindings``: one row per (AOR, device). The push fields of
:class:`~sipush.push.params.PushInfo` are flattened into nullable columns; ``provider IS NULL``
means "no push info" (``push=None``).
Timestamps go through :class:`UtcDateTime`: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; on
SQLite (which has no date type) fixed-width UTC text, ``2026-11-22 10:00:00.000000``, so that
text order is time order and ``expires_at <= :now`` compares correctly.

``pushes``: one row per push sent (:class:`~sipush.store.model.PushRecord`), ``id`` assigned by
the database; kept for ``PUSH_RETENTION`` (``BindingStore.purge_expired``).

Schema versions: 1 had ``bindings`` and ``schema_version``; 2 added ``pushes``
(``ADDED_TABLES``). ``BindingStore.open`` upgrades an older database in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from sipush.store.model import Binding, PushRecord, as_utc

SCHEMA_VERSION = 2
"""What ``sql/<dialect>/schema.sql`` writes into ``schema_version``; bump with a migration."""

ADDED_TABLES: Mapping[int, tuple[str, ...]] = {2: ("pushes",)}
"""The tables each schema version added. Upgrading a database from version N runs, in one
transaction, the ``CREATE TABLE`` and ``CREATE INDEX`` statements of ``schema.sql`` for the
tables of every version after N, then sets ``schema_version``. Only additive changes can be
upgraded this way; anything else needs a real migration."""

OLDEST_UPGRADABLE = 1


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in, the same out, on every dialect.

    Binding a naive datetime raises ``ValueError`` (its zone is unknowable). SQLite stores UTC
    without an offset and gets UTC attached back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value, "timestamp")
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

bindings = Table(
    "bindings",
    metadata,
    Column("aor", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("contact", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("transport", Text, nullable=False),
    Column("flow_local", Text, nullable=False),
    Column("flow_remote", Text, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("cseq", Integer, nullable=False),
    Column("user_agent", Text, nullable=True),
    # PushInfo, flattened; all NULL when the binding has no push info.
    Column("provider", Text, nullable=True),
    Column("prid", Text, nullable=True),
    Column("param", Text, nullable=True),
    Column("app_id", Text, nullable=True),
    Column("platform", Text, nullable=True),
    Column("device_uid", Text, nullable=True),
    Column("alert_token", Text, nullable=True),
    Column("allow_call_push", Boolean, nullable=True),
    Column("allow_message_push", Boolean, nullable=True),
    Column("push_source", Text, nullable=True),
    PrimaryKeyConstraint("aor", "device_id", name="bindings_pkey"),
    Index("bindings_expires_at", "expires_at"),
)

pushes = Table(
    "pushes",
    metadata,
    # BIGINT GENERATED ALWAYS AS IDENTITY on PostgreSQL; SQLite: INTEGER PRIMARY KEY AUTOINCREMENT
    # (the rowid, never reused after a purge).
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("aor", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("status", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    Column("call_id", Text, nullable=True),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reregistered_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("id", name="pushes_pkey"),
    Index("pushes_aor_sent_at", "aor", "sent_at"),
    Index("pushes_aor_device_sent_at", "aor", "device_id", "sent_at"),
    Index("pushes_sent_at", "sent_at"),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

# PushInfo field -> bindings column (only ``source`` is renamed: ``push_source``).
PUSH_COLUMNS: Mapping[str, str] = {
    "provider": "provider",
    "prid": "prid",
    "param": "param",
    "app_id": "app_id",
    "platform": "platform",
    "device_uid": "device_uid",
    "alert_token": "alert_token",
    "allow_call_push": "allow_call_push",
    "allow_message_push": "allow_message_push",
    "source": "push_source",
}
BINDING_COLUMNS = tuple(
    field.name for field in dataclasses.fields(Binding) if field.name != "push"
)  # the rest of the columns, named like the Binding fields
KEY_COLUMNS = ("aor", "device_id")


def binding_to_row(binding: Binding) -> dict[str, Any]:
    """The ``bindings`` row of ``binding`` (push fields NULL when ``push`` is ``None``)."""
    row: dict[str, Any] = {name: getattr(binding, name) for name in BINDING_COLUMNS}
    push = binding.push
    for field_name, column in PUSH_COLUMNS.items():
        row[column] = None if push is None else getattr(push, field_name)
    return row


def row_to_binding(row: Mapping[str, Any]) -> Binding:
    """The :class:`Binding` of a ``bindings`` row."""
    push = None
    if row["provider"] is not None:
        from sipush.push.params import PushInfo  # the push layer, only when a row needs it

        push = PushInfo(**{field: row[column] for field, column in PUSH_COLUMNS.items()})
    return Binding(**{name: row[name] for name in BINDING_COLUMNS}, push=push)


PUSH_RECORD_COLUMNS = tuple(field.name for field in dataclasses.fields(PushRecord))
"""The ``pushes`` columns, named like the PushRecord fields."""


def push_record_to_row(record: PushRecord) -> dict[str, Any]:
    """The ``pushes`` row of ``record``, without ``id`` (the database assigns it)."""
    return {name: getattr(record, name) for name in PUSH_RECORD_COLUMNS if name != "id"}


def row_to_push_record(row: Mapping[str, Any]) -> PushRecord:
    """The :class:`PushRecord` of a ``pushes`` row."""
    return PushRecord(**{name: row[name] for name in PUSH_RECORD_COLUMNS})
