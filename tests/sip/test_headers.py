"""The Headers container: ordered, immutable, case-insensitive names, compact forms (RFC 3261 §7.3).

Every changing operation returns a new object and leaves the original as it was; lookups treat
``v`` and ``VIA`` as ``Via`` (§7.3.3); list headers are split at commas outside quotes and angle
brackets (§7.3.1), other headers are returned one value per line.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipush.sip import Headers, header_key

HEADERS = Headers(
    [
        (
            "Via",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        ),
        ("Max-Forwards", "70"),
        ("v", "SIP/2.0/TCP c.example.com;branch=z9hG4bK3"),
        ("Contact", '"Doe, John" <sip:a,b@example.com>;x="1,2", <sip:c@example.com>'),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ("X-Custom", "one, two"),
        ("x-custom", "three"),
    ]
)


def snapshot(headers: Headers) -> tuple[tuple[str, str], ...]:
    return tuple(headers)


# -- reading ------------------------------------------------------------------------------------


def test_get_returns_the_first_line_or_none() -> None:
    assert (
        HEADERS.get("via")
        == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2"
    )
    assert HEADERS.get("X-CUSTOM") == "one, two"
    assert HEADERS.get("Route") is None
    assert Headers().get("Via") is None


@pytest.mark.parametrize("name", ["Via", "via", "VIA", "vIa", "v", "V"])
def test_names_are_case_insensitive_and_compact_forms_expand(name: str) -> None:
    assert HEADERS.count(name) == 2
    assert name in HEADERS
    assert HEADERS.lines(name) == (
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        "SIP/2.0/TCP c.example.com;branch=z9hG4bK3",
    )


def test_lines_are_unsplit_values_per_line() -> None:
    assert HEADERS.lines("x-custom") == ("one, two", "three")
    assert HEADERS.lines("Route") == ()


def test_get_all_splits_list_headers_across_lines() -> None:
    assert HEADERS.get_all("Via") == (
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        "SIP/2.0/TCP c.example.com;branch=z9hG4bK3",
    )


def test_get_all_respects_quotes_and_angle_brackets() -> None:
    assert HEADERS.get_all("m") == (
        '"Doe, John" <sip:a,b@example.com>;x="1,2"',
        "<sip:c@example.com>",
    )


def test_get_all_keeps_empty_elements_for_callers_to_reject() -> None:
    headers = Headers([("Route", "<sip:a>,,<sip:b>, ")])
    assert headers.get_all("Route") == ("<sip:a>", "", "<sip:b>", "")


def test_get_all_of_headers_that_are_not_lists_is_one_value_per_line() -> None:
    assert HEADERS.get_all("Date") == ("Sat, 13 Nov 2010 23:29:00 GMT",)
    assert HEADERS.get_all("X-Custom") == ("one, two", "three")
    assert HEADERS.get_all("Route") == ()


@pytest.mark.parametrize(
    "name",
    ["Allow", "Supported", "Require", "Proxy-Require", "Route", "Record-Route", "Path", "Accept"],
)
def test_known_list_headers_are_split(name: str) -> None:
    assert Headers([(name, "a, b"), (name.upper(), "c")]).get_all(name) == ("a", "b", "c")


def test_count_len_iter_and_contains() -> None:
    assert HEADERS.count("Max-Forwards") == 1 and HEADERS.count("Route") == 0
    assert len(HEADERS) == 7 and [name for name, _ in HEADERS][:3] == ["Via", "Max-Forwards", "v"]
    assert "x-custom" in HEADERS and "Route" not in HEADERS
    assert 42 not in HEADERS and None not in HEADERS


def test_items_keep_names_as_written_and_order() -> None:
    assert HEADERS.items[2] == ("v", "SIP/2.0/TCP c.example.com;branch=z9hG4bK3")
    assert isinstance(HEADERS.items, tuple)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Via", "via"),
        ("v", "via"),
        ("V", "via"),
        ("i", "call-id"),
        ("Call-ID", "call-id"),
        ("m", "contact"),
        ("f", "from"),
        ("t", "to"),
        ("l", "content-length"),
        ("c", "content-type"),
        ("k", "supported"),
        ("s", "subject"),
        ("e", "content-encoding"),
        ("o", "event"),
        ("r", "refer-to"),
        ("u", "allow-events"),
        ("b", "referred-by"),
        ("x", "session-expires"),
        ("X-Custom", "x-custom"),
    ],
)
def test_header_key(name: str, key: str) -> None:
    assert header_key(name) == key


# -- changing returns new objects ---------------------------------------------------------------


def test_prepend_goes_before_the_first_line_of_the_same_name() -> None:
    before = snapshot(HEADERS)
    changed = HEADERS.prepend("VIA", "SIP/2.0/UDP p.example.com;branch=z9hG4bKp")
    assert changed.items[0] == ("VIA", "SIP/2.0/UDP p.example.com;branch=z9hG4bKp")
    assert changed.get_all("v")[0] == "SIP/2.0/UDP p.example.com;branch=z9hG4bKp"
    assert changed.count("Via") == 3 and snapshot(HEADERS) == before
    contact = HEADERS.prepend("Contact", "<sip:z@example.com>")
    assert contact.items[3] == ("Contact", "<sip:z@example.com>")


def test_prepend_of_an_absent_header_goes_to_the_top() -> None:
    changed = HEADERS.prepend("Route", "<sip:p1;lr>")
    assert changed.items[0] == ("Route", "<sip:p1;lr>") and "Route" not in HEADERS


def test_append_goes_to_the_end() -> None:
    changed = HEADERS.append("Via", "SIP/2.0/UDP z;branch=z9hG4bKz")
    assert changed.items[-1] == ("Via", "SIP/2.0/UDP z;branch=z9hG4bKz")
    assert changed.get_all("Via")[-1] == "SIP/2.0/UDP z;branch=z9hG4bKz"
    assert len(changed) == len(HEADERS) + 1 and HEADERS.count("Via") == 2


def test_insert_at_a_position() -> None:
    changed = HEADERS.insert(1, "Route", "<sip:p;lr>")
    assert changed.items[1] == ("Route", "<sip:p;lr>") and changed.get("route") == "<sip:p;lr>"


def test_remove_drops_every_line_of_that_name_in_every_spelling() -> None:
    before = snapshot(HEADERS)
    changed = HEADERS.remove("v")
    assert "Via" not in changed and changed.count("VIA") == 0 and len(changed) == 5
    assert HEADERS.remove("Route") == HEADERS and snapshot(HEADERS) == before


def test_replace_sets_the_first_line_and_drops_the_others() -> None:
    changed = HEADERS.replace("x-CUSTOM", "new")
    assert changed.lines("X-Custom") == ("new",)
    assert ("X-Custom", "new") in changed.items  # the first line keeps its spelling and place
    assert [n for n, _ in changed][:5] == [n for n, _ in HEADERS][:5]
    added = HEADERS.replace("Route", "<sip:p;lr>")
    assert added.items[-1] == ("Route", "<sip:p;lr>") and HEADERS.lines("X-Custom") == (
        "one, two",
        "three",
    )


def test_pop_first_value_from_a_line_holding_two() -> None:
    first, rest = HEADERS.pop_first_value("v")
    assert first == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"
    assert rest.get_all("Via") == (
        "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        "SIP/2.0/TCP c.example.com;branch=z9hG4bK3",
    )
    assert len(rest) == len(HEADERS) and HEADERS.count("Via") == 2


def test_pop_first_value_removes_a_line_that_becomes_empty() -> None:
    headers = Headers([("Route", "<sip:p1;lr>"), ("Route", "<sip:p2;lr>, <sip:p3;lr>")])
    first, rest = headers.pop_first_value("route")
    assert first == "<sip:p1;lr>" and rest.items == (("Route", "<sip:p2;lr>, <sip:p3;lr>"),)


def test_pop_first_value_respects_quotes() -> None:
    first, rest = HEADERS.pop_first_value("Contact")
    assert first == '"Doe, John" <sip:a,b@example.com>;x="1,2"'
    assert rest.get_all("Contact") == ("<sip:c@example.com>",)


def test_pop_first_value_of_an_absent_header() -> None:
    value, same = HEADERS.pop_first_value("Route")
    assert value is None and same == HEADERS


# -- immutability and equality ------------------------------------------------------------------


def test_headers_cannot_be_changed_in_place() -> None:
    with pytest.raises((AttributeError, TypeError)):
        HEADERS.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        HEADERS.items[0] = ("Via", "x")  # type: ignore[index]


def test_equality_and_hash() -> None:
    same = Headers(list(HEADERS))
    assert same == HEADERS and hash(same) == hash(HEADERS)
    assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])  # order matters
    assert Headers([("A", "1")]) != Headers([("A", "2")])
    assert list(HEADERS) != HEADERS and tuple(HEADERS) != HEADERS  # not equal to plain pairs
    assert Headers() == Headers([])


def test_a_lookup_before_a_change_does_not_leak_into_the_copy() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")])
    assert headers.get("Via") is not None  # builds the lookup index
    changed = headers.remove("Via").append("Via", "SIP/2.0/UDP b;branch=z9hG4bK2")
    assert changed.get_all("Via") == ("SIP/2.0/UDP b;branch=z9hG4bK2",)
    assert headers.get_all("Via") == ("SIP/2.0/UDP a;branch=z9hG4bK1",)


# -- property: the container agrees with a list of pairs ------------------------------------------

_names = st.sampled_from(["Via", "v", "VIA", "Route", "route", "Subject", "s", "X-A", "x-a"])
_values = st.text('abc, <>";', max_size=8)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(_names, _values), max_size=8), name=_names, value=_values)
def test_operations_agree_with_a_plain_list(
    items: list[tuple[str, str]], name: str, value: str
) -> None:
    headers = Headers(items)
    key = header_key(name)
    matching = [v for n, v in items if header_key(n) == key]
    assert headers.lines(name) == tuple(matching)
    assert headers.get(name) == (matching[0] if matching else None)
    assert headers.count(name) == len(matching) and (name in headers) == bool(matching)
    assert tuple(headers.append(name, value)) == (*items, (name, value))
    assert tuple(headers.remove(name)) == tuple((n, v) for n, v in items if header_key(n) != key)
    assert headers.prepend(name, value).lines(name)[0] == value
    assert headers.replace(name, value).lines(name) == (value,)
    assert tuple(headers) == tuple(items)  # nothing changed the original
