"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and any other absoluteURI kept opaque.

A URI keeps its text as written (escapes included) so that a proxy forwards exactly what it
received; accessors such as :meth:`SipUri.param` decode ``%HH`` escapes once (RFC 4475 §3.1.1.3).
Comparison helpers follow §19.1.4 where routing needs them (host case-insensitive, user exact).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, replace

from sipush.errors import ParseError
from sipush.sip.grammar import (
    PARSE_CACHE_SIZE,
    Params,
    cached_view,
    check_escapes,
    drop_param,
    fast_new,
    find_param,
    format_params,
    is_digits,
    set_param,
    unescape,
)

DEFAULT_PORTS = {"sip": 5060, "sips": 5061}

# §25.1: user = 1*( unreserved / escaped / user-unreserved ); password likewise without ; ? /
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD_RE = re.compile(rf"[{_UNRESERVED}%&=+$,]*")
# host = hostname / IPv4address / IPv6reference
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\]")
# uri-parameter: pname [ "=" pvalue ], paramchar = param-unreserved / unreserved / escaped
_PARAMCHARS_RE = re.compile(rf"[{_UNRESERVED}%\[\]/:&+$]+")
# header: hname "=" hvalue, hnv-unreserved = [ ] / ? : + $
_HNVCHARS_RE = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$]*")
# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# absoluteURI: anything printable without whitespace, quotes or angle brackets
_OPAQUE_RE = re.compile(r"[^\x00-\x20\x7f<>\"]+")
# RFC 3966 telephone-subscriber, loosely: digits, visual separators, hex for local numbers
# RFC 3966 §3: global-number-digits = "+" *phonedigit DIGIT *phonedigit;
# local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
_TEL_NUMBER_RE = re.compile(
    r"\+[0-9\-.()]*[0-9][0-9\-.()]*|[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*"
)


@dataclass(frozen=True)
class SipUri:
    """``sip:`` or ``sips:`` URI: ``scheme:[user[:password]@]host[:port][;params][?headers]``."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.text

    @cached_view
    def text(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)

    @property
    def user_text(self) -> str | None:
        """The user part with escapes decoded once (``sip:%75ser@x`` -> ``user``)."""
        return None if self.user is None else unescape(self.user)

    @property
    def host_lower(self) -> str:
        return self.host.lower()

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.scheme, 5060)

    @cached_view
    def param_map(self) -> dict[str, str]:
        """Parameters by lower-case decoded name (first wins), decoded; flags give ``""``."""
        out: dict[str, str] = {}
        for name, value in self.params:
            out.setdefault(unescape(name).lower(), "" if value is None else unescape(value))
        return out

    def param(self, name: str) -> str | None:
        """Decoded value of a URI parameter, ``""`` for a flag parameter, ``None`` if absent."""
        return self.param_map.get(name.lower())

    def has_param(self, name: str) -> bool:
        return name.lower() in self.param_map

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        return replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        return replace(self, params=drop_param(self.params, name))

    def without_headers(self) -> SipUri:
        return replace(self, headers=())

    @property
    def aor(self) -> str:
        """The address-of-record form: ``scheme:user@host`` (no port, params or headers)."""
        user = f"{self.user}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{self.host.lower()}"


@dataclass(frozen=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a number and parameters."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        value = find_param(self.params, name)
        return None if value is None else unescape(value)


@dataclass(frozen=True)
class AbsoluteUri:
    """Any other scheme, kept opaque (RFC 3261 §19: absoluteURI). RFC 4475 §3.3.2 unkscm."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


# Fast path for the common shape: lower-case scheme, no password, no escapes, no headers.
# Anything it does not match goes through the exact parser below (same result, precise errors).
_SIP_FAST_RE = re.compile(
    rf"(sips?):(?:([{_UNRESERVED}&=+$,;?/]+)@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]{1,5}))?"
    rf"((?:;[{_UNRESERVED}\[\]/:&+$]+(?:=[{_UNRESERVED}\[\]/:&+$]+)?)*)"
)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def sip_uri_is_valid(text: str) -> bool:
    """True only when ``text`` is a SIP/SIPS URI that :func:`parse_uri` certainly accepts."""
    m = _SIP_FAST_RE.fullmatch(text)
    return (
        m is not None
        and (m.group(4) is None or int(m.group(4)) <= 65535)
        and not m.group(3).startswith("[")  # IPv6 references are checked by the parser
    )


