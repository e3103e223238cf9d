"""RFC 4475 torture messages through the stream framer, alone and back to back in one stream."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sipush.errors import FramingError
from sipush.transport.framer import Frame, FramerEvent, KeepAlivePong, StreamFramer

CORPUS = Path(__file__).parent.parent / "data" / "rfc4475"

# §3.1.1: the messages the RFC calls well-formed. dblreq (§3.1.1.8) is a UDP test (octets after
# Content-Length in one datagram) and is covered separately below.
VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "semiuri",
    "transports", "mpart01", "unreason", "noreason",
]  # fmt: skip

# Files that cannot frame on a stream, and why.
FRAMING_ERRORS = {
    "ncl": "not a non-negative integer",  # §3.1.2.3 Content-Length: -999
    "mcl01": "conflicting",  # §3.3.9 two different Content-Length values
    "inv2543": "missing Content-Length",  # §3.4.1 RFC 2543 style, no Content-Length
}
INCOMPLETE = {
    "clerr",  # §3.1.2.2 Content-Length larger than the body: wait (the transport times out)
    "baddn",  # no empty line ends its headers (archive defect, see INDEX.md)
}


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.dat").read_bytes()


def all_names() -> list[str]:
    return sorted(path.stem for path in CORPUS.glob("*.dat"))


def frames(events: list[FramerEvent]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Frame)]


def test_corpus_is_complete() -> None:
    assert len(all_names()) == 50


@pytest.mark.parametrize("name", [n for n in all_names() if n != "dblreq"])
def test_each_message_alone(name: str) -> None:
    data = load(name)
    framer = StreamFramer()
    if name in FRAMING_ERRORS:
        with pytest.raises(FramingError, match=FRAMING_ERRORS[name]) as caught:
            framer.feed(data)
        assert caught.value.status == 400
        assert caught.value.head is not None  # the head was complete: the server can answer
    elif name in INCOMPLETE:
        assert framer.feed(data) == []
        assert framer.incomplete_bytes == len(data)
    else:
        assert framer.feed(data) == [Frame(data)]


def test_valid_messages_back_to_back() -> None:
    """§3.1.1 messages as one TCP stream: each frame is byte-exact (parsing: tests/sip)."""
    messages = [load(name) for name in VALID]
    assert frames(StreamFramer().feed(b"".join(messages))) == messages


def test_every_framable_message_back_to_back_in_random_chunks() -> None:
    """All messages that frame alone, concatenated, survive any chunking (incl. byte by byte)."""
    names = [n for n in all_names() if n not in FRAMING_ERRORS and n not in INCOMPLETE | {"dblreq"}]
    messages = [load(name) for name in names]
    stream = b"".join(messages)
    rng = random.Random(4475)
    for chunk_size in (1, 2, 3, 7, 64, 1400, len(stream)):
        framer = StreamFramer()
        chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
        assert frames([e for chunk in chunks for e in framer.feed(chunk)]) == messages
    for _ in range(20):
        framer = StreamFramer()
        cuts = sorted(rng.sample(range(len(stream)), 50))
        events: list[FramerEvent] = []
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            events += framer.feed(stream[start:end])
        assert frames(events) == messages


def test_dblreq_on_a_stream_is_two_messages_then_garbage() -> None:
    """§3.1.1.8 is about UDP; on a stream its trailing octets are a second message (whose body is
    6 octets short of its Content-Length) followed by garbage that has no Content-Length."""
    data = load("dblreq")
    framer = StreamFramer()
    events = framer.feed(data)
    register, invite = frames(events)
    assert register.startswith(b"REGISTER ") and register.endswith(b"Content-Length: 0\r\n\r\n")
    assert invite.startswith(b"INVITE ")
    assert KeepAlivePong() in events  # the extra CRLF after the REGISTER
    assert framer.error is not None and "missing Content-Length" in framer.error.detail
