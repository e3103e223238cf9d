"""Calls and messages through Kamailio and sipush to live pjsua2 apps (issue #3 acceptance).

INVITE: SIPp caller -> Kamailio -> (Route: sipush's Path) -> sipush -> the app over its own flow;
the app answers, ACK and BYE follow the route set sipush Record-Routed. MESSAGE takes the same
way. An app's own call goes app -> sipush -> Kamailio -> sipush -> the callee app.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest

from tests.conftest import free_port, run_sipush
from tests.e2e_kit import Deployment, deployment
from tests.peers.kamailio import run_kamailio
from tests.peers.pjsua2_app import Pjsua2App, start_app
from tests.peers.sipp import message_keys, run_sipp, start_sipp, xpush_keys

TOKEN = "3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(Path(tmp_path_factory.mktemp("e2e-calls"))) as dep:
        yield dep


def push_app(
    pbx: Deployment, workdir: Path, user: str, transport: str
) -> ContextManager[Pjsua2App]:
    """A pjsua2 app that registers through sipush with an X-Push header."""
    return start_app(
        workdir,
        user=user,
        registrar=f"sip:{pbx.pbx.address}",
        proxy=pbx.proxy_uri(transport),
        transport=transport,
        x_push=f"device-os=ios;device-uid={TOKEN};app-id=com.example.app",
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_pbx_call_reaches_the_app_and_completes(
    pbx: Deployment, transport: str, tmp_path: Path
) -> None:
    user = f"callee-{transport}"
    with push_app(pbx, tmp_path / "app", user, transport) as app:
        caller = run_sipp(
            "uac_call.xml", pbx.pbx.address, workdir=tmp_path / "caller", service=user, pause_ms=300
        )
        assert [r.status for r in caller.final_responses()] == [200, 200]  # INVITE, BYE
        incoming = app.wait_for("incoming_call")
        assert "Record-Route: <sip:" in incoming["request"], "sipush stays in the dialog"
        assert incoming["src"].startswith("127.0.0.1:"), incoming
        app.wait_for("call_confirmed")  # the ACK reached the app
        app.wait_for("call_disconnected")  # and so did the BYE
        assert len(app.events_named("incoming_call")) == 1, "the INVITE arrived exactly once"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_pbx_message_reaches_the_app(pbx: Deployment, transport: str, tmp_path: Path) -> None:
    user = f"reader-{transport}"
    with push_app(pbx, tmp_path / "app", user, transport) as app:
        sender = run_sipp(
            "uac_message.xml", pbx.pbx.address, workdir=tmp_path / "sender", service=user,
            keys=message_keys("see you at 8"),
        )  # fmt: skip
        assert sender.final_responses()[-1].status in (200, 202)
        message = app.wait_for("message_received")
        assert message["body"] == "see you at 8"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_app_call_goes_through_the_pbx_and_completes(
    pbx: Deployment, transport: str, tmp_path: Path
) -> None:
    with (
        push_app(pbx, tmp_path / "callee", f"bob-{transport}", transport) as callee,
        push_app(pbx, tmp_path / "caller", f"alice-{transport}", transport) as caller,
    ):
        caller.call(f"sip:bob-{transport}@{pbx.pbx.address}")
        callee.wait_for("incoming_call")
        caller.wait_for("call_confirmed")
        callee.wait_for("call_confirmed")
        caller.hangup()  # BYE from the app side this time
        callee.wait_for("call_disconnected")
        caller.wait_for("call_disconnected")


def test_cancel_reaches_the_ringing_app(pbx: Deployment, tmp_path: Path) -> None:
    """§16.10: sipush answers the CANCEL, cancels its branch, and relays the app's 487."""
    user = "ringer"
    with start_app(
        tmp_path / "app",
        user=user,
        registrar=f"sip:{pbx.pbx.address}",
        proxy=pbx.proxy_uri("udp"),
        x_push=f"device-os=ios;device-uid={TOKEN}",
        answer_code=180,
    ) as app:
        caller = run_sipp(
            "uac_cancel.xml", pbx.pbx.address, workdir=tmp_path / "caller", service=user
        )
        assert [r.status for r in caller.final_responses()] == [200, 487]
        app.wait_for("incoming_call")
        disconnected = app.wait_for("call_disconnected")
        assert disconnected["code"] == 487


def test_calls_reach_an_app_after_sipush_restarts(tmp_path: Path) -> None:
    """The flow-token key is kept in sipush.key: the Path the PBX stored still verifies after a
    restart, so a UDP app registered before it is reached after it (no 403)."""
    with run_kamailio(tmp_path / "pbx") as kamailio:
        port = free_port()
        app_port = free_port()
        args = ("--upstream", kamailio.upstream("udp"))
        with run_sipush(tmp_path, port, *args):
            run_sipp(
                "register_xpush.xml", f"127.0.0.1:{port}", workdir=tmp_path / "reg",
                keys=xpush_keys("sleepy", TOKEN), local_port=app_port,
            )  # fmt: skip
        assert (tmp_path / "sipush.key").stat().st_mode & 0o077 == 0, "the key is private"
        with (
            run_sipush(tmp_path, port, *args),
            start_sipp(
                "uas_answer.xml", None, workdir=tmp_path / "uas", local_port=app_port
            ) as app,
        ):
            caller = run_sipp(
                "uac_call.xml", kamailio.address, workdir=tmp_path / "caller", service="sleepy"
            )
            assert [r.status for r in caller.final_responses()] == [200, 200]
            app.wait(15)
