"""The sans-I/O stream framer: whole, byte by byte, random chunks, keep-alives, every error."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipush.errors import FramingError
from sipush.transport.framer import (
    Frame,
    FramerEvent,
    KeepAlivePing,
    KeepAlivePong,
    StreamFramer,
)

PING = KeepAlivePing()
PONG = KeepAlivePong()


def message(body: bytes = b"", *, length_header: bytes | None = None, call_id: str = "a1") -> bytes:
    """A small OPTIONS request; ``length_header`` replaces the Content-Length line."""
    if length_header is None:
        length_header = b"Content-Length: %d" % len(body)
    return (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
        b"From: <sip:alice@example.com>;tag=1928301774\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: " + call_id.encode() + b"\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 70\r\n" + length_header + b"\r\n\r\n" + body
    )


def feed_in_chunks(framer: StreamFramer, data: bytes, cuts: list[int]) -> list[FramerEvent]:
    events: list[FramerEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        events += framer.feed(data[start:cut])
        start = max(start, cut)
    return events


def frames(events: list[FramerEvent]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Frame)]


def without_pongs(events: list[FramerEvent]) -> list[FramerEvent]:
    return [e for e in events if not isinstance(e, KeepAlivePong)]


# -- framing ----------------------------------------------------------------------------------


def test_one_message_whole() -> None:
    data = message(b"hello")
    framer = StreamFramer()
    assert framer.feed(data) == [Frame(data)]
    assert framer.incomplete_bytes == 0


def test_one_message_byte_by_byte() -> None:
    data = message(b"hello")
    framer = StreamFramer()
    events: list[FramerEvent] = []
    for i in range(len(data)):
        assert framer.incomplete_bytes == i
        events += framer.feed(data[i : i + 1])
    assert events == [Frame(data)]
    assert framer.incomplete_bytes == 0


def test_random_chunkings_give_the_same_frames() -> None:
    stream = message(b"one", call_id="1") + message(b"", call_id="2") + message(b"x" * 300)
    rng = random.Random(4475)
    for _ in range(200):
        cuts = rng.sample(range(len(stream)), rng.randint(0, 20))
        assert frames(feed_in_chunks(StreamFramer(), stream, cuts)) == frames(
            StreamFramer().feed(stream)
        )


def test_two_messages_in_one_read() -> None:
    first, second = message(b"1", call_id="x"), message(b"22", call_id="y")
    assert StreamFramer().feed(first + second) == [Frame(first), Frame(second)]


def test_trailing_garbage_waits_as_an_incomplete_message() -> None:
    data = message(b"body")
    framer = StreamFramer()
    assert framer.feed(data + b"GARBAGE WITHOUT END") == [Frame(data)]
    assert framer.incomplete_bytes == len(b"GARBAGE WITHOUT END")
    assert framer.error is None


def test_leading_crlfs_are_not_part_of_the_frame() -> None:
    """RFC 3261 §7.5: ignore CRLFs before the start line."""
    data = message()
    assert StreamFramer().feed(b"\r\n" + data) == [PONG, Frame(data)]


def test_body_with_nuls_bare_lfs_and_header_lookalikes_is_not_scanned() -> None:
    """RFC 4475 §3.1.1.11 mpart01: frame by Content-Length only."""
    body = b"\x00\n\nContent-Length: 99\r\n\r\n\x00\r\n\r\nINVITE sip:x SIP/2.0\r\n\n\xff"
    data = message(body)
    for chunk in (len(data), 1, 7):
        framer = StreamFramer()
        events = feed_in_chunks(framer, data + message(call_id="next"), list(range(0, 999, chunk)))
        assert frames(events) == [data, message(call_id="next")]


def test_body_can_be_exactly_the_limit() -> None:
    data = message(b"b" * 10)
    assert StreamFramer(max_message_size=len(data)).feed(data) == [Frame(data)]
    with pytest.raises(FramingError) as caught:
        StreamFramer(max_message_size=len(data) - 1).feed(data)
    assert caught.value.status == 513


# -- Content-Length: where it is found --------------------------------------------------------


@pytest.mark.parametrize(
    "length_header",
    [
        b"Content-Length: 4",
        b"content-length: 4",
        b"CONTENT-LENGTH:4",
        b"l: 4",  # RFC 3261 §7.3.3 compact form
        b"L:4",
        b"Content-Length   :   4   ",  # LWS before and after the colon
        b"Content-Length\t: 0004",  # leading zeros
        b"Content-Length:\r\n   4",  # folded (RFC 3261 §7.3.1)
        b"Content-Length: 4\r\nl: 4",  # duplicates that agree frame the stream
        b"Content-Length: 4\r\nContent-Length: 004",
    ],
)
def test_content_length_forms(length_header: bytes) -> None:
    data = message(b"abcd", length_header=length_header)
    framer = StreamFramer()
    assert framer.feed(data + b"\r\n\r\n") == [Frame(data), PING]


def test_header_named_like_content_length_is_not_it() -> None:
    data = message(b"", length_header=b"X-Content-Length: 5\r\nContent-Length: 0")
    assert StreamFramer().feed(data) == [Frame(data)]


# -- Content-Length: errors (status 400) ------------------------------------------------------


@pytest.mark.parametrize(
    ("length_header", "detail"),
    [
        (b"X-Other: 1", "missing Content-Length"),  # RFC 3261 §18.3
        (b"Content-Length:", "not a non-negative integer"),
        (b"Content-Length: -999", "not a non-negative integer"),  # RFC 4475 ncl
        (b"Content-Length: five", "not a non-negative integer"),  # RFC 4475 §3.1.2.3
        (b"Content-Length: +5", "not a non-negative integer"),
        (b"Content-Length: 5 5", "not a non-negative integer"),
        (b"Content-Length: 5.0", "not a non-negative integer"),
        (b"Content-Length: \xd9\xa5", "not a non-negative integer"),  # Arabic-Indic five
        (b"Content-Length: 4294967296", "out of range"),
        (b"Content-Length: " + b"9" * 5000, "out of range"),  # beyond int()'s digit limit
        (b"Content-Length: 5\r\nl: 6", "conflicting"),  # RFC 4475 §3.3.9 mcl01
    ],
)
def test_bad_content_length_is_a_400_framing_error(length_header: bytes, detail: str) -> None:
    framer = StreamFramer()
    with pytest.raises(FramingError) as caught:
        framer.feed(message(b"abcde", length_header=length_header))
    assert caught.value.status == 400
    assert detail in caught.value.detail
    head = caught.value.head
    assert head is not None
    assert head.start_line == "OPTIONS sip:bob@example.com SIP/2.0"
    assert ("Call-ID", "a1") in head.headers


def test_framer_is_dead_after_an_error() -> None:
    framer = StreamFramer()
    with pytest.raises(FramingError):
        framer.feed(message(length_header=b"Content-Length: x"))
    assert framer.error is not None
    for data in (b"", message()):
        with pytest.raises(FramingError, match="already failed"):
            framer.feed(data)
    assert framer.incomplete_bytes == 0


def test_frames_before_an_error_are_not_lost() -> None:
    good, bad = message(b"ok"), message(length_header=b"Content-Length: -1")
    framer = StreamFramer()
    assert framer.feed(good + bad) == [Frame(good)]
    assert framer.error is not None and "non-negative" in framer.error.detail
    with pytest.raises(FramingError, match="non-negative") as caught:
        framer.feed(b"")
    assert caught.value.head is not None  # the first raise is the original error, with its head
    with pytest.raises(FramingError, match="already failed"):
        framer.feed(b"")


# -- 513 Message Too Large --------------------------------------------------------------------


def test_overlong_head_is_513_without_buffering_more_than_the_limit() -> None:
    framer = StreamFramer(max_message_size=200)
    endless_head = b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Filler: yyyyyyyyyy\r\n" * 100
    with pytest.raises(FramingError) as caught:
        for i in range(len(endless_head)):
            assert framer.incomplete_bytes < 200
            framer.feed(endless_head[i : i + 1])
    assert caught.value.status == 513
    assert framer.incomplete_bytes == 0


def test_overlong_head_in_one_read_is_513() -> None:
    data = message(length_header=b"X-Filler: " + b"y" * 300 + b"\r\nContent-Length: 0")
    with pytest.raises(FramingError) as caught:
        StreamFramer(max_message_size=200).feed(data)
    assert caught.value.status == 513
    assert caught.value.head is not None


def test_content_length_past_the_limit_is_513_before_the_body_arrives() -> None:
    framer = StreamFramer(max_message_size=1000)
    with pytest.raises(FramingError) as caught:
        framer.feed(message(length_header=b"Content-Length: 5000"))  # head only
    assert caught.value.status == 513
    assert caught.value.head is not None
    assert caught.value.head.start_line.startswith("OPTIONS ")


# -- keep-alives (RFC 5626 §4.4.1) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"\r\n\r\n"], [PING]),
        ([b"\r\n"], [PONG]),
        ([b"\r\n", b"\r\n"], [PONG, PING]),  # a ping split across reads is still a ping
        ([b"\r\n\r", b"\n"], [PONG, PING]),
        ([b"\r", b"\n", b"\r", b"\n"], [PONG, PING]),
        ([b"\r\n\r\n\r\n\r\n"], [PING, PING]),
        ([b"\r\n\r\n\r\n"], [PING, PONG]),
        ([b"\r"], []),
    ],
)
def test_keepalives(chunks: list[bytes], expected: list[FramerEvent]) -> None:
    framer = StreamFramer()
    assert [event for chunk in chunks for event in framer.feed(chunk)] == expected
    assert framer.incomplete_bytes == 0


def test_keepalives_between_messages() -> None:
    first, second = message(call_id="1"), message(call_id="2")
    stream = b"\r\n\r\n" + first + b"\r\n\r\n" + b"\r\n" + second + b"\r\n"
    assert StreamFramer().feed(stream) == [PING, Frame(first), PING, PONG, Frame(second), PONG]


def test_crlf_inside_a_body_is_not_a_keepalive() -> None:
    data = message(b"\r\n\r\n")
    assert StreamFramer().feed(data) == [Frame(data)]


# -- properties -------------------------------------------------------------------------------

_header_case = st.sampled_from([b"Content-Length: ", b"l: ", b"content-length :", b"L:\r\n "])
_keepalive = st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Valid messages with random bodies and Content-Length spellings, keep-alives between."""
    parts: list[bytes] = []
    for i in range(draw(st.integers(1, 5))):
        body = draw(st.binary(max_size=300))
        length = draw(_header_case) + b"%d" % len(body)
        parts.append(draw(_keepalive) + message(body, length_header=length, call_id=str(i)))
    return b"".join(parts)


@settings(max_examples=300, deadline=None)
@given(stream=streams(), data=st.data())
def test_random_chunking_matches_whole_feed(stream: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    whole = StreamFramer().feed(stream)
    chunked = feed_in_chunks(StreamFramer(), stream, cuts)
    assert frames(chunked) == frames(whole)
    # Splitting may add a pong before a split ping, never lose or move a ping or frame.
    assert without_pongs(chunked) == without_pongs(whole)


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(st.binary(max_size=80), max_size=20), limit=st.integers(5, 400))
def test_any_input_frames_or_raises_framing_error(chunks: list[bytes], limit: int) -> None:
    """The only invariant of a fuzz test: events, or our own error (h11 fuzz style)."""
    framer = StreamFramer(max_message_size=limit)
    try:
        for chunk in chunks:
            for event in framer.feed(chunk):
                if isinstance(event, Frame):
                    assert len(event.data) <= limit
            assert framer.incomplete_bytes <= max(limit, 0) + 80
    except FramingError as err:
        assert err.status in (400, 513)
