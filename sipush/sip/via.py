"""The Via header (RFC 3261 §20.42, §18.2) and the response-routing rules built on it.

    via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
    sent-protocol = protocol-name SLASH protocol-version SLASH transport
    sent-by       = host [ COLON port ]

Also here, because they only read and stamp Via values:

* :func:`stamp_received` — §18.2.1 and RFC 3581 §4: the server transport adds ``received`` when
  the sent-by host differs from the packet's source, and fills an empty ``rport``.
* :func:`response_destination` — §18.2.2 and RFC 3581 §4: where a response goes (``received``
  and ``rport`` first, then the sent-by port or the transport's default port).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from sipush.errors import ParseError
from sipush.sip.grammar import (
    GEN_VALUE,
    PARSE_CACHE_SIZE,
    PORT_NUMBER,
    TOKEN_CHARS,
    Params,
    cached_view,
    capped_int,
    fast_new,
    find_param,
    format_params,
    has_param,
    is_digits,
    parse_param_list,
    set_param,
    strict_params_re,
)
from sipush.sip.ip import ip_literal
from sipush.sip.uri import is_ipv6_reference

MAGIC_COOKIE = "z9hG4bK"
DEFAULT_PORT = {
    "UDP": 5060,
    "TCP": 5060,
    "SCTP": 5060,
    "TLS": 5061,
    "TLS-SCTP": 5061,
    "WS": 80,
    "WSS": 443,
}

_SENT_PROTOCOL_RE = re.compile(
    rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]+"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*"
)


_IPV4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
_STRICT_PARAMS_RE = strict_params_re(
    {
        "rport": rf"rport(?:[ \t]*=[ \t]*{PORT_NUMBER})?",
        "branch": rf"branch[ \t]*=[ \t]*(?:{GEN_VALUE})",
        "received": rf"received[ \t]*=[ \t]*{_IPV4}",  # IPv6 ones go through the parser
    }
)


@dataclass(frozen=True)
class Via:
    """One Via value. ``transport`` is upper case; params keep their written form."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        return self.text

    @cached_view
    def text(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return find_param(self.params, "received")

    @property
    def rport(self) -> int | bool | None:
        """RFC 3581: the filled-in port, ``True`` when requested but empty, ``None`` when absent."""
        value = find_param(self.params, "rport")
        if value is None:
            return None
        return capped_int(value, 65535) if value else True

    @property
    def sent_by(self) -> tuple[str, int]:
        return self.host.lower(), self.port if self.port is not None else DEFAULT_PORT.get(
            self.transport, 5060
        )

    @property
    def has_rfc3261_branch(self) -> bool:
        """§17.2.3: a branch that starts with the magic cookie and has an identifier after it.
        RFC 4475 §3.2.1 badbranch: ``z9hG4bK`` alone does not count."""
        branch = self.branch
        return (
            branch is not None
            and branch.startswith(MAGIC_COOKIE)
            and len(branch) > len(MAGIC_COOKIE)
        )

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))


def parse_via(text: str) -> Via:
    """Parse one via-parm (one comma-separated element of a Via header)."""
    m = _SENT_PROTOCOL_RE.match(text)
    if m is None:
        raise ParseError(f"bad Via {text[:80]!r}")
    name, version, transport, host, port_text = m.groups()
    if name.upper() != "SIP":
        raise ParseError(f"bad Via protocol {name!r}")
    if version != "2.0":
        raise ParseError(f"Via protocol version {version!r} is not supported", 505)
    if host.startswith("[") and not is_ipv6_reference(host):
        raise ParseError(f"bad IPv6 reference in Via {host[:60]!r}")
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise ParseError("bad Via port")
    rest = text[m.end() :]
    params: Params = ()
    if rest:
        if rest[0] != ";":
            raise ParseError(f"bad Via {text[:80]!r}")
        params = parse_param_list(rest, "Via")
        _check_via_params(params)
    return fast_new(
        Via,
        {
            "transport": transport.upper(),
            "host": host,
            "port": port,
            "params": params,
            "protocol": "SIP/2.0",
        },
    )


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def via_is_valid(text: str) -> bool:
    """True only when :func:`parse_via` certainly accepts ``text``; construction-free."""
    m = _SENT_PROTOCOL_RE.match(text)
    if m is None:
        return False
    name, version, _, _, port_text = m.groups()
    if name.upper() != "SIP" or version != "2.0" or (port_text and int(port_text) > 65535):
        return False
    if text[m.start(4)] == "[":
        return False  # an IPv6 reference: let the parser check it
    rest = text[m.end() :]
    return not rest or (rest[0] == ";" and _STRICT_PARAMS_RE.fullmatch(rest) is not None)


def _check_via_params(params: Params) -> None:
    for name, value in params:
        lname = name.lower()
        if (
            lname == "rport"
            and value is not None
            and not (is_digits(value) and capped_int(value, 65535) <= 65535)
        ):
            raise ParseError("bad Via rport")
        if lname == "branch" and not value:
            raise ParseError("empty Via branch")
        if lname == "received" and not _is_ip_address(value or ""):
            raise ParseError("Via received must be an IP address")  # §20.42


def _is_ip_address(text: str) -> bool:
    """IPv4address / IPv6address (§20.42 via-received); a bracketed IPv6 is tolerated."""
    if text.startswith("["):
        return is_ipv6_reference(text)
    return ip_literal(text) is not None


def stamp_received(via: Via, source_host: str, source_port: int) -> Via:
    """§18.2.1 + RFC 3581 §4: record where a request really came from in its top Via."""
    params = via.params
    if via.host.strip("[]").lower() != source_host.lower() or has_param(params, "rport"):
        # RFC 3581 §4: with rport the server MUST add received even if it equals sent-by.
        params = set_param(params, "received", _bare(source_host))
    if has_param(params, "rport"):
        params = set_param(params, "rport", str(source_port))
    if params is via.params:
        return via
    return replace(via, params=params)


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


def response_destination(via: Via) -> tuple[str, int]:
    """§18.2.2 and RFC 3581 §4: (host, port) a response to this (stamped) top Via goes to.

    ``maddr`` (multicast) is not supported: responses go to ``received``/sent-by.
    """
    host = _bare(via.received) if via.received else _bare(via.host)
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        return host, rport
    return host, via.port if via.port is not None else DEFAULT_PORT.get(via.transport, 5060)
