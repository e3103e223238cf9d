"""Typed views carried over to derived messages, and the header index carried over to derived
``Headers``: a message a proxy derives (``with_via_prepended``, ``with_max_forwards_decremented``,
...) keeps the views of the headers it did not change. Whatever it carries must equal what a
fresh parse of the derived message's bytes reads, or a proxy would route on stale values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipush.errors import ParseError
from sipush.sip import (
    Headers,
    Request,
    Response,
    parse_message,
    parse_uri,
    parse_via,
    stamp_received,
)
from sipush.sip.grammar import cached_view
from sipush.sip.message import VIEW_HEADERS
from tests.sip.test_parser_fuzz import (
    INVITE,
    MESSAGE_VIEWS,
    OK_200,
    REGISTER,
    generated_requests,
    sip_uris,
    tokens,
    vias,
)

Message = Request | Response


def cached_views(cls: type) -> set[str]:
    """Every ``cached_view`` a message class has, found by walking the class, not from a list."""
    return {
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, cached_view)
    }


# -- (a) every view is declared --------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Request, Response])
def test_every_cached_view_says_which_header_it_reads(cls: type) -> None:
    """A view missing from VIEW_HEADERS is never carried over (slow, not wrong); a view listed
    under the wrong header would be carried over stale. The property test below checks the
    header of each; this checks that none is forgotten."""
    assert cached_views(cls) <= set(VIEW_HEADERS)
    assert set(VIEW_HEADERS) <= cached_views(cls)  # nothing stale listed either
    assert set(MESSAGE_VIEWS) == cached_views(cls)  # the fuzz test reads them all too


# -- (b) derived messages read like fresh parses --------------------------------------------------


def views(message: Message) -> dict[str, object]:
    """Every view's value, or the error it raises (a view that failed must fail the same)."""
    seen: dict[str, object] = {}
    for name in sorted(VIEW_HEADERS):
        try:
            seen[name] = getattr(message, name)
        except ParseError as err:
            seen[name] = ("ParseError", str(err))
    return seen


def cold(message: Message) -> Message:
    """The same message with no view and no index built (each view read on its own)."""
    return replace(message, headers=Headers(message.headers.items))


def assert_reads_like_a_fresh_parse(derived: Message) -> None:
    fresh = parse_message(bytes(derived))
    carried = views(derived)
    assert carried == views(fresh)
    for name in VIEW_HEADERS:  # read alone, in any order (top_via without vias first, ...)
        assert views_of_one(cold(derived), name) == carried[name], name
    assert_index_is_fresh(derived.headers)


def views_of_one(message: Message, name: str) -> object:
    try:
        return getattr(message, name)
    except ParseError as err:
        return ("ParseError", str(err))


def assert_index_is_fresh(headers: Headers) -> None:
    rebuilt = Headers(headers.items)
    keys = set(headers.keys) | set(VIEW_HEADERS.values()) | {"x-absent"}
    for key in keys:
        assert headers.by_key(key) == rebuilt.by_key(key), key
    assert set(headers.present_keys()) == set(rebuilt.present_keys())


OWN_VIA = parse_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sipush-1;rport")
ROUTE = "<sip:proxy.example.com;lr>"

RequestStep = Callable[[Request], Request]
Draw = Callable[[st.SearchStrategy[Any]], Any]  # hypothesis' data.draw


def popped(request: Request) -> Request:
    return request.with_top_route_popped()[1]


REQUEST_STEPS: dict[str, Callable[[Draw], RequestStep]] = {
    "via prepended (Via)": lambda draw: (
        lambda r: r.with_via_prepended(parse_via(draw(vias()).text))
    ),
    "via prepended (text)": lambda draw: lambda r: r.with_via_prepended(draw(vias()).text),
    "top via replaced": lambda draw: (
        lambda r: r.with_top_via_replaced(
            stamp_received(r.top_via, "192.0.2.99", draw(st.integers(1, 65535)))
        )
    ),
    "max-forwards decremented": lambda draw: lambda r: r.with_max_forwards_decremented(),
    "top route popped": lambda draw: popped,
    "uri": lambda draw: lambda r: r.with_uri(parse_uri(draw(sip_uris).text)),
    "route prepended": lambda draw: lambda r: r.with_header_prepended("Route", ROUTE),
    "record-route prepended": lambda draw: lambda r: r.with_header_prepended("Record-Route", ROUTE),
    "path prepended": lambda draw: lambda r: r.with_header_prepended("Path", ROUTE),
    "supported appended": lambda draw: lambda r: r.with_header_appended("Supported", draw(tokens)),
    "expires replaced": lambda draw: (
        lambda r: r.with_header_replaced("Expires", str(draw(st.integers(0, 7200))))
    ),
    "max-forwards replaced": lambda draw: (
        lambda r: r.with_header_replaced("Max-Forwards", str(draw(st.integers(0, 255))))
    ),
    "call-id replaced": lambda draw: lambda r: r.with_header_replaced("i", draw(tokens)),
    "require removed": lambda draw: lambda r: r.with_header_removed("Require"),
    "contact removed": lambda draw: lambda r: r.with_header_removed("Contact"),
    "x-push removed": lambda draw: lambda r: r.with_header_removed("X-Push"),
    "extension appended": lambda draw: lambda r: r.with_header_appended("X-Note", draw(tokens)),
}


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """A generated request (tests/sip/test_parser_fuzz.py), maybe with Route, Record-Route,
    Path, Supported and Expires lines added, or one of the fixed realistic requests."""
    if draw(st.integers(0, 4)) == 0:
        message = parse_message(draw(st.sampled_from([REGISTER, INVITE])))
        assert isinstance(message, Request)
        return message
    wire = draw(generated_requests()).wire
    start, rest = wire.split(b"\r\n", 1)
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
                    b"Route: <sip:p3.example.com;lr>",
                    b"Record-Route: <sip:rr.example.com;lr>",
                    b"Path: <sip:edge.example.com;lr;ob>",
                    b"Supported: path, outbound",
                    b"Expires: 600",
                    b"X-Push: device-uid=abc",
                ]
            ),
            max_size=4,
        )
    )
    message = parse_message(b"\r\n".join([start, *extra, rest]))
    assert isinstance(message, Request)
    return message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_derived_requests_read_like_fresh_parses(data: st.DataObject) -> None:
    request = data.draw(requests())
    names = data.draw(st.lists(st.sampled_from(sorted(REQUEST_STEPS)), min_size=1, max_size=4))
    for name in names:
        step = REQUEST_STEPS[name](data.draw)
        views(request)  # every view and the index built first: they are what gets carried
        request = step(request)
        note = f"after {name!r}:\n{bytes(request).decode(errors='replace')}"
        try:
            assert_reads_like_a_fresh_parse(request)
        except AssertionError as err:
            raise AssertionError(f"{note}\n{err}") from None


