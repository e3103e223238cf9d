"""Property and fuzz tests for the SIP parser: it parses or raises ParseError, and nothing else.

The one invariant (after h11's ``fuzz/afl-server.py``): whatever octets arrive,
:func:`~sipush.sip.parse_message` returns a Request/Response or raises
:class:`~sipush.errors.ParseError`. On top of it, for every message that parses:

* ``bytes(msg)`` parses again as a stream frame (``datagram=False``) to an equal message, and
  serialising is stable;
* every typed view a proxy reads (Via, From/To, CSeq, Contact, Route, ...) reads without raising:
  the parser validates eagerly, so a request that parsed must not fail later (RFC 3261 §16.3);
* for every ParseError, :func:`~sipush.sip.response_for_malformed` never raises and what it
  returns serialises to a well-framed message (§7: every header line ends with CRLF).

Inputs: random bytes; mutations of the RFC 4475 corpus and of a few realistic REGISTER/INVITE/200
messages (byte flips, inserts of SIP-significant octets, line duplication/deletion, truncation);
every prefix of every seed; header values assembled from grammar fragments; and valid
requests/responses built from parts, whose typed views must give back the parts. Inputs that
once broke the parser are pinned in ``KNOWN_REPRODUCTIONS`` and run every time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipush.errors import ParseError
from sipush.sip import (
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    header_key,
    parse_message,
    response_for_malformed,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "rfc4475"
CORPUS = {path.stem: path.read_bytes() for path in sorted(DATA.glob("*.dat"))}

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKnashds7\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=456248\r\n'
    b"To: <sip:alice@example.com>\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060;transport=udp;pn-provider=apns;pn-prid=ab12>"
    b';expires=3600;q=0.7;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    b";reg-id=1\r\n"
    b"Supported: path, outbound, gruu\r\n"
    b"Expires: 7200\r\n"
    b"Content-Length: 0\r\n\r\n"
)
SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9, "
    b"SIP/2.0/UDP [2001:db8::9:1]:5070;received=2001:db8::9:255;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 69\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Record-Route: <sip:p0.example.com;lr>\r\n"
    b'f: "Alice \\"A\\" Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"t: Bob <sip:bob@biloxi.example.com>\r\n"
    b"i: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"m: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    b"Require: 100rel\r\nProxy-Require: sec-agree\r\nk: timer, replaces\r\n"
    b"Subject: folded\r\n  across\r\n\tlines\r\n"
    b"c: application/sdp\r\n"
    b"l: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bKnashds8;received=192.0.2.3\r\n"
    b"Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"
    b"Record-Route: <sip:server10.biloxi.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
NAMED_SEEDS = {**CORPUS, "register": REGISTER, "invite": INVITE, "ok-200": OK_200}
SEEDS = tuple(NAMED_SEEDS.values())

# Octet strings that mean something to a SIP parser (an AFL-style dictionary).
INTERESTING = (
    b"\r\n", b"\r\n\r\n", b"\r", b"\n", b" ", b"\t", b"\r\n ", b"\r\n\t", b'"', b"\\", b"<",
    b">", b"%", b"%4", b"%00", b"%25", b";", b",", b":", b"=", b"@", b"?", b"&", b"[", b"]", b"*",
    b"\x00", b"\x7f", b"\x80", b"\xc3", b"\xff", b"\xed\xa0\x80", b"SIP/2.0", b"z9hG4bK",
    b";tag=", b";branch=", b";rport", b";expires=", b";q=", b";lr", b"sip:", b"sips:", b"tel:",
    b"0", b"65536", b"4294967296", b"9" * 4400,
)  # fmt: skip

# Typed views every parsed message must answer (RFC 3261 §8.1.1, §16, §20).
MESSAGE_VIEWS = (
    "vias", "top_via", "from_", "to", "call_id", "cseq", "max_forwards", "contacts",
    "contact_is_star", "routes", "record_routes", "paths", "content_length", "content_type",
    "expires", "require", "proxy_require", "supported",
)  # fmt: skip


# -- the invariant ------------------------------------------------------------------------------


def semantic(message: Request | Response) -> tuple[object, ...]:
    """What must survive a serialise/parse round trip (Content-Length is rewritten on output)."""
    start = (
        (message.method, str(message.uri))
        if isinstance(message, Request)
        else (message.status, message.reason)
    )
    headers = tuple((n, v) for n, v in message.headers if header_key(n) != "content-length")
    return (*start, message.version, headers, message.body)


def read_name_addr(value: NameAddr) -> None:
    _ = (value.display_name, value.tag, value.expires, value.instance, value.params, str(value))
    read_uri(value.uri)


def read_uri(uri: object) -> None:
    str(uri)
    if isinstance(uri, SipUri):
        _ = (uri.user_text, uri.param_map, uri.effective_port, uri.aor, uri.host_lower)


def read_via(via: Via) -> None:
    _ = (via.branch, via.received, via.rport, via.sent_by, via.has_rfc3261_branch, str(via))


def read_typed_views(message: Request | Response) -> None:
    """Touch every typed view and what hangs off it. Raises whatever the views raise."""
    for name in MESSAGE_VIEWS:
        value = getattr(message, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, NameAddr):
                read_name_addr(item)
            elif isinstance(item, Via):
                read_via(item)
    if isinstance(message, Request):
        read_uri(message.uri)


def check_typed_views(message: Request | Response) -> None:
    if isinstance(message, Request):
        # The parser validates requests eagerly: nothing at all may raise afterwards.
        read_typed_views(message)
        return
    # Responses are validated less eagerly (a proxy reads only Via, CSeq and To of them).
    with contextlib.suppress(ParseError):
        read_typed_views(message)


def check_round_trip(message: Request | Response) -> None:
    wire = bytes(message)
    again = parse_message(wire, datagram=False)  # must not raise: it parsed once already
    assert semantic(again) == semantic(message)
    assert bytes(again) == wire, "serialising is stable"
    assert again.content_length == len(again.body), "the true Content-Length is written"


def assert_well_framed(wire: bytes) -> None:
    """§7: a start line and header lines, each ending in CRLF, then an empty line."""
    head, sep, _ = wire.partition(b"\r\n\r\n")
    assert sep, wire
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, f"bare CR/LF in {line!r}"


def check_malformed_answer(err: ParseError) -> None:
    assert 400 <= err.status <= 699, err
    response = response_for_malformed(err)
    if response is None:
        return
    assert isinstance(response, Response) and 300 <= response.status <= 699
    assert_well_framed(bytes(response))


def check(data: bytes, *, datagram: bool) -> Request | Response | None:
    """The whole invariant for one input. Any exception but ParseError fails the test."""
    try:
        message = parse_message(data, datagram=datagram)
    except ParseError as err:
        check_malformed_answer(err)
        return None
    assert isinstance(message, Request | Response)
    check_typed_views(message)
    check_round_trip(message)
    return message


# -- random bytes -------------------------------------------------------------------------------

# Random bytes rarely reach past the start line, so half the inputs get a plausible head.
_PLAUSIBLE_PREFIX = st.sampled_from(
    [b"", b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"\r\n"]
)


@pytest.mark.parametrize("datagram", [True, False])
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(prefix=_PLAUSIBLE_PREFIX, data=st.binary(max_size=600))
def test_random_bytes_parse_or_raise_parse_error(
    prefix: bytes, data: bytes, datagram: bool
) -> None:
    check(prefix + data, datagram=datagram)


# -- mutated valid messages ---------------------------------------------------------------------


def _reframe(data: bytes) -> bytes:
    """Rewrite Content-Length to match the body, so a mutated message survives stream framing."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return data
    lines = [
        ln for ln in head.split(b"\r\n") if not re.match(rb"(?i)(content-length|l)[ \t]*:", ln)
    ]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(
            st.sampled_from(
                (
                    "flip",
                    "insert_byte",
                    "insert_token",
                    "delete",
                    "dup_line",
                    "drop_line",
                    "swap_lines",
                    "truncate",
                    "replace_token",
                )
            )
        )
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert_byte":
            data[pos:pos] = bytes([draw(st.integers(0, 255))])
        elif op == "insert_token":
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
        elif op == "replace_token":
            end = min(len(data), pos + draw(st.integers(1, 8)))
            data[pos:end] = draw(st.sampled_from(INTERESTING))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        else:
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(draw(st.integers(0, len(lines))), lines[i])
            elif op == "drop_line":
                del lines[i]
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@pytest.mark.parametrize("datagram", [True, False])
@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(data=mutated_messages(), reframe=st.booleans())
def test_mutated_messages_parse_or_raise_parse_error(
    data: bytes, reframe: bool, datagram: bool
) -> None:
    check(_reframe(data) if reframe else data, datagram=datagram)


