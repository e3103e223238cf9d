"""Flow tokens (RFC 5626 §5.2): round trip, tamper-proof, foreign keys rejected, URI-safe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipush.proxy.flow_token import FlowTokens
from sipush.sip import SipUri, parse_uri
from sipush.transport.flow import Flow

FLOWS = [
    Flow("udp", ("127.0.0.1", 5060), ("192.0.2.7", 40123)),
    Flow("tcp", ("::1", 5060), ("2001:db8::9", 51000)),
    Flow("tls", ("10.0.0.1", 5061), ("10.0.0.2", 1)),
]


@pytest.mark.parametrize("flow", FLOWS)
def test_round_trip_and_uri_user_part(flow: Flow) -> None:
    tokens = FlowTokens()
    token = tokens.encode(flow)
    assert tokens.decode(token) == flow
    uri = parse_uri(f"sip:{token}@127.0.0.1:5060;lr;ob")  # every character legal in a user part
    assert isinstance(uri, SipUri) and uri.user == token


def test_another_key_or_a_tampered_token_does_not_verify() -> None:
    token = FlowTokens(b"k" * 20).encode(FLOWS[0])
    assert FlowTokens(b"x" * 20).decode(token) is None
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert FlowTokens(b"k" * 20).decode(flipped) is None


@given(st.text(max_size=80))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert FlowTokens(b"k" * 20).decode(text) is None or isinstance(
        FlowTokens(b"k" * 20).decode(text), Flow
    )
