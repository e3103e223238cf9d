"""Binding, ChangeSet and PushRecord validate in their constructors and keep every timestamp in
UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest

from sipush.push.notification import Outcome
from sipush.store import PUSH_OUTCOMES, Binding, ChangeSet, PushRecord
from tests.store.storekit import T0, make_binding, make_push


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


# -- PushRecord ---------------------------------------------------------------------------------


def test_push_outcomes_are_the_providers_outcomes() -> None:
    """The store validates outcomes without importing the push layer: the lists must agree."""
    assert get_args(Outcome) == PUSH_OUTCOMES


def test_push_record_normalises_to_utc_and_float() -> None:
    zone = timezone(timedelta(hours=-5))
    record = make_push(
        at=T0.astimezone(zone), latency_ms=12, reregistered_at=(T0 + timedelta(seconds=3.5))
    )
    assert record.sent_at == T0 and record.sent_at.tzinfo is UTC
    assert record.reregistered_at is not None and record.reregistered_at.tzinfo is UTC
    assert record.latency_ms == 12.0 and isinstance(record.latency_ms, float)
    assert record.reregistered_after == 3.5
    assert make_push().reregistered_after is None
    assert make_push().id is None  # assigned by the store


def test_push_record_defaults_and_keyword_only() -> None:
    record = PushRecord(
        aor="sip:a@x", device_id="d", kind="missedCall", provider="fcm", outcome="failed",
        sent_at=T0, latency_ms=0.0,
    )  # fmt: skip
    assert (record.id, record.status, record.reason, record.call_id) == (None, None, None, None)
    assert (record.attempts, record.reregistered_at) == (1, None)
    with pytest.raises(TypeError):
        PushRecord(None, "sip:a@x")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aor": ""}, "aor must be a non-empty string"),
        ({"device_id": ""}, "device_id must be a non-empty string"),
        ({"kind": ""}, "kind must be a non-empty string"),
        ({"provider": None}, "provider must be a non-empty string"),
        ({"outcome": "ok"}, "outcome must be one of delivered, retry, token-invalid, failed"),
        ({"status": 99}, "status must be an HTTP status"),
        ({"status": 600}, "status must be an HTTP status"),
        ({"status": True}, "status must be an HTTP status"),
        ({"status": "200"}, "status must be an HTTP status"),
        ({"latency_ms": -0.1}, "latency_ms must be a finite number >= 0"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": float("inf")}, "latency_ms"),
        ({"latency_ms": "5"}, "latency_ms"),
        ({"latency_ms": False}, "latency_ms"),
        ({"attempts": 0}, "attempts must be an int >= 1"),
        ({"attempts": 1.0}, "attempts"),
        ({"id": 0}, "id is a positive int"),
        ({"id": True}, "id is a positive int"),
        ({"sent_at": datetime(2026, 1, 1)}, "sent_at must be timezone-aware"),
        ({"reregistered_at": datetime(2026, 1, 1)}, "reregistered_at must be timezone-aware"),
    ],
)
def test_bad_push_records_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make_push(**changes)
