"""FCM pushes (:mod:`sipush.push.fcm`): the pure parts as tables and snapshots, then the REAL
firebase-admin client, driven through :class:`FcmProvider`, against the local FCM emulator over
real HTTPS (HTTP/2) on 127.0.0.1, OAuth2 token flow included.

Throwaway RSA service-account keys and trustme certificates are generated here; nothing secret is
committed. The CA environment variables (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``) point at an unrelated CA in every test, so a pass proves that each app's
``ca_file`` is what verifies the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gc
import json
import logging
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import firebase_admin  # type: ignore[import-untyped]
import google.auth.exceptions
import httpx
import pytest
import trustme
from firebase_admin import exceptions, messaging

from sipush.errors import ConfigError
from sipush.push.fcm import (
    DEFAULT_TIMEOUT,
    FcmAppConfig,
    FcmProvider,
    build_message,
    classify,
    mask,
    sdk_message,
)
from sipush.push.notification import Notification, NotificationKind, PushResult
from sipush.push.params import PushInfo
from sipush.push.sender import PushSender
from sipush.testing.fcm_emulator import (
    FCM_ERROR_TYPE,
    FcmEmulator,
    ServiceAccountKey,
    make_service_account,
)

PROJECT = "demo-project"
FCM_TOKEN = (
    "dGVzdC1mY20tdG9rZW4:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338"
)
CALL_ID = "a84b4c76e66710@pc33.atlanta.example.com"
AOR = "sip:alice@example.com"
DEVICE = PushInfo("fcm", FCM_TOKEN, param=PROJECT, platform="android")
APP = FcmAppConfig(PROJECT, "service-account.json")
T = TypeVar("T")


def notification(kind: NotificationKind, **overrides: Any) -> Notification:
    """What the proxy builds for a call from Bob (1002) to alice (sipush.proxy.wake)."""
    fields: dict[str, Any] = {
        "kind": kind,
        "push": DEVICE,
        "aor": AOR,
        "call_id": CALL_ID,
        "caller_name": "Bob",
        "caller_number": "1002",
        "collapse_id": CALL_ID,
    }
    fields.update(overrides)
    return Notification(**fields)


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


# -- build_message: snapshots --------------------------------------------------------------------

CALL_DATA = {
    "type": "incomingCall",
    "aor": AOR,
    "caller_name": "Bob",
    "caller_number": "1002",
    "call_id": CALL_ID,
}


def test_incoming_call_is_a_data_only_high_priority_message() -> None:
    assert build_message(notification("incomingCall"), APP) == {
        "token": FCM_TOKEN,
        "data": CALL_DATA,
        "android": {"priority": "high", "ttl": "30s", "collapse_key": CALL_ID},
    }


def test_cancel_incoming_call_is_data_only_too() -> None:
    assert build_message(notification("cancelIncomingCall", ttl=10), APP) == {
        "token": FCM_TOKEN,
        "data": {**CALL_DATA, "type": "cancelIncomingCall"},
        "android": {"priority": "high", "ttl": "10s", "collapse_key": CALL_ID},
    }


def test_message_received_is_a_high_priority_data_message_with_title_and_body() -> None:
    """Data, not a notification message: on Android only data runs the killed app's code, so
    it re-registers and receives the held MESSAGE; the app shows title and body itself."""
    sent = notification(
        "messageReceived", title="Bob", body="See you at 5", collapse_id=None, ttl=60
    )
    assert build_message(sent, APP) == {
        "token": FCM_TOKEN,
        "data": {**CALL_DATA, "type": "messageReceived", "title": "Bob", "body": "See you at 5"},
        "android": {"priority": "high", "ttl": "60s"},
    }


def test_missed_call_is_a_normal_priority_notification() -> None:
    sent = notification("missedCall", title="Missed call", body="Bob 1002")
    assert build_message(sent, APP) == {
        "token": FCM_TOKEN,
        "data": {**CALL_DATA, "type": "missedCall"},
        "android": {"priority": "normal", "ttl": "30s", "collapse_key": CALL_ID},
        "notification": {"title": "Missed call", "body": "Bob 1002"},
    }


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("missedCall", {"title": "Missed call", "body": "Bob 1002"}),
        ("voicemailReceived", {"title": "New voicemail", "body": "Bob 1002"}),
    ],
)
def test_titles_and_bodies_have_defaults(kind: NotificationKind, shown: dict[str, str]) -> None:
    assert build_message(notification(kind), APP)["notification"] == shown


def test_unknown_caller_and_no_call_id() -> None:
    sent = notification(
        "messageReceived", call_id=None, caller_name=None, caller_number=None, collapse_id=None
    )
    assert build_message(sent, APP) == {
        "token": FCM_TOKEN,
        "data": {
            "type": "messageReceived", "aor": AOR, "caller_name": "", "caller_number": "",
            "title": "", "body": "",
        },
        "android": {"priority": "high", "ttl": "30s"},
    }  # fmt: skip


@pytest.mark.parametrize(("ttl", "wire"), [(-5, "0s"), (0, "0s"), (10**9, "2419200s")])
def test_ttl_is_clamped_to_fcms_range(ttl: int, wire: str) -> None:
    assert build_message(notification("incomingCall", ttl=ttl), APP)["android"]["ttl"] == wire


def test_a_listed_package_restricts_delivery_to_it() -> None:
    app = replace(APP, app_ids="com.example.phone, com.example.pro")
    device = PushInfo("fcm", FCM_TOKEN, app_id="com.example.pro", source="x-push")
    listed = build_message(notification("incomingCall", push=device), app)
    assert listed["android"]["restricted_package_name"] == "com.example.pro"
    other = replace(device, app_id="com.example.other")
    assert (
        "restricted_package_name"
        not in build_message(notification("incomingCall", push=other), app)["android"]
    )


KINDS: tuple[NotificationKind, ...] = (
    "incomingCall",
    "cancelIncomingCall",
    "missedCall",
    "messageReceived",
    "voicemailReceived",
)


@pytest.mark.parametrize("kind", KINDS)
def test_the_sdk_encodes_exactly_the_built_message(kind: NotificationKind) -> None:
    """What firebase-admin puts on the wire is build_message's dict, without any warning (7.7
    deprecates ``Message(token=...)``), and every data value is a string."""
    app = replace(APP, app_ids="com.example.phone")
    device = replace(DEVICE, app_id="com.example.phone")
    message = build_message(notification(kind, push=device, title="T", body="B"), app)
    assert all(isinstance(value, str) for value in message["data"].values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoded = messaging._MessagingService.encode_message(sdk_message(message))
    assert encoded == message


# -- FcmAppConfig and app selection ---------------------------------------------------------------


def test_the_default_timeout_is_five_seconds() -> None:
    assert DEFAULT_TIMEOUT == 5.0
    assert APP.timeout == 5.0
    assert APP.send_url == f"https://fcm.googleapis.com/v1/projects/{PROJECT}/messages:send"
    relay = replace(APP, endpoint="https://relay.example.net:8444/fcm/")
    assert (
        relay.send_url == f"https://relay.example.net:8444/fcm/v1/projects/{PROJECT}/messages:send"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"project_id": ""}, "project_id must be a Firebase project id"),
        ({"project_id": "a b"}, "project_id must be a Firebase project id"),
        ({"service_account_file": ""}, "service_account_file is required"),
        ({"endpoint": "fcm.googleapis.com"}, "endpoint must be an https://"),
        ({"endpoint": "ftp://relay"}, "endpoint must be an https://"),
        ({"endpoint": "https://relay/?x=1"}, "endpoint must not have a query"),
        ({"token_uri": "relay/token"}, "token_uri must be an https://"),
        ({"app_ids": "com.example.app, not a package!"}, "is not an Android package name"),
        ({"timeout": 0}, "timeout must be above 0"),
        ({"timeout": float("inf")}, "timeout must be above 0"),
        ({"timeout": True}, "timeout must be a number"),
        ({"timeout": "5"}, "timeout must be a number"),
    ],
)
def test_bad_app_configs_are_config_errors(overrides: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"project_id": PROJECT, "service_account_file": "sa.json"}
    fields.update(overrides)
    with pytest.raises(ConfigError, match=message):
        FcmAppConfig(**fields)


@pytest.fixture(scope="module")
def account() -> ServiceAccountKey:
    return make_service_account(PROJECT)


@pytest.fixture(scope="module")
def account_file(account: ServiceAccountKey, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The key file as the Firebase console hands it out: its token_uri is Google's."""
    path = tmp_path_factory.mktemp("sa") / "service-account.json"
    account.write(path)
    return str(path)


