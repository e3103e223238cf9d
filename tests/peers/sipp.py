"""Run the SIPp scenarios in ``tests/sipp/`` with a bounded timeout and read what they did.

Usage::

    result = run_sipp("register_xpush.xml", pbx.address, workdir=tmp_path / "reg",
                      keys=xpush_keys("alice", "tok-1"), transport="tcp")
    assert result.statuses() == [200]            # every response SIPp received, in order

    with start_sipp("uas_answer.xml", None, workdir=tmp_path / "uas",
                    local_port=uas_port) as callee:        # a background SIPp (a UAS)
        run_sipp("uac_call.xml", pbx.address, workdir=tmp_path / "uac", service="bob")
        callee.wait()

Every run gets its own work directory with fixed file names: ``messages.log`` (``-trace_msg``:
every message sent and received), ``errors.log`` (``-trace_err``), ``stats.csv``
(``-trace_stat``), ``actions.log`` (``-trace_logs``: the scenarios' ``<log>`` lines) and
``screen.txt`` (stdout). ``SippResult.check()`` (done by default) fails the test on a non-zero
exit with the command, the errors log, the screen and the messages log in the message.

SIPp exit codes: 0 every call succeeded, 1 at least one call failed, 97 stopped by an internal
command, 99 ended without processing a call, 255 fatal error (bad scenario, missing key, port).

The ``*_keys()`` helpers return the ``-key`` values each scenario needs (see the XML headers).
``csv_variant()`` turns a scenario's per-device keys into CSV injection fields for
one-device-per-call runs.
"""

from __future__ import annotations

import contextlib
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

MEDIA_PORTS = range(20000, 32000, 4)  # below Linux's ephemeral range (32768-60999)


def free_media_port(host: str) -> int:
    """A base for SIPp's ``-mp``: SIPp binds audio RTP/RTCP and video RTP/RTCP on it and the
    three ports above. Taken below the kernel's ephemeral range, where the ports other peers
    get from ``free_port()`` live, and checked free four in a row (a single free port could sit
    next to a peer's: "Unable to bind video RTP socket ... Address already in use")."""
    for _ in range(200):
        base = random.choice(MEDIA_PORTS)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + 4):
                    udp = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    udp.bind((host, port))
            except OSError:
                continue
            return base
    raise RuntimeError("no four consecutive UDP ports free for SIPp's media")


LOOPBACK = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parents[1] / "sipp"
INSTALL_HINT = "run `bash scripts/test.sh` (it installs Debian's sip-tester and kamailio)"
TRANSPORTS = {"udp": "u1", "tcp": "t1"}
# -default_behaviors: calls ignore unexpected messages (a 180 may come after the 200 through a
# multi-worker proxy); REGISTER and MESSAGE runs abort at once on one (an unlisted error
# response fails the run without waiting for a timeout) and send no BYE when they abort.
CALL_BEHAVIORS = "all,-abortunexp"
REGISTER_BEHAVIORS = "all,-bye"
DEFAULT_BEHAVIORS = CALL_BEHAVIORS  # kept for callers that name it


def default_behaviors_for(scenario: Path) -> str:
    """``REGISTER_BEHAVIORS`` for register_*.xml and uac_message.xml, else ``CALL_BEHAVIORS``."""
    name = scenario.name
    if name.startswith("register") or name.startswith("uac_message"):
        return REGISTER_BEHAVIORS
    return CALL_BEHAVIORS


Context = str | Callable[[], str] | None

_BLOCK_SEPARATOR = re.compile(r"^-{20,}.*$", re.MULTILINE)
_BLOCK_HEAD = re.compile(r"^(UDP|TCP|TLS|SCTP) message (sent|received)[^\n]*\n", re.IGNORECASE)


def sipp_binary() -> str:
    """Return the path of ``sipp``; fail the test (not skip) if it is missing."""
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail(f"sipp is not installed: {INSTALL_HINT}")
    return sipp


def scenario_path(scenario: str | Path) -> Path:
    """A bare file name means a scenario in ``tests/sipp/``."""
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIOS / path
    if not path.is_file():
        raise FileNotFoundError(f"no SIPp scenario {scenario} (looked in {SCENARIOS})")
    return path