def is_ipv6_reference(host: str) -> bool:
    """``[IPv6address]`` (§25.1 IPv6reference) holding a real IPv6 address."""
    if not (host.startswith("[") and host.endswith("]")):
        return False
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_uri(text: str) -> Uri:
    """Parse a URI; raise :class:`ParseError` (400) for anything malformed."""
    m = _SIP_FAST_RE.fullmatch(text)
    if m is not None:
        scheme, user, host, port_text, param_text = m.groups()
        port = None if port_text is None else int(port_text)
        if (port is None or port <= 65535) and (host[0] != "[" or is_ipv6_reference(host)):
            params: Params = ()
            if param_text:
                params = tuple(
                    [
                        (n, v) if eq else (n, None)
                        for n, eq, v in [p.partition("=") for p in param_text[1:].split(";")]
                    ]
                )
            return fast_new(
                SipUri,
                {"scheme": scheme, "user": user, "password": None, "host": host, "port": port,
                 "params": params, "headers": ()},
            )  # fmt: skip
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise ParseError(f"bad URI {text[:80]!r}")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest, text)
    if lscheme == "tel":
        return _parse_tel(rest, text)
    if not rest or _OPAQUE_RE.fullmatch(rest) is None:
        raise ParseError(f"bad URI {text[:80]!r}")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if colon:
            password = pw
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise ParseError(f"bad password in URI {text[:80]!r}")
        if _USER_RE.fullmatch(user) is None:
            raise ParseError(f"bad user part in URI {text[:80]!r}")
        check_escapes(userinfo, "URI user part")
    headers: tuple[tuple[str, str], ...] = ()
    qmark = rest.find("?")
    if qmark >= 0:
        rest, header_text = rest[:qmark], rest[qmark + 1 :]
        headers = _parse_uri_headers(header_text, text)
    semi = rest.find(";")
    params: Params = ()
    if semi >= 0:
        rest, param_text = rest[:semi], rest[semi + 1 :]
        params = _parse_uri_params(param_text, text)
    host, port = _split_hostport(rest, text)
    return SipUri(scheme, user, password, host, port, params, headers)


def _split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        host, port_text = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or (port_text and not port_text.startswith(":")):
            raise ParseError(f"bad host in URI {text[:80]!r}")
        port_text = port_text[1:] if port_text else ""
        has_port = bool(hostport[end + 1 :])
    else:
        host, colon, port_text = hostport.partition(":")
        has_port = bool(colon)
    if _HOST_RE.fullmatch(host) is None or (host.startswith("[") and not is_ipv6_reference(host)):
        raise ParseError(f"bad host in URI {text[:80]!r}")
    if not has_port:
        return host, None
    if not is_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
        raise ParseError(f"bad port in URI {text[:80]!r}")
    return host, int(port_text)


def _parse_uri_params(param_text: str, text: str) -> Params:
    out: list[tuple[str, str | None]] = []
    for part in param_text.split(";"):
        name, eq, value = part.partition("=")
        if _PARAMCHARS_RE.fullmatch(name) is None or (
            eq and _PARAMCHARS_RE.fullmatch(value) is None
        ):
            raise ParseError(f"bad parameter {part[:40]!r} in URI {text[:80]!r}")
        check_escapes(part, "URI parameter")
        out.append((name, value if eq else None))
    return tuple(out)


def _parse_uri_headers(header_text: str, text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for part in header_text.split("&"):
        name, eq, value = part.partition("=")
        if (
            not name
            or not eq
            or _HNVCHARS_RE.fullmatch(name) is None
            or _HNVCHARS_RE.fullmatch(value) is None
        ):
            raise ParseError(f"bad header {part[:40]!r} in URI {text[:80]!r}")
        check_escapes(part, "URI header")
        out.append((name, value))
    return tuple(out)


def _parse_tel(rest: str, text: str) -> TelUri:
    number, semi, param_text = rest.partition(";")
    if _TEL_NUMBER_RE.fullmatch(number) is None:
        raise ParseError(f"bad tel URI {text[:80]!r}")
    params = _parse_uri_params(param_text, text) if semi else ()
    return TelUri(number, params)
