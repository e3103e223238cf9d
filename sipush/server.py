"""``sipush serve``: the asyncio shell that joins transports, the proxy and the binding store.

Theory of operation
-------------------
The transport layer reports events; :class:`SipServer` handles each one synchronously:

* ``Received(request)`` — stamp the top Via with where the request really came from (§18.2.1,
  RFC 3581) and match it to a server transaction (§17.2.3): a retransmission or the ACK of a
  non-2xx goes to its transaction (which re-sends its last response, or absorbs the ACK); a
  CANCEL is answered 200 when it matches an INVITE transaction and cancels its branches (§9.2,
  §16.10), else 481; a new request gets a server transaction and runs the module chain
  (``sanity`` -> ``routes`` -> ``local`` -> ``registrar-relay`` -> ``forward`` ->
  ``unroutable``). A reply goes out through the transaction; a forward goes to the proxy core
  (:mod:`sipush.proxy.core`), which runs the branches. An ACK for a 2xx (no transaction) is
  forwarded statelessly.
* ``Received(response)`` — to the proxy core: matched to its branch, or forwarded statelessly by
  its Via when it matches none (a late 2xx), or dropped when its top Via is not sipush's.
* ``Malformed`` — a request that failed to parse gets the status its ParseError carries (400,
  416, 420, 501, 505, 513), built from the raw head, unless it was an ACK or a response (§17.2.1,
  RFC 4475 §3.1.2.19).
* ``FlowClosed`` — logged; from issue #4 on this is how sipush learns an app was killed.

A 2xx to a relayed REGISTER commits the bindings to the store before it is relayed to the app
(with ``Feature-Caps: *;+sip.pns=...``, RFC 8599 §5.4). Expired bindings are swept every
``[store] sweep_interval`` seconds.

Replies go back per §18.2.2: over the connection the request came on for TCP/TLS, and over UDP
to ``received``/``rport`` or the sent-by port. Sending is asynchronous; each send is a tracked
task so nothing is started and forgotten, and shutdown waits for them.

:func:`run` is the blocking entry point used by the CLI: it opens the store and binds every
listen address (any failure raises a :class:`~sipush.errors.SipushError` before anything is
printed), prints one ``sipush: listening on ...`` line per address on stderr, and returns 0
after SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from sipush.config import Config
from sipush.errors import ConfigError, ParseError, SipushError, TransportError
from sipush.proxy.chain import Chain, Drop, Forward, LocalIdentity, Reply, RequestContext, Target
from sipush.proxy.core import ProxyCore
from sipush.proxy.flow_token import FlowTokens, load_or_create_key
from sipush.proxy.forward import ForwardModule, target_for_uri
from sipush.proxy.local import Local
from sipush.proxy.registrar_relay import RegistrarRelay
from sipush.proxy.registration import PendingRegistration, registration_changes
from sipush.proxy.routes import Routes
from sipush.proxy.sanity import Sanity
from sipush.proxy.transactions import TransactionRunner
from sipush.proxy.unroutable import Unroutable
from sipush.proxy.wake import WakeService
from sipush.push.providers import build_providers
from sipush.push.sender import PushSender
from sipush.sip import (
    Request,
    Response,
    make_response,
    parse_uri,
    response_destination,
    response_for_malformed,
    stamp_received,
)
from sipush.sip.ip import ip_literal
from sipush.sip.message import Message
from sipush.sip.timers import TimerConfig
from sipush.sip.transaction_tables import TransactionError
from sipush.store import Binding, BindingStore
from sipush.transport.events import FlowClosed, Malformed, Received, TransportEvent
from sipush.transport.flow import Flow
from sipush.transport.layer import TransportLayer

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class SipServer:
    """One running sipush: its transports, store, request chain and proxy core."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.transports = TransportLayer(
            self.on_event,
            max_message_size=config.sip.max_message_size,
            incomplete_message_timeout=config.sip.incomplete_message_timeout,
            tls_context=_server_tls_context(config),
        )
        self.local = LocalIdentity(frozenset(config.server.domains), frozenset())
        self._tasks: set[asyncio.Task[None]] = set()
        timers = TimerConfig(t1=config.sip.t1, t2=config.sip.t2, t4=config.sip.t4)
        self.transactions = TransactionRunner(timers, self._send_message)
        key_file = config.server.flow_key_file
        self.tokens = FlowTokens(load_or_create_key(key_file) if key_file else None)
        self.upstream = _upstream_target(config.upstream.uri)
        self.store: BindingStore | None = None
        agent = config.server.user_agent
        warn_agent = agent.split("/")[0]
        self.chain = Chain(
            [
                Sanity(),
                Routes(self.tokens),
                Local(agent),
                RegistrarRelay(
                    self.tokens,
                    self.upstream,
                    keep_x_push=config.upstream.keep_x_push,
                    warn_agent=warn_agent,
                ),
                ForwardModule(self.tokens, self.upstream),
                Unroutable(
                    warn_agent,
                    reason="no route for this request"
                    if self.upstream
                    else "no route for this request: no upstream is configured",
                ),
            ]
        )
        self.core = ProxyCore(
            self.transactions,
            self._send_bytes,
            lambda: self.local,
            self._spawn,
            on_register_2xx=self._commit_registration,
            send_bytes_now=self._send_bytes_now,
        )
        self._sweeper: asyncio.Task[None] | None = None
        self.sender = PushSender(build_providers(config.push))
        self.wake = WakeService(
            self.core,
            lambda: self.store,
            self.sender,
            flow_is_open=self.transports.is_open,
            spawn=self._spawn,
            tokens=self.tokens,
            local=lambda: self.local,
            policy=config.push.policy,
        )

    async def start(self) -> None:
        """Open the store and bind every listen address; on failure close all and re-raise."""
        try:
            self.store = await BindingStore.open(
                self.config.store.url,
                cache_ttl=self.config.store.cache_ttl,
                cache_size=self.config.store.cache_size,
                checkpoint_interval=SQLITE_CHECKPOINT_INTERVAL,
            )
            for spec in self.config.server.listen:
                await self.transports.listen(spec)
        except BaseException:
            await self.transports.close()
            if self.store is not None:
                await self.store.close()
            raise
        hosts = set(self.config.server.domains)
        ports = set()
        advertised: dict[str, tuple[str, int]] = {}
        for spec in self.transports.listening:
            hosts.add(spec.host.lower())
            ports.add(spec.port)
            if _is_loopback_or_any(spec.host):
                hosts |= _LOOPBACK_NAMES
            advertised.setdefault(spec.transport, (_advertised_host(spec.host), spec.port))
        self.local = LocalIdentity(frozenset(hosts), frozenset(ports), advertised)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        self.wake.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        self.transactions.close()
        await self.transports.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self.store is not None:
            await self.store.close()
        await self.sender.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.config.store.sweep_interval)
            if self.store is not None:
                try:
                    removed = await self.store.purge_expired(datetime.now(UTC))
                    if removed:
                        logger.info("swept %d expired binding(s)", removed)
                except SipushError as err:
                    logger.warning("could not sweep expired bindings: %s", err)

    # -- events ---------------------------------------------------------------------------------

    def on_event(self, event: TransportEvent) -> None:
        try:
            if isinstance(event, Received):
                if isinstance(event.message, Request):
                    self.on_request(event.message, event.flow)
                else:
                    self.core.on_response(event.message)
            elif isinstance(event, Malformed):
                self.on_malformed(event.error, event.flow)
            elif isinstance(event, FlowClosed):
                logger.debug("flow closed: %s", event.flow)
        except Exception:  # one bad message must never stop the server
            logger.exception("error while handling %s", type(event).__name__)

    def on_request(self, request: Request, flow: Flow) -> None:
        top = request.top_via
        stamped = stamp_received(top, flow.remote[0], flow.remote[1])
        if stamped is not top:
            request = request.with_top_via_replaced(stamped)
        try:
            existing = self.transactions.match(request)
            if existing is not None:  # §17.2.3: a retransmission, or the ACK for our non-2xx
                self.transactions.receive(existing, request)
                return
            if request.method == "ACK":
                # An ACK matching no transaction acknowledges a 2xx (§17.2.3): end to end.
                self._stateless(request, flow)
                return
            tx = self.transactions.start_server(request, flow)
        except TransactionError as err:
            logger.debug("%s %s does not fit a transaction: %s", request.method, request.uri, err)
            self._stateless(request, flow)
            return
        if request.method == "CANCEL":
            invite_tx = self.transactions.registry.match_cancel_target(request)
            status = 481 if invite_tx is None else 200  # §9.2
            self.transactions.respond(tx, make_response(request, status))
            if invite_tx is not None and not self.wake.on_cancel(invite_tx, request):
                self.core.cancel(invite_tx)
            return
        outcome = self.chain.run(RequestContext(request, flow, self.local))
        if isinstance(outcome, Reply):
            self.transactions.respond(tx, outcome.response)
        elif isinstance(outcome, Forward):
            app_flow = outcome.target.flow
            if WakeService.applies(request, outcome):
                arrived = time.monotonic()
                if not self.wake.handle_now(tx, request, outcome, flow.transport, arrived):
                    self._spawn(self.wake.handle(tx, request, outcome, flow.transport, arrived))
            elif (
                app_flow is not None
                and app_flow.is_stream
                and not self.transports.is_open(app_flow)
            ):
                self.transactions.respond(tx, make_response(request, 430))  # RFC 5626 §5.3.1
            else:
                self.core.proxy(tx, request, outcome)
        elif isinstance(outcome, Drop):
            logger.debug("dropped %s %s: %s", request.method, request.uri, outcome.reason)

    def _stateless(self, request: Request, flow: Flow) -> None:
        """Run the chain without a transaction (ACK for 2xx, or what no transaction can hold)."""
        outcome = self.chain.run(RequestContext(request, flow, self.local))
        if isinstance(outcome, Reply) and request.method != "ACK":
            self.send_response(outcome.response, flow)
        elif isinstance(outcome, Forward):
            self.core.forward_stateless(outcome)
        elif isinstance(outcome, Drop):
            logger.debug("dropped %s %s: %s", request.method, request.uri, outcome.reason)

    def on_malformed(self, error: ParseError, flow: Flow) -> None:
        logger.info("malformed message from %s: %s", flow, error.detail)
        response = response_for_malformed(error, server=self.config.server.user_agent.split("/")[0])
        if response is None:
            return
        self.send_response(response, flow, via_may_be_broken=True)

    async def _commit_registration(
        self, pending: PendingRegistration, response: Response, accepted_at: float
    ) -> Response:
        """The PBX said 2xx (it reached sipush at ``accepted_at``, monotonic): release the
        requests held for these devices, store the bindings, then tell the app that sipush
        pushes (RFC 8599 §5.4)."""
        # The AOR's bindings matter only for a Contact with no identity of its own (a de-REGISTER
        # or refresh without push information): skip the read otherwise.
        anonymous = any(device.device_id == str(device.contact.uri) for device in pending.devices)
        existing = await self.store.get(pending.aor) if self.store is not None and anonymous else []
        changes = registration_changes(pending, response, datetime.now(UTC), existing)
        for binding in changes.upserts:
            # RFC 8599 §5.6.2: release what waits for this device now; the PBX has accepted the
            # REGISTER, so the held request need not also wait for sipush's own commit.
            self.wake.on_registered(binding, accepted_at=accepted_at)
        if self.store is not None:
            await self.store.apply(changes)
        for binding in changes.upserts:
            if self.store is not None and self.wake.pushed_recently(binding):
                self._spawn(self._mark_reregistered(binding))
        pushed = {b.push.provider for b in changes.upserts if b.push is not None}
        for provider in pending.providers:
            if provider in pushed:
                response = response.with_header_appended("Feature-Caps", f'*;+sip.pns="{provider}"')
        return response

    async def _mark_reregistered(self, binding: Binding) -> None:
        """Stamp the device's recent pushes with when it came back (``sipush pushes list``)."""
        if self.store is None:
            return
        try:
            await self.store.mark_reregistered(binding.aor, binding.device_id, datetime.now(UTC))
        except SipushError as err:
            logger.warning("could not record a re-registration: %s", err)

    # -- sending --------------------------------------------------------------------------------

    async def _send_bytes(self, data: bytes, target: Target) -> Flow:
        if not _sendable(target.host):
            raise TransportError(f"refusing to send to {target.host} (broadcast/multicast)")
        return await self.transports.send(
            data, transport=target.transport, remote=(target.host, target.port), flow=target.flow
        )

    def _send_bytes_now(self, data: bytes, target: Target) -> Flow | None:
        if not _sendable(target.host):
            return None  # _send_bytes refuses it, with the reason
        return self.transports.send_now(
            data, transport=target.transport, remote=(target.host, target.port), flow=target.flow
        )

    def _send_message(self, message: Message, flow: Flow) -> None:
        if isinstance(message, Response):
            self.send_response(message, flow)

    def send_response(
        self, response: Response, flow: Flow, *, via_may_be_broken: bool = False
    ) -> None:
        """§18.2.2: streams answer on the request's connection; UDP goes to received/rport."""
        if flow.is_stream:
            self._spawn(self._send(bytes(response), flow.transport, flow.remote, flow))
            return
        destination = flow.remote
        try:
            top = response.top_via
            destination = response_destination(stamp_received(top, flow.remote[0], flow.remote[1]))
        except (ParseError, IndexError):
            if not via_may_be_broken:
                raise
            # An unreadable Via (RFC 4475 badinv01): the packet's source is the only address.
        if not _sendable(destination[0]):
            logger.info(
                "not sending %d to %s (broadcast/multicast)", response.status, destination[0]
            )
            return
        data = bytes(response)
        try:
            sent = self.transports.send_now(data, transport="udp", remote=destination, flow=flow)
            if sent is not None:
                return
        except SipushError as err:
            logger.info("could not send to %s:%s over udp: %s", destination[0], destination[1], err)
            return
        self._spawn(self._send(data, "udp", destination, flow))

    async def _send(self, data: bytes, transport: str, remote: tuple[str, int], flow: Flow) -> None:
        try:
            await self.transports.send(data, transport=transport, remote=remote, flow=flow)
        except SipushError as err:
            logger.info("could not send to %s:%s over %s: %s", remote[0], remote[1], transport, err)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _upstream_target(uri_text: str) -> Target | None:
    """The configured upstream as a next hop; a host name is resolved once, here, so that
    requests coming from the upstream can be recognised by their source address."""
    if not uri_text:
        return None
    target = target_for_uri(parse_uri(uri_text))
    if target is None:
        return None
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
    except OSError as err:
        raise ConfigError(f"[upstream] uri: cannot resolve {target.host!r}: {err}") from None
    host = str(infos[0][4][0])
    return Target(target.transport, host, target.port)


