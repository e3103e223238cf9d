"""``sipush serve`` answers through RFC 3261 §17 server transactions, over real sockets.

Over UDP a final response to INVITE is retransmitted (Timer G) until the ACK arrives, and a
retransmitted request gets the same response again instead of a fresh one; over TCP nothing is
retransmitted. A CANCEL that matches an INVITE transaction gets 200, one that does not gets 481.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipush.sip import Response, parse_message
from tests.conftest import free_port, run_sipush

T1 = 0.05  # Timer G fires at T1, 2*T1, 4*T1, ... (§17.2.1); Timer H after 64*T1 = 3.2 s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    workdir = Path(tmp_path_factory.mktemp("tx"))
    (workdir / "sipush.toml").write_text(f"[sip]\nt1 = {T1}\nt2 = 0.4\nt4 = 0.5\n")
    with run_sipush(workdir, port, "--config", str(workdir / "sipush.toml")) as proc:
        yield proc.host, port


def request(method: str, port: int, *, transport: str = "UDP", branch: str | None = None,
            call_id: str | None = None, cseq: int = 1, to_tag: str = "") -> bytes:  # fmt: skip
    branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
    call_id = call_id or secrets.token_hex(8)
    to = "<sip:bob@example.org>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@example.org SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};rport;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.org>;tag=a1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def receive_all(sock: socket.socket, seconds: float) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(65535))
        except TimeoutError:
            break
    return got


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_final_invite_response_is_retransmitted_until_the_ack(
    server: tuple[str, int], udp: socket.socket
) -> None:
    port = udp.getsockname()[1]
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    call_id = secrets.token_hex(8)
    udp.sendto(request("INVITE", port, branch=branch, call_id=call_id), server)
    replies = receive_all(udp, 8 * T1)  # 480 at 0, then Timer G at T1, 3*T1, 7*T1
    assert len(replies) >= 3, replies
    assert len(set(replies)) == 1, "every retransmission is the same response (same To tag)"
    response = parse_message(replies[0])
    assert isinstance(response, Response) and response.status == 480
    # §17.1.1.3: the ACK reuses the INVITE's branch and carries the To tag of the response.
    ack = request("ACK", port, branch=branch, call_id=call_id, to_tag=response.to.tag or "")
    udp.sendto(ack, server)
    receive_all(udp, T1)  # a retransmission already in flight may still land
    assert receive_all(udp, 10 * T1) == [], "the ACK stopped Timer G (CONFIRMED)"


def test_retransmitted_request_gets_the_same_response(
    server: tuple[str, int], udp: socket.socket
) -> None:
    port = udp.getsockname()[1]
    message = request("MESSAGE", port)
    udp.sendto(message, server)
    first = receive_all(udp, 0.3)
    udp.sendto(message, server)  # a retransmission: same branch, sent-by and method
    second = receive_all(udp, 0.3)
    assert len(first) == 1 and second == first, "the transaction re-sends its response (§17.2.2)"
    fresh = request("MESSAGE", port)
    udp.sendto(fresh, server)
    third = receive_all(udp, 0.3)
    assert len(third) == 1 and third != first, (
        "a new branch is a new transaction with its own To tag"
    )


def test_no_retransmission_over_tcp(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=2) as tcp:
        port = tcp.getsockname()[1]
        tcp.sendall(request("INVITE", port, transport="TCP"))
        data = b""
        deadline = time.monotonic() + 12 * T1
        while (left := deadline - time.monotonic()) > 0:
            tcp.settimeout(left)
            try:
                chunk = tcp.recv(65535)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    assert data.count(b"SIP/2.0 480") == 1, data


def test_cancel_matches_the_invite_transaction(server: tuple[str, int], udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    call_id = secrets.token_hex(8)
    udp.sendto(request("INVITE", port, branch=branch, call_id=call_id), server)
    assert receive_all(udp, 0.02)  # the 480
    udp.sendto(request("CANCEL", port, branch=branch, call_id=call_id), server)
    statuses = {int(r.split(b" ", 2)[1]) for r in receive_all(udp, 2 * T1) if b" CANCEL\r\n" in r}
    assert statuses == {200}, "§9.2: a CANCEL matching a transaction is answered 200"
    udp.sendto(request("CANCEL", port, call_id=secrets.token_hex(8)), server)
    statuses = {int(r.split(b" ", 2)[1]) for r in receive_all(udp, 2 * T1) if b" CANCEL\r\n" in r}
    assert statuses == {481}, "§9.2: a CANCEL matching nothing gets 481"
