"""The local APNs emulator, driven by a raw HTTP/2 client over real TLS on 127.0.0.1.

These tests check the emulator itself against Apple's documented behaviour (status, reason,
what is recorded) without sipush's provider in the way; ``test_apns.py`` drives the real
``aioapns`` client through :class:`sipush.push.apns.ApnsProvider` against it. The helpers
here (a throwaway PKI, a provider key, the raw client) are shared with that file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sipush.testing.apns_emulator import (
    ALERT_PAYLOAD_LIMIT,
    VOIP_PAYLOAD_LIMIT,
    ApnsEmulator,
    server_context,
)
from tests.conftest import free_port

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
BUNDLE = "com.example.app"
TOKEN = "ab" * 32
WAIT = 5.0  # seconds any single exchange may take on loopback
SERVER_NAMES = ("127.0.0.1", "localhost", "api.push.apple.com", "api.development.push.apple.com")


# -- shared helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Throwaway files: a CA, the emulator's certificate, client certificates, .p8 keys."""

    ca: trustme.CA
    ca_file: Path  # trust this to verify the emulator; it also signs client certificates
    server_cert: Path
    server_key: Path
    client_cert: Path  # cert + key in one PEM, as aioapns takes it
    stranger_cert: Path  # a client certificate from another CA
    provider_key: Path  # the .p8 the emulator knows
    other_key: Path  # a .p8 it does not know

    def server_context(self, *, certificate_auth: bool = True) -> ssl.SSLContext:
        client_ca = str(self.ca_file) if certificate_auth else ""
        return server_context(str(self.server_cert), str(self.server_key), client_ca)

    def client_context(self, client_cert: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert is not None:
            context.load_cert_chain(str(client_cert))
        return context


def new_p8(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def make_pki(directory: Path) -> Pki:
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ca.issue_cert(*SERVER_NAMES)
    server_cert, server_key = directory / "server.pem", directory / "server.key"
    server.cert_chain_pems[0].write_to_path(str(server_cert))
    server.private_key_pem.write_to_path(str(server_key))
    client_cert = directory / "client.pem"
    ca.issue_cert("push-client.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(client_cert)
    )
    stranger_cert = directory / "stranger.pem"
    trustme.CA().issue_cert("x.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(stranger_cert)
    )
    return Pki(
        ca=ca,
        ca_file=ca_file,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        stranger_cert=stranger_cert,
        provider_key=new_p8(directory / "AuthKey.p8"),
        other_key=new_p8(directory / "OtherKey.p8"),
    )


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


def provider_jwt(
    key_file: Path, *, team_id: str = TEAM_ID, key_id: str = KEY_ID, iat: float | None = None
) -> str:
    issued_at = int(time.time() if iat is None else iat)
    return jwt.encode(
        {"iss": team_id, "iat": issued_at},
        key_file.read_text(),
        algorithm="ES256",
        headers={"kid": key_id},
    )


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    data_frames: int

    @property
    def reason(self) -> str | None:
        return json.loads(self.body).get("reason") if self.body else None


async def h2_request(
    endpoint: tuple[str, int],
    context: ssl.SSLContext,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    server_hostname: str = "127.0.0.1",
) -> Reply:
    """One request on a fresh HTTP/2 connection, prior knowledge, no ALPN (like aioapns)."""
    reader, writer = await asyncio.open_connection(
        *endpoint, ssl=context, server_hostname=server_hostname
    )
    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, headers, end_stream=not body)
    if body:
        conn.send_data(stream_id, body, end_stream=True)
    writer.write(conn.data_to_send())
    status, reply_headers, data, frames = 0, {}, b"", 0
    try:
        async with asyncio.timeout(WAIT):
            ended = False
            while not ended:
                chunk = await reader.read(65536)
                assert chunk, "the emulator closed the connection"
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.ResponseReceived):
                        reply_headers = {str(k): str(v) for k, v in event.headers}
                        status = int(reply_headers[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        frames += 1
                        data += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                writer.write(conn.data_to_send())
    finally:
        writer.close()
    return Reply(status, reply_headers, data, frames)


def push_headers(
    token: str = TOKEN,
    *,
    authorization: str | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> list[tuple[str, str]]:
    """A valid VoIP push's headers; ``overrides`` replaces values, ``None`` drops a header."""
    values: dict[str, str | None] = {
        ":method": "POST",
        ":scheme": "https",
        ":path": f"/3/device/{token}",
        ":authority": "api.push.apple.com",
        "apns-id": str(uuid.uuid4()),
        "apns-topic": f"{BUNDLE}.voip",
        "apns-push-type": "voip",
        "apns-priority": "10",
        "apns-expiration": str(int(time.time()) + 30),
        "authorization": authorization,
    }
    values.update(overrides or {})
    return [(name, value) for name, value in values.items() if value is not None]


VOIP_BODY = json.dumps({"type": "incomingCall", "aor": "sip:alice@example.com"}).encode()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("apns-pki"))


# -- the happy path ---------------------------------------------------------------------------


def test_token_auth_push_is_answered_200_on_headers_and_recorded(pki: Pki) -> None:
    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            emu.add_key(TEAM_ID, KEY_ID, pki.provider_key.read_text())  # the .p8 itself
            headers = push_headers(authorization=f"bearer {provider_jwt(pki.provider_key)}")
            before = time.time()
            reply = await h2_request((emu.host, emu.port), pki.client_context(), headers, VOIP_BODY)
            assert reply.status == 200
            assert reply.data_frames == 0  # aioapns chokes on an empty DATA frame after a 200
            assert reply.headers["apns-id"] == dict(headers)["apns-id"]
            [recorded] = await emu.wait_for_requests(1, timeout=WAIT)
            assert recorded.token == TOKEN
            assert recorded.topic == f"{BUNDLE}.voip"
            assert recorded.push_type == "voip"
            assert recorded.priority == 10
            assert recorded.payload == {"type": "incomingCall", "aor": "sip:alice@example.com"}
            assert recorded.auth == "token"
            assert recorded.principal == f"{TEAM_ID}/{KEY_ID}"
            assert before <= recorded.arrived <= time.time()
            assert (recorded.status, recorded.reason) == (200, None)
            assert emu.delivered == [recorded]

    run(scenario())


def test_certificate_auth_needs_a_client_certificate_from_the_ca(pki: Pki) -> None:
    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            endpoint = (emu.host, emu.port)
            context = pki.client_context(pki.client_cert)
            reply = await h2_request(endpoint, context, push_headers(), VOIP_BODY)
            assert reply.status == 200
            [recorded] = emu.requests
            assert (recorded.auth, recorded.principal) == ("certificate", "*")
            assert "authorization" not in recorded.headers
            # no certificate and no token: token auth, which is missing
            reply = await h2_request(endpoint, pki.client_context(), push_headers(), VOIP_BODY)
            assert (reply.status, reply.reason) == (403, "MissingProviderToken")
            # a certificate from another CA: the server ends the TLS 1.3 handshake, the client
            # sees the connection closed (or the alert), nothing is recorded
            with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
                context = pki.client_context(pki.stranger_cert)
                await h2_request(endpoint, context, push_headers(), VOIP_BODY)
            assert len(emu.requests) == 2

    run(scenario())


def test_an_apple_style_certificate_pushes_only_to_its_own_topics(pki: Pki, tmp_path: Path) -> None:
    apple_cert = tmp_path / "apple.pem"
    leaf = pki.ca.issue_cert("push.example.com", common_name=f"Apple Push Services: {BUNDLE}")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(apple_cert))

    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            endpoint, context = (emu.host, emu.port), pki.client_context(apple_cert)
            reply = await h2_request(endpoint, context, push_headers(), VOIP_BODY)
            assert reply.status == 200
            assert emu.requests[0].principal == BUNDLE
            other = push_headers(overrides={"apns-topic": "org.other.app.voip"})
            reply = await h2_request(endpoint, context, other, VOIP_BODY)
            assert (reply.status, reply.reason) == (400, "TopicDisallowed")

    run(scenario())


# -- Apple's checks, one table ----------------------------------------------------------------

GOOD = object()  # "a valid provider token"

REJECTIONS: list[tuple[str, dict[str, str | None], bytes, int, str]] = [
    ("no token", {"authorization": None}, VOIP_BODY, 403, "MissingProviderToken"),
    ("not bearer", {"authorization": "basic abc"}, VOIP_BODY, 403, "InvalidProviderToken"),
    ("not a JWT", {"authorization": "bearer abc.def"}, VOIP_BODY, 403, "InvalidProviderToken"),
    ("GET", {":method": "GET"}, b"", 405, "MethodNotAllowed"),
    ("bad path", {":path": "/3/devices/" + TOKEN}, VOIP_BODY, 404, "BadPath"),
    ("no device token", {":path": "/3/device/"}, VOIP_BODY, 400, "MissingDeviceToken"),
    ("non-hex token", {":path": "/3/device/" + "zz" * 32}, VOIP_BODY, 400, "BadDeviceToken"),
    ("odd token", {":path": "/3/device/" + "a" * 63}, VOIP_BODY, 400, "BadDeviceToken"),
    ("bad apns-id", {"apns-id": "123"}, VOIP_BODY, 400, "BadMessageId"),
    ("no topic", {"apns-topic": None}, VOIP_BODY, 400, "MissingTopic"),
    ("no push type", {"apns-push-type": None}, VOIP_BODY, 400, "InvalidPushType"),
    ("unknown type", {"apns-push-type": "fax"}, VOIP_BODY, 400, "InvalidPushType"),
    ("voip, plain topic", {"apns-topic": BUNDLE}, VOIP_BODY, 400, "InvalidPushType"),
    ("alert, voip topic", {"apns-push-type": "alert"}, VOIP_BODY, 400, "InvalidPushType"),
    ("priority 7", {"apns-priority": "7"}, VOIP_BODY, 400, "BadPriority"),
    (
        "background at 10",
        {"apns-push-type": "background", "apns-topic": BUNDLE},
        VOIP_BODY,
        400,
        "BadPriority",
    ),
    ("expiration", {"apns-expiration": "soon"}, VOIP_BODY, 400, "BadExpirationDate"),
    ("collapse id", {"apns-collapse-id": "x" * 65}, VOIP_BODY, 400, "BadCollapseId"),
    ("empty payload", {}, b"", 400, "PayloadEmpty"),
    ("not JSON", {}, b"{not json", 400, "BadPayload"),
    ("a JSON list", {}, b"[]", 400, "BadPayload"),
    ("VoIP too large", {}, b" " * (VOIP_PAYLOAD_LIMIT + 1), 413, "PayloadTooLarge"),
    (
        "alert too large",
        {"apns-push-type": "alert", "apns-topic": BUNDLE},
        b" " * (ALERT_PAYLOAD_LIMIT + 1),
        413,
        "PayloadTooLarge",
    ),
]


def test_requests_are_checked_like_apple_does(pki: Pki) -> None:
    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            emu.add_key(TEAM_ID, KEY_ID, pki.provider_key.read_text())
            endpoint, context = (emu.host, emu.port), pki.client_context()
            seen = []
            for what, overrides, body, _, _ in REJECTIONS:
                token = provider_jwt(pki.provider_key)
                headers = push_headers(
                    authorization=f"bearer {token}", overrides={"apns-id": None, **overrides}
                )
                reply = await h2_request(endpoint, context, headers, body)
                seen.append((what, reply.status, reply.reason))
                assert reply.headers.get("apns-id"), what  # always echoed (or made up)
            assert seen == [(what, status, reason) for what, _, _, status, reason in REJECTIONS]
            assert [r.status for r in emu.requests] == [status for *_, status, _ in REJECTIONS]
            # limits are inclusive: exactly 5120 bytes of VoIP payload is fine
            padded = VOIP_BODY[:-1] + b" " * (VOIP_PAYLOAD_LIMIT - len(VOIP_BODY)) + b"}"
            token = provider_jwt(pki.provider_key)
            headers = push_headers(authorization=f"bearer {token}")
            assert (await h2_request(endpoint, context, headers, padded)).status == 200

    run(scenario())


def test_provider_tokens_are_verified(pki: Pki) -> None:
    now = time.time()
    cases = [
        ("valid", provider_jwt(pki.provider_key), 200, None),
        ("other key", provider_jwt(pki.other_key), 403, "InvalidProviderToken"),
        ("unknown kid", provider_jwt(pki.provider_key, key_id="NOPE"), 403, "InvalidProviderToken"),
        ("other team", provider_jwt(pki.provider_key, team_id="T2"), 403, "InvalidProviderToken"),
        (
            "iat 2 h ago",
            provider_jwt(pki.provider_key, iat=now - 7200),
            403,
            "ExpiredProviderToken",
        ),
        ("iat 59 min ago", provider_jwt(pki.provider_key, iat=now - 3540), 200, None),
        ("iat in 1 h", provider_jwt(pki.provider_key, iat=now + 3600), 403, "InvalidProviderToken"),
        (
            "HS256",
            jwt.encode({"iss": TEAM_ID, "iat": int(now)}, "s" * 32, headers={"kid": KEY_ID}),
            403,
            "InvalidProviderToken",
        ),
    ]

    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context(certificate_auth=False)) as emu:
            public = ec_public_pem(pki.provider_key)
            emu.add_key(TEAM_ID, KEY_ID, public)
            seen = []
            for what, token, _, _ in cases:
                headers = push_headers(authorization=f"bearer {token}")
                reply = await h2_request(
                    (emu.host, emu.port), pki.client_context(), headers, VOIP_BODY
                )
                seen.append((what, reply.status, reply.reason))
            assert seen == [(what, status, reason) for what, _, status, reason in cases]

    run(scenario())


