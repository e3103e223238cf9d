"""Drive ``examples/pjsua2_app.py`` (a pjsua2 "mobile app") as a subprocess from a test.

Usage::

    with start_app(tmp_path / "alice", user="alice", registrar=sipush_uri, proxy=sipush_uri,
                   transport="tcp", x_push="device-os=ios;device-uid=tok-1") as app:
        registered = app.wait_for("registered")          # waits for it by default, too
        ...  # call alice
        call = app.wait_for("incoming_call", timeout=10)
        app.wait_for("call_disconnected", call_id=call["call_id"])
        app.kill()                                        # the OS killed the app: flows drop

The app prints one JSON event per line on stdout (see ``examples/pjsua2_app.py`` for every
event and field); a reader thread collects them. ``wait_for(name, **fields)`` returns the first
event of that name, with those field values, that no earlier ``wait_for`` returned, so a test
can wait for events in any order. Its stderr (pjsua's log; a SIP trace with ``sip_trace=True``,
the default) goes to ``WORKDIR/app.log`` and is quoted in every failure message.

On leaving the ``with`` block a running app gets ``quit`` (it hangs up and unregisters) and must
exit 0 within 10 s (a pjsua2 object-lifetime bug shows up as an abort here); otherwise it is
killed by its PID. One app is one process with one account (the pjsua2 wheel caps a process at
4 calls and 8 accounts): start more apps for more devices.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
APP_SCRIPT = REPO / "examples" / "pjsua2_app.py"
INSTALL_HINT = "run `bash scripts/test.sh` (it installs the dev extra, which has pjsua2-python)"
EVENT_TIMEOUT = 10.0
QUIT_TIMEOUT = 10.0

Event = dict[str, Any]


def require_pjsua2() -> None:
    """Fail the test (not skip) if the ``pjsua2`` module is not importable."""
    if importlib.util.find_spec("pjsua2") is None:
        pytest.fail(f"the pjsua2 Python module is not installed: {INSTALL_HINT}")


class Pjsua2App:
    """A running ``examples/pjsua2_app.py``; see :func:`start_app`."""

    def __init__(self, command: list[str], workdir: Path) -> None:
        self.command = command
        self.workdir = workdir
        self.log_path = workdir / "app.log"
        self.events: list[Event] = []
        self._returned: set[int] = set()
        self._changed = threading.Condition()
        self._eof = False
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._reader = threading.Thread(
            target=self._read_events, name=f"pjsua2-app-{self.proc.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsable_output", "line": line}
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    # --- events -----------------------------------------------------------------------------------

    def wait_for(
        self,
        name: str,
        timeout: float = EVENT_TIMEOUT,
        predicate: Callable[[Event], bool] | None = None,
        **fields: Any,
    ) -> Event:
        """Return the first not-yet-returned event called ``name`` matching ``fields``.

        ``predicate`` can add any check. Fails the test with the events so far and the app's
        log if none arrives within ``timeout`` seconds or the app exits first.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, event in enumerate(self.events):
                    if index in self._returned or event.get("event") != name:
                        continue
                    if any(event.get(key) != value for key, value in fields.items()):
                        continue
                    if predicate is not None and not predicate(event):
                        continue
                    self._returned.add(index)
                    return event
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    why = "the app exited" if self._eof else f"{timeout} s passed"
                    raise AssertionError(
                        f"no {name!r} event matching {fields} ({why})\n" + self.describe()
                    )
                self._changed.wait(remaining)

    def events_named(self, name: str) -> list[Event]:
        """Every event called ``name`` so far (returned by ``wait_for`` or not)."""
        with self._changed:
            return [event for event in self.events if event.get("event") == name]

    def assert_no_event(self, name: str, within: float = 0.5, **fields: Any) -> None:
        """Fail if an unreturned ``name`` event matching ``fields`` arrives within ``within`` s."""
        with contextlib.suppress(AssertionError):
            event = self.wait_for(name, timeout=within, **fields)
            raise AssertionError(f"unexpected {name!r} event: {event}\n" + self.describe())

    # --- commands ---------------------------------------------------------------------------------

    def send(self, command: str) -> None:
        """Write one command line to the app's stdin (see the app's docstring)."""
        assert self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"cannot send {command!r}: the app exited\n" + self.describe())
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def hangup(self) -> None:
        self.send("hangup")

    def unregister(self) -> None:
        self.send("unregister")

    def register(self) -> None:
        self.send("register")

    def call(self, uri: str) -> None:
        self.send(f"call {uri}")

    def quit(self, timeout: float = QUIT_TIMEOUT) -> int:
        """Send ``quit`` (hang up, unregister, exit) and return the exit status."""
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("quit")
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the app did not exit within {timeout} s of quit\n" + self.describe()
            ) from None
        self._finish()
        return code

    def kill(self) -> None:
        """SIGKILL this PID, as the OS kills a suspended app: its sockets (and TCP flow) close."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._finish()

    def _finish(self) -> None:
        self._reader.join(timeout=5)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._log.close()

    # --- diagnostics ------------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail: int = 6000) -> str:
        """A block for failure messages: command, exit status, events, log tail."""
        with self._changed:
            events = "\n".join(json.dumps(_short(event)) for event in self.events)
        return (
            f"--- pjsua2 app pid {self.pid} (exit {self.proc.poll()}):"
            f" {shlex.join(self.command)}\n--- events:\n{events}\n"
            f"--- app log {self.log_path} (tail):\n{self.log_text()[-tail:]}"
        )


def _short(event: Event) -> Event:
    """An event with long SIP message fields shortened, for failure messages."""
    return {
        key: (value[:300] + "...") if isinstance(value, str) and len(value) > 300 else value
        for key, value in event.items()
    }


def app_command(
    *,
    user: str,
    registrar: str,
    domain: str = "127.0.0.1",
    proxy: str | None = None,
    transport: str = "udp",
    x_push: str | None = None,
    x_push_header: str = "X-Push",
    pn_provider: str | None = None,
    pn_prid: str | None = None,
    pn_param: str | None = None,
    instance: str | None = None,
    no_instance: bool = False,
    password: str | None = None,
    expires: int = 300,
    answer_code: int = 200,
    sip_trace: bool = True,
    log_level: int = 3,
    max_lifetime: float = 300.0,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv that starts ``examples/pjsua2_app.py`` with this interpreter."""
    command = [
        sys.executable,
        str(APP_SCRIPT),
        "--user", user,
        "--domain", domain,
        "--registrar", registrar,
        "--transport", transport,
        "--expires", str(expires),
        "--answer-code", str(answer_code),
        "--log-level", str(log_level),
        "--max-lifetime", f"{max_lifetime:g}",
    ]  # fmt: skip
    options = {
        "--proxy": proxy,
        "--x-push": x_push,
        "--pn-provider": pn_provider,
        "--pn-prid": pn_prid,
        "--pn-param": pn_param,
        "--instance": instance,
        "--password": password,
    }
    for flag, value in options.items():
        if value is not None:
            command += [flag, value]
    if x_push is not None:
        command += ["--x-push-header", x_push_header]
    if no_instance:
        command.append("--no-instance")
    if sip_trace:
        command.append("--sip-trace")
    return command + list(extra_args)


