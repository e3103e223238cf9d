"""CPU per relayed REGISTER and per proxied INVITE transaction, in one process, without peers.

The profile-friendly companion of figures 1 and 2: a real ``SipServer`` (real UDP sockets on
127.0.0.1, a real SQLite file store) between a minimal client and a minimal "PBX" written
right here, which keep ``--window`` transactions in flight and answer each request with the
fewest bytes possible. Every message still goes through sipush's parser, transactions, module
chain, store and sockets. It prints transactions per second of one core and µs each; with
``--profile`` it runs under cProfile and prints the top functions (what to optimise next).

    python scripts/bench/relay_cpu.py                    # REGISTER relay, 20,000 transactions
    python scripts/bench/relay_cpu.py --kind invite      # INVITE -> 100/180/200 to a live app
    python scripts/bench/relay_cpu.py --profile 30       # and the top 30 functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sipush.config import Config, ServerConfig, StoreConfig, UpstreamConfig  # noqa: E402
from sipush.server import SipServer  # noqa: E402

try:  # both appeared with issue #5; without them (an older checkout) the loop is chosen here
    from sipush.server import event_loop_factory, tune_garbage_collector
except ImportError:  # pragma: no cover - comparing against an older sipush

    def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
        import uvloop

        return uvloop.new_event_loop if choice == "uvloop" else None

    def tune_garbage_collector() -> None:
        pass


from sipush.transport.listen import parse_listen  # noqa: E402

TOKEN = "a1" * 32


def register(user: str, seq: int, port: int) -> bytes:
    return (
        f"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-c{seq}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=f{seq}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: reg-{seq}@bench\r\n"
        f"CSeq: 1 REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port};transport=udp>\r\n"
        f"Expires: 600\r\n"
        f"X-Push: device-os=ios;device-uid={seq:064x};app-id=com.example.app\r\n"
        f"User-Agent: bench\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def invite(user: str, seq: int, pbx_port: int, route: str) -> bytes:
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    return (
        f"INVITE sip:{user}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{pbx_port};branch=z9hG4bK-i{seq}\r\n"
        f"Route: {route}\r\n"
        f"Max-Forwards: 69\r\n"
        f"From: <sip:caller@127.0.0.1>;tag=c{seq}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: call-{seq}@bench\r\n"
        f"CSeq: 1 INVITE\r\n"
        f"Contact: <sip:caller@127.0.0.1:{pbx_port}>\r\n"
        f"Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def header_lines(message: bytes, *names: str) -> list[str]:
    """The header lines of ``message`` whose name is one of ``names`` (lower case), in order."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    return [line for line in head.split("\r\n")[1:] if line.split(":", 1)[0].lower() in names]


