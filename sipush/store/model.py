"""The binding store's value types: a :class:`Binding` per (AOR, device), :class:`ChangeSet`,
and :class:`PushRecord` (one push sipush sent, with its outcome).

A binding is what sipush learned from one REGISTER that the PBX accepted with a 2xx
(ARCHITECTURE.md, idea 4): where the device's app is now (the Contact the PBX returned and the
flow the REGISTER came on), until when, and how to wake it (its :class:`PushInfo`, or ``None``
for an app that sent no push parameters). The proxy turns (existing bindings, REGISTER, 2xx,
now) into a :class:`ChangeSet`; :meth:`sipush.store.BindingStore.apply` commits it in one
database transaction.

Every push sipush sends is kept as a :class:`PushRecord` (``BindingStore.record_push``), and
the device's next accepted REGISTER stamps it with ``reregistered_at``
(``BindingStore.mark_reregistered``), so that "did the app wake up, and how fast" can be read
back with ``sipush pushes list``.

All these types are frozen and validated in the constructor. Every timestamp must be timezone-aware
and is normalised to UTC, so a binding read back from either database equals the one written.
This module imports no database library: the proxy's pure functions can use it alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipush.push.params import PushInfo

ALL_DEVICES = "*"
"""``device_id`` of a removal that removes every binding of an AOR (like ``Contact: *``)."""

TIMESTAMP_FIELDS = ("expires_at", "registered_at", "created_at")

PUSH_OUTCOMES = ("delivered", "retry", "token-invalid", "failed")
"""A push's outcome: the values of :data:`sipush.push.notification.Outcome` (a test keeps the
two in step; this module imports nothing from the push layer)."""


def as_utc(value: datetime, name: str) -> datetime:
    """``value`` converted to UTC; a naive datetime is a caller bug (its zone is unknowable)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Binding:
    """One device of one AOR, as the PBX last accepted it.

    ``aor``: ``SipUri.aor`` of the REGISTER's To (``sip:alice@example.com``).
    ``device_id``: ``+sip.instance``, else X-Push ``device-uid``, else ``pn-prid``.
    ``contact``: the Contact URI the PBX returned in its 2xx (text, no ``<>``).
    ``expires_at``, ``registered_at`` (last successful REGISTER), ``created_at`` (first time this
    device was bound; the store keeps the stored one when a binding is replaced): UTC.
    ``transport``, ``flow_local``, ``flow_remote``: the app's flow (RFC 5626 §6), e.g. ``"udp"``,
    ``"127.0.0.1:5060"`` (sipush's side), ``"127.0.0.1:40111"`` (the app's side).
    ``call_id``, ``cseq``: of that REGISTER. ``push``: how to wake the app, ``None`` if it can't be.
    """

    aor: str
    device_id: str
    contact: str
    expires_at: datetime
    registered_at: datetime
    created_at: datetime
    transport: str
    flow_local: str
    flow_remote: str
    call_id: str
    cseq: int
    user_agent: str | None
    push: PushInfo | None

    def __post_init__(self) -> None:
        if not self.aor:
            raise ValueError("a binding needs an AOR")
        if not self.device_id or self.device_id == ALL_DEVICES:
            raise ValueError(f"a binding needs a device id other than '*', got {self.device_id!r}")
        # RFC 3261 §8.1.1.5: a CSeq number is a 32-bit unsigned integer less than 2**31.
        if isinstance(self.cseq, bool) or not isinstance(self.cseq, int):
            raise ValueError(f"cseq must be an int, got {self.cseq!r}")
        if not 0 <= self.cseq < 2**31:
            raise ValueError(f"cseq must be from 0 to 2**31 - 1, got {self.cseq}")
        for name in TIMESTAMP_FIELDS:
            object.__setattr__(self, name, as_utc(getattr(self, name), name))

    @property
    def key(self) -> tuple[str, str]:
        """The primary key: ``(aor, device_id)``."""
        return (self.aor, self.device_id)

    def is_expired(self, now: datetime) -> bool:
        """True once ``now`` has reached ``expires_at`` (a binding with 0 s left is gone)."""
        return self.expires_at <= as_utc(now, "now")


