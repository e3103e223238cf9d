"""Figure 6: push throughput through sipush vs the raw aioapns send rate, to the same emulator.

Peers on 127.0.0.1: the local APNs emulator in its own process (token auth, one JSON line per
push), Kamailio (the PBX), ``sipush serve`` in front of it pushing through the emulator, a
device farm of sleeping iOS apps (``device_farm.py``) and a SIPp caller (``uac_wake.xml``).

* Raw: an ``aioapns.APNs`` client in this process, with the credentials, endpoint, CA and
  connection limit sipush uses (``max_connections=10``; the same protocol class, from
  ``sipush.push.apns``), sends ``raw_count`` VoIP pushes with 10, 100, then 500 in flight;
  pushes/s = answered 200 / time from the first send to the last answer, the best of the three.
  (All 5,000 at once is not a usable baseline: aioapns gave up on some of them with
  MaxAttemptsExceeded here.)
* Through sipush: the devices register, then sleep. SIPp sends INVITEs at a stepped rate
  (``duration`` s per step, devices called round robin); sipush holds each and pushes. A step
  counts the incomingCall pushes arriving at the emulator: it holds when every one arrived
  within ``duration`` + 10 s and their rate, (pushes - 1) / (last - first arrival), is >= 90 %
  of the offered rate. After each step every device re-registers, which releases everything
  held (the devices answer 486), so the next step starts clean; the steps stop at the first
  that does not hold.

Figure: the highest push rate measured in a step where every push arrived, against raw.
Target: >= 50 % of raw. CPU seconds of sipush and of the emulator per step are recorded too
(``/proc/<pid>/stat``), to tell which one was the limit.

    python scripts/bench/push_throughput.py            # steps of 4 s (about a minute)
    python scripts/bench/push_throughput.py --smoke    # one 2 s step at 50/s
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, SIPP_BUFF, machine, print_table, read_stats, summary_row, write_json
from device_farm import DeviceFarm
from wakekit import (
    BUNDLE,
    ApnsProcess,
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

from tests.peers.sipp import SippProcess, csv_variant, start_sipp, write_injection_csv
from tests.wake_kit import KEY_ID, TEAM_ID

NAME = "push_throughput"
SCENARIO = Path(__file__).resolve().parent / "uac_wake.xml"
TARGET = 0.5
RATES = (200, 400, 600, 800, 1000, 1100, 1200, 1300, 1500, 2000)
HOLD_RATIO = 0.9
DRAIN_SECONDS = 10.0
SMOKE_RATES = (50,)
SMOKE_SECONDS = 2.0
SMOKE_DEVICES = 20
SMOKE_RAW = 200
RAW_CONCURRENCY = (10, 100, 500)  # pushes in flight; the best is the baseline


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- raw aioapns ----------------------------------------------------------------------------------


async def _raw(
    apns: ApnsProcess, tokens: Sequence[str], count: int, concurrencies: Sequence[int]
) -> dict[str, Any]:
    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.common import NotificationResult

    from sipush.push.apns import ApnsAppConfig, aioapns_protocol_class

    app = ApnsAppConfig(
        app_id=BUNDLE, team_id=TEAM_ID, key_id=KEY_ID, key_file=str(apns.key_file),
        endpoint=apns.endpoint, ca_file=str(apns.ca_file),
    )  # fmt: skip

    async def quiet(request: NotificationRequest, result: NotificationResult) -> None:
        """aioapns logs every non-200 at ERROR; the counts below report them."""

    client = APNs(
        key=apns.key_file.read_text(), key_id=KEY_ID, team_id=TEAM_ID, topic=BUNDLE,
        use_sandbox=False, ssl_context=ssl.create_default_context(cafile=str(apns.ca_file)),
        max_connections=10, max_connection_attempts=2, err_func=quiet,
    )  # fmt: skip
    client.pool.protocol_class = aioapns_protocol_class(app)

    def request(n: int) -> NotificationRequest:
        call_id = f"raw-{n}@127.0.0.1"
        return NotificationRequest(
            device_token=tokens[n % len(tokens)],
            message={
                "type": "incomingCall",
                "aor": f"sip:raw{n}@127.0.0.1",
                "call_id": call_id,
                "caller_name": "SIPp caller",
                "caller_number": "caller",
            },
            notification_id=str(uuid.uuid4()),
            time_to_live=30,
            priority=10,
            collapse_key=call_id,
            push_type=PushType.VOIP,
            apns_topic=f"{BUNDLE}.voip",
        )

    async def burst(concurrency: int) -> dict[str, Any]:
        """``count`` pushes, ``concurrency`` in flight at a time."""
        requests = iter([request(n) for n in range(count)])
        answers: list[Any] = []

        async def worker() -> None:
            for item in requests:
                try:
                    answers.append(await client.send_notification(item))
                except Exception as error:  # MaxAttemptsExceeded, ConnectionClosed ...
                    answers.append(error)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 120)
        elapsed = time.perf_counter() - started
        ok = sum(1 for a in answers if getattr(a, "is_successful", False))
        return {
            "concurrency": concurrency,
            "count": count,
            "ok": ok,
            "seconds": round(elapsed, 3),
            "rate": round(ok / elapsed, 1),
        }

    try:
        await asyncio.gather(*(client.send_notification(request(n)) for n in range(10)))
        runs = [await burst(concurrency) for concurrency in concurrencies]
    finally:
        client.pool.close()
        await asyncio.sleep(0)
    best = max(runs, key=lambda r: r["rate"])
    return {**best, "runs": runs}


def raw_rate(
    apns: ApnsProcess, tokens: Sequence[str], count: int, concurrencies: Sequence[int]
) -> dict[str, Any]:
    """``count`` pushes from a plain aioapns client, at each concurrency (pushes in flight);
    the best run's pushes/s, and every run."""
    # aioapns logs every push it gives up on at ERROR; the runs' "ok" counts report them
    logging.getLogger("aioapns").setLevel(logging.CRITICAL)
    emulator_cpu = cpu_seconds(apns.proc.pid)
    client_cpu = time.process_time()
    # the loop sipush itself runs on ([server] event_loop = "auto": uvloop when installed)
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
        loop_name = "uvloop"
    except ImportError:
        loop_factory, loop_name = None, "asyncio"
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(_raw(apns, tokens, count, concurrencies))
    result["event_loop"] = loop_name
    result["emulator_cpu_s"] = round(cpu_seconds(apns.proc.pid) - emulator_cpu, 2)
    result["client_cpu_s"] = round(time.process_time() - client_cpu, 2)
    return result


