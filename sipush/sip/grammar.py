"""Character classes and small lexical helpers from the RFC 3261 §25.1 ABNF.

Everything here is pure string work used by the parsers of URIs, addresses, Via and generic
parameters. Values are validated with precompiled regular expressions (fast in CPython) rather
than character loops; the only loop is the quote- and bracket-aware splitter, and it runs only
when a value actually contains a quote or an angle bracket.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from sipush.errors import ParseError

T = TypeVar("T")

# How many distinct header values the parsers remember (URIs, name-addrs, Vias checked): the
# same From, To, Contact and Record-Route come back in every message of a dialog, and a
# remembered value costs a dictionary lookup instead of two or three regular expressions.
# Only immutable results are kept (frozen objects, booleans); errors are raised every time.
PARSE_CACHE_SIZE = 8192

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")   (§25.1)
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(rf"[{TOKEN_CHARS}]+")
# LWS = [*WSP CRLF] 1*WSP; after unfolding only SP and HTAB remain.
WS = " \t"

# escaped = "%" HEXDIG HEXDIG
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class cached_view(Generic[T]):
    """A lock-free ``functools.cached_property`` (3.11's takes a lock on every first access).

    A non-data descriptor: the first access stores the value in the instance ``__dict__``, which
    then shadows the descriptor. Works on frozen dataclasses because it bypasses ``__setattr__``.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached_view[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | cached_view[T]:
        if obj is None:
            return self
        value = self.func(obj)
        obj.__dict__[self.name] = value
        return value


def fast_new(cls: type[T], fields: dict[str, Any]) -> T:
    """Build a frozen dataclass without running its ``__init__``.

    A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``;
    on the parse path (thousands of URIs and addresses a second) that doubles the cost of making
    the object. The parsers, which have already validated every value, fill ``__dict__`` directly
    and must pass every field. Equality, hashing and ``repr`` are unaffected.
    """
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def capped_int(digits: str, cap: int) -> int:
    """The value of an ASCII digit string, or ``cap + 1`` when it is larger than ``cap``.

    Never builds a huge integer (CPython refuses to convert more than 4300 digits, and a header
    is no reason to try): RFC 4475 §3.1.2.4/§3.1.2.5 send values far beyond any limit.
    """
    significant = digits.lstrip("0")
    if len(significant) > len(str(cap)):
        return cap + 1
    return min(int(significant or "0"), cap + 1)


def is_digits(text: str) -> bool:
    """Non-empty ASCII digits only (``str.isdigit`` also accepts ``²`` and other digits)."""
    return text.isascii() and text.isdigit()


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def check_escapes(text: str, what: str) -> None:
    """Reject a ``%`` that does not start a ``%HH`` escape (§25.1 ``escaped``)."""
    if "%" in text and _BAD_ESCAPE_RE.search(text):
        raise ParseError(f"bad %-escape in {what}")


def _escape_to_char(match: re.Match[str]) -> str:
    octet = int(match.group(1), 16)
    # ASCII octets decode as themselves; others become surrogate escapes (PEP 383), which the
    # UTF-8 round trip below turns into real characters where they form valid UTF-8.
    return chr(octet) if octet < 0x80 else chr(0xDC00 + octet)


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes once (RFC 4475 §3.1.1.3: never recursively).

    Escaped octets are decoded as UTF-8 where they form valid UTF-8; invalid sequences are kept
    as surrogate escapes so that nothing is lost and nothing raises.
    """
    if "%" not in text:
        return text
    raw = _ESCAPE_RE.sub(_escape_to_char, text)
    # Turn the placeholder surrogates back into bytes, then decode the whole as UTF-8.
    data = raw.encode("utf-8", "surrogateescape")
    return data.decode("utf-8", "surrogateescape")


# One lexical unit of a list value: a quoted string (its closing quote captured so that an
# unterminated one can be told apart), an angle-bracketed URI, or a separator.
_LIST_UNIT_RE = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*(?P<close>")?|<[^>]*>?|(?P<sep>[,;])', re.DOTALL
)


def _split_outside(value: str, separator: str, *, angle_groups: bool) -> list[str]:
    """Split at ``separator`` outside quoted strings (and outside ``<...>`` if ``angle_groups``)."""
    # Without angle grouping, blank the brackets out (same length, so offsets still hold).
    scanned = value if angle_groups else value.replace("<", " ").replace(">", " ")
    parts: list[str] = []
    start = 0
    for m in _LIST_UNIT_RE.finditer(scanned):
        sep = m.group("sep")
        if sep == separator:
            parts.append(value[start : m.start()].strip(WS))
            start = m.end()
        elif sep is None and m.group()[0] == '"' and m.group("close") is None:
            raise ParseError("unterminated quoted string")
    parts.append(value[start:].strip(WS))
    return parts


def split_commas(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets (§7.3.1).

    Elements are stripped; empty elements are kept (as ``""``) so callers can reject them.
    """
    if "," not in value:
        return [value.strip(WS)]  # one element; quotes are checked by whoever parses it
    if '"' not in value and "<" not in value:
        return [part.strip(WS) for part in value.split(",")]
    return _split_outside(value, ",", angle_groups=True)


def split_semicolons(value: str) -> list[str]:
    """Split at semicolons outside quoted strings; elements are stripped, empties kept."""
    if '"' not in value:
        return [part.strip(WS) for part in value.split(";")]
    return _split_outside(value, ";", angle_groups=False)


# quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
# (the patterns below use the "unrolled loop" form: runs of plain characters between escapes,
# which CPython's regex engine matches far faster than a per-character alternation)
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); qdtext excludes DQUOTE and "\" and CR/LF.
_QUOTED_RE = re.compile(r'"([^"\\\r\n]*(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\r\n]*)*)"')


def read_quoted(text: str, start: int = 0) -> tuple[str, int]:
    """Read a quoted-string at ``text[start]``; return (inner raw text, index after the quote)."""
    m = _QUOTED_RE.match(text, start)
    if m is None:
        raise ParseError("unterminated or invalid quoted string")
    return m.group(1), m.end()


_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)


