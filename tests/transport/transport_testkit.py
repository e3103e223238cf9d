"""Helpers for the real-socket transport tests: an event recorder, messages, TLS contexts."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine
from typing import Any, TypeVar

import trustme

from sipush.transport.events import TransportEvent

EventT = TypeVar("EventT")
WAIT = 5.0  # seconds any single expected event may take on loopback


class EventLog:
    """The ``on_event`` callback of a transport layer under test; await events in order."""

    def __init__(self) -> None:
        self.events: list[TransportEvent] = []
        self._taken: set[int] = set()
        self._changed: asyncio.Event | None = None

    def __call__(self, event: TransportEvent) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    def of(self, kind: type[EventT]) -> list[EventT]:
        return [e for e in self.events if isinstance(e, kind)]

    async def next(self, kind: type[EventT], timeout: float = WAIT) -> EventT:
        """The oldest event of ``kind`` not returned before; waits for it."""
        async with asyncio.timeout(timeout):
            while True:
                for index, event in enumerate(self.events):
                    if index not in self._taken and isinstance(event, kind):
                        self._taken.add(index)
                        return event
                self._changed = asyncio.Event()
                await self._changed.wait()


def options_request(
    transport: str = "TCP", *, call_id: str = "a84b4c76e66710", body: bytes = b""
) -> bytes:
    """A valid OPTIONS request (RFC 3261 §11) for ``transport``."""
    return (
        f"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} pc33.example.com;branch=z9hG4bKhjhs8ass877\r\n"
        f"Max-Forwards: 70\r\n"
        f"To: <sip:carol@chicago.example.com>\r\n"
        f"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 63104 OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a throwaway CA, a certificate for the loopback addresses."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "::1", "localhost", "sip.example.com").configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run one test's coroutine on a fresh event loop."""
    asyncio.run(coroutine)


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(size)


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One SIP message from a stream: head up to CRLFCRLF, then Content-Length octets."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value)
        return head + await reader.readexactly(length)


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.read()
