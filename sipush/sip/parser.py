"""Bytes -> :class:`Request` / :class:`Response` (RFC 3261 §7, §18.3; RFC 4475).

Theory of operation
-------------------
1. Skip CRLFs before the start line (§7.5); find the CRLFCRLF that ends the head. The head is
   decoded as UTF-8 with surrogate escapes, so any octet survives a round trip and nothing raises.
2. Split the head into lines, unfold continuation lines (§7.3.1: a line starting with SP/HTAB
   continues the previous one), split each into name and value.
3. Frame the body by Content-Length. Over UDP (``datagram=True``) a missing Content-Length means
   the body is the rest of the datagram and octets past Content-Length are ignored (§18.3,
   RFC 4475 inv2543 and dblreq); a Content-Length larger than the datagram is an error (clerr).
   A stream frame (``datagram=False``) must carry Content-Length.
4. Validate what every element relies on: the start line (505 for another SIP version), the
   mandatory headers of §8.1.1 appearing once, CSeq against the method (§8.1.1.5, RFC 4475
   mismatch01/02), and the typed headers (Via, From, To, Contact, Route, ...). Anything wrong raises
   :class:`~sipush.errors.ParseError` carrying the status to answer and the raw head read so far,
   which lets the server answer even a broken request (§8.2.6.2). No other exception leaves here.
"""

from __future__ import annotations

import re

from sipush.errors import ParseError, RawHead
from sipush.sip.address import name_addr_is_valid
from sipush.sip.grammar import TOKEN_RE, capped_int, fast_new, is_digits
from sipush.sip.headers import Headers
from sipush.sip.message import Message, Request, Response, list_values, single_value
from sipush.sip.uri import SipUri, parse_uri
from sipush.sip.via import via_is_valid

# The RFC 3261 methods (§27.4) plus the common extensions. An unknown method whose CSeq method
# differs gets 501, not 400 (RFC 4475 §3.1.2.18 mismatch02).
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
     "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"}
)  # fmt: skip

_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]")
_CRLF2 = b"\r\n\r\n"
_ANY_LINE_END = re.compile(r"\r\n|\r|\n")


