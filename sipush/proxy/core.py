"""The stateful proxy core (RFC 3261 §16.6-§16.10): branches, responses, CANCEL.

Theory of operation
-------------------
A request that the module chain decides to forward (:class:`~sipush.proxy.chain.Forward`) gets
a :class:`ResponseContext`: its server transaction and one or more branches. Each branch is a
copy of the request with sipush's Via on top (a fresh ``z9hG4bK`` branch, §16.6 step 8, and
``rport`` over UDP) sent through its own client transaction (§16.6 step 10), so retransmission,
Timer B/F and the ACK for a non-2xx are the transaction's business.

Responses (§16.7): the branch's client transaction delivers each response here. sipush's Via is
removed (step 3); 100 is never forwarded; other provisionals and every 2xx go upstream at once
(step 5); final non-2xx responses are kept until every branch has one, then the best is sent
(step 6: a 6xx, else the lowest class with 401/407/415/420/484 preferred in 4xx, and 503 becomes
500), with the challenges of every 401/407 gathered (step 7). A branch that times out counts as
408 and a transport failure as 503 (§16.8 without Timer C, §16.9). After a final response, or a
CANCEL, pending branches are CANCELled (§16.10; a branch with no provisional yet is cancelled as
soon as one arrives, §9.1).

A 2xx to a relayed REGISTER first goes through ``on_register_2xx`` (commit the bindings, add
Feature-Caps) before it is sent to the app: the binding exists by the time the app learns of it.

Responses that match no client transaction (a late 2xx retransmission) are forwarded statelessly
by their Via (§16.7 first paragraph); ACK for 2xx and requests no transaction can hold are
forwarded statelessly too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sipush.errors import ParseError, SipushError
from sipush.proxy.chain import Forward, LocalIdentity, Target
from sipush.proxy.loop import branch_for
from sipush.proxy.registration import PendingRegistration
from sipush.proxy.transactions import AnyTransaction, TransactionRunner
from sipush.sip import Request, Response, Via, make_response, response_destination
from sipush.sip.build import build_cancel
from sipush.sip.transaction import (
    Action,
    ClientTransaction,
    Deliver,
    ServerTransaction,
    TimedOut,
    TransportFailed,
)
from sipush.transport.flow import Flow

logger = logging.getLogger(__name__)

SendBytes = Callable[[bytes, Target], Awaitable[Flow]]
# Sends at once when nothing needs waiting for (a datagram to an IP address), else None.
SendBytesNow = Callable[[bytes, Target], Flow | None]
# (the REGISTER, its 2xx, the monotonic time the 2xx arrived) -> the 2xx to relay to the app
RegisterHook = Callable[[PendingRegistration, Response, float], Awaitable[Response]]
PREFERRED_4XX = (401, 407, 415, 420, 484)


@dataclass(eq=False)
class Branch:
    context: ResponseContext
    request: Request  # as sent, with sipush's Via on top
    target: Target
    tx: ClientTransaction[Any, Any] | None = None
    provisional: bool = False
    final: Response | None = None
    cancel_pending: bool = False
    # Called with the final status when this branch fails with 408/480/503 before any other
    # final response went upstream; True means "handled" (the app sleeps: push and hold).
    on_failure: Callable[[int], bool] | None = None


@dataclass(eq=False)
class ResponseContext:
    """One proxied request: its server transaction and its branches (§16.2)."""

    server_tx: ServerTransaction[Any, Any]
    request: Request  # as received
    registration: PendingRegistration | None = None
    branches: list[Branch] = field(default_factory=list)
    final_sent: bool = False
    cancelled: bool = False
    held: bool = False  # waiting for a woken app: no final response from the branches yet


ASLEEP_STATUSES = (408, 480, 503)  # [push] on-failure: a branch that says the app sleeps


class ProxyCore:
    def __init__(
        self,
        transactions: TransactionRunner,
        send_bytes: SendBytes,
        local: Callable[[], LocalIdentity],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        on_register_2xx: RegisterHook | None = None,
        send_bytes_now: SendBytesNow | None = None,
    ) -> None:
        self.transactions = transactions
        self.send_bytes = send_bytes
        self.send_bytes_now = send_bytes_now
        self.local = local
        self.spawn = spawn
        self.on_register_2xx = on_register_2xx
        self._contexts: dict[ServerTransaction[Any, Any], ResponseContext] = {}
        self._branches: dict[ClientTransaction[Any, Any], Branch] = {}
        self._detached: set[ClientTransaction[Any, Any]] = set()
        transactions.on_outcome = self._on_outcome
        transactions.send_request = self._send_request

    # -- requests -------------------------------------------------------------------------------

    def proxy(
        self, server_tx: ServerTransaction[Any, Any], request: Request, forward: Forward
    ) -> None:
        """Forward statefully: a response context with one branch to ``forward.target``."""
        context = self.open(server_tx, request, forward.registration)
        self.add_branch(context, forward.request, forward.target)

    def open(
        self,
        server_tx: ServerTransaction[Any, Any],
        request: Request,
        registration: PendingRegistration | None = None,
    ) -> ResponseContext:
        """A response context with no branch yet (a held request gets its branch on wake-up)."""
        context = ResponseContext(server_tx, request, registration)
        self._contexts[server_tx] = context
        if request.method == "INVITE":
            self.transactions.respond(server_tx, make_response(request, 100))  # §16.2, §17.2.1
        return context

    def provisional(self, context: ResponseContext, status: int) -> None:
        """sipush's own provisional response (e.g. 180 while a held INVITE waits for its app)."""
        if not context.final_sent:
            self.transactions.respond(context.server_tx, make_response(context.request, status))

    def answer(self, context: ResponseContext, status: int, reason: str | None = None) -> None:
        """sipush's own final response for a context (a held request that ends unreleased)."""
        context.held = False
        if context.final_sent:
            return
        context.final_sent = True
        self._respond(context, make_response(context.request, status, reason))

    def add_branch(
        self,
        context: ResponseContext,
        request: Request,
        target: Target,
        on_failure: Callable[[int], bool] | None = None,
    ) -> Branch:
        branch = Branch(
            context,
            request.with_via_prepended(self._via(target, request)),
            target,
            on_failure=on_failure,
        )
        context.branches.append(branch)
        try:
            branch.tx = self.transactions.start_client(branch.request, target)
        except SipushError as err:
            logger.info("cannot start a branch to %s:%s: %s", target.host, target.port, err)
            self._branch_final(branch, make_response(context.request, 503), synthesized=True)
            return branch
        self._branches[branch.tx] = branch
        return branch

    def send_detached(self, request: Request, target: Target) -> None:
        """Send ``request`` through a client transaction whose responses go nowhere: a MESSAGE
        sipush already answered with 202 (``[push] message_mode = "accept"``)."""
        try:
            tx = self.transactions.start_client(
                request.with_via_prepended(self._via(target, request)), target
            )
        except SipushError as err:
            logger.info("cannot deliver an accepted %s: %s", request.method, err)
            return
        self._detached.add(tx)

    def forward_stateless(self, forward: Forward) -> None:
        """§16.11-style forwarding without a transaction (ACK for 2xx, stray CANCEL)."""
        request = forward.request.with_via_prepended(self._via(forward.target, forward.request))
        self._send_soon(bytes(request), forward.target, None)

    def cancel(self, server_tx: ServerTransaction[Any, Any]) -> bool:
        """A CANCEL matched this INVITE: cancel every pending branch (§16.10). False if unknown."""
        context = self._contexts.get(server_tx)
        if context is None:
            return False
        context.cancelled = True
        for branch in context.branches:
            self._cancel_branch(branch)
        return True

    def _via(self, target: Target, request: Request) -> Via:
        host, port = self.local().address(target.transport)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        params: tuple[tuple[str, str | None], ...] = (("branch", branch_for(request)),)
        if target.transport == "udp":
            params += (("rport", None),)  # RFC 3581
        return Via(target.transport.upper(), host, port, params)

    def _cancel_branch(self, branch: Branch) -> None:
        if branch.final is not None or branch.tx is None or branch.request.method != "INVITE":
            return
        if not branch.provisional:
            branch.cancel_pending = True  # §9.1: wait for a provisional response first
            return
        cancel = build_cancel(branch.request)
        try:
            self.transactions.start_client(cancel, branch.target)
        except SipushError as err:
            logger.info("cannot send CANCEL: %s", err)

    # -- sending --------------------------------------------------------------------------------

    def _send_request(self, request: Request, target: Target, tx: AnyTransaction) -> None:
        self._send_soon(bytes(request), target, tx)

    def _send_soon(self, data: bytes, target: Target, tx: AnyTransaction | None) -> None:
        """Send now when the transport can without waiting, else in a task. A failure goes
        the task's way too, so the transaction learns of it outside the step that sent."""
        if self.send_bytes_now is not None:
            try:
                if self.send_bytes_now(data, target) is not None:
                    return
            except SipushError:
                pass  # the task below fails the same way and reports it
        self.spawn(self._send(data, target, tx))

    async def _send(self, data: bytes, target: Target, tx: AnyTransaction | None) -> None:
        try:
            await self.send_bytes(data, target)
        except SipushError as err:
            logger.info(
                "cannot send to %s:%s over %s: %s", target.host, target.port, target.transport, err
            )
            if tx is not None:
                self.transactions.transport_failed(tx)

    # -- responses ------------------------------------------------------------------------------

    def on_response(self, response: Response) -> None:
        tx = self.transactions.match_response(response)
        if tx is None:
            self._forward_stray(response)
            return
        self.transactions.receive_response(tx, response)

    def _on_outcome(self, tx: AnyTransaction, action: Action) -> None:
        if tx in self._detached:
            if isinstance(action, (TimedOut, TransportFailed)) or (
                isinstance(action, Deliver)
                and isinstance(action.message, Response)
                and action.message.status >= 200
            ):
                self._detached.discard(tx)
                logger.info("accepted message delivery ended: %s", action)
            return
        branch = self._branches.get(tx) if isinstance(tx, ClientTransaction) else None
        if branch is None:
            message = action.message if isinstance(action, Deliver) else None
            if isinstance(message, Response) and 200 <= message.status < 300:
                # A 2xx retransmission after the context closed (RFC 6026 §8.1/§8.2: the
                # INVITE client transaction is ACCEPTED): forward it, or a lost 2xx is lost.
                self._forward_stray(message)
            return  # else a CANCEL's own transaction: nothing to do
        if isinstance(action, Deliver) and isinstance(action.message, Response):
            self._branch_response(branch, action.message)
        elif isinstance(action, TimedOut):
            self._branch_final(branch, make_response(branch.context.request, 408), synthesized=True)
        elif isinstance(action, TransportFailed):
            self._branch_final(branch, make_response(branch.context.request, 503), synthesized=True)

    def _branch_response(self, branch: Branch, response: Response) -> None:
        context = branch.context
        if response.status < 200:
            branch.provisional = True
            if branch.cancel_pending:
                branch.cancel_pending = False
                self._cancel_branch(branch)
            if response.status != 100 and not context.final_sent:  # §16.7 step 5: never 100
                self._relay(context, response.with_top_via_removed())
            return
        if 200 <= response.status < 300:
            branch.final = response
            first = not context.final_sent
            context.final_sent = True
            self._relay(context, response.with_top_via_removed())  # every 2xx, at once
            if first:
                for other in context.branches:  # §16.7 step 10
                    if other is not branch:
                        self._cancel_branch(other)
            return
        self._branch_final(branch, response, synthesized=False)

    def _branch_final(self, branch: Branch, response: Response, *, synthesized: bool) -> None:
        if branch.final is not None:
            return
        branch.final = response if synthesized else response.with_top_via_removed()
        context = branch.context
        if (
            branch.on_failure is not None
            and response.status in ASLEEP_STATUSES
            and not context.final_sent
            and branch.on_failure(response.status)
        ):
            # The wake path holds the context now; this branch's answer is not the caller's.
            context.branches.remove(branch)
            if branch.tx is not None:
                self._branches.pop(branch.tx, None)
            return
        if context.held:
            return
        if response.status >= 600:
            for other in context.branches:
                self._cancel_branch(other)
        if context.final_sent or any(b.final is None for b in context.branches):
            return
        context.final_sent = True
        self._relay(
            context, best_response([b.final for b in context.branches if b.final is not None])
        )

    def _relay(self, context: ResponseContext, response: Response) -> None:
        hook = self.on_register_2xx
        if context.registration is not None and 200 <= response.status < 300 and hook is not None:
            registration = context.registration
            arrived = time.monotonic()

            async def commit_then_send() -> None:
                try:
                    final = await hook(registration, response, arrived)
                except Exception:
                    logger.exception("could not record the registration of %s", registration.aor)
                    final = response
                self._respond(context, final)

            self.spawn(commit_then_send())
            return
        self._respond(context, response)

    def _respond(self, context: ResponseContext, response: Response) -> None:
        try:
            self.transactions.respond(context.server_tx, response)
        except SipushError as err:
            logger.debug("server transaction gone, response %d dropped: %s", response.status, err)
        if response.status >= 200 and all(b.final is not None for b in context.branches):
            self._contexts.pop(context.server_tx, None)
            for branch in context.branches:
                if branch.tx is not None:
                    self._branches.pop(branch.tx, None)

    def _forward_stray(self, response: Response) -> None:
        """§16.7: a response with no client transaction is forwarded statelessly by its Via."""
        try:
            top = response.top_via
        except ParseError:
            return
        host, port = top.sent_by
        local = self.local()
        if host.strip("[]") not in local.hosts or port not in local.ports:
            logger.debug("dropped a response whose top Via is not sipush's (§18.1.2)")
            return
        forwarded = response.with_top_via_removed()
        try:
            next_via = forwarded.top_via
        except ParseError:
            return  # it was for sipush itself (e.g. to its own CANCEL)
        destination = response_destination(next_via)
        transport = next_via.transport.lower()
        if transport not in ("udp", "tcp", "tls"):
            return
        self.spawn(
            self._send(bytes(forwarded), Target(transport, destination[0], destination[1]), None)
        )


def best_response(finals: list[Response]) -> Response:
    """§16.7 step 6 (with step 7: a chosen 401/407 carries every challenge)."""
    six = [r for r in finals if r.status >= 600]
    if six:
        return six[0]

    def rank(response: Response) -> tuple[int, int]:
        preferred = 0 if response.status in PREFERRED_4XX else 1
        return (response.status // 100, preferred)

    best = min(finals, key=rank)
    if best.status == 503:
        best = Response(500, "Server Internal Error", best.headers, best.body)  # §16.7 step 6
    if best.status in (401, 407):
        for other in finals:
            if other is best:
                continue
            for name in ("WWW-Authenticate", "Proxy-Authenticate"):
                for value in other.headers.lines(name):
                    best = best.with_header_appended(name, value)
    return best
