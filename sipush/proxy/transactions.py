"""The asyncio shell around the sans-I/O transactions (RFC 3261 §17).

A transaction in :mod:`sipush.sip.transaction` returns actions; :class:`TransactionRunner` carries
them out: ``Send`` goes to the transport (over the flow the request came on), ``StartTimer``
becomes an event-loop ``call_later`` that feeds the timer back in, ``CancelTimer`` cancels it and
``Terminate`` forgets the transaction and every timer it still had. This is where retransmissions
over UDP happen (Timer G for a final INVITE response until the ACK, the cached response for a
retransmitted non-INVITE request), and where they do not happen over TCP/TLS.

Transaction-user outcomes (``Deliver``, ``TimedOut``, ``TransportFailed``) go to one callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sipush.proxy.chain import Target
from sipush.sip import Request, Response
from sipush.sip.message import Message
from sipush.sip.timers import Timer, TimerConfig
from sipush.sip.transaction import (
    Action,
    CancelTimer,
    ClientTransaction,
    Send,
    ServerTransaction,
    StartTimer,
    Terminate,
    Transaction,
    new_client_transaction,
    new_server_transaction,
)
from sipush.sip.transaction_registry import TransactionRegistry
from sipush.sip.transaction_tables import TransactionError
from sipush.transport.flow import Flow

logger = logging.getLogger(__name__)

AnyTransaction = Transaction[Any, Any]


class TransactionRunner:
    """Owns the live transactions, their timers and the flow each one talks over."""

    def __init__(
        self,
        config: TimerConfig,
        send: Callable[[Message, Flow], None],
        on_outcome: Callable[[AnyTransaction, Action], None] | None = None,
        send_request: Callable[[Request, Target, AnyTransaction], None] | None = None,
    ) -> None:
        self.config = config
        self.registry = TransactionRegistry()
        self._send = send
        self.send_request = send_request
        self.on_outcome = on_outcome
        self._flows: dict[AnyTransaction, Flow] = {}
        self._targets: dict[AnyTransaction, Target] = {}
        self._timers: dict[tuple[AnyTransaction, Timer], asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self.registry)

    # -- server side ----------------------------------------------------------------------------

    def match(self, request: Request) -> ServerTransaction[Any, Any] | None:
        return self.registry.match_request(request)

    def start_server(self, request: Request, flow: Flow) -> ServerTransaction[Any, Any]:
        """Create and register the server transaction for a new request (§17.2)."""
        tx = new_server_transaction(
            request, reliable=flow.is_stream, config=self.config, send_trying=False
        )
        self.registry.add(tx)
        self._flows[tx] = flow
        self.run(tx, tx.start())
        return tx

    def receive(self, tx: ServerTransaction[Any, Any], request: Request) -> None:
        """A retransmission of the request, or the ACK for a non-2xx final response."""
        self.run(tx, tx.receive(request))

    def respond(self, tx: ServerTransaction[Any, Any], response: Response) -> None:
        self.run(tx, tx.respond(response))

    # -- client side ----------------------------------------------------------------------------

    def start_client(self, request: Request, target: Target) -> ClientTransaction[Any, Any]:
        """Create, register and start the client transaction that sends ``request`` (§17.1)."""
        reliable = target.transport in ("tcp", "tls")
        tx = new_client_transaction(request, reliable=reliable, config=self.config)
        self.registry.add(tx)
        self._targets[tx] = target
        self.run(tx, tx.start())
        return tx

    def match_response(self, response: Response) -> ClientTransaction[Any, Any] | None:
        return self.registry.match_response(response)

    def receive_response(self, tx: ClientTransaction[Any, Any], response: Response) -> None:
        self.run(tx, tx.receive(response))

    def transport_failed(self, tx: AnyTransaction) -> None:
        """§17.1.4 / §17.2.4: the transport could not send a message of ``tx``."""
        if tx in self.registry:
            self.run(tx, tx.transport_error())

    # -- running actions ------------------------------------------------------------------------

    def run(self, tx: AnyTransaction, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                flow = self._flows.get(tx)
                target = self._targets.get(tx)
                if flow is not None:
                    self._send(action.message, flow)
                elif target is not None and self.send_request is not None:
                    assert isinstance(action.message, Request)
                    self.send_request(action.message, target, tx)
            elif isinstance(action, StartTimer):
                loop = asyncio.get_running_loop()
                old = self._timers.pop((tx, action.timer), None)
                if old is not None:
                    old.cancel()
                self._timers[(tx, action.timer)] = loop.call_later(
                    action.delay, self._fire, tx, action.timer
                )
            elif isinstance(action, CancelTimer):
                handle = self._timers.pop((tx, action.timer), None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(action, Terminate):
                self._forget(tx)
            elif self.on_outcome is not None:
                self.on_outcome(tx, action)

    def _fire(self, tx: AnyTransaction, timer: Timer) -> None:
        self._timers.pop((tx, timer), None)
        try:
            self.run(tx, tx.fire(timer))
        except TransactionError as err:
            logger.debug("timer %s on %r: %s", timer, tx, err)

    def _forget(self, tx: AnyTransaction) -> None:
        for timer in Timer:
            handle = self._timers.pop((tx, timer), None)
            if handle is not None:
                handle.cancel()
        self._flows.pop(tx, None)
        self._targets.pop(tx, None)
        self.registry.remove(tx)  # type: ignore[arg-type]

    def close(self) -> None:
        """Cancel every timer (shutdown)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._flows.clear()
        self._targets.clear()