def parse_message(data: bytes, *, datagram: bool = True) -> Message:
    """Parse one SIP message. Raises only :class:`ParseError`."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(_CRLF2, start)
    if end < 0:
        raise ParseError(
            "the message head does not end with an empty line", head=read_raw_head(data)
        )
    text = data[start:end].decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    start_line = lines[0]
    crlfs = len(lines) - 1
    clean = text.count("\r") == crlfs and text.count("\n") == crlfs  # no bare CR or LF anywhere
    if not clean and ("\r" in start_line or "\n" in start_line):
        raise ParseError("bare CR or LF in the start line", head=read_raw_head(data))
    try:
        items = _header_items(lines, clean)  # consumes lines[0]
    except ParseError as err:
        raise err.with_head(read_raw_head(data) or RawHead(start_line, ())) from None
    try:
        headers = Headers(items)
        body = _frame_body(data, end + 4, headers, datagram)
        if start_line[:4].upper() == "SIP/":
            message: Message = _build_response(start_line, headers, body)
        else:
            message = _build_request(start_line, headers, body)
    except ParseError as err:
        if err.head is None:
            raise err.with_head(RawHead(start_line, tuple(items))) from None
        raise
    return message


# Header names already seen to be tokens written without LWS before the colon (bounded: names
# come from the network). Lines whose name is in here take the fast path.
_VALID_NAMES: set[str] = set()


def _header_items(lines: list[str], clean: bool) -> list[tuple[str, str]]:
    """Split header lines into (name, value) pairs, unfolding continuation lines.

    ``clean`` says the head has no bare CR or LF. Fast path: every line has a colon, none is a
    continuation and every name is a token already seen; otherwise the exact loop below runs
    (and finds the error, if there is one).
    """
    del lines[0]
    parts = [line.partition(":") for line in lines]
    if clean and all([colon and name in _VALID_NAMES for name, colon, _ in parts]):
        return [(name, value.strip(" \t")) for name, _, value in parts]
    return _header_items_slow(lines)


def _header_items_slow(lines: list[str]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ParseError("bare CR or LF in a header line")
        first = line[:1]
        if first == " " or first == "\t":
            # §7.3.1 line folding: the continuation joins the previous value with one SP.
            if not items:
                raise ParseError("continuation line before the first header")
            name, value = items[-1]
            more = line.strip(" \t")
            if more:
                items[-1] = (name, f"{value} {more}" if value else more)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ParseError(f"header line without a colon: {line[:40]!r}")
        stripped = name.rstrip(" \t")
        if TOKEN_RE.fullmatch(stripped) is None:
            raise ParseError(f"bad header name {name[:40]!r}")
        if stripped == name and len(_VALID_NAMES) < 4096:
            _VALID_NAMES.add(name)  # a token with nothing before the colon: fast path next time
        items.append((stripped, value.strip(" \t")))
    return items


def _frame_body(data: bytes, body_start: int, headers: Headers, datagram: bool) -> bytes:
    lines = headers.by_key("content-length")
    if not lines:
        if datagram:
            return data[body_start:]  # §18.3: the body runs to the end of the datagram
        raise ParseError("Content-Length is required over stream transports")  # §18.3
    value = lines[0]
    if len(lines) > 1 and any([other != value for other in lines]):
        raise ParseError("conflicting Content-Length values")  # RFC 4475 §3.3.9 mcl01
    if not is_digits(value):
        raise ParseError("Content-Length must be a non-negative number")  # RFC 4475 §3.1.2.3 ncl
    length = capped_int(value, 2**63)
    available = len(data) - body_start
    if length > available:
        raise ParseError("Content-Length is larger than the body")  # RFC 4475 §3.1.2.2 clerr
    if not datagram and length != available:
        raise ParseError("Content-Length does not match the frame")
    return data[body_start : body_start + length]


def _check_version(version: str) -> str:
    if version == "SIP/2.0":
        return version
    m = _VERSION_RE.fullmatch(version)
    if m is None:
        raise ParseError(f"bad SIP version {version[:20]!r}")
    if (capped_int(m.group(1), 99), capped_int(m.group(2), 99)) != (2, 0):
        raise ParseError(f"SIP version {version[:20]} is not supported", 505)  # §21.5.14
    return "SIP/2.0"


def _build_request(start_line: str, headers: Headers, body: bytes) -> Request:
    # Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP between the elements
    # (RFC 4475 §3.1.2.8 lwsruri, §3.1.2.9 lwsstart, §3.1.2.10 trws are rejected).
    parts = start_line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ParseError("malformed request line")
    method, uri_text, version = parts
    if TOKEN_RE.fullmatch(method) is None:
        raise ParseError("the method is not a token")
    version = _check_version(version)
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        # §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11 escruri)
        raise ParseError("the Request-URI must not contain headers")
    request = fast_new(
        Request,
        {"method": method, "uri": uri, "headers": headers, "body": body, "version": version},
    )
    _validate_common(request)
    cseq = request.cseq
    if cseq.method != method:
        # §8.1.1.5 / RFC 4475 §3.1.2.17-18: 400 for a known method, 501 for an unknown one.
        status = 400 if method in KNOWN_METHODS else 501
        raise ParseError("the CSeq method does not match the request method", status)
    _validate_typed_views(request)
    return request


def _build_response(start_line: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = start_line.partition(" ")
    version = _check_version(version)
    code, _, reason = rest.partition(" ")  # RFC 4475 §3.1.1.13 noreason: an empty phrase is fine
    if _STATUS_RE.fullmatch(code) is None:
        raise ParseError(f"bad status code {code[:20]!r}")  # RFC 4475 §3.1.2.19 bigcode
    response = Response(int(code), reason, headers, body, version)
    _validate_common(response)
    _validate_typed_views(response)
    return response


def _validate_common(message: Message) -> None:
    """§8.1.1: To, From, CSeq, Call-ID and Via are mandatory and (but Via) single-valued.

    Via, From and To are checked with construction-free patterns; their objects are built on
    first use. When a pattern is not sure, the object is built now (and raises if it must).
    """
    headers = message.headers
    vias = list_values(headers, "via")
    if not vias:
        raise ParseError("missing Via header")
    if not all([via and via_is_valid(via) for via in vias]):
        message.vias  # noqa: B018 - builds, or raises the precise error
    if not name_addr_is_valid(single_value(headers, "from", "From")):
        message.from_  # noqa: B018
    if not name_addr_is_valid(single_value(headers, "to", "To")):
        message.to  # noqa: B018
    message.call_id  # noqa: B018
    message.cseq  # noqa: B018


# Views of optional headers, checked when the header is present so that a message that parsed
# never raises later. Address lists are checked without building objects (see above).
_ADDRESS_LISTS = {
    "contact": "contacts",
    "route": "routes",
    "record-route": "record_routes",
    "path": "paths",
}
_VIEWS = {
    "max-forwards": "max_forwards",
    "require": "require",
    "proxy-require": "proxy_require",
    "supported": "supported",
    "expires": "expires",
    "content-type": "content_type",
}


def _validate_typed_views(message: Message) -> None:
    headers = message.headers
    present = headers.present_keys()
    for key in present & _ADDRESS_LISTS.keys():
        values = list_values(headers, key)
        if key == "contact" and "*" in values:
            message.contact_is_star  # noqa: B018 - must be alone
            continue
        if not all([value and name_addr_is_valid(value) for value in values]):
            getattr(message, _ADDRESS_LISTS[key])
    for key in present & _VIEWS.keys():
        getattr(message, _VIEWS[key])


def read_raw_head(data: bytes) -> RawHead | None:
    """Best effort: the start line and the header lines that look like ``name: value``.

    Used to answer a message that failed to parse. Never raises.
    """
    try:
        start = 0
        while data.startswith(b"\r\n", start):
            start += 2
        end = data.find(_CRLF2, start)
        text = data[start : end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")
        lines = _ANY_LINE_END.split(text)  # bare CR/LF end lines too: values never carry them
        if not lines or not lines[0]:
            return None
        items: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and items:
                name, value = items[-1]
                items[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            name = name.strip(" \t")
            if colon and name and TOKEN_RE.fullmatch(name):
                items.append((name, value.strip(" \t")))
        return RawHead(lines[0], tuple(items))
    except Exception:  # pragma: no cover - defensive: this helper must never raise
        return None
