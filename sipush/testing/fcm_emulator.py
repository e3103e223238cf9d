"""A local FCM HTTP v1 service over HTTPS, with its own OAuth2 token endpoint: what sipush's FCM
provider (the real ``firebase-admin`` client) talks to in tests and in an operator's local demo.

It speaks the two Google protocols a service-account sender uses:

* ``POST /token``: the OAuth2 JWT-bearer grant (RFC 7523 §2.1) exactly as google-auth sends it for
  a service account: a form with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and
  ``assertion=<RS256 JWT>``. The assertion's signature is checked against the public key
  registered for its ``iss`` (the ``client_email``); ``aud`` must be Google's token URI (what
  google-auth always sends) or this emulator's own; ``scope`` must include
  ``firebase.messaging`` or ``cloud-platform``; ``exp - iat`` at most one hour. The answer is
  ``{"access_token", "expires_in", "token_type": "Bearer"}``; errors are Google's
  ``{"error": "invalid_grant", "error_description": ...}`` with status 400.
* ``POST /v1/projects/{project}/messages:send``: requires ``Authorization: Bearer <an issued,
  unexpired access token>`` (else 401 UNAUTHENTICATED; a service account registered for another
  project gets 403 PERMISSION_DENIED), validates the message as FCM does (exactly one of
  ``token``/``fid``/``topic``/``condition``; known fields only; ``data`` values strings and no
  reserved keys; ``android.priority`` high/normal; ``android.ttl`` ``"<seconds>s"`` up to 28
  days; at most 4096 bytes of payload), and answers ``{"name": "projects/<p>/messages/<id>"}``.
  Errors carry Google's JSON error body with the ``google.firebase.fcm.v1.FcmError`` detail, so
  firebase-admin raises its typed errors (``UnregisteredError``, ``QuotaExceededError``, ...).

Every send request is recorded as an :class:`FcmRequest` (project, token, the whole message JSON,
the access token it presented, the status it got, HTTP version, arrival time), rejected ones too.
Per registration token, :meth:`FcmEmulator.script` makes the emulator answer with an FCM error
(see :data:`SCRIPTABLE_ERRORS`: 404 UNREGISTERED, 400 INVALID_ARGUMENT, 403 SENDER_ID_MISMATCH,
429 QUOTA_EXCEEDED with ``Retry-After``, 503 UNAVAILABLE, 500 INTERNAL, 401
THIRD_PARTY_AUTH_ERROR), after a delay, for the first N attempts only or for all of them.

Served by Hypercorn (HTTP/2 with ALPN, and HTTP/1.1) with the certificate you give. In tests it
runs in a thread with its own event loop: google-auth refreshes tokens with blocking ``requests``
calls, so a token endpoint on the caller's own loop would deadlock the first send (PUSH-LIBS.md
§2). Connections are never recycled by request count (Hypercorn's default of 1000 loses requests
over HTTP/2, PUSH-LIBS.md §2)::

    sa = make_service_account("demo-project")
    async with FcmEmulator(cert_file, key_file) as emulator:
        emulator.add_service_account(sa.client_email, sa.public_key_pem)
        emulator.script("dead-token", error="UNREGISTERED")
        emulator.script("busy-token", error="QUOTA_EXCEEDED", retry_after=7, times=2)
        emulator.script("slow-token", delay=3.0)
        ...  # point FcmAppConfig(endpoint=emulator.url, token_uri=emulator.token_uri) at it
        (request,) = await emulator.wait_for_requests(1, timeout=5)

Operators run it on its own (one JSON line per send request on stdout, one ``fcm-emulator:
listening on ...`` line on stderr when ready; SIGINT/SIGTERM stop it with status 0)::

    mkdir -p certs && python -m trustme -d certs   # throwaway CA (client.pem), server cert
    python -m sipush.testing.fcm_emulator --port 8444 \\
        --cert certs/server.pem --key certs/server.key \\
        --new-service-account demo-sa.json --project demo-project \\
        --script 'dead-token=error=UNREGISTERED' --script 'busy=error=QUOTA_EXCEEDED,times=2'

``--new-service-account FILE`` writes a throwaway service-account JSON (mode 0600) whose
``token_uri`` is this emulator's and registers it; ``--service-account FILE`` (repeatable)
registers an existing one (its public key is derived from ``private_key``). Then configure sipush
with ``[[push.fcm]] project_id = "demo-project"``, ``service_account_file = "demo-sa.json"``,
``endpoint = "https://127.0.0.1:8444"`` and ``ca_file = "certs/client.pem"`` (trustme's CA).
``--script TOKEN=SPEC``: SPEC is ``error=NAME``, ``delay=SECONDS``, ``times=N``,
``retry_after=SECONDS``, comma-separated. ``--token-lifetime`` sets ``expires_in`` (3600).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

logger = logging.getLogger(__name__)

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # the aud google-auth always sends
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
MAX_ASSERTION_LIFETIME = 3600  # Google: "Token must be a short-lived token (60 minutes)"
MAX_TTL_SECONDS = 2_419_200  # FCM: 28 days
MAX_PAYLOAD_BYTES = 4096  # FCM: data keys and values plus the notification, in bytes

# FCM errorCode -> (HTTP status, google.rpc status, message): what real FCM answers.
SCRIPTABLE_ERRORS: Mapping[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}

_SEND_PATH_RE = re.compile(r"/v1/projects/([^/]+)/messages:send")
_TTL_RE = re.compile(r"(\d+)(?:\.(\d{1,9}))?s")
_FCM_TOKEN_RE = re.compile(r"[A-Za-z0-9_:\-]+")
_TARGETS = ("token", "fid", "topic", "condition")
_MESSAGE_FIELDS = frozenset(
    {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", *_TARGETS}
)
_ANDROID_FIELDS = frozenset(
    {
        "collapse_key",
        "priority",
        "ttl",
        "restricted_package_name",
        "data",
        "notification",
        "fcm_options",
        "direct_boot_ok",
        "bandwidth_constrained_ok",
        "restricted_satellite_ok",
    }
)
_NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
_PRIORITIES = frozenset({"high", "normal", "HIGH", "NORMAL"})  # proto enum names, or lower case
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
_RESERVED_DATA_PREFIXES = ("google.", "gcm.")


# -- what the emulator records -----------------------------------------------------------------


@dataclass(frozen=True)
class FcmRequest:
    """One ``messages:send`` request as it arrived, and the status it was answered with.

    ``token`` is the message's ``token`` (or ``fid``); ``message`` the whole ``message`` object;
    ``error`` the FCM errorCode or google.rpc status answered (``None`` for 200);
    ``access_token`` the bearer token presented (``None`` without one); ``received_at`` is
    ``time.time()`` and ``monotonic`` ``time.monotonic()`` at arrival.
    """

    project: str
    token: str | None
    message: dict[str, Any]
    status: int
    error: str | None
    access_token: str | None
    http_version: str
    validate_only: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, no authorization
    received_at: float = 0.0
    monotonic: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "token": self.token,
            "status": self.status,
            "error": self.error,
            "http_version": self.http_version,
            "validate_only": self.validate_only,
            "received_at": self.received_at,
            "message": self.message,
        }


@dataclass(frozen=True)
class IssuedToken:
    """An OAuth2 access token the token endpoint handed out."""

    access_token: str
    client_email: str
    scope: str
    issued_at: float  # time.time()
    expires_at: float  # time.time()


@dataclass(frozen=True)
class Script:
    """How the emulator answers sends to one registration token (see :meth:`FcmEmulator.script`).

    ``error`` a key of :data:`SCRIPTABLE_ERRORS` (``None``: success); ``delay`` seconds before
    answering; ``times`` how many attempts the script applies to, then sends succeed normally
    (``None``: every attempt); ``retry_after`` seconds for a ``Retry-After`` header.
    """

    error: str | None = None
    delay: float = 0.0
    times: int | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.error not in SCRIPTABLE_ERRORS:
            raise ValueError(
                f"unknown FCM error {self.error!r}; one of {', '.join(SCRIPTABLE_ERRORS)}"
            )
        if not self.delay >= 0:
            raise ValueError(f"delay must be >= 0, got {self.delay!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times!r}")
        if self.retry_after is not None and not self.retry_after >= 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after!r}")


# -- throwaway service accounts --------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccountKey:
    """A throwaway Google service account: the JSON key file Google would hand out (``info``)
    and the public half the emulator checks assertions with (``public_key_pem``)."""

    info: dict[str, str]
    public_key_pem: str

    @property
    def client_email(self) -> str:
        return self.info["client_email"]

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON key file, readable by its owner only (it holds a private key)."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(self.info, file, indent=2)


def make_service_account(
    project_id: str, *, client_email: str = "", token_uri: str = GOOGLE_TOKEN_URI
) -> ServiceAccountKey:
    """A new service account with a fresh 2048-bit RSA key (never commit one)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    email = client_email or f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
        + urllib.parse.quote(email),
        "universe_domain": "googleapis.com",
    }
    return ServiceAccountKey(info=info, public_key_pem=_public_pem(key))


