"""The one place where transports turn bytes into a message event (or a Malformed one).

Both the UDP endpoint and the stream connections call :func:`parse_to_event`; the parser itself
lives in the SIP core (``sipush.sip.parse_message``) and is injected, so the transport layer never
decides what a message means. A parser bug must not take a listener down: any exception other than
:class:`~sipush.errors.ParseError` is logged and the input dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from sipush.errors import ParseError
from sipush.transport.events import Malformed, Received
from sipush.transport.flow import Flow

if TYPE_CHECKING:
    from sipush.sip import Request, Response

logger = logging.getLogger(__name__)


class Parser(Protocol):
    """``sipush.sip.parse_message``: ``datagram=True`` for UDP, ``False`` for one stream frame."""

    def __call__(self, data: bytes, *, datagram: bool) -> Request | Response: ...


def default_parser() -> Parser:
    """The SIP core's parser, imported on first use (the transport layer sits above the core)."""
    from sipush.sip import parse_message

    return parse_message


def parse_to_event(
    parse: Parser, data: bytes, *, datagram: bool, flow: Flow
) -> Received | Malformed | None:
    """Parse one datagram or frame; ``None`` only if the parser itself crashed (logged)."""
    try:
        return Received(parse(data, datagram=datagram), flow)
    except ParseError as err:
        return Malformed(err, flow)
    except Exception:
        logger.exception("parser crashed on %d octets from %s; input dropped", len(data), flow)
        return None