# Inputs the fuzzers found crashes with, pinned so that they run on every invocation;
# tests/sip/test_parser.py has one focused test per bug.
_LONG = b"9" * 4400  # more digits than Python's int() accepts from a string (4300)
KNOWN_REPRODUCTIONS = {
    "max-forwards-4400-digits": REGISTER.replace(b"Max-Forwards: 70", b"Max-Forwards: " + _LONG),
    "expires-4400-digits": REGISTER.replace(b"Expires: 7200", b"Expires: " + _LONG),
    "contact-expires-4400-digits": REGISTER.replace(b"expires=3600", b"expires=" + _LONG),
    "via-rport-4400-digits": REGISTER.replace(b";rport;", b";rport=" + _LONG + b";"),
    "content-length-4400-digits": REGISTER.replace(
        b"Content-Length: 0", b"Content-Length: " + _LONG
    ),
    "version-4400-digits": REGISTER.replace(b"SIP/2.0\r\n", b"SIP/" + _LONG + b".0\r\n", 1),
    "response-version-4400-digits": OK_200.replace(b"SIP/2.0 200", b"SIP/2." + _LONG + b" 200"),
    "empty-supported": REGISTER.replace(b"Supported: path, outbound, gruu", b"Supported:"),
    "folded-blank-line": REGISTER.replace(b"Expires: 7200\r\n", b"Expires: 7200\r\n \r\n"),
    "bare-lf-in-via": REGISTER.replace(b"UDP 192", b"UDP\n192"),
    "bare-lf-in-reason": OK_200.replace(b"200 OK", b"200 O\nK"),
}


