"""The binding store: which devices of which AOR are where, and how to wake them.

``await open_store(url)`` gives a :class:`BindingStore` over SQLite (default,
``sqlite+aiosqlite:///sipush.db`` in the working directory) or PostgreSQL
(``postgresql+asyncpg://...``); the proxy commits a :class:`ChangeSet` of :class:`Binding`
values per accepted REGISTER and a :class:`PushRecord` per push sent, and ``sipush bindings
...`` and ``sipush pushes list`` read the same database.
See :mod:`sipush.store.binding_store` for how it works.
"""

from sipush.errors import StoreError
from sipush.store.binding_store import (
    DEFAULT_URL,
    PUSH_RETENTION,
    REREGISTER_WINDOW,
    BindingStore,
    open_store,
)
from sipush.store.model import ALL_DEVICES, PUSH_OUTCOMES, Binding, ChangeSet, PushRecord

__all__ = [
    "ALL_DEVICES",
    "DEFAULT_URL",
    "PUSH_OUTCOMES",
    "PUSH_RETENTION",
    "REREGISTER_WINDOW",
    "Binding",
    "BindingStore",
    "ChangeSet",
    "PushRecord",
    "StoreError",
    "open_store",
]
