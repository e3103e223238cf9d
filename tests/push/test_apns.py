"""The APNs provider: pure request building and classification, then the real ``aioapns``
client through :class:`ApnsProvider` against the local emulator over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aioapns.connection import APNsDevelopmentClientProtocol, APNsProductionClientProtocol
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sipush.errors import ConfigError
from sipush.push.apns import (
    ALERT_PAYLOAD_LIMIT,
    VOIP_PAYLOAD_LIMIT,
    ApnsAppConfig,
    ApnsProvider,
    ApnsRequest,
    Unsendable,
    aioapns_protocol_class,
    build_request,
    classify,
    collapse_id,
    cut_text,
    device_tokens,
    fit_payload,
    mask_token,
    payload_size,
)
from sipush.push.notification import Notification, NotificationKind, PushProvider, PushResult
from sipush.push.params import PushInfo
from sipush.testing.apns_emulator import ApnsEmulator
from tests.conftest import free_port
from tests.push.test_apns_emulator import BUNDLE, KEY_ID, TEAM_ID, WAIT, Pki, make_pki, run

VOIP = "a1" * 32
ALERT = "b2" * 32
AOR = "sip:alice@example.com"
CALL_ID = "a84b4c76e66710@pc33.example.com"

TWO_TOKENS = PushInfo(
    "apns",
    VOIP,
    param=f"{TEAM_ID}.{BUNDLE}.voip&remote",
    app_id=BUNDLE,
    platform="ios",
    alert_token=ALERT,
)
VOIP_ONLY = PushInfo("apns", VOIP, param=f"{TEAM_ID}.{BUNDLE}.voip", app_id=BUNDLE, platform="ios")
REMOTE_ONLY = PushInfo("apns", ALERT, param=f"{TEAM_ID}.{BUNDLE}", app_id=BUNDLE, platform="ios")
X_PUSH_ONE = PushInfo("apns", VOIP, app_id=BUNDLE, platform="ios", device_uid=VOIP, source="x-push")
LEGACY_VOIP = PushInfo("apns", VOIP, param=f"{BUNDLE}.voip.prod", app_id=BUNDLE, source="legacy")
LEGACY_REMOTE = PushInfo("apns", ALERT, param=f"{BUNDLE}.dev", app_id=BUNDLE, source="legacy")
APP = ApnsAppConfig(BUNDLE, team_id=TEAM_ID, key_id=KEY_ID, key_file="AuthKey.p8")


def notify(kind: NotificationKind, push: PushInfo = TWO_TOKENS, **fields: Any) -> Notification:
    defaults: dict[str, Any] = {
        "call_id": CALL_ID,
        "caller_name": "Bob",
        "caller_number": "1001",
    }
    return Notification(kind, push, AOR, **{**defaults, **fields})


CALLER = {"call_id": CALL_ID, "caller_name": "Bob", "caller_number": "1001"}


# -- build_request: snapshots -----------------------------------------------------------------

SNAPSHOTS: list[tuple[str, Notification, ApnsRequest | Unsendable]] = [
    (
        "incoming call: VoIP push on <bundle>.voip",
        notify("incomingCall", collapse_id="call-1", ttl=25),
        ApnsRequest(
            device_token=VOIP,
            topic=f"{BUNDLE}.voip",
            push_type="voip",
            priority=10,
            time_to_live=25,
            collapse_id="call-1",
            payload={"type": "incomingCall", "aor": AOR, **CALLER},
        ),
    ),
    (
        "cancel: a VoIP push too, so the app can end the CallKit call it reported",
        notify("cancelIncomingCall"),
        ApnsRequest(
            device_token=VOIP,
            topic=f"{BUNDLE}.voip",
            push_type="voip",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={"type": "cancelIncomingCall", "aor": AOR, **CALLER},
        ),
    ),
    (
        "missed call: alert push to the alert token",
        notify("missedCall", caller_name="Bob Smith"),
        ApnsRequest(
            device_token=ALERT,
            topic=BUNDLE,
            push_type="alert",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {
                    "alert": {"title": "Missed call", "body": "Bob Smith (1001)"},
                    "sound": "default",
                },
                "type": "missedCall",
                "aor": AOR,
                **CALLER,
                "caller_name": "Bob Smith",
            },
        ),
    ),
    (
        "message: title the sender, body the text, no call id",
        notify("messageReceived", call_id=None, body="See you at 5?"),
        ApnsRequest(
            device_token=ALERT,
            topic=BUNDLE,
            push_type="alert",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {"alert": {"title": "Bob", "body": "See you at 5?"}, "sound": "default"},
                "type": "messageReceived",
                "aor": AOR,
                "caller_name": "Bob",
                "caller_number": "1001",
            },
        ),
    ),
    (
        "voicemail with the caller's title given, unknown fields absent",
        notify("voicemailReceived", call_id=None, caller_name=None, title="Voicemail from 1001"),
        ApnsRequest(
            device_token=ALERT,
            topic=BUNDLE,
            push_type="alert",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {
                    "alert": {"title": "Voicemail from 1001", "body": "1001"},
                    "sound": "default",
                },
                "type": "voicemailReceived",
                "aor": AOR,
                "caller_number": "1001",
            },
        ),
    ),
    (
        "X-Push with one token: that token serves alerts too",
        notify("messageReceived", X_PUSH_ONE, body="hi"),
        ApnsRequest(
            device_token=VOIP,
            topic=BUNDLE,
            push_type="alert",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {"alert": {"title": "Bob", "body": "hi"}, "sound": "default"},
                "type": "messageReceived",
                "aor": AOR,
                **CALLER,
            },
        ),
    ),
    (
        "a VoIP-only device is never sent an alert (DeviceTokenNotForTopic would kill it)",
        notify("missedCall", VOIP_ONLY),
        Unsendable("NoAlertToken"),
    ),
    (
        "an alert-only device gets its call as an alert",
        notify("incomingCall", REMOTE_ONLY, caller_name=None),
        ApnsRequest(
            device_token=ALERT,
            topic=BUNDLE,
            push_type="alert",
            priority=10,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {"alert": {"title": "Incoming call", "body": "1001"}, "sound": "default"},
                "type": "incomingCall",
                "aor": AOR,
                "call_id": CALL_ID,
                "caller_number": "1001",
            },
        ),
    ),
    (
        "and its cancel as a background push (priority 5, the only one APNs allows)",
        notify("cancelIncomingCall", REMOTE_ONLY),
        ApnsRequest(
            device_token=ALERT,
            topic=BUNDLE,
            push_type="background",
            priority=5,
            time_to_live=30,
            collapse_id=None,
            payload={
                "aps": {"content-available": 1},
                "type": "cancelIncomingCall",
                "aor": AOR,
                **CALLER,
            },
        ),
    ),
]


@pytest.mark.parametrize(
    ("notification", "expected"),
    [(n, e) for _, n, e in SNAPSHOTS],
    ids=[what for what, _, _ in SNAPSHOTS],
)
def test_build_request_snapshot(
    notification: Notification, expected: ApnsRequest | Unsendable
) -> None:
    assert build_request(notification, APP) == expected


@pytest.mark.parametrize(
    ("push", "tokens"),
    [
        (TWO_TOKENS, (VOIP, ALERT)),
        (VOIP_ONLY, (VOIP, None)),
        (REMOTE_ONLY, (None, ALERT)),
        (X_PUSH_ONE, (VOIP, VOIP)),
        (LEGACY_VOIP, (VOIP, None)),
        (LEGACY_REMOTE, (None, ALERT)),
        (PushInfo("apns", ALERT, param=f"{TEAM_ID}.{BUNDLE}.remote", app_id=BUNDLE), (None, ALERT)),
    ],
)
def test_device_tokens_follow_what_the_register_declared(
    push: PushInfo, tokens: tuple[str | None, str | None]
) -> None:
    assert device_tokens(push) == tokens


def test_topic_overrides() -> None:
    app = ApnsAppConfig(
        BUNDLE, cert_file="c.pem", topic="com.example.alerts", voip_topic="com.example.calls.voip"
    )
    call = build_request(notify("incomingCall"), app)
    missed = build_request(notify("missedCall"), app)
    assert isinstance(call, ApnsRequest) and isinstance(missed, ApnsRequest)
    assert (call.topic, missed.topic) == ("com.example.calls.voip", "com.example.alerts")


def test_the_token_stays_out_of_repr() -> None:
    request = build_request(notify("incomingCall"), APP)
    assert isinstance(request, ApnsRequest)
    assert VOIP not in repr(request)
    assert request.masked_token == f"{VOIP[:6]}…{VOIP[-4:]}"
    assert mask_token("abc") == "…"


def test_long_collapse_ids_are_hashed_stably() -> None:
    assert collapse_id("x" * 64) == "x" * 64
    long_id = "é" * 33  # 66 bytes
    assert collapse_id(long_id) == collapse_id(long_id)
    hashed = collapse_id(long_id)
    assert hashed is not None and len(hashed) == 64 and hashed != long_id


def test_a_long_message_is_cut_to_fit_4096_bytes() -> None:
    text = "ça va? 🙂 " * 1000
    request = build_request(notify("messageReceived", body=text), APP)
    assert isinstance(request, ApnsRequest)
    body = request.payload["aps"]["alert"]["body"]
    assert payload_size(request.payload) <= ALERT_PAYLOAD_LIMIT
    assert payload_size(request.payload) > ALERT_PAYLOAD_LIMIT - 16  # not cut more than needed
    assert body.endswith("…") and text.startswith(body[:-1])


def test_a_huge_caller_name_is_cut_to_fit_a_voip_push() -> None:
    request = build_request(notify("incomingCall", caller_name="B" * 6000), APP)
    assert isinstance(request, ApnsRequest)
    assert payload_size(request.payload) <= VOIP_PAYLOAD_LIMIT
    assert request.payload["caller_name"].endswith("B…")


def test_a_payload_that_cannot_fit_is_unsendable() -> None:
    notification = notify("incomingCall", caller_name=None, call_id="c" * 6000)
    assert build_request(notification, APP) == Unsendable("PayloadTooLarge")
    assert fit_payload({"aor": "x" * 10}, 5) is None


@pytest.mark.parametrize(
    ("text", "max_bytes", "expected"),
    [
        ("hello", 5, "hello"),
        ("hello world", 6, "hello…"),
        ("héllo", 2, "h…"),  # never inside the two bytes of é
        ("cafe\u0301 au lait", 5, "caf…"),  # not between e and its combining accent
        ("ok 👨\u200d👩\u200d👧 family", 10, "ok…"),  # not inside a ZWJ sequence
        ("ok 👍🏽 yes", 7, "ok…"),  # not between the thumb and its skin tone
        ("abc", -3, "…"),
    ],
)
def test_cut_text_cuts_between_whole_characters(text: str, max_bytes: int, expected: str) -> None:
    assert cut_text(text, max_bytes) == expected


# -- classify ---------------------------------------------------------------------------------

CLASSIFY: list[tuple[int, str | None, float | None, PushResult]] = [
    (200, None, None, PushResult("delivered", 200)),
    (410, "Unregistered", None, PushResult("token-invalid", 410, "Unregistered")),
    (410, "ExpiredToken", None, PushResult("token-invalid", 410, "ExpiredToken")),
    (400, "BadDeviceToken", None, PushResult("token-invalid", 400, "BadDeviceToken")),
    (
        400,
        "DeviceTokenNotForTopic",
        None,
        PushResult("token-invalid", 400, "DeviceTokenNotForTopic"),
    ),
    (400, "BadTopic", None, PushResult("failed", 400, "BadTopic")),
    (403, "InvalidProviderToken", None, PushResult("failed", 403, "InvalidProviderToken")),
    (413, "PayloadTooLarge", None, PushResult("failed", 413, "PayloadTooLarge")),
    (429, "TooManyRequests", 7.0, PushResult("retry", 429, "TooManyRequests", retry_after=7.0)),
    (500, "InternalServerError", None, PushResult("retry", 500, "InternalServerError")),
    (503, "ServiceUnavailable", None, PushResult("retry", 503, "ServiceUnavailable")),
]


@pytest.mark.parametrize(("status", "reason", "retry_after", "expected"), CLASSIFY)
def test_classify(
    status: int, reason: str | None, retry_after: float | None, expected: PushResult
) -> None:
    assert classify(status, reason, retry_after) == expected


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"app_id": ""}, "app_id"),
        ({"app_id": BUNDLE}, "exactly one"),
        ({"app_id": BUNDLE, "key_file": "k.p8", "cert_file": "c.pem"}, "exactly one"),
        ({"app_id": BUNDLE, "key_file": "k.p8", "team_id": TEAM_ID}, "team_id and key_id"),
        ({"app_id": BUNDLE, "cert_file": "c.pem", "endpoint": "localhost"}, "HOST:PORT"),
        ({"app_id": BUNDLE, "cert_file": "c.pem", "endpoint": "h:99999"}, "HOST:PORT"),
    ],
)
def test_app_config_is_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ApnsAppConfig(**fields)


def test_provider_checks_files_at_construction(pki: Pki, tmp_path: Path) -> None:
    p384 = tmp_path / "p384.p8"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cases: list[tuple[list[ApnsAppConfig], str]] = [
        (
            [
                ApnsAppConfig(
                    BUNDLE, key_file=str(tmp_path / "none.p8"), team_id=TEAM_ID, key_id=KEY_ID
                )
            ],
            "cannot read",
        ),
        (
            [ApnsAppConfig(BUNDLE, key_file=str(pki.ca_file), team_id=TEAM_ID, key_id=KEY_ID)],
            "cannot read",
        ),
        ([ApnsAppConfig(BUNDLE, key_file=str(p384), team_id=TEAM_ID, key_id=KEY_ID)], "P-256"),
        ([ApnsAppConfig(BUNDLE, cert_file=str(pki.ca_file))], "cert_file"),
        ([ApnsAppConfig(BUNDLE, cert_file=str(pki.client_cert), ca_file="nope.pem")], "ca_file"),
        ([ApnsAppConfig(BUNDLE, cert_file=str(pki.client_cert))] * 2, "twice"),
    ]
    for apps, message in cases:
        with pytest.raises(ConfigError, match=message):
            ApnsProvider(apps)


def test_aioapns_protocol_class_targets_the_right_host() -> None:
    sandbox = aioapns_protocol_class(ApnsAppConfig(BUNDLE, cert_file="c.pem", sandbox=True))
    production = aioapns_protocol_class(ApnsAppConfig(BUNDLE, cert_file="c.pem"))
    relay = aioapns_protocol_class(
        ApnsAppConfig(BUNDLE, cert_file="c.pem", endpoint="[::1]:2197", sandbox=True)
    )
    assert issubclass(sandbox, APNsDevelopmentClientProtocol)
    assert (sandbox.APNS_SERVER, sandbox.APNS_PORT) == ("api.development.push.apple.com", 443)
    assert issubclass(production, APNsProductionClientProtocol)
    assert (production.APNS_SERVER, production.APNS_PORT) == ("api.push.apple.com", 443)
    assert issubclass(relay, APNsDevelopmentClientProtocol)
    assert (relay.APNS_SERVER, relay.APNS_PORT) == ("::1", 2197)
    assert APNsDevelopmentClientProtocol.APNS_SERVER == "api.development.push.apple.com"


def test_handles_devices_of_configured_apps_only(pki: Pki) -> None:
    provider = ApnsProvider([ApnsAppConfig(BUNDLE, cert_file=str(pki.client_cert))])
    assert provider.handles(TWO_TOKENS)
    assert provider.handles(PushInfo("apns", VOIP))  # no app named: the only app
    assert not provider.handles(PushInfo("apns", VOIP, app_id="org.other.app"))
    assert not provider.handles(PushInfo("fcm", "fcm-token", app_id=BUNDLE))
    two = ApnsProvider(
        [
            ApnsAppConfig(BUNDLE, cert_file=str(pki.client_cert)),
            ApnsAppConfig("org.other.app", cert_file=str(pki.client_cert)),
        ]
    )
    assert not two.handles(PushInfo("apns", VOIP))  # which one? none
    as_provider: PushProvider = provider  # mypy checks the interface
    assert as_provider.name == "apns"


# -- the real aioapns client against the emulator ---------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("apns-pki"))


def token_app(pki: Pki, emu: ApnsEmulator, **fields: Any) -> ApnsAppConfig:
    values: dict[str, Any] = {
        "team_id": TEAM_ID,
        "key_id": KEY_ID,
        "key_file": str(pki.provider_key),
        "endpoint": emu.endpoint,
        "ca_file": str(pki.ca_file),
    }
    values.update(fields)
    return ApnsAppConfig(values.pop("app_id", BUNDLE), **values)


def started(pki: Pki) -> ApnsEmulator:
    emu = ApnsEmulator(pki.server_context())
    emu.add_key(TEAM_ID, KEY_ID, pki.provider_key.read_text())
    return emu


def test_token_auth_voip_push_reaches_the_emulator(pki: Pki) -> None:
    async def scenario() -> None:
        async with started(pki) as emu:
            provider = ApnsProvider([token_app(pki, emu)])
            try:
                notification = notify("incomingCall", ttl=20, collapse_id="call-1")
                before = time.time()
                result = await provider.send(notification)
                [push] = await emu.wait_for_requests(1, timeout=WAIT)
            finally:
                await provider.close()
        assert result == PushResult("delivered", 200, provider_id=push.apns_id)
        assert push.token == VOIP
        assert push.auth == "token" and push.principal == f"{TEAM_ID}/{KEY_ID}"
        assert push.headers[":method"] == "POST"
        assert push.headers[":path"] == f"/3/device/{VOIP}"
        assert push.topic == f"{BUNDLE}.voip"
        assert push.push_type == "voip"
        assert push.priority == 10
        assert push.collapse_id == "call-1"
        assert push.expiration is not None
        assert int(before) + 20 <= push.expiration <= int(time.time()) + 20
        assert push.payload == {"type": "incomingCall", "aor": AOR, **CALLER}

    run(scenario())


def test_message_goes_as_an_alert_to_the_alert_token(pki: Pki) -> None:
    async def scenario() -> None:
        async with started(pki) as emu:
            provider = ApnsProvider([token_app(pki, emu)])
            try:
                result = await provider.send(notify("messageReceived", body="lunch?"))
                [push] = await emu.wait_for_requests(1, timeout=WAIT)
            finally:
                await provider.close()
        assert result.outcome == "delivered"
        assert (push.token, push.topic, push.push_type, push.priority) == (
            ALERT,
            BUNDLE,
            "alert",
            10,
        )
        assert push.payload is not None
        assert push.payload["aps"]["alert"] == {"title": "Bob", "body": "lunch?"}

    run(scenario())


def test_certificate_auth_push(pki: Pki) -> None:
    async def scenario() -> None:
        async with started(pki) as emu:
            app = ApnsAppConfig(
                BUNDLE,
                cert_file=str(pki.client_cert),
                endpoint=emu.endpoint,
                ca_file=str(pki.ca_file),
            )
            provider = ApnsProvider([app])
            try:
                result = await provider.send(notify("incomingCall"))
                [push] = await emu.wait_for_requests(1, timeout=WAIT)
            finally:
                await provider.close()
        assert result.outcome == "delivered"
        assert push.auth == "certificate"
        assert "authorization" not in push.headers
        assert (push.topic, push.push_type) == (f"{BUNDLE}.voip", "voip")

    run(scenario())


def test_sandbox_and_production_endpoints_are_each_overridable(pki: Pki) -> None:
    beta = "com.example.beta"

    async def scenario() -> None:
        async with started(pki) as production, started(pki) as sandbox:
            sandbox_endpoint = f"localhost:{sandbox.port}"  # verified against the SAN localhost
            provider = ApnsProvider(
                [
                    token_app(pki, production),
                    token_app(pki, sandbox, app_id=beta, endpoint=sandbox_endpoint, sandbox=True),
                ]
            )
            beta_device = PushInfo("apns", VOIP, app_id=beta, source="x-push")
            try:
                results = [
                    await provider.send(notify("incomingCall")),
                    await provider.send(notify("incomingCall", beta_device)),
                ]
                [to_production] = await production.wait_for_requests(1, timeout=WAIT)
                [to_sandbox] = await sandbox.wait_for_requests(1, timeout=WAIT)
            finally:
                await provider.close()
            assert len(production.requests) == len(sandbox.requests) == 1
        assert [r.outcome for r in results] == ["delivered", "delivered"]
        assert (to_production.topic, to_production.headers["host"]) == (
            f"{BUNDLE}.voip",
            "127.0.0.1",
        )
        assert (to_sandbox.topic, to_sandbox.headers["host"]) == (f"{beta}.voip", "localhost")

    run(scenario())


def test_a_key_apple_does_not_know_fails_with_403(pki: Pki) -> None:
    async def scenario() -> None:
        async with started(pki) as emu:
            provider = ApnsProvider([token_app(pki, emu, key_file=str(pki.other_key))])
            try:
                result = await provider.send(notify("incomingCall"))
            finally:
                await provider.close()
        assert (result.outcome, result.status, result.reason) == (
            "failed",
            403,
            "InvalidProviderToken",
        )

    run(scenario())


def test_dead_tokens_are_token_invalid(pki: Pki) -> None:
    gone, bad = "c3" * 32, "d4" * 32

    async def scenario() -> None:
        async with started(pki) as emu:
            emu.script(gone, 410)
            emu.script(bad, 400)
            provider = ApnsProvider([token_app(pki, emu)])
            try:
                results = [
                    await provider.send(notify("incomingCall", PushInfo("apns", gone))),
                    await provider.send(notify("incomingCall", PushInfo("apns", bad))),
                ]
            finally:
                await provider.close()
        assert [(r.outcome, r.status, r.reason) for r in results] == [
            ("token-invalid", 410, "Unregistered"),
            ("token-invalid", 400, "BadDeviceToken"),
        ]

    run(scenario())


def test_429_and_503_are_retry_and_a_later_try_works(pki: Pki) -> None:
    busy, down = "e5" * 32, "f6" * 32

    async def scenario() -> None:
        async with started(pki) as emu:
            emu.script(busy, 429, retry_after=7, times=1)
            emu.script(down, 503, times=1)
            provider = ApnsProvider([token_app(pki, emu)])
            busy_call = notify("incomingCall", PushInfo("apns", busy))
            down_call = notify("incomingCall", PushInfo("apns", down))
            try:
                first = [await provider.send(busy_call), await provider.send(down_call)]
                again = [await provider.send(busy_call), await provider.send(down_call)]
            finally:
                await provider.close()
        assert [(r.outcome, r.status, r.reason, r.retry_after) for r in first] == [
            ("retry", 429, "TooManyRequests", 7.0),
            ("retry", 503, "ServiceUnavailable", None),
        ]
        assert [r.outcome for r in again] == ["delivered", "delivered"]

    run(scenario())


def test_a_slow_reply_is_retry_after_the_timeout_and_the_connection_survives(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    slow = "a7" * 32

    async def scenario() -> None:
        async with started(pki) as emu:
            emu.script(slow, delay=0.6)
            provider = ApnsProvider([token_app(pki, emu)], timeout=0.3)
            try:
                begun = time.monotonic()
                result = await provider.send(notify("incomingCall", PushInfo("apns", slow)))
                waited = time.monotonic() - begun
                await asyncio.sleep(0.5)  # the late 200 arrives for a send nobody waits for
                after = await provider.send(notify("incomingCall"))
            finally:
                await provider.close()
            assert [r.status for r in emu.requests] == [200, 200]
        assert (result.outcome, result.reason, result.status) == ("retry", "timeout", None)
        assert 0.3 <= waited < 0.6
        assert after.outcome == "delivered"

    with caplog.at_level(logging.WARNING):
        run(scenario())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []  # no InvalidStateError, no fatal protocol error, one connection


def test_no_service_is_retry_without_waiting_for_the_timeout(pki: Pki) -> None:
    async def scenario() -> None:
        app = ApnsAppConfig(
            BUNDLE,
            team_id=TEAM_ID,
            key_id=KEY_ID,
            key_file=str(pki.provider_key),
            endpoint=f"127.0.0.1:{free_port()}",
            ca_file=str(pki.ca_file),
        )
        provider = ApnsProvider([app], timeout=WAIT, connection_attempts=1)
        try:
            begun = time.monotonic()
            result = await provider.send(notify("incomingCall"))
            assert time.monotonic() - begun < WAIT - 1  # aioapns sleeps 1 s after a failure
        finally:
            await provider.close()
        assert (result.outcome, result.reason) == ("retry", "connection")

    run(scenario())


def test_unsendable_and_unknown_apps_send_nothing(pki: Pki) -> None:
    async def scenario() -> None:
        async with started(pki) as emu:
            provider = ApnsProvider([token_app(pki, emu)])
            try:
                no_alert = await provider.send(notify("missedCall", VOIP_ONLY))
                other = await provider.send(
                    notify("incomingCall", PushInfo("apns", VOIP, app_id="org.other.app"))
                )
            finally:
                await provider.close()
            assert emu.requests == []
        assert no_alert == PushResult("failed", reason="NoAlertToken")
        assert other == PushResult("failed", reason="NoCredentials")

    run(scenario())


def test_concurrent_pushes_share_a_connection(pki: Pki) -> None:
    tokens = [f"{n:064x}" for n in range(1, 41)]

    async def scenario() -> None:
        async with started(pki) as emu:
            provider = ApnsProvider([token_app(pki, emu)])
            try:
                results = await asyncio.gather(
                    *(
                        provider.send(notify("incomingCall", PushInfo("apns", token)))
                        for token in tokens
                    )
                )
            finally:
                await provider.close()
            assert sorted(r.token for r in emu.requests) == tokens
            assert len({r.apns_id for r in emu.requests}) == len(tokens)
        assert {r.outcome for r in results} == {"delivered"}

    run(scenario())
