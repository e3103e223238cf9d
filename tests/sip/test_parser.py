"""Focused table tests for the SIP message parser, the typed views and the message helpers.

Each test names the RFC rule it checks. Inputs are small byte strings built from one valid
REGISTER-like request (:func:`message`), changed one header at a time, so a failure points at a
single rule. The RFC 4475 corpus itself is covered by ``test_rfc4475.py``; the fuzzers live in
``test_parser_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from sipush.errors import ParseError
from sipush.sip import (
    Request,
    Response,
    SipUri,
    Via,
    make_response,
    parse_message,
    parse_via,
    response_destination,
    stamp_received,
)

BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Via", "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds"),
    ("Max-Forwards", "70"),
    ("To", "Bob <sip:bob@example.com>"),
    ("From", "Alice <sip:alice@example.com>;tag=1928301774"),
    ("Call-ID", "a84b4c76e66710@pc33.example.com"),
    ("CSeq", "314159 INVITE"),
    ("Contact", "<sip:alice@pc33.example.com>"),
)
START = "INVITE sip:bob@example.com SIP/2.0"


def message(
    *changes: tuple[str, str | None],
    start: str = START,
    body: bytes = b"",
    length: int | str | None = -1,
    add: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The base request with header values replaced (``None`` drops the header) or added.

    ``length=-1`` writes the true Content-Length, ``None`` leaves it out, anything else is
    written as given.
    """
    replaced = dict(changes)
    lines = [start]
    for name, value in BASE_HEADERS:
        if name in replaced:
            value = replaced.pop(name)  # type: ignore[assignment]
            if value is None:
                continue
        lines.append(f"{name}: {value}")
    lines.extend(f"{name}: {value}" for name, value in replaced.items() if value is not None)
    lines.extend(f"{name}: {value}" for name, value in add)
    if length == -1:
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def parse_request(data: bytes, *, datagram: bool = True) -> Request:
    parsed = parse_message(data, datagram=datagram)
    assert isinstance(parsed, Request)
    return parsed


def parse_response(data: bytes, *, datagram: bool = True) -> Response:
    parsed = parse_message(data, datagram=datagram)
    assert isinstance(parsed, Response)
    return parsed


def rejects(data: bytes, status: int = 400, *, datagram: bool = True) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data, datagram=datagram)
    assert info.value.status == status, info.value.detail
    return info.value


def raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


RESPONSE = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1;received=192.0.2.1\r\n"
    "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n"
    "To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)


# -- the base messages are valid ----------------------------------------------------------------


def test_base_request_parses_with_every_typed_view() -> None:
    request = parse_request(message())
    assert request.method == "INVITE" and str(request.uri) == "sip:bob@example.com"
    assert request.top_via.branch == "z9hG4bK776asdhds" and request.top_via.port == 5060
    assert request.max_forwards == 70 and request.call_id == "a84b4c76e66710@pc33.example.com"
    assert (request.cseq.number, request.cseq.method) == (314159, "INVITE")
    assert request.from_.display_name == "Alice" and request.from_.tag == "1928301774"
    assert request.to.tag is None and str(request.to.uri) == "sip:bob@example.com"
    assert request.body == b"" and request.content_length == 0


def test_base_response_parses() -> None:
    response = parse_response(raw(RESPONSE))
    assert (response.status, response.reason) == (200, "OK")
    assert [v.host for v in response.vias] == ["p1.example.com", "pc33.example.com"]
    assert response.to.tag == "a6c85cf"


# -- §7.3.3 compact forms and case-insensitive names --------------------------------------------

# (compact, full name, a valid value) for every compact form in §7.3.3 and the IANA registry.
COMPACT_FORMS = [
    ("i", "Call-ID", "c2@host"), ("m", "Contact", "<sip:a@192.0.2.1>"),
    ("v", "Via", "SIP/2.0/UDP h.example.com;branch=z9hG4bK9"), ("f", "From", "<sip:a@b>;tag=9"),
    ("t", "To", "<sip:b@c>"), ("l", "Content-Length", "0"),
    ("c", "Content-Type", "application/sdp"),
    ("k", "Supported", "path"), ("s", "Subject", "hello"), ("e", "Content-Encoding", "gzip"),
    ("o", "Event", "presence"), ("r", "Refer-To", "<sip:x@y>"), ("u", "Allow-Events", "presence"),
    ("b", "Referred-By", "<sip:r@y>"), ("x", "Session-Expires", "1800"),
    ("a", "Accept-Contact", "*;audio"), ("j", "Reject-Contact", "*;video"),
    ("d", "Request-Disposition", "proxy"), ("y", "Identity", "abc"),
    ("n", "Identity-Info", "<https://x.example.com/cert>;alg=rsa-sha1"),
]  # fmt: skip


@pytest.mark.parametrize(("compact", "full", "value"), COMPACT_FORMS)
def test_compact_form_is_the_same_header(compact: str, full: str, value: str) -> None:
    # §7.3.3: compact and full names are equivalent; names, compact ones too, are case-insensitive.
    for written in (compact, compact.upper()):
        request = parse_request(message((full, None), add=((written, value),), length=None))
        for name in (full, full.upper(), full.lower(), compact, compact.upper()):
            assert request.headers.get(name) == value, name
        assert full in request.headers and request.headers.count(compact) == 1


