"""Table and property tests for :mod:`sipush.push.params`: push information from a REGISTER.

Every request is built from literal bytes and read by :func:`sipush.sip.parse_message`, as the
proxy will. The tables cover each source (RFC 8599 ``pn-*``, X-Push in every spelling, legacy
``pn-tok``), every error with its exact warning, the precedence and agreement rules, the iOS
double token, %-escaped ``pn-prid`` and :func:`device_id`. The hypothesis tests check the one
invariant "a PushInfo, None or a PushParamError with a one-line printable warning, nothing else"
on random X-Push values and ``pn-*`` parameters.
"""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipush.errors import ParseError, PushParamError, SipushError
from sipush.push import (
    X_PUSH_HEADER_NAMES,
    PushInfo,
    device_id,
    is_push_query,
    parse_x_push,
    push_info_from_register,
    without_x_push,
)
from sipush.sip import Request, parse_message

VOIP = "3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"  # 64 hex digits
ALERT = "9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
FCM = (
    "dGVzdC1mY20tdG9rZW4:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338"
    "qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FX_KmhX94k"
)
WEBPUSH = "https://push.example.net/wpush/v2/gAAAAABm3Y8kZ2Q"
APNS_PARAM = "ABCDE12345.com.example.app.voip"
INSTANCE = '+sip.instance="<urn:uuid:0A1B2C3D-4E5F-6789-ABCD-EF0123456789>"'


def register(contact: str, *extra_headers: str) -> Request:
    """A REGISTER with one Contact value and extra header lines, parsed from bytes."""
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:52144;rport;branch=z9hG4bK.8f3Kq2Zp1xYc7Wn0",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.com>;tag=a73kszlfl',
        "To: <sip:alice@example.com>",
        "Call-ID: 7b3f9d2c-51e0-4a8b-9c6d-2f4e8a1b0c3d",
        "CSeq: 20 REGISTER",
        f"Contact: {contact}",
        *extra_headers,
        "Expires: 600",
        "Content-Length: 0",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def contact_text(uri_params: str = "", header_params: str = "") -> str:
    return f"<sip:alice@192.0.2.10:52144;transport=udp{uri_params}>{header_params}"


def read(uri_params: str = "", *extra_headers: str, header_params: str = "") -> PushInfo | None:
    request = register(contact_text(uri_params, header_params), *extra_headers)
    return push_info_from_register(request, request.contacts[0])


def read_error(uri_params: str = "", *extra_headers: str, header_params: str = "") -> str:
    with pytest.raises(PushParamError) as caught:
        read(uri_params, *extra_headers, header_params=header_params)
    warning = caught.value.warning
    assert_one_printable_line(warning)
    for token in (VOIP, ALERT, FCM):
        assert token not in warning, "a warning must never repeat a push token"
    return warning


def assert_one_printable_line(warning: str) -> None:
    assert warning
    assert warning.isascii() and warning.isprintable(), repr(warning)


def rfc(provider: str = "apns", prid: str | None = VOIP, param: str | None = APNS_PARAM) -> str:
    text = f";pn-provider={provider}"
    if prid is not None:
        text += f";pn-prid={prid}"
    if param is not None:
        text += f";pn-param={param}"
    return text


def x_push(value: str, name: str = "X-Push") -> str:
    return f"{name}: {value}"


IOS_X_PUSH = x_push(
    f"device-os=ios;device-uid={VOIP}|{ALERT};allow-call-push=true;allow-message-push=false"
    ";app-id=com.example.app"
)
ANDROID_X_PUSH = x_push(f"device-os=android;device-uid={FCM};app-id=com.example.app")


# -- no push information ---------------------------------------------------------------------------


def test_plain_contact_has_no_push_info() -> None:
    assert read() is None
    assert read(";ob", header_params=f";reg-id=1;{INSTANCE}") is None


def test_pn_type_without_pn_tok_is_not_legacy_push_info() -> None:
    """Flexisip looks for legacy parameters only when pn-tok is present (push-info.cc)."""
    assert read(";pn-type=apple;app-id=org.example.app.prod") is None


# -- RFC 8599 --------------------------------------------------------------------------------------


def test_rfc8599_apns_voip() -> None:
    assert read(rfc()) == PushInfo(
        provider="apns",
        prid=VOIP,
        param=APNS_PARAM,
        app_id="com.example.app",
        platform="ios",
        device_uid=None,
        alert_token=None,
        source="rfc8599",
    )


@pytest.mark.parametrize(
    ("param", "app_id"),
    [
        ("ABCDE12345.com.example.app.voip", "com.example.app"),  # §10: last '.' = service
        ("ABCDE12345.com.example.app.remote", "com.example.app"),
        ("ABCDE12345.com.example.app.VOIP", "com.example.app"),
        ("ABCDE12345.com.example", "com.example"),  # Flexisip: no service means remote
        ("ABCDE12345.app", "app"),
        ("ABCDE12345.my-app_1.voip", "my-app_1"),
    ],
)
def test_rfc8599_apns_param_gives_bundle_id(param: str, app_id: str) -> None:
    info = read(rfc(param=param))
    assert info is not None
    assert (info.app_id, info.param, info.prid) == (app_id, param, VOIP)


