"""Transaction matching (RFC 3261 §17.1.3, §17.2.3, §9.2) and the registry, with RFC 4475's
badbranch and inv2543 messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipush.sip import Request, Response, make_response, parse_message
from sipush.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    build_ack,
    new_server_transaction,
)
from sipush.sip.transaction_keys import (
    ClientTransactionKey,
    Rfc2543Key,
    Rfc3261Key,
    cancel_target_key,
    client_key_for_request,
    client_transaction_key,
    server_transaction_key,
)
from sipush.sip.transaction_registry import TransactionRegistry
from sipush.sip.transaction_tables import ServerInviteState, TransactionError

RFC4475 = Path(__file__).resolve().parents[1] / "data" / "rfc4475"


def _parse(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def _request(method: str, *, via: str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc") -> Request:
    return _parse(
        f"{method} sip:bob@example.com SIP/2.0\n"
        f"Via: {via}\n"
        "Max-Forwards: 70\n"
        "From: <sip:alice@example.com>;tag=a1\n"
        "To: <sip:bob@example.com>\n"
        "Call-ID: keys-1@192.0.2.1\n"
        f"CSeq: 1 {method}\n"
        "Content-Length: 0\n\n"
    )


def _load(name: str) -> Request:
    message = parse_message((RFC4475 / name).read_bytes())
    assert isinstance(message, Request)
    return message


# -- server keys, RFC 3261 ----------------------------------------------------------------------


def test_rfc3261_key_is_branch_sent_by_and_method() -> None:
    invite = _request("INVITE")
    assert server_transaction_key(invite) == Rfc3261Key("z9hG4bKabc", ("192.0.2.1", 5060), "INVITE")


def test_a_retransmission_has_the_same_key() -> None:
    invite = _request("INVITE")
    again = parse_message(bytes(invite))
    assert isinstance(again, Request)
    assert server_transaction_key(again) == server_transaction_key(invite)


def test_ack_for_a_non_2xx_matches_the_invite() -> None:
    invite = _request("INVITE")
    ack = build_ack(invite, make_response(invite, 486, to_tag="b1"))
    # §17.2.3: "except for ACK, where the method of the request that created the transaction
    # is INVITE"
    assert server_transaction_key(ack) == server_transaction_key(invite)


def test_cancel_has_its_own_key_with_the_same_branch() -> None:
    invite = _request("INVITE")
    cancel = _request("CANCEL")
    invite_key, cancel_key = server_transaction_key(invite), server_transaction_key(cancel)
    assert isinstance(invite_key, Rfc3261Key) and isinstance(cancel_key, Rfc3261Key)
    assert cancel_key != invite_key
    assert cancel_key.branch == invite_key.branch
    assert cancel_key.method == "CANCEL"
    assert cancel_target_key(cancel) == invite_key  # §9.2
    with pytest.raises(TransactionError):
        cancel_target_key(invite)


def test_sent_by_is_part_of_the_key() -> None:
    a = _request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsame")
    b = _request("OPTIONS", via="SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKsame")
    assert server_transaction_key(a) != server_transaction_key(b)


def test_sent_by_compares_host_case_insensitively_with_the_default_port() -> None:
    a = _request("OPTIONS", via="SIP/2.0/UDP Host.Example.COM;branch=z9hG4bKp")
    b = _request("OPTIONS", via="SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKp")
    assert server_transaction_key(a) == server_transaction_key(b)


def test_branch_compares_exactly() -> None:
    a = _request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc")
    b = _request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKABC")
    assert server_transaction_key(a) != server_transaction_key(b)


def test_stamped_received_and_rport_do_not_change_the_key() -> None:
    a = _request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bKst")
    b = _request(
        "OPTIONS", via="SIP/2.0/UDP 192.0.2.1;rport=5070;received=10.0.0.1;branch=z9hG4bKst"
    )
    assert server_transaction_key(a) == server_transaction_key(b)


# -- server keys, RFC 2543 fallback -------------------------------------------------------------


def test_badbranch_is_not_an_rfc3261_branch() -> None:
    """RFC 4475 §3.2.1: ``branch=z9hG4bK`` alone is the cookie with no id: use the fallback."""
    request = _load("badbranch.dat")
    assert request.top_via.branch == "z9hG4bK"
    key = server_transaction_key(request)
    assert isinstance(key, Rfc2543Key)
    assert key.call_id == "badbranch.sadonfo23i420jv0as0derf3j3n"
    assert (key.cseq_number, key.method) == (8, "OPTIONS")
    assert key.from_tag == "33242"
    assert key.to_tag is None
    # one character after the cookie is enough to make it an RFC 3261 branch
    fixed = parse_message(bytes(request).replace(b"branch=z9hG4bK", b"branch=z9hG4bKx"))
    assert isinstance(fixed, Request)
    assert isinstance(server_transaction_key(fixed), Rfc3261Key)


def test_inv2543_uses_the_fallback_key() -> None:
    invite = _load("inv2543.dat")
    assert invite.top_via.branch is None
    key = server_transaction_key(invite)
    assert isinstance(key, Rfc2543Key)
    assert key.request_uri == "sip:UserB@example.com"
    assert key.call_id == "inv2543.1717@ift.client.example.com"
    assert (key.cseq_number, key.method) == (56, "INVITE")
    assert (key.from_tag, key.to_tag) == (None, None)
    assert key.top_via[2] == ("iftgw.example.com", 5060)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"CSeq: 56 INVITE", b"CSeq: 57 INVITE"),
        (b"Call-ID: inv2543.1717", b"Call-ID: inv2543.1718"),
        (b"INVITE sip:UserB@example.com", b"INVITE sip:UserC@example.com"),
        (b"Via: SIP/2.0/UDP iftgw.example.com", b"Via: SIP/2.0/UDP other.example.com"),
        (b"To: sip:+16505552222@ss1.example.net;user=phone", b"To: sip:x@ss1.example.net;tag=9"),
        (b"From: <sip:+13035551111@ift.client.example.net;user=phone>", b"From: <sip:y@z>;tag=8"),
    ],
)
def test_fallback_key_changes_with_each_field(old: bytes, new: bytes) -> None:
    data = (RFC4475 / "inv2543.dat").read_bytes()
    assert old in data
    changed = parse_message(data.replace(old, new))
    assert isinstance(changed, Request)
    assert server_transaction_key(changed) != server_transaction_key(_load("inv2543.dat"))


def test_rfc2543_ack_matches_the_invite_whose_response_to_tag_it_carries() -> None:
    invite = _load("inv2543.dat")
    registry = TransactionRegistry()
    tx = new_server_transaction(invite, reliable=False)
    assert isinstance(tx, ServerInviteTransaction)
    registry.add(tx)
    tx.start()
    busy = make_response(invite, 486, to_tag="uas-7")
    ack = build_ack(invite, busy)
    assert ack.to.tag == "uas-7"
    assert isinstance(server_transaction_key(ack), Rfc2543Key)
    # Before the final response the ACK acknowledges nothing.
    assert registry.match_request(ack) is None
    # The retransmitted INVITE matches from the start.
    again = parse_message((RFC4475 / "inv2543.dat").read_bytes())
    assert isinstance(again, Request)
    assert registry.match_request(again) is tx

    tx.respond(busy)
    assert registry.match_request(ack) is tx
    tx.receive(ack)
    assert tx.state is ServerInviteState.CONFIRMED
    wrong_tag = build_ack(invite, make_response(invite, 486, to_tag="someone-else"))
    assert registry.match_request(wrong_tag) is None


def test_rfc2543_ack_for_a_2xx_goes_to_the_tu_in_accepted() -> None:
    """RFC 6026 §6: a fallback-key ACK that matches an Accepted transaction reaches the TU."""
    invite = _load("inv2543.dat")
    registry = TransactionRegistry()
    tx = ServerInviteTransaction(invite, reliable=False)
    registry.add(tx)
    tx.start()
    ok = make_response(invite, 200, to_tag="uas-8")
    tx.respond(ok)
    ack = build_ack(invite, ok)
    assert registry.match_request(ack) is tx
    assert tx.receive(ack) == [Deliver(ack)]


def test_a_request_without_a_usable_via_has_no_key() -> None:
    no_via = Request("OPTIONS", _request("OPTIONS").uri, _request("OPTIONS").headers.remove("Via"))
    with pytest.raises(TransactionError):
        server_transaction_key(no_via)
    assert TransactionRegistry().match_request(no_via) is None
    with pytest.raises(TransactionError):
        ServerNonInviteTransaction(no_via, reliable=False)


# -- client keys -------------------------------------------------------------------------------


def test_client_key_is_branch_and_cseq_method() -> None:
    invite = _request("INVITE")
    ringing = make_response(invite, 180, to_tag="b1")
    assert client_key_for_request(invite) == ClientTransactionKey("z9hG4bKabc", "INVITE")
    assert client_transaction_key(ringing) == client_key_for_request(invite)


def test_cancel_responses_do_not_match_the_invite_client_transaction() -> None:
    invite, cancel = _request("INVITE"), _request("CANCEL")
    registry = TransactionRegistry()
    invite_tx = ClientInviteTransaction(invite, reliable=False)
    cancel_tx = ClientNonInviteTransaction(cancel, reliable=False)
    registry.add(invite_tx)
    registry.add(cancel_tx)
    assert registry.match_response(make_response(cancel, 200, to_tag="b1")) is cancel_tx
    assert registry.match_response(make_response(invite, 487, to_tag="b1")) is invite_tx


def test_a_response_without_a_branch_matches_nothing() -> None:
    invite = _request("INVITE")
    registry = TransactionRegistry()
    registry.add(ClientInviteTransaction(invite, reliable=False))
    stray = make_response(_request("INVITE", via="SIP/2.0/UDP 192.0.2.1"), 200, to_tag="b1")
    assert registry.match_response(stray) is None
    with pytest.raises(TransactionError):
        client_transaction_key(stray)
    other = make_response(_request("INVITE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKzz"), 200)
    assert registry.match_response(other) is None


# -- registry ------------------------------------------------------------------------------------


def test_registry_add_remove_and_duplicates() -> None:
    invite = _request("INVITE")
    registry = TransactionRegistry()
    server = ServerInviteTransaction(invite, reliable=False)
    client = ClientInviteTransaction(invite, reliable=False)
    registry.add(server)
    registry.add(client)  # client and server keys live apart
    assert len(registry) == 2
    assert server in registry and client in registry
    assert set(map(id, registry)) == {id(server), id(client)}
    with pytest.raises(TransactionError):
        registry.add(ServerInviteTransaction(invite, reliable=False))
    with pytest.raises(TransactionError):
        registry.add(ClientInviteTransaction(invite, reliable=False))
    registry.remove(server)
    registry.remove(server)  # twice is fine
    assert server not in registry
    assert registry.match_request(invite) is None
    registry.remove(client)
    assert len(registry) == 0
    assert "something else" not in registry


def test_registry_finds_the_invite_a_cancel_cancels() -> None:
    invite, cancel = _request("INVITE"), _request("CANCEL")
    registry = TransactionRegistry()
    invite_tx = ServerInviteTransaction(invite, reliable=False)
    registry.add(invite_tx)
    assert registry.match_request(cancel) is None  # a new CANCEL transaction ...
    assert registry.match_cancel_target(cancel) is invite_tx  # ... for this INVITE
    registry.add(ServerNonInviteTransaction(cancel, reliable=False))
    assert registry.match_request(cancel) is not invite_tx
    assert registry.match_cancel_target(_request("INVITE")) is None  # not a CANCEL


def test_response_to_a_request_round_trips_through_bytes() -> None:
    invite = _request("INVITE")
    ringing = parse_message(bytes(make_response(invite, 180, to_tag="b1")))
    assert isinstance(ringing, Response)
    registry = TransactionRegistry()
    tx = ClientInviteTransaction(invite, reliable=False)
    registry.add(tx)
    assert registry.match_response(ringing) is tx