def test_a_request_written_entirely_in_compact_form() -> None:
    data = raw(
        "REGISTER sip:example.com SIP/2.0\r\n"
        "v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKabc\r\n"
        "f: <sip:alice@example.com>;tag=1\r\n"
        "t: <sip:alice@example.com>\r\n"
        "i: c1@pc33\r\n"
        "CSeq: 1 REGISTER\r\n"
        "m: <sip:alice@192.0.2.1>;expires=60\r\n"
        "k: path, outbound\r\n"
        "c: text/plain\r\n"
        "l: 5\r\n\r\nhello"
    )
    request = parse_request(data, datagram=False)
    assert request.top_via.branch == "z9hG4bKabc" and request.from_.tag == "1"
    assert request.to.tag is None and request.call_id == "c1@pc33"
    assert request.contacts[0].expires == 60 and request.supported == ("path", "outbound")
    assert request.content_type == "text/plain" and request.body == b"hello"
    assert request.content_length == 5


@pytest.mark.parametrize("name", ["VIA", "via", "vIa", "V"])
def test_header_names_are_case_insensitive_for_via(name: str) -> None:
    data = message(("Via", None), add=((name, "SIP/2.0/TCP h.example.com;branch=z9hG4bKx"),))
    assert parse_request(data).top_via.transport == "TCP"


@pytest.mark.parametrize("name", ["CSEQ", "cseq", "cSeQ"])
def test_header_names_are_case_insensitive_for_cseq(name: str) -> None:
    data = message(("CSeq", None), add=((name, "7 INVITE"),))
    assert parse_request(data).cseq.number == 7


def test_via_lines_in_compact_and_full_form_keep_their_order() -> None:
    data = message(
        ("Via", "SIP/2.0/UDP first.example.com;branch=z9hG4bK1"),
        add=(
            ("v", "SIP/2.0/UDP second.example.com;branch=z9hG4bK2"),
            ("VIA", "SIP/2.0/UDP third.example.com;branch=z9hG4bK3"),
        ),
    )
    assert [v.host for v in parse_request(data).vias] == [
        "first.example.com",
        "second.example.com",
        "third.example.com",
    ]


@pytest.mark.parametrize(
    ("full", "compact", "value"),
    [
        ("From", "f", "<sip:x@example.com>;tag=2"),
        ("To", "t", "<sip:y@example.com>"),
        ("Call-ID", "i", "other@host"),
    ],
)
def test_a_single_value_header_in_both_full_and_compact_form_is_a_duplicate(
    full: str, compact: str, value: str
) -> None:
    # §7.3.1 / §8.1.1 / RFC 4475 §3.3.8 multi01: To, From, Call-ID and CSeq appear once.
    rejects(message(add=((compact, value),)))


# -- §7.3.1 line folding ------------------------------------------------------------------------


def test_folded_value_joins_continuation_lines_with_one_space() -> None:
    data = message(add=(("Subject", "I know you're there,\r\n    pick up\r\n\tthe phone"),))
    assert parse_request(data).headers.get("Subject") == "I know you're there, pick up the phone"


def test_value_may_start_on_a_continuation_line() -> None:
    data = message(("Max-Forwards", "\r\n 69"), ("CSeq", "\r\n\t314159\r\n INVITE"))
    request = parse_request(data)
    assert request.max_forwards == 69 and request.cseq.number == 314159


def test_folded_via_and_contact_lists() -> None:
    data = message(
        (
            "Via",
            "SIP/2.0/UDP a.example.com\r\n ;branch=z9hG4bK1,\r\n SIP/2.0/UDP b.example.com"
            ";branch=z9hG4bK2",
        ),
        ("Contact", "<sip:a@example.com>,\r\n\t<sip:b@example.com>;q=0.5"),
    )
    request = parse_request(data)
    assert [v.branch for v in request.vias] == ["z9hG4bK1", "z9hG4bK2"]
    assert [str(c.uri) for c in request.contacts] == ["sip:a@example.com", "sip:b@example.com"]


def test_continuation_line_before_the_first_header_is_an_error() -> None:
    rejects(message(start=START + "\r\n folded-start-line"))


def test_folded_whitespace_only_line_adds_no_trailing_whitespace() -> None:
    # §7.3.1: a continuation line is LWS, equivalent to SP; the value is then trimmed like any
    # other (§7.3.1 "...whitespace... is not part of the value"). Reproduction: the value of
    # "Max-Forwards: 70\r\n \r\n" becomes "70 " and a valid request is rejected with 400.
    request = parse_request(message(("Max-Forwards", "70\r\n "), ("Call-ID", "abc@host\r\n\t")))
    assert request.max_forwards == 70 and request.call_id == "abc@host"
    request = parse_request(message(add=(("Subject", "hi\r\n \t"),)))
    assert request.headers.get("Subject") == "hi"


# -- §7.3.1 comma-separated lists ---------------------------------------------------------------


def test_contact_list_split_respects_quotes_and_angle_brackets() -> None:
    data = message(
        (
            "Contact",
            '"Doe, John" <sip:a,b@example.com>;x="1,2", <sip:c@example.com>, '
            "sip:d@example.com;expires=5",
        ),
    )
    contacts = parse_request(data).contacts
    assert [c.display_name for c in contacts] == ["Doe, John", None, None]
    assert contacts[0].uri.user == "a,b" and contacts[0].param("x") == "1,2"  # type: ignore[union-attr]
    assert contacts[2].expires == 5


def test_via_list_split_respects_quoted_parameter_values() -> None:
    data = message(
        (
            "Via",
            'SIP/2.0/UDP a.example.com;branch=z9hG4bK1;x="p, q; r", '
            "SIP/2.0/TCP b.example.com;branch=z9hG4bK2",
        )
    )
    vias = parse_request(data).vias
    assert [v.transport for v in vias] == ["UDP", "TCP"] and vias[0].param("x") == "p, q; r"


