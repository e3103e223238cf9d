#!/usr/bin/env python3
"""A minimal "mobile app" softphone (pjsua2) that registers through sipush with push info.

It registers one account (over UDP or TCP) to a registrar, usually through sipush as the
outbound proxy, carrying its push token either in PortSIP's ``X-Push`` header or in RFC 8599
``pn-*`` Contact URI parameters, plus a ``+sip.instance``. It answers incoming calls at once
(200 by default; no audio hardware: pjsua's null audio device), accepts MESSAGE (pjsua answers
200), and reports what happens as JSON lines on stdout. It reads commands, one per line, on
stdin. Kill it (SIGKILL) to play an app that the OS killed: its sockets close, its TCP flow drops.

Install:  pip install pjsua2-python     (or: pip install -e '.[dev]' in a sipush checkout)

Run (sipush on 127.0.0.1:5060, the PBX behind it):

    python examples/pjsua2_app.py --user alice --domain 127.0.0.1 \\
        --registrar sip:127.0.0.1:5060 --proxy sip:127.0.0.1:5060 --transport tcp \\
        --x-push "device-os=ios;device-uid=0f3c...;allow-call-push=true;app-id=com.example.app"

    python examples/pjsua2_app.py --user bob --domain 127.0.0.1 \\
        --registrar sip:127.0.0.1:5060 --proxy sip:127.0.0.1:5060 \\
        --pn-provider fcm --pn-prid "dXNlcl90b2tlbg" --pn-param my-firebase-project

Events (stdout, one JSON object per line, always with "event" and "t" = Unix time):

    ready               {"pid", "transport", "local": "127.0.0.1:PORT", "contact_uri_params",
                         "instance"}: the endpoint and transport are up, REGISTER is on its way
    registered          {"code", "reason", "expires", "response"}: a 2xx to REGISTER
                        ("response" is the whole 200, e.g. to check Feature-Caps)
    registration_failed {"code", "reason", "response"}: a final non-2xx (or a timeout, code 408)
    unregistered        {"code", "reason"}: the de-REGISTER (Expires: 0) completed
    incoming_call       {"call_id", "from", "to", "src", "request"}: an INVITE arrived
                        ("request" is the whole INVITE as received)
    outgoing_call       {"call_id", "to"}: the INVITE for a "call" command was sent
    call_confirmed      {"call_id", "direction"}: the call is up (ACK sent/received)
    call_disconnected   {"call_id", "direction", "code", "reason"}: the call ended
    message_received    {"from", "to", "body", "content_type", "src", "request"}: a MESSAGE
    command_error       {"command", "error"}: a command could not be carried out
    stopped             {"reason"}: the last line before a normal exit

Commands (stdin, one per line):

    hangup              end every call (BYE, or a final response when not yet answered)
    unregister          send REGISTER with Expires: 0
    register            send a (re-)REGISTER
    call URI            make a call, e.g. "call sip:bob@127.0.0.1"
    quit                hang up, unregister, exit 0 (end of input does the same)

pjsua2 rules this program follows (see the sipush test notes): no pjsua worker threads
(``threadCnt = 0`` for SIP and media; the main loop drives ``libHandleEvents``, so every
callback runs on this thread), ``sipOutboundUse = 0`` (no ``;ob``), quiet logging, one
``Endpoint`` per process, Call and Account objects kept in containers and dropped only outside
their callbacks, everything deleted and garbage-collected before ``libDestroy()``. The wheel
allows 4 calls per process: further INVITEs get 486.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

try:
    import pjsua2 as pj  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("pjsua2 is not installed: pip install pjsua2-python\n")
    raise SystemExit(3) from None

MAX_CALLS = 4
LOOP_MS = 10


class EventSink:
    """Writes one JSON object per line to the original stdout (pjsua cannot write there)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "t": round(time.time(), 3), **fields}
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        while data:
            written = os.write(self.fd, data)
            data = data[written:]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[int]:
    """Point fd 1 at stderr for the whole run; yield a private fd for the real stdout.

    pjlib prints to fd 1 (``libCreate()`` does so before any log config applies); the JSON
    event stream must stay clean.
    """
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        yield events_fd
    finally:
        os.close(events_fd)


