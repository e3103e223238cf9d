"""Every RFC 4475 torture message sent over UDP to a running ``sipush serve``.

Each message gets the answer the RFC asks for (or silence where it says so), and the server still
answers OPTIONS after each one. The sending socket lives on 127.0.0.2 so that responses, which
go to the top Via's sent-by port when there is no ``rport`` (RFC 3261 §18.2.2), can reach it:
it listens on 5060 (the default port), 5061 (the TLS default, for TLS Vias) and 5050 (quotbal).

The client behaves like a UA: it ACKs final INVITE responses (else sipush retransmits them,
Timer G) and it knows that two torture messages sharing a branch and sent-by are, to sipush,
one transaction, so it waits for the first to end before sending the second.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipush.errors import ParseError, SipushError
from sipush.sip import Request, Response, parse_message
from sipush.sip.transaction import build_ack
from sipush.sip.transaction_keys import server_transaction_key
from tests.conftest import free_port, run_sipush
from tests.rfc4475_cases import CASES, load

REPLY_PORTS = (5060, 5061, 5050)


class Client:
    """UDP sockets on one loopback address, on every port a response may be sent to."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.seen: set[bytes] = set()  # every datagram received so far (to spot retransmissions)
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
            if any(marker in data for data in got):
                # Loopback delivery is synchronous: whatever was sent before the marker reply
                # is already queued on some socket. Drain them all, then put the marker last.
                while True:
                    ready, _, _ = select.select(self.sockets, [], [], 0)
                    if not ready:
                        break
                    got.extend(sock.recvfrom(65535)[0] for sock in ready)
                got.sort(key=lambda data: marker in data)
                # A final INVITE response is retransmitted over UDP until its ACK (Timer G);
                # a copy of an earlier answer is not an answer to this message.
                fresh = [data for data in got if data not in self.seen]
                self.seen.update(got)
                return fresh
        raise AssertionError(f"no reply containing {marker!r} within {timeout} s; got {got!r}")


# Short RFC 3261 timers: a server transaction ends (Timer J/H = 64*T1) well within a second.
TIMERS = "[sip]\nt1 = 0.01\nt2 = 0.04\nt4 = 0.05\n"
TRANSACTION_LIFETIME = 64 * 0.01 + 0.2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    workdir = Path(tmp_path_factory.mktemp("rfc4475"))
    (workdir / "sipush.toml").write_text(TIMERS)
    with run_sipush(workdir, port, "--config", str(workdir / "sipush.toml")) as proc:
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


def ack_if_invite(client: Client, server: tuple[str, int], request: bytes, reply: bytes) -> None:
    """Acknowledge a final response to an INVITE, as the UA would (§17.1.1.3)."""
    try:
        invite = parse_message(request)
        response = parse_message(reply)
    except ParseError:
        return  # answered statelessly; there is no transaction to acknowledge
    is_invite = isinstance(invite, Request) and invite.method == "INVITE"
    if is_invite and isinstance(response, Response) and response.status >= 300:
        client.send(bytes(build_ack(invite, response)), server)  # type: ignore[arg-type]


def status_of(datagram: bytes) -> int:
    assert datagram.startswith(b"SIP/2.0 "), datagram[:80]
    return int(datagram.split(b" ", 2)[1])


_last_sent: dict[object, float] = {}


def wait_for_older_transaction(data: bytes) -> None:
    """Several torture messages share a branch and sent-by (``z9hG4bKkdjuw``): to sipush a
    second one inside the first one's transaction lifetime IS a retransmission (§17.2.3) and gets
    the first one's answer. Wait until the older transaction has ended."""
    try:
        message = parse_message(data)
        key: object = server_transaction_key(message) if isinstance(message, Request) else None
    except (ParseError, SipushError):
        return  # answered statelessly: no transaction
    if key is None:
        return
    since = time.monotonic() - _last_sent.get(key, -1e9)
    if since < TRANSACTION_LIFETIME:
        time.sleep(TRANSACTION_LIFETIME - since)
    _last_sent[key] = time.monotonic()


@pytest.mark.parametrize("name", sorted(CASES))
def test_torture_message_on_the_wire(name: str, server: tuple[str, int], client: Client) -> None:
    _, expected, why = CASES[name]
    wait_for_older_transaction(load(name))
    client.send(load(name), server)
    ping, call_id = options_ping(client, server)
    client.send(ping, server)
    # UDP on loopback keeps order and sipush handles datagrams in order: any answer to the
    # torture message arrives before the answer to the OPTIONS sent after it.
    replies = client.collect_until(call_id)
    ping_reply = replies.pop()
    assert status_of(ping_reply) == 200, "sipush still answers OPTIONS"
    answers = [status_of(r) for r in replies]
    for reply in replies:
        ack_if_invite(client, server, load(name), reply)
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
    assert b";rport=5060" in reply and f"received={client.host}".encode() in reply
