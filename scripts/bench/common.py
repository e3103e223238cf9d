"""Shared pieces of the load benchmarks: peers on loopback, bounded SIPp runs, results, plots.

Every benchmark starts its own peers on 127.0.0.1 (Kamailio as the PBX, ``sipush serve
--upstream`` in front of it, SIPp as the load) and bounds every run in count (``-m``) and time
(``-timeout`` plus a kill). A *step* is one SIPp run at a fixed rate; :func:`step_rates` raises
the rate until a step fails (any failed call, or >= 0.1 % retransmissions) and keeps the last
rate that held. Results go to ``<out>/<name>.json`` and ``<out>/<name>.png``.

SIPp writes its cumulative statistics every second (``-trace_stat -fd 1``, ``stats.csv``) and
every response-time measurement (``-trace_rtt``, ``*_rtt.csv``); latency percentiles come from
the latter (the scenario's ``rtd="true"`` receive: INVITE->200, or REGISTER->200).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.conftest import SipushProcess, free_port, run_sipush  # noqa: E402
from tests.peers.kamailio import (  # noqa: E402
    EXAMPLE_CONFIG,
    KamailioProcess,
    _wait_until_ready,
    kamailio_binaries,
    render_config,
)
from tests.peers.sipp import start_sipp  # noqa: E402

LOOPBACK = "127.0.0.1"
RESULTS = Path(__file__).resolve().parent / "results"
SIPP_BUFF = ["-buff_size", "4194304"]
MAX_RETRANS_RATIO = 0.001  # "< 0.1 % retransmissions"


# --- peers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def start_kamailio(workdir: Path, *, shm_mb: int = 256, pkg_mb: int = 16) -> Iterator[Any]:
    """Kamailio from ``examples/kamailio.cfg`` on a free UDP+TCP port, with load-sized memory.

    The same as ``tests.peers.kamailio.run_kamailio`` (same config, readiness check and PID
    stop) but with ``-m 256 -M 16``: 64 MB of shared memory does not hold 100,000 contacts.
    """
    kamailio, kamcmd = kamailio_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(LOOPBACK)
    config_path = workdir / "kamailio.cfg"
    config_path.write_text(
        render_config(EXAMPLE_CONFIG, host=LOOPBACK, port=port, rundir=workdir, password="x")
    )
    log_path = workdir / "kamailio.log"
    command = [
        kamailio, "-f", str(config_path), "-DD", "-E",
        "-m", str(shm_mb), "-M", str(pkg_mb),
        "-Y", str(workdir), "-w", str(workdir), "-P", str(workdir / "kamailio.pid"),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    pbx = KamailioProcess(
        proc=proc,
        host=LOOPBACK,
        port=port,
        workdir=workdir,
        config_path=config_path,
        log_path=log_path,
        ctl_socket=workdir / "kamailio_ctl",
        kamcmd_path=kamcmd,
        auth=False,
        password="x",
        record_route=False,
    )
    try:
        _wait_until_ready(pbx, 10.0)
        yield pbx
    finally:
        pbx.stop()


@contextlib.contextmanager
def start_sipush(workdir: Path, upstream: str) -> Iterator[SipushProcess]:
    """``sipush serve --upstream UPSTREAM`` on a free port, its store and key in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with run_sipush(workdir, free_port(), "--upstream", upstream, "--log-level", "warning") as s:
        yield s


# --- one bounded SIPp run -----------------------------------------------------------------------


@dataclass
class Step:
    """One SIPp run at a fixed offered rate, and what SIPp measured."""

    rate: float
    duration: float
    calls: int
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    achieved_rate: float = 0.0
    elapsed: float = 0.0
    returncode: int = -1
    latency_ms: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples_ms")
        return data