def test_devices_are_matched_to_projects(account_file: str) -> None:
    phone = FcmAppConfig(PROJECT, account_file, app_ids="com.example.phone")
    other = FcmAppConfig("other-project", account_file)
    provider = FcmProvider([phone, other])
    try:
        matched = {
            "pn-param names the project": PushInfo("fcm", "t", param=PROJECT),
            "pn-param names the other": PushInfo("fcm", "t", param="other-project"),
            "x-push app-id is listed": PushInfo(
                "fcm", "t", app_id="com.example.phone", source="x-push"
            ),
            "legacy app-id is a project": PushInfo(
                "fcm", "t", param="other-project", app_id="other-project", source="legacy"
            ),
        }
        unmatched = {
            "pn-param names a stranger": PushInfo("fcm", "t", param="stranger"),
            "unlisted app-id": PushInfo("fcm", "t", app_id="com.example.x", source="x-push"),
            "names nothing, two projects": PushInfo("fcm", "t"),
            "not fcm": PushInfo("apns", "ab" * 32, param="ABCDE12345.com.example.phone.voip"),
        }
        assert {case: provider.handles(push) for case, push in matched.items()} == dict.fromkeys(
            matched, True
        )
        assert {case: provider.handles(push) for case, push in unmatched.items()} == dict.fromkeys(
            unmatched, False
        )
        result = run(lambda: provider.send(notification("incomingCall", push=unmatched["not fcm"])))
        assert result == PushResult("failed", reason="no FCM project is configured for this device")
    finally:
        run(provider.close)