def test_rfc8599_provider_is_case_insensitive() -> None:
    info = read(rfc(provider="APNs"))
    assert info is not None and info.provider == "apns"


def test_rfc8599_percent_escaped_prid_is_decoded_once() -> None:
    escaped = "".join(f"%{ord(c):02X}" for c in VOIP[:8]) + VOIP[8:]
    info = read(rfc(prid=escaped))
    assert info is not None and info.prid == VOIP
    # %2533 is "%33" once decoded: not a token (never decoded twice, RFC 4475 §3.1.1.3)
    assert "is not an APNs device token" in read_error(rfc(prid="%2533" + VOIP[2:]))


def test_rfc8599_apns_voip_and_remote_tokens() -> None:
    """Flexisip's multi-service form: pn-param ...voip&remote, pn-prid TOKEN:voip&TOKEN:remote."""
    param = "ABCDE12345.com.example.app.voip&remote"
    for prid in (f"{VOIP}:voip&{ALERT}:remote", f"{ALERT}:remote&{VOIP}:voip"):
        info = read(rfc(prid=prid, param=param))
        assert info is not None
        assert (info.prid, info.alert_token, info.app_id) == (VOIP, ALERT, "com.example.app")
    info = read(rfc(prid=f"{ALERT}:remote", param="ABCDE12345.com.example.app.remote"))
    assert info is not None and (info.prid, info.alert_token) == (ALERT, None)
    info = read(rfc(prid=f"{VOIP}:VoIP"))
    assert info is not None and info.prid == VOIP


def test_rfc8599_fcm() -> None:
    assert read(rfc("fcm", FCM, None)) == PushInfo("fcm", FCM, platform="android")
    info = read(rfc("fcm", FCM, "example.com:my-project-42"))
    assert info is not None and info.param == "example.com:my-project-42" and info.app_id is None


def test_rfc8599_webpush_prid_is_the_escaped_subscription_uri() -> None:
    assert read(rfc("webpush", WEBPUSH, None)) == PushInfo("webpush", WEBPUSH, platform="web")
    uri = "https://push.example.net/sub?id=42&key=a%2Bb"  # escaped once more in pn-prid
    info = read(rfc("webpush", quote(uri, safe=""), None))
    assert info is not None and info.prid == uri
    info = read(rfc("webpush", quote("http://127.0.0.1:8443/push/1", safe=""), None))
    assert info is not None and info.prid == "http://127.0.0.1:8443/push/1"


def test_rfc8599_webpush_uri_of_exactly_the_maximum_length() -> None:
    uri = "https://push.example.net/" + "a" * (4096 - len("https://push.example.net/"))
    info = read(rfc("webpush", uri, None))
    assert info is not None and len(info.prid) == 4096
    assert read_error(rfc("webpush", uri + "a", None)) == (
        "pn-prid is too long: 4097 characters, at most 4096"
    )


@pytest.mark.parametrize(
    ("uri_params", "query"),
    [
        (";pn-provider=apns", True),
        (";pn-provider", True),  # §4.1.5: empty pn-provider asks for every supported PNS
        (";pn-provider=webpush;pn-param=x", True),
        (";pn-provider=frobnitz", True),  # an unsupported PNS is §5.6.1.2's business, not 400
        (rfc(), False),
        ("", False),
        (";pn-tok=" + VOIP, False),
    ],
)
def test_capability_query(uri_params: str, query: bool) -> None:
    request = register(contact_text(uri_params))
    contact = request.contacts[0]
    assert is_push_query(contact) is query
    if query:
        assert push_info_from_register(request, contact) is None


def test_capability_query_with_x_push_gives_the_x_push_info() -> None:
    request = register(contact_text(";pn-provider=apns"), IOS_X_PUSH)
    assert is_push_query(request.contacts[0])
    info = push_info_from_register(request, request.contacts[0])
    assert info is not None and info.source == "x-push" and info.prid == VOIP