def test_route_values_across_lines_keep_their_order() -> None:
    data = message(
        add=(
            ("Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
            ("Route", "<sip:p3.example.com;lr>"),
        )
    )
    routes = parse_request(data).routes
    assert [r.uri.host for r in routes] == ["p1.example.com", "p2.example.com", "p3.example.com"]  # type: ignore[union-attr]


def test_headers_that_are_not_lists_are_not_split() -> None:
    date = "Sat, 13 Nov 2010 23:29:00 GMT"
    request = parse_request(message(add=(("Date", date), ("X-Unknown", "a, b"))))
    assert request.headers.get_all("Date") == (date,)
    assert request.headers.get_all("X-Unknown") == ("a, b",)


@pytest.mark.parametrize(
    "change",
    [
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1,,SIP/2.0/UDP b;branch=z9hG4bK2"),
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1,"),
        ("Contact", "<sip:a@example.com>, "),
        ("Route", "<sip:a@example.com>,,<sip:b@example.com>"),
    ],
)
def test_empty_list_elements_are_errors(change: tuple[str, str]) -> None:
    # §7.3.1: a list is elements separated by commas; RFC 4475 §3.1.2.1 badinv01.
    rejects(message(change))


def test_route_values_must_be_name_addrs() -> None:
    # §20.34: route-param = name-addr *( SEMI rr-param ): angle brackets are required.
    rejects(message(add=(("Route", "sip:p1.example.com;lr"),)))


# -- Contact: *, expires, q, +sip.instance (§10.2.2, §20.10, RFC 5626) --------------------------


def test_contact_star_alone_is_valid() -> None:
    for name in ("Contact", "m"):
        data = message(("Contact", None), add=((name, " * "), ("Expires", "0")))
        request = parse_request(data)
        assert request.contact_is_star and request.contacts == () and request.expires == 0


@pytest.mark.parametrize(
    "contacts",
    [
        (("Contact", "*"), ("Contact", "<sip:a@example.com>")),
        (("Contact", "*, <sip:a@example.com>"),),
        (("Contact", "<sip:a@example.com>, *"),),
        (("Contact", "*"), ("m", "*")),
        (("Contact", "*;expires=0"),),
    ],
)
def test_contact_star_with_anything_else_is_invalid(contacts: tuple[tuple[str, str], ...]) -> None:
    # §20.10: Contact = ( STAR / contact-param *(COMMA contact-param) ); §10.2.2: alone.
    rejects(message(("Contact", None), add=contacts))


def test_contact_params_and_uri_params_are_kept_apart() -> None:
    data = message(
        (
            "Contact",
            '"A" <sip:alice@192.0.2.1:5070;transport=tcp;ob>;expires=3600;q=0.7'
            ';+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
            ";reg-id=1",
        )
    )
    contact = parse_request(data).contacts[0]
    uri = contact.uri
    assert isinstance(uri, SipUri) and uri.param("transport") == "tcp" and uri.has_param("ob")
    assert contact.expires == 3600 and contact.param("q") == "0.7"
    assert contact.instance == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert contact.param("reg-id") == "1" and not uri.has_param("expires")


def test_contact_in_addr_spec_form_with_a_quoted_instance() -> None:
    # §20.10: contact-params = c-p-q / c-p-expires / contact-extension, and a generic-param's
    # gen-value may be a quoted-string, which may hold "<" (RFC 5626 §4.1 +sip.instance).
    # Reproduction: the "<" inside the quotes is taken for the start of a name-addr -> 400.
    data = message(("Contact", 'sip:alice@192.0.2.1;expires=60;+sip.instance="<urn:uuid:1234>"'))
    contact = parse_request(data).contacts[0]
    assert str(contact.uri) == "sip:alice@192.0.2.1" and contact.expires == 60
    assert contact.instance == "urn:uuid:1234"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0", 0),
        ("3600", 3600),
        ("0003600", 3600),
        (str(2**32 - 1), 2**32 - 1),
        (str(2**32 + 5), 2**32 - 1),
        pytest.param("9" * 4400, 2**32 - 1, id="4400-digits"),
    ],
)
def test_contact_expires_is_capped_at_2_32_minus_1(written: str, expected: int) -> None:
    # §20.10 / §20.19 delta-seconds; RFC 4475 §3.1.2.4: larger values mean 2**32-1. Reproduction
    # for the last case: int() refuses more than 4300 digits and raises ValueError.
    contact = parse_request(
        message(("Contact", f"<sip:a@example.com>;expires={written}"))
    ).contacts[0]
    assert contact.expires == expected


@pytest.mark.parametrize("written", ["0", "0.5", "0.123", "1", "1.0", "1.000", "0."])
def test_contact_q_values_in_range(written: str) -> None:
    contact = parse_request(message(("Contact", f"<sip:a@example.com>;q={written}"))).contacts[0]
    assert contact.param("q") == written


@pytest.mark.parametrize(
    "param",
    [
        "q=1.5",
        "q=2",
        "q=1.0001",
        "q=0.1234",
        "q=-0",
        "q",
        "q=.5",
        "expires=abc",
        "expires=-1",
        "expires",
        "expires=1.5",
    ],
)
def test_contact_bad_q_and_expires_are_rejected(param: str) -> None:
    # §20.10: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); delta-seconds = 1*DIGIT
    rejects(message(("Contact", f"<sip:a@example.com>;{param}")))


# -- Via (§20.42, §18.2, RFC 3581) --------------------------------------------------------------


def test_via_received_rport_and_branch() -> None:
    via = parse_via(
        "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bKnashds8;received=192.0.2.1;rport=5067"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "pc33.example.com", 5066)
    assert via.branch == "z9hG4bKnashds8" and via.received == "192.0.2.1" and via.rport == 5067
    assert parse_via("SIP/2.0/UDP h;rport;branch=z9hG4bK1").rport is True
    assert parse_via("SIP/2.0/UDP h;branch=z9hG4bK1").rport is None