def test_a_single_project_without_app_ids_serves_every_device_not_naming_another(
    account_file: str,
) -> None:
    provider = FcmProvider([FcmAppConfig(PROJECT, account_file)])
    try:
        assert provider.handles(PushInfo("fcm", "t"))
        assert provider.handles(PushInfo("fcm", "t", app_id="com.any.app", source="x-push"))
        assert provider.handles(PushInfo("fcm", "t", param=PROJECT))
        assert not provider.handles(PushInfo("fcm", "t", param="another-project"))
    finally:
        run(provider.close)


def test_bad_service_account_files_are_config_errors(
    tmp_path: Path, account: ServiceAccountKey, account_file: str
) -> None:
    files = {
        "missing.json": None,
        "not-json.json": "{",
        "user.json": json.dumps({"type": "authorized_user"}),
        "no-key.json": json.dumps({**account.info, "private_key": ""}),
        "bad-key.json": json.dumps(
            {**account.info, "private_key": account.info["private_key"][:300]}
        ),
    }
    expected = {
        "missing.json": "cannot read it",
        "not-json.json": "not a JSON file",
        "user.json": "not a service account key",
        "no-key.json": "has no private_key",
        "bad-key.json": "private_key is not a usable RSA private key",
    }
    for name, text in files.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError, match=expected[name]) as caught:
            FcmProvider([FcmAppConfig(PROJECT, str(path))])
        assert "PRIVATE KEY" not in str(caught.value)
    with pytest.raises(ConfigError, match="configured twice"):
        FcmProvider([FcmAppConfig(PROJECT, account_file), FcmAppConfig(PROJECT, account_file)])
    assert not [name for name in firebase_admin._apps if name.startswith("sipush-fcm-")]


# -- classify: a table -------------------------------------------------------------------------


