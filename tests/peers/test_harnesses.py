"""Tests of the peer harnesses themselves, straight against Kamailio (no sipush in the path).

They prove what the end-to-end tests build on: ``examples/kamailio.cfg`` registers SIPp and
pjsua2 over UDP and TCP, keeps the pn-* params, +sip.instance and Path, challenges REGISTER when
auth is on, and routes INVITE and MESSAGE to a registered contact, through its Path; the SIPp
scenarios and the pjsua2 app do what their headers say; ``ul.dump`` parses.

A missing peer fails these tests (never skips them) with a message naming
``bash scripts/test.sh``.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.peers import sipp
from tests.peers.kamailio import (
    KamailioProcess,
    kamailio_binaries,
    parse_ul_dump,
    run_kamailio,
)
from tests.peers.pjsua2_app import Pjsua2App, require_pjsua2, start_app

pytestmark = pytest.mark.timeout(60)

LOOPBACK = "127.0.0.1"


# --- pure parts ---------------------------------------------------------------------------------

UL_DUMP_SAMPLE = """{
\tDomains: {
\t\tDomain: {
\t\t\tDomain: location
\t\t\tSize: 1024
\t\t\tAoRs: {
\t\t\t\tInfo: {
\t\t\t\t\tAoR: alice
\t\t\t\t\tHashID: 1834153949
\t\t\t\t\tContacts: {
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:alice@127.0.0.1:5261;transport=UDP
\t\t\t\t\t\t\tExpires: 297
\t\t\t\t\t\t\tQ: -1
\t\t\t\t\t\t\tCall-ID: 1-12159@127.0.0.1
\t\t\t\t\t\t\tCSeq: 2
\t\t\t\t\t\t\tUser-Agent: SIPp register_xpush
\t\t\t\t\t\t\tReceived: [not set]
\t\t\t\t\t\t\tPath: <sip:127.0.0.1:5060;lr>,<sip:10.0.0.1;lr>
\t\t\t\t\t\t\tSocket: udp:127.0.0.1:5170
\t\t\t\t\t\t\tInstance: [not set]
\t\t\t\t\t\t}
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:alice@127.0.0.1:40000;transport=TCP;pn-provider=apns;pn-prid=x
\t\t\t\t\t\t\tExpires: permanent
\t\t\t\t\t\t\tInstance: <urn:uuid:00000000-0000-0000-0000-000000000001>
\t\t\t\t\t\t}
\t\t\t\t\t}
\t\t\t\t}
\t\t\t\tInfo: {
\t\t\t\t\tAoR: bob
\t\t\t\t\tContacts: {
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:bob@127.0.0.1:5262
\t\t\t\t\t\t\tExpires: 60
\t\t\t\t\t\t}
\t\t\t\t\t}
\t\t\t\t}
\t\t\t}
\t\t\tStats: {
\t\t\t\tRecords: 2
\t\t\t\tMax-Slots: 1
\t\t\t}
\t\t}
\t}
}"""


def test_ul_dump_parser_reads_every_aor_and_contact() -> None:
    table = parse_ul_dump(UL_DUMP_SAMPLE)
    assert sorted(table) == ["alice", "bob"]
    first, second = table["alice"]
    assert first.address == "sip:alice@127.0.0.1:5261;transport=UDP"
    assert (first.expires, first.cseq, first.received) == (297, 2, None)
    assert first.user_agent == "SIPp register_xpush"
    assert first.path_uris == ["sip:127.0.0.1:5060;lr", "sip:10.0.0.1;lr"]
    assert second.expires is None
    assert second.uri_params["pn-provider"] == "apns"
    assert second.instance == "<urn:uuid:00000000-0000-0000-0000-000000000001>"
    assert [contact.expires for contact in table["bob"]] == [60]
    assert parse_ul_dump("{\n}") == {}


def test_csv_variant_turns_keys_into_injection_fields(tmp_path: Path) -> None:
    variant = sipp.csv_variant("register_xpush.xml", ["user", "token"], tmp_path)
    body = variant.read_text(encoding="iso-8859-1").split("<scenario", 1)[1]
    assert "[field0]" in body and "[field1]" in body
    assert "[user]" not in body and "[token]" not in body and "[domain]" in body


def test_a_missing_peer_fails_and_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(pytest.fail.Exception, match=r"bash scripts/test\.sh"):
        sipp.sipp_binary()
    with pytest.raises(pytest.fail.Exception, match=r"bash scripts/test\.sh"):
        kamailio_binaries()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(pytest.fail.Exception, match=r"bash scripts/test\.sh"):
        require_pjsua2()


# --- SIPp registrations -------------------------------------------------------------------------


def test_sipp_registrations_with_x_push_and_pn_params_show_in_the_location_table(
    kamailio: KamailioProcess, tmp_path: Path
) -> None:
    xpush = sipp.run_sipp(
        "register_xpush.xml",
        kamailio.address,
        workdir=tmp_path / "xpush",
        transport="udp",
        keys=sipp.xpush_keys("alice", "voip-token-1|apns-token-1", expires=120),
        context=kamailio.describe,
    )
    assert xpush.statuses() == [200]
    sent = xpush.sent()[0]
    assert sent.header("X-Push") == (
        "device-os=ios;device-uid=voip-token-1|apns-token-1;allow-call-push=true"
        ";allow-message-push=true;app-id=com.example.app"
    )

    instance = sipp.device_instance("alice", "phone-2")
    pn = sipp.run_sipp(
        "register_pn.xml",
        kamailio.address,
        workdir=tmp_path / "pn",
        transport="tcp",
        keys=sipp.pn_keys(
            "alice", "fcm-token-2", provider="fcm", param="my-project", instance=instance
        ),
        context=kamailio.describe,
    )
    assert pn.statuses() == [200]

    by_agent = {c.user_agent: c for c in kamailio.wait_for_contacts("alice", 2)}
    x_contact = by_agent["SIPp register_xpush"]
    assert x_contact.uri_params["transport"] == "UDP"
    assert x_contact.expires is not None and 100 <= x_contact.expires <= 120
    assert x_contact.path is None and x_contact.instance is None
    pn_contact = by_agent["SIPp register_pn"]
    assert pn_contact.uri_params["transport"] == "TCP"
    assert pn_contact.uri_params["pn-provider"] == "fcm"
    assert pn_contact.uri_params["pn-prid"] == "fcm-token-2"
    assert pn_contact.uri_params["pn-param"] == "my-project"
    assert pn_contact.instance == f"<urn:uuid:{instance}>"

    sipp.run_sipp(
        "register_expires0.xml",
        kamailio.address,
        workdir=tmp_path / "remove-one",
        keys=sipp.expires0_keys("alice", f"<{pn_contact.address}>"),
        context=kamailio.describe,
    )
    assert [c.address for c in kamailio.wait_for_contacts("alice", 1)] == [x_contact.address]
    sipp.run_sipp(
        "register_expires0.xml",
        kamailio.address,
        workdir=tmp_path / "remove-all",
        keys=sipp.expires0_keys("alice", "*"),
        context=kamailio.describe,
    )
    kamailio.wait_for_contacts("alice", 0)


def test_with_auth_register_gets_401_and_the_authenticated_retry_succeeds(
    kamailio_auth: KamailioProcess, tmp_path: Path
) -> None:
    pbx = kamailio_auth
    keys = sipp.xpush_keys("carol", "token-c", expect=401)
    unauthenticated = sipp.run_sipp(
        "register_xpush.xml",
        pbx.address,
        workdir=tmp_path / "no-credentials",
        keys=keys,
        context=pbx.describe,
    )
    assert unauthenticated.statuses() == [401]
    challenge = unauthenticated.final_responses()[0].header("WWW-Authenticate")
    assert challenge is not None and challenge.startswith("Digest ")
    assert pbx.contacts("carol") == []

    wrong = sipp.run_sipp(
        "register_xpush.xml",
        pbx.address,
        workdir=tmp_path / "wrong-password",
        keys=sipp.xpush_keys("carol", "token-c", expect=401, challenge="answer"),
        username="carol",
        password="not-the-password",
        context=pbx.describe,
    )
    assert wrong.statuses() == [401, 401]
    assert pbx.contacts("carol") == []

    accepted = sipp.run_sipp(
        "register_xpush.xml",
        pbx.address,
        workdir=tmp_path / "credentials",
        transport="tcp",
        keys=sipp.xpush_keys("carol", "token-c"),
        username="carol",
        password=pbx.password,
        context=pbx.describe,
    )
    assert accepted.statuses() == [401, 200]
    assert "Authorization" in accepted.sent()[1].text
    assert [c.user_agent for c in pbx.wait_for_contacts("carol", 1)] == ["SIPp register_xpush"]

    # The pjsua2 app answers the challenge itself when given the password.
    with start_app(
        tmp_path / "app", user="dan", registrar=f"sip:{pbx.address}", password=pbx.password
    ) as app:
        assert app.events_named("registered")[0]["code"] == 200
        assert app.events_named("registration_failed") == []
        pbx.wait_for_contacts("dan", 1)


# --- Path (RFC 3327) and in-dialog routing ------------------------------------------------------


def register_with_path(pbx: KamailioProcess, user: str, contact: str, path: str) -> None:
    """REGISTER ``contact`` for ``user`` with a Path header, as an edge proxy would relay it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(3.0)
        port = sock.getsockname()[1]
        request = (
            f"REGISTER sip:{LOOPBACK} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{LOOPBACK}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}@{LOOPBACK}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 REGISTER\r\n"
            f"Path: <{path}>\r\n"
            f"Contact: <{contact}>\r\n"
            "Expires: 60\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (pbx.host, pbx.port))
        reply = sock.recv(65535).decode(errors="replace")
    assert reply.startswith("SIP/2.0 200 "), reply + "\n" + pbx.describe()


def record_routing_uas(tmp_path: Path) -> Path:
    """uas_answer.xml, changed to play an edge proxy: it Record-Routes itself, and its Contact
    is unreachable, so the caller's ACK and BYE can only arrive by the route set."""
    text = (sipp.SCENARIOS / "uas_answer.xml").read_text(encoding="iso-8859-1")
    own_route = "Record-Route: <sip:[local_ip]:[local_port];transport=[transport];lr>"
    text = text.replace("[last_Record-Route:]", own_route).replace(
        "Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>",
        "Contact: <sip:callee@127.0.0.1:9;transport=[transport]>",
    )  # fmt: skip
    path = tmp_path / "uas_record_route.xml"
    path.write_text(text, encoding="iso-8859-1")
    return path


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_invite_follows_the_registered_path_and_the_dialog_follows_record_route(
    kamailio: KamailioProcess, tmp_path: Path, transport: str
) -> None:
    """The edge proxy's role is played by a SIPp UAS: Kamailio must send the INVITE to the
    Path URI (with Route: <path>), never to the unreachable Contact, and relay the caller's
    ACK and BYE by loose routing to the Record-Route."""
    edge_port = free_port()
    path = f"sip:{LOOPBACK}:{edge_port};transport={transport};lr"
    contact = f"sip:erin@127.0.0.1:9;transport={transport}"
    register_with_path(kamailio, "erin", contact, path)
    (stored,) = kamailio.wait_for_contacts("erin", 1)
    assert stored.path_uris == [path]
    assert stored.received is None  # path_use_received=0: nothing bypasses the edge proxy

    with sipp.start_sipp(
        record_routing_uas(tmp_path),
        None,
        workdir=tmp_path / "edge",
        transport=transport,
        local_port=edge_port,
    ) as edge:
        caller = sipp.run_sipp(
            "uac_call.xml",
            kamailio.address,
            workdir=tmp_path / "caller",
            transport=transport,
            service="erin",
            pause_ms=100,
            context=kamailio.describe,
        )
        callee = edge.wait(context=kamailio.describe)
    assert caller.statuses()[-2:] == [200, 200]
    invite = callee.requests_received("INVITE")[0]
    assert invite.first_line == f"INVITE {contact} SIP/2.0"
    assert invite.headers("Route") == [f"<{path}>"]
    assert [m.method for m in callee.requests_received()] == ["INVITE", "ACK", "BYE"]


# --- the pjsua2 app -----------------------------------------------------------------------------


def call_and_message(
    pbx: KamailioProcess, app: Pjsua2App, user: str, transport: str, tmp_path: Path
) -> None:
    """A SIPp call to ``user`` through Kamailio is answered by the app; a MESSAGE reaches it."""
    caller = sipp.run_sipp(
        "uac_call.xml",
        pbx.address,
        workdir=tmp_path / "call",
        transport=transport,
        service=user,
        pause_ms=200,
        context=lambda: pbx.describe() + "\n" + app.describe(),
    )
    (answer,) = [m for m in caller.final_responses() if m.header("CSeq") == "1 INVITE"]
    assert answer.status == 200
    assert "pn-" not in (answer.header("Contact") or "")  # RFC 8599 §4.1: REGISTER only
    call_id = caller.sent()[0].header("Call-ID")
    incoming = app.wait_for("incoming_call", call_id=call_id)
    assert "SIPp caller" in incoming["from"]
    app.wait_for("call_confirmed", call_id=call_id, direction="incoming")
    ended = app.wait_for("call_disconnected", call_id=call_id)
    assert ended["code"] == 200, ended  # ended by the caller's BYE, answered 200

    text = f"hello {user} over {transport}"
    message = sipp.run_sipp(
        "uac_message.xml",
        pbx.address,
        workdir=tmp_path / "message",
        transport=transport,
        service=user,
        keys=sipp.message_keys(text),
        context=lambda: pbx.describe() + "\n" + app.describe(),
    )
    assert message.statuses()[-1] == 200
    received = app.wait_for("message_received")
    assert received["body"] == text
    assert received["content_type"] == "text/plain"


def test_pjsua2_app_over_udp_with_x_push_registers_answers_and_unregisters(
    kamailio: KamailioProcess, tmp_path: Path
) -> None:
    registrar = f"sip:{kamailio.address}"
    x_push = "device-os=android;device-uid=fcm-token-f;allow-call-push=true"
    with start_app(
        tmp_path / "app", user="frank", registrar=registrar, transport="udp", x_push=x_push
    ) as app:
        registered = app.events_named("registered")[0]
        assert registered["code"] == 200 and registered["expires"] > 0
        (contact,) = kamailio.wait_for_contacts("frank", 1)
        ready = app.events_named("ready")[0]
        assert contact.address.startswith(f"sip:frank@{ready['local']}")
        assert contact.instance == f"<urn:uuid:{ready['instance']}>"
        assert contact.user_agent == "sipush-example-app (pjsua2)"

        call_and_message(kamailio, app, "frank", "udp", tmp_path)

        app.unregister()
        app.wait_for("unregistered")
        kamailio.wait_for_contacts("frank", 0)


def test_pjsua2_app_over_tcp_with_pn_params_answers_and_its_flow_drops_when_killed(
    kamailio: KamailioProcess, tmp_path: Path
) -> None:
    registrar = f"sip:{kamailio.address}"
    with start_app(
        tmp_path / "app",
        user="grace",
        registrar=registrar,
        transport="tcp",
        pn_provider="apns",
        pn_prid="apns-token-g",
        pn_param="ABCDE12345.com.example.app.voip",
    ) as app:
        (contact,) = kamailio.wait_for_contacts("grace", 1)
        assert (contact.uri_params["transport"] or "").lower() == "tcp"
        assert contact.uri_params["pn-prid"] == "apns-token-g"
        assert contact.uri_params["pn-param"] == "ABCDE12345.com.example.app.voip"

        call_and_message(kamailio, app, "grace", "tcp", tmp_path)

        app.kill()
        assert app.proc.returncode == -9

    # The app's TCP connection is gone and nobody listens on its port: delivery now fails.
    failed = sipp.run_sipp(
        "uac_message.xml",
        kamailio.address,
        workdir=tmp_path / "message-after-kill",
        transport="tcp",
        service="grace",
        keys=sipp.message_keys("anyone there?"),
        check=False,
        timeout=10,
    )
    assert failed.returncode != 0
    assert failed.final_responses(), failed.describe()
    assert failed.final_responses()[0].status == 477, failed.describe()  # send to next hop failed


def test_pjsua2_app_calls_a_registered_sipp_callee_through_kamailio(tmp_path: Path) -> None:
    with run_kamailio(tmp_path / "kamailio", record_route=True) as kamailio:
        app_calls_sipp_callee(kamailio, tmp_path)


def app_calls_sipp_callee(kamailio: KamailioProcess, tmp_path: Path) -> None:
    callee_port = free_port()
    sipp.run_sipp(
        "register_xpush.xml",
        kamailio.address,
        workdir=tmp_path / "callee-register",
        local_port=callee_port,
        keys=sipp.xpush_keys("henry", "token-h"),
        context=kamailio.describe,
    )
    registrar = f"sip:{kamailio.address}"
    # SIPp answers every request of a call to the address its INVITE came from, so the app's
    # BYE must pass through Kamailio too: a record-routing Kamailio.
    with (
        sipp.start_sipp(
            "uas_answer.xml", None, workdir=tmp_path / "callee", local_port=callee_port
        ) as callee,
        start_app(
            tmp_path / "app", user="ivy", registrar=registrar, proxy=registrar, no_instance=True
        ) as app,
    ):
        app.call(f"sip:henry@{LOOPBACK}")
        outgoing = app.wait_for("outgoing_call")
        app.wait_for("call_confirmed", call_id=outgoing["call_id"], direction="outgoing")
        app.hangup()
        ended = app.wait_for("call_disconnected", call_id=outgoing["call_id"])
        assert ended["direction"] == "outgoing"
        answered = callee.wait(context=lambda: kamailio.describe() + "\n" + app.describe())
    invite = answered.requests_received("INVITE")[0]
    assert invite.header("Call-ID") == outgoing["call_id"]
    assert [m.method for m in answered.requests_received()] == ["INVITE", "ACK", "BYE"]
    assert invite.header("Record-Route") is not None  # WITH_RR
