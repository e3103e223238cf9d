"""UDP: one :class:`DatagramEndpoint` per listening socket, receiving and sending datagrams.

Each datagram is one message (RFC 3261 §18.3: with no Content-Length the body runs to the end of
the datagram; the parser handles that with ``datagram=True``). Datagrams that are only CRLFs are
keep-alives and ignored. Datagrams whose first octet is 0 or 1 are STUN (RFC 5626 §8, RFC 7983
demultiplexing), never SIP; they are dropped here (answering STUN Binding requests is not done
yet). A datagram larger than ``max_message_size`` is reported as Malformed with status 513.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from sipush.errors import ParseError, TransportError
from sipush.sip import read_raw_head
from sipush.transport.events import Malformed, TransportEvent
from sipush.transport.flow import Address, Flow, normalize_address
from sipush.transport.parsing import Parser, parse_to_event

logger = logging.getLogger(__name__)

_STUN_FIRST_OCTETS = (0x00, 0x01)  # RFC 5626 §8: SIP never starts with these
# The largest UDP payload: 65535 minus the IP and UDP headers.
MAX_DATAGRAM = {socket.AF_INET: 65507, socket.AF_INET6: 65527}


class DatagramEndpoint(asyncio.DatagramProtocol):
    """One bound UDP socket: turns datagrams into events and sends datagrams."""

    def __init__(
        self, *, parse: Parser, report: Callable[[TransportEvent], None], max_message_size: int
    ) -> None:
        self._parse = parse
        self._report = report
        self._max_message_size = max_message_size
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Address = ("", 0)
        self.family = socket.AF_INET
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport: cast.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.local = normalize_address(transport.get_extra_info("sockname"))
        sock = transport.get_extra_info("socket")
        self.family = sock.family
        _enlarge_receive_buffer(sock)

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        flow = Flow("udp", self.local, normalize_address(addr))
        if not data.strip(b"\r\n"):
            return  # a CRLF keep-alive (RFC 5626 §4.4.1 is for streams; some UAs send it on UDP)
        if data[0] in _STUN_FIRST_OCTETS:
            logger.debug("dropped %d-octet STUN datagram from %s", len(data), flow)
            return
        if len(data) > self._max_message_size:
            error = ParseError(
                f"datagram of {len(data)} octets exceeds the limit of {self._max_message_size}",
                513,
                read_raw_head(data),
            )
            self._report(Malformed(error, flow))
            return
        event = parse_to_event(self._parse, data, datagram=True, flow=flow)
        if event is not None:
            self._report(event)

    def send(self, data: bytes, remote: Address) -> Flow:
        """Send one datagram to ``remote`` (an IP address of this socket's family)."""
        if self._transport is None or self._transport.is_closing():
            raise TransportError(f"cannot send from udp:{self.local}: socket closed")
        if len(data) > MAX_DATAGRAM[self.family]:
            raise TransportError(f"cannot send {len(data)} octets in one UDP datagram")
        self._transport.sendto(data, remote)
        return Flow("udp", self.local, remote)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable ...) on an unconnected socket: nothing to attribute them to.
        logger.debug("udp:%s: %s", self.local, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        elif not self.closed.done():
            self.closed.set_result(None)


RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: about 4,000 SIP datagrams queued while the loop is busy


def _enlarge_receive_buffer(sock: socket.socket) -> None:
    """Ask for a 4 MiB receive buffer: a burst that arrives while sipush is busy (a call wave,
    a store commit) waits in the kernel instead of being dropped (``RcvbufErrors``), which
    would cost the sender a 500 ms retransmission. ``SO_RCVBUFFORCE`` passes the kernel's
    ``net.core.rmem_max`` cap when sipush may (root, CAP_NET_ADMIN); otherwise the kernel
    gives what the cap allows."""
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError as err:
            logger.debug("cannot set the UDP receive buffer (option %s): %s", option, err)