def _response(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "https://fcm.googleapis.com/v1/projects/p/messages:send")
    return httpx.Response(status, json=body, headers=headers, request=request)


def _fcm_body(status: int, rpc: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if code:
        error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
    return {"error": error}


def _certificate_error() -> exceptions.UnavailableError:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] nope")
        except ssl.SSLError as tls_error:
            raise httpx.ConnectError("certificate verify failed") from tls_error
    except httpx.ConnectError as connect_error:
        return exceptions.UnavailableError("Failed to establish a connection", cause=connect_error)


TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"
PAYLOAD_MESSAGE = "Invalid value at 'message.data[0].value' (TYPE_STRING), 1"
RETRY_7 = {"Retry-After": "7"}
CLASSIFY_CASES: list[tuple[str, str | BaseException, PushResult]] = [
    (
        "delivered",
        "projects/p/messages/0:1",
        PushResult("delivered", status=200, provider_id="projects/p/messages/0:1"),
    ),
    (
        "unregistered",
        messaging.UnregisteredError(
            "gone", http_response=_response(404, _fcm_body(404, "NOT_FOUND", "x", "UNREGISTERED"))
        ),
        PushResult("token-invalid", status=404, reason="UNREGISTERED"),
    ),
    (
        "sender id mismatch",
        messaging.SenderIdMismatchError("mismatch", http_response=_response(403, {})),
        PushResult("token-invalid", status=403, reason="SENDER_ID_MISMATCH"),
    ),
    (
        "invalid token",
        exceptions.InvalidArgumentError(TOKEN_MESSAGE, http_response=_response(400, {})),
        PushResult("token-invalid", status=400, reason=f"INVALID_ARGUMENT: {TOKEN_MESSAGE}"),
    ),
    (
        "token field violation",
        exceptions.InvalidArgumentError(
            "Request contains an invalid argument.",
            http_response=_response(
                400,
                {
                    "error": {
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.BadRequest",
                                "fieldViolations": [{"field": "message.token"}],
                            }
                        ]
                    }
                },
            ),
        ),
        PushResult(
            "token-invalid",
            status=400,
            reason="INVALID_ARGUMENT: Request contains an invalid argument.",
        ),
    ),
    (
        "bad payload",
        exceptions.InvalidArgumentError(PAYLOAD_MESSAGE, http_response=_response(400, {})),
        PushResult("failed", status=400, reason=f"INVALID_ARGUMENT: {PAYLOAD_MESSAGE}"),
    ),
    (
        "quota, Retry-After seconds",
        messaging.QuotaExceededError(
            "quota", http_response=_response(429, {}, **{"Retry-After": "7"})
        ),
        PushResult("retry", status=429, reason="QUOTA_EXCEEDED", retry_after=7.0),
    ),
    (
        "429 without the FCM detail",
        exceptions.ResourceExhaustedError("busy", http_response=_response(429, {})),
        PushResult("retry", status=429, reason="RESOURCE_EXHAUSTED"),
    ),
    (
        "unavailable",
        exceptions.UnavailableError("down", http_response=_response(503, {})),
        PushResult("retry", status=503, reason="UNAVAILABLE"),
    ),
    (
        "internal",
        exceptions.InternalError("oops", http_response=_response(500, {})),
        PushResult("retry", status=500, reason="INTERNAL"),
    ),
    (
        "502 as unknown",
        exceptions.UnknownError("bad gateway", http_response=_response(502, {})),
        PushResult("retry", status=502, reason="UNKNOWN"),
    ),
    (
        "connection refused",
        exceptions.UnavailableError("refused", cause=httpx.ConnectError("refused")),
        PushResult("retry", reason="UNAVAILABLE"),
    ),
    (
        "stream lost",
        exceptions.UnknownError("lost", cause=httpx.RemoteProtocolError("GOAWAY")),
        PushResult("retry", reason="transport: RemoteProtocolError"),
    ),
    (
        "deadline",
        exceptions.DeadlineExceededError("slow", cause=httpx.ReadTimeout("slow")),
        PushResult("retry", reason="DEADLINE_EXCEEDED"),
    ),
    (
        "access token rejected",
        exceptions.UnauthenticatedError("401", http_response=_response(401, {})),
        PushResult("retry", status=401, reason="UNAUTHENTICATED"),
    ),
    (
        "third party auth",
        messaging.ThirdPartyAuthError("apns", http_response=_response(401, {})),
        PushResult("failed", status=401, reason="THIRD_PARTY_AUTH_ERROR"),
    ),
    (
        "permission denied",
        exceptions.PermissionDeniedError("no", http_response=_response(403, {})),
        PushResult("failed", status=403, reason="PERMISSION_DENIED: no"),
    ),
    (
        "server certificate",
        _certificate_error(),
        PushResult("failed", reason="tls: certificate verify failed"),
    ),
    (
        "key rejected",
        google.auth.exceptions.RefreshError(
            "invalid_grant: Invalid JWT Signature.", {"error": "invalid_grant"}, retryable=False
        ),
        PushResult("failed", reason="oauth2 invalid_grant: Invalid JWT Signature."),
    ),
    (
        "token endpoint down",
        google.auth.exceptions.RefreshError("server_error", retryable=True),
        PushResult("retry", reason="oauth2 server_error"),
    ),
    (
        "token endpoint unreachable",
        google.auth.exceptions.TransportError("connection refused"),
        PushResult("retry", reason="oauth2 token endpoint unreachable"),
    ),
    ("timeout", TimeoutError(), PushResult("retry", reason="timeout")),
    (
        "socket error",
        ConnectionResetError("reset"),
        PushResult("retry", reason="transport: ConnectionResetError"),
    ),
    (
        "anything else",
        ValueError("odd\nsecond line"),
        PushResult("failed", reason="ValueError: odd"),
    ),
]


