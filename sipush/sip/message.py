"""SIP requests and responses as frozen objects (RFC 3261 §7).

A message holds its start line, an ordered :class:`~sipush.sip.headers.Headers` and the body.
Typed views (Via, From/To, CSeq, Contact, Route, ...) are parsed on first access and cached;
:func:`sipush.sip.parser.parse_message` touches the ones routing depends on, so a message that
parsed cannot fail later when a proxy reads them.

Messages never change. A proxy derives new ones through helpers that return a copy:
``with_via_prepended``, ``with_max_forwards_decremented`` (§16.6 step 3), ``with_top_route_popped``
(§16.4), ``with_top_via_removed`` (§16.7 step 3) and the generic header helpers.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Self

from sipush.errors import ParseError
from sipush.sip.address import NameAddr, parse_name_addr
from sipush.sip.grammar import (
    TOKEN_CHARS,
    cached_view,
    capped_int,
    fast_new,
    is_digits,
    is_token,
    split_commas,
)
from sipush.sip.headers import Headers, header_key
from sipush.sip.uri import Uri
from sipush.sip.via import Via, parse_via

MAX_CSEQ = 2**32 - 1  # §8.1.1.5: a 32-bit unsigned integer
MAX_MAX_FORWARDS = 255  # §20.22
DEFAULT_MAX_FORWARDS = 70  # §16.6 step 3

_CSEQ_RE = re.compile(rf"[ \t]*([0-9]+)[ \t]+([{TOKEN_CHARS}]+)[ \t]*")


@dataclass(frozen=True)
class CSeq:
    """``CSeq: 4711 INVITE`` (§20.16)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class _Typed(ABC):
    """Typed, cached views of the headers shared by requests and responses."""

    headers: Headers
    body: bytes

    @cached_view
    def vias(self) -> tuple[Via, ...]:
        return tuple([parse_via(v) for v in _non_empty(list_values(self.headers, "via"), "Via")])

    @cached_view
    def top_via(self) -> Via:
        cached = self.__dict__.get("vias")
        if cached is not None:
            if not cached:
                raise ParseError("missing Via")
            return cached[0]  # type: ignore[no-any-return]
        lines = self.headers.by_key("via")
        if not lines:
            raise ParseError("missing Via")
        first = split_commas(lines[0])[0] if "," in lines[0] else lines[0]
        if not first:
            raise ParseError("empty value in Via")  # RFC 4475 §3.1.2.1 badinv01
        return parse_via(first)

    @cached_view
    def from_(self) -> NameAddr:
        return parse_name_addr(single_value(self.headers, "from", "From"), "From")

    @cached_view
    def to(self) -> NameAddr:
        return parse_name_addr(single_value(self.headers, "to", "To"), "To")

    @cached_view
    def call_id(self) -> str:
        value = single_value(self.headers, "call-id", "Call-ID")
        # callid = word [ "@" word ]: no whitespace (§25.1)
        if not value or " " in value or "\t" in value:
            raise ParseError("bad Call-ID")
        return value

    @cached_view
    def cseq(self) -> CSeq:
        m = _CSEQ_RE.fullmatch(single_value(self.headers, "cseq", "CSeq"))
        if m is None:
            raise ParseError("bad CSeq")
        digits = m.group(1)
        number = capped_int(digits, MAX_CSEQ)
        if number > MAX_CSEQ:
            # RFC 4475 §3.1.2.4 scalar02 / §3.1.2.5 scalarlg
            raise ParseError("CSeq number is larger than 2**32-1")
        return fast_new(CSeq, {"number": number, "method": m.group(2)})

    @cached_view
    def max_forwards(self) -> int | None:
        lines = self.headers.by_key("max-forwards")
        if not lines:
            return None
        if len(lines) > 1:
            raise ParseError("more than one Max-Forwards header")
        value = lines[0]
        number = capped_int(value, MAX_MAX_FORWARDS) if is_digits(value) else MAX_MAX_FORWARDS + 1
        if number > MAX_MAX_FORWARDS:
            raise ParseError("Max-Forwards must be a number from 0 to 255")
        return number

    @cached_view
    def contacts(self) -> tuple[NameAddr, ...]:
        """The Contact values; empty for ``Contact: *`` (see :attr:`contact_is_star`)."""
        if self.contact_is_star:
            return ()
        values = list_values(self.headers, "contact")
        return tuple([parse_name_addr(v, "Contact") for v in _non_empty(values, "Contact")])

    @cached_view
    def contact_is_star(self) -> bool:
        """``Contact: *`` (§10.2.2); it must be the only Contact value."""
        lines = self.headers.by_key("contact")
        if not any(["*" in line for line in lines]):
            return False
        values = list_values(self.headers, "contact")
        if "*" not in values:
            return False
        if len(values) != 1:
            raise ParseError("Contact: * must be the only Contact value")
        return True

    @cached_view
    def routes(self) -> tuple[NameAddr, ...]:
        return _name_addrs(self.headers, "route", "Route")

    @cached_view
    def record_routes(self) -> tuple[NameAddr, ...]:
        return _name_addrs(self.headers, "record-route", "Record-Route")

    @cached_view
    def paths(self) -> tuple[NameAddr, ...]:
        return _name_addrs(self.headers, "path", "Path")

    @cached_view
    def content_length(self) -> int | None:
        """The Content-Length header as received (serialisation always writes ``len(body)``)."""
        lines = self.headers.by_key("content-length")
        if not lines:
            return None
        values = {v for v in lines}
        if len(values) > 1:
            raise ParseError("conflicting Content-Length values")  # RFC 4475 §3.3.9 mcl01
        value = lines[0]
        if not is_digits(value):
            raise ParseError("Content-Length must be a non-negative number")  # RFC 4475 ncl
        return capped_int(value, 2**63)

    @cached_view
    def content_type(self) -> str | None:
        values = self.headers.by_key("content-type")
        value = values[0] if values else None
        if value is not None and "/" not in value:
            raise ParseError("bad Content-Type")
        return value

    @cached_view
    def expires(self) -> int | None:
        """The Expires header in seconds (§20.19), capped at 2**32-1 (RFC 4475 §3.1.2.4)."""
        values = self.headers.by_key("expires")
        value = values[0] if values else None
        if value is None:
            return None
        if not is_digits(value):
            raise ParseError("Expires must be a number of seconds")
        return min(capped_int(value, MAX_CSEQ), MAX_CSEQ)

    @cached_view
    def require(self) -> tuple[str, ...]:
        return _option_tags(self.headers, "require", "Require")

    @cached_view
    def proxy_require(self) -> tuple[str, ...]:
        return _option_tags(self.headers, "proxy-require", "Proxy-Require")

    @cached_view
    def supported(self) -> tuple[str, ...]:
        return _option_tags(self.headers, "supported", "Supported")

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def shed_views(self) -> None:
        """Forget the typed views built so far and the header index; they are rebuilt on next
        use. For a message kept only to be matched or sent again (a transaction waiting out
        Timer J, K, I or D): what it no longer holds the garbage collector need not visit."""
        cached = self.__dict__
        for name in _view_names(type(self)):
            cached.pop(name, None)
        self.headers.shed_index()

    @abstractmethod
    def start_line(self) -> str:
        """The request line or status line, without CRLF."""

    def __bytes__(self) -> bytes:
        return self._serialise(self.start_line())

    def to_bytes(self) -> bytes:
        return bytes(self)

    # -- helpers returning a new message of the same kind -------------------------------------
    def with_headers(self, headers: Headers, *, changed: str | None = None) -> Self:
        """This message with ``headers``. When only the lines of one header changed (its
        normalised key ``changed``), the views already built from the others carry over."""
        message = replace(self, headers=headers)  # type: ignore[type-var]
        if changed is not None:
            cached = self.__dict__
            carried = message.__dict__
            for name in _view_names(type(self)):
                if name in cached and VIEW_HEADERS.get(name, changed) != changed:
                    carried[name] = cached[name]
        return message

    def with_header_prepended(self, name: str, value: str) -> Self:
        return self.with_headers(self.headers.prepend(name, value), changed=header_key(name))

    def with_header_appended(self, name: str, value: str) -> Self:
        return self.with_headers(self.headers.append(name, value), changed=header_key(name))

    def with_header_removed(self, name: str) -> Self:
        headers = self.headers.remove(name)
        if headers is self.headers:
            return self
        return self.with_headers(headers, changed=header_key(name))

    def with_header_replaced(self, name: str, value: str) -> Self:
        return self.with_headers(self.headers.replace(name, value), changed=header_key(name))

    def _serialise(self, start_line: str) -> bytes:
        items = self.headers.items
        keys = self.headers.keys
        length = str(len(self.body))
        if keys.count("content-length") == 1 and items[keys.index("content-length")][1] == length:
            lines = [
                f"{name}: {value}" for name, value in items
            ]  # the common case: one true length
        else:
            # Always exactly one, true Content-Length: §18.3 / RFC 4475 dblreq and inv2543 (never
            # forward trailing octets, and give streams the length they need).
            lines = []
            length_written = False
            for (name, value), key in zip(items, keys, strict=True):
                if key == "content-length":
                    if length_written:
                        continue
                    value = length
                    length_written = True
                lines.append(f"{name}: {value}")
            if not length_written:
                lines.append(f"Content-Length: {length}")
        head = (
            start_line + "\r\n" + "\r\n".join(lines) + "\r\n\r\n"
            if lines
            else start_line + "\r\n\r\n"
        )
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass(frozen=True)
class Request(_Typed):
    """A SIP request. ``method`` is case-sensitive (§7.1)."""

    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    @property
    def is_request(self) -> bool:
        return True

    # -- helpers returning new requests ------------------------------------------------------
    def with_uri(self, uri: Uri) -> Request:
        request = replace(self, uri=uri)
        request.__dict__.update(  # every view is of the headers, which did not change
            {name: value for name, value in self.__dict__.items() if name in VIEW_HEADERS}
        )
        return request

    def with_body(self, body: bytes, content_type: str | None = None) -> Request:
        headers = self.headers
        if content_type is not None:
            headers = headers.replace("Content-Type", content_type)
        return replace(self, headers=headers, body=body)

    def with_via_prepended(self, via: Via | str) -> Request:
        """§16.6 step 8: the proxy's own Via goes on top."""
        request = self.with_header_prepended("Via", str(via))
        if isinstance(via, Via):
            request.__dict__["top_via"] = via
        return request

    def with_top_via_replaced(self, via: Via) -> Request:
        """Replace the top Via value (e.g. after stamping ``received``, §18.2.1)."""
        first, rest = self.headers.pop_first_value("Via")
        if first is None:
            return self.with_via_prepended(via)
        request = self.with_headers(rest.prepend("Via", str(via)), changed="via")
        request.__dict__["top_via"] = via
        return request

    def with_max_forwards_decremented(self) -> Request:
        """§16.6 step 3: decrement Max-Forwards, or add it with 70 when absent."""
        value = self.max_forwards
        new = DEFAULT_MAX_FORWARDS if value is None else max(value - 1, 0)
        if value is None:
            request = self.with_header_appended("Max-Forwards", str(new))
        else:
            request = self.with_header_replaced("Max-Forwards", str(new))
        request.__dict__["max_forwards"] = new
        return request

    def with_top_route_popped(self) -> tuple[NameAddr | None, Request]:
        """§16.4: remove the first Route value and return it with the new request."""
        first, headers = self.headers.pop_first_value("Route")
        if first is None:
            return None, self
        return parse_name_addr(first, "Route", require_brackets=True), self.with_headers(
            headers, changed="route"
        )


