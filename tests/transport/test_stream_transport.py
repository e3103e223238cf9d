"""TCP and TLS on real loopback sockets: framing, keep-alives, connection reuse, closing."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from sipush.errors import FramingError, TransportError
from sipush.sip import Request, Response, make_response, parse_message, response_for_malformed
from sipush.transport import Flow, FlowClosed, ListenSpec, Malformed, Received, TransportLayer
from tests.transport.transport_testkit import (
    EventLog,
    ipv6_available,
    options_request,
    read_exactly,
    read_message,
    read_until_eof,
    run,
    tls_contexts,
)

SERVER_TLS, CLIENT_TLS = tls_contexts()
STREAMS = ["tcp", "tls"]


def new_layer(
    events: EventLog,
    *,
    max_message_size: int = 65535,
    incomplete_message_timeout: float = 32.0,
    framing_error_linger: float = 2.0,
) -> TransportLayer:
    return TransportLayer(
        events,
        max_message_size=max_message_size,
        incomplete_message_timeout=incomplete_message_timeout,
        framing_error_linger=framing_error_linger,
        tls_context=SERVER_TLS,
        client_tls_context=CLIENT_TLS,
    )


async def connect(
    transport: str, address: tuple[str, int]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain peer: asyncio streams, verifying our throwaway CA for TLS."""
    context = CLIENT_TLS if transport == "tls" else None
    return await asyncio.open_connection(*address, ssl=context)


def request_of(event: Received) -> Request:
    assert isinstance(event.message, Request)
    return event.message


# -- one exchange, both transports ------------------------------------------------------------


@pytest.mark.parametrize("transport", STREAMS)
def test_request_in_response_back_on_the_same_connection(transport: str) -> None:
    """RFC 3261 §18.2.2: the response goes back over the connection the request came on."""

    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec(transport, "127.0.0.1", 0))
        reader, writer = await connect(transport, address)
        writer.write(options_request(transport.upper()))
        received = await events.next(Received)
        request = request_of(received)
        assert request.method == "OPTIONS"
        flow = received.flow
        assert flow.transport == transport
        assert flow.local == address
        assert flow.remote == writer.get_extra_info("sockname")[:2]
        assert layer.is_open(flow)

        # Sent to the remote address only: the open connection is reused, not a new one.
        response = bytes(make_response(request, 200))
        assert await layer.send(response, transport=transport, remote=flow.remote) == flow
        assert await read_message(reader) == response
        # And with the flow named explicitly.
        assert (
            await layer.send(response, transport=transport, remote=flow.remote, flow=flow) == flow
        )
        assert await read_message(reader) == response

        writer.close()
        closed = await events.next(FlowClosed)
        assert closed.flow == flow
        assert not layer.is_open(flow)
        await layer.close()
        assert events.of(FlowClosed) == [closed]  # once

    run(scenario())


@pytest.mark.parametrize("transport", STREAMS)
def test_keepalive_ping_is_answered_with_one_crlf(transport: str) -> None:
    """RFC 5626 §4.4.1 / §5.4: CRLFCRLF between messages is answered at once with CRLF."""

    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec(transport, "127.0.0.1", 0))
        reader, writer = await connect(transport, address)
        writer.write(b"\r\n\r\n")
        assert await read_exactly(reader, 2) == b"\r\n"
        writer.write(b"\r\n")  # a pong needs no answer; a message after it still arrives
        writer.write(options_request(transport.upper()))
        await events.next(Received)
        writer.write(b"\r\n")  # a split ping: answered when its second half arrives
        await asyncio.sleep(0.05)
        writer.write(b"\r\n")
        assert await read_exactly(reader, 2) == b"\r\n"
        writer.close()
        await events.next(FlowClosed)
        assert events.of(Malformed) == []
        await layer.close()

    run(scenario())


@pytest.mark.parametrize("transport", STREAMS)
def test_close_reports_flow_closed_and_the_peer_sees_eof(transport: str) -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec(transport, "127.0.0.1", 0))
        reader, writer = await connect(transport, address)
        writer.write(options_request(transport.upper()))
        flow = (await events.next(Received)).flow
        await layer.close()
        assert (await events.next(FlowClosed)).flow == flow
        assert await read_until_eof(reader) == b""
        assert layer.listening == []
        with pytest.raises(TransportError, match="closed"):
            await layer.send(b"x", transport=transport, remote=flow.remote)
        writer.close()

    run(scenario())


# -- TCP framing over real sockets ------------------------------------------------------------