@pytest.mark.parametrize(
    ("case", "answer", "expected"), CLASSIFY_CASES, ids=[c[0] for c in CLASSIFY_CASES]
)
def test_classify(case: str, answer: str | BaseException, expected: PushResult) -> None:
    assert classify(answer) == expected


def test_retry_after_as_an_http_date() -> None:
    in_30_s = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    error = messaging.QuotaExceededError(
        "quota", http_response=_response(429, {}, **{"Retry-After": in_30_s})
    )
    result = classify(error)
    assert result.retry_after is not None and 25 <= result.retry_after <= 31
    past = messaging.QuotaExceededError(
        "quota",
        http_response=_response(429, {}, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    )
    assert classify(past).retry_after == 0.0
    garbage = messaging.QuotaExceededError(
        "quota", http_response=_response(429, {}, **{"Retry-After": "soon"})
    )
    assert classify(garbage).retry_after is None


def test_mask() -> None:
    assert mask(FCM_TOKEN) == "dGVzdC…B338"
    assert mask("short-token") == "<11 chars>"


# -- the real firebase-admin client against the emulator ---------------------------------------


class Tls:
    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        self.cert_file, self.key_file, self.ca_file = (
            str(directory / name) for name in ("cert.pem", "key.pem", "ca.pem")
        )
        server.cert_chain_pems[0].write_to_path(self.cert_file)
        for pem in server.cert_chain_pems[1:]:
            pem.write_to_path(self.cert_file, append=True)
        server.private_key_pem.write_to_path(self.key_file)
        ca.cert_pem.write_to_path(self.ca_file)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A second, unrelated CA and server certificate."""
    return Tls(tmp_path_factory.mktemp("other-tls"))


@pytest.fixture(autouse=True)
def unrelated_ca_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Process-wide CA settings that would NOT verify any emulator here."""
    path = str(tmp_path_factory.mktemp("env-ca") / "unrelated-ca.pem")
    trustme.CA().cert_pem.write_to_path(path)
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, path)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return path