@dataclass(frozen=True)
class Response(_Typed):
    """A SIP response."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def is_request(self) -> bool:
        return False

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    def with_top_via_removed(self) -> Response:
        """§16.7 step 3: a proxy removes its own Via before relaying a response upstream."""
        _, headers = self.headers.pop_first_value("Via")
        return self.with_headers(headers, changed="via")


Message = Request | Response


#: The header (normalised key) each typed view is read from: a message derived by changing
#: other headers keeps the view (``with_headers(..., changed=KEY)``).
VIEW_HEADERS = {
    "vias": "via", "top_via": "via", "from_": "from", "to": "to", "call_id": "call-id",
    "cseq": "cseq", "max_forwards": "max-forwards", "contacts": "contact",
    "contact_is_star": "contact", "routes": "route", "record_routes": "record-route",
    "paths": "path", "content_length": "content-length", "content_type": "content-type",
    "expires": "expires", "require": "require", "proxy_require": "proxy-require",
    "supported": "supported",
}  # fmt: skip


@functools.cache
def _view_names(cls: type) -> tuple[str, ...]:
    """The names of the cached views of a message class."""
    return tuple(
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, cached_view)
    )


def single_value(headers: Headers, key: str, name: str) -> str:
    lines = headers.by_key(key)
    if not lines:
        raise ParseError(f"missing {name} header")
    if len(lines) > 1:
        raise ParseError(f"more than one {name} header")  # RFC 4475 §3.3.8 multi01
    return lines[0]


def _non_empty(values: list[str], name: str) -> list[str]:
    for value in values:
        if not value:
            raise ParseError(f"empty value in {name}")  # RFC 4475 §3.1.2.1 badinv01
    return values


def list_values(headers: Headers, key: str) -> list[str]:
    """Comma-split values of a list header (§7.3.1), from its normalised key."""
    lines = headers.by_key(key)
    if len(lines) == 1 and "," not in lines[0]:
        return [lines[0]]
    out: list[str] = []
    for line in lines:
        out.extend(split_commas(line))
    return out


def _name_addrs(headers: Headers, key: str, name: str) -> tuple[NameAddr, ...]:
    values = _non_empty(list_values(headers, key), name)
    return tuple(parse_name_addr(v, name, require_brackets=True) for v in values)


def _option_tags(headers: Headers, key: str, name: str) -> tuple[str, ...]:
    tags: list[str] = []
    for line in headers.by_key(key):
        if not line and key == "supported":
            continue  # §20.37: Supported = "Supported" HCOLON [option-tag *(COMMA option-tag)]
        for tag in split_commas(line):
            if not is_token(tag):
                raise ParseError(f"bad option tag in {name}")
            tags.append(tag)
    return tuple(tags)
