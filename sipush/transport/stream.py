"""One TCP or TLS connection: bytes through the shared framer, frames to events, writes back.

The same :class:`StreamConnection` serves accepted and outgoing connections, over plain TCP or
TLS (asyncio's ``ssl`` layer sits below it, so it only ever sees cleartext).

Theory of operation
-------------------
``connection_made``  the flow is known; the connection registers itself with its owner.
``data_received``    bytes go to a :class:`~sipush.transport.framer.StreamFramer`. A frame is parsed
                     (``datagram=False``) and reported as Received or Malformed. A keep-alive ping
                     is answered at once with one CRLF on the same connection (RFC 5626 §4.4.1,
                     §5.4 MUST). While a message is incomplete a timer runs; if it fires the
                     peer has stalled mid-message and the connection is closed (RFC 4475 §3.1.2.2:
                     "close the connection if none arrives in reasonable time").
framing error        the stream cannot be re-synchronised (RFC 4475 §3.1.2.3, §3.3.9). Reading
                     stops, Malformed is reported (its error carries the status and, when the head
                     was complete, the raw head), and the connection *lingers* for writes: the
                     first write, normally the error response, closes it once flushed; if none
                     comes within ``framing_error_linger`` seconds it closes anyway.
``connection_lost``  by either side or by error: timers are cancelled, the owner is told, and
                     FlowClosed is reported exactly once.

Writes never block the event loop; :meth:`StreamConnection.drain` waits while asyncio's write
buffer is above its high-water mark (flow control by ``pause_writing``/``resume_writing``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from sipush.errors import FramingError, TransportError
from sipush.transport.events import FlowClosed, Malformed, TransportEvent
from sipush.transport.flow import Flow, normalize_address
from sipush.transport.framer import CRLF, Frame, KeepAlivePing, StreamFramer
from sipush.transport.parsing import Parser, parse_to_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    """Limits and timers shared by every stream connection of one transport layer."""

    max_message_size: int
    incomplete_message_timeout: float
    framing_error_linger: float


class ConnectionRegistry(Protocol):
    """The owner of the connections (the transport layer): told when each one opens and closes."""

    def connection_opened(self, connection: StreamConnection) -> None: ...

    def connection_closed(self, connection: StreamConnection) -> None: ...


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, accepted or outgoing."""

    def __init__(
        self,
        transport_name: str,
        *,
        options: StreamOptions,
        parse: Parser,
        report: Callable[[TransportEvent], None],
        registry: ConnectionRegistry,
    ) -> None:
        self.transport_name = transport_name
        # The name an outgoing TLS connection verified its server certificate against.
        self.server_name: str | None = None
        self._options = options
        self._parse = parse
        self._report = report
        self._registry = registry
        self._framer = StreamFramer(options.max_message_size)
        self._transport: asyncio.Transport | None = None
        self._flow: Flow | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._close_after_write = False
        self._writable = asyncio.Event()
        self._writable.set()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- state seen by the owner --------------------------------------------------------------

    @property
    def flow(self) -> Flow:
        if self._flow is None:
            raise TransportError("connection not established yet")
        return self._flow

    @property
    def is_open(self) -> bool:
        """Open for writing (a connection lingering after a framing error still is)."""
        return self._transport is not None and not self._transport.is_closing()

    @property
    def is_reusable(self) -> bool:
        """Open and healthy: may carry new messages to its peer (not lingering after an error)."""
        return self.is_open and not self._close_after_write

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
        if local is None or remote is None:  # the peer already went away: nothing to report
            transport.abort()
            return
        self._flow = Flow(self.transport_name, normalize_address(local), normalize_address(remote))
        self._registry.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing() or self._framer.error:
            return
        try:
            events = self._framer.feed(data)
        except FramingError as err:
            self._on_framing_error(err)
            return
        for event in events:
            if isinstance(event, Frame):
                parsed = parse_to_event(self._parse, event.data, datagram=False, flow=self.flow)
                if parsed is not None:
                    self._report(parsed)
            elif isinstance(event, KeepAlivePing) and not self._transport.is_closing():
                # RFC 5626 §4.4.1 / §5.4: MUST answer a CRLFCRLF ping with one CRLF, immediately.
                self._transport.write(CRLF)
            # KeepAlivePong: nothing to do.
        if self._framer.error is not None:
            # Frames completed before the error were delivered above; now the stream is lost.
            self._on_framing_error(self._framer.error)
            return
        self._watch_incomplete_message(any(isinstance(e, Frame) for e in events))

    def eof_received(self) -> bool | None:
        # SIP does not use half-closed connections: let asyncio close ours too.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("%s lost: %s", self._flow, exc)
        self._cancel_timers()
        self._writable.set()  # wake writers; they will find the connection closed
        if not self.closed.done():
            self.closed.set_result(None)
        if self._flow is None:
            return  # never made: nothing was registered or reported
        self._registry.connection_closed(self)
        self._report(FlowClosed(self._flow))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- used by the owner --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; after a framing error, close the connection once it is flushed."""
        if self._transport is None or self._transport.is_closing():
            raise TransportError(f"cannot send on {self._flow}: connection closed")
        self._transport.write(data)
        if self._close_after_write:
            self._transport.close()  # flushes the write buffer first

    async def drain(self) -> None:
        """Wait until asyncio's write buffer is below its high-water mark (or the flow closes)."""
        await self._writable.wait()

    def close(self) -> None:
        """Close gracefully (pending writes are flushed; TLS sends close_notify)."""
        if self._transport is not None:
            self._transport.close()
        elif not self.closed.done():
            self.closed.set_result(None)

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        if self._transport is not None:
            self._transport.abort()

    # -- internals ----------------------------------------------------------------------------

    def _on_framing_error(self, err: FramingError) -> None:
        assert self._transport is not None
        logger.info("%s: framing error (%s); closing the connection", self._flow, err.detail)
        self._cancel_timers()
        self._transport.pause_reading()
        self._close_after_write = True
        self._linger_timer = self._loop.call_later(
            self._options.framing_error_linger, self._transport.close
        )
        self._report(Malformed(err, self.flow))

    def _watch_incomplete_message(self, frame_completed: bool) -> None:
        """Run the stall timer while a message is incomplete (RFC 4475 §3.1.2.2 clerr)."""
        if frame_completed and self._stall_timer is not None:
            self._stall_timer.cancel()  # a new message starts its own clock
            self._stall_timer = None
        if self._framer.incomplete_bytes == 0:
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
        elif self._stall_timer is None:
            self._stall_timer = self._loop.call_later(
                self._options.incomplete_message_timeout, self._on_stall
            )

    def _on_stall(self) -> None:
        self._stall_timer = None
        logger.info(
            "%s: incomplete message (%d octets) stalled for %.1f s; closing the connection",
            self._flow,
            self._framer.incomplete_bytes,
            self._options.incomplete_message_timeout,
        )
        self.close()

    def _cancel_timers(self) -> None:
        for timer in (self._stall_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._stall_timer = self._linger_timer = None