RFC8599_ERRORS = [
    (f";pn-prid={VOIP}", "Contact has pn-prid but no pn-provider (RFC 8599 section 4.1.1)"),
    (f";pn-param={APNS_PARAM}", "Contact has pn-param but no pn-provider (RFC 8599 section 4.1.1)"),
    (
        f";pn-provider;pn-prid={VOIP}",
        "pn-provider is empty but pn-prid is given (apns, fcm or webpush)",
    ),
    (rfc("gcm"), 'pn-provider "gcm" is not supported (apns, fcm or webpush)'),
    (rfc("apns.dev"), 'pn-provider "apns.dev" is not supported (apns, fcm or webpush)'),
    (rfc("%01apns"), 'pn-provider "\\x01apns" is not supported (apns, fcm or webpush)'),
    (rfc(prid=None) + ";pn-prid", "pn-prid is empty"),
    (rfc(prid="%00" + VOIP), 'pn-prid contains a control character ("\\x00" at position 1)'),
    (
        rfc(prid=VOIP[:10] + "%7F" + VOIP[11:]),
        'pn-prid contains a control character ("\\x7f" at position 11)',
    ),
    (
        rfc(prid=VOIP[:-1] + "g"),
        'pn-prid token is not an APNs device token: character "g" at position 64 is not allowed',
    ),
    (
        rfc(prid=VOIP[:-1]),
        "pn-prid token is not an APNs device token: 63 hex digits, expected an even number "
        "from 16 to 200",
    ),
    (
        rfc(prid="00fc13adff78512"),  # RFC 8599 section 10's illustration: 15 digits
        "pn-prid token is not an APNs device token: 15 hex digits, expected an even number "
        "from 16 to 200",
    ),
    (
        rfc(prid="ab" * 7),
        "pn-prid token is not an APNs device token: 14 hex digits, expected an even number "
        "from 16 to 200",
    ),
    (
        rfc(prid="ab" * 101),
        "pn-prid token is not an APNs device token: 202 hex digits, expected an even number "
        "from 16 to 200",
    ),
    (rfc(prid="ab" * 257), "pn-prid is too long: 514 characters, at most 512"),
    (
        rfc(param=None),
        "pn-param is required with pn-provider apns (TEAMID.bundle.id.voip, RFC 8599 section 10)",
    ),
    (
        rfc(param="ABCDE12345"),
        'pn-param for apns must be TEAMID.bundle.id.voip (RFC 8599 section 10), got "ABCDE12345"',
    ),
    (
        rfc(param=".com.example.voip"),
        "pn-param for apns must be TEAMID.bundle.id.voip (RFC 8599 section 10), got "
        '".com.example.voip"',
    ),
    (
        rfc(param="ABC-DE.com.example.voip"),
        'pn-param Team ID "ABC-DE" must be letters and digits',
    ),
    (
        rfc(param="ABCDE12345.com..example.voip"),
        'pn-param bundle id "com..example" is not a valid bundle id',
    ),
    (
        rfc(param="ABCDE12345.com.example.voip&voip"),
        'pn-param repeats an APNs service: "voip&voip"',
    ),
    (rfc(param="ABCDE12345." + "a" * 250), "pn-param is too long: 261 characters, at most 255"),
    (
        rfc(param="ABCDE12345.com.example.voip&remote"),
        "pn-param declares 2 APNs service(s) (voip&remote) but pn-prid has 1 token(s)",
    ),
    (
        rfc(prid=f"{VOIP}&{ALERT}", param="ABCDE12345.com.example.voip&remote"),
        "pn-prid with several tokens needs :voip or :remote after each",
    ),
    (
        rfc(prid=f"{VOIP}:alert"),
        'pn-prid token suffix must be :voip or :remote, got ":alert"',
    ),
    (
        rfc(prid=f"{VOIP}:remote"),
        "pn-prid names a remote token but pn-param declares voip",
    ),
    (
        rfc(prid=f"{VOIP}:voip&{ALERT}:voip", param="ABCDE12345.com.example.voip&remote"),
        "pn-prid names two voip tokens",
    ),
    (rfc(prid=":voip"), "pn-prid token is empty"),
    (
        rfc("fcm", FCM[:20] + "." + FCM[21:], None),
        'pn-prid is not an FCM registration token: character "." at position 21 is not allowed',
    ),
    (
        rfc("fcm", FCM[:20] + "%7C" + FCM[21:], None),
        'pn-prid is not an FCM registration token: character "|" at position 21 is not allowed',
    ),
    (
        rfc("fcm", FCM[:20] + "%C3%A9" + FCM[21:], None),
        'pn-prid is not an FCM registration token: character "\\xe9" at position 21 is not allowed',
    ),
    (
        rfc("fcm", FCM[:20] + "%FF" + FCM[21:], None),
        'pn-prid is not an FCM registration token: character "\\udcff" at position 21 is not '
        "allowed",
    ),
    (rfc("fcm", "a" * 513, None), "pn-prid is too long: 513 characters, at most 512"),
    (
        rfc("fcm", FCM, "my/project"),
        'pn-param is not an FCM project id: character "/" at position 3 is not allowed',
    ),
    (rfc("fcm", FCM, "p" * 256), "pn-param is too long: 256 characters, at most 255"),
    (
        rfc("webpush", WEBPUSH, "x"),
        "pn-param must not be used with pn-provider webpush (RFC 8599 section 12)",
    ),
    (
        rfc("webpush", "push.example.net/x", None),
        "pn-prid is not an absolute https: push subscription URI",
    ),
    (
        rfc("webpush", "ftp://push.example.net/x", None),
        "pn-prid is not an absolute https: push subscription URI",
    ),
    (rfc("webpush", "https:///x", None), "pn-prid is not an absolute https: push subscription URI"),
    (
        rfc("webpush", quote("https://[::1/x", safe=""), None),
        "pn-prid is not an absolute https: push subscription URI",
    ),
    (
        rfc("webpush", quote("https://push.example.net/a b", safe=""), None),
        'pn-prid is not a push subscription URI: character " " at position 27 is not allowed',
    ),
    (
        rfc("webpush", "https://push.example.net/%0A", None),
        'pn-prid contains a control character ("\\n" at position 26)',
    ),
]