def public_key_of(private_key_pem: str) -> str:
    """The PEM public key of a PEM private key (a service account's ``private_key``)."""
    return _public_pem(
        serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    )


def _public_pem(key: Any) -> str:
    public_key = key.public_key()
    pem: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


# -- the state both endpoints share -------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    client_email: str
    public_key_pem: str
    project: str | None


class _Reply(Exception):
    """Raised inside a handler to answer at once with ``status`` and a JSON ``body``."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = tuple(headers)


def _google_error(
    status: int, rpc_status: str, message: str, details: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def _invalid(field_path: str, description: str) -> _Reply:
    """FCM's answer to a malformed message: 400 INVALID_ARGUMENT with a BadRequest violation."""
    violation = {"field": field_path, "description": description}
    return _Reply(
        400,
        _google_error(
            400,
            "INVALID_ARGUMENT",
            description,
            [
                {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
                {"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]},
            ],
        ),
    )


class _EmulatorState:
    """Accounts, issued tokens, scripts and recorded requests; shared by the server thread and the
    test's event loop, so every access holds ``lock``."""

    def __init__(self, token_lifetime: int) -> None:
        self.lock = threading.Lock()
        self.token_lifetime = token_lifetime
        self.own_token_uri = ""
        self.accounts: dict[str, _Account] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.issued: list[IssuedToken] = []
        self.scripts: dict[str, tuple[Script, int | None]] = {}  # token -> (script, attempts left)
        self.requests: list[FcmRequest] = []
        self.listeners: list[Callable[[FcmRequest], None]] = []
        self.message_count = 0

    # -- POST /token ----------------------------------------------------------------------------

    def issue_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """RFC 7523 §2.1 JWT-bearer grant, checked as Google's token endpoint checks it."""
        grant_type = form.get("grant_type", "")
        if grant_type != JWT_BEARER_GRANT:
            raise _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise _oauth_error("invalid_grant", "Invalid JWT: malformed assertion") from None
        if header.get("alg") != "RS256":
            raise _oauth_error("invalid_grant", "Invalid JWT: the algorithm must be RS256")
        issuer = unverified.get("iss")
        with self.lock:
            account = self.accounts.get(issuer) if isinstance(issuer, str) else None
        if account is None:
            raise _oauth_error("invalid_grant", "Invalid grant: account not found")
        audiences = [GOOGLE_TOKEN_URI] + ([self.own_token_uri] if self.own_token_uri else [])
        try:
            claims = jwt.decode(
                assertion,
                account.public_key_pem,
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=60,
            )
        except jwt.InvalidSignatureError:
            raise _oauth_error("invalid_grant", "Invalid JWT Signature.") from None
        except jwt.InvalidAudienceError:
            raise _oauth_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {GOOGLE_TOKEN_URI}",
            ) from None
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise _oauth_error("invalid_grant", _SHORT_LIVED) from None
        except jwt.InvalidTokenError as err:
            raise _oauth_error("invalid_grant", f"Invalid JWT: {err}") from None
        if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME:
            raise _oauth_error("invalid_grant", _SHORT_LIVED)
        scope = claims.get("scope")
        if not isinstance(scope, str) or not FCM_SCOPES & set(scope.split()):
            raise _oauth_error("invalid_scope", _INVALID_SCOPE)
        now = time.time()
        issued = IssuedToken(
            access_token="ya29.emulator-" + secrets.token_urlsafe(32),
            client_email=account.client_email,
            scope=scope,
            issued_at=now,
            expires_at=now + self.token_lifetime,
        )
        with self.lock:
            self.tokens[issued.access_token] = issued
            self.issued.append(issued)
        return {
            "access_token": issued.access_token,
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }

    # -- POST /v1/projects/{project}/messages:send -----------------------------------------------

    def authenticate(self, project: str, authorization: str) -> None:
        scheme, _, access_token = authorization.partition(" ")
        with self.lock:
            issued = self.tokens.get(access_token) if scheme.lower() == "bearer" else None
            account = self.accounts.get(issued.client_email) if issued else None
        if issued is None or account is None or issued.expires_at <= time.time():
            raise _Reply(401, _google_error(401, "UNAUTHENTICATED", _UNAUTHENTICATED))
        if account.project is not None and account.project != project:
            raise _Reply(
                403,
                _google_error(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission 'cloudmessaging.messages.create' denied on resource "
                    f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                    "(or it may not exist).",
                ),
            )

    def next_script(self, token: str | None) -> Script | None:
        """The script for this attempt on ``token``, counting the attempt."""
        if token is None:
            return None
        with self.lock:
            entry = self.scripts.get(token)
            if entry is None:
                return None
            script, left = entry
            if left is None:
                return script
            if left <= 0:
                return None
            self.scripts[token] = (script, left - 1)
            return script

    def record(self, request: FcmRequest) -> None:
        with self.lock:
            self.requests.append(request)
            listeners = list(self.listeners)
        for listener in listeners:
            try:
                listener(request)
            except Exception:  # a listener's bug must not break the emulator
                logger.exception("FCM emulator listener failed")

    def message_name(self, project: str, validate_only: bool) -> str:
        if validate_only:
            return f"projects/{project}/messages/fake_message_id"
        with self.lock:
            self.message_count += 1
            count = self.message_count
        return f"projects/{project}/messages/0:{int(time.time() * 1e6)}%{count:016x}"


_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
_INVALID_SCOPE = "Invalid OAuth scope or ID token audience provided."
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def _oauth_error(code: str, description: str) -> _Reply:
    return _Reply(400, {"error": code, "error_description": description})


def _validate_message(body: Any) -> tuple[dict[str, Any], bool]:
    """Check a ``messages:send`` body as FCM does: ``(message, validate_only)`` or raise _Reply."""
    if not isinstance(body, dict):
        raise _invalid("", "Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in ("message", "validate_only"):
            raise _invalid(name, f'Invalid JSON payload received. Unknown name "{name}".')
    message = body.get("message")
    if not isinstance(message, dict):
        raise _invalid("message", "Request contains an invalid argument: message is required.")
    validate_only = body.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise _invalid("validate_only", "Invalid value at 'validate_only' (TYPE_BOOL)")
    _check_known(message, _MESSAGE_FIELDS, "message")
    targets = [name for name in _TARGETS if name in message]
    if not targets:
        raise _invalid("message", "Recipient of the message is not set.")
    if len(targets) > 1:
        raise _invalid(
            "message",
            f"Invalid value (oneof), oneof field 'target' is already set. "
            f"Cannot set '{targets[1]}'",
        )
    target = targets[0]
    value = message[target]
    if not isinstance(value, str) or not value:
        raise _invalid(f"message.{target}", f"Invalid value at 'message.{target}' (TYPE_STRING)")
    if target in ("token", "fid") and not _FCM_TOKEN_RE.fullmatch(value):
        raise _Reply(
            400,
            _google_error(
                400,
                "INVALID_ARGUMENT",
                SCRIPTABLE_ERRORS["INVALID_ARGUMENT"][2],
                [{"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}],
            ),
        )
    size = _check_data(message.get("data"), "message.data")
    size += _check_notification(message.get("notification"), "message.notification")
    android = message.get("android")
    if android is not None:
        if not isinstance(android, dict):
            raise _invalid("message.android", "Invalid value at 'message.android'")
        _check_known(android, _ANDROID_FIELDS, "message.android")
        priority = android.get("priority")
        if priority is not None and priority not in _PRIORITIES:
            raise _invalid(
                "message.android.priority",
                "Invalid value at 'message.android.priority' "
                f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "
                f"{json.dumps(priority)}",
            )
        ttl = android.get("ttl")
        if ttl is not None:
            match = _TTL_RE.fullmatch(ttl) if isinstance(ttl, str) else None
            if match is None:
                raise _invalid(
                    "message.android.ttl",
                    "Invalid value at 'message.android.ttl' "
                    f"(type.googleapis.com/google.protobuf.Duration), {json.dumps(ttl)}",
                )
            if int(match.group(1)) > MAX_TTL_SECONDS:
                raise _invalid("message.android.ttl", "TTL must be at most 2419200 seconds.")
        for name in ("collapse_key", "restricted_package_name"):
            if name in android and not isinstance(android[name], str):
                raise _invalid(
                    f"message.android.{name}",
                    f"Invalid value at 'message.android.{name}' (TYPE_STRING)",
                )
        size += _check_data(android.get("data"), "message.android.data")
        size += _check_notification(android.get("notification"), "message.android.notification")
    if size > MAX_PAYLOAD_BYTES:
        raise _invalid("message", f"Message is too big ({size} bytes; the limit is 4096).")
    return message, validate_only


def _check_known(value: dict[str, Any], known: frozenset[str], where: str) -> None:
    for name in value:
        if name not in known:
            raise _invalid(
                f"{where}.{name}",
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field.",
            )


def _check_data(data: Any, where: str) -> int:
    """FCM data: a map of strings to strings, no reserved keys; returns its size in bytes."""
    if data is None:
        return 0
    if not isinstance(data, dict):
        raise _invalid(where, f"Invalid value at '{where}'")
    size = 0
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            raise _invalid(
                f"{where}[{index}].value",
                f"Invalid value at '{where}[{index}].value' (TYPE_STRING), {json.dumps(value)}",
            )
        if key in _RESERVED_DATA_KEYS or key.startswith(_RESERVED_DATA_PREFIXES):
            raise _invalid(f"{where}[{index}].key", f"Invalid data payload key: {key}")
        size += len(key.encode()) + len(value.encode())
    return size


def _check_notification(notification: Any, where: str) -> int:
    if notification is None:
        return 0
    if not isinstance(notification, dict):
        raise _invalid(where, f"Invalid value at '{where}'")
    size = 0
    for name, value in notification.items():
        if where == "message.notification":
            _check_known({name: value}, _NOTIFICATION_FIELDS, where)
        if isinstance(value, str):
            size += len(value.encode())
        elif name in _NOTIFICATION_FIELDS:
            raise _invalid(f"{where}.{name}", f"Invalid value at '{where}.{name}' (TYPE_STRING)")
    return size


# -- the ASGI application --------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds to wait before answering (scripted)


class _FcmApp:
    """The two endpoints as one raw ASGI application (two routes need no framework)."""

    def __init__(self, state: _EmulatorState) -> None:
        self.state = state

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            answer = self._route(scope["method"], scope["path"], body, headers, scope)
        except Exception:
            logger.exception("FCM emulator failed on %s", scope["path"])
            answer = _Answer(500, _google_error(500, "INTERNAL", "Internal error encountered."))
        if answer.delay and await _disconnected_within(receive, answer.delay):
            return  # the client gave up (its timeout): nobody to answer
        payload = json.dumps(answer.body).encode()
        response_headers = [
            (b"content-type", b"application/json; charset=UTF-8"),
            (b"content-length", str(len(payload)).encode()),
            *((name.encode(), value.encode()) for name, value in answer.headers),
        ]
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    def _route(
        self, method: str, path: str, body: bytes, headers: dict[str, str], scope: Scope
    ) -> _Answer:
        if path == "/token":
            if method != "POST":
                return _method_not_allowed(method)
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            try:
                return _Answer(200, self.state.issue_token(form))
            except _Reply as reply:
                return _Answer(reply.status, reply.body, reply.headers)
        match = _SEND_PATH_RE.fullmatch(path)
        if match is None:
            return _Answer(404, _google_error(404, "NOT_FOUND", f"No such endpoint: {path}"))
        if method != "POST":
            return _method_not_allowed(method)
        return self._send(match.group(1), body, headers, str(scope.get("http_version", "")))

    def _send(
        self, project: str, body: bytes, headers: dict[str, str], http_version: str
    ) -> _Answer:
        """Authenticate, validate, apply the token's script, record."""
        received_at, monotonic = time.time(), time.monotonic()
        authorization = headers.get("authorization", "")
        scheme, _, presented = authorization.partition(" ")
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        message: dict[str, Any] = {}
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), dict):
            message = parsed["message"]
        token = message.get("token", message.get("fid"))
        token = token if isinstance(token, str) else None
        validate_only = False
        delay = 0.0
        try:
            self.state.authenticate(project, authorization)
            if parsed is None:
                raise _invalid("", "Invalid JSON payload received.")
            message, validate_only = _validate_message(parsed)
            script = self.state.next_script(token)
            if script is not None:
                delay = script.delay
                if script.error is not None:
                    raise _scripted_error(script)
            answer = _Answer(200, {"name": self.state.message_name(project, validate_only)})
        except _Reply as reply:
            answer = _Answer(reply.status, reply.body, reply.headers)
        self.state.record(
            FcmRequest(
                project=project,
                token=token,
                message=message,
                status=answer.status,
                error=_error_code(answer.body) if answer.status != 200 else None,
                access_token=presented if scheme.lower() == "bearer" and presented else None,
                http_version=http_version,
                validate_only=validate_only,
                headers={k: v for k, v in headers.items() if k != "authorization"},
                received_at=received_at,
                monotonic=monotonic,
            )
        )
        return _Answer(answer.status, answer.body, answer.headers, delay)


def _scripted_error(script: Script) -> _Reply:
    assert script.error is not None
    status, rpc_status, message = SCRIPTABLE_ERRORS[script.error]
    headers = []
    if script.retry_after is not None:
        headers.append(("retry-after", f"{script.retry_after:g}"))
    detail = {"@type": FCM_ERROR_TYPE, "errorCode": script.error}
    return _Reply(status, _google_error(status, rpc_status, message, [detail]), headers)


def _error_code(body: dict[str, Any]) -> str | None:
    """The FcmError errorCode of an error body, else its google.rpc status."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    for detail in error.get("details", ()):
        if detail.get("@type") == FCM_ERROR_TYPE:
            return str(detail.get("errorCode"))
    status = error.get("status")
    return str(status) if status else None


def _method_not_allowed(method: str) -> _Answer:
    return _Answer(405, _google_error(405, "METHOD_NOT_ALLOWED", f"Method {method} not allowed."))


async def _disconnected_within(receive: ASGIReceiveCallable, delay: float) -> bool:
    """Wait ``delay`` seconds; True as soon as the client disconnects (or resets the stream)."""
    disconnect = asyncio.ensure_future(receive())
    try:
        done, _ = await asyncio.wait({disconnect}, timeout=delay)
    finally:
        if not disconnect.done():
            disconnect.cancel()
    return bool(done)


async def _read_body(receive: ASGIReceiveCallable) -> bytes:
    chunks = []
    while True:
        event = await receive()
        if event["type"] != "http.request":
            break
        chunks.append(event["body"])
        if not event["more_body"]:
            break
    return b"".join(chunks)


# -- the server ------------------------------------------------------------------------------


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _hypercorn_config(
    sock: socket.socket, cert_file: str, key_file: str, graceful_timeout: float
) -> HypercornConfig:
    # Fail now, in the caller, on an unreadable or mismatched certificate and key.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the listening socket from here
    config.certfile = cert_file
    config.keyfile = key_file
    config.alpn_protocols = ["h2", "http/1.1"]
    config.keep_alive_max_requests = 2**31  # never recycle: PUSH-LIBS.md §2, httpcore #1022
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logger
    return config


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The server loop's exception handler: on 3.11, a connection still open at shutdown makes
    asyncio's stream callback log the CancelledError of Hypercorn's connection task as an error
    (3.12 checks for cancellation first). Everything else is reported as usual."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class FcmEmulator:
    """The emulator for tests: ``async with FcmEmulator(cert_file, key_file) as emulator``.

    It listens on ``host``:``port`` (0: a free port; see :attr:`url`) with the given PEM
    certificate chain and key, in a thread of its own. Access tokens live ``token_lifetime``
    seconds. On exit, open connections get ``graceful_timeout`` seconds to finish.
    """

    def __init__(
        self,
        cert_file: str | os.PathLike[str],
        key_file: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: int = 3600,
        graceful_timeout: float = 1.0,
    ) -> None:
        self.cert_file = os.fspath(cert_file)
        self.key_file = os.fspath(key_file)
        self.host = host
        self.port = port
        self.graceful_timeout = graceful_timeout
        self._state = _EmulatorState(token_lifetime)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._owner_loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> FcmEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the FCM emulator is already running")
        sock = _listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        try:
            config = _hypercorn_config(sock, self.cert_file, self.key_file, self.graceful_timeout)
        except BaseException:
            sock.close()
            raise
        self._state.own_token_uri = self.token_uri
        self._owner_loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._state.listeners.append(self._notify_owner)
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="fcm-emulator", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._started.wait, 10.0)
        if self._failure is not None or self._shutdown is None:
            raise RuntimeError(f"the FCM emulator did not start: {self._failure!r}")

    async def stop(self) -> None:
        thread, loop, shutdown = self._thread, self._server_loop, self._shutdown
        if thread is None:
            return
        if loop is not None and shutdown is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(shutdown.set)
        await asyncio.to_thread(thread.join, self.graceful_timeout + 10.0)
        self._thread = None
        with self._state.lock:
            if self._notify_owner in self._state.listeners:
                self._state.listeners.remove(self._notify_owner)

    def _run(self, config: HypercornConfig) -> None:
        try:
            asyncio.run(self._serve(config))
        except BaseException as err:  # reported by start() or logged
            self._failure = err
            logger.exception("FCM emulator stopped with an error")
        finally:
            self._started.set()

    async def _serve(self, config: HypercornConfig) -> None:
        self._server_loop = asyncio.get_running_loop()
        self._server_loop.set_exception_handler(_quiet_cancellations)
        self._shutdown = asyncio.Event()
        self._started.set()
        await serve(_FcmApp(self._state), config, shutdown_trigger=self._shutdown.wait)

    def _notify_owner(self, _request: FcmRequest) -> None:
        loop, changed = self._owner_loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):  # the test's loop has ended
                loop.call_soon_threadsafe(changed.set)

    # -- what tests configure and read --------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``https://127.0.0.1:PORT``: FcmAppConfig's ``endpoint``."""
        return _url(self.host, self.port)

    @property
    def token_uri(self) -> str:
        """The OAuth2 token endpoint: FcmAppConfig's ``token_uri``."""
        return self.url + "/token"

    def send_url(self, project: str) -> str:
        return f"{self.url}/v1/projects/{project}/messages:send"

    def add_service_account(
        self, client_email: str, public_pem: str, *, project: str | None = None
    ) -> None:
        """Accept assertions signed by this key for ``client_email``; with ``project``, its tokens
        may send for that project only (403 PERMISSION_DENIED for others)."""
        serialization.load_pem_public_key(public_pem.encode("ascii"))  # fail now if malformed
        with self._state.lock:
            self._state.accounts[client_email] = _Account(client_email, public_pem, project)

    def script(
        self,
        token: str,
        *,
        error: str | None = None,
        delay: float = 0.0,
        times: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Script the answers to ``token`` (replacing any earlier script; no arguments clears it):
        ``error`` (a :data:`SCRIPTABLE_ERRORS` key) after ``delay`` seconds, for the first
        ``times`` attempts (``None``: all), with ``Retry-After: retry_after``."""
        script = Script(error=error, delay=delay, times=times, retry_after=retry_after)
        with self._state.lock:
            if script == Script():
                self._state.scripts.pop(token, None)
            else:
                self._state.scripts[token] = (script, times)

    def revoke_tokens(self) -> None:
        """Forget every issued access token: the next send with one gets 401 UNAUTHENTICATED."""
        with self._state.lock:
            self._state.tokens.clear()

    @property
    def requests(self) -> list[FcmRequest]:
        """Every ``messages:send`` request so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def issued_tokens(self) -> list[IssuedToken]:
        """Every access token the token endpoint issued, in order (a copy)."""
        with self._state.lock:
            return list(self._state.issued)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[FcmRequest]:
        """The first ``count`` or more requests, once that many arrived; TimeoutError after
        ``timeout`` seconds. Call it from the loop that started the emulator."""
        changed = self._changed
        if changed is None:
            raise RuntimeError("the FCM emulator is not running")
        deadline = time.monotonic() + timeout
        while True:
            changed.clear()
            seen = self.requests
            if len(seen) >= count:
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"FCM emulator got {len(seen)} of {count} requests in {timeout} s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


# -- the command line --------------------------------------------------------------------------


def parse_script(text: str) -> tuple[str, Script]:
    """``TOKEN=error=NAME,delay=S,times=N,retry_after=S`` (any subset, at least one)."""
    token, eq, spec = text.partition("=")
    if not token or not eq or not spec:
        raise ValueError(f"--script wants TOKEN=SPEC, got {text!r}")
    values: dict[str, Any] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in ("error", "delay", "times", "retry_after"):
            raise ValueError(
                f"--script {token}: {item!r} is not error=, delay=, times=, retry_after="
            )
        try:
            values[key] = {"error": str, "times": int}.get(key, float)(value.strip())
        except ValueError:
            raise ValueError(f"--script {token}: bad {key} {value!r}") from None
    return token, Script(**values)


def _service_account_file(path: str) -> tuple[str, str]:
    """(client_email, public key PEM) of a service-account JSON key file."""
    with open(path, encoding="utf-8") as file:
        info = json.load(file)
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(f"{path}: not a service-account key file")
    try:
        return str(info["client_email"]), public_key_of(str(info["private_key"]))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path}: no usable client_email and private_key") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sipush.testing.fcm_emulator",
        description="A local FCM HTTP v1 service with an OAuth2 token endpoint, over HTTPS.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8444, help="port to listen on (8444)")
    parser.add_argument("--cert", required=True, help="PEM certificate chain of the server")
    parser.add_argument("--key", required=True, help="PEM private key of the server")
    parser.add_argument(
        "--service-account",
        action="append",
        default=[],
        metavar="FILE",
        help="accept this service-account JSON key file's assertions (repeatable)",
    )
    parser.add_argument(
        "--new-service-account",
        metavar="FILE",
        help="write a throwaway service-account key file for --project and accept it",
    )
    parser.add_argument("--project", help="the project of --new-service-account")
    parser.add_argument(
        "--script",
        action="append",
        default=[],
        metavar="TOKEN=SPEC",
        help="answer TOKEN with e.g. error=UNREGISTERED,times=1,delay=0.5,retry_after=3",
    )
    parser.add_argument(
        "--token-lifetime", type=int, default=3600, help="access token expires_in (3600)"
    )
    args = parser.parse_args(argv)
    if args.new_service_account and not args.project:
        parser.error("--new-service-account needs --project")
    state = _EmulatorState(args.token_lifetime)
    try:
        for text in args.script:
            token, script = parse_script(text)
            state.scripts[token] = (script, script.times)
        for path in args.service_account:
            email, public_pem = _service_account_file(path)
            state.accounts[email] = _Account(email, public_pem, None)
        sock = _listening_socket(args.host, args.port)
        state.own_token_uri = _url(args.host, sock.getsockname()[1]) + "/token"
        url = _url(args.host, sock.getsockname()[1])
        try:
            config = _hypercorn_config(sock, args.cert, args.key, graceful_timeout=1.0)
        except (OSError, ssl.SSLError) as err:
            sock.close()
            reason = err.strerror or err
            raise ValueError(
                f"cannot use --cert {args.cert} and --key {args.key}: {reason}"
            ) from None
        if args.new_service_account:
            account = make_service_account(args.project, token_uri=state.own_token_uri)
            account.write(args.new_service_account)
            state.accounts[account.client_email] = _Account(
                account.client_email, account.public_key_pem, None
            )
    except (OSError, ValueError, ssl.SSLError) as err:
        print(f"fcm-emulator: error: {err}", file=sys.stderr)
        return 2
    state.listeners.append(lambda request: print(json.dumps(request.to_json()), flush=True))
    asyncio.run(_serve_until_signal(state, config, url))
    return 0


async def _serve_until_signal(state: _EmulatorState, config: HypercornConfig, url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancellations)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"fcm-emulator: listening on {url} (token endpoint {url}/token)", file=sys.stderr)
    sys.stderr.flush()
    await serve(_FcmApp(state), config, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    sys.exit(main())
