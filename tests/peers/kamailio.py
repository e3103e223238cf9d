"""A real Kamailio registrar/proxy ("the PBX") for tests, and its location table as Python objects.

Usage::

    with run_kamailio(tmp_path / "pbx") as pbx:              # or auth=True, password="secret"
        ...  # point sipush at pbx.upstream("udp") / pbx.upstream("tcp")
        contacts = pbx.wait_for_contacts("alice", 1)          # ul.dump, parsed
        assert contacts[0].path_uris == [f"sip:127.0.0.1:{sipush_port};lr"]

``run_kamailio`` copies ``examples/kamailio.cfg`` (the operators' example) into the work
directory, rewriting only its ``#!substdef`` site settings (listen IP and port, run directory
for the ``ctl`` socket, password), then runs ``kamailio -f CFG -DD -E -m 64 -M 8 -Y DIR -w DIR
-P DIR/kamailio.pid`` in the foreground (``-A WITH_AUTH`` with ``auth=True``). It is ready
when it answers an OPTIONS over UDP and over TCP with 200. On exit it is stopped by its PID
(SIGTERM, then SIGKILL after 10 s). Its stderr (``-E``: the log) goes to ``DIR/kamailio.log``
and is quoted in every failure message.

``KamailioProcess.location()`` runs ``kamcmd -s unix:DIR/kamailio_ctl ul.dump`` and returns
``{aor: [Contact, ...]}``; with ``use_domain=0`` the AOR is the user part only ("alice").
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "kamailio.cfg"
DEFAULT_PASSWORD = "secret"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
INSTALL_HINT = "run `bash scripts/test.sh` (it installs Debian's kamailio and sip-tester)"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def kamailio_binaries() -> tuple[str, str]:
    """Return the paths of ``kamailio`` and ``kamcmd``; fail the test if either is missing.

    Both live in ``/usr/sbin``, which a non-root PATH may lack, so the sbin directories are
    searched too.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    kamailio = shutil.which("kamailio", path=search)
    kamcmd = shutil.which("kamcmd", path=search)
    if kamailio is None or kamcmd is None:
        pytest.fail(f"kamailio/kamcmd are not installed: {INSTALL_HINT}")
    return kamailio, kamcmd


# --- the location table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """One binding of Kamailio's location table, as ``ul.dump`` shows it.

    ``[not set]`` values become ``None``. ``expires`` is the number of seconds left (``None``
    for a permanent contact). ``raw`` keeps every field ``ul.dump`` printed, as text.
    """

    address: str
    expires: int | None
    path: str | None
    received: str | None
    user_agent: str | None
    call_id: str | None
    cseq: int | None
    instance: str | None
    socket: str | None
    q: str | None
    raw: dict[str, str] = field(compare=False, repr=False)

    @property
    def path_uris(self) -> list[str]:
        """The Path header's URIs, in order, without the angle brackets."""
        if not self.path:
            return []
        return re.findall(r"<([^>]*)>", self.path)

    @property
    def uri_params(self) -> dict[str, str | None]:
        """The Contact URI's parameters (``transport``, ``pn-provider``, ...), names lower-cased."""
        params: dict[str, str | None] = {}
        for part in self.address.split(";")[1:]:
            name, sep, value = part.partition("=")
            params[name.strip().lower()] = value if sep else None
        return params


def parse_kamcmd_tree(text: str) -> dict[str, Any]:
    """Parse kamcmd's structure output (``Name: {`` ... ``}``, ``Name: value``) into dicts.

    A name seen once maps to its value (a ``str`` or a ``dict``); a name seen several times in
    the same block (``Contact``, ``Info``) maps to a list of them.
    """
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line == "{":
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        value = value.strip()
        block = stack[-1]
        item: Any
        if value == "{":
            item = {}
            _add(block, name.strip(), item)
            stack.append(item)
        else:
            _add(block, name.strip(), value)
    return root


def _add(block: dict[str, Any], name: str, item: Any) -> None:
    if name not in block:
        block[name] = item
    elif isinstance(block[name], list):
        block[name].append(item)
    else:
        block[name] = [block[name], item]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _not_set(value: str | None) -> str | None:
    return None if value in (None, "", "[not set]") else value