def _advertised_host(host: str) -> str:
    """The address sipush puts in its Via, Path and Record-Route for a listen host."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if not address.is_unspecified:
        return str(address)
    # A wildcard listen: the address the machine would use to reach the outside.
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    probe = "2001:db8::1" if address.version == 6 else "192.0.2.1"
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))  # a UDP connect sends nothing
            return str(sock.getsockname()[0])
    except OSError:
        return "::1" if address.version == 6 else "127.0.0.1"


def _is_loopback_or_any(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() == "localhost"
    return address.is_loopback or address.is_unspecified


def _sendable(host: str) -> bool:
    """Never send to broadcast, multicast or unspecified addresses (RFC 4475 §3.3.10 bcast)."""
    address = ip_literal(host.strip("[]"))
    if address is None:
        return True  # a name: resolved by the transport
    if isinstance(address, ipaddress.IPv4Address) and address == _BROADCAST:
        return False
    return not (address.is_multicast or address.is_unspecified)


def _server_tls_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls.cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls.cert_file, config.tls.key_file or None)
        if config.tls.ca_file:
            context.load_verify_locations(config.tls.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"[tls] cannot load the certificate or key: {err}") from err
    return context


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set."""
    server = SipServer(config)
    await server.start()
    tune_garbage_collector()
    for spec in server.transports.listening:
        print(f"sipush: listening on {spec}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def run(config: Config) -> int:
    """Blocking entry point: serve until SIGINT/SIGTERM, then return 0."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve(config, stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=event_loop_factory(config.server.event_loop)) as runner:
        runner.run(main())
    logger.info("stopped")
    return 0


GC_THRESHOLDS = (50_000, 20, 100)
# A SQLite store's WAL is checkpointed from a thread every second, not inside the commits.
SQLITE_CHECKPOINT_INTERVAL = 1.0


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a long-running proxy.

    Every SIP transaction keeps its messages for up to 32 s (Timer J), so tens of thousands of
    objects are alive under load, and CPython's default thresholds (700, 10, 10) then run a
    full collection over all of them every few seconds: pauses of 100-300 ms measured here
    (scripts/bench/relay_cpu.py), longer than T1, so UDP peers retransmit. ``gc.freeze()``
    moves everything loaded at start-up (SQLAlchemy, the providers' clients) out of the
    collector's sight, and the higher thresholds make young collections rarer; nearly all of
    sipush's garbage has no cycles and is freed by reference counting anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``[server] event_loop``: uvloop's loop factory, or ``None`` for asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                '[server] event_loop = "uvloop" but uvloop is not installed (pip install uvloop)'
            ) from None
        return None
    return uvloop.new_event_loop
