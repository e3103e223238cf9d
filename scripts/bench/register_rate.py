"""Figure 1: REGISTER relay rate, SIPp -> Kamailio alone vs SIPp -> sipush -> Kamailio (UDP).

One device per SIPp call (an injection CSV: user, push token), each REGISTER with an X-Push
header (``--style xpush``, the default) or RFC 8599 pn-* Contact params (``--style pn``). The
rate is stepped up until a step has a failed call or >= 0.1 % retransmissions; the last rate
that held is the figure. Every step starts fresh peers (Kamailio; sipush with an empty store).
Target: sipush in the path >= 50 % of Kamailio alone.

    python scripts/bench/register_rate.py              # full (about 2-3 minutes)
    python scripts/bench/register_rate.py --smoke      # one low rate, about 3 s per mode
    python scripts/bench/register_rate.py --duration 10 --out /tmp/bench
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
    RESULTS,
    Step,
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

from tests.peers.sipp import (
    csv_variant,
    device_instance,
    pn_keys,
    write_injection_csv,
    xpush_keys,
)

NAME = "register_rate"
TARGET = 0.5
KAMAILIO_RATES = (2000, 4000, 8000, 12000, 14000, 16000, 18000, 20000, 24000, 28000, 32000)
SIPUSH_RATES = (250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 4000, 6000, 8000)
SMOKE_RATE = 50.0
SMOKE_SECONDS = 3.0


def register_step(
    workdir: Path, rate: float, duration: float, *, via_sipush: bool, style: str
) -> Step:
    """One REGISTER step with fresh peers: ``rate``/s for ``duration`` s, one device per call."""
    calls = max(1, round(rate * duration))
    prefix = f"d{int(rate)}"
    if style == "pn":
        scenario = csv_variant("register_pn.xml", ["user", "pn_prid", "instance"], workdir)
        rows: list[tuple[str, ...]] = [
            (f"{prefix}u{i}", f"{i:064x}", device_instance(f"{prefix}u{i}", "bench"))
            for i in range(calls)
        ]
        keys = pn_keys("unused", "unused", expires=600)
    else:
        scenario = csv_variant("register_xpush.xml", ["user", "token"], workdir)
        rows = [(f"{prefix}u{i}", f"{i:064x}") for i in range(calls)]
        keys = xpush_keys("unused", "unused", expires=600)
    # Measure REGISTER -> 200 as the response time.
    text = scenario.read_text(encoding="iso-8859-1")
    text = text.replace('<recv response="200" timeout="8000"', '<recv response="200" rtd="true"')
    scenario.write_text(text, encoding="iso-8859-1")
    inf = write_injection_csv(workdir / "devices.csv", rows)
    with start_kamailio(workdir / "pbx") as pbx:
        if not via_sipush:
            return run_load(scenario, pbx.address, workdir / "sipp", rate=rate,
                            duration=duration, inf=inf, keys=keys)  # fmt: skip
        with start_sipush(workdir / "sipush", pbx.upstream("udp")) as proxy:
            return run_load(scenario, f"{proxy.host}:{proxy.port}", workdir / "sipp",
                            rate=rate, duration=duration, inf=inf, keys=keys)  # fmt: skip


def run(
    out: Path,
    *,
    smoke: bool = False,
    duration: float = 5.0,
    style: str = "xpush",
    kamailio_rates: Sequence[float] = KAMAILIO_RATES,
    sipush_rates: Sequence[float] = SIPUSH_RATES,
) -> dict[str, Any]:
    """Run both modes; write ``out/register_rate.json`` and ``.png``; return the summary row."""
    if smoke:
        kamailio_rates = sipush_rates = (SMOKE_RATE,)
        duration = SMOKE_SECONDS
    print(f"{NAME}: REGISTER over UDP, one device per call ({style}), {duration:g} s steps")
    with tempfile.TemporaryDirectory(prefix="bench-register-") as tmp:
        base = Path(tmp)
        best, modes = versus_kamailio(
            lambda rate, via: register_step(
                base / f"{'sipush' if via else 'kamailio'}-{rate:g}", rate, duration,
                via_sipush=via, style=style,
            ),
            kamailio_rates, sipush_rates, "sipush+kamailio",
        )  # fmt: skip
    row = ratio_row("1 REGISTER relay (UDP)", best, "sipush+kamailio", TARGET)
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "style": style,
            "duration_s": duration,
            "criterion": "0 failed calls and < 0.1 % retransmissions",
            "summary": row,
            "steps": {label: [s.summary() for s in steps] for label, steps in modes.items()},
            "machine": machine(),
        },
    )
    plot_steps(out, NAME, "Figure 1: REGISTER relay, UDP, one device per call", modes)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="one low rate, ~3 s per mode")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step")
    parser.add_argument("--style", choices=("xpush", "pn"), default="xpush")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    row = run(args.out, smoke=args.smoke, duration=args.duration, style=args.style)
    print_table([row])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