def _int_or_none(value: str | None) -> int | None:
    value = _not_set(value)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_ul_dump(text: str) -> dict[str, list[Contact]]:
    """Turn ``kamcmd ul.dump`` output into ``{aor: [Contact, ...]}`` (AORs with no contact drop)."""
    tree = parse_kamcmd_tree(text)
    table: dict[str, list[Contact]] = {}
    for domain in _as_list(tree.get("Domains", {}).get("Domain")):
        aors = domain.get("AoRs")
        if not isinstance(aors, dict):
            continue
        for info in _as_list(aors.get("Info")):
            aor = info.get("AoR", "")
            contacts_block = info.get("Contacts")
            if not isinstance(contacts_block, dict):
                continue
            for entry in _as_list(contacts_block.get("Contact")):
                raw = {key: value for key, value in entry.items() if isinstance(value, str)}
                expires_text = raw.get("Expires", "")
                contact = Contact(
                    address=raw.get("Address", ""),
                    expires=None if expires_text == "permanent" else _int_or_none(expires_text),
                    path=_not_set(raw.get("Path")),
                    received=_not_set(raw.get("Received")),
                    user_agent=_not_set(raw.get("User-Agent")),
                    call_id=_not_set(raw.get("Call-ID")),
                    cseq=_int_or_none(raw.get("CSeq")),
                    instance=_not_set(raw.get("Instance")),
                    socket=_not_set(raw.get("Socket")),
                    q=_not_set(raw.get("Q")),
                    raw=raw,
                )
                table.setdefault(aor, []).append(contact)
    return table


# --- the process --------------------------------------------------------------------------------


@dataclass
class KamailioProcess:
    """A running Kamailio started by :func:`run_kamailio`."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    workdir: Path
    config_path: Path
    log_path: Path
    ctl_socket: Path
    kamcmd_path: str
    auth: bool
    password: str
    record_route: bool

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        """``host:port``, for SIPp's remote argument."""
        return f"{self.host}:{self.port}"

    def upstream(self, transport: str = "udp") -> str:
        """The URI to give sipush as ``--upstream``: ``sip:HOST:PORT;transport=udp|tcp``."""
        return f"sip:{self.host}:{self.port};transport={transport}"

    def log_text(self) -> str:
        """Everything Kamailio logged so far (stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail: int = 6000) -> str:
        """A block for failure messages: PID, config path and the tail of the log."""
        return (
            f"--- kamailio pid {self.pid} (exit {self.proc.poll()}), config {self.config_path},"
            f" log {self.log_path} (tail):\n{self.log_text()[-tail:]}"
        )

    def kamcmd(self, *args: str, timeout: float = 5.0) -> str:
        """Run ``kamcmd -s unix:<ctl socket> ARGS...``; return stdout, fail the test on error."""
        command = [self.kamcmd_path, "-s", f"unix:{self.ctl_socket}", *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{' '.join(command)} did not finish within {timeout} s\n{self.describe()}"
            ) from None
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}\n"
                + self.describe()
            )
        return done.stdout

    def location(self) -> dict[str, list[Contact]]:
        """The location table now: ``{aor: [Contact, ...]}`` (``ul.dump``)."""
        return parse_ul_dump(self.kamcmd("ul.dump"))

    def contacts(self, aor: str) -> list[Contact]:
        """The contacts of one AOR now (``[]`` if none)."""
        return self.location().get(aor, [])

    def wait_for_contacts(self, aor: str, count: int, timeout: float = 5.0) -> list[Contact]:
        """Poll ``ul.dump`` until ``aor`` has exactly ``count`` contacts; return them."""
        deadline = time.monotonic() + timeout
        while True:
            contacts = self.contacts(aor)
            if len(contacts) == count:
                return contacts
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{aor!r} has {len(contacts)} contacts in Kamailio's location table, expected"
                    f" {count} within {timeout} s: {contacts}\n{self.describe()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM this PID, wait, SIGKILL after ``timeout``; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def render_config(
    template: Path,
    *,
    host: str,
    port: int,
    rundir: Path,
    password: str,
) -> str:
    """Return ``template`` with its ``#!substdef "!PBX_...!value!g"`` site settings replaced."""
    text = template.read_text()
    values = {
        "PBX_LISTEN_IP": host,
        "PBX_PORT": str(port),
        "PBX_RUNDIR": str(rundir),
        "PBX_PASSWORD": password,
    }
    for name, value in values.items():
        if "!" in value or '"' in value:
            raise ValueError(f'{name} value {value!r} must not contain ! or "')
        pattern = re.compile(rf'^#!substdef "!{name}![^!]*!g"$', re.MULTILINE)
        text, count = pattern.subn(f'#!substdef "!{name}!{value}!g"', text)
        if count != 1:
            raise AssertionError(f"{template} must have exactly one #!substdef line for {name}")
    return text


