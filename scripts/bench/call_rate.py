"""Figure 2: calls to a live app, INVITE-180-200-ACK-BYE, with and without sipush (UDP).

SIPp UAC -> Kamailio -> (sipush ->) SIPp UAS. The UAS's address is registered first (through
sipush, or straight at Kamailio for the baseline) from the port the UAS then listens on, as an
Android device (policy on-failure: a live app is called at once, no push). The rate is stepped
up until a step has a failed call or >= 0.1 % retransmissions; the last rate that held is the
figure. Every step starts fresh peers. Target: with sipush >= 40 % of Kamailio alone.

    python scripts/bench/call_rate.py              # full (about 2-3 minutes)
    python scripts/bench/call_rate.py --smoke      # one low rate, about 3 s per mode
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOOPBACK,
    RESULTS,
    SIPP_BUFF,
    Step,
    free_port,
    machine,
    plot_steps,
    print_table,
    ratio_row,
    run_load,
    start_kamailio,
    start_sipush,
    versus_kamailio,
    write_json,
)

from tests.peers.sipp import run_sipp, start_sipp, xpush_keys

NAME = "call_rate"
TARGET = 0.4
CALLEE = "callee"
KAMAILIO_RATES = (300, 600, 900, 1200, 1500, 1800, 2100, 2400, 3000)
SIPUSH_RATES = (100, 200, 400, 600, 700, 800, 900, 1000, 1200, 1500, 1800)
SMOKE_RATE = 20.0
SMOKE_SECONDS = 3.0


def call_step(workdir: Path, rate: float, duration: float, *, via_sipush: bool) -> Step:
    """One call step with fresh peers: ``rate`` calls/s for ``duration`` s."""
    calls = max(1, round(rate * duration))
    uas_port = free_port()
    keys = xpush_keys(CALLEE, "f" * 64, device_os="android", expires=3600)
    with start_kamailio(workdir / "pbx") as pbx:

        def register(registrar: str) -> None:
            run_sipp("register_xpush.xml", registrar, workdir=workdir / "register", keys=keys,
                     local_port=uas_port, timeout=10)  # fmt: skip

        def load() -> Step:
            with start_sipp(
                "uas_answer.xml",
                None,
                workdir=workdir / "uas",
                local_port=uas_port,
                local_ip=LOOPBACK,
                calls=calls,
                limit=20000,
                timeout=duration + 25.0,
                trace_messages=False,
                extra_args=SIPP_BUFF,
            ):
                return run_load("uac_call.xml", pbx.address, workdir / "uac", rate=rate,
                                duration=duration, service=CALLEE, pause_ms=0)  # fmt: skip

        if not via_sipush:
            register(pbx.address)
            return load()
        with start_sipush(workdir / "sipush", pbx.upstream("udp")) as proxy:
            register(f"{proxy.host}:{proxy.port}")
            return load()


def run(
    out: Path,
    *,
    smoke: bool = False,
    duration: float = 5.0,
    kamailio_rates: Sequence[float] = KAMAILIO_RATES,
    sipush_rates: Sequence[float] = SIPUSH_RATES,
) -> dict[str, Any]:
    """Run both modes; write ``out/call_rate.json`` and ``.png``; return the summary row."""
    if smoke:
        kamailio_rates = sipush_rates = (SMOKE_RATE,)
        duration = SMOKE_SECONDS
    print(f"{NAME}: INVITE-180-200-ACK-BYE over UDP to a live SIPp UAS, {duration:g} s steps")
    with tempfile.TemporaryDirectory(prefix="bench-call-") as tmp:
        base = Path(tmp)
        best, modes = versus_kamailio(
            lambda rate, via: call_step(
                base / f"{'sipush' if via else 'kamailio'}-{rate:g}", rate, duration,
                via_sipush=via,
            ),
            kamailio_rates, sipush_rates, "kamailio+sipush",
        )  # fmt: skip
    row = ratio_row("2 calls to live apps (UDP)", best, "kamailio+sipush", TARGET)
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "duration_s": duration,
            "criterion": "0 failed calls and < 0.1 % retransmissions (UAC side)",
            "latency": "INVITE -> 200 at the caller",
            "summary": row,
            "steps": {label: [s.summary() for s in steps] for label, steps in modes.items()},
            "machine": machine(),
        },
    )
    plot_steps(out, NAME, "Figure 2: INVITE-180-200-ACK-BYE to a live app, UDP", modes)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="one low rate, ~3 s per mode")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    row = run(args.out, smoke=args.smoke, duration=args.duration)
    print_table([row])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
