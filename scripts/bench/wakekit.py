"""Shared pieces of the wake benchmarks (figures 3, 4 and 6): peers, timeline lines, output.

* :func:`start_pbx`: Kamailio from ``examples/kamailio.cfg`` like ``common.start_kamailio``, but
  with INVITE timers long enough for requests that sipush holds for a minute or more (the
  example's ``fr_inv_timer`` of 30 s would CANCEL a long-held INVITE).
* :class:`ApnsProcess`: the local APNs service (``python -m sipush.testing.apns_emulator``) in
  its own process, so that its CPU is not the benchmark's; one JSON line per push on its stdout,
  read by a thread into :class:`Push` records and handed to a listener (the device farm).
* :func:`start_wake_sipush`: ``sipush serve --upstream PBX --config ... --log-level info`` that
  pushes through that emulator (token auth, the same .p8 and bundle as ``tests/wake_kit.py``).
* :func:`timeline`: sipush's ``sipush.timeline`` lines (``wake-push ... ms=``,
  ``wake-release ... ms=``) from its stderr.
* :func:`memory_kb`: ``VmRSS`` / ``RssAnon`` of a PID from ``/proc/<pid>/status``.
* :func:`cdf`, :func:`log_x`: the wake benchmarks' plots (rows and tables: ``common``).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    EXAMPLE_CONFIG,
    LOOPBACK,
    REPO,
    KamailioProcess,
    SipushProcess,
    _wait_until_ready,
    free_port,
    kamailio_binaries,
    percentiles,
    render_config,
    run_sipush,
)

from tests.wake_kit import BUNDLE, KEY_ID, TEAM_ID

__all__ = ["BUNDLE"]

TIMELINE_RE = re.compile(
    r"sipush\.timeline: (?P<event>wake-push|wake-release) aor=(?P<aor>\S+) "
    r"call_id=(?P<call_id>\S+) ms=(?P<ms>[0-9.]+)"
)


# --- the PBX ------------------------------------------------------------------------------------


@contextlib.contextmanager
def start_pbx(
    workdir: Path, *, shm_mb: int = 256, pkg_mb: int = 16, invite_timeout_s: int = 600
) -> Iterator[KamailioProcess]:
    """Kamailio as ``common.start_kamailio`` starts it, with ``fr_inv_timer`` and
    ``max_inv_lifetime`` raised to ``invite_timeout_s`` (held INVITEs outlive 30 s)."""
    kamailio, kamcmd = kamailio_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(LOOPBACK)
    text = render_config(EXAMPLE_CONFIG, host=LOOPBACK, port=port, rundir=workdir, password="x")
    old = 'modparam("tm", "fr_inv_timer", 30000)'
    if old not in text:
        raise RuntimeError(f"{EXAMPLE_CONFIG} no longer sets {old}: update start_pbx")
    millis = invite_timeout_s * 1000
    text = text.replace(
        old,
        f'modparam("tm", "fr_inv_timer", {millis})\n'
        f'modparam("tm", "max_inv_lifetime", {millis + 10000})',
    )
    config_path = workdir / "kamailio.cfg"
    config_path.write_text(text)
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
        proc=proc, host=LOOPBACK, port=port, workdir=workdir, config_path=config_path,
        log_path=log_path, ctl_socket=workdir / "kamailio_ctl", kamcmd_path=kamcmd,
        auth=False, password="x", record_route=False,
    )  # fmt: skip
    try:
        _wait_until_ready(pbx, 10.0)
        yield pbx
    finally:
        pbx.stop()


# --- the APNs emulator in its own process -------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """One request the emulator recorded (from its JSON line)."""

    arrived: float  # time.time(), ms resolution
    seen: float  # time.monotonic() when the reader thread parsed the line
    token: str
    kind: str  # payload "type": incomingCall, missedCall, ...
    call_id: str
    status: int


@dataclass
class ApnsProcess:
    proc: subprocess.Popen[bytes]
    endpoint: str
    ca_file: Path
    key_file: Path
    pushes: list[Push] = field(default_factory=list)
    listener: Callable[[Push], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            payload = data.get("payload") or {}
            push = Push(
                arrived=float(data.get("arrived", 0.0)),
                seen=time.monotonic(),
                token=str(data.get("token", "")),
                kind=str(payload.get("type", "")),
                call_id=str(payload.get("call_id", "")),
                status=int(data.get("status", 0)),
            )
            with self._lock:
                self.pushes.append(push)
            listener = self.listener
            if listener is not None:
                listener(push)

    def count(self, kind: str | None = "incomingCall") -> int:
        with self._lock:
            return sum(1 for p in self.pushes if kind is None or p.kind == kind)

    def since(self, start: int) -> list[Push]:
        with self._lock:
            return self.pushes[start:]

    def total(self) -> int:
        with self._lock:
            return len(self.pushes)

    def wait_for(self, count: int, timeout: float, kind: str | None = "incomingCall") -> int:
        """Poll until ``count`` pushes of ``kind`` arrived (or ``timeout`` s); how many did."""
        deadline = time.monotonic() + timeout
        seen = self.count(kind)
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = self.count(kind)
        return seen

    def sipush_config(self, *, hold_timeout: float, push_extra: str = "") -> str:
        """A sipush TOML config that pushes through this emulator (as ``wake_kit`` writes it)."""
        return (
            f"[push]\nhold_timeout = {hold_timeout}\n{push_extra}\n[[push.apns]]\n"
            f'app_id = "{BUNDLE}"\nteam_id = "{TEAM_ID}"\nkey_id = "{KEY_ID}"\n'
            f'key_file = "{self.key_file}"\nendpoint = "{self.endpoint}"\n'
            f'ca_file = "{self.ca_file}"\n'
        )


@contextlib.contextmanager
def start_apns(workdir: Path) -> Iterator[ApnsProcess]:
    """``python -m sipush.testing.apns_emulator`` on a free port, token auth, tokens shown."""
    from tests.push.test_apns_emulator import make_pki

    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir)
    port = free_port()
    command = [
        sys.executable, "-m", "sipush.testing.apns_emulator", "--host", LOOPBACK,
        "--port", str(port), "--cert", str(pki.server_cert), "--key", str(pki.server_key),
        "--provider-key", f"{TEAM_ID}:{KEY_ID}:{pki.provider_key}", "--show-tokens",
    ]  # fmt: skip
    stderr_path = workdir / "apns.stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
    apns = ApnsProcess(proc, f"{LOOPBACK}:{port}", pki.ca_file, pki.provider_key)
    try:
        deadline = time.monotonic() + 15
        while b"listening on" not in stderr_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"APNs emulator did not start: {stderr_path.read_text()}")
            time.sleep(0.05)
        threading.Thread(target=apns._read, name="apns-reader", daemon=True).start()
        yield apns
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def start_wake_sipush(
    workdir: Path, upstream: str, apns: ApnsProcess, *, hold_timeout: float
) -> Iterator[SipushProcess]:
    """``sipush serve`` in front of ``upstream``, pushing through ``apns``, at log level info
    (the timeline lines are info)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "sipush.toml"
    config.write_text(apns.sipush_config(hold_timeout=hold_timeout))
    args = ("--upstream", upstream, "--config", str(config), "--log-level", "info")
    with run_sipush(workdir, free_port(), *args) as sipush:
        yield sipush


