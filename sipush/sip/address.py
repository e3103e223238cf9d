"""name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path (RFC 3261 §20, §25.1).

    name-addr   = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string
    addr-spec   = SIP-URI / SIPS-URI / absoluteURI

In the addr-spec form (no angle brackets) a URI cannot carry ``;`` parameters, ``?`` headers or
``,``: whatever follows the first ``;`` belongs to the header, not the URI (§20; RFC 4475 §3.3.12
cparam01). A display name must be quoted unless it is a run of tokens (RFC 4475 §3.1.2.15 baddn);
a token glued to ``<`` is accepted (RFC 4475 §3.1.1.6 lwsdisp).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from sipush.errors import ParseError
from sipush.sip.grammar import (
    PARSE_CACHE_SIZE,
    TOKEN_CHARS,
    WS,
    Params,
    cached_view,
    capped_int,
    drop_param,
    fast_new,
    find_param,
    format_params,
    is_digits,
    is_token,
    parse_generic_params,
    parse_param_list,
    quote,
    read_quoted,
    set_param,
    split_semicolons,
    strict_params_re,
    unquote,
)
from sipush.sip.uri import Uri, parse_uri, sip_uri_is_valid

_WS_RE = re.compile(r"[ \t]+")
# Fast path: [ "quoted" / token words ] <URI> [ ;params ]. Anything else goes
# through the exact parser below.
_NAME_ADDR_FAST_RE = re.compile(
    r'[ \t]*(?:"([^"\\\r\n]*(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\r\n]*)*)"[ \t]*'
    rf"|([{TOKEN_CHARS}]+(?:[ \t]+[{TOKEN_CHARS}]+)*)[ \t]*)?"
    r"<([^ \t<>\"]+)>[ \t]*((?:;.*)?)"
)


# The header parameters routing reads, with the values _check_known_params demands.
_STRICT_PARAMS_RE = strict_params_re(
    {
        "tag": rf"tag[ \t]*=[ \t]*[{TOKEN_CHARS}]+",
        "expires": r"expires[ \t]*=[ \t]*[0-9]+",
        "q": r"q[ \t]*=[ \t]*(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)",
    }
)


@dataclass(frozen=True)
class NameAddr:
    """A URI with an optional display name and header parameters (``tag``, ``expires``, ...)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        return self.text

    @cached_view
    def text(self) -> str:
        name = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return find_param(self.params, "tag")

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        return replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        return replace(self, params=drop_param(self.params, name))

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter (§20.10), capped at 2**32-1 (RFC 4475 §3.1.2.4)."""
        value = find_param(self.params, "expires")
        if value is None:
            return None
        return min(capped_int(value, 2**32 - 1), 2**32 - 1)

    @property
    def instance(self) -> str | None:
        """``+sip.instance`` (RFC 5626 §4.1) without quotes and angle brackets."""
        value = find_param(self.params, "+sip.instance")
        if value is None:
            return None
        return value.strip("<>")


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_name_addr(text: str, what: str, *, require_brackets: bool = False) -> NameAddr:
    """Parse one name-addr or addr-spec with trailing header parameters."""
    m = _NAME_ADDR_FAST_RE.fullmatch(text)
    if m is not None:
        quoted, words, uri_text, rest = m.groups()
        display = (
            unquote(quoted) if quoted is not None else (_WS_RE.sub(" ", words) if words else None)
        )
        params: Params = ()
        if rest:
            params = parse_param_list(rest, what)
            _check_known_params(params, what)
        return fast_new(
            NameAddr, {"uri": parse_uri(uri_text), "display_name": display, "params": params}
        )
    return _parse_name_addr_exactly(text, what, require_brackets)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def name_addr_is_valid(text: str) -> bool:
    """True only when :func:`parse_name_addr` certainly accepts ``text`` (any form it takes).

    A construction-free check made of the fast path's own patterns: the parser validates every
    header with it and builds the object on first use. ``False`` means "not sure": build it now,
    which either succeeds or raises the precise :class:`ParseError`.
    """
    m = _NAME_ADDR_FAST_RE.fullmatch(text)
    if m is None or not sip_uri_is_valid(m.group(3)):
        return False
    rest = m.group(4)
    return not rest or _STRICT_PARAMS_RE.fullmatch(rest) is not None


def _parse_name_addr_exactly(text: str, what: str, require_brackets: bool) -> NameAddr:
    """The element-wise parser: every form the grammar allows, and a precise error otherwise."""
    s = text.strip(WS)
    display: str | None = None
    if s.startswith('"'):
        inner, end = read_quoted(s)
        display = unquote(inner)
        s = s[end:].lstrip(WS)
        if not s.startswith("<"):
            raise ParseError(f"{what}: a quoted display name must be followed by <URI>")
    lt = s.find("<")
    semi = s.find(";")
    if lt >= 0 and (display is not None or semi < 0 or lt < semi):
        # name-addr; a '<' after the first ';' belongs to a parameter of an addr-spec
        if lt > 0:
            words = s[:lt].strip(WS)
            # display-name = *(token LWS): every word must be a token (RFC 4475 baddn)
            for word in _WS_RE.split(words):
                if word and not is_token(word):
                    raise ParseError(f"{what}: display name {words[:40]!r} must be quoted")
            display = _WS_RE.sub(" ", words) if words else None
        gt = s.find(">", lt)
        if gt < 0:
            raise ParseError(f"{what}: missing '>'")
        uri_text = s[lt + 1 : gt]
        if not uri_text or any(c in uri_text for c in " \t<"):
            # RFC 4475 §3.1.2.14 badaspec: no LWS inside the angle brackets
            raise ParseError(f"{what}: bad URI inside <>")
        uri = parse_uri(uri_text)
        rest = s[gt + 1 :].lstrip(WS)
    else:
        if require_brackets:
            raise ParseError(f"{what}: URI must be enclosed in <>")
        semi = s.find(";")
        uri_text, rest = (s, "") if semi < 0 else (s[:semi].rstrip(WS), s[semi:])
        if any(c in uri_text for c in " \t?,"):
            # §20: in addr-spec form the URI may not contain ',', '?' or ';' (RFC 4475 regbadct)
            raise ParseError(f"{what}: a URI with headers or spaces must be enclosed in <>")
        uri = parse_uri(uri_text)
    params: Params = ()
    if rest:
        if not rest.startswith(";"):
            raise ParseError(f"{what}: unexpected text after URI")
        params = parse_generic_params(split_semicolons(rest[1:]), what)
        _check_known_params(params, what)
    return NameAddr(uri, display, params)


def _check_known_params(params: Params, what: str) -> None:
    """Validate the generic params whose syntax routing relies on (§25.1)."""
    for name, value in params:
        lname = name.lower()
        if lname == "tag" and (value is None or not is_token(value)):
            raise ParseError(f"{what}: bad tag")
        if lname == "expires" and (value is None or not is_digits(value)):
            raise ParseError(f"{what}: expires must be a number")
        if lname == "q" and (
            value is None or re.fullmatch(r"(0(\.\d{0,3})?|1(\.0{0,3})?)", value) is None
        ):
            raise ParseError(f"{what}: q must be between 0 and 1")
