"""§16.3 step 4: a request that comes back with sipush's own Via and the same loop hash gets 482,
a spiral (retargeted, so a different hash) does not."""

from __future__ import annotations

from sipush.proxy.loop import branch_for, has_looped, loop_hash
from sipush.sip import Request, parse_message


def invite(uri: str = "sip:bob@example.org", via: str = "") -> Request:
    data = (
        f"INVITE {uri} SIP/2.0\r\n{via}"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKcaller\r\n"
        "From: <sip:alice@example.org>;tag=a\r\nTo: <sip:bob@example.org>\r\n"
        "Call-ID: loop-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


PBX_VIA = "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKpbx\r\n"


def ours(sent_by: tuple[str, int]) -> bool:
    return sent_by == ("127.0.0.1", 5060)


def test_a_request_that_comes_back_unchanged_has_looped() -> None:
    first = invite()
    branch = branch_for(first)
    assert branch.startswith("z9hG4bK-") and loop_hash(first) in branch
    back = invite(via=PBX_VIA + f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n")
    assert has_looped(back, ours)


def test_a_spiral_is_not_a_loop() -> None:
    branch = branch_for(invite())
    retargeted = invite(
        uri="sip:bob@192.0.2.44:5062",
        via=PBX_VIA + f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n",
    )
    assert not has_looped(retargeted, ours)


def test_someone_elses_via_is_ignored() -> None:
    branch = branch_for(invite())
    back = invite(via=f"Via: SIP/2.0/UDP 192.0.2.50:5060;branch={branch}\r\n")
    assert not has_looped(back, ours)