def read_stats(path: Path) -> dict[str, str]:
    """The last (cumulative) row of SIPp's ``-trace_stat`` CSV as ``{column: value}``."""
    try:
        rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    except FileNotFoundError:
        return {}
    rows = [row for row in rows if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def read_rtt(workdir: Path) -> list[float]:
    """Every response time (ms) SIPp dumped with ``-trace_rtt`` in ``workdir``."""
    samples: list[float] = []
    for path in sorted(workdir.glob("*_rtt.csv")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(";")
            if len(parts) >= 2:
                with contextlib.suppress(ValueError):
                    samples.append(float(parts[1]))
    return samples


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def _int(stats: Mapping[str, str], name: str) -> int:
    try:
        return int(float(stats.get(name, "0") or 0))
    except ValueError:
        return 0


def run_load(
    scenario: str | Path,
    remote: str,
    workdir: Path,
    *,
    rate: float,
    duration: float,
    limit: int = 5000,
    inf: Path | None = None,
    keys: Mapping[str, str] | None = None,
    service: str | None = None,
    pause_ms: int | None = None,
    local_port: int | None = None,
) -> Step:
    """One SIPp run: ``rate`` calls/s for ``duration`` s (``-m rate*duration``), bounded in time."""
    calls = max(1, round(rate * duration))
    step = Step(rate=rate, duration=duration, calls=calls)
    started = time.monotonic()
    with start_sipp(
        scenario,
        remote,
        workdir=workdir,
        calls=calls,
        rate=rate,
        limit=limit,
        timeout=duration + 20.0,
        inf=inf,
        keys=keys,
        service=service,
        pause_ms=pause_ms,
        local_port=local_port,
        trace_messages=False,
        extra_args=[*SIPP_BUFF, "-fd", "1", "-trace_rtt", "-rtt_freq", "1"],
    ) as sipp:
        result = sipp.wait(check=False)
    step.elapsed = round(time.monotonic() - started, 2)
    step.returncode = result.returncode
    stats = read_stats(result.stats_file)
    step.successful = _int(stats, "SuccessfulCall(C)")
    step.failed = _int(stats, "FailedCall(C)")
    step.retransmissions = _int(stats, "Retransmissions(C)")
    elapsed_text = stats.get("ElapsedTime(C)", "")
    seconds = _hms_seconds(elapsed_text) or step.elapsed
    step.achieved_rate = round(step.successful / seconds, 1) if seconds else 0.0
    step.samples_ms = read_rtt(workdir)
    step.latency_ms = percentiles(step.samples_ms)
    step.passed = (
        step.failed == 0
        and step.successful == calls
        and step.retransmissions < MAX_RETRANS_RATIO * calls
    )
    return step


def _hms_seconds(text: str) -> float:
    """SIPp's ``HH:MM:SS:mmm000`` elapsed time in seconds (0 when unreadable)."""
    parts = text.split(":")
    if len(parts) < 3:
        return 0.0
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), int(parts[2])
        millis = int(parts[3][:3]) if len(parts) > 3 and parts[3] else 0
    except ValueError:
        return 0.0
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def step_rates(
    rates: Sequence[float], run_one: Callable[[float], Step], label: str = ""
) -> tuple[float, list[Step]]:
    """Run ``run_one`` at each rate in order until one fails; return (best passing rate, steps)."""
    best = 0.0
    steps: list[Step] = []
    for rate in rates:
        step = run_one(rate)
        steps.append(step)
        verdict = "ok" if step.passed else "FAIL"
        print(
            f"  {label:<16} {rate:>8g}/s  ok {step.successful}/{step.calls}"
            f"  failed {step.failed}  retrans {step.retransmissions}"
            f"  p50 {step.latency_ms.get('p50', '-')} ms  p99 {step.latency_ms.get('p99', '-')} ms"
            f"  {verdict}",
            flush=True,
        )
        if not step.passed:
            break
        best = rate
    return best, steps


# --- output -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "time": time.time()}


def write_json(out: Path, name: str, data: Mapping[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def plot_steps(out: Path, name: str, title: str, modes: Mapping[str, Sequence[Step]]) -> Path:
    """A PNG: achieved vs offered rate, p50/p99 vs offered rate, and the latency CDF of each
    mode's highest passing step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, (ax_rate, ax_lat, ax_cdf) = plt.subplots(1, 3, figsize=(15, 4.5))
    for label, steps in modes.items():
        offered = [s.rate for s in steps]
        ax_rate.plot(offered, [s.achieved_rate for s in steps], marker="o", label=label)
        for s in steps:
            if not s.passed:
                ax_rate.plot([s.rate], [s.achieved_rate], "rx", markersize=10)
        with_lat = [s for s in steps if s.latency_ms]
        ax_lat.plot(
            [s.rate for s in with_lat],
            [s.latency_ms["p50"] for s in with_lat],
            marker="o",
            label=f"{label} p50",
        )
        ax_lat.plot(
            [s.rate for s in with_lat],
            [s.latency_ms["p99"] for s in with_lat],
            marker="^",
            linestyle="--",
            label=f"{label} p99",
        )
        passing = [s for s in steps if s.passed and s.samples_ms]
        if passing:
            best = passing[-1]
            ordered = sorted(best.samples_ms)
            n = len(ordered)
            ax_cdf.plot(
                ordered, [(i + 1) / n for i in range(n)], label=f"{label} @ {best.rate:g}/s"
            )
    ax_rate.set(xlabel="offered rate (/s)", ylabel="successful (/s)", title="rate (x = failed)")
    ax_lat.set(xlabel="offered rate (/s)", ylabel="response time (ms)", title="latency")
    ax_cdf.set(xlabel="response time (ms)", ylabel="fraction", title="CDF at best rate")
    for ax in (ax_rate, ax_lat, ax_cdf):
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    with contextlib.suppress(ValueError):
        if ax_lat.has_data():
            ax_lat.set_yscale("log")
        if ax_cdf.has_data():
            ax_cdf.set_xscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


KAMAILIO_ALONE = "kamailio alone"


def versus_kamailio(
    step: Callable[[float, bool], Step],
    kamailio_rates: Sequence[float],
    sipush_rates: Sequence[float],
    sipush_label: str,
) -> tuple[dict[str, float], dict[str, list[Step]]]:
    """Step Kamailio alone, then the path through sipush: (best rate, steps) per label.
    ``step(rate, via_sipush)`` runs one step with fresh peers."""
    best: dict[str, float] = {}
    modes: dict[str, list[Step]] = {}
    for label, via, rates in (
        (KAMAILIO_ALONE, False, kamailio_rates),
        (sipush_label, True, sipush_rates),
    ):
        best[label], modes[label] = step_rates(
            rates, functools.partial(_one_step, step, via), label
        )
    return best, modes


def _one_step(step: Callable[[float, bool], Step], via: bool, rate: float) -> Step:
    return step(rate, via)


def ratio_row(
    figure: str, best: Mapping[str, float], sipush_label: str, target: float
) -> dict[str, Any]:
    """The summary row of a figure measured as a share of Kamailio alone."""
    baseline, with_sipush = best[KAMAILIO_ALONE], best[sipush_label]
    share = ratio(with_sipush, baseline)
    return summary_row(
        figure,
        f"{with_sipush:g}/s",
        f">= {target:.0%} of Kamailio alone",
        share >= target,
        baseline=f"{baseline:g}/s Kamailio alone",
        rate=with_sipush,
        baseline_rate=baseline,
        ratio=share,
    )


def summary_row(
    figure: str, measured: str, target: str, met: bool, baseline: str = "", **extra: Any
) -> dict[str, Any]:
    """The row every benchmark returns and :func:`print_table` prints; ``figure`` starts with
    the figure's number in issue #5."""
    return {
        "figure": figure,
        "measured": measured,
        "baseline": baseline,
        "target": target,
        "met": met,
        **extra,
    }


TABLE_COLUMNS = ("figure", "measured", "baseline", "target", "met")


def print_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """``figure | measured | baseline | target | met``, one line per row."""
    widths = [max([len(str(row[key])) for row in rows] + [len(key)]) for key in TABLE_COLUMNS]
    header = "  ".join(key.ljust(width) for key, width in zip(TABLE_COLUMNS, widths, strict=True))
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [
            str(row[key]) if key != "met" else ("yes" if row[key] else "NO")
            for key in TABLE_COLUMNS
        ]
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))