@pytest.mark.parametrize(("uri_params", "warning"), RFC8599_ERRORS)
def test_rfc8599_errors(uri_params: str, warning: str) -> None:
    assert read_error(uri_params) == warning


# -- X-Push ----------------------------------------------------------------------------------------


def test_x_push_ios_double_token() -> None:
    assert read("", IOS_X_PUSH) == PushInfo(
        provider="apns",
        prid=VOIP,
        param=None,
        app_id="com.example.app",
        platform="ios",
        device_uid=f"{VOIP}|{ALERT}",
        alert_token=ALERT,
        allow_call_push=True,
        allow_message_push=False,
        source="x-push",
    )


def test_x_push_ios_single_token_and_defaults() -> None:
    info = read("", x_push(f"device-os=ios;device-uid={VOIP}"))
    assert info == PushInfo(
        "apns", VOIP, platform="ios", device_uid=VOIP, alert_token=None, source="x-push"
    )
    assert info.allow_call_push and info.allow_message_push


def test_x_push_android() -> None:
    info = read("", ANDROID_X_PUSH)
    assert info == PushInfo(
        "fcm", FCM, app_id="com.example.app", platform="android", device_uid=FCM, source="x-push"
    )


@pytest.mark.parametrize(
    "name", ["X-Push", "x-push", "X-PUSH", "X-P-Push", "x-p-push", "PortSIP-Push", "portsip-push"]
)
def test_x_push_header_spellings(name: str) -> None:
    assert {n.lower() for n in X_PUSH_HEADER_NAMES} == {"x-push", "x-p-push", "portsip-push"}
    info = read("", x_push(f"device-os=android;device-uid={FCM}", name))
    assert info is not None and info.prid == FCM and info.source == "x-push"


def test_x_push_keys_are_case_insensitive_and_spaces_ignored() -> None:
    value = f" Device-OS = iOS ;  DEVICE-UID = {VOIP.upper()} ; Allow-Call-Push = FALSE ;;"
    info = read("", x_push(value))
    assert info is not None
    assert (info.platform, info.prid, info.allow_call_push) == ("ios", VOIP.upper(), False)


def test_x_push_unknown_keys_are_ignored() -> None:
    value = f"push-type=voip;device-os=android;future-key=;x=1=2;device-uid={FCM};badge=%00"
    info = read("", x_push(value))
    assert info is not None and info.prid == FCM


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("NO", False),
        ("0", False),
    ],
)
def test_x_push_booleans(word: str, expected: bool) -> None:
    value = f"device-os=android;device-uid={FCM};allow-call-push={word};allow-message-push={word}"
    info = read("", x_push(value))
    assert info is not None
    assert (info.allow_call_push, info.allow_message_push) == (expected, expected)


def test_parse_x_push_directly() -> None:
    info = parse_x_push(f"device-os=ios;device-uid={VOIP}|{ALERT}")
    assert (info.prid, info.alert_token, info.source) == (VOIP, ALERT, "x-push")