def answer(request: bytes, status: str, *extra: str) -> bytes:
    """A response echoing the request's Via, Record-Route, From, To, Call-ID and CSeq."""
    lines = header_lines(request, "via", "record-route", "from", "to", "call-id", "cseq")
    return ("SIP/2.0 " + status + "\r\n" + "\r\n".join([*lines, *extra])
            + "\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip


def value(message: bytes, name: str) -> str:
    return header_lines(message, name)[0].split(":", 1)[1].strip()


class Peer(asyncio.DatagramProtocol):
    """A UDP socket that hands every datagram to ``handle``."""

    def __init__(self, handle: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handle(data, addr)


async def run(kind: str, count: int, window: int) -> dict[str, Any]:
    """``count`` transactions (REGISTER relays or whole calls), ``window`` in flight."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    done = sent = 0
    path = ""
    sockets: dict[str, Any] = {}

    def send(who: str, data: bytes) -> None:
        sockets[who].sendto(data, ("127.0.0.1", sipush_port))

    def completed() -> None:
        nonlocal done
        done += 1
        if sent < count:
            next_one()
        if done == count and not finished.done():
            finished.set_result(None)

    def pbx(data: bytes, addr: tuple[str, int]) -> None:
        """The PBX: accepts REGISTERs; in the call test, places calls through sipush."""
        nonlocal path
        if data.startswith(b"REGISTER"):
            path = value(data, "path")
            contact = value(data, "contact")
            sockets["pbx"].sendto(answer(data, "200 OK", f"Contact: {contact};expires=600"), addr)
        elif data.startswith(b"SIP/2.0 200") and b"INVITE\r\n" in data.split(b"CSeq:", 1)[1][:40]:
            # The callee answered: ACK it, then hang up (both along the route set, §12.1.2).
            routes = [line.split(":", 1)[1].strip() for line in header_lines(data, "record-route")]
            call = value(data, "call-id")
            dialog = "\r\n".join(header_lines(data, "from", "to")) + f"\r\nCall-ID: {call}"
            route = "".join(f"Route: {r}\r\n" for r in routes)
            for method, cseq in (("ACK", 1), ("BYE", 2)):
                branch = f"z9hG4bK-{method}-{call.split('@')[0]}"
                send("pbx", (f"{method} sip:callee@127.0.0.1:{app_port} SIP/2.0\r\n"
                             f"Via: SIP/2.0/UDP 127.0.0.1:{pbx_port};branch={branch}\r\n"
                             f"{route}Max-Forwards: 70\r\n{dialog}\r\nCSeq: {cseq} {method}\r\n"
                             "Content-Length: 0\r\n\r\n").encode())  # fmt: skip
        elif data.startswith(b"SIP/2.0 200") and b"BYE" in data.split(b"CSeq:", 1)[1][:20]:
            completed()

    def app(data: bytes, addr: tuple[str, int]) -> None:
        """The registering device (REGISTER test) or the callee (call test)."""
        if kind == "register" and data.startswith(b"SIP/2.0 200"):
            completed()
        elif data.startswith(b"SIP/2.0 200") and not finished.done() and not path_ready.done():
            path_ready.set_result(None)
        elif data.startswith(b"INVITE"):
            contact = f"Contact: <sip:callee@127.0.0.1:{app_port}>"
            ringing = answer(data, "180 Ringing", contact).replace(
                b"\r\nTo: <sip:callee@127.0.0.1>", b"\r\nTo: <sip:callee@127.0.0.1>;tag=a1"
            )
            sockets["app"].sendto(ringing, addr)
            sockets["app"].sendto(ringing.replace(b"180 Ringing", b"200 OK"), addr)
        elif data.startswith(b"BYE"):
            sockets["app"].sendto(answer(data, "200 OK"), addr)

    def next_one() -> None:
        nonlocal sent
        sent += 1
        if kind == "register":
            send("app", register(f"u{sent}", sent, app_port))
        else:
            send("pbx", invite("callee", sent, pbx_port, path))

    with tempfile.TemporaryDirectory(prefix="bench-relay-cpu-") as tmp:
        for who, handle in (("pbx", pbx), ("app", app)):
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(Peer, handle), local_addr=("127.0.0.1", 0)
            )
            sockets[who] = transport
        pbx_port = sockets["pbx"].get_extra_info("sockname")[1]
        app_port = sockets["app"].get_extra_info("sockname")[1]
        config = Config(
            server=ServerConfig(listen=(parse_listen("udp:127.0.0.1:0"),), flow_key_file=""),
            upstream=UpstreamConfig(uri=f"sip:127.0.0.1:{pbx_port};transport=udp"),
            store=StoreConfig(url=f"sqlite+aiosqlite:///{tmp}/sipush.db"),
        )
        server = SipServer(config)
        await server.start()
        tune_garbage_collector()  # as sipush serve does
        sipush_port = server.transports.listening[0].port
        path_ready: asyncio.Future[None] = loop.create_future()
        if kind == "invite":  # an Android callee (forwarded at once, no push)
            send(
                "app",
                register("callee", 0, app_port).replace(b"device-os=ios", b"device-os=android"),
            )
            await asyncio.wait_for(path_ready, timeout=10)
        started = time.perf_counter()
        cpu = time.process_time()
        main_cpu = time.thread_time()
        for _ in range(min(window, count)):
            next_one()
        await asyncio.wait_for(finished, timeout=300)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        main_cpu = time.thread_time() - main_cpu
        await server.stop()
        for transport in sockets.values():
            transport.close()
    return {
        "kind": kind,
        "transactions": count,
        "elapsed_s": round(elapsed, 3),
        "per_second": round(count / elapsed),
        "cpu_us_each": round(cpu / count * 1e6, 1),
        "event_loop_cpu_us_each": round(main_cpu / count * 1e6, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kind", choices=("register", "invite"), default="register")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="top N functions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    factory = event_loop_factory(args.loop)
    profiler = cProfile.Profile() if args.profile else None
    with asyncio.Runner(loop_factory=factory) as runner:
        if profiler:
            profiler.enable()
        result = runner.run(run(args.kind, args.count, args.window))
        if profiler:
            profiler.disable()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['kind']}: {result['transactions']} in {result['elapsed_s']} s = "
            f"{result['per_second']}/s; CPU each: {result['event_loop_cpu_us_each']} µs on the "
            f"event loop, {result['cpu_us_each']} µs in all threads (client and PBX included)"
        )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