@dataclass(frozen=True)
class SipMessage:
    """One message from SIPp's messages log."""

    direction: str  # "sent" | "received"
    transport: str  # "UDP" | "TCP"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def status(self) -> int | None:
        """The status code of a response, ``None`` for a request."""
        match = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        """The method of a request, ``None`` for a response."""
        return None if self.status is not None else self.first_line.split(" ", 1)[0]

    def headers(self, name: str) -> list[str]:
        """Values of every header called ``name`` (case-insensitive; no compact forms)."""
        head = self.text.split("\n\n", 1)[0]
        wanted = name.lower()
        values = []
        for line in head.split("\n")[1:]:
            header, sep, value = line.partition(":")
            if sep and header.strip().lower() == wanted:
                values.append(value.strip())
        return values

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None


def parse_messages_log(text: str) -> list[SipMessage]:
    """Split SIPp's ``-trace_msg`` log into messages, in order."""
    messages = []
    for block in _BLOCK_SEPARATOR.split(text):
        block = block.lstrip("\n")
        head = _BLOCK_HEAD.match(block)
        if head is None:
            continue
        body = block[head.end() :].replace("\r\n", "\n").strip("\n")
        messages.append(SipMessage(head.group(2).lower(), head.group(1).upper(), body))
    return messages


@dataclass(frozen=True)
class SippResult:
    """The outcome of one SIPp run: exit status and the paths of its logs."""

    scenario: Path
    command: tuple[str, ...]
    returncode: int
    workdir: Path

    @property
    def messages_log(self) -> Path:
        return self.workdir / "messages.log"

    @property
    def errors_log(self) -> Path:
        return self.workdir / "errors.log"

    @property
    def stats_file(self) -> Path:
        return self.workdir / "stats.csv"

    @property
    def actions_log(self) -> Path:
        return self.workdir / "actions.log"

    @property
    def screen_file(self) -> Path:
        return self.workdir / "screen.txt"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def messages(self) -> list[SipMessage]:
        """Every message SIPp sent and received, in order (empty without ``-trace_msg``)."""
        return parse_messages_log(_read(self.messages_log))

    def received(self) -> list[SipMessage]:
        return [message for message in self.messages() if message.direction == "received"]

    def sent(self) -> list[SipMessage]:
        return [message for message in self.messages() if message.direction == "sent"]

    def statuses(self) -> list[int]:
        """Status codes of every response received, in order (100 Trying included)."""
        return [m.status for m in self.received() if m.status is not None]

    def final_responses(self) -> list[SipMessage]:
        """Every final (>= 200) response received, in order."""
        return [m for m in self.received() if m.status is not None and m.status >= 200]

    def requests_received(self, method: str | None = None) -> list[SipMessage]:
        return [
            m
            for m in self.received()
            if m.method is not None and (method is None or m.method == method)
        ]

    def describe(self, tail: int = 6000) -> str:
        """A block for failure messages: command, exit code, errors log, screen, messages."""
        return (
            f"sipp {self.scenario.name} exited {self.returncode}\n"
            f"--- command: {shlex.join(self.command)}\n"
            f"--- errors log {self.errors_log}:\n{_read(self.errors_log)[-tail:]}\n"
            f"--- scenario <log> lines:\n{_read(self.actions_log)[-2000:]}\n"
            f"--- screen (tail) {self.screen_file}:\n{_read(self.screen_file)[-3000:]}\n"
            f"--- messages log (tail) {self.messages_log}:\n{_read(self.messages_log)[-tail:]}"
        )

    def check(self, context: Context = None) -> SippResult:
        """Fail the test unless SIPp exited 0; ``context`` (e.g. ``pbx.describe``: text, or a
        function returning it, called only on failure) is appended to the message."""
        if self.returncode != 0:
            extra = context() if callable(context) else (context or "")
            raise AssertionError(self.describe() + (f"\n{extra}" if extra else ""))
        return self


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def sipp_command(
    scenario: Path,
    remote: str | None,
    *,
    workdir: Path,
    transport: str = "udp",
    local_port: int | None = None,
    local_ip: str = LOOPBACK,
    service: str | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int = 1,
    rate: float = 10.0,
    limit: int = 10,
    timeout: float = 20.0,
    pause_ms: int | None = None,
    username: str | None = None,
    password: str | None = None,
    inf: Path | None = None,
    default_behaviors: str | None = None,
    trace_messages: bool = True,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv for one bounded SIPp run (see :func:`run_sipp` for the parameters)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {sorted(TRANSPORTS)}, not {transport!r}")
    command = [sipp_binary()]
    if remote is not None:
        command.append(remote)
    command += [
        "-sf", str(scenario),
        "-t", TRANSPORTS[transport],
        "-i", local_ip,
        "-p", str(local_port if local_port is not None else free_port(local_ip)),
        "-mp", str(free_media_port(local_ip)),
        "-m", str(calls),
        "-l", str(limit),
        "-r", f"{rate:g}",
        "-timeout", f"{max(1, round(timeout))}s",
        "-timeout_error",
        "-nostdin",
        "-default_behaviors", default_behaviors or default_behaviors_for(scenario),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_stat", "-stf", str(workdir / "stats.csv"),
        "-trace_logs", "-log_file", str(workdir / "actions.log"),
    ]  # fmt: skip
    if trace_messages:
        command += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    if service is not None:
        command += ["-s", service]
    if pause_ms is not None:
        command += ["-d", str(pause_ms)]
    if username is not None:
        command += ["-au", username]
    if password is not None:
        command += ["-ap", password]
    if inf is not None:
        command += ["-inf", str(inf)]
    for name, value in (keys or {}).items():
        command += ["-key", name, value]
    command += list(extra_args)
    return command


class SippProcess:
    """A SIPp run in the background (e.g. a UAS waiting for calls); see :func:`start_sipp`."""

    def __init__(
        self, scenario: Path, command: list[str], workdir: Path, timeout: float, local_port: int
    ) -> None:
        self.scenario = scenario
        self.command = command
        self.workdir = workdir
        self.timeout = timeout
        self.local_port = local_port
        self._screen = (workdir / "screen.txt").open("wb")
        self.proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._screen,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def result(self) -> SippResult:
        returncode = self.proc.returncode if self.proc.returncode is not None else -1
        return SippResult(self.scenario, tuple(self.command), returncode, self.workdir)

    def wait(
        self, timeout: float | None = None, *, check: bool = True, context: Context = None
    ) -> SippResult:
        """Wait for SIPp to end (``timeout`` defaults to its own run timeout + 10 s).

        If it does not end in time it is killed and the test fails. With ``check`` a non-zero
        exit fails the test, with ``context`` appended (see :meth:`SippResult.check`).
        """
        limit = self.timeout + 10.0 if timeout is None else timeout
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.stop()
            extra = context() if callable(context) else (context or "")
            raise AssertionError(
                f"sipp {self.scenario.name} (pid {self.pid}) still ran after {limit} s\n"
                + self.result().describe()
                + (f"\n{extra}" if extra else "")
            ) from None
        finally:
            self._screen.close()
        result = self.result()
        return result.check(context) if check else result

    def stop(self) -> None:
        """SIGTERM this PID (SIGKILL after 5 s) if it still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._screen.close()


def run_sipp(
    scenario: str | Path,
    remote: str | None,
    *,
    workdir: Path,
    check: bool = True,
    context: Context = None,
    transport: str = "udp",
    local_port: int | None = None,
    local_ip: str = LOOPBACK,
    service: str | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int = 1,
    rate: float = 10.0,
    limit: int = 10,
    timeout: float = 20.0,
    pause_ms: int | None = None,
    username: str | None = None,
    password: str | None = None,
    inf: Path | None = None,
    default_behaviors: str | None = None,
    trace_messages: bool = True,
    extra_args: Sequence[str] = (),
) -> SippResult:
    """Run one scenario to completion and return its :class:`SippResult`.

    ``scenario``: a file in ``tests/sipp/`` or a path. ``remote``: ``host:port`` to send to
    (``None`` for a UAS). ``workdir``: created; holds the logs. ``transport``: "udp" | "tcp"
    (``-t u1`` / ``-t t1``). ``local_port``: ``-p`` (default: a free port). ``service``: ``-s``,
    the Request-URI user. ``keys``: ``-key`` values. ``calls``/``rate``/``limit``: ``-m``,
    ``-r``, ``-l``. ``timeout``: seconds for the whole run (SIPp's ``-timeout`` with
    ``-timeout_error``; the process is killed 10 s later). ``pause_ms``: ``-d`` (the ``<pause/>``
    length). ``username``/``password``: ``-au``/``-ap`` for digest challenges. ``inf``: a CSV
    injection file. ``default_behaviors``: SIPp's ``-default_behaviors`` (default: see
    :func:`default_behaviors_for`). ``trace_messages``: ``-trace_msg`` (turn off for load runs).

    With ``check=True`` (the default) a non-zero exit fails the test with SIPp's logs and
    ``context`` (text, or a function such as ``pbx.describe`` called only on failure).
    """
    with start_sipp(
        scenario,
        remote,
        workdir=workdir,
        transport=transport,
        local_port=local_port,
        local_ip=local_ip,
        service=service,
        keys=keys,
        calls=calls,
        rate=rate,
        limit=limit,
        timeout=timeout,
        pause_ms=pause_ms,
        username=username,
        password=password,
        inf=inf,
        default_behaviors=default_behaviors,
        trace_messages=trace_messages,
        extra_args=extra_args,
    ) as process:
        return process.wait(check=check, context=context)


@contextlib.contextmanager
def start_sipp(
    scenario: str | Path,
    remote: str | None,
    *,
    workdir: Path,
    transport: str = "udp",
    local_port: int | None = None,
    local_ip: str = LOOPBACK,
    service: str | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int = 1,
    rate: float = 10.0,
    limit: int = 10,
    timeout: float = 20.0,
    pause_ms: int | None = None,
    username: str | None = None,
    password: str | None = None,
    inf: Path | None = None,
    default_behaviors: str | None = None,
    trace_messages: bool = True,
    extra_args: Sequence[str] = (),
) -> Iterator[SippProcess]:
    """Start a scenario in the background; yield a :class:`SippProcess`; stop it on exit.

    Same parameters as :func:`run_sipp`. Call ``.wait()`` inside the block to collect (and
    check) the result; leaving the block without waiting stops SIPp by its PID. A UAS
    (``remote=None``) listens on ``process.local_port``.
    """
    path = scenario_path(scenario)
    workdir.mkdir(parents=True, exist_ok=True)
    port = local_port if local_port is not None else free_port(local_ip)
    command = sipp_command(
        path,
        remote,
        workdir=workdir,
        transport=transport,
        local_port=port,
        local_ip=local_ip,
        service=service,
        keys=keys,
        calls=calls,
        rate=rate,
        limit=limit,
        timeout=timeout,
        pause_ms=pause_ms,
        username=username,
        password=password,
        inf=inf,
        default_behaviors=default_behaviors,
        trace_messages=trace_messages,
        extra_args=extra_args,
    )
    process = SippProcess(path, command, workdir, timeout, port)
    try:
        yield process
    finally:
        process.stop()


# --- scenario keys ------------------------------------------------------------------------------


def xpush_value(
    *,
    app_id: str | None = "com.example.app",
    allow_call_push: bool | str = True,
    allow_message_push: bool | str = True,
) -> str:
    """The part of an X-Push value after ``device-uid=<token>`` (the ``xpush_more`` key)."""
    more = (
        f";allow-call-push={_flag(allow_call_push)};allow-message-push={_flag(allow_message_push)}"
    )
    if app_id is not None:
        more += f";app-id={app_id}"
    return more


def _flag(value: bool | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value


def xpush_keys(
    user: str,
    token: str,
    *,
    domain: str = LOOPBACK,
    device_os: str = "ios",
    app_id: str | None = "com.example.app",
    allow_call_push: bool | str = True,
    allow_message_push: bool | str = True,
    xpush_more: str | None = None,
    header: str = "X-Push",
    expires: int = 300,
    expect: int = 200,
    challenge: str | None = None,
    contact_params: str = "",
    contact_hparams: str = "",
) -> dict[str, str]:
    """``-key`` values for ``register_xpush.xml``.

    The X-Push value is ``device-os=<device_os>;device-uid=<token>`` followed by ``xpush_more``
    (default: allow-call-push, allow-message-push and app-id from the arguments; pass ``""``
    for none, or any text to test malformed values). Booleans may be given as text ("maybe").
    ``challenge``: "answer" or "stop" at a 401/407; default "stop" when ``expect`` is 401 or
    407, else "answer" (see :func:`challenge_mode`).
    """
    if xpush_more is None:
        xpush_more = xpush_value(
            app_id=app_id,
            allow_call_push=allow_call_push,
            allow_message_push=allow_message_push,
        )
    return {
        "user": user,
        "domain": domain,
        "expires": str(expires),
        "expect": str(expect),
        "challenge": challenge_mode(expect, challenge),
        "xpush_header": header,
        "device_os": device_os,
        "token": token,
        "xpush_more": xpush_more,
        "contact_params": contact_params,
        "contact_hparams": contact_hparams,
    }


def device_instance(user: str, device: str) -> str:
    """A stable UUID for ``+sip.instance`` from a user and a device name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sipush-test:{user}:{device}"))