def test_via_with_lws_inside_sent_protocol_and_sent_by() -> None:
    via = parse_via("SIP / 2.0 / tcp  [2001:db8::1] : 5070 ;branch = z9hG4bK1")
    assert (via.transport, via.host, via.port, via.branch) == (
        "TCP",
        "[2001:db8::1]",
        5070,
        "z9hG4bK1",
    )


@pytest.mark.parametrize(
    ("branch", "expected"),
    [("z9hG4bK776asdhds", True), ("z9hG4bK", False), ("776asdhds", False), ("Z9HG4BKabc", False)],
)
def test_has_rfc3261_branch(branch: str, expected: bool) -> None:
    # §8.1.1.7 / §17.2.3: the magic cookie and something after it (RFC 4475 §3.2.1 badbranch)
    assert parse_via(f"SIP/2.0/UDP h;branch={branch}").has_rfc3261_branch is expected
    assert not parse_via("SIP/2.0/UDP h").has_rfc3261_branch


@pytest.mark.parametrize(
    "received",
    [
        "2001:db8::9:255",
        "::1",
        "fe80::1",
        "2001:db8:0:0:1:0:0:1",
        "::ffff:192.0.2.1",
        "[2001:db8::9:255]",
    ],
)
def test_via_received_keeps_a_whole_ipv6_address(received: str) -> None:
    # §20.42: received = IPv4address / IPv6address; RFC 5118 §4.5 also shows the bracketed form.
    # Reproduction: the fast parameter parser stops at the first ':' (received=2001:db8::9:255
    # reads back as "2001"), and a response would be sent to host "2001".
    via = parse_via(f"SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK1;received={received}")
    assert via.received == received


def test_generic_parameter_values_that_look_like_ipv6_are_kept_whole() -> None:
    # §25.1 generic-param: gen-value = token / host / quoted-string. Same fast-path bug as above,
    # seen through a Contact header parameter.
    contact = parse_request(message(("Contact", "<sip:a@example.com>;x=2001:db8::1;y=1"))).contacts[
        0
    ]
    assert contact.param("x") == "2001:db8::1" and contact.param("y") == "1"


@pytest.mark.parametrize("host", ["[...]", "[:]", "[::1::2]", "[12345::1]"])
def test_via_ipv6_sent_by_must_be_an_ipv6_address(host: str) -> None:
    # §20.42 sent-by = host [ COLON port ]; host's IPv6reference = "[" IPv6address "]" (§25.1,
    # RFC 5954 §4.1). Reproduction: "Via: SIP/2.0/UDP [...]" parses, and a response would be
    # sent to host "...".
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP {host};branch=z9hG4bK1")


@pytest.mark.parametrize(
    "received", [":", "[:", "[::1", "::1]", "...", "1:2:3:4:5:6:7:8:9", "[...]"]
)
def test_via_received_must_be_an_ip_address(received: str) -> None:
    # §20.42: via-received = "received" EQUAL (IPv4address / IPv6address) (RFC 5118 §4.5: also
    # the bracketed IPv6reference). Reproduction: "received=:" parses and
    # response_destination() answers (":", 5060); stamp_received keeps such a value when the
    # sent-by equals the source address, so a response would be sent there.
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP h.example.com;branch=z9hG4bK1;received={received}")


def test_via_sent_by_default_ports() -> None:
    assert parse_via("SIP/2.0/UDP h.example.com").sent_by == ("h.example.com", 5060)
    assert parse_via("SIP/2.0/TLS H.example.com").sent_by == ("h.example.com", 5061)
    assert parse_via("SIP/2.0/TCP h.example.com:5080").sent_by == ("h.example.com", 5080)


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 h.example.com",
        "SIP/2.0/UDP h.example.com:65536",
        "SIP/2.0/UDP h.example.com:",
        "SIP/2.0/UDP h.example.com;branch",
        "SIP/2.0/UDP h;branch=",
        "SIP/2.0/UDP h;rport=65536",
        "SIP/2.0/UDP h;rport=abc",
        "SIP/2.0/UDP h;received",
        "SIP/2.0/UDP h;;branch=z9hG4bK1",
        "SIP/2.0/UDP h junk",
        "HTTP/1.1/TCP h",
        "SIP/2.0/UDP 2001:db8::1",
        pytest.param("SIP/2.0/UDP h;rport=" + "9" * 4400, id="rport-4400-digits"),
    ],
)
def test_bad_via_values_are_parse_errors(value: str) -> None:
    with pytest.raises(ParseError):
        parse_via(value)
    rejects(message(("Via", value)))


# -- Max-Forwards (§20.22) and CSeq (§20.16) bounds ---------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"), [("0", 0), ("255", 255), ("070", 70), (" 69 ", 69)]
)
def test_max_forwards_in_range(written: str, expected: int) -> None:
    assert parse_request(message(("Max-Forwards", written))).max_forwards == expected


@pytest.mark.parametrize(
    "written",
    ["256", "-1", "", "abc", "1.5", "+5", "٣", "²", pytest.param("9" * 4400, id="4400-digits")],
)
def test_max_forwards_out_of_range_is_400(written: str) -> None:
    # §20.22: Max-Forwards = 1*DIGIT, 0-255. "9"*4400 must be a ParseError, not int()'s ValueError.
    rejects(message(("Max-Forwards", written)))


def test_two_max_forwards_headers_are_400() -> None:
    rejects(message(add=(("Max-Forwards", "70"),)))


