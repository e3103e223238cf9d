"""FCM HTTP v1 pushes through the real ``firebase-admin`` client: build purely, send thinly,
classify the answer.

::

    build_message(notification, app) -> dict   the FCM v1 ``message`` JSON (pure; snapshot it)
    classify(answer) -> PushResult             a message name or an error -> the outcome (pure)
    FcmProvider(apps)                          PushProvider: one firebase_admin App per project

**Messages.** ``incomingCall``, ``cancelIncomingCall`` and ``messageReceived`` are data-only,
high-priority messages: Android then runs the app's ``onMessageReceived`` even when it is in the
background or killed, so it can re-REGISTER and ring (or stop ringing), or fetch the held MESSAGE
(whose ``title`` and ``body`` ride in the data for the app to show). ``missedCall`` and
``voicemailReceived`` carry a ``notification`` (title and body, shown by the system) and the same
data, at normal priority. Every message has ``android.ttl`` from ``Notification.ttl`` (clamped to
FCM's 0..28 days) and ``android.collapse_key`` from ``collapse_id``. The data (all values strings,
as FCM requires) is ``type``, ``aor``, ``caller_name``, ``caller_number`` (``""`` when unknown) and
``call_id`` (only when there is one). When the device's app id is one of the app's ``app_ids``,
``android.restricted_package_name`` makes FCM deliver to that package only.

**Sending** goes through ``messaging.send_each_async([message], app=...)`` (firebase-admin has no
``send_async``; PUSH-LIBS.md §2): the SDK encodes the message, posts it over HTTP/2 and maps FCM's
errors to its typed exceptions. sipush changes three things the SDK does not let an application
configure, on the app's own messaging service only (never globally):

* the URL (``_fcm_url``), when ``endpoint`` is set: a relay or the local emulator;
* the HTTP client (``_async_client``): an ``httpx.AsyncClient`` with HTTP/2, the app's CA, the
  app's timeout and **no SDK retries**: the SDK's own retry of 500/503 (4 tries, 7 s) would eat
  the held call's deadline, so ``retry`` outcomes go back to sipush's sender, which retries
  within the deadline;
* the OAuth2 token refresh. The SDK refreshes inside its httpx auth flow with a *blocking*
  ``requests`` call on the event loop (a token endpoint on the same loop deadlocks; any slow one
  stalls every SIP transaction), with the process-wide CA bundle, and then starts google-auth's
  background "regional access boundary" lookup to Google. sipush instead refreshes the service
  account's token in a worker thread (one refresh at a time per app, shared by concurrent
  sends, bounded by the timeout) with the app's CA, and the client only adds the Bearer header.
  A 401 from FCM drops the token, so the next attempt fetches a new one.

These three are private attributes of firebase-admin 7.7 (PUSH-LIBS.md §2 measured them); the
provider checks they exist when it starts and refuses to start, with a clear error, if a new
firebase-admin renamed them.

**CA files.** ``ca_file`` is per app and covers both the FCM endpoint (an ``ssl.SSLContext`` for
httpx, which then ignores ``SSL_CERT_FILE``) and the token endpoint (``verify=`` on every
token request, which wins over ``REQUESTS_CA_BUNDLE``; a ``Session.verify`` would not). ``""``
keeps each library's default: certifi's bundle, or ``SSL_CERT_FILE`` (httpx) and
``REQUESTS_CA_BUNDLE`` (requests) when set, which is what talking to Google needs. So one process
can talk to Google for one app and to an on-premise relay with a private CA for another.

**Outcomes** (:func:`classify`): a message name is ``delivered``. ``token-invalid``:
UNREGISTERED (404); SENDER_ID_MISMATCH (403: the token belongs to another sender and can never
be pushed with these credentials; a project mapped to the wrong service account shows up as
every token of that app failing this way, so it is logged as a warning); INVALID_ARGUMENT only
when FCM blames the token ("The registration token is not a valid FCM registration token", or a
field violation on ``message.token``). Any other INVALID_ARGUMENT is a bad payload, sipush's bug,
and ``failed``: deleting every device's token for it would be far worse (firebase-admin-java
#1064, fcm-django #223 discuss exactly this). ``retry``: QUOTA_EXCEEDED and other 429s,
UNAVAILABLE, INTERNAL, other 5xx, DEADLINE_EXCEEDED, 401 UNAUTHENTICATED, connection errors,
retryable token-endpoint errors and the timeout; ``retry_after`` from ``Retry-After`` (seconds or
an HTTP date). ``failed``: everything else, notably a token endpoint that rejects the key
(``invalid_grant``), THIRD_PARTY_AUTH_ERROR, PERMISSION_DENIED and a server certificate that
does not verify (retrying cannot fix configuration).

Every send is bounded by the app's ``timeout`` (default 5 s), token refresh included. Logs show
push tokens masked (first 6 and last 4 characters) and never an access token or key.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import re
import ssl
import time
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import firebase_admin  # type: ignore[import-untyped]
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import httpx
from firebase_admin import credentials, exceptions, messaging

from sipush.errors import ConfigError
from sipush.push.mask import mask_token
from sipush.push.notification import Notification, Outcome, PushResult
from sipush.push.params import PushInfo

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds per send, token refresh included
MAX_TTL = 2_419_200  # FCM: 28 days
# messageReceived is data-only too: on Android a notification message to a killed app is shown
# by the system and runs no app code, so the app would not re-register to receive the held
# MESSAGE; as data it wakes the app, which shows the title and body it carries itself.
DATA_ONLY_KINDS = frozenset({"incomingCall", "cancelIncomingCall", "messageReceived"})
HIGH_PRIORITY_KINDS = frozenset({"incomingCall", "cancelIncomingCall", "messageReceived"})
_DEFAULT_TITLES = {
    "missedCall": "Missed call",
    "messageReceived": "New message",
    "voicemailReceived": "New voicemail",
}

_PROJECT_ID_RE = re.compile(r"[A-Za-z0-9._:\-]+")  # as sipush.push.params accepts pn-param
_APP_ID_RE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
_TOKEN_BLAME_RE = re.compile(r"registration token", re.IGNORECASE)
_RETRY_CODES = frozenset(
    {"UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNAUTHENTICATED"}
)
_REASON_LIMIT = 200


@dataclass(frozen=True)
class FcmAppConfig:
    """One Firebase project's credentials (a ``[[push.fcm]]`` table).

    ``project_id``            the Firebase project id; RFC 8599 ``pn-param`` names it (§11)
    ``service_account_file``  the service account's JSON key file (from the Firebase console)
    ``endpoint``              base URL instead of ``https://fcm.googleapis.com`` (a relay, the
                              local emulator: ``https://127.0.0.1:8444``); ``""`` = Google
    ``token_uri``             OAuth2 token endpoint instead of the key file's ``token_uri``
    ``ca_file``               PEM CA bundle that verifies ``endpoint`` and ``token_uri``;
                              ``""`` = the libraries' defaults (certifi), as Google needs
    ``app_ids``               Android package names (X-Push / legacy ``app-id``) this project
                              sends for, separated by commas or spaces. Devices are matched by
                              RFC 8599 ``pn-param`` = ``project_id``, else by app id; when only
                              one project is configured and it lists none, it serves every FCM
                              device that does not name another project
    ``timeout``               seconds one send may take, token refresh included
    """

    project_id: str
    service_account_file: str
    endpoint: str = ""
    token_uri: str = ""
    ca_file: str = ""
    app_ids: str = ""
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.project_id, str) or not _PROJECT_ID_RE.fullmatch(self.project_id):
            raise ConfigError(f"project_id must be a Firebase project id, got {self.project_id!r}")
        if not isinstance(self.service_account_file, str) or not self.service_account_file:
            raise ConfigError("service_account_file is required (the service account JSON key)")
        for name in ("endpoint", "token_uri"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ConfigError(f"{name} must be a string")
            if value:
                parts = urlsplit(value)
                if parts.scheme not in ("https", "http") or not parts.hostname:
                    raise ConfigError(f"{name} must be an https:// (or http://) URL, got {value!r}")
                if parts.query or parts.fragment:
                    raise ConfigError(f"{name} must not have a query or fragment, got {value!r}")
        if not isinstance(self.ca_file, str):
            raise ConfigError("ca_file must be a string")
        if not isinstance(self.app_ids, str):
            raise ConfigError("app_ids must be a string of package names")
        for app_id in self.package_names:
            if not _APP_ID_RE.fullmatch(app_id):
                raise ConfigError(f"app_ids: {app_id!r} is not an Android package name")
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigError(f"timeout must be a number of seconds, got {timeout!r}")
        if not (0 < timeout < math.inf):
            raise ConfigError(f"timeout must be above 0 seconds, got {timeout!r}")

    @property
    def package_names(self) -> tuple[str, ...]:
        return tuple(name for name in re.split(r"[\s,]+", self.app_ids) if name)

    @property
    def send_url(self) -> str:
        """The ``messages:send`` URL of this project (at ``endpoint`` when set)."""
        base = self.endpoint.rstrip("/") or "https://fcm.googleapis.com"
        return f"{base}/v1/projects/{self.project_id}/messages:send"


# -- building ----------------------------------------------------------------------------------


def build_message(notification: Notification, app: FcmAppConfig) -> dict[str, Any]:
    """The FCM HTTP v1 ``message`` object for ``notification`` (pure; see the module docstring)."""
    kind = notification.kind
    data = {
        "type": kind,
        "aor": notification.aor,
        "caller_name": notification.caller_name or "",
        "caller_number": notification.caller_number or "",
    }
    if notification.call_id:
        data["call_id"] = notification.call_id
    android: dict[str, Any] = {
        "priority": "high" if kind in HIGH_PRIORITY_KINDS else "normal",
        "ttl": f"{min(max(int(notification.ttl), 0), MAX_TTL)}s",
    }
    if notification.collapse_id:
        android["collapse_key"] = notification.collapse_id
    app_id = notification.push.app_id
    if app_id and app_id in app.package_names:
        android["restricted_package_name"] = app_id
    if kind == "messageReceived":
        data["title"] = (
            notification.title or notification.caller_name or notification.caller_number or ""
        )
        data["body"] = notification.body or ""
    message: dict[str, Any] = {"token": notification.push.prid, "data": data, "android": android}
    if kind not in DATA_ONLY_KINDS:
        caller = " ".join(p for p in (notification.caller_name, notification.caller_number) if p)
        title = notification.title or (
            (notification.caller_name or notification.caller_number)
            if kind == "messageReceived"
            else None
        )
        body = notification.body if notification.body is not None else caller
        shown = {"title": title or _DEFAULT_TITLES.get(kind, kind)}
        if body:
            shown["body"] = body
        message["notification"] = shown
    return message


def sdk_message(message: Mapping[str, Any]) -> Any:
    """The ``firebase_admin.messaging.Message`` that firebase-admin encodes back to ``message``.

    The target is set as the attribute ``token``, not through ``Message(token=...)``: 7.7
    deprecates that argument in favour of ``fid`` (a Firebase Installation ID, another
    identifier), but devices hand sipush FCM registration tokens, whose v1 field is ``token``.
    """
    android = message["android"]
    shown = message.get("notification")
    result = messaging.Message(
        data=dict(message["data"]),
        notification=(
            messaging.Notification(title=shown.get("title"), body=shown.get("body"))
            if shown
            else None
        ),
        android=messaging.AndroidConfig(
            priority=android["priority"],
            ttl=int(android["ttl"].removesuffix("s")),
            collapse_key=android.get("collapse_key"),
            restricted_package_name=android.get("restricted_package_name"),
        ),
    )
    result.token = message["token"]
    return result


# -- classifying -------------------------------------------------------------------------------


def classify(answer: str | BaseException) -> PushResult:
    """The outcome of one send: ``answer`` is FCM's message name, or the error it ended with
    (a firebase-admin ``FirebaseError``, a google-auth token error, a timeout, ...)."""
    if isinstance(answer, str):
        return PushResult("delivered", status=200, provider_id=answer)
    error = answer
    status = _http_status(error)
    retry_after = _retry_after(error)
    if isinstance(error, messaging.UnregisteredError):
        return PushResult("token-invalid", status=status, reason="UNREGISTERED")
    if isinstance(error, messaging.SenderIdMismatchError):
        return PushResult("token-invalid", status=status, reason="SENDER_ID_MISMATCH")
    if isinstance(error, messaging.QuotaExceededError):
        return PushResult("retry", status=status, reason="QUOTA_EXCEEDED", retry_after=retry_after)
    if isinstance(error, messaging.ThirdPartyAuthError):
        return PushResult("failed", status=status, reason="THIRD_PARTY_AUTH_ERROR")
    if isinstance(error, exceptions.InvalidArgumentError):
        detail = _first_line(str(error))
        if _blames_token(error):
            return PushResult("token-invalid", status=status, reason=f"INVALID_ARGUMENT: {detail}")
        return PushResult("failed", status=status, reason=f"INVALID_ARGUMENT: {detail}")
    if _is_certificate_failure(error):
        return PushResult("failed", status=status, reason="tls: certificate verify failed")
    if isinstance(error, exceptions.FirebaseError):
        code = str(error.code)
        if code in _RETRY_CODES or (status is not None and (status == 429 or status >= 500)):
            return PushResult("retry", status=status, reason=code, retry_after=retry_after)
        if code == "UNKNOWN" and isinstance(error.cause, httpx.TransportError):
            # A stream or connection lost mid-request (GOAWAY, httpcore #1022): try again.
            return PushResult("retry", status=status, reason=f"transport: {_name(error.cause)}")
        return PushResult("failed", status=status, reason=f"{code}: {_first_line(str(error))}")
    if isinstance(error, google.auth.exceptions.RefreshError):
        outcome: Outcome = "retry" if error.retryable else "failed"
        return PushResult(outcome, reason=f"oauth2 {_refresh_reason(error)}")
    if isinstance(error, google.auth.exceptions.TransportError):
        return PushResult("retry", reason="oauth2 token endpoint unreachable")
    if isinstance(error, TimeoutError):
        return PushResult("retry", reason="timeout")
    if isinstance(error, OSError | httpx.TransportError):
        return PushResult("retry", reason=f"transport: {_name(error)}")
    return PushResult("failed", reason=f"{_name(error)}: {_first_line(str(error))}")


def _http_status(error: BaseException) -> int | None:
    response = getattr(error, "http_response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(error: BaseException) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date."""
    response = getattr(error, "http_response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _blames_token(error: BaseException) -> bool:
    """FCM's INVALID_ARGUMENT is about the registration token, not about the payload."""
    if _TOKEN_BLAME_RE.search(str(error)):
        return True
    body = _error_body(error)
    for detail in body.get("details", ()) if isinstance(body, dict) else ():
        for violation in detail.get("fieldViolations", ()) if isinstance(detail, dict) else ():
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                return True
    return False


def _error_body(error: BaseException) -> Any:
    response = getattr(error, "http_response", None)
    try:
        return json.loads(response.content).get("error", {}) if response is not None else {}
    except (ValueError, AttributeError, TypeError):
        return {}


def _is_certificate_failure(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        cause = getattr(current, "cause", None)
        current = (
            cause
            if isinstance(cause, BaseException) and id(cause) not in seen
            else current.__cause__ or current.__context__
        )
    return False


def _refresh_reason(error: google.auth.exceptions.RefreshError) -> str:
    """``invalid_grant: Invalid JWT Signature.`` from google-auth's ``(text, response)`` args."""
    text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return _first_line(text)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:_REASON_LIMIT]


def _name(error: BaseException) -> str:
    return type(error).__name__


def mask(secret: str) -> str:
    """A token as logs may show it: the first 6 and last 4 characters, never all of it."""
    if len(secret) <= 16:
        return f"<{len(secret)} chars>"
    return mask_token(secret)


# -- sending -----------------------------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    """Adds the app's current access token; refreshing is :class:`_FcmApp`'s job, off the loop."""

    def __init__(self, credential: google.auth.credentials.Credentials) -> None:
        self._credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credential.token}"
        yield request


