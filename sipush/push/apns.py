"""APNs: Apple's push service, through the real ``aioapns`` client (HTTP/2 over TLS).

Three parts, as ARCHITECTURE.md idea 6 asks:

* :func:`build_request` (pure): a :class:`Notification` and the app's :class:`ApnsAppConfig`
  become an :class:`ApnsRequest` (token, topic, push type, priority, time to live, collapse id,
  payload), or an :class:`Unsendable` when the device has no token for that kind of push;
* :meth:`ApnsProvider.send` (thin): hands the request to ``aioapns`` within a timeout;
* :func:`classify` (pure): APNs's status and reason become a :class:`PushResult`.

What goes out, per kind (Apple's "Sending notification requests to APNs")::

    kind                 device has a VoIP token          device has only an alert token
    incomingCall         voip  <bundle>.voip  prio 10     alert <bundle> prio 10 "Incoming call"
    cancelIncomingCall   voip  <bundle>.voip  prio 10     background <bundle> prio 5
    missedCall           alert <bundle> prio 10, to the alert token; Unsendable without one
    messageReceived      alert <bundle> prio 10, to the alert token; Unsendable without one
    voicemailReceived    alert <bundle> prio 10, to the alert token; Unsendable without one

Which token is which. A device that gave two tokens (X-Push ``voip|apns``, RFC 8599
``voip&remote``) has ``PushInfo.prid`` = VoIP token and ``alert_token``. With one token, the
REGISTER says what it is when it can: RFC 8599 ``pn-param`` ends in ``.voip`` or ``.remote``
(no suffix means ``remote``, as in Flexisip), a legacy ``app-id`` contains ``.voip``; X-Push
with one token does not say, and that token is used for both. Sending a push to a token of the
other kind costs more than one push: APNs answers 400 DeviceTokenNotForTopic, which means
"token dead" here, so a VoIP-only device is never sent an alert push (Unsendable
``NoAlertToken``) and an alert-only device gets its calls as alert pushes.

iOS and VoIP pushes (``ANCHORS.md`` pain point 5). iOS 13+ terminates an app that does not
report a CallKit call for a VoIP push, and after repeated failures stops delivering them. Like
Flexisip, which sends INVITE then CANCEL so the app can close the call it reported, sipush sends
``cancelIncomingCall`` as a VoIP push too: the app that already reported the incoming call
ends it; an app that had not (the cancel overtook the call push) reports the call and ends it
at once. Alert pushes never need CallKit, so missed calls and messages go as alerts.

Payloads (the fields app developers read; ``notification.py``). Every payload has ``type`` and
``aor``, and ``call_id``, ``caller_name``, ``caller_number`` when known (absent, not null, when
not). Alert and background pushes add ``aps``. A payload larger than APNs allows (4096 bytes,
5120 for VoIP, as ``aioapns`` serialises it) is cut: the alert body, then the title, then the
caller's name and number, each at a character boundary that does not split a combining
sequence, ending in "…"; if that is not enough the push is Unsendable ``PayloadTooLarge``.

Timeouts. :meth:`ApnsProvider.send` gives ``aioapns`` ``timeout`` seconds (default 5) for
everything, connecting included; past it the answer is ``retry`` with reason ``timeout``, and a
connection that cannot be made is ``retry`` with reason ``connection``. A push that timed out
may still have been delivered, so a retried call push can reach the app twice: apps recognise
the second by its ``call_id``.

Other rules: ``apns-expiration`` is now + ``Notification.ttl`` (``aioapns`` takes the ttl; it
cannot send the literal 0 "do not store"); a collapse id longer than 64 bytes is replaced by
its SHA-256 hex (64 characters), so one Call-ID always collapses to the same id.

Endpoints (``../shared/PUSH-LIBS.md`` §1, proved there). ``aioapns`` has no host option: each
client's pool gets its own protocol subclass with ``APNS_SERVER``/``APNS_PORT`` set from
``ApnsAppConfig.endpoint`` (the TCP host, the TLS server name and the ``host`` header), on top
of aioapns's production or development class (``sandbox``). The same subclass drops the
future of a send abandoned on timeout (else aioapns later calls ``set_result`` on a cancelled
future and loses the connection's cleanup) and reads ``Retry-After``, which aioapns does not
report. Clients are created on first use, inside the running loop, one per app.

Tokens and keys are never logged in full: a token shows as its first 6 and last 4 characters,
as in the CLI; keys not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, cast

import h2.exceptions
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed, MaxAttemptsExceeded
from aioapns.exceptions import ConnectionError as ApnsConnectionError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sipush.errors import ConfigError
from sipush.push.mask import mask_token
from sipush.push.notification import Notification, NotificationKind, PushResult
from sipush.push.params import PushInfo

logger = logging.getLogger(__name__)

ALERT_PAYLOAD_LIMIT = 4096  # bytes
VOIP_PAYLOAD_LIMIT = 5120  # bytes
MAX_COLLAPSE_ID_BYTES = 64
PRIORITY_IMMEDIATE = 10
PRIORITY_POWER_SAVING = 5  # the only one APNs allows for background pushes
DEFAULT_SEND_TIMEOUT = 5.0  # seconds
DEFAULT_CONNECTION_ATTEMPTS = 2  # aioapns tries a new connection once if one was closed
TOKEN_INVALID_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})

ApnsPushType = Literal["voip", "alert", "background"]

_CALL_KINDS: frozenset[NotificationKind] = frozenset({"incomingCall", "cancelIncomingCall"})
_DEFAULT_TITLES: dict[NotificationKind, str] = {
    "incomingCall": "Incoming call",
    "missedCall": "Missed call",
    "messageReceived": "New message",
    "voicemailReceived": "New voicemail",
}
_APNS_SERVICES = ("voip", "remote")
_CUT_MARK = "…"
_CUTTABLE_FIELDS = (  # in the order they are cut when a payload is too large
    ("aps", "alert", "body"),
    ("aps", "alert", "title"),
    ("caller_name",),
    ("caller_number",),
)
_ZERO_WIDTH_JOINER = "\u200d"


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApnsAppConfig:
    """Credentials and endpoint for one iOS app (one bundle id).

    ``app_id``      the bundle id, matched against ``PushInfo.app_id``
    ``team_id``, ``key_id``, ``key_file``: token auth with a .p8 key (the JWT's ``iss``,
                    ``kid`` and signing key)
    ``cert_file``   or certificate auth: one PEM file holding the certificate and its key
    ``sandbox``     Apple's development environment instead of production
    ``endpoint``    ``host:port`` instead of Apple's (an on-premise relay, the local emulator);
                    the host is also the TLS server name and the ``host`` header
    ``ca_file``     PEM CA bundle to verify the endpoint; ``""`` = the system's
    ``topic``       alert topic, default ``app_id``
    ``voip_topic``  VoIP topic, default ``<app_id>.voip``
    """

    app_id: str
    team_id: str = ""
    key_id: str = ""
    key_file: str = ""
    cert_file: str = ""
    sandbox: bool = False
    endpoint: str = ""
    ca_file: str = ""
    topic: str = ""
    voip_topic: str = ""

    def __post_init__(self) -> None:
        if not self.app_id:
            raise ConfigError("APNs app: app_id (the bundle id) is required")
        if bool(self.key_file) == bool(self.cert_file):
            raise ConfigError(
                f"APNs app {self.app_id}: give key_file (token auth) or cert_file "
                "(certificate auth), exactly one"
            )
        if self.key_file and not (self.team_id and self.key_id):
            raise ConfigError(f"APNs app {self.app_id}: key_file needs team_id and key_id")
        if self.endpoint:
            endpoint_address(self.endpoint)  # raises ConfigError

    @property
    def alert_topic(self) -> str:
        return self.topic or self.app_id

    @property
    def call_topic(self) -> str:
        return self.voip_topic or f"{self.app_id}.voip"


def endpoint_address(endpoint: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); :class:`ConfigError` when malformed."""
    host, colon, port_text = endpoint.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"APNs endpoint must be HOST:PORT, got {endpoint!r}")
    return host, int(port_text)


