"""The transport layer as a whole: binding, bind failures, listening, closing everything."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sipush.errors import TransportError
from sipush.transport import FlowClosed, ListenSpec, Received, TransportLayer, parse_listen
from tests.transport.transport_testkit import EventLog, options_request, run, tls_contexts

SERVER_TLS, _ = tls_contexts()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_bind_failure_is_one_readable_line(transport: str) -> None:
    async def scenario() -> None:
        first = TransportLayer(EventLog(), tls_context=SERVER_TLS)
        host, port = await first.listen(ListenSpec(transport, "127.0.0.1", 0))
        second = TransportLayer(EventLog(), tls_context=SERVER_TLS)
        with pytest.raises(TransportError) as caught:
            await second.listen(ListenSpec(transport, host, port))
        assert str(caught.value) == (
            f"cannot listen on {transport}:127.0.0.1:{port}: address already in use"
        )
        assert second.listening == []
        await second.close()
        await first.close()

    run(scenario())


def test_bind_to_an_address_not_on_this_host() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog())
        with pytest.raises(TransportError, match=r"^cannot listen on udp:192\.0\.2\.1:5060: "):
            await layer.listen(ListenSpec("udp", "192.0.2.1", 5060))  # TEST-NET-1
        await layer.close()

    run(scenario())


def test_tls_without_a_certificate_cannot_listen() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog())
        with pytest.raises(TransportError, match="no TLS server context"):
            await layer.listen(ListenSpec("tls", "127.0.0.1", 0))
        await layer.close()

    run(scenario())


def test_listening_reports_the_bound_ports() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog(), tls_context=SERVER_TLS)
        bound = [
            await layer.listen(parse_listen(text))
            for text in ("udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0")
        ]
        assert all(port > 0 for _, port in bound)
        assert layer.listening == [
            ListenSpec(transport, host, port)
            for transport, (host, port) in zip(("udp", "tcp", "tls"), bound, strict=True)
        ]
        await layer.close()
        assert layer.listening == []
        for transport, (host, port) in zip(("udp", "tcp"), bound, strict=False):
            kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.bind((host, port))  # the ports were really released
        with pytest.raises(TransportError, match="closed"):
            await layer.listen(ListenSpec("udp", "127.0.0.1", 0))

    run(scenario())


def test_close_closes_every_connection_and_reports_each_once() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = TransportLayer(events)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        peers = [await asyncio.open_connection(*address) for _ in range(3)]
        for index, (_, writer) in enumerate(peers):
            writer.write(options_request(call_id=str(index)))
        flows = {(await events.next(Received)).flow for _ in peers}
        await layer.close()
        assert {event.flow for event in events.of(FlowClosed)} == flows
        assert len(events.of(FlowClosed)) == 3
        for reader, writer in peers:
            async with asyncio.timeout(5):
                assert await reader.read() == b""
            writer.close()

    run(scenario())


def test_unknown_transport_cannot_send() -> None:
    async def scenario() -> None:
        layer = TransportLayer(EventLog())
        with pytest.raises(TransportError, match="unknown transport 'sctp'"):
            await layer.send(b"x", transport="sctp", remote=("127.0.0.1", 5060))
        await layer.close()

    run(scenario())