def header_of(message: str, name: str) -> str | None:
    """The first value of header ``name`` in a SIP message text (case-insensitive)."""
    wanted = name.lower()
    for line in message.replace("\r\n", "\n").split("\n")[1:]:
        if not line:
            break
        header, sep, value = line.partition(":")
        if sep and header.strip().lower() == wanted:
            return value.strip()
    return None


class AppCall(pj.Call):
    """One call; reports its state changes. Dropped by the App after DISCONNECTED."""

    def __init__(self, app: App, account: pj.Account, call_id: int, direction: str) -> None:
        super().__init__(account, call_id)
        self.app = app
        self.direction = direction
        self.sip_call_id = ""

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.sip_call_id = info.callIdString or self.sip_call_id
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.app.events.emit(
                "call_confirmed", call_id=self.sip_call_id, direction=self.direction
            )
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.app.events.emit(
                "call_disconnected",
                call_id=self.sip_call_id,
                direction=self.direction,
                code=info.lastStatusCode,
                reason=info.lastReason,
            )
            self.app.finished_calls.append(self)


class AppAccount(pj.Account):
    """The app's one account: registration events, incoming calls and messages."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app
        self.unregistering = False

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        response = prm.rdata.wholeMsg if prm.rdata is not None else ""
        code = int(prm.code)
        if code == 0:  # a transport error before any response
            code = 503
        if self.unregistering and 200 <= code < 300:
            self.unregistering = False
            self.app.events.emit("unregistered", code=code, reason=prm.reason)
        elif 200 <= code < 300 and prm.expiration > 0:
            self.app.events.emit(
                "registered",
                code=code,
                reason=prm.reason,
                expires=int(prm.expiration),
                response=response,
            )
        elif code >= 300:
            self.app.events.emit(
                "registration_failed", code=code, reason=prm.reason, response=response
            )

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = AppCall(self.app, self, prm.callId, "incoming")
        info = call.getInfo()
        call.sip_call_id = info.callIdString
        self.app.calls.append(call)
        self.app.events.emit(
            "incoming_call",
            call_id=info.callIdString,
            **{"from": info.remoteUri},
            to=info.localUri,
            src=prm.rdata.srcAddress,
            request=prm.rdata.wholeMsg,
        )
        answer = pj.CallOpParam()
        live_calls = len(self.app.calls) - len(self.app.finished_calls)
        answer.statusCode = 486 if live_calls > MAX_CALLS else self.app.answer_code
        call.answer(answer)

    def onInstantMessage(self, prm: pj.OnInstantMessageParam) -> None:
        self.app.events.emit(
            "message_received",
            **{"from": prm.fromUri},
            to=prm.toUri,
            body=prm.msgBody,
            content_type=prm.contentType,
            src=prm.rdata.srcAddress,
            request=prm.rdata.wholeMsg,
        )


class App:
    """The endpoint, one transport, one account, the calls, and the main loop."""

    def __init__(self, args: argparse.Namespace, events: EventSink) -> None:
        self.args = args
        self.events = events
        self.answer_code: int = args.answer_code
        self.calls: list[AppCall] = []
        self.finished_calls: list[AppCall] = []
        self.account: AppAccount | None = None
        self.endpoint: pj.Endpoint | None = None
        self.stop_reason: str | None = None
        self.stdin_buffer = b""
        self.instance: str | None = (
            None if args.no_instance else (args.instance or str(uuid.uuid4()))
        )

    # --- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        args = self.args
        endpoint = pj.Endpoint()
        self.endpoint = endpoint
        endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.maxCalls = MAX_CALLS
        config.uaConfig.userAgent = args.user_agent
        config.medConfig.threadCnt = 0
        config.logConfig.level = args.log_level
        config.logConfig.consoleLevel = args.log_level
        config.logConfig.msgLogging = 1 if args.sip_trace else 0
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()

        transport_config = pj.TransportConfig()
        transport_config.boundAddress = args.bind
        transport_config.publicAddress = args.bind
        transport_config.port = args.port
        kind = pj.PJSIP_TRANSPORT_TCP if args.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
        transport_id = endpoint.transportCreate(kind, transport_config)
        endpoint.libStart()
        local = endpoint.transportGetInfo(transport_id).localName

        account_config = self.account_config(transport_id)
        self.events.emit(
            "ready",
            pid=os.getpid(),
            transport=args.transport,
            local=local,
            contact_uri_params=account_config.regConfig.contactUriParams,
            instance=self.instance,
        )
        self.account = AppAccount(self)
        self.account.create(account_config)

    def account_config(self, transport_id: int) -> pj.AccountConfig:
        args = self.args
        config = pj.AccountConfig()
        config.idUri = f"sip:{args.user}@{args.domain}"
        config.regConfig.registrarUri = with_params(args.registrar, args.transport)
        config.regConfig.timeoutSec = args.expires
        config.regConfig.retryIntervalSec = 0  # report failures, do not retry on our own
        config.regConfig.registerOnAdd = True
        if args.proxy:
            config.sipConfig.proxies.append(
                with_params(args.proxy, args.transport, loose_route=True)
            )
        config.sipConfig.transportId = transport_id
        if args.password is not None:
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", args.auth_user or args.user, 0, args.password)
            )
        if args.x_push is not None:
            header = pj.SipHeader()
            header.hName = args.x_push_header
            header.hValue = args.x_push
            config.regConfig.headers.append(header)
        uri_params = ""
        if args.pn_provider is not None:
            uri_params += f";pn-provider={args.pn_provider}"
        if args.pn_prid is not None:
            uri_params += f";pn-prid={args.pn_prid}"
        if args.pn_param is not None:
            uri_params += f";pn-param={args.pn_param}"
        # pn-* only in the REGISTER Contact (RFC 8599 §4.1), never in INVITE/200 Contacts.
        config.regConfig.contactUriParams = uri_params
        if self.instance is not None:
            config.regConfig.contactParams = f';+sip.instance="<urn:uuid:{self.instance}>"'
        config.natConfig.sipOutboundUse = 0
        config.natConfig.iceEnabled = False
        config.mediaConfig.transportConfig.boundAddress = args.bind
        config.mediaConfig.transportConfig.port = 0
        return config

    # --- main loop -----------------------------------------------------------------------------

    def run(self) -> None:
        assert self.endpoint is not None
        deadline = time.monotonic() + self.args.max_lifetime
        while self.stop_reason is None:
            self.endpoint.libHandleEvents(LOOP_MS)
            self.drop_finished_calls()
            self.read_commands()
            if time.monotonic() > deadline:
                self.stop_reason = f"max lifetime {self.args.max_lifetime} s reached"

    def drop_finished_calls(self) -> None:
        """Forget DISCONNECTED calls, outside their callbacks (pjsua2 lifetime rule)."""
        if not self.finished_calls:
            return
        finished = {id(call) for call in self.finished_calls}
        self.calls = [call for call in self.calls if id(call) not in finished]
        self.finished_calls.clear()

    def read_commands(self) -> None:
        readable, _, _ = select.select([sys.stdin.fileno()], [], [], 0)
        if not readable:
            return
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            self.stop_reason = "end of input"
            return
        self.stdin_buffer += chunk
        while b"\n" in self.stdin_buffer:
            line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            command = line.decode("utf-8", "replace").strip()
            if command:
                self.execute(command)

    def execute(self, command: str) -> None:
        verb, _, argument = command.partition(" ")
        try:
            if verb == "hangup":
                self.hangup_all()
            elif verb == "unregister":
                assert self.account is not None
                self.account.unregistering = True
                self.account.setRegistration(False)
            elif verb == "register":
                assert self.account is not None
                self.account.setRegistration(True)
            elif verb == "call" and argument:
                self.make_call(argument.strip())
            elif verb == "quit":
                self.stop_reason = "quit command"
            else:
                self.events.emit("command_error", command=command, error="unknown command")
        except pj.Error as error:
            self.events.emit("command_error", command=command, error=error.info())

    def make_call(self, uri: str) -> None:
        assert self.account is not None
        call = AppCall(self, self.account, pj.PJSUA_INVALID_ID, "outgoing")
        self.calls.append(call)
        param = pj.CallOpParam(True)
        call.makeCall(uri, param)
        call.sip_call_id = call.getInfo().callIdString
        self.events.emit("outgoing_call", call_id=call.sip_call_id, to=uri)

    def hangup_all(self) -> None:
        assert self.endpoint is not None
        self.endpoint.hangupAllCalls()

    # --- teardown ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Hang up, unregister, and destroy everything in the order pjsua2 needs."""
        endpoint = self.endpoint
        if endpoint is None:
            return
        with contextlib.suppress(pj.Error):
            if self.calls:
                endpoint.hangupAllCalls()
                deadline = time.monotonic() + 2.0
                while self.calls and time.monotonic() < deadline:
                    endpoint.libHandleEvents(LOOP_MS)
                    self.drop_finished_calls()
        self.calls.clear()
        self.finished_calls.clear()
        if self.account is not None:
            with contextlib.suppress(pj.Error):
                if self.account.getInfo().regIsActive:
                    self.account.unregistering = True
                    self.account.setRegistration(False)
                    deadline = time.monotonic() + 1.0
                    while self.account.unregistering and time.monotonic() < deadline:
                        endpoint.libHandleEvents(LOOP_MS)
            self.account.shutdown()
            self.account = None
        gc.collect()
        endpoint.libDestroy()
        self.endpoint = None
        del endpoint
        gc.collect()