# --- measurements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    event: str  # "wake-push" | "wake-release"
    aor: str
    call_id: str
    ms: float


def timeline(sipush: SipushProcess, since: int = 0) -> list[TimelineEvent]:
    """Every ``sipush.timeline`` line sipush printed (from stderr line ``since`` on)."""
    sipush.stderr_text()  # moves what the pump read into stderr_lines
    events = []
    for line in sipush.stderr_lines[since:]:
        match = TIMELINE_RE.search(line)
        if match:
            events.append(
                TimelineEvent(match["event"], match["aor"], match["call_id"], float(match["ms"]))
            )
    return events


def stderr_position(sipush: SipushProcess) -> int:
    sipush.stderr_text()
    return len(sipush.stderr_lines)


def problems(sipush: SipushProcess, since: int = 0, limit: int = 5) -> list[str]:
    """sipush's WARNING/ERROR lines (and tracebacks), at most ``limit``."""
    sipush.stderr_text()
    found = [
        line
        for line in sipush.stderr_lines[since:]
        if " WARNING " in line or " ERROR " in line or line.startswith("Traceback")
    ]
    return found[:limit]


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS``, ``RssAnon``, ``VmHWM`` (kB) of ``pid`` from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def latency_text(stats: Mapping[str, float]) -> str:
    if not stats:
        return "no samples"
    return f"p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms"


def cdf(ax: Any, samples: Sequence[float], label: str) -> None:
    """Draw the empirical CDF of ``samples`` on ``ax`` (nothing when empty)."""
    if not samples:
        return
    ordered = sorted(samples)
    n = len(ordered)
    ax.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{label} (n={n})")


def log_x(ax: Any) -> None:
    """A log x axis with plain numbers (0.5, 1, 2, 5 ...) as tick labels."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter(""))


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stats(samples: Sequence[float]) -> dict[str, float]:
    return percentiles(samples)