X_PUSH_ERRORS = [
    (
        f"device-os=android;device-uid={FCM};allow-call-push=maybe",
        'X-Push allow-call-push must be true or false, got "maybe"',
    ),
    (
        f"device-os=android;device-uid={FCM};allow-message-push=on",
        'X-Push allow-message-push must be true or false, got "on"',
    ),
    (f"device-os=android;device-uid={FCM};silent", 'X-Push "silent" is not key=value'),
    (f"device-os=android;device-uid={FCM};=x", """X-Push "=x" has no key before '='"""),
    (f"device-os=android;device-uid={FCM};={FCM}", "X-Push item 3 has no key before '='"),
    (f"device-os=ios; ;{VOIP}", "X-Push item 3 is not key=value"),
    ("device-os=ios;device-uid", 'X-Push "device-uid" is not key=value'),
    (f"device-os=android;device-os=ios;device-uid={FCM}", "X-Push repeats device-os"),
    (f"device-os=android;device-uid={FCM};app-id=", "X-Push app-id is empty"),
    (f"device-os=android;device-uid={FCM};app-id= ", "X-Push app-id is empty"),
    ("device-os=android;device-uid=", "X-Push device-uid is empty"),
    ("", "X-Push header is empty"),
    (";;", "X-Push has no device-os (ios or android)"),
    (f"device-uid={FCM}", "X-Push has no device-os (ios or android)"),
    ("device-os=ios", "X-Push has no device-uid (the push token)"),
    (
        f"device-os=windows;device-uid={FCM}",
        'X-Push device-os must be ios or android, got "windows"',
    ),
    (
        f"device-os=ios\x01;device-uid={VOIP}",
        'X-Push device-os must be ios or android, got "ios\\x01"',
    ),
    (
        f"device-os=ios;device-uid={VOIP}|{ALERT}|{VOIP}",
        "X-Push device-uid has 3 tokens, at most 2 (voipToken|apnsToken)",
    ),
    (f"device-os=ios;device-uid={VOIP}|", "X-Push device-uid token is empty"),
    (f"device-os=ios;device-uid=|{ALERT}", "X-Push device-uid token is empty"),
    (
        f"device-os=ios;device-uid={VOIP}|{ALERT[:-1]}",
        "X-Push device-uid token is not an APNs device token: 63 hex digits, expected an even "
        "number from 16 to 200",
    ),
    (
        f"device-os=ios;device-uid={VOIP}:voip",
        'X-Push device-uid token is not an APNs device token: character ":" at position 65 is '
        "not allowed",
    ),
    (
        f"device-os=android;device-uid={FCM}|{FCM}",
        'X-Push device-uid is not an FCM registration token: character "|" at position '
        f"{len(FCM) + 1} is not allowed",
    ),
    (
        f"device-os=android;device-uid={FCM[:5]}\x01{FCM[6:]}",
        'X-Push device-uid contains a control character ("\\x01" at position 6)',
    ),
    (
        "device-os=android;device-uid=" + "a" * 513,
        "X-Push device-uid is too long: 513 characters, at most 512",
    ),
    (
        f"device-os=ios;device-uid={'ab' * 257}|{ALERT}",
        "X-Push device-uid token is too long: 514 characters, at most 512",
    ),
    (
        f"device-os=android;device-uid={FCM};app-id=com example",
        'X-Push app-id "com example" is not a bundle id or package name (a.b.c of A-Z a-z 0-9 _ -)',
    ),
    (
        f"device-os=android;device-uid={FCM};app-id=com.example.",
        'X-Push app-id "com.example." is not a bundle id or package name '
        "(a.b.c of A-Z a-z 0-9 _ -)",
    ),
    (
        f"device-os=android;device-uid={FCM};app-id=" + "a" * 256,
        "X-Push app-id is too long: 256 characters, at most 255",
    ),
    (
        f"device-os=android;device-uid={FCM};app-id=com.\udcffexample",
        'X-Push app-id "com.\\udcffexample" is not a bundle id or package name (a.b.c of A-Z a-z '
        "0-9 _ -)",
    ),
]


@pytest.mark.parametrize(("value", "warning"), X_PUSH_ERRORS)
def test_x_push_errors(value: str, warning: str) -> None:
    assert read_error("", x_push(value)) == warning


@pytest.mark.parametrize(
    "second", ["X-Push", "x-p-push", "PortSIP-Push"], ids=["same", "x-p-push", "portsip-push"]
)
def test_several_x_push_headers_are_an_error(second: str) -> None:
    warning = read_error("", ANDROID_X_PUSH, x_push(f"device-os=android;device-uid={FCM}", second))
    assert warning == "more than one X-Push header (2; spellings X-Push, X-P-Push, PortSIP-Push)"


def test_without_x_push_removes_every_spelling() -> None:
    request = register(
        contact_text(rfc()),
        IOS_X_PUSH,
        x_push("a=b", "x-p-push"),
        x_push("c=d", "PORTSIP-PUSH"),
        "X-Pushy: stays",
    )
    stripped = without_x_push(request)
    assert not any(name in stripped.headers for name in X_PUSH_HEADER_NAMES)
    assert stripped.headers.get("X-Pushy") == "stays"
    assert len(stripped.headers) == len(request.headers) - 3
    again = parse_message(bytes(stripped))
    assert isinstance(again, Request)
    assert push_info_from_register(again, again.contacts[0]) == read(rfc())
    plain = register(contact_text())
    assert without_x_push(plain) == plain


# -- legacy Linphone / Flexisip parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("app_id", "bundle"),
    [
        ("org.linphone.phone.voip.prod", "org.linphone.phone"),
        ("org.linphone.phone.voip.dev", "org.linphone.phone"),
        ("org.linphone.phone.prod", "org.linphone.phone"),
        ("org.linphone.phone", "org.linphone.phone"),
    ],
)
def test_legacy_apple(app_id: str, bundle: str) -> None:
    info = read(f";pn-type=apple;pn-tok={VOIP};app-id={app_id}")
    assert info == PushInfo(
        "apns", VOIP, param=app_id, app_id=bundle, platform="ios", source="legacy"
    )


@pytest.mark.parametrize("pn_type", ["firebase", "google", "android", "fcm", "Firebase"])
def test_legacy_fcm(pn_type: str) -> None:
    info = read(f";pn-type={pn_type};pn-tok={FCM};app-id=929724111839")
    assert info == PushInfo(
        "fcm", FCM, param="929724111839", app_id="929724111839", platform="android", source="legacy"
    )


def test_legacy_apns_spelling() -> None:
    info = read(f";pn-type=apns;pn-tok={VOIP};app-id=com.example.app")
    assert info is not None and info.provider == "apns"


