"""The binding cache: ``BindingCache`` alone (pure, clock injected), then through a real store
opened with ``cache_ttl`` on both backends.

Through the store, "served from the cache" is proven by changing the row behind the cached
store's back (a second store on the same database, without a cache) and seeing the cached store
still answer the old binding until its TTL has passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from sipush.store import ChangeSet
from sipush.store.binding_cache import BindingCache
from sipush.store.model import ALL_DEVICES, Binding
from tests.store.storekit import T0, Backend, make_binding, make_push

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
PHONE = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
TABLET = "<urn:uuid:00000000-0000-4000-8000-000000000002>"
TTL = 30.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_cache(clock: Clock, *, max_aors: int = 100) -> BindingCache:
    return BindingCache(ttl=TTL, max_aors=max_aors, clock=clock)


def anything(_: Binding) -> bool:
    return True


def on_flow(remote: str) -> Callable[[Binding], bool]:
    return lambda binding: binding.flow_remote == remote


# -- BindingCache alone -------------------------------------------------------------------------


def test_a_complete_entry_answers_lookup_sorted_by_device() -> None:
    cache = new_cache(Clock())
    phone, tablet = make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)
    assert cache.lookup(ALICE) is None  # never read: the caller must read the database
    cache.loaded(ALICE, [tablet, phone], cache.generation)
    assert cache.lookup(ALICE) == [phone, tablet]
    assert cache.lookup(BOB) is None
    assert cache.find(ALICE, lambda b: b.device_id == TABLET) == tablet
    assert cache.find(ALICE, lambda b: False) is None
    cache.loaded(BOB, [], cache.generation)
    assert cache.lookup(BOB) == []  # known to have no binding


def test_a_partial_entry_answers_find_but_not_lookup() -> None:
    """Written by this process but never read whole: it may miss devices others wrote."""
    cache = new_cache(Clock())
    phone = make_binding(ALICE, PHONE, flow_remote="127.0.0.1:40111")
    cache.applied(ChangeSet(upserts=(phone,)))
    assert cache.find(ALICE, on_flow("127.0.0.1:40111")) == phone
    assert cache.find(ALICE, on_flow("127.0.0.1:9")) is None
    assert cache.lookup(ALICE) is None
    # once read whole it answers lookup too, and later writes keep it whole
    tablet = make_binding(ALICE, TABLET)
    cache.loaded(ALICE, [phone, tablet], cache.generation)
    moved = make_binding(ALICE, PHONE, flow_remote="127.0.0.1:50000", cseq=2)
    cache.applied(ChangeSet(upserts=(moved,)))
    assert cache.lookup(ALICE) == [moved, tablet]


def test_an_entry_is_trusted_for_ttl_seconds_from_its_read() -> None:
    clock = Clock()
    cache = new_cache(clock)
    phone = make_binding(ALICE, PHONE)
    cache.loaded(ALICE, [phone], cache.generation)
    clock.now += TTL - 0.001
    assert cache.lookup(ALICE) == [phone]
    # a write meanwhile does not extend how long the read is trusted: that bounds how long a
    # change made by another process goes unseen
    cache.applied(ChangeSet(upserts=(make_binding(ALICE, TABLET),)))
    clock.now += 0.001
    assert cache.lookup(ALICE) is None
    assert cache.find(ALICE, anything) is None
    assert len(cache) == 0  # dropped, not kept stale


def test_a_partial_entry_is_trusted_for_ttl_seconds_from_its_last_write() -> None:
    clock = Clock()
    cache = new_cache(clock)
    phone, tablet = make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)
    cache.applied(ChangeSet(upserts=(phone,)))
    clock.now += TTL - 1
    cache.applied(ChangeSet(upserts=(tablet,)))
    clock.now += TTL - 1  # 2 * TTL - 2 after the first write, TTL - 1 after the last
    assert cache.find(ALICE, lambda b: b.device_id == PHONE) == phone
    clock.now += 1
    assert cache.find(ALICE, anything) is None


def test_a_stale_partial_entry_is_not_revived_by_a_write() -> None:
    clock = Clock()
    cache = new_cache(clock)
    cache.applied(ChangeSet(upserts=(make_binding(ALICE, PHONE),)))
    clock.now += TTL
    tablet = make_binding(ALICE, TABLET)
    cache.applied(ChangeSet(upserts=(tablet,)))
    assert cache.find(ALICE, lambda b: b.device_id == PHONE) is None  # too old to trust
    assert cache.find(ALICE, anything) == tablet


def test_at_most_max_aors_least_recently_used_go_first() -> None:
    cache = new_cache(Clock(), max_aors=2)
    cache.loaded(ALICE, [make_binding(ALICE)], cache.generation)
    cache.loaded(BOB, [make_binding(BOB)], cache.generation)
    assert cache.lookup(ALICE) is not None  # ALICE is now the most recently used
    cache.loaded(CAROL, [], cache.generation)
    assert len(cache) == 2
    assert cache.lookup(BOB) is None
    assert cache.lookup(ALICE) is not None and cache.lookup(CAROL) == []
    # a write counts as a use, and a partial entry as an entry
    cache.applied(ChangeSet(upserts=(make_binding(BOB),)))
    assert len(cache) == 2
    assert cache.lookup(ALICE) is None  # CAROL was used after ALICE
    assert cache.lookup(CAROL) == []


def test_a_read_that_raced_a_write_is_not_cached() -> None:
    cache = new_cache(Clock())
    old = make_binding(ALICE, PHONE)
    for write in (
        lambda: cache.applied(ChangeSet(upserts=(make_binding(ALICE, PHONE, cseq=2),))),
        lambda: cache.applied(ChangeSet(upserts=(make_binding(BOB),))),  # any write at all
        lambda: cache.forget(ALICE),
        lambda: cache.expire(T0),
    ):
        cache.forget()
        generation = cache.generation  # the read starts ...
        write()  # ... a write commits meanwhile ...
        cache.loaded(ALICE, [old], generation)  # ... and the read ends with what it saw
        assert cache.lookup(ALICE) is None
    cache.loaded(ALICE, [old], cache.generation)
    assert cache.lookup(ALICE) == [old]


def test_removing_all_devices_makes_the_aor_known_empty() -> None:
    cache = new_cache(Clock())
    cache.loaded(ALICE, [make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)], cache.generation)
    cache.applied(ChangeSet(removals=((ALICE, ALL_DEVICES),)))
    assert cache.lookup(ALICE) == []
    assert cache.find(ALICE, anything) is None
    # also for an AOR never read: after "*" the database has none of its bindings
    cache.applied(ChangeSet(removals=((BOB, ALL_DEVICES),)))
    assert cache.lookup(BOB) == []
    # "*" then upserts in one change set: removals first, as the store applies them
    phone = make_binding(CAROL, PHONE)
    cache.applied(ChangeSet(upserts=(phone,), removals=((CAROL, ALL_DEVICES),)))
    assert cache.lookup(CAROL) == [phone]


def test_removing_one_device_keeps_the_others() -> None:
    cache = new_cache(Clock())
    phone, tablet = make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)
    cache.loaded(ALICE, [phone, tablet], cache.generation)
    cache.applied(ChangeSet(removals=((ALICE, PHONE),)))
    assert cache.lookup(ALICE) == [tablet]
    cache.applied(ChangeSet(removals=((BOB, PHONE),)))  # unknown AOR: stays unknown
    assert cache.lookup(BOB) is None


def test_an_upsert_keeps_the_cached_created_at_as_the_store_does() -> None:
    cache = new_cache(Clock())
    first = make_binding(ALICE, PHONE)
    cache.loaded(ALICE, [first], cache.generation)
    later = T0 + timedelta(minutes=5)
    again = make_binding(ALICE, PHONE, at=later, created_at=later, cseq=2)
    cache.applied(ChangeSet(upserts=(again,)))
    assert cache.lookup(ALICE) == [dataclasses.replace(again, created_at=first.created_at)]


def test_expire_drops_expired_bindings() -> None:
    cache = new_cache(Clock())
    short = make_binding(ALICE, PHONE, expires_in=60)
    long = make_binding(ALICE, TABLET, expires_in=3600)
    bob = make_binding(BOB, PHONE, expires_in=60)
    cache.loaded(ALICE, [short, long], cache.generation)
    cache.applied(ChangeSet(upserts=(bob,)))  # a partial entry
    cache.expire(T0 + timedelta(seconds=59))
    assert cache.lookup(ALICE) == [short, long]
    cache.expire(T0 + timedelta(seconds=60))  # expires_at reached: gone
    assert cache.lookup(ALICE) == [long]  # still complete: the store deleted the others
    assert cache.find(BOB, anything) is None


def test_forget_one_aor_or_all() -> None:
    cache = new_cache(Clock())
    cache.loaded(ALICE, [], cache.generation)
    cache.loaded(BOB, [], cache.generation)
    cache.forget(ALICE)
    assert cache.lookup(ALICE) is None and cache.lookup(BOB) == []
    cache.forget()
    assert len(cache) == 0


@pytest.mark.parametrize(("ttl", "max_aors"), [(0.0, 10), (-1.0, 10), (1.0, 0)])
def test_a_cache_needs_a_positive_ttl_and_size(ttl: float, max_aors: int) -> None:
    with pytest.raises(ValueError, match="ttl > 0 and max_aors >= 1"):
        BindingCache(ttl=ttl, max_aors=max_aors)


# -- through a real store -------------------------------------------------------------------------

SHORT_TTL = 1.0  # seconds: long enough for the steps below on a loaded machine, short to wait out


async def test_get_and_find_are_served_from_the_cache_until_the_ttl(backend: Backend) -> None:
    phone = make_binding(ALICE, PHONE, flow_remote="127.0.0.1:40111")
    moved = make_binding(ALICE, PHONE, flow_remote="127.0.0.1:50000", cseq=2)
    async with (
        await backend.open(cache_ttl=SHORT_TTL) as cached,
        await backend.open() as other,  # another process, say
    ):
        assert cached.cache is not None and other.cache is None
        await cached.apply(ChangeSet(upserts=(phone,)))
        assert await cached.find(ALICE, anything) == phone  # from what this process wrote
        assert await cached.get(ALICE) == [phone]  # read whole once, then kept
        await other.apply(ChangeSet(upserts=(moved,)))  # behind the cached store's back

        assert await cached.get(ALICE) == [phone]
        assert await cached.find(ALICE, on_flow("127.0.0.1:40111")) == phone
        assert await other.get(ALICE) == [moved]

        await asyncio.sleep(SHORT_TTL * 1.2)  # not a speed check: the entry has expired
        assert await cached.get(ALICE) == [moved]
        assert await cached.find(ALICE, on_flow("127.0.0.1:40111")) is None
        assert await cached.find(ALICE, on_flow("127.0.0.1:50000")) == moved


async def test_find_falls_back_to_the_database(backend: Backend) -> None:
    phone = make_binding(ALICE, PHONE)
    async with await backend.open(cache_ttl=30) as cached, await backend.open() as other:
        await other.apply(ChangeSet(upserts=(phone,)))  # this process never wrote it
        assert await cached.find(ALICE, anything) == phone
        assert await cached.find(BOB, anything) is None


async def test_a_delete_through_the_cached_store_is_seen_at_once(backend: Backend) -> None:
    phone, tablet = make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)
    async with await backend.open(cache_ttl=30) as cached:
        await cached.apply(ChangeSet(upserts=(phone, tablet)))
        assert await cached.get(ALICE) == [phone, tablet]
        assert await cached.delete(ALICE, PHONE) == 1
        assert await cached.get(ALICE) == [tablet]
        assert await cached.find(ALICE, lambda b: b.device_id == PHONE) is None
        assert await cached.delete(ALICE) == 1
        assert await cached.get(ALICE) == []
        assert await cached.find(ALICE, anything) is None


async def test_apply_through_the_cached_store_is_seen_at_once(backend: Backend) -> None:
    phone, tablet = make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)
    async with await backend.open(cache_ttl=30) as cached:
        assert await cached.get(ALICE) == []  # cached: known empty
        await cached.apply(ChangeSet(upserts=(phone, tablet)))
        assert await cached.get(ALICE) == [phone, tablet]
        await cached.apply(ChangeSet(removals=((ALICE, PHONE),)))
        assert await cached.get(ALICE) == [tablet]
        await cached.apply(ChangeSet(removals=((ALICE, ALL_DEVICES),)))
        assert await cached.get(ALICE) == []
        assert await cached.find(ALICE, anything) is None


async def test_purge_expired_drops_cached_expired_bindings(backend: Backend) -> None:
    short = make_binding(ALICE, PHONE, expires_in=60)
    long = make_binding(ALICE, TABLET, expires_in=3600)
    async with await backend.open(cache_ttl=30) as cached:
        await cached.apply(ChangeSet(upserts=(short, long)))
        assert await cached.get(ALICE) == [short, long]  # get includes expired ones
        assert await cached.purge_expired(T0 + timedelta(seconds=60)) == 1
        assert await cached.get(ALICE) == [long]
        assert await cached.find(ALICE, lambda b: b.device_id == PHONE) is None


async def test_an_apply_whose_caller_was_cancelled_still_reaches_the_cache(
    backend: Backend,
) -> None:
    phone = make_binding(ALICE, PHONE)
    async with await backend.open(cache_ttl=30) as cached:
        assert await cached.get(ALICE) == []  # cached: ALICE has no binding
        registering = asyncio.create_task(cached.apply(ChangeSet(upserts=(phone,))))
        await asyncio.sleep(0)  # queued; then its caller goes away (a REGISTER task cancelled)
        registering.cancel()
        await cached.apply(ChangeSet(upserts=(make_binding(BOB),)))  # committed after it
        assert await cached.list(ALICE, include_expired=True) == [phone]  # the database has it
        assert await cached.get(ALICE) == [phone]
        assert await cached.find(ALICE, anything) == phone


async def test_a_delete_committed_after_an_apply_in_one_transaction_wins_in_the_cache(
    backend: Backend,
) -> None:
    phone = make_binding(ALICE, PHONE)
    async with await backend.open(cache_ttl=30) as cached:
        in_flight = asyncio.create_task(cached.record_push(make_push()))
        await asyncio.sleep(0)  # a write in flight: what follows shares the next transaction
        registering = asyncio.create_task(cached.apply(ChangeSet(upserts=(phone,))))
        for _ in range(3):  # until the apply's body is queued, before the delete's
            await asyncio.sleep(0)
        deleting = asyncio.create_task(cached.delete(ALICE))
        await asyncio.gather(in_flight, registering, deleting)
        assert deleting.result() == 1  # the delete ran after the apply
        assert await cached.list(ALICE, include_expired=True) == []
        assert await cached.find(ALICE, anything) is None
        assert await cached.get(ALICE) == []


async def test_find_in_memory_answers_only_what_the_cache_knows(backend: Backend) -> None:
    # The call path asks memory first (no task, no database round trip) and goes to the
    # database only when memory cannot tell.
    phone = make_binding(ALICE, PHONE)
    async with await backend.open(cache_ttl=30) as cached:
        assert cached.find_in_memory(ALICE, lambda b: True) == (False, None)  # nothing known
        await cached.apply(ChangeSet(upserts=(phone,)))
        assert cached.find_in_memory(ALICE, lambda b: True) == (True, phone)
        # A partial entry (written, never read whole) cannot say "no such binding".
        assert cached.find_in_memory(ALICE, lambda b: False) == (False, None)
        assert await cached.get(BOB) == []  # read whole: BOB has none
        assert cached.find_in_memory(BOB, lambda b: True) == (True, None)
    async with await backend.open() as uncached:
        assert uncached.find_in_memory(ALICE, lambda b: True) == (False, None)