def unquote(inner: str) -> str:
    """Resolve quoted-pairs in the inside of a quoted-string."""
    if "\\" not in inner:
        return inner
    return _QUOTED_PAIR_RE.sub(r"\1", inner)


def quote(text: str) -> str:
    """Make a quoted-string from plain text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# gen-value = token / host / quoted-string (§25.1 generic-param); Via received may be a bare
# IPv6address (§20.42), so an unbracketed IPv6 literal is accepted too.
GEN_VALUE = (
    r'"[^"\\\r\n]*(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\r\n]*)*"'  # quoted-string
    r"|\[?[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]?"  # an IPv6 address, bracketed or not
    rf"|[{TOKEN_CHARS}]+"  # token (covers host names and IPv4)
)
_GEN_VALUE_RE = re.compile(GEN_VALUE)

Params = tuple[tuple[str, "str | None"], ...]


_PARAM_UNIT = (
    rf"[ \t]*;[ \t]*([{TOKEN_CHARS}]+)"
    rf"(?:[ \t]*=[ \t]*({GEN_VALUE}))?"
    r"(?=[ \t]*(?:;|$))"  # each unit ends at the next ';' or the end: findall agrees with fullmatch
)
_PARAMS_RE = re.compile(rf"(?:{_PARAM_UNIT})*[ \t]*")
_NAME = rf"[{TOKEN_CHARS}]+"
PORT_NUMBER = (  # 0..65535
    r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
)


def strict_params_re(special: dict[str, str]) -> re.Pattern[str]:
    """A parameter-list pattern that also enforces what some parameters' values must be.

    ``special`` maps a lower-case parameter name to the pattern of its whole ``name[=value]``
    text; every other name takes the generic ``[=gen-value]``. A list this pattern accepts is one
    :func:`parse_param_list` plus the caller's own value checks certainly accept: the parsers use
    it to validate without building objects (construction is deferred to first use).
    """
    names = "|".join(re.escape(name) for name in special)
    alternatives = "|".join(f"(?i:{pattern})" for pattern in special.values())
    unit = (
        rf"[ \t]*;[ \t]*(?:{alternatives}"
        rf"|(?!(?i:{names})[ \t]*(?:=|;|$)){_NAME}(?:[ \t]*=[ \t]*(?:{GEN_VALUE}))?)"
        r"(?=[ \t]*(?:;|$))"
    )
    return re.compile(rf"(?:{unit})*[ \t]*")


_PARAM_RE = re.compile(_PARAM_UNIT)


def parse_param_list(text: str, what: str) -> Params:
    """Parse ``;name=value;flag ...`` (the text starts at the first ``;``) in two regex passes;
    fall back to the element-wise parser for its precise error message."""
    if _PARAMS_RE.fullmatch(text) is not None:
        return tuple([(name, value or None) for name, value in _PARAM_RE.findall(text)])
    return parse_generic_params(split_semicolons(text.lstrip(WS)[1:]), what)


def parse_generic_params(parts: list[str], what: str) -> Params:
    """Turn ``["tag = 1", "lr"]`` into ``(("tag", "1"), ("lr", None))``.

    Names are tokens (kept as written); values are token, host or quoted-string, kept as written
    (quotes included) so serialising gives back the same text. An empty element (``;;``) is an
    error (RFC 4475 §3.1.2.1).
    """
    out: list[tuple[str, str | None]] = []
    for part in parts:
        if not part:
            raise ParseError(f"empty parameter in {what}")
        name, eq, value = part.partition("=")
        name = name.rstrip(WS)
        if not is_token(name):
            raise ParseError(f"bad parameter name {name!r} in {what}")
        if eq:
            value = value.strip(WS)
            if _GEN_VALUE_RE.fullmatch(value) is None:
                raise ParseError(f"bad value for parameter {name!r} in {what}")
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def find_param(params: Params, name: str) -> str | None:
    """Value of the first parameter called ``name`` (case-insensitive), unquoted; ``""`` when the
    parameter has no value, ``None`` when absent."""
    lname = name.lower()
    for pname, pvalue in params:
        if pname.lower() == lname:
            if pvalue is None:
                return ""
            if pvalue.startswith('"'):
                return unquote(pvalue[1:-1])
            return pvalue
    return None


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(pname.lower() == lname for pname, _ in params)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    """Replace the first ``name`` parameter (or append it); the value is used as written."""
    lname = name.lower()
    out = list(params)
    for i, (pname, _) in enumerate(out):
        if pname.lower() == lname:
            out[i] = (pname, value)
            return tuple(out)
    out.append((name, value))
    return tuple(out)


def drop_param(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple(p for p in params if p[0].lower() != lname)