def test_legacy_parameters_as_contact_header_parameters() -> None:
    """``Contact: <sip:u@h>;pn-type=...;pn-tok=...;app-id=...`` (Kazoo pusher's example)."""
    info = read(header_params=f';pn-type=firebase;pn-tok="{FCM}";app-id=org.example.app')
    assert info is not None and (info.prid, info.source) == (FCM, "legacy")  # ':' needs quotes
    info = read(header_params=f";pn-type=apple;pn-tok={VOIP};app-id=org.example.app.voip.prod")
    assert info is not None and (info.prid, info.app_id) == (VOIP, "org.example.app")
    # the URI wins when both carry pn-tok: the header parameters are not read at all
    info = read(f";pn-type=apple;pn-tok={VOIP};app-id=a.b", header_params=";pn-tok=zz")
    assert info is not None and info.prid == VOIP


LEGACY_ERRORS = [
    (";pn-type=apple;pn-tok;app-id=org.example.app", "pn-tok is empty"),
    (
        f";pn-tok={VOIP};app-id=org.example.app",
        "pn-tok needs pn-type (legacy parameters: pn-type, pn-tok, app-id)",
    ),
    (
        f";pn-type;pn-tok={VOIP};app-id=org.example.app",
        "pn-tok needs pn-type (legacy parameters: pn-type, pn-tok, app-id)",
    ),
    (
        f";pn-type=apple;pn-tok={VOIP}",
        "pn-tok needs app-id (legacy parameters: pn-type, pn-tok, app-id)",
    ),
    (
        f";pn-type=wp;pn-tok={VOIP};app-id=org.example.app",
        'pn-type "wp" is not supported (apple, firebase, google, android, fcm)',
    ),
    (
        f";pn-type=apple;pn-tok={VOIP}:voip;app-id=org.example.app",
        'pn-tok is not an APNs device token: character ":" at position 65 is not allowed',
    ),
    (
        f";pn-type=firebase;pn-tok={FCM}%01;app-id=org.example.app",
        f'pn-tok contains a control character ("\\x01" at position {len(FCM) + 1})',
    ),
    (
        f";pn-type=apple;pn-tok={VOIP};app-id=org.example.app/x",
        'app-id "org.example.app/x" is not a bundle id or package name (a.b.c of A-Z a-z 0-9 _ -)',
    ),
]


@pytest.mark.parametrize(("uri_params", "warning"), LEGACY_ERRORS)
def test_legacy_errors(uri_params: str, warning: str) -> None:
    assert read_error(uri_params) == warning


# -- precedence and agreement ----------------------------------------------------------------------


def test_rfc8599_wins_over_x_push_and_takes_its_extra_fields() -> None:
    info = read(rfc(), IOS_X_PUSH)
    assert info == PushInfo(
        provider="apns",
        prid=VOIP,
        param=APNS_PARAM,
        app_id="com.example.app",
        platform="ios",
        device_uid=f"{VOIP}|{ALERT}",
        alert_token=ALERT,
        allow_call_push=True,
        allow_message_push=False,
        source="rfc8599",
    )


def test_x_push_fills_the_app_id_rfc8599_lacks() -> None:
    info = read(rfc("fcm", FCM, "my-project"), ANDROID_X_PUSH)
    assert info is not None
    assert (info.source, info.param, info.app_id) == ("rfc8599", "my-project", "com.example.app")


def test_x_push_wins_over_legacy() -> None:
    legacy = f";pn-type=apple;pn-tok={VOIP};app-id=com.example.app.voip.prod"
    info = read(legacy, IOS_X_PUSH)
    assert info is not None
    assert (info.source, info.param, info.app_id, info.alert_token) == (
        "x-push",
        None,  # param keeps the winner's meaning: the legacy app-id is not copied
        "com.example.app",
        ALERT,
    )


def test_all_three_sources_agreeing() -> None:
    legacy = f";pn-type=apple;pn-tok={VOIP};app-id=com.example.app.voip.prod"
    info = read(rfc() + legacy, IOS_X_PUSH)
    assert info is not None and (info.source, info.prid, info.alert_token) == (
        "rfc8599",
        VOIP,
        ALERT,
    )


def test_apns_tokens_agree_case_insensitively() -> None:
    info = read(rfc(prid=VOIP.upper()), IOS_X_PUSH)
    assert info is not None and info.prid == VOIP.upper()


def test_lower_source_may_name_the_winners_second_token() -> None:
    param = "ABCDE12345.com.example.app.voip&remote"
    legacy = f";pn-type=apple;pn-tok={ALERT};app-id=com.example.app.prod"
    info = read(rfc(prid=f"{VOIP}:voip&{ALERT}:remote", param=param) + legacy)
    assert info is not None and (info.prid, info.alert_token) == (VOIP, ALERT)