# -- building the request (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class ApnsRequest:
    """Everything one push sends, except the per-attempt ``apns-id``.

    ``time_to_live`` is relative (seconds); ``aioapns`` sends ``apns-expiration`` = now + it.
    """

    device_token: str = field(repr=False)
    topic: str
    push_type: ApnsPushType
    priority: int
    time_to_live: int
    collapse_id: str | None
    payload: dict[str, Any] = field(hash=False)

    @property
    def masked_token(self) -> str:
        return mask_token(self.device_token)


@dataclass(frozen=True)
class Unsendable:
    """The device cannot be sent this kind of push (``reason``: ``NoAlertToken``,
    ``PayloadTooLarge``); no request goes out."""

    reason: str


def build_request(notification: Notification, app: ApnsAppConfig) -> ApnsRequest | Unsendable:
    """The APNs request for ``notification`` (see the table in the module docstring)."""
    push = notification.push
    voip_token, alert_token = device_tokens(push)
    kind = notification.kind
    push_type: ApnsPushType
    if kind in _CALL_KINDS and voip_token is not None:
        token, push_type, topic = voip_token, "voip", app.call_topic
    elif alert_token is None:
        return Unsendable("NoAlertToken")
    elif kind == "cancelIncomingCall":
        token, push_type, topic = alert_token, "background", app.alert_topic
    else:
        token, push_type, topic = alert_token, "alert", app.alert_topic
    limit = VOIP_PAYLOAD_LIMIT if push_type == "voip" else ALERT_PAYLOAD_LIMIT
    payload = fit_payload(_payload(notification, push_type), limit)
    if payload is None:
        return Unsendable("PayloadTooLarge")
    return ApnsRequest(
        device_token=token,
        topic=topic,
        push_type=push_type,
        priority=PRIORITY_POWER_SAVING if push_type == "background" else PRIORITY_IMMEDIATE,
        time_to_live=max(notification.ttl, 0),
        collapse_id=collapse_id(notification.collapse_id),
        payload=payload,
    )