class _SdkHttpClient:
    """Stands in for firebase-admin's ``HttpxAsyncClient`` in the app's messaging service: the
    two methods ``_MessagingService`` calls (``request`` raising for 4xx/5xx, ``aclose``)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.closed = False

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        return response.raise_for_status()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self.client.aclose()


class _TokenRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with the app's CA bundle and timeout on every call."""

    def __init__(self, ca_file: str, timeout: float) -> None:
        super().__init__()
        self._ca_file = ca_file
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        if self._ca_file:
            kwargs["verify"] = self._ca_file  # per request: wins over REQUESTS_CA_BUNDLE
        return super().__call__(
            url, method=method, body=body, headers=headers, timeout=self._timeout, **kwargs
        )


class _FcmApp:
    """One project: its firebase_admin App, credential, HTTP client and token refresh."""

    def __init__(self, config: FcmAppConfig, certificate: Any) -> None:
        self.config = config
        self.name = f"sipush-fcm-{config.project_id}-{uuid.uuid4().hex[:8]}"
        self.firebase_app = firebase_admin.initialize_app(
            certificate, {"projectId": config.project_id}, name=self.name
        )
        try:
            self.credential: google.auth.credentials.Credentials = (
                self.firebase_app.credential.get_credential()
            )
            service = messaging._get_messaging_service(self.firebase_app)
            for attribute in ("_fcm_url", "_async_client"):
                if not hasattr(service, attribute):
                    raise ConfigError(
                        f"firebase-admin {firebase_admin.__version__} has no messaging "
                        f"{attribute}: sipush cannot set the FCM endpoint, CA and timeout"
                    )
            self._sdk_client = service._async_client  # built by the SDK, never used
            verify: ssl.SSLContext | bool = True
            if config.ca_file:
                verify = ssl.create_default_context(cafile=config.ca_file)
            self.http = _SdkHttpClient(
                httpx.AsyncClient(
                    http2=True,
                    verify=verify,
                    timeout=config.timeout,
                    auth=_BearerAuth(self.credential),
                    headers=_sdk_headers(),
                )
            )
            service._fcm_url = config.send_url
            service._async_client = self.http
        except BaseException:
            self._delete_firebase_app()
            raise
        self.token_request = _TokenRequest(config.ca_file, config.timeout)
        self._refreshing: asyncio.Future[None] | None = None

    async def ensure_token(self) -> None:
        """A fresh access token, fetched in a worker thread; concurrent callers share one fetch,
        and a caller that gives up (timeout) leaves it running for the next one."""
        if self.credential.token_state == google.auth.credentials.TokenState.FRESH:
            return
        if self._refreshing is None or self._refreshing.done():
            loop = asyncio.get_running_loop()
            self._refreshing = loop.run_in_executor(
                None, self.credential.refresh, self.token_request
            )
            self._refreshing.add_done_callback(_consume_exception)
        await asyncio.shield(self._refreshing)

    def forget_token(self) -> None:
        self.credential.token = None

    async def close(self) -> None:
        await self.http.aclose()
        await self._sdk_client.aclose()
        self.token_request.session.close()
        # delete_app closes the messaging service with asyncio.run(): run it where no loop runs.
        await asyncio.to_thread(self._delete_firebase_app)

    def _delete_firebase_app(self) -> None:
        # ValueError: already deleted; RuntimeError: asyncio.run inside a running loop.
        with contextlib.suppress(ValueError, RuntimeError):
            firebase_admin.delete_app(self.firebase_app)


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved here, so an abandoned refresh's error is not "never seen"