def test_missing_max_forwards_is_accepted_for_rfc_2543_peers() -> None:
    assert parse_request(message(("Max-Forwards", None))).max_forwards is None


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("0 INVITE", 0),
        (f"{2**32 - 1} INVITE", 2**32 - 1),
        ("1\tINVITE", 1),
        ("  7   INVITE  ", 7),
        ("00000000001 INVITE", 1),
    ],
)
def test_cseq_in_range(written: str, number: int) -> None:
    # §20.16: CSeq = 1*DIGIT LWS Method, a 32-bit unsigned number (§8.1.1.5). Leading zeros do
    # not change the number: "00000000001" is 1, not a value above 2**32-1.
    assert parse_request(message(("CSeq", written))).cseq.number == number


@pytest.mark.parametrize(
    "written",
    [
        f"{2**32} INVITE",
        pytest.param("1" * 4400 + " INVITE", id="4400-digits"),
        "-1 INVITE",
        "1",
        "INVITE",
        "INVITE 1",
        "1INVITE",
        "1 INVITE extra",
        "1 invite",
        "one INVITE",
        "1 OPTIONS",
    ],
)
def test_bad_cseq_is_400(written: str) -> None:
    # RFC 4475 §3.1.2.4 scalar02, §3.1.2.17 mismatch01; method names are case-sensitive (§7.1).
    rejects(message(("CSeq", written)))


# -- §8.1.1 mandatory headers -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Via", "To", "From", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_400_and_keeps_the_raw_head(name: str) -> None:
    err = rejects(message((name, None)))
    assert err.head is not None and err.head.start_line == START and err.head.is_request
    names = [n for n, _ in err.head.headers]
    assert name not in names and "Max-Forwards" in names


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("To", "<sip:other@example.com>"),
        ("From", "<sip:other@example.com>;tag=9"),
        ("Call-ID", "other@host"),
        ("CSeq", "314159 INVITE"),
    ],
)
def test_duplicate_single_value_header_is_400(name: str, value: str) -> None:
    rejects(message(add=((name, value),)))


@pytest.mark.parametrize("value", ["", "two words", "tab\tinside"])
def test_bad_call_id_is_400(value: str) -> None:
    # §20.8: callid = word [ "@" word ]: no whitespace inside, not empty
    rejects(message(("Call-ID", value)))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("To", "sip:bob@example.com tag=1"),
        ("From", '"unterminated <sip:a@example.com>;tag=1'),
        ("From", "<sip:a@example.com>;tag"),
        ("From", '<sip:a@example.com>;tag="x"'),
        ("To", "Bob, Jr. <sip:bob@example.com>"),
        ("To", "<sip:bob@example.com"),
        ("To", "< sip:bob@example.com >"),
        ("To", "<>"),
    ],
)
def test_bad_from_and_to_are_400(name: str, value: str) -> None:
    rejects(message((name, value)))


def test_from_and_to_display_names() -> None:
    request = parse_request(
        message(
            ("From", r'"Alice \"A\" \\ Liddell" <sip:alice@example.com>;tag=1'),
            ("To", "Bob  \t The   Builder<sip:bob@example.com>"),
        )
    )
    assert request.from_.display_name == 'Alice "A" \\ Liddell'
    assert request.to.display_name == "Bob The Builder"


def test_addr_spec_form_puts_parameters_on_the_header() -> None:
    # §20: in addr-spec form everything after ';' belongs to the header, not the URI.
    request = parse_request(message(("To", "sip:bob@example.com;tag=abc;transport=tcp")))
    assert request.to.tag == "abc" and request.to.param("transport") == "tcp"
    assert str(request.to.uri) == "sip:bob@example.com"


# -- §18.3 framing ------------------------------------------------------------------------------


def test_datagram_without_content_length_takes_the_rest_as_body() -> None:
    request = parse_request(message(body=b"v=0\r\nbody", length=None))
    assert request.body == b"v=0\r\nbody" and request.content_length is None
    assert b"Content-Length: 9\r\n" in bytes(request)


def test_datagram_octets_past_content_length_are_ignored() -> None:
    data = message(body=b"hello", length=5) + b"INVITE sip:x@y SIP/2.0\r\n\r\n"
    request = parse_request(data)
    assert request.body == b"hello"
    wire = bytes(request)
    assert wire.endswith(b"\r\n\r\nhello") and wire.count(b"INVITE") == 2  # start line + CSeq


def test_datagram_content_length_larger_than_the_datagram_is_400() -> None:
    rejects(message(body=b"hello", length=6))  # RFC 4475 §3.1.2.2 clerr


@pytest.mark.parametrize("length", ["-1", "abc", "0x5", "٥", "+5", "5.0", ""])
def test_bad_content_length_is_400(length: str) -> None:
    rejects(message(body=b"hello", length=length))


def test_huge_content_length_is_400_not_value_error() -> None:
    # §20.14 Content-Length = 1*DIGIT; int() refuses more than 4300 digits with ValueError.
    rejects(message(length="9" * 4400))
    rejects(message(length="9" * 4400), datagram=False)


def test_content_length_of_many_leading_zeros_is_zero() -> None:
    assert parse_request(message(length="0" * 4400), datagram=False).body == b""


def test_conflicting_content_lengths_are_400_identical_ones_are_one() -> None:
    rejects(message(body=b"hello", add=(("l", "4"),)))  # RFC 4475 §3.3.9 mcl01
    request = parse_request(message(body=b"hello", add=(("l", "5"),)), datagram=False)
    assert request.body == b"hello" and bytes(request).count(b"5\r\n") == 1


def test_stream_frame_requires_content_length() -> None:
    rejects(message(length=None), datagram=False)  # §18.3: mandatory over stream transports
    rejects(message(body=b"hello", length=4), datagram=False)
    rejects(message(body=b"hello", length=6), datagram=False)
    assert parse_request(message(body=b"hello"), datagram=False).body == b"hello"