def test_message_split_across_writes() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        _, writer = await connect("tcp", address)
        data = options_request(body=b"v=0\r\n")
        for piece in (data[:10], data[10:100], data[100:-2], data[-2:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        assert request_of(await events.next(Received)).body == b"v=0\r\n"
        writer.close()
        await layer.close()

    run(scenario())


def test_two_messages_in_one_write() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        _, writer = await connect("tcp", address)
        writer.write(options_request(call_id="first") + options_request(call_id="second"))
        assert request_of(await events.next(Received)).call_id == "first"
        assert request_of(await events.next(Received)).call_id == "second"
        writer.close()
        await layer.close()

    run(scenario())


def test_unparsable_frame_is_malformed_and_the_connection_stays() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        _, writer = await connect("tcp", address)
        bad_version = options_request().replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1)
        writer.write(bad_version + options_request(call_id="after"))
        malformed = await events.next(Malformed)
        assert malformed.error.status == 505
        assert not isinstance(malformed.error, FramingError)
        assert request_of(await events.next(Received)).call_id == "after"
        assert layer.is_open(malformed.flow)
        writer.close()
        await layer.close()

    run(scenario())


def test_framing_error_is_answered_then_the_connection_closes() -> None:
    """RFC 4475 §3.1.2.3: a framing error on a stream is unrecoverable; answer, then close."""

    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events, framing_error_linger=5.0)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        reader, writer = await connect("tcp", address)
        bad = options_request().replace(b"Content-Length: 0", b"Content-Length: -999")
        writer.write(options_request(call_id="before") + bad + options_request(call_id="lost"))
        assert request_of(await events.next(Received)).call_id == "before"
        malformed = await events.next(Malformed)
        assert isinstance(malformed.error, FramingError)
        assert malformed.error.status == 400
        answer = response_for_malformed(malformed.error)
        assert answer is not None
        await layer.send(
            bytes(answer), transport="tcp", remote=malformed.flow.remote, flow=malformed.flow
        )
        # The answer arrives, then the connection closes (well before the 5 s linger).
        received = parse_message(await read_message(reader), datagram=False)
        assert isinstance(received, Response) and received.status == 400
        assert await read_until_eof(reader) == b""
        assert (await events.next(FlowClosed, timeout=1.0)).flow == malformed.flow
        assert len(events.of(Received)) == 1  # nothing after the error was read
        writer.close()
        await layer.close()

    run(scenario())


def test_framing_error_without_answer_closes_after_the_linger() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events, framing_error_linger=1.0)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        reader, writer = await connect("tcp", address)
        writer.write(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx")
        malformed = await events.next(Malformed)
        assert "conflicting" in malformed.error.detail
        assert layer.is_open(malformed.flow)  # lingering: still writable for the answer
        # ...but a new message to that peer does not pick the dying connection: it tries a new
        # one (refused: the peer does not listen on its ephemeral port).
        with pytest.raises(TransportError, match="cannot connect"):
            await layer.send(options_request(), transport="tcp", remote=malformed.flow.remote)
        assert await read_until_eof(reader) == b""
        await events.next(FlowClosed)
        assert not layer.is_open(malformed.flow)
        writer.close()
        await layer.close()

    run(scenario())


def test_message_too_large_is_513_then_close() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events, max_message_size=300, framing_error_linger=0.2)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        reader, writer = await connect("tcp", address)
        writer.write(options_request(body=b"x" * 400))
        malformed = await events.next(Malformed)
        assert malformed.error.status == 513
        assert malformed.error.head is not None
        assert await read_until_eof(reader) == b""
        await events.next(FlowClosed)
        writer.close()
        await layer.close()

    run(scenario())


