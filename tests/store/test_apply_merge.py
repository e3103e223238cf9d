"""``BindingStore.apply`` under concurrency: change sets applied while a write is in flight are
merged (``merged_segments``) into one transaction, with the same effect as one after the other.

``merged_segments`` is checked as a pure table; then many concurrent ``apply()`` calls are run
against each real backend and compared with the same change sets applied one by one, in the
same database under other AORs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from sipush.errors import StoreError
from sipush.store import Binding, ChangeSet
from sipush.store.binding_store import merged_segments
from sipush.store.model import ALL_DEVICES
from tests.store.storekit import T0, Backend, android_push, ios_push, make_binding

A = "sip:alice@example.com"
B = "sip:bob@example.com"
PHONE = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
TABLET = "<urn:uuid:00000000-0000-4000-8000-000000000002>"


def bind(aor: str, device: str, cseq: int = 1) -> Binding:
    return make_binding(aor, device, cseq=cseq, call_id=f"{aor}-{device}-{cseq}")


def up(*bindings: Binding) -> ChangeSet:
    return ChangeSet(upserts=bindings)


def rm(*removals: tuple[str, str]) -> ChangeSet:
    return ChangeSet(removals=removals)


# -- merged_segments, a pure table ----------------------------------------------------------------

A_PHONE_1, A_PHONE_2, A_PHONE_3 = (bind(A, PHONE, n) for n in (1, 2, 3))
A_TABLET, B_PHONE = bind(A, TABLET), bind(B, PHONE)

SEGMENTS = [
    ("nothing", [], []),
    (
        "disjoint sets: one segment, keys sorted",
        [up(B_PHONE), up(A_TABLET), rm((B, TABLET)), rm((A, PHONE))],
        [([(A, PHONE), (B, TABLET)], [A_TABLET, B_PHONE])],
    ),
    (
        "the last upsert of a key wins",
        [up(A_PHONE_1), up(A_PHONE_2), up(A_PHONE_3)],
        [([], [A_PHONE_3])],
    ),
    (
        "within one change set too",
        [up(A_PHONE_2, A_PHONE_1)],
        [([], [A_PHONE_1])],
    ),
    (
        "a removal before an upsert of the key stays in the segment",
        [rm((A, PHONE)), up(A_PHONE_1)],
        [([(A, PHONE)], [A_PHONE_1])],
    ),
    (
        "a removal hitting an earlier upsert starts a segment",
        [up(A_PHONE_1), rm((A, PHONE))],
        [([], [A_PHONE_1]), ([(A, PHONE)], [])],
    ),
    (
        "a '*' removal hitting an earlier upsert of its AOR starts a segment",
        [up(A_TABLET), rm((A, ALL_DEVICES))],
        [([], [A_TABLET]), ([(A, ALL_DEVICES)], [])],
    ),
    (
        "a removal of another device or AOR does not",
        [up(A_PHONE_1), rm((A, TABLET)), rm((B, ALL_DEVICES)), up(B_PHONE)],
        [([(A, TABLET), (B, ALL_DEVICES)], [A_PHONE_1, B_PHONE])],
    ),
    (
        "upsert, remove, upsert the same key",
        [up(A_PHONE_1), rm((A, PHONE)), up(A_PHONE_2)],
        [([], [A_PHONE_1]), ([(A, PHONE)], [A_PHONE_2])],
    ),
    (
        "a removal and upsert of the key in one change set after an upsert",
        [up(A_PHONE_1, B_PHONE), ChangeSet(upserts=(A_PHONE_2,), removals=((A, PHONE),))],
        [([], [A_PHONE_1, B_PHONE]), ([(A, PHONE)], [A_PHONE_2])],
    ),
    (
        "segments start afresh: an upsert before the cut does not cut again",
        [up(A_PHONE_1), rm((A, PHONE)), up(A_TABLET), rm((B, PHONE)), rm((A, TABLET))],
        [
            ([], [A_PHONE_1]),
            ([(A, PHONE), (B, PHONE)], [A_TABLET]),
            ([(A, TABLET)], []),
        ],
    ),
]


@pytest.mark.parametrize(
    ("change_sets", "expected"),
    [pytest.param(sets, expected, id=name) for name, sets, expected in SEGMENTS],
)
def test_merged_segments(
    change_sets: list[ChangeSet],
    expected: list[tuple[list[tuple[str, str]], list[Binding]]],
) -> None:
    assert merged_segments(change_sets) == expected


def apply_in_memory(rows: dict[tuple[str, str], Binding], changes: ChangeSet) -> None:
    """The documented meaning of one change set: removals, then upserts keeping created_at."""
    for aor, device in changes.removals:
        for key in [k for k in rows if k[0] == aor and device in (ALL_DEVICES, k[1])]:
            del rows[key]
    for binding in changes.final_upserts():
        old = rows.get(binding.key)
        keep = binding if old is None else dataclasses.replace(binding, created_at=old.created_at)
        rows[binding.key] = keep


def test_merged_segments_mean_the_change_sets_one_after_the_other() -> None:
    rng = random.Random(5)
    for _ in range(300):
        change_sets = random_change_sets(rng, 12, aors=(A, B))
        one_by_one: dict[tuple[str, str], Binding] = {}
        for changes in change_sets:
            apply_in_memory(one_by_one, changes)
        merged: dict[tuple[str, str], Binding] = {}
        for removals, upserts in merged_segments(change_sets):
            apply_in_memory(merged, ChangeSet(upserts=tuple(upserts), removals=tuple(removals)))
        assert merged == one_by_one, change_sets


# -- concurrent apply() on the real backends -------------------------------------------------------

DEVICES = (PHONE, TABLET, "<urn:uuid:00000000-0000-4000-8000-000000000003>", "pn-prid-abc")


def random_change_sets(
    rng: random.Random, count: int, *, aors: tuple[str, ...], same_created_at: bool = True
) -> list[ChangeSet]:
    """``count`` change sets over a few keys: upserts (several per set, sometimes of one key),
    removals of one device, '*' removals, and upsert/remove/upsert of one key across sets."""
    sets: list[ChangeSet] = []
    serial = 0

    def binding(aor: str, device: str) -> Binding:
        nonlocal serial
        serial += 1
        at = T0 + timedelta(seconds=serial)
        return make_binding(
            aor,
            device,
            at=at,
            created_at=T0 if same_created_at else at,
            cseq=serial,
            call_id=f"reg-{serial}",
            flow_remote=f"127.0.0.1:{40000 + serial}",
            push=rng.choice([None, ios_push(), android_push()]),
            expires_in=rng.choice([60, 3600]),
        )

    while len(sets) < count:
        aor, device = rng.choice(aors), rng.choice(DEVICES)
        kind = rng.random()
        if kind < 0.1:  # the same key: upserted, removed, upserted again, in three sets
            sets += [up(binding(aor, device)), rm((aor, device)), up(binding(aor, device))]
        elif kind < 0.2:
            sets.append(rm((aor, ALL_DEVICES)))
        elif kind < 0.35:
            sets.append(rm((aor, device)))
        elif kind < 0.5:  # a refresh with a removal of another device (a moved Contact)
            other = rng.choice(DEVICES)
            sets.append(ChangeSet(upserts=(binding(aor, device),), removals=((aor, other),)))
        else:
            upserts = [
                binding(rng.choice(aors), rng.choice(DEVICES)) for _ in range(rng.randint(1, 3))
            ]
            sets.append(up(*upserts))
    return sets[:count]


def has_key(key: tuple[str, str]) -> Callable[[Binding], bool]:
    return lambda binding: binding.key == key


def renamed(changes: ChangeSet, prefix: str) -> ChangeSet:
    """``changes`` with every AOR given ``prefix`` (sip:alice@... -> sip:PREFIXalice@...)."""

    def aor(text: str) -> str:
        return text.replace("sip:", f"sip:{prefix}", 1)

    return ChangeSet(
        upserts=tuple(dataclasses.replace(b, aor=aor(b.aor)) for b in changes.upserts),
        removals=tuple((aor(r), device) for r, device in changes.removals),
    )


def unprefixed(bindings: list[Binding], prefix: str) -> list[Binding]:
    return [dataclasses.replace(b, aor=b.aor.replace(f"sip:{prefix}", "sip:", 1)) for b in bindings]


AORS = tuple(f"sip:{name}@example.com" for name in ("alice", "bob", "carol"))


@pytest.mark.parametrize("cache_ttl", [0.0, 30.0], ids=["uncached", "cached"])
async def test_concurrent_applies_end_as_applied_one_by_one(
    backend: Backend, cache_ttl: float
) -> None:
    change_sets = random_change_sets(random.Random(3261), 200, aors=AORS)
    existing = [make_binding(aor, device, cseq=99) for aor in AORS for device in DEVICES[:2]]
    async with await backend.open(cache_ttl=cache_ttl) as store:
        # the same starting rows under both prefixes
        await store.apply(
            up(*(dataclasses.replace(b, aor=b.aor.replace("sip:", "sip:c-")) for b in existing))
        )
        await store.apply(
            up(*(dataclasses.replace(b, aor=b.aor.replace("sip:", "sip:s-")) for b in existing))
        )
        for changes in change_sets:
            await store.apply(renamed(changes, "s-"))
        before = store._group.transactions
        await asyncio.gather(*(store.apply(renamed(c, "c-")) for c in change_sets))
        merged_transactions = store._group.transactions - before
        assert merged_transactions < len(change_sets) / 4  # they did share transactions

        everything = await store.list(include_expired=True)
        concurrent = [b for b in everything if b.aor.startswith("sip:c-")]
        one_by_one = [b for b in everything if b.aor.startswith("sip:s-")]
        assert unprefixed(concurrent, "c-") == unprefixed(one_by_one, "s-")
        assert len(concurrent) > 3  # the sets do not just remove everything
        for aor in AORS:  # what the cache answers is what the database holds
            wanted = aor.replace("sip:", "sip:c-")
            stored = [b for b in concurrent if b.aor == wanted]
            assert await store.get(wanted) == stored
            for binding in stored:
                found = await store.find(wanted, has_key(binding.key))
                assert found == binding


async def test_concurrent_upserts_of_a_new_device_keep_the_first_created_at(
    backend: Backend,
) -> None:
    first = make_binding(A, PHONE, created_at=T0)
    second = make_binding(A, PHONE, created_at=T0 + timedelta(seconds=1), cseq=2)
    async with await backend.open() as store:
        await store.apply(up(dataclasses.replace(first, aor=B)))
        await store.apply(up(dataclasses.replace(second, aor=B)))
        assert [b.created_at for b in await store.get(B)] == [T0]  # one after the other
        await asyncio.gather(store.apply(up(first)), store.apply(up(second)))
        assert await store.get(A) == [dataclasses.replace(second, created_at=T0)]


def rejected_binding(aor: str) -> Binding:
    """A binding the database refuses: NULL in a NOT NULL column (the model would not build it,
    so it is forced in; it stands for any row the database rejects)."""
    binding = make_binding(aor, PHONE)
    object.__setattr__(binding, "contact", None)
    return binding


@pytest.mark.parametrize("cache_ttl", [0.0, 30.0], ids=["uncached", "cached"])
async def test_one_bad_change_set_fails_alone(backend: Backend, cache_ttl: float) -> None:
    good = [make_binding(f"sip:user{i}@example.com", PHONE, cseq=i + 1) for i in range(20)]
    bad = ChangeSet(upserts=(rejected_binding("sip:bad@example.com"), make_binding(A, TABLET)))
    sets = [up(b) for b in good[:10]] + [bad] + [up(b) for b in good[10:]]
    async with await backend.open(cache_ttl=cache_ttl) as store:
        outcomes = await asyncio.gather(*(store.apply(c) for c in sets), return_exceptions=True)
        assert outcomes[:10] == [None] * 10 and outcomes[11:] == [None] * 10
        assert isinstance(outcomes[10], StoreError)
        assert "cannot apply a change set" in str(outcomes[10])
        assert await store.list(include_expired=True) == sorted(good, key=lambda b: b.key)
        assert await store.get(A) == []  # the bad set's good binding went with it, atomically
        assert await store.find(A, lambda b: True) is None
        # and the store goes on
        await store.apply(up(make_binding(A, TABLET)))
        assert [b.device_id for b in await store.get(A)] == [TABLET]


async def test_a_bad_change_set_alone_reports_its_error(backend: Backend) -> None:
    async with await backend.open() as store:
        with pytest.raises(StoreError, match="cannot apply a change set"):
            await store.apply(up(rejected_binding(A)))
        await store.apply(up(make_binding(B)))
        assert [b.aor for b in await store.list(include_expired=True)] == [B]
