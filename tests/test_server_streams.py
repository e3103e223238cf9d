"""``sipush serve`` over TCP and TLS, end to end: answers on the same connection, keep-alives,
and framing errors that close the connection (RFC 3261 §18.2.2, RFC 5626 §4.4.1, RFC 4475)."""

from __future__ import annotations

import secrets
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import free_port, run_sipush
from tests.rfc4475_cases import load


def options(host: str, port: int, local_port: int, transport: str) -> bytes:
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@127.0.0.1>;tag=p1\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> bytes:
    """One response (these carry no body) or b"" when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65535)
        if not chunk:
            return data
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65535):
        data += chunk
    return data


@pytest.fixture(scope="module")
def tcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    with run_sipush(Path(tmp_path_factory.mktemp("tcp")), port) as proc:
        yield proc.host, port


def test_options_over_tcp_is_answered_on_the_same_connection(tcp_server: tuple[str, int]) -> None:
    host, port = tcp_server
    with socket.create_connection(tcp_server, timeout=5) as sock:
        local_port = sock.getsockname()[1]
        for _ in range(3):  # the connection stays usable for several requests
            sock.sendall(options(host, port, local_port, "TCP"))
            assert read_response(sock).startswith(b"SIP/2.0 200 OK\r\n")


def test_crlf_keepalive_is_answered_with_crlf(tcp_server: tuple[str, int]) -> None:
    with socket.create_connection(tcp_server, timeout=5) as sock:
        sock.sendall(b"\r\n\r\n")  # RFC 5626 §4.4.1 ping
        assert sock.recv(16) == b"\r\n"  # pong


@pytest.mark.parametrize("name", ["mcl01", "ncl"])
def test_framing_error_gets_400_then_the_connection_closes(
    tcp_server: tuple[str, int], name: str
) -> None:
    """RFC 4475 §3.3.9 / §3.1.2.3: over a stream a bad Content-Length is unrecoverable."""
    with socket.create_connection(tcp_server, timeout=5) as sock:
        sock.sendall(load(name))
        answer = read_until_closed(sock)
    assert answer.startswith(b"SIP/2.0 400 Bad Request\r\n"), answer[:80]


def test_server_keeps_serving_after_a_framing_error(tcp_server: tuple[str, int]) -> None:
    host, port = tcp_server
    with socket.create_connection(tcp_server, timeout=5) as sock:
        sock.sendall(load("mcl01"))
        read_until_closed(sock)
    with socket.create_connection(tcp_server, timeout=5) as sock:
        sock.sendall(options(host, port, sock.getsockname()[1], "TCP"))
        assert read_response(sock).startswith(b"SIP/2.0 200 OK\r\n")


def test_options_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in cert.cert_chain_pems[1:]:
        with open(cert_file, "ab") as out:
            out.write(pem.bytes())
    cert.private_key_pem.write_to_path(str(key_file))
    config = tmp_path / "sipush.toml"
    config.write_text(f'[tls]\ncert_file = "{cert_file}"\nkey_file = "{key_file}"\n')
    port = free_port()
    tls_port = free_port()
    tls_listen = f"tls:127.0.0.1:{tls_port}"
    with run_sipush(tmp_path, port, "--config", str(config), "--listen", tls_listen) as proc:
        if not any(tls_listen in line for line in proc.stderr_lines):
            proc.wait_for_lines([f"listening on {tls_listen}"])
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(options("127.0.0.1", tls_port, sock.getsockname()[1], "TLS"))
            assert read_response(sock).startswith(b"SIP/2.0 200 OK\r\n")