@contextlib.asynccontextmanager
async def fcm(
    tls: Tls, account: ServiceAccountKey, account_file: str, **overrides: Any
) -> AsyncIterator[tuple[FcmEmulator, FcmProvider, FcmAppConfig]]:
    """An emulator that knows ``account``, and a provider whose one app points at it."""
    async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
        emulator.add_service_account(account.client_email, account.public_key_pem)
        fields: dict[str, Any] = {
            "endpoint": emulator.url,
            "token_uri": emulator.token_uri,
            "ca_file": tls.ca_file,
        }
        fields.update(overrides)
        app = FcmAppConfig(PROJECT, account_file, **fields)
        provider = FcmProvider([app])
        try:
            yield emulator, provider, app
        finally:
            await provider.close()


def test_incoming_call_goes_out_as_a_high_priority_data_message_with_an_issued_token(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, app):
            call = notification("incomingCall")
            result = await provider.send(call)
            (request,) = await emulator.wait_for_requests(1)
            (issued,) = emulator.issued_tokens
            assert issued.client_email == account.client_email
            assert request.access_token == issued.access_token  # the send used the new token
            assert result == PushResult("delivered", status=200, provider_id=result.provider_id)
            assert result.provider_id is not None
            assert result.provider_id.startswith(f"projects/{PROJECT}/messages/")
            assert request.project == PROJECT
            assert request.token == FCM_TOKEN
            assert request.message == build_message(call, app)
            assert request.message["android"]["priority"] == "high"
            assert "notification" not in request.message
            assert request.http_version == "2"
            assert request.headers["x-firebase-client"].startswith("fire-admin-python/")

    run(scenario)


def test_message_received_is_sent_as_data_and_the_token_is_reused(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, app):
            chat = notification("messageReceived", title="Bob", body="See you at 5")
            for sent in (notification("incomingCall"), chat):
                assert (await provider.send(sent)).outcome == "delivered"
            first, second = await emulator.wait_for_requests(2)
            assert second.message == build_message(chat, app)
            assert second.message["data"]["body"] == "See you at 5"
            assert "notification" not in second.message
            assert len(emulator.issued_tokens) == 1
            assert first.access_token == second.access_token

    run(scenario)