def device_tokens(push: PushInfo) -> tuple[str | None, str | None]:
    """(VoIP token, alert token) of an APNs device; either may be ``None``, or both the same
    token when the REGISTER did not say what its one token is for."""
    if push.alert_token is not None:
        return push.prid, push.alert_token
    services = _declared_services(push)
    voip = push.prid if services is None or "voip" in services else None
    alert = push.prid if services is None or "remote" in services else None
    return voip, alert


def _declared_services(push: PushInfo) -> frozenset[str] | None:
    """The APNs services (``voip``, ``remote``) the one token is for, if the REGISTER said."""
    param = push.param
    if not param:
        return None
    if push.source == "rfc8599":
        # TEAMID.bundle.id.service (RFC 8599 §10); no known service label means "remote"
        services = frozenset(param.rpartition(".")[2].lower().split("&"))
        return services if services <= set(_APNS_SERVICES) else frozenset({"remote"})
    if push.source == "legacy":
        # <bundle>[.voip].<prod|dev>, Flexisip's certificate naming
        base = param.removesuffix(".prod").removesuffix(".dev")
        return frozenset({"voip" if base.endswith(".voip") else "remote"})
    return None


def _payload(notification: Notification, push_type: ApnsPushType) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if push_type == "alert":
        title = notification.title or _default_title(notification)
        body = notification.body or _caller_text(notification)
        alert = {"title": title, "body": body} if body else {"title": title}
        payload["aps"] = {"alert": alert, "sound": "default"}
    elif push_type == "background":
        payload["aps"] = {"content-available": 1}
    payload["type"] = notification.kind
    payload["aor"] = notification.aor
    for name in ("call_id", "caller_name", "caller_number"):
        value = getattr(notification, name)
        if value is not None:
            payload[name] = value
    return payload


def _default_title(notification: Notification) -> str:
    if notification.kind == "messageReceived":
        sender = notification.caller_name or notification.caller_number
        if sender:
            return sender
    return _DEFAULT_TITLES.get(notification.kind, "sipush")


def _caller_text(notification: Notification) -> str | None:
    """``Alice (1001)``, or whichever of name and number is known."""
    if notification.kind == "messageReceived":
        return None  # the title already names the sender; the body is the message
    name, number = notification.caller_name, notification.caller_number
    if name and number and name != number:
        return f"{name} ({number})"
    return name or number


def payload_size(payload: dict[str, Any]) -> int:
    """Bytes on the wire, serialised the way ``aioapns`` does."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def fit_payload(payload: dict[str, Any], limit: int) -> dict[str, Any] | None:
    """``payload`` cut to at most ``limit`` bytes (module docstring), or ``None``."""
    result = json.loads(json.dumps(payload))  # a deep copy of plain JSON values
    for path in _CUTTABLE_FIELDS:
        excess = payload_size(result) - limit
        if excess <= 0:
            return cast(dict[str, Any], result)
        holder: Any = result
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        text = holder.get(path[-1]) if isinstance(holder, dict) else None
        if isinstance(text, str) and text:
            budget = len(text.encode()) - excess - len(_CUT_MARK.encode())
            holder[path[-1]] = cut_text(text, budget)
    return cast(dict[str, Any], result) if payload_size(result) <= limit else None


def cut_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes plus "…", never inside a character
    or before a combining mark, joiner, variation selector or skin-tone modifier."""
    if len(text.encode()) <= max_bytes:
        return text
    end = len(text.encode()[: max(max_bytes, 0)].decode("utf-8", "ignore"))
    while end > 0 and (_extends_previous(text[end]) or text[end - 1] == _ZERO_WIDTH_JOINER):
        end -= 1
    return text[:end].rstrip() + _CUT_MARK