@pytest.mark.parametrize("datagram", [True, False])
@pytest.mark.parametrize("name", sorted(KNOWN_REPRODUCTIONS))
def test_known_reproductions_hold_the_invariant(name: str, datagram: bool) -> None:
    data = KNOWN_REPRODUCTIONS[name]
    check(data if datagram else _reframe(data), datagram=datagram)


@pytest.mark.parametrize("seed", sorted(NAMED_SEEDS))
def test_every_seed_holds_the_invariant_byte_by_byte_truncated(seed: str) -> None:
    """Every prefix of every seed (h11 test_io style): a cut message is an error, never a crash."""
    data = NAMED_SEEDS[seed]
    for cut in range(0, len(data), 7):
        check(data[:cut], datagram=True)
        check(data[:cut], datagram=False)
    check(data, datagram=True)
    check(data + b"trailing garbage \x00\xff", datagram=True)


# -- grammar-shaped header values ---------------------------------------------------------------

# Pieces of header values, so that random values often come close to valid ones: that is where
# a construction-free validity check and the real parser can disagree.
FRAGMENTS = (
    "sip:", "sips:", "tel:", "urn:uuid:1", "alice", "Alice", "@", "example.com", "192.0.2.1",
    "[2001:db8::1]", "2001:db8::1", ":", "5060", "65536", ";", "tag", "=", "expires", "q", "0.5",
    "1", "1.0001", "lr", "transport", "branch", "z9hG4bK", "rport", "received", "+sip.instance",
    "<", ">", '"', "\\", ",", " ", "\t", "*", "%41", "%", "?", "&", "SIP/2.0/UDP", "SIP", "/",
    "2.0", "UDP", "INVITE", "REGISTER", "path", "9" * 12, "0" * 5, "", "ä", "\x00",
)  # fmt: skip
_values = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
_targets = st.sampled_from(
    [
        "From",
        "To",
        "Contact",
        "Route",
        "Record-Route",
        "Path",
        "Via",
        "Max-Forwards",
        "CSeq",
        "Call-ID",
        "Expires",
        "Supported",
        "Require",
        "Proxy-Require",
        "Content-Type",
        "m",
        "v",
    ]
)