@pytest.mark.parametrize("datagram", [True, False])
def test_leading_crlfs_before_the_start_line_are_skipped(datagram: bool) -> None:
    # §7.5: implementations SHOULD ignore any CRLF appearing before the start line.
    request = parse_request(b"\r\n\r\n\r\n" + message(), datagram=datagram)
    assert request.method == "INVITE"
    response = parse_response(b"\r\n" + raw(RESPONSE), datagram=datagram)
    assert response.status == 200


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n\r\n", b"INVITE"])
def test_keep_alives_and_fragments_are_parse_errors(data: bytes) -> None:
    for datagram in (True, False):
        with pytest.raises(ParseError):
            parse_message(data, datagram=datagram)


def test_message_head_without_empty_line_is_400() -> None:
    rejects(message()[:-2])


# -- §7.1 / §7.2 start lines --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["SIP/3.0", "SIP/2.1", "SIP/1.0", "SIP/20.0", "SIP/2.00001"])
def test_other_sip_versions_are_505(version: str) -> None:
    rejects(message(start=f"INVITE sip:bob@example.com {version}"), 505)  # §21.5.14


def test_sip_version_is_case_insensitive() -> None:
    # §7.1: "The SIP-Version string is case-insensitive, but implementations MUST send upper-case."
    request = parse_request(message(start="INVITE sip:bob@example.com sip/2.0"))
    assert bytes(request).startswith(b"INVITE sip:bob@example.com SIP/2.0\r\n")


@pytest.mark.parametrize("version", ["SIP/2", "HTTP/1.1", "SIP/2.0a", "SIP/-2.0", "SIP/2.0/UDP"])
def test_malformed_versions_are_400(version: str) -> None:
    rejects(message(start=f"INVITE sip:bob@example.com {version}"))


def test_huge_version_numbers_are_parse_errors_not_value_errors() -> None:
    # int() refuses strings of more than 4300 digits with ValueError; only ParseError may leave.
    rejects(message(start="INVITE sip:bob@example.com SIP/" + "2" * 4400 + ".0"), 505)
    with pytest.raises(ParseError):
        parse_message(raw(RESPONSE.replace("SIP/2.0 200", "SIP/" + "9" * 4400 + ".0 200")))
    with contextlib.suppress(ParseError):  # "SIP/2.000...0" may be read as 2.0
        parse_message(message(start="INVITE sip:bob@example.com SIP/2." + "0" * 4400))


def test_response_with_another_version_is_505() -> None:
    err = rejects(raw(RESPONSE.replace("SIP/2.0 200", "SIP/3.0 200")), 505)
    assert err.head is not None and not err.head.is_request


def test_unknown_method_is_accepted_and_methods_are_case_sensitive() -> None:
    request = parse_request(message(("CSeq", "1 FOO"), start="FOO sip:bob@example.com SIP/2.0"))
    assert request.method == "FOO"
    lower = parse_request(message(("CSeq", "1 invite"), start="invite sip:bob@example.com SIP/2.0"))
    assert lower.method == "invite" and lower.cseq.method == "invite"


@pytest.mark.parametrize(
    "start",
    [
        "INVITE  sip:bob@example.com SIP/2.0",
        "INVITE sip:bob@example.com SIP/2.0 ",
        "INVITE\tsip:bob@example.com\tSIP/2.0",
        "INVITE sip:bob@example.com",
        " INVITE sip:b@h SIP/2.0",
        "INV<ITE sip:bob@example.com SIP/2.0",
        "INVITE <sip:bob@example.com> SIP/2.0",
        "INVITE sip:bob@example.com?Route=x SIP/2.0",
    ],
)
def test_malformed_request_lines_are_400(start: str) -> None:
    # §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 4475 §3.1.2.7-11)
    rejects(message(start=start))


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 100", 100, ""),
        ("SIP/2.0 699 Odd one", 699, "Odd one"),
        ("SIP/2.0 180 Ça sonne", 180, "Ça sonne"),
        ("SIP/2.0 487 Request\tTerminated", 487, "Request\tTerminated"),
    ],
)
def test_status_lines(status_line: str, status: int, reason: str) -> None:
    response = parse_response(raw(RESPONSE.replace("SIP/2.0 200 OK", status_line)))
    assert (response.status, response.reason) == (status, reason)


@pytest.mark.parametrize(
    "status_line",
    [
        "SIP/2.0 099 Low",
        "SIP/2.0 700 High",
        "SIP/2.0 2000 OK",
        "SIP/2.0  200 OK",
        "SIP/2.0 20 OK",
        "SIP/2.0 OK",
        "SIP/2.0 200 O\nK",
        "SIP/2.0 200 O\rK",
    ],
)
def test_malformed_status_lines_are_parse_errors(status_line: str) -> None:
    # §7.2 / §25.1: Status-Code = 3DIGIT (1xx-6xx); Reason-Phrase has no CR or LF. Reproduction
    # for the last two: a bare LF/CR in the reason is accepted, and a proxy relaying the
    # response writes it out, so the next hop sees "K" as a header line.
    with pytest.raises(ParseError):
        parse_message(raw(RESPONSE.replace("SIP/2.0 200 OK", status_line)))


def test_bare_cr_or_lf_inside_a_header_line_is_400() -> None:
    rejects(message(add=(("Subject", "a\nb"),)))
    rejects(message(add=(("Subject", "a\rb"),)))


@pytest.mark.parametrize("line", ["Bad Header: x", ": novalue", "NoColon", "Ü: x", "Via\x00: x"])
def test_malformed_header_lines_are_400(line: str) -> None:
    rejects(message(start=START + "\r\n" + line))


def test_lws_around_the_colon_is_allowed() -> None:
    # §7.3.1: HCOLON = *( SP / HTAB ) ":" SWS
    request = parse_request(message(("Max-Forwards", None), add=(("Max-Forwards \t", "\t 42"),)))
    assert request.max_forwards == 42


