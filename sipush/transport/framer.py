"""Sans-I/O stream framer: cut a TCP/TLS byte stream into SIP messages and keep-alives.

Shared by every stream transport (TCP, TLS); it owns no socket and no clock. Bytes go in through
:meth:`StreamFramer.feed`, events come out: :class:`Frame` (exactly one message), or the RFC 5626
keep-alives :class:`KeepAlivePing` and :class:`KeepAlivePong`.

Theory of operation
-------------------
The framer is always in one of three states:

``BETWEEN``  between messages. A run of CRLFs is read in pairs: CRLFCRLF is a ping, which the
             server MUST answer at once with one CRLF (RFC 5626 §3.5.1, §4.4.1, §5.4); a lone
             CRLF is a pong, needing nothing. Either way the CRLFs are not part of the next
             message: leading CRLFs before a start line are ignored (RFC 3261 §7.5). When the
             input ends right after a lone CRLF the framer cannot yet know whether a second one
             follows; it reports the pong at once (so a pinging client is not kept waiting) and
             remembers it, and if the next bytes are a CRLF it reports the ping as well. A ping
             split across reads is thus always answered; the only cost is one extra pong, which
             needs no action. Any other byte starts a message.
``HEAD``     reading a head. The head ends at the first CRLFCRLF (RFC 3261 §7). The search resumes
             where it stopped, so byte-by-byte input costs linear time. If no end is found within
             ``max_message_size`` octets the head is too large: 513, without buffering more.
``BODY``     the head is complete and gave a Content-Length; wait until that many octets follow,
             then cut the frame (head + CRLFCRLF + body). The body is never scanned: it may hold
             NULs, bare LFs or anything else (RFC 4475 §3.1.1.11 mpart01).

Content-Length is mandatory on streams and is the only way to find the end of a message
(RFC 3261 §18.3, §20.14). It is found in the head case-insensitively, including the compact form
``l`` (§7.3.3), LWS before the colon and folded lines (§7.3.1). Missing, empty, negative,
non-numeric, absurd (more than 2**32-1) or conflicting duplicate values are unrecoverable
framing errors (RFC 4475 §3.1.2.3 ncl, §3.3.9 mcl01): :class:`~sipush.errors.FramingError`,
status 400. A message whose head or whole size exceeds ``max_message_size`` raises status 513
(RFC 3261 §21.5.7). After any error the framer is dead: the stream cannot be re-synchronised and
the connection must be closed. Frames completed before the error are still delivered: a
:meth:`~StreamFramer.feed` that completed events before failing returns them and sets
:attr:`~StreamFramer.error`; the error is raised by that call if it completed nothing, else by
the next one, and by every call after that.

When the head was complete, the error carries a :class:`~sipush.errors.RawHead` (from the SIP
core's ``read_raw_head``) so the server can answer the request (RFC 3261 §8.2.6.2) before it
closes the connection.

An incomplete message (clerr, RFC 4475 §3.1.2.2) is not an error here: the framer just waits.
:attr:`StreamFramer.incomplete_bytes` tells the transport that a message is pending so it can
close a connection that stalls mid-message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sipush.errors import FramingError
from sipush.sip import read_raw_head

CRLF = b"\r\n"
CRLFCRLF = b"\r\n\r\n"

# RFC 3261 §7.3.1: a line starting with SP or HT continues the previous header line.
_FOLD_START = (0x20, 0x09)
_CONTENT_LENGTH_NAMES = (b"content-length", b"l")  # RFC 3261 §7.3.3 compact form
_MAX_CONTENT_LENGTH = 2**32 - 1  # an absurd value past this is a syntax error, not a 513


@dataclass(frozen=True)
class Frame:
    """Exactly one SIP message: head, CRLFCRLF and Content-Length octets of body."""

    data: bytes


@dataclass(frozen=True)
class KeepAlivePing:
    """A CRLFCRLF between messages: answer one CRLF at once (RFC 5626 §3.5.1, §4.4.1, §5.4)."""


@dataclass(frozen=True)
class KeepAlivePong:
    """A lone CRLF between messages: the answer to a ping. Nothing to do."""


FramerEvent = Frame | KeepAlivePing | KeepAlivePong


class _State(enum.Enum):
    BETWEEN = "between messages"
    HEAD = "reading a head"
    BODY = "reading a body"


class StreamFramer:
    """Turn a SIP byte stream into :data:`FramerEvent` values. One instance per connection."""

    def __init__(self, max_message_size: int = 65535) -> None:
        if max_message_size < len(CRLFCRLF) + 1:
            raise ValueError(f"max_message_size too small: {max_message_size}")
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._state = _State.BETWEEN
        self._head_scanned = 0  # HEAD: where the search for CRLFCRLF resumes
        self._frame_size = 0  # BODY: head + CRLFCRLF + Content-Length
        self._after_lone_crlf = False  # BETWEEN: a pong was reported; a CRLF now makes a ping
        self._error: FramingError | None = None
        self._error_raised = False

    @property
    def incomplete_bytes(self) -> int:
        """Octets buffered for a message that has begun but is not complete (0 between messages)."""
        if self._error is not None or self._state is _State.BETWEEN:
            return 0
        return len(self._buffer)

    @property
    def error(self) -> FramingError | None:
        """The framing error that killed the stream, or ``None`` while it is healthy."""
        return self._error

    def feed(self, data: bytes) -> list[FramerEvent]:
        """Add received octets; return the events they complete, in stream order.

        On an unrecoverable error, raise :class:`FramingError`. Events are never lost: if this
        call completed events before the error, it returns them and the error is raised by the
        next call instead (:attr:`error` is set at once, so the caller can check it). Once raised,
        every later call raises again.
        """
        if self._error is not None:
            if self._error_raised:
                raise FramingError(
                    f"stream already failed: {self._error.detail}", self._error.status
                )
            self._error_raised = True
            raise self._error
        self._buffer += data
        events: list[FramerEvent] = []
        try:
            self._drain(events)
        except FramingError as err:
            self._error = err
            self._buffer.clear()
            if not events:
                self._error_raised = True
                raise
        return events

    def _drain(self, events: list[FramerEvent]) -> None:
        while True:
            if self._state is _State.BETWEEN:
                event = self._read_keepalive()
                if event is None:
                    if not self._buffer or self._buffer == b"\r":
                        return  # need more bytes to tell a CRLF from a start line
                    self._state = _State.HEAD
                    self._head_scanned = 0
                else:
                    events.append(event)
            elif self._state is _State.HEAD:
                if not self._read_head():
                    return
            else:
                if len(self._buffer) < self._frame_size:
                    return
                events.append(Frame(bytes(self._buffer[: self._frame_size])))
                del self._buffer[: self._frame_size]
                self._state = _State.BETWEEN

    def _read_keepalive(self) -> FramerEvent | None:
        """Consume a ping or pong at the front of the buffer, if one is there (RFC 5626 §4.4.1)."""
        buffer = self._buffer
        if self._after_lone_crlf:
            if buffer.startswith(CRLF):
                # The second half of a ping that arrived in two reads.
                del buffer[:2]
                self._after_lone_crlf = False
                return KeepAlivePing()
            if buffer == b"\r" or not buffer:
                return None
            self._after_lone_crlf = False
        if not buffer.startswith(CRLF):
            return None
        if buffer.startswith(CRLFCRLF):
            del buffer[:4]
            return KeepAlivePing()
        # A lone CRLF. If the buffer ends here (or in a bare CR) a second CRLF may still come.
        del buffer[:2]
        self._after_lone_crlf = buffer == b"\r" or not buffer
        return KeepAlivePong()

    def _read_head(self) -> bool:
        """Look for the end of the head; on success move to BODY. False if more bytes are needed."""
        buffer = self._buffer
        end = buffer.find(CRLFCRLF, self._head_scanned)
        if end < 0:
            if len(buffer) >= self.max_message_size:
                # Even if CRLFCRLF came next, head + CRLFCRLF would exceed the limit.
                raise FramingError(f"message head longer than {self.max_message_size} octets", 513)
            self._head_scanned = max(0, len(buffer) - len(CRLFCRLF) + 1)
            return False
        head = bytes(buffer[:end])
        head_size = end + len(CRLFCRLF)
        if head_size > self.max_message_size:
            raise FramingError(
                f"message head of {head_size} octets exceeds the limit of {self.max_message_size}",
                513,
                read_raw_head(head),
            )
        try:
            content_length = _content_length(head)
        except FramingError as err:
            raise FramingError(err.detail, err.status, read_raw_head(head)) from None
        frame_size = head_size + content_length
        if frame_size > self.max_message_size:
            raise FramingError(
                f"message of {frame_size} octets exceeds the limit of {self.max_message_size}",
                513,
                read_raw_head(head),
            )
        self._frame_size = frame_size
        self._state = _State.BODY
        return True


def _header_lines(head: bytes) -> list[bytes]:
    """Split a head into its start line and unfolded header lines (RFC 3261 §7.3.1)."""
    lines: list[bytes] = []
    for line in head.split(CRLF):
        if len(lines) > 1 and line and line[0] in _FOLD_START:  # never fold into the start line
            lines[-1] += b" " + line.strip(b" \t")
        else:
            lines.append(line)
    return lines


def _content_length(head: bytes) -> int:
    """The Content-Length a head declares; FramingError (400) if it cannot frame the stream.

    RFC 3261 §18.3 / §20.14: mandatory on streams. RFC 4475 §3.1.2.3 (ncl: negative or non-numeric)
    and §3.3.9 (mcl01: conflicting duplicates) are unrecoverable on a stream.
    """
    values: list[int] = []
    for line in _header_lines(head)[1:]:
        name, colon, value = line.partition(b":")
        if not colon or name.rstrip(b" \t").lower() not in _CONTENT_LENGTH_NAMES:
            continue
        text = value.strip(b" \t")
        shown = text[:20].decode("ascii", "replace")
        if not text.isdigit():  # bytes.isdigit: ASCII digits only, so no sign, no space
            raise FramingError(f"Content-Length is not a non-negative integer: {shown!r}")
        digits = text.lstrip(b"0") or b"0"
        # Check the length before int(): huge digit strings are slow and int() refuses them.
        if len(digits) > len(str(_MAX_CONTENT_LENGTH)) or int(digits) > _MAX_CONTENT_LENGTH:
            raise FramingError(f"Content-Length out of range: {shown!r}")
        values.append(int(digits))
    if not values:
        raise FramingError("missing Content-Length (mandatory on streams, RFC 3261 §18.3)")
    if len(set(values)) > 1:
        shown_values = ", ".join(str(v) for v in values)
        raise FramingError(f"conflicting Content-Length values: {shown_values}")
    return values[0]