def _with_header(seed: bytes, name: str, value: str, replace: bool) -> bytes:
    head, _, body = seed.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    line = f"{name}: {value}".encode("utf-8", "surrogateescape")
    prefix = name.encode().lower() + b":"
    for i, old in enumerate(lines):
        if replace and old.lower().startswith(prefix):
            lines[i] = line
            break
    else:
        lines.insert(1, line)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize("datagram", [True, False])
@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(
    seed=st.sampled_from([REGISTER, INVITE, OK_200]),
    changes=st.lists(st.tuples(_targets, _values, st.booleans()), min_size=1, max_size=3),
)
def test_grammar_shaped_header_values_parse_or_raise_parse_error(
    seed: bytes, changes: list[tuple[str, str, bool]], datagram: bool
) -> None:
    data = seed
    for name, value, replace in changes:
        data = _with_header(data, name, value, replace)
    check(data if datagram else _reframe(data), datagram=datagram)


# -- generated valid messages -------------------------------------------------------------------
# Strategies are built once, at import: building them inside the composites costs more than the
# parsing they feed.

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-.!%*_+`'~"
UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
WORD_ALPHABET = TOKEN_ALPHABET + '()<>:\\"/[]?{}'  # §25.1 word, used by Call-ID

tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
methods = st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "BYE", "MESSAGE"]) | st.text(
    string.ascii_uppercase + "-.!%*_+`'~", min_size=1, max_size=10
)
_labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
domains = st.lists(_labels, min_size=1, max_size=4).map(".".join)
ipv4s = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6s = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
hosts = domains | ipv4s | ipv6s.map(lambda a: f"[{a}]")
ports = st.none() | st.integers(1, 65535)
booleans = st.booleans()


def _escape(ch: str) -> str:
    return "".join(f"%{octet:02X}" for octet in ch.encode())


_user_piece = st.text(UNRESERVED + "&=+$,/", min_size=1, max_size=6).map(
    lambda s: (s, s)
) | st.characters(min_codepoint=0, max_codepoint=0x2FF, exclude_categories=["Cs"]).map(
    lambda c: (_escape(c), c)
)
# (as written, decoded once): unreserved characters and %HH escapes of any character
user_parts = st.lists(_user_piece, min_size=1, max_size=5).map(
    lambda pieces: ("".join(p[0] for p in pieces), "".join(p[1] for p in pieces))
)
_uri_params = st.lists(
    st.tuples(
        st.text(string.ascii_lowercase + "-", min_size=1, max_size=8),
        st.none() | st.text(UNRESERVED + "[]/:&+$", min_size=1, max_size=8),
    ),
    max_size=3,
    unique_by=lambda p: p[0],
)


@dataclass
class GenUri:
    text: str
    scheme: str
    user: str | None
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict)


def _make_uri(
    scheme: str,
    user: tuple[str, str] | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
) -> GenUri:
    text = f"{scheme}:" + ("" if user is None else user[0] + "@") + host
    text += "" if port is None else f":{port}"
    text += "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)
    decoded = {n: "" if v is None else v for n, v in params}
    return GenUri(text, scheme, None if user is None else user[1], host, port, decoded)


sip_uris = st.builds(
    _make_uri, st.sampled_from(["sip", "sips"]), st.none() | user_parts, hosts, ports, _uri_params
)


@dataclass
class GenNameAddr:
    text: str
    display: str | None
    uri: GenUri
    tag: str | None


def _quote(text: str, escape_all: bool) -> str:
    """A quoted-string; with ``escape_all`` every ASCII character is a quoted-pair (§25.1)."""
    out = []
    for ch in text:
        if ch in '"\\' or (escape_all and ord(ch) < 0x80):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_display_texts = st.text(
    st.characters(
        min_codepoint=0x20,
        max_codepoint=0x7FF,
        exclude_categories=["Cs"],
        exclude_characters="\x7f",
    ),
    max_size=12,
)
_name_addr_kinds = st.sampled_from(["none", "quoted", "tokens", "addr-spec"])
_semicolons = st.sampled_from([";", " ;", "\t; "])
_after_quote = st.sampled_from(["", " ", "\t"])
_between_words = st.sampled_from([" ", "\t", "  "])
_before_angle = st.sampled_from(["", " "])
_word_lists = st.lists(tokens, min_size=1, max_size=3)
_tags = st.none() | tokens


