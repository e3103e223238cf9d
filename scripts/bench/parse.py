"""Parse + serialise throughput of the SIP core on typical messages.

Each operation is ``bytes(parse_message(data))``: what a proxy does at least once per message.
Measured for a realistic mobile REGISTER (RFC 8599 pn-* Contact params, an X-Push header) and an
INVITE with a ~300-byte SDP body. The process is pinned to one CPU when the OS allows it; each
message gets a warm-up, then the best of ``--runs`` runs of ``--seconds`` each is reported.

    python scripts/bench/parse.py                 # table
    python scripts/bench/parse.py --json          # one JSON object on stdout
    python scripts/bench/parse.py --runs 3 --seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sipush.sip import parse_message


def _crlf(lines: list[str], body: str = "") -> bytes:
    body_bytes = body.replace("\n", "\r\n").encode()
    head = "\r\n".join(lines).replace("{length}", str(len(body_bytes)))
    return head.encode() + b"\r\n\r\n" + body_bytes


REGISTER = _crlf(
    [
        "REGISTER sip:sip.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 10.20.30.40:52144;rport;branch=z9hG4bK.8f3Kq2Zp1xYc7Wn0",
        "Max-Forwards: 70",
        "Contact: <sip:alice@10.20.30.40:52144;transport=udp;pn-provider=apns"
        ";pn-prid=3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"
        ";pn-param=ABCDE12345.com.example.app.voip>"
        ';+sip.instance="<urn:uuid:0a1b2c3d-4e5f-6789-abcd-ef0123456789>";reg-id=1'
        ";expires=600",
        "To: <sip:alice@sip.example.com>",
        'From: "Alice" <sip:alice@sip.example.com>;tag=a73kszlfl',
        "Call-ID: 7b3f9d2c-51e0-4a8b-9c6d-2f4e8a1b0c3d",
        "CSeq: 20 REGISTER",
        "Expires: 600",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY, REFER, INFO, UPDATE",
        "Supported: path, gruu, outbound, replaces",
        "User-Agent: ExampleApp/4.2.1 (iOS 17.5; iPhone15,2) belle-sip/5.3",
        "X-Push: device-os=ios;device-uid=3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579"
        "bdf02468|9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
        ";allow-call-push=true;allow-message-push=true;app-id=com.example.app",
        "Content-Length: 0",
    ]
)

SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 203.0.113.17
s=-
c=IN IP4 203.0.113.17
t=0 0
m=audio 49170 RTP/AVP 0 8 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=rtcp:49171 IN IP4 203.0.113.17
a=sendrecv
"""

INVITE = _crlf(
    [
        "INVITE sip:alice@10.20.30.40:52144;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a9d1c2e3f4b5a6c7;rport",
        "Max-Forwards: 69",
        "Record-Route: <sip:192.0.2.10;lr>",
        "Contact: <sip:bob@192.0.2.10:5060>",
        "To: <sip:alice@sip.example.com>",
        'From: "Bob" <sip:bob@sip.example.com>;tag=1928301774',
        "Call-ID: a84b4c76e66710@pbx.example.com",
        "CSeq: 314159 INVITE",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY, REFER, INFO, UPDATE",
        "Supported: replaces, timer",
        "User-Agent: Asterisk PBX 20.5.0",
        "Content-Type: application/sdp",
        "Content-Length: {length}",
    ],
    SDP,
)

MESSAGES = {"REGISTER": REGISTER, "INVITE": INVITE}


@dataclass
class Result:
    name: str
    size: int
    parses_per_second: float
    microseconds_per_parse: float
    runs: list[float]


def pin_to_one_cpu() -> int | None:
    """Pin this process to the last CPU it may run on; return it (None if unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def rate(operation: Callable[[], object], seconds: float, batch: int = 200) -> float:
    """Operations per second of ``operation``, run in batches for about ``seconds``."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            operation()
        done += batch
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


# Every typed view a proxy may read. parse_message validates all of them but builds the Via,
# From, To, Contact and Route objects on first use; the "+ views" rows pay for building them all.
VIEWS = ("vias", "from_", "to", "call_id", "cseq", "max_forwards", "contacts", "routes",
         "record_routes", "expires", "supported", "content_type")  # fmt: skip


def read_views(message: object) -> None:
    for view in VIEWS:
        getattr(message, view)


def measure(name: str, data: bytes, runs: int, seconds: float, *, views: bool = False) -> Result:
    round_trip = bytes(parse_message(data))
    parse_message(round_trip)  # what we serialise must parse again

    def operation() -> bytes:
        message = parse_message(data)
        if views:
            read_views(message)
        return bytes(message)

    rate(operation, min(seconds, 0.2))  # warm-up
    rates = [rate(operation, seconds) for _ in range(runs)]
    best = max(rates)
    return Result(name + (" + views" if views else ""), len(data), best, 1e6 / best, rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5, help="runs per message (default 5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per run (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 0 < args.seconds <= 60:
        parser.error("--runs must be >= 1 and --seconds in (0, 60]")

    cpu = None if args.no_pin else pin_to_one_cpu()
    results = [
        measure(name, data, args.runs, args.seconds, views=views)
        for views in (False, True)
        for name, data in MESSAGES.items()
    ]

    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "parse_message + bytes()",
                    "python": platform.python_version(),
                    "implementation": platform.python_implementation(),
                    "machine": platform.machine(),
                    "pinned_cpu": cpu,
                    "runs": args.runs,
                    "seconds_per_run": args.seconds,
                    "results": [asdict(result) for result in results],
                },
                indent=2,
            )
        )
        return 0

    pinned = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    print(
        f"parse_message + bytes(), Python {platform.python_version()}, {pinned}, "
        f"best of {args.runs} x {args.seconds:g} s"
    )
    print(f"{'message':<18} {'bytes':>6} {'parses/s':>12} {'us/parse':>9}")
    for result in results:
        print(
            f"{result.name:<18} {result.size:>6} {result.parses_per_second:>12,.0f} "
            f"{result.microseconds_per_parse:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