def with_params(uri: str, transport: str, *, loose_route: bool = False) -> str:
    """``uri`` with ``;transport=`` (unless it has one) and, for a proxy, ``;lr`` added."""
    lowered = uri.lower()
    if ";transport=" not in lowered:
        uri += f";transport={transport}"
    if loose_route and ";lr" not in lowered:
        uri += ";lr"
    return uri


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A pjsua2 'mobile app' that registers with push info and auto-answers.",
        epilog="Events are JSON lines on stdout; commands are lines on stdin (see the source).",
    )
    parser.add_argument("--user", required=True, help="AOR user part, e.g. alice")
    parser.add_argument("--domain", required=True, help="AOR host, e.g. 127.0.0.1 or example.com")
    parser.add_argument("--registrar", required=True, help="registrar URI, e.g. sip:127.0.0.1:5060")
    parser.add_argument("--proxy", help="outbound proxy URI (sipush), e.g. sip:127.0.0.1:5060")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--bind", default="127.0.0.1", help="local address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="local SIP port (0: any free port)")
    parser.add_argument("--password", help="digest password (default: no credentials)")
    parser.add_argument("--auth-user", help="digest user name (default: --user)")
    parser.add_argument("--expires", type=int, default=300, help="REGISTER expiry in seconds")
    parser.add_argument("--x-push", help="X-Push header value: device-os=ios;device-uid=TOKEN;...")
    parser.add_argument("--x-push-header", default="X-Push", help="header name (X-Push)")
    parser.add_argument("--pn-provider", help="RFC 8599 pn-provider: apns, fcm, webpush")
    parser.add_argument("--pn-prid", help="RFC 8599 pn-prid: the push token")
    parser.add_argument("--pn-param", help="RFC 8599 pn-param, e.g. TEAMID.com.example.app.voip")
    parser.add_argument("--instance", help="+sip.instance UUID (default: a random one)")
    parser.add_argument("--no-instance", action="store_true", help="send no +sip.instance")
    parser.add_argument("--answer-code", type=int, default=200, help="answer calls with this")
    parser.add_argument("--user-agent", default="sipush-example-app (pjsua2)")
    parser.add_argument("--log-level", type=int, default=1, help="pjsua log level 0-6 (stderr)")
    parser.add_argument("--sip-trace", action="store_true", help="log SIP messages to stderr")
    parser.add_argument(
        "--max-lifetime", type=float, default=600.0, help="exit after this many seconds"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with stdout_to_stderr() as events_fd:
        events = EventSink(events_fd)
        app = App(args, events)

        def on_signal(signum: int, _frame: object) -> None:
            app.stop_reason = signal.Signals(signum).name

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            app.start()
            app.run()
        except pj.Error as error:
            events.emit("stopped", reason=f"pjsua2 error: {error.info()}")
            app.shutdown()
            return 1
        reason = app.stop_reason or "stopped"
        app.shutdown()
        events.emit("stopped", reason=reason)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
