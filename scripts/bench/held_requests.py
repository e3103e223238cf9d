"""Figure 4: 10,000 INVITEs held at once: sipush's memory per held request, and every one
released exactly once when its app wakes (UDP, iOS apps, APNs emulator).

Peers on 127.0.0.1: Kamailio (the PBX, with INVITE timers longer than the hold), ``sipush
serve`` in front of it (``hold_timeout`` longer than the run) pushing through the local APNs
emulator (its own process), a device farm of ``count`` sleeping iOS apps (``device_farm.py``)
and a SIPp caller (``uac_wake.xml``, one callee per CSV line) -> Kamailio -> sipush.

1. Every device registers through sipush; then sipush's memory is read (``VmRSS`` and
   ``RssAnon`` from ``/proc/<pid>/status``: no tracemalloc, which would slow and bloat it).
2. SIPp places ``count`` calls, one per device; sipush holds each INVITE and pushes. When the
   emulator has every push (no device has re-registered yet), the memory is read again:
   (held - before) / count = KB per held request. Target: <= 20 KB.
3. Every device re-registers; each held INVITE must reach its own device exactly once (the
   Call-ID its push named) and each caller must get that device's 486 Busy Here.

    python scripts/bench/held_requests.py              # 10,000 held (a few minutes)
    python scripts/bench/held_requests.py --smoke      # 200 held (seconds)
    python scripts/bench/held_requests.py --count 2000 --rate 200 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    SIPP_BUFF,
    machine,
    print_table,
    read_rtt,
    read_stats,
    summary_row,
    write_json,
)
from device_farm import DeviceFarm
from wakekit import (
    BUNDLE,
    cdf,
    latency_text,
    log_x,
    memory_kb,
    problems,
    pyplot,
    start_apns,
    start_pbx,
    start_wake_sipush,
    stats,
    stderr_position,
    timeline,
)

from tests.peers.sipp import csv_variant, start_sipp, write_injection_csv

NAME = "held_requests"
SCENARIO = Path(__file__).resolve().parent / "uac_wake.xml"
TARGET_KB = 20.0
SMOKE_COUNT = 200
SMOKE_RATE = 200.0


class Sampler:
    """Samples (seconds, RSS kB, pushes, INVITEs at devices) every ``interval`` s on a thread."""

    def __init__(self, pid: int, pushes: Any, farm: DeviceFarm, interval: float = 0.5) -> None:
        self.pid, self.pushes, self.farm, self.interval = pid, pushes, farm, interval
        self.samples: list[tuple[float, int, int, int]] = []
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic() - self._started, label))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = memory_kb(self.pid).get("VmRSS", 0)
                invites = self.farm.invites_received()
            except Exception:  # the process or the farm went away: stop sampling
                return
            at = time.monotonic() - self._started
            self.samples.append((at, rss, self.pushes.count("incomingCall"), invites))


def run(
    out: Path,
    *,
    smoke: bool = False,
    count: int = 10_000,
    rate: float = 250.0,
    hold_timeout: float = 900.0,
) -> list[dict[str, Any]]:
    """One bounded run; write ``out/held_requests.json`` and ``.png``; return the row."""
    if smoke:
        count, rate = SMOKE_COUNT, SMOKE_RATE
    place_seconds = count / rate
    # bounds: registration and waking at >= 50/s, placing at ``rate`` plus a minute of slack
    phase_timeout = 60 + count / 50
    print(f"{NAME}: {count} INVITEs held at once, placed at {rate:g}/s (UDP, iOS)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-held-") as tmp:
        base = Path(tmp)
        with (
            start_pbx(
                base / "pbx",
                shm_mb=512 if count > 2000 else 256,
                invite_timeout_s=int(hold_timeout) + 60,
            ) as pbx,
            start_apns(base / "apns") as apns,
            start_wake_sipush(
                base / "sipush", pbx.upstream("udp"), apns, hold_timeout=hold_timeout
            ) as sip,
        ):
            farm = DeviceFarm(
                count, proxy=(sip.host, sip.port), bundle=BUNDLE, prefix="h", auto_wake=False
            )
            farm.start()
            try:
                apns.listener = lambda push: farm.on_push(push.token, push.kind, push.call_id)
                with Sampler(sip.pid, apns, farm) as sampler:
                    registration = farm.register_all(timeout=phase_timeout)
                    print(f"  devices registered through sipush: {registration}", flush=True)
                    time.sleep(1.0)
                    sampler.mark("calls start")
                    before = memory_kb(sip.pid)
                    mark = stderr_position(sip)
                    scenario = csv_variant(SCENARIO, ["service"], base)
                    rows = [(d.user,) for d in farm.devices]
                    inf = write_injection_csv(base / "callees.csv", rows)
                    sipp_timeout = place_seconds + 2 * phase_timeout + 30
                    with start_sipp(
                        scenario, pbx.address, workdir=base / "caller", calls=count, rate=rate,
                        limit=count + 100, timeout=sipp_timeout, inf=inf, trace_messages=False,
                        extra_args=[*SIPP_BUFF, "-fd", "1", "-trace_rtt", "-rtt_freq", "1"],
                    ) as caller:  # fmt: skip
                        pushed = apns.wait_for(count, timeout=place_seconds + 60)
                        time.sleep(1.0)  # the last 100 Trying, timers, allocations settle
                        held = memory_kb(sip.pid)
                        sampler.mark("all held")
                        early = farm.invites_received()
                        held_seconds = time.monotonic()
                        print(
                            f"  pushes {pushed}/{count}; INVITEs at devices before any woke:"
                            f" {early}; RSS {before['VmRSS']} -> {held['VmRSS']} kB",
                            flush=True,
                        )
                        wake = farm.wake_all(timeout=phase_timeout)
                        sampler.mark("all woke")
                        received = farm.wait_for_invites(count, timeout=30)
                        print(
                            f"  woke: {wake}; INVITEs at devices {received}/{count}"
                            f" {time.monotonic() - held_seconds:.1f} s after all were held",
                            flush=True,
                        )
                        result = caller.wait(sipp_timeout + 10, check=False)
                    caller_stats = read_stats(result.stats_file)
                    caller_rtt = read_rtt(base / "caller")
                    time.sleep(0.5)
                    after = memory_kb(sip.pid)
                events = timeline(sip, mark)
                warnings = problems(sip, mark)
                devices = farm.snapshot()
            finally:
                farm.close()
    answered = int(caller_stats.get("SuccessfulCall(C)", "0") or 0)
    caller_failed = int(caller_stats.get("FailedCall(C)", "0") or 0)
    once = sum(1 for d in devices if len(d.invites) == 1)
    twice = sum(1 for d in devices if len(d.invites) > 1)
    missing = sum(1 for d in devices if not d.invites)
    own_call = sum(
        1 for d in devices if len(d.invites) == 1 and next(iter(d.invites))[0] in d.pushed_call_ids
    )
    released_ok = min(once, own_call, answered)
    failed = count - released_ok
    delta_kb = held["VmRSS"] - before["VmRSS"]
    kb_each = delta_kb / count
    anon_each = (held.get("RssAnon", 0) - before.get("RssAnon", 0)) / count
    all_released = released_ok == count and caller_failed == 0 and early == 0
    row = summary_row(
        f"4 held INVITEs: memory per held request ({count:,} held)",
        f"{kb_each:.1f} KB each (RSS +{delta_kb / 1024:.1f} MB); released {released_ok}/{count}",
        f"<= {TARGET_KB:g} KB per held request, every one released once",
        kb_each <= TARGET_KB and all_released,
        held=count,
        pushed=pushed,
        released=released_ok,
        failed=failed,
        kb_per_held=round(kb_each, 2),
        anon_kb_per_held=round(anon_each, 2),
    )
    lat = {e: [t.ms for t in events if t.event == e] for e in ("wake-push", "wake-release")}
    print(
        f"  devices with exactly one INVITE {once} (their own call {own_call}), more than one"
        f" {twice}, none {missing}; callers answered 486 {answered}, failed {caller_failed}",
        flush=True,
    )
    for event, values in lat.items():
        print(f"  sipush {event} with up to {count} held: {latency_text(stats(values))}")
    if warnings:
        print("  sipush warnings:", *warnings, sep="\n    ", flush=True)
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "count": count,
            "rate": rate,
            "hold_timeout_s": hold_timeout,
            "registration": registration,
            "wake": wake,
            "memory_kb": {"before": before, "held": held, "after": after},
            "kb_per_held": round(kb_each, 3),
            "anon_kb_per_held": round(anon_each, 3),
            "pushed": pushed,
            "invites_before_wake": early,
            "devices": {"once": once, "own_call": own_call, "more": twice, "none": missing},
            "callers": {
                "answered_486": answered,
                "failed": caller_failed,
                "returncode": result.returncode,
            },
            "caller_invite_to_486_ms": stats(caller_rtt),
            "latency_ms": {event: stats(values) for event, values in lat.items()},
            "samples_ms": {event: [round(v, 3) for v in vs] for event, vs in lat.items()},
            "rss_samples": sampler.samples,
            "marks": sampler.marks,
            "summary": [row],
            "sipush_warnings": warnings,
            "machine": machine(),
        },
    )
    plot(out, sampler, lat, count)
    return [row]


def plot(out: Path, sampler: Sampler, lat: dict[str, list[float]], count: int) -> Path:
    plt = pyplot()
    fig, (ax_mem, ax_lat) = plt.subplots(1, 2, figsize=(13, 4.5))
    if sampler.samples:
        at = [s[0] for s in sampler.samples]
        ax_mem.plot(at, [s[1] / 1024 for s in sampler.samples], color="C0", label="sipush RSS")
        ax_mem.set(xlabel="seconds", ylabel="RSS (MB)", title="memory while holding")
        ax_count = ax_mem.twinx()
        ax_count.plot(at, [s[2] for s in sampler.samples], "C1--", label="pushes (held)")
        ax_count.plot(at, [s[3] for s in sampler.samples], "C2:", label="released to devices")
        ax_count.set_ylabel("requests")
        for when, label in sampler.marks:
            ax_mem.axvline(when, color="grey", linewidth=0.8)
            ax_mem.annotate(label, (when, 0.02), xycoords=("data", "axes fraction"), fontsize=7)
        lines = [
            line
            for line in ax_mem.get_lines() + ax_count.get_lines()
            if not str(line.get_label()).startswith("_")
        ]
        ax_mem.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    for event, values in lat.items():
        cdf(ax_lat, values, f"sipush {event}")
    ax_lat.set(xlabel="ms (sipush's timeline)", ylabel="fraction", title="push and release")
    if ax_lat.has_data():
        log_x(ax_lat)
        ax_lat.legend(fontsize=8)
    for ax in (ax_mem, ax_lat):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Figure 4: {count:,} INVITEs held at once (target <= {TARGET_KB:g} KB each)")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_COUNT} held, seconds")
    parser.add_argument("--count", type=int, default=10_000, help="INVITEs held at once")
    parser.add_argument("--rate", type=float, default=250.0, help="calls placed per second")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    rows = run(args.out, smoke=args.smoke, count=args.count, rate=args.rate)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
