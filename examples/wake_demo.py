"""A local demo of the wake path: Kamailio (the PBX) + sipush + a local APNs service + the
example pjsua2 app, which is killed and relaunched by its push, then answers a SIPp call.

    bash scripts/test.sh --co -q >/dev/null   # or: pip install -e '.[dev]' and apt-get install
                                              #     kamailio sip-tester, once
    python examples/wake_demo.py

Every step is printed. Nothing leaves 127.0.0.1; throwaway certificates and keys are made in a
temporary directory. It reuses the repository's test harnesses (tests/peers, tests/wake_kit), so
run it from a clone of the repository.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, run_sipush  # noqa: E402
from tests.peers.kamailio import run_kamailio  # noqa: E402
from tests.peers.pjsua2_app import start_app  # noqa: E402
from tests.peers.sipp import start_sipp  # noqa: E402
from tests.wake_kit import BUNDLE, apns_emulator  # noqa: E402

TOKEN = "5e1f9a0c3b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sipush-demo-") as directory:
        work = Path(directory)
        with apns_emulator(work / "apns") as apns, run_kamailio(work / "pbx") as pbx:
            say(f"APNs emulator on {apns.emulator.endpoint}, Kamailio (the PBX) on {pbx.address}")
            (work / "sipush.toml").write_text(apns.config(hold_timeout=15))
            port = free_port()
            args = ("--upstream", pbx.upstream("udp"), "--config", str(work / "sipush.toml"))
            with run_sipush(work, port, *args):
                say(
                    f"sipush on 127.0.0.1:{port}, relaying to the PBX, pushing through the emulator"
                )
                app_options = {
                    "user": "alice", "registrar": f"sip:{pbx.address}", "transport": "tcp",
                    "proxy": f"sip:127.0.0.1:{port};transport=tcp;lr",
                    "x_push": f"device-os=ios;device-uid={TOKEN};app-id={BUNDLE}",
                    "instance": str(uuid.uuid4()),
                }  # fmt: skip
                with start_app(work / "app1", **app_options) as app:  # type: ignore[arg-type]
                    say("the app registered through sipush with its push token (X-Push)")
                    app.kill()
                say("the OS killed the app: its TCP connection is gone")
                with start_sipp(
                    "uac_call.xml",
                    pbx.address,
                    workdir=work / "caller",
                    service="alice",
                    pause_ms=1000,
                ) as caller:
                    say("SIPp calls alice through the PBX")
                    [push] = apns.wait_for(1)
                    say(f"APNs got a {push.headers['apns-push-type']} push: {push.payload}")
                    with start_app(work / "app2", **app_options) as app:  # type: ignore[arg-type]
                        say(
                            "on the push the app was relaunched (as iOS would); it registered again"
                        )
                        incoming = app.wait_for("incoming_call")
                        say(f"sipush released the held INVITE to the app: {incoming['call_id']}")
                        app.wait_for("call_confirmed")
                        say("the app answered; the call is up")
                        app.wait_for("call_disconnected")
                        result = caller.wait(30)
                    statuses = [r.status for r in result.final_responses()]
                    say(f"the caller saw {statuses} (INVITE, BYE)")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
