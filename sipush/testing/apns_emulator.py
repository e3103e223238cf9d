"""A local APNs: Apple's push provider API (HTTP/2 over TLS) on your own machine.

Tests drive the real ``aioapns`` client against it, and an operator can point sipush at it to
try the wake path without Apple. It speaks the protocol of Apple's "Sending notification
requests to APNs" documentation, with the server-side quirks ``aioapns`` 4.0 depends on
(``../shared/PUSH-LIBS.md`` §1):

* HTTP/2 over TLS with or **without** ALPN (aioapns never offers it), so the server takes the
  client preface as prior knowledge;
* every response echoes ``apns-id``; a 200 ends the stream on its HEADERS frame (an empty DATA
  frame makes aioapns run ``json.loads(b"")``); every error carries a JSON body with ``reason``
  (an error without one never resolves on the client).

Theory of operation. One :class:`_ApnsConnection` (an asyncio protocol around an
``h2.connection.H2Connection``) per TLS connection collects each stream's headers and body; on
END_STREAM the emulator judges the request, in Apple's order:

1. ``:method`` POST (405 MethodNotAllowed), ``:path`` ``/3/device/<token>`` (404 BadPath,
   400 MissingDeviceToken), no repeated header (400 DuplicateHeaders);
2. authentication (403): a client certificate signed by the configured CA (certificate auth,
   mutual TLS; a certificate whose subject UID, or Apple-style common name
   ``"Apple Push Services: <bundle>"``, names a bundle may push only to that bundle, its
   ``.voip`` and its ``.complication`` topics: else 400 TopicDisallowed). Without a client
   certificate: ``authorization: bearer <JWT>``, an ES256 JWT whose header ``kid`` and claim
   ``iss`` (Team ID) name a key added with :meth:`ApnsEmulator.add_key`: MissingProviderToken,
   InvalidProviderToken (unknown team or key, bad signature, ``iat`` in the future),
   ExpiredProviderToken (``iat`` older than one hour);
3. the token (hexadecimal, an even number of 16 to 200 digits: 400 BadDeviceToken), ``apns-id``
   (a UUID: BadMessageId), ``apns-topic`` (required: MissingTopic), ``apns-push-type``
   (required and known; ``voip`` needs a topic ending in ``.voip`` and a ``.voip`` topic needs
   ``voip``: InvalidPushType), ``apns-priority`` (1, 5 or 10; ``background`` only 5:
   BadPriority), ``apns-expiration`` (digits: BadExpirationDate), ``apns-collapse-id``
   (at most 64 bytes: BadCollapseId);
4. the payload: not empty (PayloadEmpty), at most 4096 bytes, 5120 for VoIP (413
   PayloadTooLarge), a JSON object (400 BadPayload: Apple does not document this one);
5. the token's script, if any (:meth:`ApnsEmulator.script`): a status and reason, a delay
   before the reply, a ``Retry-After``, for every attempt or only the first ``times``;
6. otherwise 200.

Every complete request is recorded (:class:`RecordedRequest`: headers, token, parsed payload,
arrival time, the status decided) before any scripted delay, so a test sees the arrival time of
a push that is answered slowly.

Tests::

    async with ApnsEmulator(server_context("server.pem", "server.key", "client-ca.pem")) as emu:
        emu.add_key("TEAMID1234", "KEYID12345", public_pem)    # or the .p8 itself
        emu.script(gone_token, 410)                              # 410 Unregistered
        emu.script(busy_token, 429, times=2)                     # 429 twice, then 200
        emu.script(slow_token, delay=3.0)                        # 200, three seconds late
        ... point the client at emu.endpoint ("127.0.0.1:<port>") ...
        [push] = await emu.wait_for_requests(1, timeout=2.0)
        assert push.push_type == "voip" and push.payload["type"] == "incomingCall"

Operators (the certificate must name the host sipush connects to, e.g. ``127.0.0.1``, and
sipush's ``ca_file`` must trust it)::

    python -m sipush.testing.apns_emulator --port 8443 --cert server.pem --key server.key \\
        --provider-key TEAMID1234:KEYID12345:AuthKey_KEYID12345.p8 \\
        [--client-ca ca.pem] [--script TOKEN=410] [--script TOKEN=429:2] [--slow TOKEN=3] \\
        [--host 127.0.0.1] [--show-tokens]

``--provider-key TEAM:KEYID:FILE`` (repeatable) registers a token-auth key; ``FILE`` is its
public key or the .p8 private key itself. ``--client-ca`` turns on certificate auth.
``--script TOKEN=STATUS[:TIMES]`` answers that device token with STATUS (Apple's usual reason)
for every attempt or the first TIMES; ``--slow TOKEN=SECONDS`` delays its replies. It prints
``apns-emulator: listening on HOST:PORT`` on stderr when ready, then one JSON line per request
on stdout (tokens masked unless ``--show-tokens``), and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sipush.push.mask import mask_token

ALERT_PAYLOAD_LIMIT = 4096  # bytes, every push type but VoIP
VOIP_PAYLOAD_LIMIT = 5120  # bytes, apns-push-type voip
MAX_COLLAPSE_ID_BYTES = 64
PROVIDER_TOKEN_LIFETIME = 3600.0  # seconds: Apple refuses a JWT whose iat is older
PROVIDER_TOKEN_CLOCK_SKEW = 60.0  # seconds an iat may be ahead of our clock
MAX_CONCURRENT_STREAMS = 1000
_MAX_BODY_KEPT = 64 * 1024  # bytes of a body kept in memory; more is PayloadTooLarge anyway

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "location",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "Forbidden",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
CERTIFICATE_TOPIC_SUFFIXES = ("", ".voip", ".complication")

_PATH_RE = re.compile(r"/3/device/([^/?]*)")
_TOKEN_RE = re.compile(r"(?:[0-9A-Fa-f]{2}){8,100}")
_UUID_RE = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_APPLE_CN_RE = re.compile(r"[^:]*Services: *(\S+)")


@dataclass(frozen=True)
class RecordedRequest:
    """One complete request as the emulator saw it, with the answer it decided.

    ``headers`` has lower-case names, pseudo-headers included (``:path``, ...). ``payload`` is
    the parsed JSON object, ``None`` when the body was not one. ``arrived`` is ``time.time()``
    when the request was complete. ``auth`` is ``"certificate"``, ``"token"`` or ``"none"``;
    ``principal`` the certificate's bundle (or ``"*"``) or ``TEAMID/KEYID``.
    """

    token: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    body: bytes
    arrived: float
    apns_id: str
    status: int
    reason: str | None
    auth: str
    principal: str | None

    @property
    def topic(self) -> str | None:
        return self.headers.get("apns-topic")

    @property
    def push_type(self) -> str | None:
        return self.headers.get("apns-push-type")

    @property
    def priority(self) -> int | None:
        value = self.headers.get("apns-priority")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def expiration(self) -> int | None:
        value = self.headers.get("apns-expiration")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def collapse_id(self) -> str | None:
        return self.headers.get("apns-collapse-id")


@dataclass(frozen=True)
class ScriptedReply:
    """How the emulator answers one device token (see :meth:`ApnsEmulator.script`)."""

    status: int = 200
    reason: str | None = None
    delay: float = 0.0
    times: int | None = None  # None: every attempt; N: the first N, then the usual 200
    retry_after: int | None = None  # seconds, sent as Retry-After
    timestamp_ms: int | None = None  # 410's "timestamp"; None: now


@dataclass(frozen=True)
class _Verdict:
    status: int
    reason: str | None = None
    delay: float = 0.0
    retry_after: int | None = None
    timestamp_ms: int | None = None


@dataclass
class _Stream:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)
    body_size: int = 0


def server_context(cert_file: str, key_file: str, client_ca_file: str = "") -> ssl.SSLContext:
    """The emulator's TLS context: TLS 1.2+, ALPN ``h2`` offered but not required.

    With ``client_ca_file`` a client may present a certificate signed by that CA (certificate
    auth); clients without one use token auth.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2"])
    if client_ca_file:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def public_key_pem(pem: str | bytes) -> bytes:
    """The public half of an EC P-256 key given as a public PEM or a private (.p8) PEM."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        public = private.public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise ValueError("an APNs provider key must be an EC P-256 key")
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class ApnsEmulator:
    """A local APNs HTTP/2 server; an async context manager (see the module docstring)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        self._host = host
        self._port = port
        self._on_request = on_request
        self._keys: dict[tuple[str, str], bytes] = {}
        self._scripts: dict[str, ScriptedReply] = {}
        self._script_uses: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._arrived = asyncio.Event()  # set, and replaced, on every arrival
        self._server: asyncio.Server | None = None
        self._connections: set[_ApnsConnection] = set()
        self._replies: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ApnsConnection(self), self._host, self._port, ssl=self._ssl_context
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, GOAWAY and close every connection, drop pending delayed replies."""
        if self._server is not None:
            self._server.close()
        for task in list(self._replies):
            task.cancel()
        for task in list(self._replies):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)  # let the transports run connection_lost

    async def __aenter__(self) -> ApnsEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- what tests use ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        """``host:port``, as ``ApnsAppConfig.endpoint`` takes it."""
        return f"[{self._host}]:{self._port}" if ":" in self._host else f"{self._host}:{self._port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every complete request so far, in arrival order (a copy)."""
        return list(self._requests)

    @property
    def delivered(self) -> list[RecordedRequest]:
        """The requests answered 200."""
        return [request for request in self._requests if request.status == 200]

    def clear(self) -> None:
        self._requests.clear()

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """The first ``count`` requests, waiting up to ``timeout`` seconds for them to arrive.

        Raises ``TimeoutError`` naming how many arrived.
        """
        try:
            async with asyncio.timeout(timeout):
                while len(self._requests) < count:
                    await self._arrived.wait()
        except TimeoutError:
            raise TimeoutError(
                f"APNs emulator: {len(self._requests)} request(s) after {timeout} s, "
                f"expected {count}"
            ) from None
        return self._requests[:count]

    def add_key(self, team_id: str, key_id: str, pem: str | bytes) -> None:
        """Accept provider JWTs signed by this key for ``team_id`` (``iss``) and ``key_id``
        (``kid``). ``pem`` is the public key, or the .p8 private key itself."""
        self._keys[(team_id, key_id)] = public_key_pem(pem)

    def script(
        self,
        token: str,
        status: int = 200,
        reason: str | None = None,
        *,
        delay: float = 0.0,
        times: int | None = None,
        retry_after: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Answer pushes to ``token`` with ``status`` (reason: Apple's usual one for it, e.g.
        400 BadDeviceToken, 410 Unregistered), after ``delay`` seconds; for every attempt, or
        the first ``times`` only (then 200). Replaces the token's earlier script."""
        if status != 200 and reason is None:
            reason = DEFAULT_REASONS.get(status, "InternalServerError")
        key = token.lower()
        self._scripts[key] = ScriptedReply(status, reason, delay, times, retry_after, timestamp_ms)
        self._script_uses[key] = 0

    def unscript(self, token: str) -> None:
        self._scripts.pop(token.lower(), None)
        self._script_uses.pop(token.lower(), None)

    # -- judging a request ------------------------------------------------------------------

    def _judge(
        self, stream: _Stream, peer_cert: dict[str, Any] | None
    ) -> tuple[RecordedRequest, _Verdict]:
        headers = dict(stream.headers)
        body = bytes(stream.body)
        path_match = _PATH_RE.fullmatch(headers.get(":path", ""))
        token = path_match.group(1) if path_match else ""
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        payload: dict[str, Any] | None = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                payload = parsed
        auth, principal = "none", None
        verdict: _Verdict | None = None
        if headers.get(":method") != "POST":
            verdict = _Verdict(405, "MethodNotAllowed")
        elif path_match is None:
            verdict = _Verdict(404, "BadPath")
        elif not token:
            verdict = _Verdict(400, "MissingDeviceToken")
        elif len(headers) != len(stream.headers):
            verdict = _Verdict(400, "DuplicateHeaders")
        if verdict is None:
            if peer_cert:
                auth, principal = "certificate", _certificate_bundle(peer_cert) or "*"
            else:
                auth = "token"
                failure, principal = self._check_provider_token(headers.get("authorization"))
                if failure is not None:
                    verdict = _Verdict(403, failure)
        if verdict is None:
            bundle = principal if auth == "certificate" else None
            verdict = self._check_headers(token, headers, bundle)
        if verdict is None:
            verdict = _check_payload(headers, stream, payload)
        if verdict is None:
            verdict = self._scripted(token)
        request = RecordedRequest(
            token=token,
            headers=headers,
            payload=payload,
            body=body,
            arrived=time.time(),
            apns_id=apns_id,
            status=verdict.status,
            reason=verdict.reason,
            auth=auth,
            principal=principal,
        )
        return request, verdict

    def _check_provider_token(self, authorization: str | None) -> tuple[str | None, str | None]:
        """(failure reason or None, ``TEAMID/KEYID``) for an ``authorization`` header."""
        if not authorization:
            return "MissingProviderToken", None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "InvalidProviderToken", None
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "InvalidProviderToken", None
        team_id, key_id = claims.get("iss"), header.get("kid")
        if header.get("alg") != "ES256" or not isinstance(team_id, str):
            return "InvalidProviderToken", None
        principal = f"{team_id}/{key_id}"
        public_key = self._keys.get((team_id, str(key_id)))
        if public_key is None:
            return "InvalidProviderToken", principal
        try:
            verified = jwt.decode(
                token,
                public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken", principal
        issued_at = verified.get("iat")
        if not isinstance(issued_at, int | float):
            return "InvalidProviderToken", principal
        now = time.time()
        if issued_at > now + PROVIDER_TOKEN_CLOCK_SKEW:
            return "InvalidProviderToken", principal
        if now - issued_at > PROVIDER_TOKEN_LIFETIME:
            return "ExpiredProviderToken", principal
        return None, principal

    def _check_headers(
        self, token: str, headers: dict[str, str], certificate_bundle: str | None
    ) -> _Verdict | None:
        if _TOKEN_RE.fullmatch(token) is None:
            return _Verdict(400, "BadDeviceToken")
        apns_id = headers.get("apns-id")
        if apns_id is not None and _UUID_RE.fullmatch(apns_id) is None:
            return _Verdict(400, "BadMessageId")
        topic = headers.get("apns-topic")
        if not topic:
            return _Verdict(400, "MissingTopic")
        if certificate_bundle not in (None, "*") and topic not in {
            f"{certificate_bundle}{suffix}" for suffix in CERTIFICATE_TOPIC_SUFFIXES
        }:
            return _Verdict(400, "TopicDisallowed")
        push_type = headers.get("apns-push-type")
        if push_type not in PUSH_TYPES:
            return _Verdict(400, "InvalidPushType")
        if (push_type == "voip") != topic.endswith(".voip"):
            return _Verdict(400, "InvalidPushType")
        priority = headers.get("apns-priority")
        if priority is not None and (
            priority not in ("1", "5", "10") or (push_type == "background" and priority != "5")
        ):
            return _Verdict(400, "BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not (expiration.isascii() and expiration.isdigit()):
            return _Verdict(400, "BadExpirationDate")
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            return _Verdict(400, "BadCollapseId")
        return None

    def _scripted(self, token: str) -> _Verdict:
        key = token.lower()
        script = self._scripts.get(key)
        if script is None:
            return _Verdict(200)
        uses = self._script_uses.get(key, 0)
        if script.times is not None and uses >= script.times:
            return _Verdict(200)
        self._script_uses[key] = uses + 1
        return _Verdict(
            script.status, script.reason, script.delay, script.retry_after, script.timestamp_ms
        )

    def _record(self, request: RecordedRequest) -> None:
        self._requests.append(request)
        if self._on_request is not None:
            self._on_request(request)
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _track(self, task: asyncio.Task[None]) -> None:
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)


def _check_payload(
    headers: dict[str, str], stream: _Stream, payload: dict[str, Any] | None
) -> _Verdict | None:
    if stream.body_size == 0:
        return _Verdict(400, "PayloadEmpty")
    is_voip = headers.get("apns-push-type") == "voip"
    if stream.body_size > (VOIP_PAYLOAD_LIMIT if is_voip else ALERT_PAYLOAD_LIMIT):
        return _Verdict(413, "PayloadTooLarge")
    if payload is None:
        return _Verdict(400, "BadPayload")
    return None


def _certificate_bundle(peer_cert: dict[str, Any]) -> str | None:
    """The bundle id a client certificate names: its subject UID, else Apple's CN form."""
    common_name = None
    for rdn in peer_cert.get("subject", ()):
        for name, value in rdn:
            if name == "userId":
                return str(value)
            if name == "commonName":
                common_name = str(value)
    if common_name is not None:
        match = _APPLE_CN_RE.fullmatch(common_name)
        if match is not None:
            return match.group(1)
    return None


class _ApnsConnection(asyncio.Protocol):
    """One TLS connection: h2 frames in, judged requests out (see the module docstring)."""

    def __init__(self, emulator: ApnsEmulator) -> None:
        self._emulator = emulator
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._transport: asyncio.Transport | None = None
        self._peer_cert: dict[str, Any] | None = None
        self._streams: dict[int, _Stream] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._peer_cert = transport.get_extra_info("peercert") or None
        self._emulator._connections.add(self)
        self._h2.initiate_connection()
        self._h2.update_settings(
            {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS}
        )
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._emulator._connections.discard(self)
        self._transport = None

    def close(self) -> None:
        if self._transport is None:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()
            self._flush()
        self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._streams[event.stream_id] = _Stream(
                    [(str(name), str(value)) for name, value in event.headers]
                )
            elif isinstance(event, h2.events.DataReceived):
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.body_size += len(event.data)
                    if len(stream.body) < _MAX_BODY_KEPT:
                        stream.body += event.data
            elif isinstance(event, h2.events.StreamEnded):
                self._request_complete(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._streams.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.close()
                return
        self._flush()

    def _request_complete(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        request, verdict = self._emulator._judge(stream, self._peer_cert)
        self._emulator._record(request)
        if verdict.delay > 0:
            task = asyncio.get_running_loop().create_task(
                self._reply_later(stream_id, request.apns_id, verdict)
            )
            self._emulator._track(task)
        else:
            self._reply(stream_id, request.apns_id, verdict)

    async def _reply_later(self, stream_id: int, apns_id: str, verdict: _Verdict) -> None:
        await asyncio.sleep(verdict.delay)
        self._reply(stream_id, apns_id, verdict)
        self._flush()

    def _reply(self, stream_id: int, apns_id: str, verdict: _Verdict) -> None:
        if self._transport is None:
            return
        headers = [(":status", str(verdict.status)), ("apns-id", apns_id)]
        if verdict.retry_after is not None:
            headers.append(("retry-after", str(verdict.retry_after)))
        try:
            if verdict.status == 200:
                self._h2.send_headers(stream_id, headers, end_stream=True)
                return
            body: dict[str, Any] = {"reason": verdict.reason or "InternalServerError"}
            if verdict.status == 410:
                body["timestamp"] = (
                    verdict.timestamp_ms
                    if verdict.timestamp_ms is not None
                    else int(time.time() * 1000)
                )
            data = json.dumps(body).encode()
            headers += [("content-type", "application/json"), ("content-length", str(len(data)))]
            self._h2.send_headers(stream_id, headers)
            self._h2.send_data(stream_id, data, end_stream=True)
        except h2.exceptions.ProtocolError:
            pass  # the client reset the stream or went away while we were slow

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


# -- the command line -------------------------------------------------------------------------


def _describe(request: RecordedRequest, show_tokens: bool) -> str:
    return json.dumps(
        {
            "arrived": round(request.arrived, 3),
            "token": request.token if show_tokens else mask_token(request.token),
            "topic": request.topic,
            "push_type": request.push_type,
            "priority": request.priority,
            "expiration": request.expiration,
            "collapse_id": request.collapse_id,
            "auth": request.auth,
            "status": request.status,
            "reason": request.reason,
            "payload": request.payload,
        },
        ensure_ascii=False,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sipush.testing.apns_emulator",
        description="A local APNs (HTTP/2 over TLS) for trying sipush without Apple.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--client-ca", default="", help="CA of client certificates (cert auth)")
    parser.add_argument(
        "--provider-key",
        action="append",
        default=[],
        metavar="TEAM:KEYID:FILE",
        help="a token-auth key: its public PEM or the .p8 (repeatable)",
    )
    parser.add_argument(
        "--script",
        action="append",
        default=[],
        metavar="TOKEN=STATUS[:TIMES]",
        help="answer TOKEN with STATUS, always or the first TIMES attempts (repeatable)",
    )
    parser.add_argument(
        "--slow",
        action="append",
        default=[],
        metavar="TOKEN=SECONDS",
        help="delay the replies to TOKEN (repeatable)",
    )
    parser.add_argument("--show-tokens", action="store_true", help="print tokens in full")
    return parser


def _configure(emulator: ApnsEmulator, options: argparse.Namespace) -> None:
    """Keys and scripts from the command line; ValueError/OSError say what is wrong."""
    for spec in options.provider_key:
        team_id, _, rest = spec.partition(":")
        key_id, _, path = rest.partition(":")
        if not team_id or not key_id or not path:
            raise ValueError(f"--provider-key must be TEAM:KEYID:FILE, got {spec!r}")
        with open(path, "rb") as key_file:
            emulator.add_key(team_id, key_id, key_file.read())
    slow: dict[str, float] = {}
    for spec in options.slow:
        token, _, seconds = spec.partition("=")
        if not token or not seconds:
            raise ValueError(f"--slow must be TOKEN=SECONDS, got {spec!r}")
        slow[token] = float(seconds)
    scripted: set[str] = set()
    for spec in options.script:
        token, _, answer = spec.partition("=")
        status, _, times = answer.partition(":")
        if not token or not status.isdigit() or (times and not times.isdigit()):
            raise ValueError(f"--script must be TOKEN=STATUS[:TIMES], got {spec!r}")
        emulator.script(
            token,
            int(status),
            delay=slow.get(token, 0.0),
            times=int(times) if times else None,
        )
        scripted.add(token)
    for token, seconds in slow.items():
        if token not in scripted:
            emulator.script(token, delay=seconds)


async def _serve(options: argparse.Namespace) -> int:
    context = server_context(options.cert, options.key, options.client_ca)

    def show(request: RecordedRequest) -> None:
        print(_describe(request, options.show_tokens), flush=True)

    emulator = ApnsEmulator(context, host=options.host, port=options.port, on_request=show)
    _configure(emulator, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        print(f"apns-emulator: listening on {emulator.endpoint}", file=sys.stderr, flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        return asyncio.run(_serve(options))
    except (OSError, ValueError, ssl.SSLError) as error:
        print(f"apns-emulator: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
