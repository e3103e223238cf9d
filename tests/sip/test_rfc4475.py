"""The 50 RFC 4475 torture messages through the parser: valid ones parse and round-trip, invalid
ones raise sipush's ParseError with the status the RFC asks for."""

from __future__ import annotations

import hashlib

import pytest

from sipush.errors import ParseError
from sipush.sip import Request, Response, parse_message, response_for_malformed
from tests.rfc4475_cases import CASES, DATA, load


def test_corpus_is_complete_and_intact() -> None:
    files = sorted(p.stem for p in DATA.glob("*.dat"))
    assert files == sorted(CASES), "every torture message has an expectation"
    assert len(files) == 50
    sums = dict(line.split()[::-1] for line in (DATA / "SHA256SUMS").read_text().splitlines())
    for name in files:
        assert hashlib.sha256(load(name)).hexdigest() == sums[f"{name}.dat"], name


def _semantic(message: Request | Response) -> tuple[object, ...]:
    start = (
        (message.method, str(message.uri))
        if isinstance(message, Request)
        else (message.status, message.reason)
    )
    headers = tuple((n, v) for n, v in message.headers if n.lower() not in ("content-length", "l"))
    return (*start, headers, message.body)


@pytest.mark.parametrize(
    "name", sorted(n for n, (verdict, _, _) in CASES.items() if verdict is None)
)
def test_valid_message_parses_and_round_trips(name: str) -> None:
    message = parse_message(load(name))
    wire = bytes(message)
    again = parse_message(wire, datagram=False)  # serialised form always carries Content-Length
    assert _semantic(again) == _semantic(message)
    assert bytes(again) == wire  # serialising is stable
    # the typed views a proxy uses are all readable
    assert message.vias and message.call_id and message.cseq.number >= 0
    assert message.from_.uri is not None and message.to.uri is not None


@pytest.mark.parametrize(
    "name", sorted(n for n, (verdict, _, _) in CASES.items() if verdict is not None)
)
def test_invalid_message_raises_parse_error_with_status(name: str) -> None:
    verdict, wire_answer, why = CASES[name]
    with pytest.raises(ParseError) as info:
        parse_message(load(name))
    assert info.value.status == verdict, why
    response = response_for_malformed(info.value)
    if wire_answer is None:
        assert response is None, "responses and Via-less requests are never answered"
    else:
        assert response is not None and response.status == wire_answer
        assert (
            response.headers.get(
                "Warning",
            )
            is not None
        )


def test_specific_rfc4475_semantics() -> None:
    wsinv = parse_message(load("wsinv"))
    assert isinstance(wsinv, Request)
    assert wsinv.max_forwards == 68 and wsinv.cseq.number == 9 and wsinv.cseq.method == "INVITE"
    assert [v.branch for v in wsinv.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert wsinv.to.tag == "1918181833n" and wsinv.from_.tag == "98asjd8"
    assert wsinv.from_.display_name == 'J Rosenberg \\"'
    assert wsinv.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert wsinv.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert wsinv.contacts[0].param("q") == "0.33" and len(wsinv.body) == 150

    esc01 = parse_message(load("esc01"))
    assert isinstance(esc01, Request) and esc01.uri.user_text == "sips:user@example.com"  # type: ignore[union-attr]
    assert esc01.to.uri.user_text == "user"  # type: ignore[union-attr]
    contact_uri = esc01.contacts[0].uri
    assert contact_uri.param("lr") == "" and contact_uri.param("name") == "value%41"  # type: ignore[union-attr]

    escnull = parse_message(load("escnull"))
    users = [c.uri.user_text for c in escnull.contacts]  # type: ignore[union-attr]
    assert users == ["\x00", "\x00\x00"]  # two distinct contacts, nothing truncated at NUL

    esc02 = parse_message(load("esc02"))
    assert isinstance(esc02, Request) and esc02.method == "RE%47IST%45R"
    assert len(esc02.contacts) == 2 and esc02.headers.get("C%6Fntact") is not None
    assert esc02.to.display_name == "%Z%45"

    semiuri = parse_message(load("semiuri"))
    assert semiuri.uri.user_text == "user;par=u@example.net"  # type: ignore[union-attr]

    dblreq = parse_message(load("dblreq"))
    assert dblreq.body == b"" and b"INVITE" not in bytes(dblreq)

    inv2543 = parse_message(load("inv2543"))
    assert (
        isinstance(inv2543, Request)
        and inv2543.body.startswith(b"v=0")
        and inv2543.max_forwards is None
    )
    assert not inv2543.top_via.has_rfc3261_branch
    forwarded = inv2543.with_max_forwards_decremented()
    assert forwarded.max_forwards == 70 and inv2543.max_forwards is None  # a copy, not a mutation

    badbranch = parse_message(load("badbranch"))
    assert badbranch.top_via.branch == "z9hG4bK" and not badbranch.top_via.has_rfc3261_branch

    mpart = parse_message(load("mpart01"))
    assert b"\x00" in mpart.body and len(mpart.body) == mpart.content_length

    cparam01 = parse_message(load("cparam01"))
    assert cparam01.contacts[0].param("unknownparam") == "" and not cparam01.contacts[0].uri.params  # type: ignore[union-attr]
    cparam02 = parse_message(load("cparam02"))
    assert cparam02.contacts[0].uri.param("unknownparam") == "" and not cparam02.contacts[0].params  # type: ignore[union-attr]
    regescrt = parse_message(load("regescrt"))
    assert regescrt.contacts[0].uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)  # type: ignore[union-attr]
    assert "?Route=%3Csip:sip.example.com%3E" in str(regescrt.contacts[0])

    bext01 = parse_message(load("bext01"))
    assert bext01.proxy_require == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")

    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, Response) and unreason.status == 200 and unreason.reason != "OK"
    noreason = parse_message(load("noreason"))
    assert isinstance(noreason, Response) and noreason.status == 100 and noreason.reason == ""


def test_baddn_with_its_missing_empty_line_restored_is_still_rejected() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("baddn") + b"\r\n")
    assert info.value.status == 400 and "display name" in info.value.detail


def test_clerr_over_a_stream_is_a_framing_problem_not_a_body() -> None:
    # Over a stream the framer waits for the missing octets; a frame handed over whole must match.
    with pytest.raises(ParseError):
        parse_message(load("clerr"), datagram=False)