@st.composite
def responses(draw: st.DrawFn) -> Response:
    """A 200 OK answering a generated request (its headers as they are, two Vias at least), or
    the fixed realistic 200."""
    if draw(st.booleans()):
        message = parse_message(OK_200)
    else:
        request = draw(requests())
        if len(request.vias) < 2:
            request = request.with_via_prepended(draw(vias()).text)
        wire = bytes(request)
        message = parse_message(b"SIP/2.0 200 OK\r\n" + wire.split(b"\r\n", 1)[1])
    assert isinstance(message, Response)
    return message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses(), st.sampled_from(["views first", "no views"]))
def test_responses_with_top_via_removed_read_like_fresh_parses(
    response: Response, order: str
) -> None:
    if order == "views first":
        views(response)
    derived = response.with_top_via_removed()
    assert derived.vias == response.vias[1:]
    assert_reads_like_a_fresh_parse(derived)


def test_a_prepended_via_object_is_the_new_top_via() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    views(request)
    derived = request.with_via_prepended(OWN_VIA)
    assert derived.top_via == OWN_VIA
    assert derived.vias == (OWN_VIA, *request.vias)
    assert derived.routes == request.routes  # carried, still right
    assert_reads_like_a_fresh_parse(derived)


def test_max_forwards_is_added_when_absent() -> None:
    request = parse_message(REGISTER.replace(b"Max-Forwards: 70\r\n", b""))
    assert isinstance(request, Request)
    assert request.max_forwards is None
    derived = request.with_max_forwards_decremented()
    assert derived.max_forwards == 70
    assert_reads_like_a_fresh_parse(derived)
    assert derived.with_max_forwards_decremented().max_forwards == 69


def test_removing_an_absent_header_returns_the_same_message() -> None:
    request = parse_message(REGISTER)
    assert request.with_header_removed("Route") is request


# -- (c) shed views are rebuilt equal --------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(requests(), responses()))
def test_shed_views_then_read_again_gives_equal_values(message: Message) -> None:
    before = views(message)
    index = {key: message.headers.by_key(key) for key in message.headers.keys}
    message.shed_views()
    assert not set(VIEW_HEADERS) & set(vars(message))  # really forgotten
    assert views(message) == before
    assert {key: message.headers.by_key(key) for key in message.headers.keys} == index
    assert_index_is_fresh(message.headers)


# -- Headers: the index carried over by each change -----------------------------------------------

HEADER_NAMES = st.sampled_from(["Via", "v", "Route", "Contact", "m", "X-A", "x-a", "Supported"])
ITEMS = st.lists(st.tuples(HEADER_NAMES, st.sampled_from(["a", "b, c", "d", ""])), max_size=8)


@given(ITEMS, HEADER_NAMES, st.sampled_from(["e", "f, g"]), st.integers(0, 8), st.booleans())
def test_every_headers_change_carries_a_correct_index(
    items: list[tuple[str, str]], name: str, value: str, pos: int, indexed: bool
) -> None:
    headers = Headers(items)
    if indexed:
        headers.present_keys()  # build the index the changes will reuse
    changed = [
        headers.prepend(name, value),
        headers.append(name, value),
        headers.insert(min(pos, len(items)), name, value),
        headers.remove(name),
        headers.replace(name, value),
        headers.pop_first_value(name)[1],
    ]
    for derived in changed:
        assert_index_is_fresh(derived)
    assert_index_is_fresh(headers)  # the original's index is not disturbed