def _extends_previous(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZERO_WIDTH_JOINER
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
    )


def collapse_id(value: str | None) -> str | None:
    """``apns-collapse-id``: as given, or its SHA-256 hex when longer than 64 bytes."""
    if value is None or len(value.encode()) <= MAX_COLLAPSE_ID_BYTES:
        return value
    return hashlib.sha256(value.encode()).hexdigest()


# -- classifying the answer (pure) ------------------------------------------------------------


def classify(status: int, reason: str | None, retry_after: float | None = None) -> PushResult:
    """APNs's answer -> :class:`PushResult` (``notification.py``).

    200 delivered; 410 (Unregistered, ExpiredToken) and 400 BadDeviceToken or
    DeviceTokenNotForTopic token-invalid; 429 and 5xx retry (after ``retry_after`` when the
    service gave one); anything else (403 bad credentials, 400 bad request, 413) failed.
    """
    if status == 200:
        return PushResult("delivered", status)
    if status == 410 or (status == 400 and reason in TOKEN_INVALID_REASONS):
        return PushResult("token-invalid", status, reason)
    if status == 429 or 500 <= status <= 599:
        return PushResult("retry", status, reason, retry_after=retry_after)
    return PushResult("failed", status, reason)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in delta-seconds (an HTTP date is ignored: APNs does not send one)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


# -- sending (thin) ---------------------------------------------------------------------------


class _SipushApnsProtocol(APNsTLSClientProtocol):
    """aioapns's client protocol, with the two repairs described in the module docstring.

    Concrete classes are made by :func:`aioapns_protocol_class`, which also sets the endpoint.
    """

    retry_after_by_id: ClassVar[dict[str, str]]

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        try:
            return await super().send_notification(request)
        finally:
            # a cancelled send must leave nothing behind for a late answer or connection_lost
            self.requests.pop(request.notification_id, None)
            self.request_statuses.pop(request.notification_id, None)

    def on_response_received(self, headers: dict[bytes, bytes]) -> None:
        notification_id = headers.get(b"apns-id", b"").decode("utf-8", "replace")
        retry_after = headers.get(b"retry-after")
        if retry_after is not None and notification_id in self.requests:
            self.retry_after_by_id[notification_id] = retry_after.decode("latin-1")
        super().on_response_received(headers)
        if notification_id not in self.requests:  # nobody waits: do not keep its status
            self.request_statuses.pop(notification_id, None)


def aioapns_protocol_class(app: ApnsAppConfig) -> type[_SipushApnsProtocol]:
    """The protocol class an app's aioapns pool connects with: Apple's production or
    development host, or ``app.endpoint``, plus the repairs of :class:`_SipushApnsProtocol`."""
    base = APNsDevelopmentClientProtocol if app.sandbox else APNsProductionClientProtocol
    namespace: dict[str, Any] = {"retry_after_by_id": {}}
    if app.endpoint:
        namespace["APNS_SERVER"], namespace["APNS_PORT"] = endpoint_address(app.endpoint)
    name = f"ApnsProtocol[{app.app_id}]"
    return cast(type[_SipushApnsProtocol], type(name, (_SipushApnsProtocol, base), namespace))


@dataclass
class _Client:
    apns: APNs
    protocol: type[_SipushApnsProtocol]


