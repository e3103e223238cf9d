"""The BindingStore contract, run against every backend: SQLite (a file) and real PostgreSQL:
bindings (apply, get, list, delete, purge) and push records (record_push, mark_reregistered,
pushes, and their retention in purge_expired).

Each test gets an empty database (``backend`` fixture: a tmp SQLite file, or a fresh PostgreSQL
schema dropped afterwards) and talks to it only through the public API, except where a test
looks at the raw row to prove how something is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sipush.errors import StoreError
from sipush.push.params import PushInfo
from sipush.store import ChangeSet
from sipush.store.binding_store import PURGE_CHUNK
from sipush.store.tables import PUSH_COLUMNS, bindings
from tests.store.storekit import T0, Backend, android_push, ios_push, make_binding, make_push

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
PHONE = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
TABLET = "<urn:uuid:00000000-0000-4000-8000-000000000002>"
DESKTOP = "<urn:uuid:00000000-0000-4000-8000-000000000003>"
LATER = T0 + timedelta(minutes=10)


@pytest.fixture(params=[0.0, 30.0], ids=["uncached", "cached"])
def store_cache_ttl(request: pytest.FixtureRequest) -> float:
    """Every contract test runs on each database twice: stores without and with a binding cache
    (as ``sipush serve`` opens them), which must keep the same contract."""
    return float(request.param)


async def test_upsert_then_get_and_list(backend: Backend) -> None:
    alice_phone = make_binding(ALICE, PHONE, push=ios_push())
    bob_phone = make_binding(BOB, PHONE, push=android_push(), transport="tcp")
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(bob_phone, alice_phone)))
        assert await store.get(ALICE) == [alice_phone]
        assert await store.get(BOB) == [bob_phone]
        assert await store.get("sip:nobody@example.com") == []
        assert await store.list(now=T0) == [alice_phone, bob_phone]  # sorted by AOR
        assert await store.list(BOB, now=T0) == [bob_phone]


async def test_replace_keeps_created_at_and_replaces_everything_else(backend: Backend) -> None:
    first = make_binding(ALICE, PHONE, push=ios_push())
    again = make_binding(
        ALICE,
        PHONE,
        at=LATER,
        created_at=LATER,  # what a caller that does not know the old row would send
        contact="sip:alice@127.0.0.1:40999;transport=tcp",
        transport="tcp",
        flow_remote="127.0.0.1:40999",
        cseq=2,
        user_agent=None,
        push=android_push(),
    )
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(first,)))
        await store.apply(ChangeSet(upserts=(again,)))
        assert await store.get(ALICE) == [dataclasses.replace(again, created_at=first.created_at)]


async def test_one_aor_many_devices(backend: Backend) -> None:
    devices = [make_binding(ALICE, device) for device in (PHONE, TABLET, DESKTOP)]
    moved = make_binding(ALICE, TABLET, at=LATER, flow_remote="127.0.0.1:50000", cseq=7)
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=tuple(devices)))
        assert [b.device_id for b in await store.get(ALICE)] == [PHONE, TABLET, DESKTOP]
        await store.apply(ChangeSet(upserts=(moved,)))  # re-REGISTER from a new port
        found = await store.get(ALICE)
        assert len(found) == 3  # replaced, never a duplicate
        assert found[1] == dataclasses.replace(moved, created_at=T0)
        assert found[0] == devices[0] and found[2] == devices[2]


async def test_removal_of_one_device_and_of_all(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.apply(
            ChangeSet(
                upserts=(
                    make_binding(ALICE, PHONE),
                    make_binding(ALICE, TABLET),
                    make_binding(BOB, PHONE),
                )
            )
        )
        await store.apply(ChangeSet(removals=((ALICE, TABLET),)))
        assert [b.device_id for b in await store.get(ALICE)] == [PHONE]
        await store.apply(ChangeSet(removals=((ALICE, "*"),)))
        assert await store.get(ALICE) == []
        assert len(await store.get(BOB)) == 1  # other AORs untouched
        await store.apply(ChangeSet(removals=((ALICE, PHONE), ("sip:nobody@x", "*"))))  # no-op


async def test_removals_run_before_upserts(backend: Backend) -> None:
    fresh = make_binding(ALICE, DESKTOP, at=LATER)
    async with await backend.open() as store:
        await store.apply(
            ChangeSet(upserts=(make_binding(ALICE, PHONE), make_binding(ALICE, TABLET)))
        )
        await store.apply(ChangeSet(upserts=(fresh,), removals=((ALICE, "*"),)))
        assert await store.get(ALICE) == [fresh]


async def test_the_last_upsert_of_a_key_wins(backend: Backend) -> None:
    first = make_binding(ALICE, PHONE, cseq=1)
    second = make_binding(ALICE, PHONE, cseq=2, contact="sip:alice@127.0.0.1:40222")
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(first, second)))
        assert await store.get(ALICE) == [second]


async def test_apply_is_one_transaction(backend: Backend) -> None:
    """A change set that fails half-way changes nothing, and the failure is a StoreError."""
    keep = make_binding(ALICE, PHONE)
    broken = make_binding(ALICE, TABLET)
    object.__setattr__(broken, "contact", None)  # bypass validation: NOT NULL must fire
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(keep,)))
        changes = ChangeSet(upserts=(make_binding(BOB, PHONE), broken), removals=((ALICE, "*"),))
        with pytest.raises(StoreError, match="cannot apply a change set") as caught:
            await store.apply(changes)
        assert "\n" not in str(caught.value)
        assert await store.get(ALICE) == [keep]  # the removal was rolled back
        assert await store.get(BOB) == []  # and so was the upsert before the failure
        await store.apply(ChangeSet(upserts=(make_binding(BOB, PHONE),)))  # still usable


async def test_delete(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.apply(
            ChangeSet(upserts=tuple(make_binding(ALICE, d) for d in (PHONE, TABLET, DESKTOP)))
        )
        assert await store.delete(ALICE, TABLET) == 1
        assert await store.delete(ALICE, TABLET) == 0
        assert await store.delete("sip:nobody@example.com") == 0
        assert await store.delete(ALICE) == 2
        assert await store.get(ALICE) == []


async def test_expired_bindings_are_hidden_from_list_unless_asked(backend: Backend) -> None:
    live = make_binding(ALICE, PHONE, expires_in=3600)
    gone = make_binding(ALICE, TABLET, expires_in=60)
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(live, gone)))
        at_expiry = T0 + timedelta(seconds=60)  # 0 s left is expired
        assert await store.list(now=at_expiry) == [live]
        assert await store.list(ALICE, now=at_expiry) == [live]
        assert await store.list(now=at_expiry - timedelta(microseconds=1)) == [live, gone]
        assert await store.list(include_expired=True, now=at_expiry) == [live, gone]
        assert await store.get(ALICE) == [live, gone]  # get() shows the raw state
        # Without ``now``: the wall clock (T0 is in the past of any real run... or the future).
        real_now = datetime.now(UTC)
        expected = [b for b in (live, gone) if b.expires_at > real_now]
        assert await store.list() == expected


async def test_purge_expired(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.apply(
            ChangeSet(
                upserts=(
                    make_binding(ALICE, PHONE, expires_in=30),
                    make_binding(ALICE, TABLET, expires_in=60),
                    make_binding(BOB, PHONE, expires_in=61),
                )
            )
        )
        assert await store.purge_expired(T0) == 0
        assert await store.purge_expired(T0 + timedelta(seconds=60)) == 2  # 30 s and exactly 60 s
        assert [b.aor for b in await store.list(include_expired=True)] == [BOB]
        assert await store.purge_expired(T0 + timedelta(seconds=60)) == 0


async def test_purge_expired_in_chunks_removes_every_expired_binding(backend: Backend) -> None:
    # More expired bindings than one purge transaction takes (PURGE_CHUNK): all go, the
    # count is exact, and a live binding among them stays.
    expired = [
        make_binding(f"sip:u{i}@example.com", PHONE, expires_in=10)
        for i in range(2 * PURGE_CHUNK + 7)
    ]
    live = make_binding(ALICE, TABLET, expires_in=3600)
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(*expired, live)))
        assert await store.purge_expired(T0 + timedelta(seconds=10)) == len(expired)
        assert await store.list(include_expired=True) == [live]


async def test_bindings_survive_close_and_reopen(backend: Backend) -> None:
    saved = [make_binding(ALICE, PHONE, push=ios_push()), make_binding(BOB, TABLET)]
    store = await backend.open()
    await store.apply(ChangeSet(upserts=tuple(saved)))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.get(ALICE)
    async with await backend.open() as reopened:  # the schema exists now: not re-created
        assert await reopened.list(include_expired=True) == saved
        await reopened.apply(ChangeSet(upserts=(make_binding(ALICE, PHONE, at=LATER),)))
        assert (await reopened.get(ALICE))[0].created_at == T0


async def test_concurrent_applies_in_one_store(backend: Backend) -> None:
    async with await backend.open() as store:

        async def register(number: int) -> None:
            device = f"device-{number % 10}"
            binding = make_binding(ALICE, device, at=T0 + timedelta(seconds=number), cseq=number)
            await store.apply(ChangeSet(upserts=(binding,)))

        await asyncio.gather(*(register(number) for number in range(60)))
        found = await store.get(ALICE)
        assert [b.device_id for b in found] == [f"device-{n}" for n in range(10)]
        assert all(b.created_at >= T0 for b in found)
        assert all(b.cseq % 10 == int(b.device_id[-1]) for b in found)


async def test_concurrent_applies_from_two_stores(backend: Backend) -> None:
    """Two stores (two engines, like two processes) writing the same AOR at the same time."""
    first, second = await backend.open(), await backend.open()
    try:

        async def register(store_number: int, number: int) -> None:
            store = (first, second)[store_number]
            changes = ChangeSet(
                upserts=(make_binding(ALICE, f"s{store_number}-d{number % 5}", cseq=number),),
                removals=((ALICE, f"s{1 - store_number}-d{(number + 2) % 5}"),),
            )
            await store.apply(changes)

        await asyncio.gather(*(register(n % 2, n) for n in range(80)))
        await first.apply(ChangeSet(removals=((ALICE, "*"),)))
        assert await second.get(ALICE) == []
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "zone",
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))],
    ids=["utc", "plus-0530", "minus-0800"],
)
async def test_timestamps_round_trip_as_utc(backend: Backend, zone: timezone) -> None:
    local = datetime(2026, 3, 29, 1, 30, 15, 987654, tzinfo=zone)
    binding = make_binding(ALICE, PHONE, at=local, created_at=local - timedelta(days=400))
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(binding,)))
        (found,) = await store.get(ALICE)
        for name in ("expires_at", "registered_at", "created_at"):
            value = getattr(found, name)
            assert value.tzinfo is UTC, name
            assert value == getattr(binding, name), name  # the same instant, to the microsecond
        assert found.registered_at == local.astimezone(UTC)
        # Comparisons in SQL use the instant too, whatever zone ``now`` is written in.
        just_before = found.expires_at.astimezone(zone) - timedelta(microseconds=1)
        assert await store.list(now=just_before) == [found]
        assert await store.list(now=found.expires_at.astimezone(zone)) == []
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.list(now=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.purge_expired(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "push",
    [None, ios_push(), android_push(), ios_push(allow_call_push=True, source="rfc8599")],
    ids=["none", "ios-every-field", "fcm-minimal", "ios-flags-true"],
)
async def test_push_info_round_trip(backend: Backend, push: PushInfo | None) -> None:
    binding = make_binding(ALICE, PHONE, push=push)
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(binding,)))
        (found,) = await store.get(ALICE)
        assert found.push == push
        async with store._transaction("inspect", write=False) as conn:
            row = (await conn.execute(select(bindings))).mappings().one()
        for field_name, column in PUSH_COLUMNS.items():
            expected = None if push is None else getattr(push, field_name)
            assert row[column] == expected, column
        # push info set -> none on a re-REGISTER without push parameters, and back
        await store.apply(ChangeSet(upserts=(dataclasses.replace(binding, push=None),)))
        assert (await store.get(ALICE))[0].push is None
        await store.apply(ChangeSet(upserts=(binding,)))
        assert (await store.get(ALICE))[0].push == push


async def test_empty_change_set_is_a_no_op(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.apply(ChangeSet())
        assert await store.list(include_expired=True) == []


def test_every_push_info_field_has_a_column() -> None:
    """If PushInfo grows a field, the store must grow a column (or this fails)."""
    assert {field.name for field in dataclasses.fields(PushInfo)} == set(PUSH_COLUMNS)
    assert set(PUSH_COLUMNS.values()) <= set(bindings.c.keys())


async def test_open_without_create_refuses_a_missing_store(backend: Backend) -> None:
    """``create=False`` (the CLI) never creates a store: a wrong URL is an error, not empty."""
    with pytest.raises(StoreError, match="no binding store"):
        await backend.open(create=False)
    with pytest.raises(StoreError, match="no binding store"):
        await backend.open(create=False)  # and the failed attempt created nothing
    async with await backend.open():
        pass
    async with await backend.open(create=False) as store:
        assert await store.list() == []


# -- push records -------------------------------------------------------------------------------


async def test_record_push_assigns_increasing_ids_and_reads_back_equal(backend: Backend) -> None:
    delivered = make_push(ALICE, PHONE, latency_ms=83.125, call_id="abc@10.0.0.1")
    dead = make_push(
        ALICE, TABLET, at=T0 + timedelta(seconds=1), provider="fcm", outcome="token-invalid",
        status=404, reason="UNREGISTERED", call_id=None, latency_ms=0.5, attempts=1,
    )  # fmt: skip
    retried = make_push(
        BOB, PHONE, at=T0 + timedelta(seconds=2), kind="messageReceived", outcome="retry",
        status=429, reason="TooManyRequests", latency_ms=29999.999, attempts=4,
        reregistered_at=T0 + timedelta(seconds=9),
    )  # fmt: skip
    async with await backend.open() as store:
        ids = [await store.record_push(record) for record in (delivered, dead, retried)]
        assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] >= 1
        found = await store.pushes()
        stored = [
            dataclasses.replace(r, id=i)
            for r, i in zip((delivered, dead, retried), ids, strict=True)
        ]
        assert found == stored[::-1]  # newest first, every field as written
        assert found[0].latency_ms == 29999.999 and found[0].reregistered_after == 7.0


async def test_add_push_record_stores_concurrent_records_and_isolates_a_bad_one(
    backend: Backend,
) -> None:
    # The wake path's way: records added while a write is in flight go in as one multi-row
    # insert; one the database refuses fails alone and the others are stored.
    records = [
        make_push(f"sip:u{i}@example.com", PHONE, at=T0 + timedelta(milliseconds=i))
        for i in range(50)
    ]
    broken = make_push(BOB)
    object.__setattr__(broken, "kind", None)  # bypass validation: NOT NULL must fire
    async with await backend.open() as store:
        results = await asyncio.gather(
            *(store.add_push_record(r) for r in records[:25]),
            store.add_push_record(broken),
            *(store.add_push_record(r) for r in records[25:]),
            return_exceptions=True,
        )
        assert isinstance(results[25], StoreError) and "record pushes" in str(results[25])
        assert [r for r in results if r is not None] == [results[25]]
        found = await store.pushes(limit=1000)
        assert sorted(r.aor for r in found) == sorted(r.aor for r in records)
        assert [dataclasses.replace(r, id=None) for r in found] == records[::-1]


async def test_record_push_refuses_stored_records_and_other_values(backend: Backend) -> None:
    async with await backend.open() as store:
        record_id = await store.record_push(make_push())
        with pytest.raises(ValueError, match=f"stored already \\(id {record_id}\\)"):
            await store.record_push(make_push(id=record_id))
        with pytest.raises(TypeError, match="takes a PushRecord"):
            await store.record_push(make_binding())  # type: ignore[arg-type]
        broken = make_push(BOB)
        object.__setattr__(broken, "kind", None)  # bypass validation: NOT NULL must fire
        with pytest.raises(StoreError, match="cannot record a push") as caught:
            await store.record_push(broken)
        assert "\n" not in str(caught.value)
        assert [r.id for r in await store.pushes()] == [record_id]  # nothing else went in


async def test_pushes_filters_orders_and_limits(backend: Backend) -> None:
    plan = [
        (ALICE, PHONE, 0),
        (ALICE, TABLET, 1),
        (BOB, PHONE, 2),
        (ALICE, PHONE, 3),
        (ALICE, PHONE, 3),  # the same instant: the later id first
        (ALICE, TABLET, 5),
    ]
    async with await backend.open() as store:
        ids = [
            await store.record_push(make_push(aor, device, at=T0 + timedelta(seconds=offset)))
            for aor, device, offset in plan
        ]

        async def ids_of(*args: str | None, **options: str | int | None) -> list[int | None]:
            return [record.id for record in await store.pushes(*args, **options)]  # type: ignore[arg-type]

        assert await ids_of() == [ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
        assert await ids_of(ALICE) == [ids[5], ids[4], ids[3], ids[1], ids[0]]
        assert await ids_of(ALICE, device_id=PHONE) == [ids[4], ids[3], ids[0]]
        assert await ids_of(None, device_id=PHONE) == [ids[4], ids[3], ids[2], ids[0]]
        assert await ids_of(ALICE, limit=2) == [ids[5], ids[4]]
        assert await ids_of(ALICE, device_id=TABLET, limit=1) == [ids[5]]
        assert await ids_of("sip:nobody@example.com") == []
        assert len(await store.pushes(limit=100)) == 6
        for bad in (0, -1, True, 2.5):
            with pytest.raises(ValueError, match="limit must be an int >= 1"):
                await store.pushes(limit=bad)  # type: ignore[arg-type]


async def test_default_limit_is_100_newest(backend: Backend) -> None:
    async with await backend.open() as store:
        for number in range(105):
            await store.record_push(make_push(at=T0 + timedelta(seconds=number)))
        found = await store.pushes(ALICE)
        assert len(found) == 100
        assert found[0].sent_at == T0 + timedelta(seconds=104)
        assert found[-1].sent_at == T0 + timedelta(seconds=5)


async def test_mark_reregistered_stamps_the_devices_recent_pushes(backend: Backend) -> None:
    register = T0 + timedelta(minutes=10)
    records = {
        "too-old": make_push(ALICE, PHONE, at=register - timedelta(minutes=2, microseconds=1)),
        "window-start": make_push(ALICE, PHONE, at=register - timedelta(minutes=2)),
        "recent": make_push(ALICE, PHONE, at=register - timedelta(seconds=1)),
        "same-instant": make_push(ALICE, PHONE, at=register, outcome="failed"),
        "after": make_push(ALICE, PHONE, at=register + timedelta(microseconds=1)),
        "stamped": make_push(
            ALICE,
            PHONE,
            at=register - timedelta(seconds=30),
            reregistered_at=register - timedelta(seconds=20),
        ),
        "other-device": make_push(ALICE, TABLET, at=register - timedelta(seconds=1)),
        "other-aor": make_push(BOB, PHONE, at=register - timedelta(seconds=1)),
    }
    async with await backend.open() as store:
        ids = {name: await store.record_push(record) for name, record in records.items()}
        assert await store.mark_reregistered(ALICE, PHONE, register) == 3
        stamped = {r.id or 0: r.reregistered_at for r in await store.pushes()}
        names = {record_id: name for name, record_id in ids.items()}
        now_stamped = {names[i] for i, at in stamped.items() if at == register}
        assert now_stamped == {"window-start", "recent", "same-instant"}
        assert stamped[ids["stamped"]] == register - timedelta(seconds=20)  # keeps the first
        for name in ("too-old", "after", "other-device", "other-aor"):
            assert stamped[ids[name]] is None, name
        # The next REGISTER stamps only "after" (sent 1 µs past the first REGISTER); the other
        # device's REGISTER stamps its own push.
        assert await store.mark_reregistered(ALICE, PHONE, register + timedelta(seconds=5)) == 1
        newest = (await store.pushes(ALICE, device_id=PHONE, limit=1))[0]
        assert newest.id == ids["after"] and newest.reregistered_after == 4.999999
        assert await store.mark_reregistered(ALICE, PHONE, register + timedelta(seconds=6)) == 0
        assert await store.mark_reregistered(ALICE, TABLET, register) == 1
        assert await store.mark_reregistered("sip:nobody@example.com", PHONE, register) == 0


async def test_mark_reregistered_window_and_arguments(backend: Backend) -> None:
    zone = timezone(timedelta(hours=9))
    async with await backend.open() as store:
        await store.record_push(make_push(ALICE, PHONE, at=T0))
        later = T0 + timedelta(minutes=5)
        assert await store.mark_reregistered(ALICE, PHONE, later) == 0  # past the 2 min default
        wide = timedelta(minutes=5)
        assert await store.mark_reregistered(ALICE, PHONE, later.astimezone(zone), within=wide) == 1
        (found,) = await store.pushes()
        assert found.reregistered_at == later and found.reregistered_at.tzinfo is UTC
        assert found.reregistered_after == 300.0
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.mark_reregistered(ALICE, PHONE, datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="within must be a timedelta >= 0"):
            await store.mark_reregistered(ALICE, PHONE, later, within=timedelta(seconds=-1))
        exact = make_push(ALICE, TABLET, at=later)
        await store.record_push(exact)
        assert await store.mark_reregistered(ALICE, TABLET, later, within=timedelta(0)) == 1


async def test_purge_expired_also_drops_pushes_past_the_retention(backend: Backend) -> None:
    now = T0 + timedelta(days=30)
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(make_binding(ALICE, PHONE, expires_in=60),)))
        old = await store.record_push(make_push(at=now - timedelta(days=7, microseconds=1)))
        edge = await store.record_push(make_push(at=now - timedelta(days=7)))
        fresh = await store.record_push(make_push(at=now - timedelta(hours=1)))
        assert await store.purge_expired(now) == 1  # the count is of bindings only
        assert [r.id for r in await store.pushes()] == [fresh, edge]
        assert await store.purge_expired(now, push_retention=timedelta(hours=2)) == 0
        assert [r.id for r in await store.pushes()] == [fresh]
        assert await store.purge_expired(now, push_retention=timedelta(0)) == 0
        assert await store.pushes() == []
        # Ids are never reused, even once every row has gone.
        assert await store.record_push(make_push(at=now)) > max(old, edge, fresh)
        with pytest.raises(ValueError, match="push_retention must be a timedelta >= 0"):
            await store.purge_expired(now, push_retention=timedelta(days=-1))


async def test_deleting_bindings_keeps_their_push_history(backend: Backend) -> None:
    async with await backend.open() as store:
        await store.apply(ChangeSet(upserts=(make_binding(ALICE, PHONE),)))
        await store.record_push(make_push(ALICE, PHONE))
        await store.delete(ALICE)
        await store.purge_expired(T0 + timedelta(days=1))
        assert [r.device_id for r in await store.pushes(ALICE)] == [PHONE]


async def test_concurrent_push_records_from_two_stores(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    try:

        async def record(number: int) -> int:
            store = (first, second)[number % 2]
            at = T0 + timedelta(milliseconds=number)
            record_id = await store.record_push(make_push(ALICE, f"device-{number % 3}", at=at))
            await store.mark_reregistered(ALICE, f"device-{(number + 1) % 3}", at)
            return record_id

        ids = await asyncio.gather(*(record(number) for number in range(40)))
        assert len(set(ids)) == 40
        found = await first.pushes(limit=1000)
        assert sorted(r.id for r in found if r.id is not None) == sorted(ids)
    finally:
        await first.close()
        await second.close()