@st.composite
def name_addrs(draw: st.DrawFn, *, tag: bool = True, more_params: str = "") -> GenNameAddr:
    uri = draw(sip_uris)
    kind = draw(_name_addr_kinds)
    tag_value = draw(_tags) if tag else None
    params = ("" if tag_value is None else f";tag={tag_value}") + more_params
    params = params.replace(";", draw(_semicolons))
    plain = not uri.params and (uri.user is None or not set(uri.text) & set(",;?"))
    if kind == "addr-spec" and plain:
        return GenNameAddr(uri.text + params, None, uri, tag_value)
    display: str | None = None
    prefix = ""
    if kind == "quoted":
        display = draw(_display_texts)
        prefix = _quote(display, draw(booleans)) + draw(_after_quote)
    elif kind == "tokens":
        words = draw(_word_lists)
        display = " ".join(words)
        prefix = draw(_between_words).join(words) + draw(_before_angle)
    return GenNameAddr(f"{prefix}<{uri.text}>{params}", display, uri, tag_value)


@dataclass
class GenVia:
    text: str
    transport: str
    host: str
    port: int | None
    branch: str
    rport: int | bool | None
    received: str | None


_transports = st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "udp", "Tcp"])
_rports = st.none() | st.just(True) | st.integers(1, 65535)
_receiveds = st.none() | ipv4s | ipv6s | ipv6s.map(lambda a: f"[{a}]")
_slashes = st.sampled_from(["/", " / "])
_lws = st.sampled_from([" ", "  ", "\t"])
_colons = st.sampled_from([":", " : "])


@st.composite
def vias(draw: st.DrawFn) -> GenVia:
    transport = draw(_transports)
    host = draw(hosts)
    port = draw(ports)
    branch = "z9hG4bK" + draw(tokens)
    rport = draw(_rports)
    received = draw(_receiveds)
    slash = draw(_slashes)
    text = f"SIP{slash}2.0{slash}{transport}{draw(_lws)}{host}"
    if port is not None:
        text += draw(_colons) + str(port)
    params = [f"branch={branch}"]
    if rport is True:
        params.append("rport")
    elif rport is not None:
        params.append(f"rport={rport}")
    if received is not None:
        params.append(f"received={received}")
    if draw(booleans):
        params.append('x-note="quoted, with; separators <and> brackets"')
    text += "".join(";" + p for p in draw(st.permutations(params)))
    return GenVia(text, transport.upper(), host, port, branch, rport, received)


@dataclass
class GenContact:
    addr: GenNameAddr
    expires: int | None
    q: str | None
    instance: str | None


_expires = st.none() | st.integers(0, 2**33)
_qs = st.none() | st.sampled_from(["0", "0.5", "1", "1.000", "0.123", "0."])
_instances = st.none() | st.uuids().map(lambda u: f"urn:uuid:{u}")


@st.composite
def contacts(draw: st.DrawFn) -> GenContact:
    expires, q, instance = draw(_expires), draw(_qs), draw(_instances)
    params = ""
    if expires is not None:
        params += f";expires={expires}"
    if q is not None:
        params += f";q={q}"
    if instance is not None:
        params += f';+sip.instance="<{instance}>"'
    addr = draw(name_addrs(tag=False, more_params=params))
    return GenContact(addr, expires, q, instance)


@dataclass
class Generated:
    wire: bytes
    method: str
    uri: GenUri
    vias: list[GenVia]
    from_: GenNameAddr
    to: GenNameAddr
    call_id: str
    cseq: int
    max_forwards: int | None
    contacts: list[GenContact]
    extension: list[tuple[str, str]]
    body: bytes


COMPACT = {
    "Via": "v",
    "From": "f",
    "To": "t",
    "Call-ID": "i",
    "Contact": "m",
    "Content-Length": "l",
}
_before_colon = st.sampled_from(["", "", " ", "\t", "  "])
_after_colon = st.sampled_from(["", " ", " ", "\t", "   ", "\r\n ", "\r\n\t"])
_fold_prefixes = st.sampled_from([" ", "\t", "  "])
_case_masks = st.integers(0, 2**16 - 1)


