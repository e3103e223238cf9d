"""A device farm: many simulated iOS apps on one UDP socket, for the wake benchmarks.

Each :class:`Device` has its own AOR (``sip:<prefix><n>@127.0.0.1``), a 64-hex push token and a
``+sip.instance``, and registers *through* sipush (to the PBX behind it) with PortSIP's X-Push
header ``device-os=ios;device-uid=<token>;app-id=<bundle>``. Then it "sleeps": iOS devices are
pushed and held by sipush for every call (``ios_policy = "always"``). When a push for its token
reaches the APNs emulator (:meth:`DeviceFarm.on_push`, fed from the emulator's output), a device
with ``auto_wake`` sends a new REGISTER (same instance, same token, next CSeq) from the same
socket, as a relaunched app would; :meth:`DeviceFarm.wake_all` does that for every device.

The farm answers every INVITE it receives with ``486 Busy Here`` (a final answer that only the
device can give: sipush's own endings are 480 and 487) and absorbs the ACK; BYE, CANCEL and
anything else get 200. A retransmitted INVITE (same Call-ID and branch) gets the same answer
again and is not counted twice; a *second* INVITE for the same call (another branch) would be a
second release, and is recorded as such.

One socket serves every device: they differ by AOR, and sipush keys a binding by AOR and
device, so calls for device ``n`` arrive with ``n``'s user in the Request-URI.

Theory of operation. The farm runs an asyncio loop on its own thread; the benchmark's main
thread calls :meth:`register_all`, :meth:`wake_all`, :meth:`snapshot` (blocking, bounded in
time) and the emulator reader thread calls :meth:`on_push`. A REGISTER is a small client
transaction (RFC 3261 §17.1.2): retransmitted at T1, 2*T1, ... up to T2 until a final
response, given up after 64*T1 (Timer F). Bulk registration keeps at most ``window``
transactions in flight, so it runs at whatever rate sipush sustains.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

LOOPBACK = "127.0.0.1"
T1 = 0.5
T2 = 4.0
TIMER_F = 64 * T1
SOCKET_BUFFER = 8 * 1024 * 1024
COMPACT = {
    "v": "via",
    "i": "call-id",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
}


@dataclass
class Invite:
    """One INVITE a device received (its first copy; ``copies`` counts retransmissions)."""

    call_id: str
    branch: str
    arrived: float  # monotonic
    copies: int = 1


@dataclass
class Device:
    index: int
    user: str
    token: str
    instance: str
    register_call_id: str
    cseq: int = 0
    registered: int = 0  # REGISTERs answered 2xx
    register_failures: int = 0
    pushed_call_ids: list[str] = field(default_factory=list)
    push_seen: list[float] = field(default_factory=list)  # monotonic, when the farm learnt
    register_sent: list[float] = field(default_factory=list)  # monotonic, wake REGISTERs
    invites: dict[tuple[str, str], Invite] = field(default_factory=dict)  # (call_id, branch)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{LOOPBACK}"


@dataclass
class Message:
    """The little of a SIP message the farm needs."""

    first_line: str
    headers: list[tuple[str, str]]  # (lower-case long name, value), in order

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first_line.split(" ", 2)[1])

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0]

    @property
    def request_user(self) -> str:
        uri = self.first_line.split(" ", 2)[1]
        if uri.startswith("sip:") and "@" in uri:
            return uri[4:].split("@", 1)[0]
        return ""

    def get(self, name: str) -> str:
        for header, value in self.headers:
            if header == name:
                return value
        return ""

    def all(self, name: str) -> list[str]:
        return [value for header, value in self.headers if header == name]

    @property
    def branch(self) -> str:
        top = self.get("via").split(",", 1)[0]
        for param in top.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "branch":
                return value
        return ""


def parse(data: bytes) -> Message | None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if not lines or not lines[0]:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return Message(lines[0], headers)


@dataclass
class _RegisterTx:
    device: Device
    data: bytes
    done: asyncio.Future[int]
    sent: float
    interval: float = T1
    timer: asyncio.TimerHandle | None = None


class DeviceFarm(asyncio.DatagramProtocol):
    """``count`` iOS devices behind one UDP socket; see the module docstring."""

    def __init__(
        self,
        count: int,
        *,
        proxy: tuple[str, int],
        bundle: str,
        prefix: str = "dev",
        auto_wake: bool = True,
        answer: int = 486,
        expires: int = 3600,
    ) -> None:
        run = os.urandom(3).hex()
        self.devices = [
            Device(
                index=n,
                user=f"{prefix}{n}",
                token=f"{run}{n:058x}",
                instance=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sipush-bench:{run}:{n}")),
                register_call_id=f"reg-{run}-{n}@{LOOPBACK}",
            )
            for n in range(count)
        ]
        self.by_user = {device.user: device for device in self.devices}
        self.by_token = {device.token: device for device in self.devices}
        self.proxy = proxy
        self.bundle = bundle
        self.auto_wake = auto_wake
        self.answer = answer
        self.expires = expires
        self.port = 0
        self.unknown_requests = 0
        self.stray_responses = 0
        self.register_retransmissions = 0
        self._branches = itertools.count()
        self._pending: dict[str, _RegisterTx] = {}
        self._answers: dict[tuple[str, str], bytes] = {}  # (call_id, branch) -> our response
        self._transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="device-farm")
        self._thread.daemon = True

    # -- lifecycle (main thread) ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.call(self._open())

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            for tx in self._pending.values():
                if tx.timer is not None:
                    tx.timer.cancel()
            if self._transport is not None:
                self._transport.close()

        with contextlib.suppress(Exception):
            self.call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run ``coroutine`` on the farm's loop and wait (at most ``timeout`` s) for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        sock.bind((LOOPBACK, 0))
        self.port = sock.getsockname()[1]
        await self._loop.create_datagram_endpoint(lambda: self, sock=sock)

    # -- what the benchmarks call (main thread) -------------------------------------------------

    def register_all(
        self, devices: Sequence[Device] | None = None, *, window: int = 50, timeout: float = 120.0
    ) -> dict[str, float]:
        """REGISTER ``devices`` (default: all), ``window`` at a time; bounded by ``timeout``.

        Returns ``{"ok", "failed", "seconds", "rate"}``."""
        chosen = list(self.devices if devices is None else devices)
        started = time.monotonic()
        results: list[int] = self.call(self._register_many(chosen, window, timeout), timeout + 5)
        elapsed = time.monotonic() - started
        ok = sum(1 for status in results if 200 <= status < 300)
        return {
            "ok": ok,
            "failed": len(chosen) - ok,
            "seconds": round(elapsed, 2),
            "rate": round(len(chosen) / elapsed, 1) if elapsed else 0.0,
        }

    def wake_all(self, *, window: int = 50, timeout: float = 120.0) -> dict[str, float]:
        """Every device re-registers (as if each had been relaunched by its push)."""
        return self.register_all(window=window, timeout=timeout)

    def on_push(self, token: str, kind: str, call_id: str) -> None:
        """A push reached the APNs emulator (any thread)."""
        self._loop.call_soon_threadsafe(self._pushed, token, kind, call_id)

    def snapshot(self) -> list[Device]:
        """The devices as they are now (read on the farm's thread, so consistent)."""

        async def copy() -> list[Device]:
            return [
                replace(
                    d,
                    pushed_call_ids=list(d.pushed_call_ids),
                    push_seen=list(d.push_seen),
                    register_sent=list(d.register_sent),
                    invites=dict(d.invites),
                )
                for d in self.devices
            ]

        result: list[Device] = self.call(copy())
        return result

    def invites_received(self) -> int:
        async def count() -> int:
            return sum(len(d.invites) for d in self.devices)

        result: int = self.call(count())
        return result

    def wait_for_invites(self, count: int, timeout: float) -> int:
        """Poll until ``count`` INVITEs arrived (or ``timeout`` s); return how many did."""
        deadline = time.monotonic() + timeout
        seen = self.invites_received()
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = self.invites_received()
        return seen

    # -- the loop side ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def _pushed(self, token: str, kind: str, call_id: str) -> None:
        device = self.by_token.get(token)
        if device is None or kind != "incomingCall":
            return
        device.pushed_call_ids.append(call_id)
        device.push_seen.append(time.monotonic())
        if self.auto_wake:
            device.register_sent.append(time.monotonic())
            self._register(device)

    async def _register_many(self, devices: list[Device], window: int, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        results: list[int] = []
        iterator: Iterator[Device] = iter(devices)
        in_flight: set[asyncio.Future[int]] = set()
        while True:
            while len(in_flight) < window and time.monotonic() < deadline:
                device = next(iterator, None)
                if device is None:
                    break
                in_flight.add(self._register(device))
            if not in_flight:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, in_flight = await asyncio.wait(
                in_flight, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            results.extend(future.result() for future in done)
        for future in in_flight:
            future.cancel()
        return results

    def _register(self, device: Device) -> asyncio.Future[int]:
        device.cseq += 1
        branch = f"z9hG4bK-f{next(self._branches)}-{device.index}"
        data = (
            f"REGISTER sip:{LOOPBACK} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{device.user}@{LOOPBACK}>;tag=t{device.index}\r\n"
            f"To: <sip:{device.user}@{LOOPBACK}>\r\n"
            f"Call-ID: {device.register_call_id}\r\n"
            f"CSeq: {device.cseq} REGISTER\r\n"
            f"Contact: <sip:{device.user}@{LOOPBACK}:{self.port};transport=udp>"
            f';+sip.instance="<urn:uuid:{device.instance}>"\r\n'
            f"Expires: {self.expires}\r\n"
            f"X-Push: device-os=ios;device-uid={device.token};app-id={self.bundle}\r\n"
            "User-Agent: sipush-bench device-farm\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        done: asyncio.Future[int] = self._loop.create_future()
        tx = _RegisterTx(device, data, done, time.monotonic())
        self._pending[branch] = tx
        self._send_register(branch, tx)
        return done

    def _send_register(self, branch: str, tx: _RegisterTx) -> None:
        if self._transport is None or tx.done.done():
            return
        if time.monotonic() - tx.sent >= TIMER_F:
            self._pending.pop(branch, None)
            tx.device.register_failures += 1
            tx.done.set_result(408)
            return
        if tx.timer is not None:
            self.register_retransmissions += 1
        self._transport.sendto(tx.data, self.proxy)
        tx.timer = self._loop.call_later(tx.interval, self._send_register, branch, tx)
        tx.interval = min(tx.interval * 2, T2)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        message = parse(data)
        if message is None:
            return
        if message.is_response:
            self._response(message)
        else:
            self._request(message, data, addr)

    def _response(self, message: Message) -> None:
        tx = self._pending.get(message.branch)
        if tx is None or not message.get("cseq").endswith("REGISTER"):
            self.stray_responses += 1
            return
        status = message.status
        if status < 200:
            tx.interval = T2  # RFC 3261 §17.1.2.2: PROCEEDING retransmits at T2
            return
        self._pending.pop(message.branch, None)
        if tx.timer is not None:
            tx.timer.cancel()
        if 200 <= status < 300:
            tx.device.registered += 1
        else:
            tx.device.register_failures += 1
        if not tx.done.done():
            tx.done.set_result(status)

    def _request(self, message: Message, data: bytes, addr: tuple[str | Any, int]) -> None:
        method = message.method
        call_id = message.get("call-id")
        if method == "ACK":
            return
        if method == "INVITE":
            device = self.by_user.get(message.request_user)
            key = (call_id, message.branch)
            if device is None:
                self.unknown_requests += 1
                self._reply(message, 404, addr)
                return
            seen = device.invites.get(key)
            if seen is not None:
                seen.copies += 1
                answer = self._answers.get(key)
                if answer is not None and self._transport is not None:
                    self._transport.sendto(answer, addr)
                return
            device.invites[key] = Invite(call_id, message.branch, time.monotonic())
            self._answers[key] = self._reply(message, self.answer, addr, tag=f"d{device.index}")
            return
        self._reply(message, 200, addr)

    def _reply(
        self, message: Message, status: int, addr: tuple[str | Any, int], tag: str = "farm"
    ) -> bytes:
        reason = {200: "OK", 404: "Not Found", 486: "Busy Here"}.get(status, "Busy Here")
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in message.all("via")]
        to = message.get("to")
        if ";tag=" not in to.replace(" ", ""):
            to = f"{to};tag={tag}"
        lines += [
            f"From: {message.get('from')}",
            f"To: {to}",
            f"Call-ID: {message.get('call-id')}",
            f"CSeq: {message.get('cseq')}",
            "Server: sipush-bench device-farm",
            "Content-Length: 0",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if self._transport is not None:
            self._transport.sendto(data, addr)
        return data