@dataclass(frozen=True)
class ChangeSet:
    """What one REGISTER transaction changes, committed atomically by ``BindingStore.apply``.

    ``removals`` are ``(aor, device_id)`` pairs; ``(aor, "*")`` removes every binding of the AOR.
    Removals run first, then ``upserts`` (each replaces the row of its ``(aor, device_id)``,
    keeping that row's ``created_at``). When two upserts share a key (two Contacts of one
    REGISTER naming the same device), the later one wins, as if applied in order.
    """

    upserts: tuple[Binding, ...] = ()
    removals: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "upserts", tuple(self.upserts))
        object.__setattr__(self, "removals", tuple(self.removals))
        for binding in self.upserts:
            if not isinstance(binding, Binding):
                raise TypeError(f"upserts must be Binding objects, got {binding!r}")
        for removal in self.removals:
            if (
                not isinstance(removal, tuple)
                or len(removal) != 2
                or not all(isinstance(part, str) and part for part in removal)
            ):
                raise ValueError(f"a removal is a non-empty (aor, device_id) pair, got {removal!r}")

    def final_upserts(self) -> tuple[Binding, ...]:
        """The upserts with only the last of each key kept, sorted by key."""
        last = {binding.key: binding for binding in self.upserts}
        return tuple(last[key] for key in sorted(last))

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals)


@dataclass(frozen=True, kw_only=True)
class PushRecord:
    """One push sipush sent to one device, as it ended (after any retries).

    ``id``: assigned by the store (``BindingStore.record_push`` returns it; records read back
    carry it); ``None`` for a record not stored yet.
    ``aor``, ``device_id``: the binding pushed (as in :class:`Binding`).
    ``kind``: the notification type (``incomingCall``, ``missedCall``, ...).
    ``provider``: ``apns``, ``fcm``, ...
    ``outcome``: the last attempt's :data:`PUSH_OUTCOMES` value (``retry`` means the retries ran
    out, e.g. at the hold deadline).
    ``status``, ``reason``: the push service's HTTP status and reason (``410``,
    ``Unregistered``), when it gave them. ``call_id``: the SIP Call-ID the push was about.
    ``sent_at``: when the (first) push request went out, UTC.
    ``latency_ms``: from the SIP request reaching sipush to the provider's (last) answer.
    ``attempts``: how many requests it took (1 without retries).
    ``reregistered_at``: when the woken device's REGISTER was accepted (the PBX's 2xx), UTC;
    ``None`` until then (and for good if the app never came back).
    """

    id: int | None = None
    aor: str
    device_id: str
    kind: str
    provider: str
    outcome: str
    status: int | None = None
    reason: str | None = None
    call_id: str | None = None
    sent_at: datetime
    latency_ms: float
    attempts: int = 1
    reregistered_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.id is not None and not _is_int(self.id, minimum=1):
            raise ValueError(f"a push record id is a positive int or None, got {self.id!r}")
        for name in ("aor", "device_id", "kind", "provider"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"a push record's {name} must be a non-empty string, got {value!r}"
                )
        if self.outcome not in PUSH_OUTCOMES:
            raise ValueError(
                f"outcome must be one of {', '.join(PUSH_OUTCOMES)}, got {self.outcome!r}"
            )
        if self.status is not None and not _is_int(self.status, minimum=100, maximum=599):
            raise ValueError(
                f"status must be an HTTP status (100-599) or None, got {self.status!r}"
            )
        latency = self.latency_ms
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            raise ValueError(f"latency_ms must be a finite number >= 0, got {latency!r}")
        object.__setattr__(self, "latency_ms", float(latency))
        if not _is_int(self.attempts, minimum=1):
            raise ValueError(f"attempts must be an int >= 1, got {self.attempts!r}")
        object.__setattr__(self, "sent_at", as_utc(self.sent_at, "sent_at"))
        if self.reregistered_at is not None:
            moment = as_utc(self.reregistered_at, "reregistered_at")
            object.__setattr__(self, "reregistered_at", moment)

    @property
    def reregistered_after(self) -> float | None:
        """Seconds from ``sent_at`` to ``reregistered_at``; ``None`` while the app has not."""
        if self.reregistered_at is None:
            return None
        return (self.reregistered_at - self.sent_at).total_seconds()


def _is_int(value: object, *, minimum: int, maximum: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
        and (maximum is None or value <= maximum)
    )