PRECEDENCE_ERRORS = [
    (
        rfc(),
        (ANDROID_X_PUSH,),
        "push sources disagree: pn-provider is apns but X-Push device-os is android (fcm)",
    ),
    (
        rfc(prid=ALERT),
        (IOS_X_PUSH,),
        "push sources disagree: pn-prid and X-Push device-uid name different tokens",
    ),
    (
        rfc(prid=f"{VOIP}:voip&{VOIP}:remote", param="ABCDE12345.com.example.app.voip&remote"),
        (IOS_X_PUSH,),
        "push sources disagree: pn-prid and X-Push device-uid name different tokens",
    ),
    (
        rfc(param="ABCDE12345.com.example.other.voip"),
        (IOS_X_PUSH,),
        'push sources disagree about the app: pn-param names "com.example.other" but X-Push '
        'app-id names "com.example.app"',
    ),
    (
        f";pn-type=firebase;pn-tok={FCM}x;app-id=com.example.app",
        (ANDROID_X_PUSH,),
        "push sources disagree: X-Push device-uid and pn-tok name different tokens",
    ),
    (
        rfc() + f";pn-type=firebase;pn-tok={FCM};app-id=com.example.app",
        (),
        "push sources disagree: pn-provider is apns but pn-type means fcm",
    ),
    (
        # a malformed lower source is an error even when the winner is fine
        rfc(),
        (x_push(f"device-os=ios;device-uid={VOIP};allow-call-push=maybe"),),
        'X-Push allow-call-push must be true or false, got "maybe"',
    ),
    (
        rfc() + ";pn-type=apple;pn-tok=zz;app-id=com.example.app",
        (),
        'pn-tok is not an APNs device token: character "z" at position 1 is not allowed',
    ),
]


@pytest.mark.parametrize(("uri_params", "headers", "warning"), PRECEDENCE_ERRORS)
def test_disagreeing_or_malformed_sources(
    uri_params: str, headers: tuple[str, ...], warning: str
) -> None:
    assert read_error(uri_params, *headers) == warning


# -- device identity -------------------------------------------------------------------------------


def device_of(uri_params: str, *headers: str, header_params: str = "") -> str | None:
    request = register(contact_text(uri_params, header_params), *headers)
    contact = request.contacts[0]
    return device_id(contact, push_info_from_register(request, contact))


def test_device_id_is_the_lower_cased_instance_first() -> None:
    expected = "urn:uuid:0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert device_of(rfc(), IOS_X_PUSH, header_params=f";{INSTANCE}") == expected
    assert device_of("", header_params=f";{INSTANCE};reg-id=1") == expected


def test_device_id_falls_back_to_x_push_device_uid_first_token() -> None:
    assert device_of("", IOS_X_PUSH) == VOIP
    assert device_of(rfc(), IOS_X_PUSH) == VOIP
    assert device_of("", IOS_X_PUSH, header_params=';+sip.instance=""') == VOIP


def test_device_id_falls_back_to_the_push_token() -> None:
    assert device_of(rfc()) == VOIP
    assert device_of(rfc("fcm", FCM, None)) == FCM
    assert device_of(f";pn-type=firebase;pn-tok={FCM};app-id=org.example.app") == FCM


def test_device_id_without_anything_is_none() -> None:
    assert device_of("") is None
    assert device_of(";pn-provider=apns") is None  # a query stores nothing


def test_device_id_with_a_hand_built_push_info() -> None:
    contact = register(contact_text()).contacts[0]
    assert device_id(contact, PushInfo("fcm", FCM, device_uid=f" {FCM} ")) == FCM
    assert device_id(contact, PushInfo("apns", VOIP, device_uid="|")) == VOIP


# -- PushInfo itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "warning"),
    [
        ({"provider": "gcm", "prid": "x"}, 'push provider must be apns, fcm or webpush, got "gcm"'),
        ({"provider": "fcm", "prid": ""}, "push token is empty"),
        (
            {"provider": "fcm", "prid": "x", "platform": "windows"},
            'push platform must be ios, android or web, got "windows"',
        ),
        (
            {"provider": "fcm", "prid": "x", "source": "sdp"},
            'push source must be rfc8599, x-push or legacy, got "sdp"',
        ),
    ],
)
def test_push_info_checks_its_enumerations(kwargs: dict[str, str], warning: str) -> None:
    with pytest.raises(PushParamError) as caught:
        PushInfo(**kwargs)  # type: ignore[arg-type]
    assert caught.value.warning == warning


def test_push_param_error_is_a_sipush_error() -> None:
    err = PushParamError("X-Push header is empty")
    assert isinstance(err, SipushError)
    assert str(err) == err.warning == "X-Push header is empty"
    assert repr(err) == "PushParamError('X-Push header is empty')"


# -- properties ------------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "device-os",
        "device-uid",
        "allow-call-push",
        "allow-message-push",
        "app-id",
        "DEVICE-OS",
        "push-type",
        "",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "ios",
            "android",
            "IOS",
            "true",
            "false",
            "maybe",
            "",
            " ",
            VOIP,
            f"{VOIP}|{ALERT}",
            f"{VOIP}|",
            FCM,
            "com.example.app",
            "com..x",
            "a=b",
        ]
    ),
    st.text(max_size=30).filter(lambda s: "\r" not in s and "\n" not in s and ";" not in s),
    st.text(alphabet=string.hexdigits + "|:", min_size=0, max_size=220),
)
_PAIRS = st.lists(
    st.tuples(_KEYS, st.sampled_from(["=", "", " = "]), _VALUES), min_size=0, max_size=7
).map(lambda pairs: ";".join(f"{k}{eq}{v}" for k, eq, v in pairs))
_RAW = st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b)