def _fold_points(value: str) -> list[int]:
    """Offsets just before ';' and after ',' outside quotes and <>: LWS is allowed there."""
    points: list[int] = []
    quoted = angle = False
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        elif not quoted and not angle and ch == ";" and i > 0:
            points.append(i)
        elif not quoted and not angle and ch == "," and i + 1 < len(value):
            points.append(i + 1)
    return points


def header_line(draw: st.DrawFn, name: str, value: str, foldable: list[int]) -> str:
    """One header line: compact or random-case name, LWS around ':', maybe folded at one of the
    ``foldable`` offsets of ``value`` (positions where LWS is allowed, §7.3.1)."""
    if name in COMPACT and draw(booleans):
        name = COMPACT[name]
    if draw(booleans):  # random case, one bit per character
        mask = draw(_case_masks)
        name = "".join(c.upper() if mask >> i & 1 else c.lower() for i, c in enumerate(name))
    before, after = draw(_before_colon), draw(_after_colon)
    fold: bool = draw(booleans)
    if foldable and fold:
        cut = foldable[draw(st.integers(0, len(foldable) - 1))]
        value = (
            value[:cut].rstrip(" \t") + "\r\n" + draw(_fold_prefixes) + value[cut:].lstrip(" \t")
        )
    return f"{name}{before}:{after}{value}\r\n"


_call_id_words = st.text(WORD_ALPHABET, min_size=1, max_size=16)
_extensions = st.lists(
    st.tuples(
        tokens.map(lambda t: "X-" + t),
        st.lists(
            st.text(string.printable.strip(), min_size=1, max_size=6), min_size=1, max_size=3
        ).map(" ".join),
    ),
    max_size=3,
    unique_by=lambda kv: kv[0].lower(),
)
_via_lists = st.lists(vias(), min_size=1, max_size=3)
_contact_lists = st.lists(contacts(), max_size=3)
_cseqs = st.integers(0, 2**32 - 1)
_max_forwards = st.none() | st.integers(0, 255)
_bodies = st.binary(max_size=64)


@st.composite
def generated_requests(draw: st.DrawFn) -> Generated:
    method = draw(methods)
    uri = draw(sip_uris)
    via_list = draw(_via_lists)
    from_ = draw(name_addrs())
    to = draw(name_addrs())
    call_id = draw(_call_id_words)
    if draw(booleans):
        call_id += "@" + draw(_call_id_words)
    cseq = draw(_cseqs)
    max_forwards = draw(_max_forwards)
    contact_list = draw(_contact_lists)
    extension = draw(_extensions)
    body = draw(_bodies)

    via_lines: list[str] = []
    if draw(booleans):  # all Via values on one line, or one line each
        value = ", ".join(v.text for v in via_list)
        via_lines.append(header_line(draw, "Via", value, _fold_points(value)))
    else:
        via_lines.extend(header_line(draw, "Via", v.text, _fold_points(v.text)) for v in via_list)
    lines = [
        header_line(draw, "From", from_.text, _fold_points(from_.text)),
        header_line(draw, "To", to.text, _fold_points(to.text)),
        header_line(draw, "Call-ID", call_id, []),
        header_line(draw, "CSeq", f"{cseq}{draw(_lws)}{method}", []),
    ]
    if max_forwards is not None:
        lines.append(header_line(draw, "Max-Forwards", str(max_forwards), []))
    if contact_list:
        value = ", ".join(c.addr.text for c in contact_list)
        lines.append(header_line(draw, "Contact", value, _fold_points(value)))
    for name, value in extension:
        lines.append(
            header_line(draw, name, value, [i + 1 for i, ch in enumerate(value) if ch == " "])
        )
    lines = draw(st.permutations(lines))
    # Via lines go anywhere among the others, but keep their relative order (§7.3.1).
    slots = sorted(draw(st.integers(0, len(lines))) for _ in via_lines)
    for offset, (slot, line) in enumerate(zip(slots, via_lines, strict=True)):
        lines.insert(slot + offset, line)
    lines.append(header_line(draw, "Content-Length", str(len(body)), []))
    wire = f"{method} {uri.text} SIP/2.0\r\n{''.join(lines)}\r\n".encode() + body
    return Generated(
        wire,
        method,
        uri,
        via_list,
        from_,
        to,
        call_id,
        cseq,
        max_forwards,
        contact_list,
        extension,
        body,
    )


