"""Shared test fixtures: free ports, a real ``sipush serve`` subprocess, a UDP exchange helper.

Helpers are handed out as fixtures (``free_port``, ``udp_exchange``, ``start_sipush``) so that
tests in any sub-directory can use them without importing this file.

``sipush_server`` starts ``python -m sipush serve`` on one free port for UDP and TCP in an
empty working directory, waits until it prints a ``sipush: listening on ...`` line for each
listen address, and on teardown sends SIGTERM and asserts exit status 0.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """Return a port that is free on ``host`` for both UDP and TCP (at the time of the call)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def udp_exchange(
    host: str,
    port: int,
    data: bytes,
    *,
    expect: int = 1,
    timeout: float = 2.0,
) -> list[bytes]:
    """Send one datagram from a fresh socket; collect replies until ``expect`` or ``timeout``.

    Use ``expect=0`` to collect everything that arrives within ``timeout`` (e.g. to check that
    nothing does).
    """
    replies: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.sendto(data, (host, port))
        deadline = time.monotonic() + timeout
        while expect == 0 or len(replies) < expect:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                reply, _ = sock.recvfrom(65535)
            except TimeoutError:
                break
            replies.append(reply)
    return replies


@dataclass
class SipushProcess:
    """A running ``sipush serve`` subprocess and what it has printed on stderr so far."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    cwd: Path
    stderr_lines: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def wait_for_lines(self, wanted: Sequence[str], timeout: float = READY_TIMEOUT) -> None:
        """Block until every string in ``wanted`` appeared in some stderr line."""
        missing = list(wanted)
        deadline = time.monotonic() + timeout
        while missing:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"sipush did not print {missing} within {timeout} s; stderr so far:\n"
                    + self.stderr_text()
                ) from None
            if line is None:
                self.proc.wait()
                raise AssertionError(
                    f"sipush exited with {self.proc.returncode} before printing {missing};"
                    f" stderr:\n" + self.stderr_text()
                )
            self.stderr_lines.append(line)
            missing = [text for text in missing if text not in line]

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` to this PID, wait for exit, return the exit status (kill on timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"sipush did not stop within {timeout} s of {sig.name}; stderr:\n"
                + self.stderr_text()
            ) from None
        self._drain()
        return code

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get(timeout=2.0)
            except queue.Empty:
                return
            if line is None:
                return
            self.stderr_lines.append(line)

    def stderr_text(self) -> str:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._lines.put(None)
                break
            self.stderr_lines.append(line)
        return "\n".join(self.stderr_lines)


def sipush_command(*args: str) -> list[str]:
    """The argv that runs this checkout's sipush with the current interpreter."""
    return [sys.executable, "-m", "sipush", *args]


@contextlib.contextmanager
def run_sipush(
    cwd: Path, port: int, *extra_args: str, host: str = LOOPBACK
) -> Iterator[SipushProcess]:
    """Start ``sipush serve`` on udp+tcp ``host:port`` in ``cwd``; wait until it listens.

    On exit, if the process still runs, SIGTERM it and assert exit status 0.
    """
    listen = [f"udp:{host}:{port}", f"tcp:{host}:{port}"]
    args = ["serve", *(arg for spec in listen for arg in ("--listen", spec)), *extra_args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        sipush_command(*args),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = SipushProcess(proc=proc, host=host, port=port, cwd=cwd)
    threading.Thread(target=server._pump, name=f"sipush-stderr-{proc.pid}", daemon=True).start()
    try:
        server.wait_for_lines([f"listening on {spec}" for spec in listen])
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    try:
        yield server
    finally:
        if proc.poll() is None:
            code = server.stop(signal.SIGTERM)
            assert code == 0, f"sipush exited with {code} on SIGTERM; stderr:\n" + (
                server.stderr_text()
            )
        elif proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """``free_port()`` -> a port free for both UDP and TCP on 127.0.0.1."""
    return free_port


@pytest.fixture(name="udp_exchange")
def udp_exchange_fixture() -> Callable[..., list[bytes]]:
    """``udp_exchange(host, port, data, expect=1, timeout=2.0)`` -> the replies received."""
    return udp_exchange


@pytest.fixture
def start_sipush(
    tmp_path: Path,
) -> Callable[..., contextlib.AbstractContextManager[SipushProcess]]:
    """``with start_sipush(*extra_args) as server:`` -> a fresh server in ``tmp_path``."""

    def start(*extra_args: str) -> contextlib.AbstractContextManager[SipushProcess]:
        return run_sipush(tmp_path, free_port(), *extra_args)

    return start


@pytest.fixture
def sipush_server(tmp_path: Path) -> Iterator[SipushProcess]:
    """A running ``sipush serve`` (UDP+TCP on one free port, cwd = tmp_path)."""
    with run_sipush(tmp_path, free_port()) as server:
        yield server