def test_typed_views_of_a_parsed_request_never_raise() -> None:
    # The parser validates eagerly (§16.3): once a request parsed, a proxy may read any view.
    # Reproduction: "Supported:" (an empty list, valid per §20.37) parses, then .supported
    # raises ParseError("bad option tag in Supported").
    request = parse_request(message(add=(("Supported", ""), ("Require", "100rel"))))
    assert request.supported == () and request.require == ("100rel",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Supported", "a b"),
        ("Require", ""),
        ("Proxy-Require", "x,,y"),
        ("Expires", "soon"),
        ("Expires", "-1"),
    ],
)
def test_bad_option_tags_and_expires_are_rejected_when_parsing(name: str, value: str) -> None:
    # §20.32 Require / §20.37 Supported: option-tag = token; §20.19 Expires = delta-seconds.
    # Rejecting at parse time (400/420 territory) keeps the views total.
    rejects(message(add=((name, value),)))


def test_expires_header_is_capped() -> None:
    # §20.19 / RFC 4475 §3.1.2.4: larger than 2**32-1 means 2**32-1; 4400 digits must not crash.
    assert parse_request(message(add=(("Expires", str(2**40)),))).expires == 2**32 - 1
    assert parse_request(message(add=(("Expires", "9" * 4400),))).expires == 2**32 - 1


# -- helpers return new messages ------------------------------------------------------------------


def test_messages_are_frozen() -> None:
    request = parse_request(message())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = "BYE"  # type: ignore[misc]


def test_with_via_prepended_leaves_the_original_untouched() -> None:
    request = parse_request(message())
    before = bytes(request)
    forwarded = request.with_via_prepended("SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1")
    assert [v.host for v in forwarded.vias] == ["proxy.example.com", "pc33.example.com"]
    assert [v.host for v in request.vias] == ["pc33.example.com"] and bytes(request) == before
    via = Via("TCP", "192.0.2.9", 5070, (("branch", "z9hG4bKp2"),))
    assert (
        str(request.with_via_prepended(via).top_via)
        == "SIP/2.0/TCP 192.0.2.9:5070;branch=z9hG4bKp2"
    )
    wire = bytes(forwarded)
    assert wire.index(b"proxy.example.com") < wire.index(b"pc33.example.com:5060;branch")


def test_with_max_forwards_decremented() -> None:
    request = parse_request(message())
    assert request.with_max_forwards_decremented().max_forwards == 69 and request.max_forwards == 70
    absent = parse_request(message(("Max-Forwards", None)))
    added = absent.with_max_forwards_decremented()
    assert added.max_forwards == 70 and absent.max_forwards is None  # §16.6 step 3
    assert b"Max-Forwards: 70\r\n" in bytes(added) and b"Max-Forwards" not in bytes(absent)