def test_incomplete_message_times_out() -> None:
    """RFC 4475 §3.1.2.2 clerr over a stream: close the connection if the rest never comes."""

    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events, incomplete_message_timeout=0.3)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        reader, writer = await connect("tcp", address)
        writer.write(options_request().replace(b"Content-Length: 0", b"Content-Length: 50"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await read_until_eof(reader) == b""
        assert 0.25 <= loop.time() - started < 3.0
        await events.next(FlowClosed)
        assert events.of(Received) == [] and events.of(Malformed) == []
        writer.close()
        await layer.close()

    run(scenario())


def test_idle_and_completed_connections_do_not_time_out() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events, incomplete_message_timeout=0.2)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        _, writer = await connect("tcp", address)
        data = options_request()
        writer.write(data[:50])
        await asyncio.sleep(0.1)
        writer.write(data[50:])  # completed in time
        flow = (await events.next(Received)).flow
        writer.write(b"\r\n")  # a lone CRLF is not an incomplete message
        await asyncio.sleep(0.5)
        assert layer.is_open(flow)
        assert events.of(FlowClosed) == []
        writer.close()
        await layer.close()

    run(scenario())


# -- outgoing connections ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", STREAMS)
def test_layer_to_layer_new_connection_is_read_and_reused(transport: str) -> None:
    """A request to a peer we have no connection to opens one; the answer comes back on it."""

    async def scenario() -> None:
        client_events, server_events = EventLog(), EventLog()
        client, server = new_layer(client_events), new_layer(server_events)
        address = await server.listen(ListenSpec(transport, "127.0.0.1", 0))

        flow = await client.send(
            options_request(transport.upper()), transport=transport, remote=address
        )
        assert flow.remote == address and client.is_open(flow)
        incoming = await server_events.next(Received)
        assert incoming.flow.remote == flow.local
        response = make_response(request_of(incoming), 200)
        await server.send(bytes(response), transport=transport, remote=incoming.flow.remote)
        answer = await client_events.next(Received)  # read like an accepted connection
        assert answer.flow == flow
        assert isinstance(answer.message, Response) and answer.message.status == 200

        # Another request to the same address reuses the connection.
        again = await client.send(options_request(call_id="2"), transport=transport, remote=address)
        assert again == flow
        assert (await server_events.next(Received)).flow == incoming.flow

        await client.close()
        assert (await server_events.next(FlowClosed)).flow == incoming.flow
        assert (await client_events.next(FlowClosed)).flow == flow
        await server.close()

    run(scenario())


def test_concurrent_sends_share_one_new_connection() -> None:
    async def scenario() -> None:
        client_events, server_events = EventLog(), EventLog()
        client, server = new_layer(client_events), new_layer(server_events)
        address = await server.listen(ListenSpec("tcp", "127.0.0.1", 0))
        flows = await asyncio.gather(
            *(
                client.send(options_request(call_id=str(i)), transport="tcp", remote=address)
                for i in range(5)
            )
        )
        assert len(set(flows)) == 1
        received = [await server_events.next(Received) for _ in range(5)]
        assert len({event.flow for event in received}) == 1
        await client.close()
        await server.close()

    run(scenario())


def test_tls_verifies_the_server_name() -> None:
    async def scenario() -> None:
        events = EventLog()
        server, client = new_layer(EventLog()), new_layer(events)
        address = await server.listen(ListenSpec("tls", "127.0.0.1", 0))
        data = options_request("TLS")
        await client.send(data, transport="tls", remote=address, tls_server_name="sip.example.com")
        # Reuse needs a certificate verified for the name asked for (RFC 5626 §4.3).
        with pytest.raises(TransportError, match=r"cannot connect to tls:127\.0\.0\.1"):
            await client.send(data, transport="tls", remote=address, tls_server_name="evil.example")
        await client.close()
        await server.close()

    run(scenario())


def test_tls_client_rejects_an_untrusted_server() -> None:
    async def scenario() -> None:
        server = new_layer(EventLog())
        address = await server.listen(ListenSpec("tls", "127.0.0.1", 0))
        client = TransportLayer(EventLog(), client_tls_context=ssl.create_default_context())
        with pytest.raises(TransportError, match="TLS error"):
            await client.send(options_request("TLS"), transport="tls", remote=address)
        await client.close()
        await server.close()

    run(scenario())


def test_connection_refused_is_a_transport_error() -> None:
    async def scenario() -> None:
        probe = new_layer(EventLog())
        address = await probe.listen(ListenSpec("tcp", "127.0.0.1", 0))
        await probe.close()  # the port is now closed
        layer = new_layer(EventLog())
        with pytest.raises(TransportError, match=r"cannot connect to tcp:127\.0\.0\.1:\d+: "):
            await layer.send(options_request(), transport="tcp", remote=address)
        await layer.close()

    run(scenario())


# -- robustness -------------------------------------------------------------------------------


def test_a_failing_event_handler_does_not_kill_the_listener() -> None:
    async def scenario() -> None:
        seen = EventLog()

        def on_event(event: object) -> None:
            seen(event)  # type: ignore[arg-type]
            raise RuntimeError("handler bug")

        layer = TransportLayer(on_event)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        for call_id in ("one", "two"):
            reader, writer = await connect("tcp", address)
            writer.write(options_request(call_id=call_id) + b"\r\n\r\n")
            assert request_of(await seen.next(Received)).call_id == call_id
            assert await read_exactly(reader, 2) == b"\r\n"  # the connection still works
            writer.close()
            await seen.next(FlowClosed)
        await layer.close()

    run(scenario())


def test_garbage_and_abrupt_reset_do_not_kill_the_listener() -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec("tcp", "127.0.0.1", 0))
        _, writer = await connect("tcp", address)
        writer.write(b"\x00\xff" * 1000)
        writer.transport.abort()  # RST
        await events.next(FlowClosed)
        _, writer = await connect("tcp", address)
        writer.write(options_request())
        await events.next(Received)
        writer.close()
        await layer.close()

    run(scenario())


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
@pytest.mark.parametrize("transport", STREAMS)
def test_ipv6_loopback(transport: str) -> None:
    async def scenario() -> None:
        events = EventLog()
        layer = new_layer(events)
        address = await layer.listen(ListenSpec(transport, "::1", 0))
        assert address[0] == "::1"
        reader, writer = await connect(transport, address)
        writer.write(options_request(transport.upper()))
        received = await events.next(Received)
        assert received.flow.remote[0] == "::1"
        response = bytes(make_response(request_of(received), 200))
        assert (
            await layer.send(response, transport=transport, remote=("::1", received.flow.remote[1]))
            == received.flow
        )
        assert await read_message(reader) == response
        writer.close()
        await layer.close()

    run(scenario())


def test_flow_is_hashable_and_printable() -> None:
    flow = Flow("tcp", ("127.0.0.1", 5060), ("::1", 40000))
    assert {flow: 1}[Flow("tcp", ("127.0.0.1", 5060), ("::1", 40000))] == 1
    assert str(flow) == "tcp:127.0.0.1:5060->[::1]:40000"
    with pytest.raises(ValueError):
        Flow("sctp", ("127.0.0.1", 5060), ("127.0.0.1", 5060))
