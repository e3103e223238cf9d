"""UDP on real loopback sockets: receive, reply from the listening port, keep-alives, errors."""

from __future__ import annotations

import asyncio

import pytest

from sipush.errors import TransportError
from sipush.sip import Request, make_response
from sipush.transport import Flow, ListenSpec, Malformed, Received, TransportLayer
from tests.transport.transport_testkit import EventLog, ipv6_available, options_request, run


class UdpPeer(asyncio.DatagramProtocol):
    """A plain UDP peer that queues what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr[:2]))

    async def next(self) -> tuple[bytes, tuple[str, int]]:
        async with asyncio.timeout(5.0):
            return await self.received.get()


async def udp_peer(host: str = "127.0.0.1") -> tuple[asyncio.DatagramTransport, UdpPeer]:
    return await asyncio.get_running_loop().create_datagram_endpoint(UdpPeer, local_addr=(host, 0))


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not ipv6_available(), reason="no IPv6")),
    ],
)
def test_receive_and_reply_from_the_listening_port(host: str) -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = TransportLayer(events)
        address = await layer.listen(ListenSpec("udp", host, 0))
        transport, peer = await udp_peer(host)
        peer_address = transport.get_extra_info("sockname")[:2]
        transport.sendto(options_request("UDP"), address)

        received = await events.next(Received)
        assert isinstance(received.message, Request)
        assert received.flow == Flow("udp", address, peer_address)
        assert layer.is_open(received.flow)

        response = bytes(make_response(received.message, 200))
        flow = await layer.send(response, transport="udp", remote=received.flow.remote)
        assert flow == received.flow
        data, source = await peer.next()
        assert data == response
        assert source == address  # sent from the listening socket (RFC 3261 §18.2.2)
        transport.close()
        await layer.close()
        assert not layer.is_open(flow)

    run(scenario())


def test_crlf_keepalives_and_stun_are_ignored_and_garbage_is_malformed() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = TransportLayer(events)
        address = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        transport, _ = await udp_peer()
        transport.sendto(b"\r\n\r\n", address)
        transport.sendto(b"\r\n", address)
        transport.sendto(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12), address)  # STUN
        transport.sendto(b"NOT SIP AT ALL\r\n\r\n", address)
        transport.sendto(options_request("UDP"), address)
        malformed = await events.next(Malformed)
        assert malformed.error.status == 400
        await events.next(Received)
        assert len(events.events) == 2  # the keep-alives and STUN produced nothing
        transport.close()
        await layer.close()

    run(scenario())


def test_datagram_without_content_length_uses_the_rest_of_the_datagram() -> None:
    """RFC 3261 §18.3: over UDP a missing Content-Length means the body runs to the end."""

    async def scenario() -> None:
        events = EventLog()
        layer = TransportLayer(events)
        address = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        transport, _ = await udp_peer()
        data = options_request("UDP").replace(b"Content-Length: 0\r\n", b"") + b"body"
        transport.sendto(data, address)
        received = await events.next(Received)
        assert received.message.body == b"body"
        transport.close()
        await layer.close()

    run(scenario())


def test_oversized_datagram_is_malformed_513() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = TransportLayer(events, max_message_size=400)
        address = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        transport, _ = await udp_peer()
        transport.sendto(options_request("UDP", body=b"x" * 500), address)
        malformed = await events.next(Malformed)
        assert malformed.error.status == 513
        assert malformed.error.head is not None
        assert malformed.error.head.start_line.startswith("OPTIONS ")
        transport.close()
        await layer.close()

    run(scenario())


def test_a_failing_event_handler_does_not_kill_the_socket() -> None:
    async def scenario() -> None:
        seen = EventLog()

        def on_event(event: object) -> None:
            seen(event)  # type: ignore[arg-type]
            raise RuntimeError("handler bug")

        layer = TransportLayer(on_event)
        address = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        transport, _ = await udp_peer()
        transport.sendto(options_request("UDP", call_id="one"), address)
        await seen.next(Received)
        transport.sendto(options_request("UDP", call_id="two"), address)
        await seen.next(Received)
        transport.close()
        await layer.close()

    run(scenario())


def test_send_needs_a_listening_socket_of_the_remote_family() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog())
        with pytest.raises(TransportError, match="not listening on any IPv4 UDP address"):
            await layer.send(b"x", transport="udp", remote=("127.0.0.1", 5060))
        await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        with pytest.raises(TransportError, match="not listening on any IPv6 UDP address"):
            await layer.send(b"x", transport="udp", remote=("::1", 5060))
        with pytest.raises(TransportError, match="one UDP datagram"):
            await layer.send(b"x" * 70000, transport="udp", remote=("127.0.0.1", 5060))
        await layer.close()

    run(scenario())


def test_send_uses_the_socket_named_by_the_flow() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog())
        first = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        second = await layer.listen(ListenSpec("udp", "127.0.0.1", 0))
        transport, peer = await udp_peer()
        remote = transport.get_extra_info("sockname")[:2]
        for local in (second, first):
            flow = await layer.send(
                b"hello", transport="udp", remote=remote, flow=Flow("udp", local, remote)
            )
            assert flow.local == local
            assert (await peer.next())[1] == local
        transport.close()
        await layer.close()

    run(scenario())