def test_with_top_route_popped_from_a_line_holding_two_values() -> None:
    request = parse_request(
        message(
            add=(
                ("Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
                ("Route", "<sip:p3.example.com;lr>"),
            )
        )
    )
    top, rest = request.with_top_route_popped()
    assert top is not None and str(top.uri) == "sip:p1.example.com;lr"
    assert [str(r.uri) for r in rest.routes] == ["sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    assert len(request.routes) == 3
    top2, rest2 = rest.with_top_route_popped()
    top3, rest3 = rest2.with_top_route_popped()
    assert top2 is not None and top3 is not None and str(top3.uri) == "sip:p3.example.com;lr"
    assert rest3.routes == () and "Route" not in rest3.headers
    none, same = rest3.with_top_route_popped()
    assert none is None and same == rest3


def test_with_top_via_replaced_keeps_the_other_vias() -> None:
    request = parse_request(
        message(
            (
                "Via",
                "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, "
                "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
            )
        )
    )
    stamped = stamp_received(request.top_via, "192.0.2.7", 5060)
    replaced = request.with_top_via_replaced(stamped)
    assert [v.host for v in replaced.vias] == ["a.example.com", "b.example.com"]
    assert replaced.top_via.received == "192.0.2.7" and request.top_via.received is None


def test_with_header_removed_and_replaced() -> None:
    request = parse_request(message(add=(("Subject", "one"), ("s", "two"), ("X-Keep", "k"))))
    removed = request.with_header_removed("SUBJECT")
    assert "Subject" not in removed.headers and removed.headers.get("X-Keep") == "k"
    assert request.headers.get_all("Subject") == ("one", "two")
    replaced = request.with_header_replaced("subject", "three")
    assert replaced.headers.get_all("Subject") == ("three",)
    assert request.headers.count("Subject") == 2


def test_response_with_top_via_removed() -> None:
    response = parse_response(raw(RESPONSE))
    relayed = response.with_top_via_removed()
    assert [v.host for v in relayed.vias] == ["pc33.example.com"] and len(response.vias) == 2
    combined = parse_response(
        raw(
            RESPONSE.replace(
                "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1;received=192.0.2.1\r\nVia: ",
                "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1;received=192.0.2.1, ",
            )
        )
    )
    assert [v.host for v in combined.with_top_via_removed().vias] == ["pc33.example.com"]


# -- §8.2.6 make_response -----------------------------------------------------------------------


def test_make_response_copies_the_dialog_and_transaction_headers() -> None:
    request = parse_request(
        message(
            ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
            add=(
                ("Via", "SIP/2.0/TCP b.example.com;branch=z9hG4bK2"),
                ("Route", "<sip:p1.example.com;lr>"),
                ("X-Other", "x"),
            ),
        )
    )
    response = make_response(request, 486)
    assert (response.status, response.reason) == (486, "Busy Here")
    assert response.vias == request.vias and response.from_ == request.from_
    assert response.call_id == request.call_id and response.cseq == request.cseq
    assert response.to.uri == request.to.uri and response.to.tag  # §8.2.6.2: a To tag added
    for absent in ("Route", "X-Other", "Max-Forwards", "Contact"):
        assert absent not in response.headers
    again = parse_response(bytes(response), datagram=False)
    assert again.vias == request.vias and again.to.tag == response.to.tag


def test_make_response_100_trying_gets_no_to_tag() -> None:
    request = parse_request(message())
    assert make_response(request, 100).to.tag is None
    assert make_response(request, 180).to.tag is not None
    assert make_response(request, 200, to_tag="mine").to.tag == "mine"


def test_make_response_keeps_an_existing_to_tag() -> None:
    request = parse_request(message(("To", "<sip:bob@example.com>;tag=existing")))
    assert make_response(request, 200, to_tag="ignored").to.tag == "existing"


def test_make_response_extra_headers_and_body() -> None:
    request = parse_request(message())
    response = make_response(
        request, 200, "Fine", extra_headers=[("Contact", "<sip:b@h>")], body=b"x"
    )
    assert response.reason == "Fine" and response.headers.get("Contact") == "<sip:b@h>"
    assert bytes(response).endswith(b"Content-Length: 1\r\n\r\nx")


def test_make_response_100_copies_timestamp() -> None:
    # §8.2.6.1: "When a 100 (Trying) response is generated, any Timestamp header field present in
    # the request MUST be copied into this 100 (Trying) response."
    request = parse_request(message(add=(("Timestamp", "54.3 0.2"),)))
    assert make_response(request, 100).headers.get("Timestamp") == "54.3 0.2"


# -- §18.2.1 / §18.2.2 / RFC 3581: received, rport and where responses go -------------------------


def test_stamp_received_only_when_the_source_differs() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1")
    assert stamp_received(via, "192.0.2.1", 5060).received is None
    assert stamp_received(via, "192.0.2.1", 5060) == via
    assert stamp_received(via, "198.51.100.7", 5060).received == "198.51.100.7"
    named = parse_via("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1")
    assert stamp_received(named, "192.0.2.1", 5060).received == "192.0.2.1"  # a domain name


def test_stamp_received_fills_an_empty_rport_and_always_adds_received() -> None:
    # RFC 3581 §4: fill rport with the source port; add received even if it equals sent-by.
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1")
    stamped = stamp_received(via, "192.0.2.1", 61000)
    assert stamped.rport == 61000 and stamped.received == "192.0.2.1"
    assert str(stamped).startswith("SIP/2.0/UDP 192.0.2.1:5060;rport=61000;branch=z9hG4bK1")
    assert via.rport is True  # the original is untouched


def test_stamp_received_with_ipv6() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1")
    assert stamp_received(via, "2001:db8::1", 5060).received is None
    assert stamp_received(via, "2001:DB8::1", 5060).received is None
    assert stamp_received(via, "2001:db8::2", 5060).received == "2001:db8::2"
    assert stamp_received(via, "[2001:db8::2]", 5060).received == "2001:db8::2"


@pytest.mark.parametrize(
    ("value", "destination"),
    [
        ("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", ("192.0.2.1", 5060)),
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", ("192.0.2.1", 5070)),
        ("SIP/2.0/TLS h.example.com;branch=z9hG4bK1", ("h.example.com", 5061)),
        ("SIP/2.0/UDP h.example.com:5070;branch=z9hG4bK1;received=192.0.2.9", ("192.0.2.9", 5070)),
        ("SIP/2.0/UDP h.example.com;received=192.0.2.9;rport=61000", ("192.0.2.9", 61000)),
        ("SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK1", ("2001:db8::1", 5070)),
        ("SIP/2.0/UDP h;received=2001:db8::9;rport=5071", ("2001:db8::9", 5071)),
        ("SIP/2.0/UDP h;received=[2001:db8::9];rport=5071", ("2001:db8::9", 5071)),
    ],
)
def test_response_destination(value: str, destination: tuple[str, int]) -> None:
    # §18.2.2: received (and RFC 3581 rport) first, then sent-by and the transport's default port.
    # The last two: an IPv6 received, bare (§20.42) or bracketed (RFC 5118 §4.5), gives a host
    # that a socket can send to, without brackets, and the whole address (see the received bug).
    assert response_destination(parse_via(value)) == destination


def test_stamp_then_route_the_response_back() -> None:
    request = parse_request(message(("Via", "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1")))
    stamped = request.with_top_via_replaced(stamp_received(request.top_via, "203.0.113.4", 40123))
    response = make_response(stamped, 200)
    assert response_destination(response.top_via) == ("203.0.113.4", 40123)


# -- serialisation --------------------------------------------------------------------------------


def test_serialisation_writes_the_true_content_length() -> None:
    request = parse_request(message(body=b"hello", add=(("l", "5"),)))
    assert bytes(request).count(b"5\r\n") == 1
    wire = bytes(request.with_body(b"longer body"))
    assert b"\r\nl: 11\r\n" in wire and wire.count(b"11\r\n") == 1 and b": 5\r\n" not in wire
    built = Request("OPTIONS", SipUri("sip", None, None, "example.com", None), body=b"abc")
    assert bytes(built) == b"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 3\r\n\r\nabc"


def test_serialisation_round_trips_a_full_request() -> None:
    request = parse_request(
        message(("Max-Forwards", "\r\n 69"), body=b"v=0\r\n", add=(("Subject", "a\r\n b"),))
    )
    wire = bytes(request)
    again = parse_request(wire, datagram=False)
    assert again == request and bytes(again) == wire
    assert again.headers.get("Subject") == "a b" and again.max_forwards == 69
