"""The one error hierarchy of sipush.

Every error sipush raises on purpose derives from :class:`SipushError`::

    SipushError
    ├── ParseError          a malformed SIP message; carries the status to answer (RFC 3261 §21)
    │   └── FramingError    a stream (TCP/TLS) that cannot be re-synchronised: close the connection
    ├── ConfigError         a bad config file, flag or value; the CLI prints it as one line, exit 2
    ├── TransportError      a socket-level failure: bind, connect, send on a closed flow
    ├── StoreError          the binding store failed: cannot open/connect, locked, bad schema
    ├── TransactionError    an input a transaction state machine does not allow (RFC 3261 §17)
    └── PushParamError      malformed push info in a REGISTER (X-Push, RFC 8599 pn-*, pn-tok): 400

Nothing else leaves the SIP parser: no ``ValueError``, ``IndexError`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass


class SipushError(Exception):
    """Base of every error sipush raises on purpose."""


@dataclass(frozen=True)
class RawHead:
    """What could be read of a malformed message before the error: enough to answer it.

    ``start_line`` is the first line as text; ``headers`` are the (name, value) pairs that were
    split off, in order, unvalidated. The server copies Via, From, To, Call-ID and CSeq from here
    into the error response (RFC 3261 §8.2.6.2).
    """

    start_line: str
    headers: tuple[tuple[str, str], ...]

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/")


class ParseError(SipushError):
    """A SIP message could not be parsed or is semantically invalid.

    ``status`` is the response code a UAS or proxy should answer a request with (400 by default;
    416, 420, 501, 505, 513 where RFC 3261 says so). Responses that fail to parse are dropped.
    ``head`` holds whatever was read before the error, or ``None`` when nothing usable was.
    """

    def __init__(self, detail: str, status: int = 400, head: RawHead | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.head = head

    def with_head(self, head: RawHead) -> ParseError:
        """Return the same error carrying ``head`` (keeps the subclass)."""
        err = type(self)(self.detail, self.status, head)
        return err

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.detail!r})"


class FramingError(ParseError):
    """A stream transport lost message boundaries (bad Content-Length, over-long message).

    RFC 4475 §3.1.2.3 / §3.3.9: over TCP such an error is unrecoverable; answer if possible and
    close the connection.
    """


class ConfigError(SipushError):
    """A bad configuration file, command-line flag or value. Its text is one readable line."""


class TransportError(SipushError):
    """A socket-level failure: cannot bind, cannot connect, the flow is closed."""


class StoreError(SipushError):
    """The binding store (``sipush.store``) failed: the database cannot be opened or reached, is
    locked for too long, or holds a schema this sipush does not know. Its text is one readable
    line naming the database (never its password); the CLI prints it as ``sipush: error: ...``.
    """


class TransactionError(SipushError):
    """An input a transaction state machine does not allow in its current state.

    From the network (a message the peer should not have sent): log it and drop the message.
    From the transaction user or the timer shell: a bug in the caller.
    """


class PushParamError(SipushError):
    """Malformed push information in a REGISTER: an ``X-Push`` header, RFC 8599 ``pn-*`` or
    legacy ``pn-tok``/``pn-type``/``app-id`` Contact parameters (``sipush/push/params.py``).

    The proxy answers 400 with ``Warning: 399 sipush "<warning>"`` and neither stores nor relays
    the REGISTER. ``warning`` is one line of printable ASCII saying exactly what is wrong (it
    never repeats a push token); it may contain ``"`` and ``\\``, so put it in the Warning
    header through ``sipush.sip.grammar.quote``.
    """

    def __init__(self, warning: str) -> None:
        super().__init__(warning)
        self.warning = warning

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.warning!r})"
