"""An in-memory view of the bindings a running sipush touches, in front of the database.

Theory of operation
-------------------
Every call or message toward an app asks "which binding owns this flow?" and every REGISTER
without a device identity asks for its AOR's bindings. Going to the database for each costs a
round trip through the driver's thread (SQLite) or the network (PostgreSQL), which under load
is most of a request's time. :class:`BindingCache` keeps, per AOR, the bindings this process
read or wrote:

* an entry is **complete** when it was read whole from the database (it then answers
  :meth:`lookup` for the AOR on its own), or **partial** when it only holds the devices this
  process itself wrote since (enough to find the device a held call is for, not to list the
  AOR);
* writes this process commits update the entries (:meth:`applied`): that is the common case, a
  device registers through this sipush and is then called through it;
* an entry is trusted for ``ttl`` seconds from when it was read or written, then read again:
  that bounds how long a change made by *another* process (``sipush bindings delete``, another
  node of a cluster) can go unseen;
* a read that raced with a write is not cached (a generation counter), so the cache never
  holds what the database no longer does because of this process;
* at most ``max_aors`` AORs are kept, least recently used first out.

The class is pure (no I/O, the clock is injected); :class:`~sipush.store.BindingStore` uses it
when opened with a cache. It lives in memory only: a restart starts empty.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sipush.store.model import ALL_DEVICES, Binding, ChangeSet

DEFAULT_TTL = 30.0  # seconds an entry is trusted
DEFAULT_MAX_AORS = 50_000


@dataclass(eq=False)
class _Entry:
    devices: dict[str, Binding] = field(default_factory=dict)
    complete: bool = False
    stamped: float = 0.0  # clock() when read or last written


class BindingCache:
    """Per-AOR bindings with a freshness limit and an LRU bound (see the module docstring)."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_aors: int = DEFAULT_MAX_AORS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_aors < 1:
            raise ValueError(f"a binding cache needs ttl > 0 and max_aors >= 1: {ttl}, {max_aors}")
        self.ttl = ttl
        self.max_aors = max_aors
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.generation = 0  # bumped by every write: a read that saw it change is not cached
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, aor: str) -> list[Binding] | None:
        """Every binding of ``aor`` sorted by device id, or ``None`` when not known whole and
        fresh (the caller reads the database and calls :meth:`loaded`)."""
        entry = self._fresh(aor)
        if entry is None or not entry.complete:
            self.misses += 1
            return None
        self.hits += 1
        return [entry.devices[device] for device in sorted(entry.devices)]

    def find(self, aor: str, matches: Callable[[Binding], bool]) -> Binding | None:
        """A fresh cached binding of ``aor`` that ``matches`` (complete or partial entry)."""
        entry = self._fresh(aor)
        if entry is not None:
            for device in sorted(entry.devices):
                if matches(entry.devices[device]):
                    self.hits += 1
                    return entry.devices[device]
        return None

    def loaded(self, aor: str, found: Iterable[Binding], generation: int) -> None:
        """``found`` is everything the database holds for ``aor``, read while the cache was at
        ``generation``; cached unless a write happened meanwhile."""
        if generation != self.generation:
            return
        entry = _Entry({b.device_id: b for b in found}, complete=True, stamped=self._clock())
        self._put(aor, entry)

    def applied(self, changes: ChangeSet) -> None:
        """``changes`` committed: removals first, then upserts, as the store applies them."""
        self.generation += 1
        now = self._clock()
        for aor, device_id in changes.removals:
            if device_id == ALL_DEVICES:
                self._put(aor, _Entry(complete=True, stamped=now))  # the AOR has none now
                continue
            entry = self._entries.get(aor)
            if entry is not None:
                entry.devices.pop(device_id, None)
        for binding in changes.final_upserts():
            entry = self._entries.get(binding.aor)
            if entry is None or not self._is_fresh(entry, now):
                entry = _Entry(stamped=now)  # partial: only what this process knows
                self._put(binding.aor, entry)
            else:
                self._entries.move_to_end(binding.aor)
            if not entry.complete:
                entry.stamped = now
            old = entry.devices.get(binding.device_id)
            if old is not None and old.created_at < binding.created_at:
                binding = replace(binding, created_at=old.created_at)  # as the store keeps it
            entry.devices[binding.device_id] = binding

    def forget(self, aor: str | None = None) -> None:
        """Drop ``aor`` (every AOR when ``None``): a write whose effect the cache cannot
        follow (a bulk delete)."""
        self.generation += 1
        if aor is None:
            self._entries.clear()
        else:
            self._entries.pop(aor, None)

    def expire(self, now: datetime) -> None:
        """Drop cached bindings whose ``expires_at`` is reached at ``now`` (the sweep)."""
        self.generation += 1
        for entry in self._entries.values():
            for device, binding in list(entry.devices.items()):
                if binding.expires_at <= now:
                    del entry.devices[device]

    def _fresh(self, aor: str) -> _Entry | None:
        entry = self._entries.get(aor)
        if entry is None:
            return None
        if not self._is_fresh(entry, self._clock()):
            del self._entries[aor]
            return None
        self._entries.move_to_end(aor)
        return entry

    def _is_fresh(self, entry: _Entry, now: float) -> bool:
        return now - entry.stamped < self.ttl

    def _put(self, aor: str, entry: _Entry) -> None:
        self._entries[aor] = entry
        self._entries.move_to_end(aor)
        while len(self._entries) > self.max_aors:
            self._entries.popitem(last=False)