@pytest.mark.parametrize(
    ("error", "status"),
    [("UNREGISTERED", 404), ("INVALID_ARGUMENT", 400), ("SENDER_ID_MISMATCH", 403)],
)
def test_dead_tokens_are_token_invalid(
    tls: Tls, account: ServiceAccountKey, account_file: str, error: str, status: int
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            emulator.script(FCM_TOKEN, error=error)
            result = await provider.send(notification("incomingCall"))
            assert (result.outcome, result.status) == ("token-invalid", status)
            assert result.reason is not None and result.reason.startswith(error)

    run(scenario)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [("QUOTA_EXCEEDED", 429, 7.0), ("UNAVAILABLE", 503, 2.0), ("INTERNAL", 500, None)],
)
def test_429_and_5xx_are_retry_at_once_without_sdk_retries(
    tls: Tls,
    account: ServiceAccountKey,
    account_file: str,
    error: str,
    status: int,
    retry_after: float | None,
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            emulator.script(FCM_TOKEN, error=error, retry_after=retry_after)
            await provider.send(notification("incomingCall", push=replace(DEVICE, prid="warm")))
            started = time.monotonic()
            result = await provider.send(notification("incomingCall"))
            assert time.monotonic() - started < 1.0  # not the SDK's 4 retries over 7 s
            assert result == PushResult(
                "retry", status=status, reason=error, retry_after=retry_after
            )
            assert [r.token for r in emulator.requests] == ["warm", FCM_TOKEN]

    run(scenario)


def test_the_sender_retries_until_a_later_attempt_is_delivered(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            emulator.script(FCM_TOKEN, error="QUOTA_EXCEEDED", retry_after=0, times=1)
            sender = PushSender([provider])
            result = await sender.send(notification("incomingCall"), deadline=time.monotonic() + 5)
            assert result.outcome == "delivered"
            emulator.script(FCM_TOKEN, error="UNAVAILABLE", times=2)
            result = await sender.send(notification("incomingCall"), deadline=time.monotonic() + 5)
            assert result.outcome == "delivered"
            assert [r.status for r in emulator.requests] == [429, 200, 503, 503, 200]

    run(scenario)


def test_a_slow_reply_is_retry_after_the_timeout(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file, timeout=0.5) as (emulator, provider, _app):
            assert (await provider.send(notification("missedCall"))).outcome == "delivered"
            emulator.script(FCM_TOKEN, delay=5.0, times=1)
            started = time.monotonic()
            result = await provider.send(notification("incomingCall"))
            elapsed = time.monotonic() - started
            assert result == PushResult("retry", reason="timeout")
            assert 0.5 <= elapsed < 1.5
            assert (await provider.send(notification("incomingCall"))).outcome == "delivered"

    run(scenario)


def test_a_service_account_key_the_token_endpoint_rejects_fails(
    tls: Tls, account: ServiceAccountKey, tmp_path: Path
) -> None:
    impostor = make_service_account(PROJECT)  # same client_email, another key
    impostor_file = tmp_path / "impostor.json"
    impostor.write(impostor_file)

    async def scenario() -> None:
        async with fcm(tls, account, str(impostor_file)) as (emulator, provider, _app):
            started = time.monotonic()
            result = await provider.send(notification("incomingCall"))
            assert result == PushResult(
                "failed", reason="oauth2 invalid_grant: Invalid JWT Signature."
            )
            assert time.monotonic() - started < 2
            assert emulator.issued_tokens == []
            assert emulator.requests == []

    run(scenario)


def test_an_unreachable_token_endpoint_is_retry(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as closed:
            gone = closed.token_uri  # nothing listens there after this block
        async with fcm(tls, account, account_file, token_uri=gone) as (emulator, provider, _app):
            result = await provider.send(notification("incomingCall"))
            assert result == PushResult("retry", reason="oauth2 token endpoint unreachable")
            assert emulator.requests == []

    run(scenario)


def test_an_access_token_fcm_rejects_is_dropped_and_fetched_again(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            assert (await provider.send(notification("incomingCall"))).outcome == "delivered"
            emulator.revoke_tokens()
            result = await provider.send(notification("incomingCall"))
            assert (result.outcome, result.status, result.reason) == (
                "retry",
                401,
                "UNAUTHENTICATED",
            )
            assert (await provider.send(notification("incomingCall"))).outcome == "delivered"
            first, second = emulator.issued_tokens
            assert [r.access_token for r in emulator.requests] == [
                first.access_token,
                first.access_token,
                second.access_token,
            ]

    run(scenario)


def test_concurrent_first_sends_share_one_token_fetch(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            devices = [replace(DEVICE, prid=f"device-{n}") for n in range(10)]
            results = await asyncio.gather(
                *(provider.send(notification("incomingCall", push=d)) for d in devices)
            )
            assert {r.outcome for r in results} == {"delivered"}
            assert len(emulator.issued_tokens) == 1
            assert sorted(r.token or "" for r in emulator.requests) == sorted(
                d.prid for d in devices
            )

    run(scenario)


def test_each_app_verifies_its_endpoint_with_its_own_ca(
    tls: Tls, other_tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    """Two projects behind emulators with unrelated CAs, in one provider, with the process-wide
    CA variables pointing at a third CA: each app's ca_file decides, for the token endpoint and
    for FCM; the wrong CA is a failure, not a retry."""

    async def scenario() -> None:
        async with (
            FcmEmulator(tls.cert_file, tls.key_file) as first,
            FcmEmulator(other_tls.cert_file, other_tls.key_file) as second,
        ):
            for emulator in (first, second):
                emulator.add_service_account(account.client_email, account.public_key_pem)
            apps = [
                FcmAppConfig(
                    "first-project",
                    account_file,
                    endpoint=first.url,
                    token_uri=first.token_uri,
                    ca_file=tls.ca_file,
                ),
                FcmAppConfig(
                    "second-project",
                    account_file,
                    endpoint=second.url,
                    token_uri=second.token_uri,
                    ca_file=other_tls.ca_file,
                ),
                FcmAppConfig(  # a token from the first, FCM at the second, the first's CA
                    "mixed-project",
                    account_file,
                    endpoint=second.url,
                    token_uri=first.token_uri,
                    ca_file=tls.ca_file,
                ),
                FcmAppConfig(  # the token endpoint's certificate does not verify
                    "wrong-ca-project",
                    account_file,
                    endpoint=first.url,
                    token_uri=first.token_uri,
                    ca_file=other_tls.ca_file,
                ),
            ]
            provider = FcmProvider(apps)
            try:
                results = {
                    app.project_id: await provider.send(
                        notification("incomingCall", push=replace(DEVICE, param=app.project_id))
                    )
                    for app in apps
                }
            finally:
                await provider.close()
            assert results["first-project"].outcome == "delivered"
            assert results["second-project"].outcome == "delivered"
            certificate = PushResult("failed", reason="tls: certificate verify failed")
            assert results["mixed-project"] == certificate
            assert results["wrong-ca-project"] == certificate
            assert [r.project for r in first.requests] == ["first-project"]
            assert [r.project for r in second.requests] == ["second-project"]

    run(scenario)


def test_without_ca_file_the_environment_decides(
    tls: Tls, account: ServiceAccountKey, account_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ca_file = ""`` keeps the libraries' defaults: httpx reads SSL_CERT_FILE and requests
    REQUESTS_CA_BUNDLE (what an operator sets for a corporate proxy)."""
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_file)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_file)

    async def scenario() -> None:
        async with fcm(tls, account, account_file, ca_file="") as (_emulator, provider, _app):
            assert (await provider.send(notification("incomingCall"))).outcome == "delivered"

    run(scenario)


def test_the_service_account_files_own_token_uri_is_used_without_an_override(
    tls: Tls, account: ServiceAccountKey, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            path = tmp_path / "sa.json"
            ServiceAccountKey({**account.info, "token_uri": emulator.token_uri}, "").write(path)
            app = FcmAppConfig(PROJECT, str(path), endpoint=emulator.url, ca_file=tls.ca_file)
            provider = FcmProvider([app])
            try:
                assert (await provider.send(notification("incomingCall"))).outcome == "delivered"
            finally:
                await provider.close()
            assert len(emulator.issued_tokens) == 1

    run(scenario)


def test_logs_never_show_a_push_token_an_access_token_or_a_key(
    tls: Tls, account: ServiceAccountKey, account_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    access_tokens: list[str] = []

    async def scenario() -> None:
        async with fcm(tls, account, account_file) as (emulator, provider, _app):
            emulator.script("dead" + FCM_TOKEN, error="UNREGISTERED")
            emulator.script("odd" + FCM_TOKEN, error="THIRD_PARTY_AUTH_ERROR")
            for prid in (FCM_TOKEN, "dead" + FCM_TOKEN, "odd" + FCM_TOKEN):
                await provider.send(notification("incomingCall", push=replace(DEVICE, prid=prid)))
            access_tokens.extend(t.access_token for t in emulator.issued_tokens)

    run(scenario)
    client_side = ("sipush.push", "firebase_admin", "google", "httpx", "httpcore", "urllib3")
    logged = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if record.name.startswith(client_side)
    )
    assert "dGVzdC…B338" in logged
    for secret in (FCM_TOKEN, *access_tokens, account.info["private_key"][40:80]):
        assert secret not in logged


def test_close_removes_the_firebase_apps_without_warnings(
    tls: Tls, account: ServiceAccountKey, account_file: str
) -> None:
    names: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        async def scenario() -> None:
            async with fcm(tls, account, account_file) as (_emulator, provider, _app):
                names.extend(app.name for app in provider._apps)
                assert (await provider.send(notification("incomingCall"))).outcome == "delivered"
                assert all(name in firebase_admin._apps for name in names)

        run(scenario)
        gc.collect()
    assert names and not [name for name in names if name in firebase_admin._apps]
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
