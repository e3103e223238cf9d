"""The transport layer (RFC 3261 §18): owns every socket, reports events, sends on flows.

:class:`TransportLayer` listens on UDP, TCP and TLS addresses, keeps the open connections indexed
by flow and by remote address, and hands every event (Received, Malformed, FlowClosed) to one
callback. It makes no routing decision: the server says what to send, to which address, over
which transport, optionally on which flow.

Sending (RFC 3261 §18.1, §18.2.2; RFC 5626 §4.3, §5.3):

- UDP goes out of a listening UDP socket of the remote's address family (the one named by the
  flow, if given), so the peer sees our listening port as the source.
- TCP/TLS uses ``flow`` if it is still open; else any healthy open connection to the same remote
  address and transport (a response follows the connection its request came on; a request to a
  peer that connected to us reuses that connection, which is what keeps apps behind NAT
  reachable); else a new connection, read like any accepted one. Concurrent sends to one remote
  share a single connection attempt.

Robustness: the callback is wrapped so that an exception in it is logged and never reaches a
protocol; a bad peer can only close its own connection. No task is started here; timers are
``call_later`` handles owned by their connection and cancelled when it closes. :meth:`close`
closes every socket and waits for all of them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable

from sipush.errors import TransportError
from sipush.sip.ip import ip_literal
from sipush.transport.events import TransportEvent
from sipush.transport.flow import FLOW_TRANSPORTS, Address, Flow, normalize_address
from sipush.transport.listen import ListenSpec
from sipush.transport.parsing import Parser, default_parser
from sipush.transport.stream import StreamConnection, StreamOptions
from sipush.transport.udp import DatagramEndpoint

logger = logging.getLogger(__name__)

_CLOSE_GRACE = 2.0  # seconds a connection gets to close cleanly (TLS close_notify) in close()


class TransportLayer:
    """Every UDP, TCP and TLS socket of one sipush process.

    ``on_event`` receives each :data:`~sipush.transport.events.TransportEvent`; it is called from
    the event loop and must not block (schedule work instead). ``parse`` defaults to
    ``sipush.sip.parse_message``. ``framing_error_linger`` is how long a connection that lost
    framing stays open for the error response; ``connect_timeout`` bounds outgoing TCP/TLS
    connection attempts (including the TLS handshake).
    """

    def __init__(
        self,
        on_event: Callable[[TransportEvent], None],
        *,
        max_message_size: int = 65535,
        incomplete_message_timeout: float = 32.0,
        tls_context: ssl.SSLContext | None = None,
        client_tls_context: ssl.SSLContext | None = None,
        framing_error_linger: float = 2.0,
        connect_timeout: float = 10.0,
        parse: Parser | None = None,
    ) -> None:
        self._on_event = on_event
        self._max_message_size = max_message_size
        self._stream_options = StreamOptions(
            max_message_size=max_message_size,
            incomplete_message_timeout=incomplete_message_timeout,
            framing_error_linger=framing_error_linger,
        )
        self._tls_context = tls_context
        self._client_tls_context = client_tls_context
        self._connect_timeout = connect_timeout
        self._parse = parse if parse is not None else default_parser()
        self._listening: list[ListenSpec] = []
        self._servers: list[asyncio.Server] = []
        self._datagram_endpoints: list[DatagramEndpoint] = []
        self._connections: dict[Flow, StreamConnection] = {}
        self._connections_to: dict[tuple[str, Address], list[StreamConnection]] = {}
        self._connecting: dict[tuple[str, Address, str], asyncio.Future[StreamConnection]] = {}
        self._closed = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def listening(self) -> list[ListenSpec]:
        """The bound listen addresses (with the real port where port 0 was asked for)."""
        return list(self._listening)

    async def listen(self, spec: ListenSpec) -> tuple[str, int]:
        """Bind ``spec``; return the bound (host, port). TransportError with one readable line."""
        if self._closed:
            raise TransportError(f"cannot listen on {spec}: transport layer is closed")
        loop = asyncio.get_running_loop()
        try:
            if spec.transport == "udp":
                _, endpoint = await loop.create_datagram_endpoint(
                    self._new_datagram_endpoint, local_addr=(spec.host, spec.port)
                )
                self._datagram_endpoints.append(endpoint)
                bound = endpoint.local
            elif spec.transport in ("tcp", "tls"):
                context = None
                if spec.transport == "tls":
                    if self._tls_context is None:
                        raise TransportError(
                            f"cannot listen on {spec}: no TLS server context (certificate) given"
                        )
                    context = self._tls_context
                server = await loop.create_server(
                    lambda: self._new_connection(spec.transport),
                    spec.host,
                    spec.port,
                    ssl=context,
                )
                self._servers.append(server)
                bound = normalize_address(server.sockets[0].getsockname())
            else:
                raise TransportError(f"cannot listen on {spec}: unknown transport")
        except OSError as err:
            raise TransportError(f"cannot listen on {spec}: {_reason(err)}") from err
        self._listening.append(ListenSpec(spec.transport, bound[0], bound[1]))
        logger.debug("bound %s", self._listening[-1])
        return bound

    async def send(
        self,
        data: bytes,
        *,
        transport: str,
        remote: tuple[str, int],
        flow: Flow | None = None,
        tls_server_name: str | None = None,
    ) -> Flow:
        """Send one message; return the flow it left by. TransportError if it cannot.

        ``tls_server_name`` is the name a new TLS connection verifies the certificate against
        (RFC 5922: the SIP domain); by default the remote host as given.
        """
        transport = transport.lower()
        if transport not in FLOW_TRANSPORTS:
            raise TransportError(f"cannot send over unknown transport {transport!r}")
        if self._closed:
            raise TransportError("cannot send: transport layer is closed")
        if flow is not None and flow.transport != transport:
            flow = None
        if transport == "udp":
            address = await self._resolve(remote, socket.SOCK_DGRAM)
            return self._datagram_endpoint_for(address, flow).send(data, address)
        connection = self._connections.get(flow) if flow is not None else None
        if connection is None or not connection.is_open:
            address = await self._resolve(remote, socket.SOCK_STREAM)
            connection = self._reusable_connection(transport, address, tls_server_name)
            if connection is None:
                server_name = tls_server_name or normalize_address(remote)[0]
                connection = await self._connect(transport, address, server_name)
        connection.write(data)
        await connection.drain()
        return connection.flow

    def send_now(
        self, data: bytes, *, transport: str, remote: tuple[str, int], flow: Flow | None = None
    ) -> Flow | None:
        """:meth:`send` without a task, when nothing needs waiting for: a datagram to an IP
        address. Returns ``None`` when :meth:`send` must be used instead (a name to resolve, a
        connection to open or drain). TransportError as :meth:`send`."""
        if transport != "udp" or self._closed:
            return None
        address = normalize_address(remote)
        if ip_literal(address[0]) is None:
            return None
        if flow is not None and flow.transport != "udp":
            flow = None
        return self._datagram_endpoint_for(address, flow).send(data, address)

    def is_open(self, flow: Flow) -> bool:
        """Whether ``flow`` can still carry a message (its connection, or UDP socket, is open)."""
        if flow.transport == "udp":
            return any(e.is_open and e.local == flow.local for e in self._datagram_endpoints)
        connection = self._connections.get(flow)
        return connection is not None and connection.is_open

    async def close(self) -> None:
        """Close every socket and wait for them; FlowClosed is still reported per connection."""
        self._closed = True
        for server in self._servers:
            server.close()
        for endpoint in self._datagram_endpoints:
            endpoint.close()
        connections = list(self._connections.values())
        for connection in connections:
            connection.close()
        await asyncio.gather(*(server.wait_closed() for server in self._servers))
        await asyncio.gather(*(endpoint.closed for endpoint in self._datagram_endpoints))
        if connections:
            _, slow = await asyncio.wait([c.closed for c in connections], timeout=_CLOSE_GRACE)
            for connection in connections:
                if not connection.closed.done():
                    connection.abort()
            if slow:
                await asyncio.wait(slow, timeout=_CLOSE_GRACE)
        self._servers.clear()
        self._datagram_endpoints.clear()
        self._listening.clear()

    # -- ConnectionRegistry (called by StreamConnection) --------------------------------------

    def connection_opened(self, connection: StreamConnection) -> None:
        if self._closed:
            connection.close()  # accepted or connected while shutting down
        flow = connection.flow
        self._connections[flow] = connection
        self._connections_to.setdefault((flow.transport, flow.remote), []).append(connection)
        logger.debug("%s opened", flow)

    def connection_closed(self, connection: StreamConnection) -> None:
        flow = connection.flow
        if self._connections.get(flow) is connection:
            del self._connections[flow]
        key = (flow.transport, flow.remote)
        same_remote = self._connections_to.get(key, [])
        if connection in same_remote:
            same_remote.remove(connection)
        if not same_remote:
            self._connections_to.pop(key, None)
        logger.debug("%s closed", flow)

    # -- internals ----------------------------------------------------------------------------

    def _emit(self, event: TransportEvent) -> None:
        """Hand one event to the callback; its exceptions are logged, never propagated."""
        try:
            self._on_event(event)
        except Exception:
            logger.exception("transport event handler failed on %r", event)

    def _new_datagram_endpoint(self) -> DatagramEndpoint:
        return DatagramEndpoint(
            parse=self._parse, report=self._emit, max_message_size=self._max_message_size
        )

    def _new_connection(self, transport: str) -> StreamConnection:
        return StreamConnection(
            transport,
            options=self._stream_options,
            parse=self._parse,
            report=self._emit,
            registry=self,
        )

    def _datagram_endpoint_for(self, remote: Address, flow: Flow | None) -> DatagramEndpoint:
        """The listening UDP socket to send from: the flow's, else one of the remote's family."""
        family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
        candidates = [e for e in self._datagram_endpoints if e.is_open and e.family == family]
        for endpoint in candidates:
            if flow is not None and endpoint.local == flow.local:
                return endpoint
        if not candidates:
            version = "IPv6" if family == socket.AF_INET6 else "IPv4"
            raise TransportError(
                f"cannot send to udp:{_host_text(remote[0])}:{remote[1]}: "
                f"not listening on any {version} UDP address"
            )
        return candidates[0]

    def _reusable_connection(
        self, transport: str, remote: Address, tls_server_name: str | None
    ) -> StreamConnection | None:
        """The newest healthy connection to ``remote`` (RFC 3261 §18.2.2, RFC 5626 §4.3).

        When a TLS server name is required, only a connection whose certificate was verified for
        that name qualifies (RFC 5626 §4.3: for TLS the certificate must match too).
        """
        for connection in reversed(self._connections_to.get((transport, remote), [])):
            if connection.is_reusable and (
                tls_server_name is None or connection.server_name == tls_server_name
            ):
                return connection
        return None

    async def _connect(self, transport: str, remote: Address, server_name: str) -> StreamConnection:
        """Open a connection to ``remote``, sharing one attempt among concurrent senders."""
        key = (transport, remote, server_name)
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        attempt: asyncio.Future[StreamConnection] = asyncio.get_running_loop().create_future()
        attempt.add_done_callback(_mark_retrieved)
        self._connecting[key] = attempt
        try:
            connection = await self._open_connection(transport, remote, server_name)
        except BaseException as err:
            if not isinstance(err, TransportError):
                err = TransportError(f"connect cancelled: {err!r}")
            attempt.set_exception(err)
            raise
        else:
            attempt.set_result(connection)
            return connection
        finally:
            del self._connecting[key]

    async def _open_connection(
        self, transport: str, remote: Address, server_name: str
    ) -> StreamConnection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if transport == "tls":
            context = self._client_tls_context or ssl.create_default_context()
        target = f"{transport}:{_host_text(remote[0])}:{remote[1]}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: self._new_connection(transport),
                    remote[0],
                    remote[1],
                    ssl=context,
                    server_hostname=server_name if context is not None else None,
                )
        except TimeoutError as err:
            raise TransportError(
                f"cannot connect to {target}: no answer within {self._connect_timeout:g} s"
            ) from err
        except OSError as err:
            raise TransportError(f"cannot connect to {target}: {_reason(err)}") from err
        if self._closed:
            connection.close()
            raise TransportError(f"cannot connect to {target}: transport layer is closed")
        if context is not None:
            connection.server_name = server_name
        return connection

    async def _resolve(self, remote: tuple[str, int], kind: socket.SocketKind) -> Address:
        """An IP address for ``remote``: IP literals as they are, names through the resolver."""
        host, port = normalize_address(remote)
        if ip_literal(host) is not None:
            return host, port
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
        except OSError as err:
            raise TransportError(f"cannot resolve {host}: {_reason(err)}") from err
        if not infos:
            raise TransportError(f"cannot resolve {host}: no address")
        return normalize_address(infos[0][4])


def _reason(err: OSError) -> str:
    """A short lower-case reason: 'address already in use', 'connection refused'."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS error: certificate rejected: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if err.errno is not None and err.errno in errno.errorcode:
        return os.strerror(err.errno).lower()
    return str(err.strerror or err).lower()


def _mark_retrieved(attempt: asyncio.Future[StreamConnection]) -> None:
    """A failed attempt is re-raised to its first sender; others may have given up waiting."""
    if not attempt.cancelled():
        attempt.exception()


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