def ec_public_pem(p8: Path) -> bytes:
    private = serialization.load_pem_private_key(p8.read_bytes(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_add_key_refuses_what_is_not_an_ec_p256_key(tmp_path: Path) -> None:
    rsa_like = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    emu = ApnsEmulator(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    with pytest.raises(ValueError, match="P-256"):
        emu.add_key(TEAM_ID, KEY_ID, rsa_like)


# -- scripted answers -------------------------------------------------------------------------


def test_scripted_errors_per_token(pki: Pki) -> None:
    gone, bad, busy, down, flaky = ("01" * 32, "02" * 32, "03" * 32, "04" * 32, "05" * 32)

    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            emu.script(gone, 410, timestamp_ms=1_700_000_000_000)
            emu.script(bad.upper(), 400)  # tokens compare case-insensitively
            emu.script(busy, 429, retry_after=7)
            emu.script(down, 503)
            emu.script(flaky, 500, times=2)
            endpoint, context = (emu.host, emu.port), pki.client_context(pki.client_cert)

            async def push(token: str) -> Reply:
                return await h2_request(endpoint, context, push_headers(token), VOIP_BODY)

            reply = await push(gone)
            assert (reply.status, reply.reason) == (410, "Unregistered")
            assert json.loads(reply.body)["timestamp"] == 1_700_000_000_000
            assert (await push(bad)).reason == "BadDeviceToken"
            reply = await push(busy)
            assert (reply.status, reply.reason, reply.headers["retry-after"]) == (
                429,
                "TooManyRequests",
                "7",
            )
            assert ((await push(down)).status, (await push(down)).status) == (503, 503)
            flaky_statuses = [(await push(flaky)).status for _ in range(3)]
            assert flaky_statuses == [500, 500, 200]
            emu.unscript(gone)
            assert (await push(gone)).status == 200
            assert [r.status for r in emu.requests][-4:] == [500, 500, 200, 200]

    run(scenario())


def test_a_slow_reply_is_recorded_on_arrival_and_answered_late(pki: Pki) -> None:
    slow = "06" * 32

    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            emu.script(slow, delay=0.4)
            endpoint, context = (emu.host, emu.port), pki.client_context(pki.client_cert)
            started = time.monotonic()
            pending = asyncio.create_task(
                h2_request(endpoint, context, push_headers(slow), VOIP_BODY)
            )
            [recorded] = await emu.wait_for_requests(1, timeout=WAIT)
            assert time.monotonic() - started < 0.3  # recorded before the delay
            reply = await pending
            assert reply.status == 200
            assert time.monotonic() - started >= 0.4
            assert recorded.status == 200

    run(scenario())


def test_close_drops_pending_slow_replies(pki: Pki) -> None:
    async def scenario() -> None:
        emu = ApnsEmulator(pki.server_context())
        await emu.start()
        emu.script(TOKEN, delay=30)
        context = pki.client_context(pki.client_cert)
        pending = asyncio.create_task(
            h2_request((emu.host, emu.port), context, push_headers(), VOIP_BODY)
        )
        await emu.wait_for_requests(1, timeout=WAIT)
        started = time.monotonic()
        await emu.close()
        assert time.monotonic() - started < 1.0
        with pytest.raises(AssertionError, match="closed the connection"):
            await pending

    run(scenario())


def test_wait_for_requests_times_out_saying_how_many_came(pki: Pki) -> None:
    async def scenario() -> None:
        async with ApnsEmulator(pki.server_context()) as emu:
            with pytest.raises(TimeoutError, match="0 request"):
                await emu.wait_for_requests(1, timeout=0.05)

    run(scenario())


# -- the command line -------------------------------------------------------------------------


def test_cli_serves_scripts_and_stops_on_sigterm(pki: Pki) -> None:
    port, gone = free_port(), "07" * 32
    command = [
        sys.executable,
        "-m",
        "sipush.testing.apns_emulator",
        "--port",
        str(port),
        "--cert",
        str(pki.server_cert),
        "--key",
        str(pki.server_key),
        "--provider-key",
        f"{TEAM_ID}:{KEY_ID}:{pki.provider_key}",
        "--script",
        f"{gone}=410",
    ]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            _drive_cli(process, pki, port, gone)
        finally:
            if process.poll() is None:
                process.kill()


def _drive_cli(process: subprocess.Popen[str], pki: Pki, port: int, gone: str) -> None:
    assert process.stderr is not None and process.stdout is not None
    ready = process.stderr.readline()
    assert ready == f"apns-emulator: listening on 127.0.0.1:{port}\n"

    async def push(token: str) -> Reply:
        headers = push_headers(token, authorization=f"bearer {provider_jwt(pki.provider_key)}")
        return await h2_request(("127.0.0.1", port), pki.client_context(), headers, VOIP_BODY)

    async def scenario() -> None:
        assert (await push(TOKEN)).status == 200
        assert (await push(gone)).reason == "Unregistered"

    run(scenario())
    lines = [json.loads(process.stdout.readline()) for _ in range(2)]
    assert [(line["status"], line["push_type"]) for line in lines] == [
        (200, "voip"),
        (410, "voip"),
    ]
    assert lines[0]["token"] == f"{TOKEN[:6]}…{TOKEN[-4:]}"  # masked
    assert lines[0]["payload"]["type"] == "incomingCall"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=WAIT) == 0


def test_cli_rejects_a_bad_script_with_status_2(pki: Pki) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sipush.testing.apns_emulator",
            "--port",
            str(free_port()),
            "--cert",
            str(pki.server_cert),
            "--key",
            str(pki.server_key),
            "--script",
            "abcd=gone",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("apns-emulator: error: --script must be TOKEN=STATUS")
