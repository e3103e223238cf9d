"""Every RFC 4475 torture message sent over UDP to a running ``sipush serve``.

Each message gets the answer the RFC asks for (or silence where it says so), and the server still
answers OPTIONS after each one. The sending socket lives on 127.0.0.2 so that responses, which
go to the top Via's sent-by port when there is no ``rport`` (RFC 3261 §18.2.2), can reach it:
it listens on 5060 (the default port), 5061 (the TLS default, for TLS Vias) and 5050 (quotbal).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, run_sipush
from tests.rfc4475_cases import CASES, load

REPLY_PORTS = (5060, 5061, 5050)


class Client:
    """UDP sockets on one loopback address, on every port a response may be sent to."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        for last_octet in range(2, 10):
            host = f"127.0.0.{last_octet}"
            try:
                for port in REPLY_PORTS:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    self.sockets.append(sock)
                    sock.bind((host, port))
                self.host = host
                return
            except OSError:
                for sock in self.sockets:
                    sock.close()
                self.sockets.clear()
        raise RuntimeError("no loopback address with ports 5060, 5061 and 5050 free")

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def send(self, data: bytes, server: tuple[str, int]) -> None:
        self.sockets[0].sendto(data, server)

    def collect_until(self, marker: bytes, timeout: float = 5.0) -> list[bytes]:
        """Every datagram that arrives before (and including) the one containing ``marker``."""
        import select

        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select(self.sockets, [], [], max(0.0, deadline - time.monotonic()))
            for sock in ready:
                data, _ = sock.recvfrom(65535)
                got.append(data)
                if marker in data:
                    return got
        raise AssertionError(f"no reply containing {marker!r} within {timeout} s; got {got!r}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    with run_sipush(Path(tmp_path_factory.mktemp("rfc4475")), port) as proc:
        yield proc.host, port
        assert proc.proc.poll() is None, "sipush must still be running after the torture corpus"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def options_ping(client: Client, server: tuple[str, int]) -> tuple[bytes, bytes]:
    call_id = f"ping-{secrets.token_hex(6)}".encode()
    host, port = server
    ping = (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {client.host}:5060;rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:tester@{client.host}>;tag=1\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id.decode()}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    return ping, call_id


def status_of(datagram: bytes) -> int:
    assert datagram.startswith(b"SIP/2.0 "), datagram[:80]
    return int(datagram.split(b" ", 2)[1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_torture_message_on_the_wire(name: str, server: tuple[str, int], client: Client) -> None:
    _, expected, why = CASES[name]
    client.send(load(name), server)
    ping, call_id = options_ping(client, server)
    client.send(ping, server)
    # UDP on loopback keeps order and sipush handles datagrams in order: any answer to the
    # torture message arrives before the answer to the OPTIONS sent after it.
    replies = client.collect_until(call_id)
    ping_reply = replies.pop()
    assert status_of(ping_reply) == 200, "sipush still answers OPTIONS"
    answers = [status_of(r) for r in replies]
    if expected is None:
        assert answers == [], f"{name}: {why}: expected silence, got {answers}"
    else:
        assert answers == [expected], f"{name}: {why}"
        if expected == 420:
            assert b"Unsupported: noProxiesSupportThis, norDoAnyProxiesSupportThis" in replies[0]
        if expected == 400:
            assert b"Warning: 399 sipush" in replies[0]


def test_answers_to_stamped_via_follow_rport(server: tuple[str, int], client: Client) -> None:
    """RFC 3581: with ``rport`` the answer goes to the source port and the Via records it."""
    ping, call_id = options_ping(client, server)
    client.send(ping, server)
    reply = client.collect_until(call_id)[-1]
    assert f";rport=5060".encode() in reply and f"received={client.host}".encode() in reply
