"""What sipush pushes, and what a push provider answers (the interface every provider implements).

Push types, for app developers (also in the README):

* ``incomingCall`` — a call is waiting; the app must re-REGISTER (RFC 8599 §4.1.3) and, on iOS,
  report a CallKit call. APNs: a VoIP push (``<bundle>.voip`` topic, priority 10); FCM: a
  high-priority data message.
* ``cancelIncomingCall`` — the caller gave up or another device answered: close the incoming-call
  UI. Data only.
* ``missedCall`` — title "Missed call", body the caller's name and number.
* ``messageReceived`` — title the sender's display name (else user), body the text, cut safely.
* ``voicemailReceived`` — a new voicemail.

Every payload carries ``type``, ``call_id`` (the SIP Call-ID, when there is one), ``aor``,
``caller_name`` and ``caller_number``.

A provider builds its request purely from a :class:`Notification`, sends it thinly (aioapns,
firebase-admin, ...) and classifies the answer into a :class:`PushResult` (ARCHITECTURE.md,
idea 6): ``delivered``; ``retry`` (429, 5xx: try again within the deadline, after
``retry_after`` if given); ``token-invalid`` (APNs 410 / BadDeviceToken, FCM UNREGISTERED: the
token is dead, stop pushing it and fail the held request at once); ``failed`` (anything else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sipush.push.params import PushInfo

NotificationKind = Literal[
    "incomingCall", "cancelIncomingCall", "missedCall", "messageReceived", "voicemailReceived"
]
Outcome = Literal["delivered", "retry", "token-invalid", "failed"]


@dataclass(frozen=True)
class Notification:
    """One push to one device."""

    kind: NotificationKind
    push: PushInfo  # the device: provider, token, app
    aor: str
    call_id: str | None = None
    caller_name: str | None = None
    caller_number: str | None = None
    title: str | None = None
    body: str | None = None
    ttl: int = 30  # seconds the push service may hold it (apns-expiration, FCM ttl)
    collapse_id: str | None = None  # apns-collapse-id / FCM collapse key


@dataclass(frozen=True)
class PushResult:
    """A provider's answer to one push."""

    outcome: Outcome
    status: int | None = None  # HTTP status from the push service, if any
    reason: str | None = None  # e.g. "BadDeviceToken", "UNREGISTERED", "timeout"
    provider_id: str | None = None  # apns-id / FCM message name
    retry_after: float | None = None  # seconds, from Retry-After


class PushProvider(Protocol):
    """Sends notifications for one provider kind ("apns", "fcm", ...) and every configured app."""

    name: str

    def handles(self, push: PushInfo) -> bool:
        """True when this provider has credentials for the device's app."""
        ...

    async def send(self, notification: Notification) -> PushResult: ...

    async def close(self) -> None: ...