def pn_keys(
    user: str,
    prid: str,
    *,
    provider: str = "apns",
    param: str | None = "ABCDE12345.com.example.app.voip",
    pn_more: str | None = None,
    instance: str | None = None,
    domain: str = LOOPBACK,
    expires: int = 300,
    expect: int = 200,
    challenge: str | None = None,
) -> dict[str, str]:
    """``-key`` values for ``register_pn.xml``.

    ``pn_more`` defaults to ``;pn-param=<param>`` (nothing when ``param`` is None);
    ``instance`` defaults to :func:`device_instance` of (user, prid).
    """
    if pn_more is None:
        pn_more = "" if param is None else f";pn-param={param}"
    return {
        "user": user,
        "domain": domain,
        "expires": str(expires),
        "expect": str(expect),
        "challenge": challenge_mode(expect, challenge),
        "pn_provider": provider,
        "pn_prid": prid,
        "pn_more": pn_more,
        "instance": instance or device_instance(user, prid),
    }


def expires0_keys(
    user: str,
    contact: str = "*",
    *,
    domain: str = LOOPBACK,
    expect: int = 200,
    challenge: str | None = None,
) -> dict[str, str]:
    """``-key`` values for ``register_expires0.xml`` (``contact``: ``*`` or a Contact value)."""
    return {
        "user": user,
        "domain": domain,
        "expect": str(expect),
        "challenge": challenge_mode(expect, challenge),
        "contact": contact,
    }


