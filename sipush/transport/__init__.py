"""Transports: asyncio UDP, TCP and TLS that only move bytes and report flow events.

- :mod:`~sipush.transport.framer`  sans-I/O stream framer (Content-Length, RFC 5626 keep-alives)
- :mod:`~sipush.transport.flow`    :class:`Flow`, the transport association of a message
- :mod:`~sipush.transport.events`  :class:`Received`, :class:`Malformed`, :class:`FlowClosed`
- :mod:`~sipush.transport.udp`     one listening UDP socket
- :mod:`~sipush.transport.stream`  one TCP or TLS connection
- :mod:`~sipush.transport.layer`   :class:`TransportLayer`, which owns all of them
- :mod:`~sipush.transport.listen`  ``udp:HOST:PORT`` listen addresses
"""

from sipush.transport.events import FlowClosed, Malformed, Received, TransportEvent
from sipush.transport.flow import Flow
from sipush.transport.layer import TransportLayer
from sipush.transport.listen import ListenSpec, parse_listen

__all__ = [
    "Flow",
    "FlowClosed",
    "ListenSpec",
    "Malformed",
    "Received",
    "TransportEvent",
    "TransportLayer",
    "parse_listen",
]