def _outcome(request: Request) -> PushInfo | None:
    try:
        return push_info_from_register(request, request.contacts[0])
    except PushParamError as err:
        assert_one_printable_line(err.warning)
        assert VOIP not in err.warning and ALERT not in err.warning and FCM not in err.warning
        return None


def _request_or_none(data: bytes) -> Request | None:
    try:
        message = parse_message(data)
    except ParseError:
        return None
    assert isinstance(message, Request)
    return message


_HEAD = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:52144;branch=z9hG4bK.fz\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n"
    b"Call-ID: fuzz\r\nCSeq: 1 REGISTER\r\n"
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(_PAIRS.map(str.encode), _RAW),
    name=st.sampled_from(["X-Push", "x-p-push", "PortSIP-Push"]),
    contact_params=st.sampled_from(["", rfc(), rfc("fcm", FCM, None), ";pn-provider=apns"]),
)
def test_random_x_push_gives_push_info_none_or_push_param_error(
    value: bytes, name: str, contact_params: str
) -> None:
    data = (
        _HEAD
        + f"Contact: {contact_text(contact_params)}\r\n".encode()
        + name.encode()
        + b": "
        + value
        + b"\r\nContent-Length: 0\r\n\r\n"
    )
    request = _request_or_none(data)
    if request is None:
        return
    result = _outcome(request)
    assert result is None or isinstance(result, PushInfo)
    if result is not None:
        assert result.prid and result.provider in ("apns", "fcm")


def _param(name: str, value: str) -> str:
    """``;name=value`` %-escaped, or the flag ``;name`` for an empty value."""
    return f";{name}={quote(value, safe='')}" if value else f";{name}"


@settings(max_examples=400, deadline=None)
@given(
    provider=st.one_of(
        st.sampled_from(["apns", "fcm", "webpush", "APNS", "apns.dev", ""]), st.text(max_size=8)
    ),
    prid=st.one_of(
        st.none(),
        st.sampled_from([VOIP, FCM, WEBPUSH, f"{VOIP}:voip&{ALERT}:remote", f"{VOIP}:voip"]),
        st.text(max_size=60),
    ),
    param=st.one_of(
        st.none(),
        st.sampled_from([APNS_PARAM, "ABCDE12345.com.example.app.voip&remote", "my-project"]),
        st.text(max_size=40),
    ),
    legacy=st.booleans(),
)
def test_random_pn_params_give_push_info_none_or_push_param_error(
    provider: str, prid: str | None, param: str | None, legacy: bool
) -> None:
    uri_params = _param("pn-provider", provider)
    if prid is not None:
        uri_params += _param("pn-prid", prid)
    if param is not None:
        uri_params += _param("pn-param", param)
    if legacy:
        uri_params += _param("pn-type", provider) + f";pn-tok={VOIP};app-id=com.example.app"
    request = _request_or_none(
        _HEAD + f"Contact: {contact_text(uri_params)}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert request is not None, "escaped parameters always parse"
    result = _outcome(request)
    if result is not None:
        assert result.prid
    if prid is None and not legacy:
        assert is_push_query(request.contacts[0])
        assert result is None


@settings(max_examples=200, deadline=None)
@given(
    device_os=st.sampled_from(["ios", "android", "iOS", "ANDROID"]),
    tokens=st.lists(
        st.text(alphabet="0123456789abcdefABCDEF", min_size=8, max_size=100).map(lambda s: s * 2),
        min_size=1,
        max_size=2,
    ),
    fcm_token=st.text(alphabet=string.ascii_letters + string.digits + "_:-", min_size=1),
    call=st.booleans(),
    message=st.booleans(),
    app_id=st.none()
    | st.from_regex(r"[A-Za-z0-9_-]{1,10}(\.[A-Za-z0-9_-]{1,10}){0,3}", fullmatch=True),
)
def test_valid_x_push_round_trips(
    device_os: str,
    tokens: list[str],
    fcm_token: str,
    call: bool,
    message: bool,
    app_id: str | None,
) -> None:
    ios = device_os.lower() == "ios"
    uid = "|".join(tokens) if ios else fcm_token[:512]
    value = f"device-os={device_os};device-uid={uid};allow-call-push={str(call).lower()}"
    value += f";allow-message-push={int(message)}"
    if app_id is not None:
        value += f";app-id={app_id}"
    info = parse_x_push(value)
    assert info.provider == ("apns" if ios else "fcm")
    assert info.prid == (tokens[0] if ios else uid)
    assert info.alert_token == (tokens[1] if ios and len(tokens) == 2 else None)
    assert (info.allow_call_push, info.allow_message_push) == (call, message)
    assert (info.app_id, info.device_uid, info.source) == (app_id, uid, "x-push")