# --- through sipush -------------------------------------------------------------------------------


def finish(caller: SippProcess, timeout: float) -> int:
    """Wait for SIPp (at most ``timeout`` s; then stop it by its PID); its exit status."""
    try:
        return caller.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        caller.stop()
        return -1


def sipush_step(
    base: Path,
    apns: ApnsProcess,
    sipush: Any,
    pbx: Any,
    farm: DeviceFarm,
    rate: float,
    duration: float,
) -> dict[str, Any]:
    """One step: ``rate`` INVITEs/s for ``duration`` s; count the pushes; wake everything."""
    calls = max(1, round(rate * duration))
    workdir = base / f"step-{rate:g}"
    workdir.mkdir(parents=True)
    scenario = csv_variant(SCENARIO, ["service"], workdir)
    users = [d.user for d in farm.devices]
    inf = write_injection_csv(
        workdir / "callees.csv", [(users[n % len(users)],) for n in range(calls)]
    )
    first_push = apns.total()
    already = apns.count("incomingCall")
    mark = stderr_position(sipush)
    cpu = {"sipush": cpu_seconds(sipush.pid), "emulator": cpu_seconds(apns.proc.pid)}
    started = time.monotonic()
    with start_sipp(
        scenario, pbx.address, workdir=workdir / "caller", calls=calls, rate=rate,
        limit=calls + 100, timeout=duration + DRAIN_SECONDS + 120, inf=inf,
        trace_messages=False, extra_args=[*SIPP_BUFF, "-fd", "1"],
    ) as caller:  # fmt: skip
        apns.wait_for(already + calls, timeout=duration + DRAIN_SECONDS)
        waited = time.monotonic() - started
        cpu = {
            "sipush": round(cpu_seconds(sipush.pid) - cpu["sipush"], 2),
            "emulator": round(cpu_seconds(apns.proc.pid) - cpu["emulator"], 2),
        }
        pushes = [p for p in apns.since(first_push) if p.kind == "incomingCall"]
        wake = farm.wake_all(timeout=60)
        returncode = finish(caller, 60)
    sipp_stats = read_stats(workdir / "caller" / "stats.csv")
    arrived = len(pushes)
    span = (pushes[-1].arrived - pushes[0].arrived) if arrived > 1 else 0.0
    achieved = round((arrived - 1) / span, 1) if span > 0 else 0.0
    delivered = sum(1 for p in pushes if p.status == 200)
    events = [e.ms for e in timeline(sipush, mark) if e.event == "wake-push"]
    step: dict[str, Any] = {
        "rate": rate,
        "calls": calls,
        "pushes": arrived,
        "delivered": delivered,
        "achieved": achieved,
        "span_s": round(span, 3),
        "waited_s": round(waited, 2),
        "cpu_s": cpu,
        "wake": wake,
        "answered": int(sipp_stats.get("SuccessfulCall(C)", "0") or 0),
        "failed": int(sipp_stats.get("FailedCall(C)", "0") or 0),
        "sipp_returncode": returncode,
        "wake_push_ms": stats(events),
        "warnings": problems(sipush, mark),
    }
    step["passed"] = arrived == calls and delivered == calls and achieved >= HOLD_RATIO * rate
    step["samples_ms"] = events
    print(
        f"  through sipush {rate:>6g}/s  pushes {arrived}/{calls} at {achieved:g}/s"
        f"  sipush cpu {cpu['sipush']:.1f} s, emulator {cpu['emulator']:.1f} s in {waited:.1f} s"
        f"  INVITE->push {latency_text(step['wake_push_ms'])}"
        f"  callers 486 {step['answered']}/{calls}  {'ok' if step['passed'] else 'FAIL'}",
        flush=True,
    )
    return step


