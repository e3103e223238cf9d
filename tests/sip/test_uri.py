"""URIs: SIP/SIPS (RFC 3261 §19.1), tel (RFC 3966), any other absoluteURI, and IPv6 (RFC 5118).

Valid URIs parse into their parts and print back as written (scheme in lower case); escapes are
decoded once, on access, never recursively (RFC 4475 §3.1.1.3); invalid URIs raise ParseError
with status 400. A property test checks that the fast path (lower-case ``sip:``) and the exact
parser (any other spelling of the scheme) agree.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipush.errors import ParseError
from sipush.sip import AbsoluteUri, SipUri, TelUri, parse_uri


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri), uri
    return uri


# -- SIP and SIPS -------------------------------------------------------------------------------


def test_full_sip_uri() -> None:
    uri = sip("sip:alice:secretword@atlanta.com;transport=tcp;lr?subject=project&priority=urgent")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        "secretword",
        "atlanta.com",
        None,
    )
    assert uri.params == (("transport", "tcp"), ("lr", None))
    assert uri.headers == (("subject", "project"), ("priority", "urgent"))
    assert uri.param("transport") == "tcp" and uri.param("lr") == "" and uri.param("x") is None


@pytest.mark.parametrize(
    ("text", "scheme", "port", "effective"),
    [
        ("sip:h.example.com", "sip", None, 5060),
        ("sips:h.example.com", "sips", None, 5061),
        ("sip:h.example.com:5080", "sip", 5080, 5080),
        ("SIPS:h.example.com", "sips", None, 5061),
        ("Sip:h.example.com", "sip", None, 5060),
    ],
)
def test_schemes_and_default_ports(
    text: str, scheme: str, port: int | None, effective: int
) -> None:
    # §19.1.1 default ports; §19.1.4 the scheme is case-insensitive.
    uri = sip(text)
    assert (uri.scheme, uri.port, uri.effective_port) == (scheme, port, effective)


def test_user_and_password_forms() -> None:
    assert sip("sip:alice@h").user == "alice" and sip("sip:alice@h").password is None
    assert sip("sip:alice:@h").password == ""  # password = *( ... ): may be empty
    assert sip("sip:+1-212-555-1212:1234@gateway.com;user=phone").user == "+1-212-555-1212"
    assert sip("sip:user;par=u%40example.net@example.com").user_text == "user;par=u@example.net"
    assert sip("sip:a&b=c+d$e,f?g/h@example.com").user == "a&b=c+d$e,f?g/h"  # user-unreserved
    assert sip("sip:example.com").user is None


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:alice@[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),  # RFC 5118 §4.3: no port
        ("sip:[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", None),  # RFC 5118 §4.9
        ("sip:[::1];transport=tcp", "[::1]", None),
        ("sip:192.0.2.1:0", "192.0.2.1", 0),
        ("sip:h:65535", "h", 65535),
        ("sip:h.example.com.", "h.example.com.", None),  # a fully qualified name
    ],
)
def test_hosts_and_ports(text: str, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_host_comparison_helpers() -> None:
    uri = sip("sip:Alice@Atlanta.Example.COM:5060;transport=tcp?x=y")
    assert uri.host_lower == "atlanta.example.com"
    assert uri.aor == "sip:Alice@atlanta.example.com"  # §19.1.4: user is case-sensitive


# -- parameters ---------------------------------------------------------------------------------


def test_param_names_are_case_insensitive_and_the_first_wins() -> None:
    uri = sip("sip:h;Transport=TCP;transport=udp;LR")
    assert uri.param("transport") == "TCP" and uri.param("TRANSPORT") == "TCP"
    assert uri.has_param("lr") and uri.param("lr") == ""


def test_escaped_param_names_and_values_are_decoded_once() -> None:
    # RFC 4475 §3.1.1.3 esc01: ;%6C%72 is ;lr, and name=value%2541 decodes to value%41, not valueA.
    uri = sip("sip:h;%6C%72;name=value%2541;n%61me2=%22quoted%22")
    assert (
        uri.has_param("lr") and uri.param("name") == "value%41" and uri.param("name2") == '"quoted"'
    )
    assert str(uri) == "sip:h;%6C%72;name=value%2541;n%61me2=%22quoted%22"  # written form kept


def test_param_values_may_hold_param_unreserved_characters() -> None:
    # §25.1: param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
    uri = sip("sip:h;maddr=[2001:db8::1];x=a/b:c&d+e$f")
    assert uri.param("maddr") == "[2001:db8::1]" and uri.param("x") == "a/b:c&d+e$f"


def test_with_and_without_param_return_new_uris() -> None:
    uri = sip("sip:h;transport=tcp")
    assert str(uri.with_param("lr")) == "sip:h;transport=tcp;lr"
    assert str(uri.with_param("transport", "udp")) == "sip:h;transport=udp"
    assert str(uri.without_param("TRANSPORT")) == "sip:h"
    assert str(uri) == "sip:h;transport=tcp"


# -- headers ------------------------------------------------------------------------------------


def test_uri_headers() -> None:
    uri = sip("sips:b@h?Route=%3Csip:sip.example.com%3E&empty=&x=a:b/c")
    assert uri.headers == (("Route", "%3Csip:sip.example.com%3E"), ("empty", ""), ("x", "a:b/c"))
    assert str(uri.without_headers()) == "sips:b@h"
    assert str(uri) == "sips:b@h?Route=%3Csip:sip.example.com%3E&empty=&x=a:b/c"


# -- escapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "user_text"),
    [
        ("sip:%75ser@h", "user"),
        ("sip:%2575@h", "%75"),  # decoded once: %25 -> %, and the result is not decoded again
        ("sip:%25%32%35@h", "%25"),
        ("sip:%00@h", "\x00"),  # RFC 4475 §3.1.1.4 escnull: NUL is a character like any other
        ("sip:%C3%A9t%C3%A9@h", "été"),  # UTF-8 octets decode to characters
        ("sip:sips%3Auser%40example.com@h", "sips:user@example.com"),
    ],
)
def test_user_escapes_decode_once(text: str, user_text: str) -> None:
    uri = sip(text)
    assert uri.user_text == user_text
    assert str(uri) == text  # the written form is kept for forwarding


def test_invalid_utf8_escapes_decode_without_raising() -> None:
    user = sip("sip:%FF%C3@h").user_text
    assert isinstance(user, str) and len(user) == 2


# -- tel and other absolute URIs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("tel:+1-201-555-0123", "+1-201-555-0123"),
        ("tel:7042;phone-context=example.com", "7042"),
        ("tel:863-1234;phone-context=+1-914-555", "863-1234"),
        ("tel:+358.(9).1234567", "+358.(9).1234567"),
        ("tel:*31#", "*31#"),
    ],
)
def test_tel_uris(text: str, number: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, TelUri) and uri.number == number and str(uri) == text


def test_tel_params_and_scheme_case() -> None:
    uri = parse_uri("TEL:+1-201-555-0123;ext=1234;isub=%31")
    assert isinstance(uri, TelUri) and uri.param("ext") == "1234" and uri.param("isub") == "1"
    assert str(uri) == "tel:+1-201-555-0123;ext=1234;isub=%31"


@pytest.mark.parametrize(
    "text",
    ["tel:", "tel:+", "tel:-", "tel:()", "tel:.-.", "tel:+-", "tel:1 2", "tel:+1;", "tel:+1;=x"],
)
def test_invalid_tel_uris(text: str) -> None:
    # RFC 3966 §3: global-number-digits = "+" *phonedigit DIGIT *phonedigit; local-number-digits
    # = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex: at least one digit, visual
    # separators alone are no number. Reproduction: "tel:-" and "tel:()" parse.
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "text",
    [
        "http://www.example.com/a?b=c",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "mailto:alice@example.com",
        "soap.beep://192.0.2.103:3002",  # RFC 4475 §3.3.3 novelsc
        "im:alice@example.com",
        "X-Custom+1.0:opaque",
    ],
)
def test_other_schemes_are_kept_opaque(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri) and str(uri) == text
    assert uri.scheme == text.partition(":")[0]


# -- invalid URIs -------------------------------------------------------------------------------

INVALID = [
    "",
    "sip",
    "sip:",
    "sip:@h",
    "sip::pw@h",
    "sip:user@",
    "sip:user@h:",
    "sip:h:port",
    "sip:h:65536",
    "sip:h:99999",
    "sip:h:123456",
    "sip:h:-1",
    "sip:h:+80",
    "sip:h:٥٠٦٠",
    "sip:h;",
    "sip:h;;lr",
    "sip:h;=x",
    "sip:h;a=",
    "sip:h;a=b=c",
    "sip:h?",
    "sip:h?=x",
    "sip:h?x",
    "sip:h?a=b&",
    "sip:ho st",
    "sip:h\tx",
    "sip:-h",
    "sip:h-",
    "sip:h_x.example.com",
    "sip:[::1",
    "sip:[::1]x",
    "sip:[::1]:",
    "sip:[zz::1]",
    "sip:2001:db8::1",  # RFC 5118 §4.2: an IPv6 address must be bracketed
    "sip:us er@h",
    "sip:u<ser@h",
    "sip:%4@h",
    "sip:%zz@h",
    "sip:u%@h",
    "sip:u:p%4@h",
    "sip:h;a=%zz",
    "sip:h;%=1",
    "sip:h?a=%g0",
    "sip:ü@h",
    "sip:h;ü=1",
    "1sip:h",
    "si p:h",
    "<sip:h>",
    "sip:h>",
    "http:",
    "http:a b",
    'http:a"b',
    "http:a<b",
    "noscheme",
    ":nothing",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_uris_raise_parse_error_400(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


# -- round trips --------------------------------------------------------------------------------

ROUND_TRIP = [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sips:1212@gateway.com",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "sip:[2001:db8::10]:5070;maddr=[2001:db8::1];lr",
    "sip:%61lice@atlanta.com;%74ransport=tcp",
    "sip:alice@atlanta.com;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=ABCD1234.com.example",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_str_round_trip(text: str) -> None:
    uri = parse_uri(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri


_UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
_escapes = st.integers(0, 255).map(lambda o: f"%{o:02X}")
_users = st.lists(
    st.text(_UNRESERVED + "&=+$,;?/", min_size=1, max_size=4) | _escapes, min_size=1
).map("".join)
_labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,6}[A-Za-z0-9])?", fullmatch=True)
_hosts = st.lists(_labels, min_size=1, max_size=3).map(".".join) | st.ip_addresses(v=4).map(str)
_pchars = st.text(_UNRESERVED + "[]/:&+$", min_size=1, max_size=6) | _escapes
_params = st.lists(
    st.tuples(_pchars, st.none() | _pchars).map(
        lambda p: p[0] if p[1] is None else f"{p[0]}={p[1]}"
    ),
    max_size=3,
)


@st.composite
def sip_uri_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["sip:", "sips:"]))
    user = draw(st.none() | _users)
    if user is not None:
        text += user
        if draw(st.booleans()):
            text += ":" + draw(st.text(_UNRESERVED + "&=+$,", max_size=4))
        text += "@"
    text += draw(_hosts | st.ip_addresses(v=6).map(lambda a: f"[{a}]"))
    port = draw(st.none() | st.integers(0, 65535))
    if port is not None:
        text += f":{port}"
    text += "".join(";" + p for p in draw(_params))
    return text


@settings(max_examples=300, deadline=None)
@given(text=sip_uri_texts(), upper=st.booleans())
def test_fast_path_and_exact_parser_agree(text: str, upper: bool) -> None:
    # The scheme is case-insensitive (§19.1.4): "SIP:..." goes through the exact parser, "sip:..."
    # through the fast path; both must give the same URI, which prints back as written.
    lower = sip(text)
    scheme, _, rest = text.partition(":")
    other = sip((scheme.upper() if upper else scheme.capitalize()) + ":" + rest)
    assert other == lower
    assert str(lower) == text


@settings(max_examples=300, deadline=None)
@given(text=st.text(string.printable + "ü\x00", max_size=40).map(lambda t: "sip:" + t))
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except ParseError as err:
        assert err.status == 400
        return
    assert parse_uri(str(uri)) == uri
    if isinstance(uri, SipUri):
        _ = (uri.user_text, uri.param_map, uri.aor, uri.effective_port)


@pytest.mark.parametrize(
    "text",
    [
        "sip:[...]",
        "sip:[:]",
        "sip:[::1::2]",
        "sip:[12345::1]",
        "sip:[1:2:3:4:5:6:7:8:9]",
        "sip:[1.2.3.4]",
        "sip:alice@[:::]:5060",
    ],
)
def test_ipv6_references_must_hold_an_ipv6_address(text: str) -> None:
    # §25.1 (as corrected by RFC 5954 §4.1): IPv6reference = "[" IPv6address "]". Reproduction:
    # any run of hex digits, ':' and '.' in brackets is accepted as a host, e.g. "sip:[...]".
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400