class ApnsProvider:
    """Sends :class:`Notification` s to APNs for every configured app (a ``PushProvider``)."""

    name = "apns"

    def __init__(
        self,
        apps: Sequence[ApnsAppConfig],
        *,
        timeout: float = DEFAULT_SEND_TIMEOUT,
        connection_attempts: int = DEFAULT_CONNECTION_ATTEMPTS,
        max_connections: int = 10,
    ) -> None:
        """Checks every app's files now (:class:`ConfigError`); connects on first send."""
        if timeout <= 0:
            raise ConfigError(f"APNs send timeout must be > 0, got {timeout}")
        self._apps: dict[str, ApnsAppConfig] = {}
        self._keys: dict[str, str] = {}
        for app in apps:
            if app.app_id in self._apps:
                raise ConfigError(f"APNs app {app.app_id} is configured twice")
            self._apps[app.app_id] = app
            if app.key_file:
                self._keys[app.app_id] = _read_signing_key(app)
            else:
                _check_certificate(app)
            if app.ca_file:
                _client_ssl_context(app)
        self._timeout = timeout
        self._connection_attempts = max(connection_attempts, 1)
        self._max_connections = max_connections
        self._clients: dict[str, _Client] = {}

    def app_for(self, push: PushInfo) -> ApnsAppConfig | None:
        """The app whose credentials push to this device: its ``app_id``; a device that named
        no app (X-Push without ``app-id``) uses the only configured app, if there is one."""
        if push.provider != "apns":
            return None
        if push.app_id is None:
            return next(iter(self._apps.values())) if len(self._apps) == 1 else None
        return self._apps.get(push.app_id)

    def handles(self, push: PushInfo) -> bool:
        return self.app_for(push) is not None

    async def send(self, notification: Notification) -> PushResult:
        app = self.app_for(notification.push)
        if app is None:
            return PushResult("failed", reason="NoCredentials")
        request = build_request(notification, app)
        if isinstance(request, Unsendable):
            logger.info(
                "APNs %s for %s not sent: %s",
                notification.kind,
                mask_token(notification.push.prid),
                request.reason,
            )
            return PushResult("failed", reason=request.reason)
        client = self._client(app)
        apns_id = str(uuid.uuid4())
        outgoing = NotificationRequest(
            device_token=request.device_token,
            message=request.payload,
            notification_id=apns_id,
            time_to_live=request.time_to_live,
            priority=request.priority,
            collapse_key=request.collapse_id,
            push_type=PushType(request.push_type),
            apns_topic=request.topic,
        )
        try:
            answer = await asyncio.wait_for(
                client.apns.send_notification(outgoing), timeout=self._timeout
            )
        except TimeoutError:
            result = PushResult("retry", reason="timeout", provider_id=apns_id)
        except (
            MaxAttemptsExceeded,
            ApnsConnectionError,
            ConnectionClosed,
            OSError,
            h2.exceptions.H2Error,
        ) as error:
            logger.debug("APNs connection failed: %s", type(error).__name__)
            result = PushResult("retry", reason="connection", provider_id=apns_id)
        else:
            retry_after = retry_after_seconds(client.protocol.retry_after_by_id.pop(apns_id, None))
            status = int(answer.status) if answer.status.isdigit() else 0
            result = replace(classify(status, answer.description, retry_after), provider_id=apns_id)
        finally:
            client.protocol.retry_after_by_id.pop(apns_id, None)
        logger.debug(
            "APNs %s %s %s to %s: %s %s %s",
            request.push_type,
            notification.kind,
            request.topic,
            request.masked_token,
            result.outcome,
            result.status,
            result.reason,
        )
        return result

    async def close(self) -> None:
        """Close every connection; the next send reconnects."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.apns.pool.close()
        await asyncio.sleep(0)  # let the transports run connection_lost

    def _client(self, app: ApnsAppConfig) -> _Client:
        """The app's aioapns client, created on first use (aioapns needs the running loop)."""
        client = self._clients.get(app.app_id)
        if client is not None:
            return client

        async def quiet(request: NotificationRequest, result: NotificationResult) -> None:
            """aioapns logs every non-200 at ERROR; :meth:`send` reports it instead."""

        common: dict[str, Any] = {
            "topic": app.alert_topic,
            "use_sandbox": app.sandbox,
            "ssl_context": _client_ssl_context(app),
            "max_connections": self._max_connections,
            "max_connection_attempts": self._connection_attempts,
            "err_func": quiet,
        }
        if app.key_file:
            apns = APNs(
                key=self._keys[app.app_id], key_id=app.key_id, team_id=app.team_id, **common
            )
        else:
            apns = APNs(client_cert=app.cert_file, **common)
        protocol = aioapns_protocol_class(app)
        apns.pool.protocol_class = protocol
        client = _Client(apns, protocol)
        self._clients[app.app_id] = client
        return client


def _client_ssl_context(app: ApnsAppConfig) -> ssl.SSLContext:
    """A fresh context per client: aioapns loads the client certificate into it."""
    try:
        return ssl.create_default_context(cafile=app.ca_file or None)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"APNs app {app.app_id}: cannot load ca_file: {error}") from None


def _read_signing_key(app: ApnsAppConfig) -> str:
    """The .p8 key's text (aioapns 4.0 takes the key itself, not a path), checked: EC P-256."""
    try:
        with open(app.key_file, encoding="ascii") as key_file:
            text = key_file.read()
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ConfigError(
            f"APNs app {app.app_id}: cannot read key_file {app.key_file}: {type(error).__name__}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"APNs app {app.app_id}: key_file is not an EC P-256 (.p8) key")
    return text


def _check_certificate(app: ApnsAppConfig) -> None:
    try:
        ssl.create_default_context().load_cert_chain(app.cert_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"APNs app {app.app_id}: cert_file {app.cert_file} is not a PEM certificate "
            f"with its key: {error}"
        ) from None
