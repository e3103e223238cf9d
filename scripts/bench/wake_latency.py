"""Figure 3: the wake latency sipush adds, at 100 wakes/s (UDP, iOS apps, APNs emulator).

Peers on 127.0.0.1: Kamailio (the PBX), ``sipush serve`` in front of it pushing through the
local APNs emulator (its own process), a device farm of sleeping iOS apps
(``device_farm.py``, one per call), and a SIPp caller (``uac_wake.xml``, one callee per CSV
line) -> Kamailio -> sipush. For each call sipush holds the INVITE and pushes; on the push the
device re-registers through sipush, sipush releases the INVITE to it and the device answers
486 Busy Here, which the caller must get.

Measured by sipush itself (``sipush.timeline`` info lines on its stderr):

(a) ``wake-push``: the INVITE reaching sipush -> its push handed to the APNs client;
(b) ``wake-release``: the PBX's 2xx to the re-REGISTER reaching sipush -> the held INVITE
    forwarded to the app.

Targets: p50 <= 1 ms and p99 <= 5 ms for each. Also recorded, seen from outside: the caller's
INVITE -> 486 (the whole wake round trip) and, at the device, push -> INVITE.

    python scripts/bench/wake_latency.py               # 100 wakes/s for 12 s
    python scripts/bench/wake_latency.py --smoke       # 20 wakes/s for 2 s
    python scripts/bench/wake_latency.py --rate 50 --duration 10 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, print_table, run_load, summary_row, write_json
from device_farm import DeviceFarm
from wakekit import (
    BUNDLE,
    cdf,
    latency_text,
    log_x,
    problems,
    pyplot,
    start_apns,
    start_pbx,
    start_wake_sipush,
    stats,
    stderr_position,
    timeline,
)

from tests.peers.sipp import csv_variant, write_injection_csv

NAME = "wake_latency"
SCENARIO = Path(__file__).resolve().parent / "uac_wake.xml"
P50_TARGET_MS = 1.0
P99_TARGET_MS = 5.0
TARGET_TEXT = f"p50 <= {P50_TARGET_MS:g} ms, p99 <= {P99_TARGET_MS:g} ms"
FIGURES = {
    "wake-push": "3a wake: INVITE -> push sent",
    "wake-release": "3b wake: re-REGISTER 2xx -> INVITE released",
}
SMOKE_RATE = 20.0
SMOKE_SECONDS = 2.0


def run(
    out: Path, *, smoke: bool = False, rate: float = 100.0, duration: float = 12.0
) -> list[dict[str, Any]]:
    """One bounded run; write ``out/wake_latency.json`` and ``.png``; return the two rows."""
    if smoke:
        rate, duration = SMOKE_RATE, SMOKE_SECONDS
    calls = max(1, round(rate * duration))
    print(f"{NAME}: {calls} wakes at {rate:g}/s over UDP (iOS, APNs emulator)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-wake-") as tmp:
        base = Path(tmp)
        with (
            start_pbx(base / "pbx") as pbx,
            start_apns(base / "apns") as apns,
            start_wake_sipush(base / "sipush", pbx.upstream("udp"), apns, hold_timeout=30) as sip,
        ):
            farm = DeviceFarm(calls, proxy=(sip.host, sip.port), bundle=BUNDLE, prefix="w")
            farm.start()
            try:
                apns.listener = lambda push: farm.on_push(push.token, push.kind, push.call_id)
                registration = farm.register_all(timeout=60 + calls / 50)
                print(f"  {calls} devices registered through sipush: {registration}", flush=True)
                mark = stderr_position(sip)
                scenario = csv_variant(SCENARIO, ["service"], base)
                inf = write_injection_csv(base / "callees.csv", [(d.user,) for d in farm.devices])
                step = run_load(
                    scenario, pbx.address, base / "caller", rate=rate, duration=duration,
                    limit=max(100, calls), inf=inf,
                )  # fmt: skip
                time.sleep(0.3)  # the last timeline lines
                events = timeline(sip, mark)
                warnings = problems(sip, mark)
                devices = farm.snapshot()
                pushes = apns.count("incomingCall")
            finally:
                farm.close()
    samples = {
        event: [e.ms for e in events if e.event == event] for event in ("wake-push", "wake-release")
    }
    push_to_invite = []
    for device in devices:
        if device.push_seen and device.invites:
            first_invite = min(invite.arrived for invite in device.invites.values())
            push_to_invite.append((first_invite - device.push_seen[0]) * 1000)
    released = sum(1 for d in devices if len(d.invites) == 1)
    rows = []
    for event, figure in FIGURES.items():
        lat = stats(samples[event])
        met = bool(lat) and lat["p50"] <= P50_TARGET_MS and lat["p99"] <= P99_TARGET_MS
        rows.append(
            summary_row(
                figure, latency_text(lat), TARGET_TEXT, met,
                samples=len(samples[event]), p50_ms=lat.get("p50"), p99_ms=lat.get("p99"),
                max_ms=lat.get("max"), rate=rate, calls=calls, answered=step.successful,
            )
        )  # fmt: skip
    outside = {
        "caller INVITE -> 486 (SIPp rtd)": step.latency_ms,
        "device: push -> re-REGISTER -> INVITE": stats(push_to_invite),
    }
    print(
        f"  callers answered 486: {step.successful}/{calls} (failed {step.failed},"
        f" retrans {step.retransmissions}); pushes {pushes}; released once {released}",
        flush=True,
    )
    for label, values in outside.items():
        print(f"  {label}: {latency_text(values)}", flush=True)
    if warnings:
        print("  sipush warnings:", *warnings, sep="\n    ", flush=True)
    if not events:
        print("  sipush printed no sipush.timeline lines: no sipush-side latencies", flush=True)
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "rate": rate,
            "duration_s": duration,
            "calls": calls,
            "registration": registration,
            "caller": step.summary(),
            "pushes": pushes,
            "released_once": released,
            "latency_ms": {event: stats(values) for event, values in samples.items()},
            "outside_ms": outside,
            "samples_ms": {event: [round(v, 3) for v in vs] for event, vs in samples.items()},
            "summary": rows,
            "sipush_warnings": warnings,
            "machine": machine(),
        },
    )
    seen_outside = {
        "caller INVITE -> 486": step.samples_ms,
        "device: push -> re-REGISTER -> INVITE": push_to_invite,
    }
    plot(out, samples, seen_outside, rate)
    return rows


def plot(
    out: Path, samples: dict[str, list[float]], outside: dict[str, list[float]], rate: float
) -> Path:
    plt = pyplot()
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=(13, 4.5))
    for event, figure in FIGURES.items():
        cdf(ax_in, samples[event], figure[3:])
    for limit, style in ((P50_TARGET_MS, ":"), (P99_TARGET_MS, "--")):
        ax_in.axvline(limit, color="grey", linestyle=style, linewidth=1)
    ax_in.axhline(0.5, color="grey", linestyle=":", linewidth=0.8)
    ax_in.axhline(0.99, color="grey", linestyle="--", linewidth=0.8)
    ax_in.set(xlabel="ms (sipush's timeline)", ylabel="fraction", title="added by sipush")
    for label, values in outside.items():
        cdf(ax_out, values, label)
    ax_out.set(xlabel="ms", ylabel="fraction", title="seen from outside")
    for ax in (ax_in, ax_out):
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            log_x(ax)
            ax.legend(fontsize=8)
    fig.suptitle(f"Figure 3: wake latency at {rate:g} wakes/s (targets: p50 1 ms, p99 5 ms)")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="20 wakes/s for 2 s")
    parser.add_argument("--rate", type=float, default=100.0, help="wakes (calls) per second")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of calls")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    rows = run(args.out, smoke=args.smoke, rate=args.rate, duration=args.duration)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
