"""``sipush serve``: the asyncio shell that joins transports, the proxy chain and the SIP core.

Theory of operation
-------------------
The transport layer reports events; :class:`SipServer` handles each one synchronously:

* ``Received(request)`` — stamp the top Via with where the request really came from (§18.2.1,
  RFC 3581) and match it to a server transaction (§17.2.3): a retransmission or the ACK of a
  non-2xx goes to its transaction (which re-sends its last response, or absorbs the ACK); a
  CANCEL whose INVITE transaction exists gets 200 (§9.2); a new request gets a server transaction
  and runs the module chain (``sanity`` -> ``local`` -> ``unroutable``), whose reply is sent
  through the transaction (so a final INVITE response is retransmitted over UDP until the ACK).
* ``Received(response)`` — nothing is forwarded yet; stray responses are dropped (§18.1.2 /
  §16.7: a response we hold no transaction for; RFC 4475 bcast/bigcode/scalarlg never leave).
* ``Malformed`` — a request that failed to parse gets the status its ParseError carries (400,
  416, 420, 501, 505, 513), built from the raw head, unless it was an ACK or a response (§17.2.1,
  RFC 4475 §3.1.2.19).
* ``FlowClosed`` — logged; from issue #4 on this is how sipush learns an app was killed.

Replies go back per §18.2.2: over the connection the request came on for TCP/TLS, and over UDP
to ``received``/``rport`` or the sent-by port. Sending is asynchronous; each send is a tracked
task so nothing is started and forgotten, and shutdown waits for them.

:func:`run` is the blocking entry point used by the CLI: it binds every listen address (any
failure raises :class:`~sipush.errors.TransportError` before anything is printed), prints one
``sipush: listening on ...`` line per address on stderr, and returns 0 after SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import ssl
import sys
from collections.abc import Coroutine
from typing import Any

from sipush.config import Config
from sipush.errors import ConfigError, ParseError, SipushError
from sipush.proxy.chain import Chain, Drop, LocalIdentity, Reply, RequestContext
from sipush.proxy.local import Local
from sipush.proxy.sanity import Sanity
from sipush.proxy.transactions import TransactionRunner
from sipush.proxy.unroutable import Unroutable
from sipush.sip import (
    Request,
    Response,
    make_response,
    parse_via,
    response_destination,
    response_for_malformed,
    stamp_received,
)
from sipush.sip.message import Message
from sipush.sip.timers import TimerConfig
from sipush.sip.transaction_tables import TransactionError
from sipush.transport.events import FlowClosed, Malformed, Received, TransportEvent
from sipush.transport.flow import Flow
from sipush.transport.layer import TransportLayer

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class SipServer:
    """One running sipush: its transports and its request chain."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.transports = TransportLayer(
            self.on_event,
            max_message_size=config.sip.max_message_size,
            incomplete_message_timeout=config.sip.incomplete_message_timeout,
            tls_context=_server_tls_context(config),
        )
        agent = config.server.user_agent
        self.chain = Chain([Sanity(), Local(agent), Unroutable()])
        self.local = LocalIdentity(frozenset(config.server.domains), frozenset())
        self._tasks: set[asyncio.Task[None]] = set()
        timers = TimerConfig(t1=config.sip.t1, t2=config.sip.t2, t4=config.sip.t4)
        self.transactions = TransactionRunner(timers, self._send_message)

    async def start(self) -> None:
        """Bind every listen address; on any failure close what was bound and re-raise."""
        try:
            for spec in self.config.server.listen:
                await self.transports.listen(spec)
        except BaseException:
            await self.transports.close()
            raise
        hosts = set(self.config.server.domains)
        ports = set()
        for spec in self.transports.listening:
            hosts.add(spec.host.lower())
            ports.add(spec.port)
            if _is_loopback_or_any(spec.host):
                hosts |= _LOOPBACK_NAMES
        self.local = LocalIdentity(frozenset(hosts), frozenset(ports))

    async def stop(self) -> None:
        self.transactions.close()
        await self.transports.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)

    # -- events ---------------------------------------------------------------------------------

    def on_event(self, event: TransportEvent) -> None:
        try:
            if isinstance(event, Received):
                if isinstance(event.message, Request):
                    self.on_request(event.message, event.flow)
                else:
                    self.on_response(event.message, event.flow)
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
                # An ACK matching no transaction acknowledges a 2xx (§17.2.3): nowhere to go yet.
                self._reply_statelessly(request, flow)
                return
            tx = self.transactions.start_server(request, flow)
        except TransactionError as err:
            logger.debug("%s %s does not fit a transaction: %s", request.method, request.uri, err)
            self._reply_statelessly(request, flow)
            return
        if (
            request.method == "CANCEL"
            and self.transactions.registry.match_cancel_target(request) is not None
        ):
            # §9.2: the CANCEL matched a transaction; our INVITEs are answered at once, so the
            # final response is already out and the CANCEL has no further effect.
            self.transactions.respond(tx, make_response(request, 200))
            return
        outcome = self.chain.run(RequestContext(request, flow.transport, flow.remote, self.local))
        if isinstance(outcome, Reply):
            self.transactions.respond(tx, outcome.response)
        elif isinstance(outcome, Drop):
            logger.debug("dropped %s %s: %s", request.method, request.uri, outcome.reason)

    def _reply_statelessly(self, request: Request, flow: Flow) -> None:
        """Run the chain without a transaction (ACK, or a request no transaction can hold)."""
        outcome = self.chain.run(RequestContext(request, flow.transport, flow.remote, self.local))
        if isinstance(outcome, Reply):
            self.send_response(outcome.response, flow)
        elif isinstance(outcome, Drop):
            logger.debug("dropped %s %s: %s", request.method, request.uri, outcome.reason)

    def on_response(self, response: Response, flow: Flow) -> None:
        logger.debug(
            "dropped stray response %d for %s from %s", response.status, response.cseq, flow
        )

    def on_malformed(self, error: ParseError, flow: Flow) -> None:
        logger.info("malformed message from %s: %s", flow, error.detail)
        response = response_for_malformed(error, server=self.config.server.user_agent.split("/")[0])
        if response is None:
            return
        self.send_response(response, flow, via_may_be_broken=True)

    # -- sending --------------------------------------------------------------------------------

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
            top = parse_via(response.headers.get_all("via")[0])
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
        self._spawn(self._send(bytes(response), "udp", destination, flow))

    async def _send(self, data: bytes, transport: str, remote: tuple[str, int], flow: Flow) -> None:
        try:
            await self.transports.send(data, transport=transport, remote=remote, flow=flow)
        except SipushError as err:
            logger.info("could not send to %s:%s over %s: %s", remote[0], remote[1], transport, err)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _is_loopback_or_any(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() == "localhost"
    return address.is_loopback or address.is_unspecified


def _sendable(host: str) -> bool:
    """Never send to broadcast, multicast or unspecified addresses (RFC 4475 §3.3.10 bcast)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True  # a name: resolved by the transport
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
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

    asyncio.run(main())
    logger.info("stopped")
    return 0