def assert_uri(actual: object, expected: GenUri) -> None:
    assert isinstance(actual, SipUri)
    assert str(actual) == expected.text
    assert (actual.scheme, actual.host, actual.port) == (
        expected.scheme,
        expected.host,
        expected.port,
    )
    assert actual.user_text == expected.user
    for name, value in expected.params.items():
        assert actual.param(name) == value, name


def assert_name_addr(actual: NameAddr, expected: GenNameAddr) -> None:
    assert actual.display_name == expected.display
    assert actual.tag == expected.tag
    assert_uri(actual.uri, expected.uri)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(generated=generated_requests(), datagram=st.booleans())
def test_generated_requests_parse_to_their_parts(generated: Generated, datagram: bool) -> None:
    message = check(generated.wire, datagram=datagram)
    assert isinstance(message, Request), generated.wire
    assert message.method == generated.method
    assert_uri(message.uri, generated.uri)
    assert len(message.vias) == len(generated.vias)
    for via, gen in zip(message.vias, generated.vias, strict=True):
        assert (via.transport, via.host, via.port) == (gen.transport, gen.host, gen.port)
        assert via.branch == gen.branch and via.has_rfc3261_branch
        assert via.rport == gen.rport and via.received == gen.received
    assert_name_addr(message.from_, generated.from_)
    assert_name_addr(message.to, generated.to)
    assert message.call_id == generated.call_id
    assert (message.cseq.number, message.cseq.method) == (generated.cseq, generated.method)
    assert message.max_forwards == generated.max_forwards
    assert len(message.contacts) == len(generated.contacts)
    for contact, wanted in zip(message.contacts, generated.contacts, strict=True):
        assert_name_addr(contact, wanted.addr)
        expires = None if wanted.expires is None else min(wanted.expires, 2**32 - 1)
        assert contact.expires == expires
        assert contact.param("q") == wanted.q
        assert contact.instance == wanted.instance
    for name, value in generated.extension:
        assert message.headers.get(name) == value
    assert message.body == generated.body and message.content_length == len(generated.body)


_reasons = st.text(
    st.characters(
        min_codepoint=0x20,
        max_codepoint=0x7FF,
        exclude_categories=["Cs"],
        exclude_characters="\x7f",
    ),
    max_size=20,
)


@st.composite
def generated_responses(draw: st.DrawFn) -> tuple[bytes, int, str]:
    status, reason, request = (
        draw(st.integers(100, 699)),
        draw(_reasons),
        draw(generated_requests()),
    )
    head, _, _ = request.wire.partition(b"\r\n")
    wire = f"SIP/2.0 {status} {reason}".encode() + request.wire[len(head) :]
    return wire, status, reason


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(generated=generated_responses())
def test_generated_responses_keep_status_and_reason(generated: tuple[bytes, int, str]) -> None:
    wire, status, reason = generated
    message = check(wire, datagram=False)
    assert isinstance(message, Response), wire
    assert (message.status, message.reason) == (status, reason)


# -- response_for_malformed on its own ------------------------------------------------------------


BREAKERS: tuple[Callable[[bytes], bytes], ...] = (
    lambda b: b.replace(b"CSeq: ", b"CSeq: x", 1),
    lambda b: b.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1),
    lambda b: b.replace(b"\r\n\r\n", b"\r\nBad Header\r\n\r\n", 1),
    lambda b: b.replace(b"\r\nCSeq: ", b"\r\nCall-ID: second@host\r\nCSeq: ", 1),
)


@pytest.mark.parametrize("seed", ["register", "invite"])
@pytest.mark.parametrize("breaker", range(len(BREAKERS)))
def test_response_for_malformed_answers_broken_requests_with_a_well_framed_response(
    seed: str, breaker: int
) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(BREAKERS[breaker](NAMED_SEEDS[seed]))
    response = response_for_malformed(info.value)
    assert response is not None and response.status in (400, 505)
    assert_well_framed(bytes(response))
    assert response.to.tag is not None  # §8.2.6.2: a To tag is added to the error response
    assert (response.headers.get("Warning") or "").startswith("399 ")