def _sdk_headers() -> dict[str, str]:
    """The ``x-goog-api-client`` metrics header firebase-admin's own client sends."""
    from firebase_admin import _http_client

    headers = getattr(_http_client, "METRICS_HEADERS", {})
    return {str(k): str(v) for k, v in headers.items()}


def _load_service_account(config: FcmAppConfig) -> Any:
    """The app's ``credentials.Certificate``; ``token_uri`` overridden when configured. Errors
    name the file and the problem, never the key."""
    where = f"FCM project {config.project_id}: service_account_file {config.service_account_file}"
    try:
        with open(config.service_account_file, encoding="utf-8") as file:
            info = json.load(file)
    except OSError as err:
        raise ConfigError(f"{where}: cannot read it: {err.strerror or err}") from None
    except ValueError:
        raise ConfigError(f"{where}: not a JSON file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(f'{where}: not a service account key ("type": "service_account")')
    for key in ("client_email", "private_key", "token_uri"):
        if not isinstance(info.get(key), str) or not info[key]:
            if key == "token_uri" and config.token_uri:
                continue
            raise ConfigError(f"{where}: has no {key}")
    if config.token_uri:
        info = {**info, "token_uri": config.token_uri}
    try:
        return credentials.Certificate(info)
    except ValueError:
        raise ConfigError(f"{where}: private_key is not a usable RSA private key") from None


class FcmProvider:
    """Pushes to Android (and any FCM) devices of the configured Firebase projects."""

    name = "fcm"

    def __init__(self, apps: Sequence[FcmAppConfig]) -> None:
        projects = [app.project_id for app in apps]
        for project in projects:
            if projects.count(project) > 1:
                raise ConfigError(f"FCM project {project} is configured twice")
        certificates = [(app, _load_service_account(app)) for app in apps]  # all, before any App
        self._apps: list[_FcmApp] = []
        try:
            for app, certificate in certificates:
                self._apps.append(_FcmApp(app, certificate))
        except BaseException:
            for created in self._apps:
                created._delete_firebase_app()
            raise
        self._by_project = {app.config.project_id: app for app in self._apps}
        self._by_package = {name: app for app in self._apps for name in app.config.package_names}
        only = self._apps[0] if len(self._apps) == 1 else None
        self._default = only if only is not None and not only.config.package_names else None

    def handles(self, push: PushInfo) -> bool:
        return self._app_for(push) is not None

    def _app_for(self, push: PushInfo) -> _FcmApp | None:
        if push.provider != "fcm":
            return None
        if push.source == "rfc8599" and push.param:  # RFC 8599 §11: pn-param is the project id
            return self._by_project.get(push.param)
        for name in (push.app_id, push.param):
            if name and (name in self._by_project or name in self._by_package):
                return self._by_project.get(name) or self._by_package[name]
        return self._default

    async def send(self, notification: Notification) -> PushResult:
        app = self._app_for(notification.push)
        if app is None:
            return PushResult("failed", reason="no FCM project is configured for this device")
        started = time.monotonic()
        try:
            message = build_message(notification, app.config)
            result = await asyncio.wait_for(self._send(app, message), app.config.timeout)
        except TimeoutError:
            result = PushResult("retry", reason="timeout")
        except Exception as err:  # the PushProvider contract: an answer, never an exception
            logger.warning("FCM send to project %s failed", app.config.project_id, exc_info=True)
            result = classify(err)
        elapsed_ms = (time.monotonic() - started) * 1000
        level = logging.WARNING if result.outcome == "failed" else logging.DEBUG
        if result.reason == "SENDER_ID_MISMATCH":
            level = logging.WARNING  # every token failing this way: a misconfigured project
        logger.log(
            level,
            "fcm %s to %s (project %s): %s %s in %.0f ms",
            notification.kind,
            mask(notification.push.prid),
            app.config.project_id,
            result.outcome,
            result.reason or result.status or "",
            elapsed_ms,
        )
        return result

    async def _send(self, app: _FcmApp, message: dict[str, Any]) -> PushResult:
        try:
            await app.ensure_token()
        except (google.auth.exceptions.GoogleAuthError, OSError) as err:
            return classify(err)
        batch = await messaging.send_each_async([sdk_message(message)], app=app.firebase_app)
        (response,) = batch.responses
        error = response.exception
        if error is None:
            return classify(str(response.message_id))
        if isinstance(error, exceptions.UnauthenticatedError) and not isinstance(
            error, messaging.ThirdPartyAuthError
        ):
            app.forget_token()  # revoked or expired early: fetch a new one next time
        return classify(error)

    async def close(self) -> None:
        for app in self._apps:
            await app.close()