def challenge_mode(expect: int, challenge: str | None = None) -> str:
    """The ``challenge`` key: as given, else "stop" when a 401/407 is the expected end."""
    if challenge is None:
        return "stop" if expect in (401, 407) else "answer"
    if challenge not in ("answer", "stop"):
        raise ValueError(f"challenge must be 'answer' or 'stop', not {challenge!r}")
    return challenge


def message_keys(text: str = "hello from sipp") -> dict[str, str]:
    """``-key`` values for ``uac_message.xml``."""
    return {"text": text}


# --- CSV injection ------------------------------------------------------------------------------


def csv_variant(scenario: str | Path, fields: Sequence[str], dest_dir: Path) -> Path:
    """Write a copy of ``scenario`` where ``[key]`` becomes ``[fieldN]`` for ``fields[N]``.

    Use it with :func:`write_injection_csv` and ``inf=`` for one device per call: e.g.
    ``csv_variant("register_xpush.xml", ["user", "token"], tmp)`` then rows
    ``[("u1", "tok1"), ("u2", "tok2")]``; the other keys still come from ``keys=``.
    """
    path = scenario_path(scenario)
    text = path.read_text(encoding="iso-8859-1")
    body_start = text.index("<scenario")
    head, body = text[:body_start], text[body_start:]
    for index, name in enumerate(fields):
        if f"[{name}]" not in body:
            raise ValueError(f"{path.name} has no [{name}] keyword")
        body = body.replace(f"[{name}]", f"[field{index}]")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{path.stem}.csv-{'-'.join(fields)}.xml"
    target.write_text(head + body, encoding="iso-8859-1")
    return target


def write_injection_csv(
    path: Path, rows: Iterable[Sequence[str]], order: str = "SEQUENTIAL"
) -> Path:
    """Write a SIPp injection file: the order line, then one ``;``-separated row per call."""
    lines = [order]
    for row in rows:
        for value in row:
            if ";" in value or "\n" in value:
                raise ValueError(f"CSV injection values cannot contain ';' or newlines: {value!r}")
        lines.append(";".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path