@contextlib.contextmanager
def run_kamailio(
    workdir: Path,
    *,
    auth: bool = False,
    password: str = DEFAULT_PASSWORD,
    record_route: bool = False,
    port: int | None = None,
    host: str = LOOPBACK,
    template: Path = EXAMPLE_CONFIG,
    defines: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[KamailioProcess]:
    """Start Kamailio from ``template`` on UDP+TCP ``host:port`` in ``workdir``; stop it on exit.

    ``auth=True`` adds ``-A WITH_AUTH``: REGISTER needs digest auth, with ``password`` for every
    user (and the auth user equal to the To user). ``record_route=True`` adds ``-A WITH_RR``:
    Kamailio record-routes INVITE dialogs, so in-dialog requests pass through it (needed when a
    SIPp UAS gets a BYE by another path than its INVITE: SIPp answers to the INVITE's source).
    ``defines`` are more ``-A`` preprocessor defines. ``port=None`` picks a free port. Yields a
    :class:`KamailioProcess` once Kamailio answers OPTIONS over UDP and TCP.
    """
    kamailio, kamcmd = kamailio_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(host) if port is None else port
    config_path = workdir / "kamailio.cfg"
    config_path.write_text(
        render_config(template, host=host, port=port, rundir=workdir, password=password)
    )
    log_path = workdir / "kamailio.log"
    command = [
        kamailio,
        "-f", str(config_path),
        "-DD",  # do not daemonize: this PID is the main process
        "-E",  # log to stderr, not syslog
        "-m", "64",
        "-M", "8",
        "-Y", str(workdir),  # run directory
        "-w", str(workdir),  # working directory (core files)
        "-P", str(workdir / "kamailio.pid"),
    ]  # fmt: skip
    flags = [name for name, on in (("WITH_AUTH", auth), ("WITH_RR", record_route)) if on]
    for define in (*flags, *defines):
        command += ["-A", define]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    pbx = KamailioProcess(
        proc=proc,
        host=host,
        port=port,
        workdir=workdir,
        config_path=config_path,
        log_path=log_path,
        ctl_socket=workdir / "kamailio_ctl",
        kamcmd_path=kamcmd,
        auth=auth,
        password=password,
        record_route=record_route,
    )
    try:
        _wait_until_ready(pbx, ready_timeout)
        yield pbx
    finally:
        pbx.stop()


def options_request(host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    """An OPTIONS for the server itself (no user part), from ``local``."""
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (
        f"OPTIONS sip:{host}:{port};transport={transport} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]};rport;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{local[0]}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{local[0]}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def options_ping(host: str, port: int, transport: str = "udp", timeout: float = 1.0) -> int | None:
    """Send one OPTIONS over ``transport``; return the status code of the answer, or ``None``."""
    try:
        if transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((LOOPBACK, 0))
                sock.settimeout(timeout)
                sock.sendto(options_request(host, port, "udp", sock.getsockname()), (host, port))
                reply, _ = sock.recvfrom(65535)
        else:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(options_request(host, port, "tcp", sock.getsockname()))
                reply = sock.recv(65535)
    except OSError:
        return None
    match = re.match(rb"SIP/2\.0 (\d{3}) ", reply)
    return int(match.group(1)) if match else None


def _wait_until_ready(pbx: KamailioProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = ["udp", "tcp"]
    while pending:
        if pbx.proc.poll() is not None:
            raise AssertionError(f"kamailio exited with {pbx.proc.returncode}\n{pbx.describe()}")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"kamailio did not answer OPTIONS over {pending} within {timeout} s\n"
                + pbx.describe()
            )
        if options_ping(pbx.host, pbx.port, pending[0], timeout=0.5) == 200:
            pending.pop(0)
        else:
            time.sleep(0.1)
