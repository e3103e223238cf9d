"""What the transport layer reports upward: a message, a malformed message, or a closed flow.

The transports only move bytes (ARCHITECTURE.md, idea 2). They hand each of these events to one
callback; the server decides what to do (answer a malformed request, drop a bad response,
invalidate the bindings of a closed flow: RFC 5626 §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipush.errors import ParseError
from sipush.transport.flow import Flow

if TYPE_CHECKING:
    from sipush.sip import Request, Response


@dataclass(frozen=True)
class Received:
    """A message parsed from one UDP datagram or one stream frame."""

    message: Request | Response
    flow: Flow


@dataclass(frozen=True)
class Malformed:
    """A datagram or frame that failed to parse; ``error.head`` may allow an answer.

    On a stream, a :class:`~sipush.errors.FramingError` means the connection is lost: it is
    reported first (so the server can answer with ``error.status``), then the connection closes.
    """

    error: ParseError
    flow: Flow


@dataclass(frozen=True)
class FlowClosed:
    """A TCP/TLS connection closed, by either side or by an error. Reported once per connection.

    For a registered app this is the sign that the OS suspended or killed it (RFC 5626 §7: a
    closed flow invalidates the bindings that used it).
    """

    flow: Flow


TransportEvent = Received | Malformed | FlowClosed