def run(
    out: Path,
    *,
    smoke: bool = False,
    duration: float = 4.0,
    rates: Sequence[float] = RATES,
    devices: int = 300,
    raw_count: int = 5000,
) -> list[dict[str, Any]]:
    """Raw rate, then the sipush steps; write ``out/push_throughput.json`` and ``.png``."""
    if smoke:
        rates, duration, devices, raw_count = SMOKE_RATES, SMOKE_SECONDS, SMOKE_DEVICES, SMOKE_RAW
    print(f"{NAME}: raw aioapns ({raw_count} pushes) vs through sipush ({duration:g} s steps)")
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pushes-") as tmp:
        base = Path(tmp)
        with start_apns(base / "apns") as apns:
            tokens = [f"{n:064x}" for n in range(1, 101)]
            raw = raw_rate(apns, tokens, raw_count, RAW_CONCURRENCY)
            print(
                f"  raw aioapns: best {raw['rate']}/s ({raw['concurrency']} in flight);"
                f" {[(r['concurrency'], r['ok'], r['rate']) for r in raw['runs']]}"
                f" (client cpu {raw['client_cpu_s']} s, emulator cpu {raw['emulator_cpu_s']} s)",
                flush=True,
            )
            with (
                start_pbx(base / "pbx") as pbx,
                start_wake_sipush(
                    base / "sipush", pbx.upstream("udp"), apns, hold_timeout=300
                ) as sip,
            ):
                farm = DeviceFarm(
                    devices, proxy=(sip.host, sip.port), bundle=BUNDLE, prefix="p", auto_wake=False
                )
                farm.start()
                try:
                    registration = farm.register_all(timeout=60)
                    print(f"  {devices} devices registered through sipush: {registration}")
                    for rate in rates:
                        step = sipush_step(base, apns, sip, pbx, farm, rate, duration)
                        steps.append(step)
                        if not step["passed"]:
                            break
                finally:
                    farm.close()
    held = [s for s in steps if s["pushes"] == s["calls"]]
    best = max((s["achieved"] for s in held), default=0.0)
    ratio = round(best / raw["rate"], 3) if raw["rate"] else 0.0
    row = summary_row(
        "6 push throughput through sipush (APNs emulator)",
        f"{best:g} pushes/s ({ratio:.0%} of raw)",
        f">= {TARGET:.0%} of raw",
        ratio >= TARGET,
        baseline=f"raw aioapns {raw['rate']:g} pushes/s",
        sipush=best,
        raw=raw["rate"],
        ratio=ratio,
    )
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "duration_s": duration,
            "devices": devices,
            "criterion": (
                f"every push arrived within duration + {DRAIN_SECONDS:g} s at >= "
                f"{HOLD_RATIO:.0%} of the offered rate"
            ),
            "figure": "highest push rate of a step in which every push arrived",
            "raw": raw,
            "registration": registration,
            "steps": [{k: v for k, v in s.items() if k != "samples_ms"} for s in steps],
            "summary": [row],
            "machine": machine(),
        },
    )
    plot(out, raw, steps)
    return [row]


def plot(out: Path, raw: dict[str, Any], steps: list[dict[str, Any]]) -> Path:
    plt = pyplot()
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(13, 4.5))
    offered = [s["rate"] for s in steps]
    ax_rate.plot(offered, [s["achieved"] for s in steps], marker="o", label="through sipush")
    for s in steps:
        if not s["passed"]:
            ax_rate.plot([s["rate"]], [s["achieved"]], "rx", markersize=10)
    ax_rate.axhline(raw["rate"], color="C1", label=f"raw aioapns ({raw['rate']:g}/s)")
    ax_rate.axhline(raw["rate"] * TARGET, color="C1", linestyle="--", label="target: 50 % of raw")
    if offered:
        ax_rate.plot(offered, offered, color="grey", linestyle=":", label="offered")
    ax_rate.set(xlabel="INVITEs/s offered", ylabel="pushes/s at the emulator", title="rate")
    for s in steps:
        cdf(ax_lat, s["samples_ms"], f"{s['rate']:g}/s")
    ax_lat.set(xlabel="ms (sipush's wake-push)", ylabel="fraction", title="INVITE -> push sent")
    for ax in (ax_rate, ax_lat):
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    if ax_lat.has_data():
        log_x(ax_lat)
    fig.suptitle(
        "Figure 6: push throughput, sipush vs raw aioapns, same APNs emulator (x = failed)"
    )
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="one 2 s step at 50/s")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per step")
    parser.add_argument("--devices", type=int, default=300, help="sleeping devices called")
    parser.add_argument("--raw-count", type=int, default=5000, help="pushes in the raw burst")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    rows = run(
        args.out,
        smoke=args.smoke,
        duration=args.duration,
        devices=args.devices,
        raw_count=args.raw_count,
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