@contextlib.contextmanager
def start_app(
    workdir: Path,
    *,
    user: str,
    registrar: str,
    domain: str = "127.0.0.1",
    proxy: str | None = None,
    transport: str = "udp",
    x_push: str | None = None,
    x_push_header: str = "X-Push",
    pn_provider: str | None = None,
    pn_prid: str | None = None,
    pn_param: str | None = None,
    instance: str | None = None,
    no_instance: bool = False,
    password: str | None = None,
    expires: int = 300,
    answer_code: int = 200,
    sip_trace: bool = True,
    wait_registered: bool = True,
    timeout: float = EVENT_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> Iterator[Pjsua2App]:
    """Start the app in ``workdir``; yield a :class:`Pjsua2App`; quit or kill it on exit.

    ``registrar``: the REGISTER Request-URI, e.g. ``sip:127.0.0.1:5060`` (``;transport=`` is
    added). ``proxy``: the outbound proxy (sipush), or None to send to the registrar directly.
    Push info: ``x_push`` (the header value; ``x_push_header`` its name) and/or ``pn_provider``,
    ``pn_prid``, ``pn_param`` (RFC 8599 Contact URI parameters, REGISTER only). ``instance``:
    the ``+sip.instance`` UUID (default random; ``no_instance=True`` sends none).
    ``password``: digest credentials for ``user``. ``answer_code``: the app's answer to calls.
    ``wait_registered``: wait (``timeout`` s) for the ``ready`` and ``registered`` events.
    """
    require_pjsua2()
    workdir.mkdir(parents=True, exist_ok=True)
    command = app_command(
        user=user,
        registrar=registrar,
        domain=domain,
        proxy=proxy,
        transport=transport,
        x_push=x_push,
        x_push_header=x_push_header,
        pn_provider=pn_provider,
        pn_prid=pn_prid,
        pn_param=pn_param,
        instance=instance,
        no_instance=no_instance,
        password=password,
        expires=expires,
        answer_code=answer_code,
        sip_trace=sip_trace,
        extra_args=extra_args,
    )
    app = Pjsua2App(command, workdir)
    body_failed = False
    try:
        app.wait_for("ready", timeout=timeout)
        if wait_registered:
            app.wait_for("registered", timeout=timeout)
        yield app
    except BaseException:
        body_failed = True
        raise
    finally:
        if app.proc.poll() is None:
            if body_failed:
                app.kill()
            else:
                code = app.quit()
                assert code == 0, f"the app exited {code} on quit\n" + app.describe()
        else:
            app._finish()
