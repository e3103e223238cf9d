"""The local FCM emulator (:mod:`sipush.testing.fcm_emulator`), driven over real HTTPS on
127.0.0.1 by clients other than sipush's provider: google-auth for the OAuth2 token flow, PyJWT
for hand-made assertions, httpx (HTTP/2) for ``messages:send``, and the CLI as a subprocess.

Throwaway keys and certificates are generated here (trustme, :func:`make_service_account`);
nothing secret is committed. Every test runs its own event loop with :func:`asyncio.run`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import google.auth.transport.requests
import httpx
import jwt
import pytest
import requests
import trustme
from cryptography.hazmat.primitives import serialization
from google.oauth2 import service_account

from sipush.testing.fcm_emulator import (
    FCM_ERROR_TYPE,
    GOOGLE_TOKEN_URI,
    JWT_BEARER_GRANT,
    SCRIPTABLE_ERRORS,
    FcmEmulator,
    Script,
    ServiceAccountKey,
    make_service_account,
    parse_script,
)

PROJECT = "demo-project"
MESSAGING_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN = "fcm-device-token-0123456789:APA91b_abcdef"
T = TypeVar("T")


@dataclass(frozen=True)
class Tls:
    cert_file: str
    key_file: str
    ca_file: str

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def write_tls(directory: Path) -> Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (str(directory / name) for name in ("cert", "key", "ca"))
    server.cert_chain_pems[0].write_to_path(cert_file)
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    server.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    return Tls(cert_file, key_file, ca_file)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return write_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def account() -> ServiceAccountKey:
    return make_service_account(PROJECT)


@pytest.fixture(scope="module")
def stranger() -> ServiceAccountKey:
    """Same client_email as ``account``, another key: what a leaked or rotated key looks like."""
    return make_service_account(PROJECT)


def verifying_session(tls: Tls) -> requests.Session:
    """A requests session that trusts the test CA. ``trust_env`` is off because requests lets
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override ``Session.verify``."""
    session = requests.Session()
    session.trust_env = False
    session.verify = tls.ca_file
    return session


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


def assertion(
    key: ServiceAccountKey,
    *,
    aud: str = GOOGLE_TOKEN_URI,
    scope: str | None = MESSAGING_SCOPE,
    lifetime: int = 3600,
    issued: float | None = None,
    algorithm: str = "RS256",
    **claims: Any,
) -> str:
    """A JWT-bearer assertion as google-auth builds one (RFC 7523 §3)."""
    now = int(time.time() if issued is None else issued)
    payload: dict[str, Any] = {
        "iss": key.client_email,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
    }
    if scope is not None:
        payload["scope"] = scope
    payload.update(claims)
    if algorithm != "RS256":
        return jwt.encode(payload, "a-shared-secret-of-at-least-32-bytes", algorithm=algorithm)
    return jwt.encode(payload, private_key(key.info["private_key"]), algorithm=algorithm)


@functools.cache
def private_key(pem: str) -> Any:
    """Loading an RSA key takes ~40 ms (cryptography checks it): once per key, not per JWT."""
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)


async def post_token(
    emulator: FcmEmulator, tls: Tls, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(verify=tls.client_context()) as client:
        response = await client.post(emulator.token_uri, data=form)
    return response.status_code, response.json()


async def access_token(emulator: FcmEmulator, tls: Tls, key: ServiceAccountKey) -> str:
    status, body = await post_token(
        emulator, tls, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion(key)}
    )
    assert status == 200, body
    return str(body["access_token"])


async def post_send(
    emulator: FcmEmulator,
    tls: Tls,
    body: Any,
    *,
    bearer: str | None,
    project: str = PROJECT,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with httpx.AsyncClient(verify=tls.client_context(), http2=True) as client:
        return await client.post(emulator.send_url(project), json=body, headers=headers)


def data_message(token: str = TOKEN, **extra: Any) -> dict[str, Any]:
    message = {
        "token": token,
        "data": {"type": "incomingCall", "aor": "sip:alice@example.com"},
        "android": {"priority": "high", "ttl": "30s", "collapse_key": "call-1"},
    }
    message.update(extra)
    return {"message": message}


# -- the OAuth2 token endpoint -----------------------------------------------------------------


def test_google_auth_gets_a_token_and_it_expires_as_announced(
    tls: Tls, account: ServiceAccountKey
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file, token_lifetime=1800) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            info = {**account.info, "token_uri": emulator.token_uri}
            credential = service_account.Credentials.from_service_account_info(
                info, scopes=[MESSAGING_SCOPE]
            )
            with verifying_session(tls) as session:
                await asyncio.to_thread(
                    credential.refresh, google.auth.transport.requests.Request(session)
                )
            (issued,) = emulator.issued_tokens
            assert credential.token == issued.access_token
            assert issued.client_email == account.client_email
            assert issued.scope == MESSAGING_SCOPE
            assert issued.expires_at - issued.issued_at == 1800
            assert credential.expiry is not None
            remaining = credential.expiry.timestamp() - time.time()
            assert 1790 < remaining <= 1800

    run(scenario)


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("wrong key", "invalid_grant", "Invalid JWT Signature."),
        ("unknown account", "invalid_grant", "Invalid grant: account not found"),
        ("wrong audience", "invalid_grant", "Invalid JWT: Failed audience check."),
        ("no scope", "invalid_scope", "Invalid OAuth scope"),
        ("scope without FCM", "invalid_scope", "Invalid OAuth scope"),
        ("lives over an hour", "invalid_grant", "Token must be a short-lived token"),
        ("expired", "invalid_grant", "Token must be a short-lived token"),
        ("issued in the future", "invalid_grant", "Token must be a short-lived token"),
        ("HS256", "invalid_grant", "the algorithm must be RS256"),
        ("not a JWT", "invalid_grant", "malformed assertion"),
        ("wrong grant type", "unsupported_grant_type", "Invalid grant_type: password"),
    ],
)
def test_token_endpoint_rejects_what_google_rejects(
    tls: Tls,
    account: ServiceAccountKey,
    stranger: ServiceAccountKey,
    case: str,
    error: str,
    description: str,
) -> None:
    unknown = ServiceAccountKey(
        {**account.info, "client_email": "nobody@demo-project.iam.gserviceaccount.com"},
        account.public_key_pem,
    )
    forms: dict[str, Callable[[], dict[str, str]]] = {
        "wrong key": lambda: {"assertion": assertion(ServiceAccountKey(stranger.info, ""))},
        "unknown account": lambda: {"assertion": assertion(unknown)},
        "wrong audience": lambda: {
            "assertion": assertion(account, aud="https://example.com/token")
        },
        "no scope": lambda: {"assertion": assertion(account, scope=None)},
        "scope without FCM": lambda: {
            "assertion": assertion(account, scope="https://www.googleapis.com/auth/datastore")
        },
        "lives over an hour": lambda: {"assertion": assertion(account, lifetime=7200)},
        "expired": lambda: {"assertion": assertion(account, issued=time.time() - 7200)},
        "issued in the future": lambda: {"assertion": assertion(account, issued=time.time() + 600)},
        "HS256": lambda: {"assertion": assertion(account, algorithm="HS256")},
        "not a JWT": lambda: {"assertion": "not-a-jwt"},
        "wrong grant type": lambda: {"grant_type": "password", "assertion": assertion(account)},
    }
    form = {"grant_type": JWT_BEARER_GRANT, **forms[case]()}

    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            status, body = await post_token(emulator, tls, form)
            assert status == 400
            assert body["error"] == error
            assert description in body["error_description"]
            assert emulator.issued_tokens == []

    run(scenario)


def test_token_endpoint_accepts_its_own_uri_as_audience(
    tls: Tls, account: ServiceAccountKey
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            form = {
                "grant_type": JWT_BEARER_GRANT,
                "assertion": assertion(account, aud=emulator.token_uri),
            }
            status, body = await post_token(emulator, tls, form)
            assert status == 200
            assert body["token_type"] == "Bearer"
            assert body["expires_in"] == 3600

    run(scenario)


# -- messages:send -----------------------------------------------------------------------------


def test_send_needs_an_issued_unrevoked_token_for_the_project(
    tls: Tls, account: ServiceAccountKey
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(
                account.client_email, account.public_key_pem, project=PROJECT
            )
            for bearer in (None, "ya29.made-up"):
                response = await post_send(emulator, tls, data_message(), bearer=bearer)
                assert response.status_code == 401
                assert response.json()["error"]["status"] == "UNAUTHENTICATED"
            token = await access_token(emulator, tls, account)
            response = await post_send(emulator, tls, data_message(), bearer=token)
            assert response.status_code == 200
            assert response.json()["name"].startswith(f"projects/{PROJECT}/messages/0:")
            other = await post_send(
                emulator, tls, data_message(), bearer=token, project="other-project"
            )
            assert other.status_code == 403
            assert other.json()["error"]["status"] == "PERMISSION_DENIED"
            emulator.revoke_tokens()
            revoked = await post_send(emulator, tls, data_message(), bearer=token)
            assert revoked.status_code == 401
            statuses = [(r.status, r.error, r.access_token) for r in emulator.requests]
            assert statuses == [
                (401, "UNAUTHENTICATED", None),
                (401, "UNAUTHENTICATED", "ya29.made-up"),
                (200, None, token),
                (403, "PERMISSION_DENIED", token),
                (401, "UNAUTHENTICATED", token),
            ]

    run(scenario)


def test_an_expired_access_token_is_refused(tls: Tls, account: ServiceAccountKey) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file, token_lifetime=0) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            response = await post_send(emulator, tls, data_message(), bearer=token)
            assert response.status_code == 401

    run(scenario)


def test_send_records_the_whole_request_over_http2(tls: Tls, account: ServiceAccountKey) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            before = time.monotonic()
            response = await post_send(emulator, tls, data_message(), bearer=token)
            assert response.http_version == "HTTP/2"
            (request,) = await emulator.wait_for_requests(1, timeout=2)
            assert request.project == PROJECT
            assert request.token == TOKEN
            assert request.message == data_message()["message"]
            assert request.status == 200
            assert request.error is None
            assert request.access_token == token
            assert request.http_version == "2"
            assert "authorization" not in request.headers
            assert before <= request.monotonic <= time.monotonic()
            assert abs(request.received_at - time.time()) < 5
            assert request.to_json()["message"] == request.message

    run(scenario)


def test_fid_topic_and_validate_only_are_accepted(tls: Tls, account: ServiceAccountKey) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            by_fid = {"message": {"fid": "fid-123", "data": {"type": "x"}}}
            by_topic = {"message": {"topic": "news", "notification": {"title": "hi"}}}
            dry_run = {**data_message(), "validate_only": True}
            replies = [
                await post_send(emulator, tls, body, bearer=token)
                for body in (by_fid, by_topic, dry_run)
            ]
            assert [r.status_code for r in replies] == [200, 200, 200]
            assert replies[2].json() == {"name": f"projects/{PROJECT}/messages/fake_message_id"}
            assert [r.token for r in emulator.requests] == ["fid-123", None, TOKEN]
            assert [r.validate_only for r in emulator.requests] == [False, False, True]

    run(scenario)


BAD_TTL = "Invalid value at 'message.android.ttl'"
INVALID_MESSAGES: list[tuple[str, Any, str]] = [
    ("no target", {"message": {"data": {"a": "b"}}}, "Recipient of the message is not set."),
    ("two targets", data_message(topic="news"), "oneof field 'target' is already set"),
    ("empty token", data_message(token=""), "Invalid value at 'message.token'"),
    ("malformed token", data_message(token="not a token!"), "not a valid FCM registration"),
    (
        "priority",
        data_message(android={"priority": "urgent"}),
        "Invalid value at 'message.android.priority'",
    ),
    (
        "data not strings",
        data_message(data={"type": "incomingCall", "count": 1}),
        "Invalid value at 'message.data[1].value' (TYPE_STRING), 1",
    ),
    ("reserved data key", data_message(data={"from": "x"}), "Invalid data payload key: from"),
    ("google. data key", data_message(data={"google.x": "y"}), "Invalid data payload key"),
    (
        "ttl without s",
        data_message(android={"ttl": "30"}),
        "Invalid value at 'message.android.ttl'",
    ),
    ("ttl a number", data_message(android={"ttl": 30}), "Invalid value at 'message.android.ttl'"),
    ("ttl over 28 days", data_message(android={"ttl": "2419201s"}), "TTL must be at most"),
    ("unknown field", data_message(priority="high"), 'Unknown name "priority"'),
    ("unknown android field", data_message(android={"prio": "high"}), 'Unknown name "prio"'),
    ("too big", data_message(data={"body": "x" * 4100}), "Message is too big"),
    ("no message", {"validate_only": False}, "message is required"),
    ("unknown top-level name", {**data_message(), "dry_run": True}, 'Unknown name "dry_run"'),
    ("not JSON", b"{", "Invalid JSON payload received."),
]


@pytest.mark.parametrize(
    ("case", "body", "message"), INVALID_MESSAGES, ids=[c[0] for c in INVALID_MESSAGES]
)
def test_invalid_messages_get_fcm_invalid_argument(
    tls: Tls, account: ServiceAccountKey, case: str, body: Any, message: str
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            if isinstance(body, bytes):
                async with httpx.AsyncClient(verify=tls.client_context()) as client:
                    response = await client.post(
                        emulator.send_url(PROJECT),
                        content=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
            else:
                response = await post_send(emulator, tls, body, bearer=token)
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["code"] == 400
            assert error["status"] == "INVALID_ARGUMENT"
            assert message in error["message"]
            (request,) = emulator.requests
            assert (request.status, request.error) == (400, "INVALID_ARGUMENT")

    run(scenario)


def test_normal_priority_and_fractional_ttl_are_valid(tls: Tls, account: ServiceAccountKey) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            for android in ({"priority": "normal", "ttl": "0.5s"}, {"priority": "HIGH"}):
                response = await post_send(
                    emulator, tls, data_message(android=android), bearer=token
                )
                assert response.status_code == 200, response.json()

    run(scenario)


# -- scripted errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", sorted(SCRIPTABLE_ERRORS))
def test_scripted_errors_have_fcms_status_and_detail(
    tls: Tls, account: ServiceAccountKey, error: str
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            emulator.script(TOKEN, error=error, retry_after=7)
            token = await access_token(emulator, tls, account)
            response = await post_send(emulator, tls, data_message(), bearer=token)
            status, rpc_status, message = SCRIPTABLE_ERRORS[error]
            assert response.status_code == status
            assert response.headers["retry-after"] == "7"
            assert response.json() == {
                "error": {
                    "code": status,
                    "message": message,
                    "status": rpc_status,
                    "details": [{"@type": FCM_ERROR_TYPE, "errorCode": error}],
                }
            }
            other = await post_send(
                emulator, tls, data_message(token="another-token"), bearer=token
            )
            assert other.status_code == 200
            assert [(r.token, r.error) for r in emulator.requests] == [
                (TOKEN, error),
                ("another-token", None),
            ]

    run(scenario)


def test_a_script_can_fail_the_first_attempts_then_succeed(
    tls: Tls, account: ServiceAccountKey
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            emulator.script(TOKEN, error="UNAVAILABLE", times=2)
            token = await access_token(emulator, tls, account)
            statuses = [
                (await post_send(emulator, tls, data_message(), bearer=token)).status_code
                for _ in range(4)
            ]
            assert statuses == [503, 503, 200, 200]
            assert "retry-after" not in emulator.requests[0].headers

    run(scenario)


def test_a_script_delays_the_answer_and_can_be_cleared(
    tls: Tls, account: ServiceAccountKey
) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            emulator.add_service_account(account.client_email, account.public_key_pem)
            token = await access_token(emulator, tls, account)
            emulator.script(TOKEN, delay=0.4)
            started = time.monotonic()
            response = await post_send(emulator, tls, data_message(), bearer=token)
            assert response.status_code == 200
            assert time.monotonic() - started >= 0.4
            emulator.script(TOKEN)  # cleared
            started = time.monotonic()
            await post_send(emulator, tls, data_message(), bearer=token)
            assert time.monotonic() - started < 0.4

    run(scenario)


def test_scripts_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown FCM error"):
        Script(error="GONE")
    with pytest.raises(ValueError, match="times"):
        Script(error="UNAVAILABLE", times=0)
    with pytest.raises(ValueError, match="delay"):
        Script(delay=-1)
    assert parse_script("tok=error=QUOTA_EXCEEDED,times=2,retry_after=3,delay=0.5") == (
        "tok",
        Script(error="QUOTA_EXCEEDED", times=2, retry_after=3.0, delay=0.5),
    )
    for bad in ("tok", "tok=", "tok=colour=red", "tok=times=two"):
        with pytest.raises(ValueError):
            parse_script(bad)


def test_wait_for_requests_times_out_with_what_it_saw(tls: Tls) -> None:
    async def scenario() -> None:
        async with FcmEmulator(tls.cert_file, tls.key_file) as emulator:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="got 0 of 1 requests"):
                await emulator.wait_for_requests(1, timeout=0.3)
            assert 0.3 <= time.monotonic() - started < 2

    run(scenario)


def test_unknown_paths_and_methods(tls: Tls) -> None:
    async def scenario() -> None:
        async with (
            FcmEmulator(tls.cert_file, tls.key_file) as emulator,
            httpx.AsyncClient(verify=tls.client_context()) as client,
        ):
            assert (await client.get(emulator.url + "/v1/nothing")).status_code == 404
            assert (await client.get(emulator.token_uri)).status_code == 405
            assert (await client.get(emulator.send_url(PROJECT))).status_code == 405

    run(scenario)


def test_a_bad_certificate_fails_at_start(tls: Tls, tmp_path: Path) -> None:
    async def scenario() -> None:
        emulator = FcmEmulator(tls.cert_file, tls.ca_file)  # the CA's cert is not the key
        with pytest.raises(ssl.SSLError):
            await emulator.start()

    run(scenario)


# -- the command line ----------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_cli_serves_a_new_service_account_and_prints_each_request(tls: Tls, tmp_path: Path) -> None:
    port = _free_port()
    account_file = tmp_path / "sa.json"
    command = [
        sys.executable,
        "-m",
        "sipush.testing.fcm_emulator",
        "--port",
        str(port),
        "--cert",
        tls.cert_file,
        "--key",
        tls.key_file,
        "--new-service-account",
        str(account_file),
        "--project",
        PROJECT,
        "--script",
        "dead-token=error=UNREGISTERED",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        ready = process.stderr.readline()
        url = f"https://127.0.0.1:{port}"
        assert ready.strip() == f"fcm-emulator: listening on {url} (token endpoint {url}/token)"
        assert os.stat(account_file).st_mode & 0o777 == 0o600
        info = json.loads(account_file.read_text())
        assert info["token_uri"] == f"{url}/token"
        credential = service_account.Credentials.from_service_account_info(
            info, scopes=[MESSAGING_SCOPE]
        )
        with verifying_session(tls) as session:
            credential.refresh(google.auth.transport.requests.Request(session))
        with httpx.Client(verify=tls.client_context()) as client:
            for token in (TOKEN, "dead-token"):
                client.post(
                    f"{url}/v1/projects/{PROJECT}/messages:send",
                    json=data_message(token=token),
                    headers={"Authorization": f"Bearer {credential.token}"},
                )
        lines = [json.loads(process.stdout.readline()) for _ in range(2)]
        assert [(line["token"], line["status"], line["error"]) for line in lines] == [
            (TOKEN, 200, None),
            ("dead-token", 404, "UNREGISTERED"),
        ]
        assert lines[0]["message"] == data_message()["message"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_reports_bad_arguments_in_one_line(tls: Tls, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sipush.testing.fcm_emulator",
            "--port",
            str(_free_port()),
            "--cert",
            tls.cert_file,
            "--key",
            tls.key_file,
            "--script",
            "tok=error=GONE",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fcm-emulator: error: unknown FCM error 'GONE'")
    assert result.stderr.count("\n") == 1
