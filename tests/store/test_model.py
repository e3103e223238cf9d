"""Binding and ChangeSet validate in their constructors and keep every timestamp in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sipush.store import Binding, ChangeSet
from tests.store.storekit import T0, make_binding


def test_timestamps_are_normalised_to_utc() -> None:
    zone = timezone(timedelta(hours=2))
    binding = make_binding(at=T0.astimezone(zone))
    assert binding.registered_at.tzinfo is UTC
    assert binding.registered_at == T0
    assert binding.expires_at.tzinfo is UTC


@pytest.mark.parametrize("field", ["expires_at", "registered_at", "created_at"])
def test_naive_timestamps_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be timezone-aware"):
        fields: dict[str, Any] = {field: datetime(2026, 1, 1)}
        make_binding(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aor": ""}, "needs an AOR"),
        ({"device_id": ""}, "device id"),
        ({"device_id": "*"}, "device id"),
        ({"cseq": -1}, "cseq"),
        ({"cseq": 2**31}, "cseq"),  # RFC 3261 §8.1.1.5
        ({"cseq": True}, "cseq"),
    ],
)
def test_bad_bindings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_binding(**changes)


def test_is_expired_at_the_exact_expiry() -> None:
    binding = make_binding(expires_in=60)
    assert not binding.is_expired(T0 + timedelta(seconds=59.999999))
    assert binding.is_expired(T0 + timedelta(seconds=60))


def test_change_set_keeps_the_last_upsert_of_a_key_sorted_by_key() -> None:
    first, second = make_binding(cseq=1), make_binding(cseq=2)
    other = make_binding(device_id="<a>")  # sorts before the default device id
    changes = ChangeSet(upserts=(first, second, other))
    assert changes.upserts == (first, second, other)  # as given
    assert changes.final_upserts() == (other, second)


@pytest.mark.parametrize("removal", [("sip:a@x",), ("", "*"), ("sip:a@x", ""), "sip:a@x"])
def test_change_set_refuses_malformed_removals(removal: object) -> None:
    with pytest.raises(ValueError, match="removal"):
        ChangeSet(removals=(removal,))  # type: ignore[arg-type]


def test_change_set_truthiness_and_key() -> None:
    binding = make_binding()
    assert not ChangeSet()
    assert ChangeSet(removals=(("sip:a@x", "*"),))
    assert ChangeSet(upserts=[binding]).upserts == (binding,)  # type: ignore[arg-type]
    assert binding.key == (binding.aor, binding.device_id)
    assert isinstance(binding, Binding)
