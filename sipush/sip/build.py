"""Building responses, tags and branches (RFC 3261 §8.2.6, §8.1.1.7, §19.3).

:func:`make_response` answers a parsed request; :func:`response_for_malformed` answers a request
that failed to parse, from the raw head its :class:`~sipush.errors.ParseError` carries, or says
that no answer must be sent (a response, an ACK, no Via to send it to).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from sipush.errors import ParseError
from sipush.sip.address import parse_name_addr
from sipush.sip.grammar import quote
from sipush.sip.headers import Headers, header_key
from sipush.sip.message import Request, Response

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 430: "Flow Failed", 439: "First Hop Lacks Outbound Support",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large",
    555: "Push Notification Service Not Supported", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

CLASS_PHRASES = {
    1: "Trying", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error", 6: "Global Failure",
}  # fmt: skip

_COPIED = ("via", "from", "to", "call-id", "cseq")  # §8.2.6.2


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status) or CLASS_PHRASES.get(status // 100, "Unknown")


def new_tag() -> str:
    """A From/To tag with at least 32 bits of randomness (§19.3)."""
    return secrets.token_hex(6)


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """§8.2.6.2: copy Via (all, in order), From, To, Call-ID and CSeq; add a To tag when the
    request had none and the response is not 100 Trying."""
    items: list[tuple[str, str]] = []
    for name, value in request.headers:
        key = header_key(name)
        if key in _COPIED or (key == "timestamp" and status == 100):  # §8.2.6.1
            if key == "to" and status > 100 and request.to.tag is None:
                value = str(request.to.with_param("tag", to_tag or new_tag()))
            items.append((name, value))
    items.extend(extra_headers)
    return Response(status, reason or reason_phrase(status), Headers(items), body)


def build_cancel(request: Request) -> Request:
    """§9.1: the CANCEL for a request sent on one branch: same Request-URI, Call-ID, From, To,
    CSeq number and Route, and only the top Via (so it has the branch of the request)."""
    items: list[tuple[str, str]] = []
    via_done = False
    for name, value in request.headers:
        key = header_key(name)
        if key == "via":
            if not via_done:
                items.append((name, str(request.vias[0])))
                via_done = True
        elif key in ("from", "to", "call-id", "route"):
            items.append((name, value))
        elif key == "cseq":
            items.append((name, f"{request.cseq.number} CANCEL"))
    items.append(("Max-Forwards", "70"))
    return Request("CANCEL", request.uri, Headers(items))


def response_for_malformed(
    error: ParseError, *, server: str = "sipush", to_tag: str | None = None
) -> Response | None:
    """Answer a request that failed to parse, or ``None`` when RFC 3261 says to stay silent.

    Nothing is sent for responses (they are dropped, §16.7 / RFC 4475 bigcode, scalarlg), for ACK
    (§17.2.1: never answered), or when there is no Via to send the answer to. A Warning header
    (§20.43, code 399) tells the sender what was wrong.
    """
    head = error.head
    if head is None or not head.is_request:
        return None
    method = head.start_line.split(" ", 1)[0]
    if method == "ACK":
        return None
    items: list[tuple[str, str]] = []
    for name, value in head.headers:
        key = header_key(name)
        if key not in _COPIED or "\r" in value or "\n" in value:
            continue  # never let raw input break our own framing
        if key == "to":
            value = _with_tag(value, to_tag or new_tag())
        items.append((name, value))
    if not any(header_key(name) == "via" for name, _ in items):
        return None
    detail = "".join(ch if " " <= ch <= "~" else "?" for ch in error.detail)[:200]
    items.append(("Warning", f"399 {server} {quote(detail)}"))
    status = error.status if 300 <= error.status <= 699 else 400
    return Response(status, reason_phrase(status), Headers(items))


def _with_tag(to_value: str, tag: str) -> str:
    try:
        to = parse_name_addr(to_value, "To")
    except ParseError:
        return to_value  # leave a broken To as it was; the sender will recognise its own bytes
    if to.tag is not None:
        return to_value
    return f"{to_value};tag={tag}"
