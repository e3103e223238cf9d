"""SIP transactions (RFC 3261 §17, RFC 6026): the runner that drives the state tables.

The tables live in :mod:`sipush.sip.transaction_tables`; this module turns their steps into
actions and holds the per-transaction data (the request, the last response sent, the current
retransmit interval of Timers A, E and G).

Theory of operation
-------------------
A transaction is sans-I/O. It never reads a clock, opens a socket or schedules anything::

    tx = ClientInviteTransaction(invite, reliable=False)
    tx.start()            -> [Send(invite), StartTimer(Timer.A, 0.5), StartTimer(Timer.B, 32.0)]
    tx.fire(Timer.A)      -> [Send(invite), StartTimer(Timer.A, 1.0)]
    tx.receive(ringing)   -> [CancelTimer(Timer.A), CancelTimer(Timer.B), Deliver(ringing)]

Whoever runs it (the asyncio shell, or a fake clock in tests) does what the actions say:
``Send`` -> hand the message to the transport; ``StartTimer`` -> call :meth:`fire` after
``delay`` seconds (0 means "as soon as possible"); ``CancelTimer`` -> drop that scheduled call;
``Deliver`` / ``TimedOut`` / ``TransportFailed`` -> tell the transaction user; ``Terminate`` ->
forget the transaction (it always comes last and no timer is left running).

All inputs go through :meth:`Transaction.feed` ``(input, message=None) -> list[Action]``;
``receive``, ``respond``, ``fire`` and ``transport_error`` pick the input for you. An input the
state does not allow raises :class:`TransactionError` and changes nothing.

On a reliable transport (TCP, TLS, WebSocket) steps on Timers A, E and G are dropped, so the
request and responses are never retransmitted (§17.1.1.2, §17.1.2.2, §17.2.1), and Timers D, I,
J and K start with a zero delay.

The INVITE client transaction ACKs non-2xx final responses itself (§17.1.1.3, :func:`build_ack`);
ACKs for 2xx are the TU's job (§13.2.2.4), and there is no client transaction for ACK.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from sipush.errors import ParseError
from sipush.sip.build import make_response
from sipush.sip.headers import Headers, header_key
from sipush.sip.message import Message, Request, Response
from sipush.sip.timers import RETRANSMIT_TIMERS, Timer, TimerConfig, timer_duration
from sipush.sip.transaction_keys import (
    ClientTransactionKey,
    ServerTransactionKey,
    client_key_for_request,
    server_transaction_key,
)
from sipush.sip.transaction_tables import (
    CANCEL_STEPS,
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    SERVER_INVITE,
    SERVER_NON_INVITE,
    START_STEPS,
    ClientInviteInput,
    ClientInviteState,
    ClientNonInviteInput,
    ClientNonInviteState,
    Machine,
    ServerInviteInput,
    ServerInviteState,
    ServerNonInviteInput,
    ServerNonInviteState,
    Step,
    TransactionError,
    Transition,
)

__all__ = [
    "Action",
    "CancelTimer",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ClientTransaction",
    "Deliver",
    "Send",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "ServerTransaction",
    "StartTimer",
    "Terminate",
    "TimedOut",
    "Transaction",
    "TransactionError",
    "TransportFailed",
    "build_ack",
    "new_client_transaction",
    "new_server_transaction",
]


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Pass this message to the transport layer (§18)."""

    message: Message


@dataclass(frozen=True)
class StartTimer:
    """Call the transaction's ``fire(timer)`` after ``delay`` seconds (0: as soon as possible)."""

    timer: Timer
    delay: float

    def __post_init__(self) -> None:
        if not self.delay >= 0:
            raise TransactionError(f"{self.timer} cannot start with delay {self.delay!r}")


@dataclass(frozen=True)
class CancelTimer:
    """Drop the pending ``fire(timer)`` of this transaction."""

    timer: Timer


@dataclass(frozen=True)
class Deliver:
    """Pass this message up to the transaction user."""

    message: Message


@dataclass(frozen=True)
class TimedOut:
    """Tell the TU the transaction timed out (Timer B, F or H fired)."""


@dataclass(frozen=True)
class TransportFailed:
    """Tell the TU the transport could not send a message of this transaction (§17.1.4, §17.2.4)."""


@dataclass(frozen=True)
class Terminate:
    """The transaction is over; destroy it now (§17.1.1.2: "MUST be destroyed the instant ...")."""


Action = Send | StartTimer | CancelTimer | Deliver | TimedOut | TransportFailed | Terminate


# -- ACK for non-2xx (§17.1.1.3) ---------------------------------------------------------------


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 final response (§17.1.1.3).

    Request-URI, Call-ID and From are the INVITE's; To is the response's (it carries the tag);
    one Via, the INVITE's top Via; CSeq the INVITE's number with method ACK; the INVITE's Route
    headers, so the ACK follows the INVITE through stateless proxies. Max-Forwards is copied
    (§8.1.1.6: every request carries one; 70 if the INVITE had none).
    """
    headers = invite.headers
    top_via = headers.get_all("Via")[:1]
    to_value = response.headers.get("To")
    call_id, from_value = headers.get("Call-ID"), headers.get("From")
    if not top_via or to_value is None or call_id is None or from_value is None:
        raise TransactionError("cannot build the ACK: Via, From, To or Call-ID missing")
    items: list[tuple[str, str]] = [
        ("Via", top_via[0]),
        ("Max-Forwards", headers.get("Max-Forwards") or "70"),
        ("From", from_value),
        ("To", to_value),
        ("Call-ID", call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
    ]
    items.extend((name, value) for name, value in headers if header_key(name) == "route")
    items.append(("Content-Length", "0"))
    return Request("ACK", invite.uri, Headers(items))


# -- the runner ---------------------------------------------------------------------------------

S = TypeVar("S", bound=Enum)
I = TypeVar("I", bound=Enum)  # noqa: E741

DEFAULT_TIMERS = TimerConfig()


class Transaction(ABC, Generic[S, I]):
    """One transaction: a :class:`Machine`, the request that created it, and its data.

    Subclasses name the machine and say which input a message is (:meth:`input_for`).
    """

    machine: ClassVar[Machine[Any, Any]]

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        self.request = request
        self.reliable = reliable
        self.config = config
        self._state: S | None = None
        #: The last response sent (server transactions; re-sent on request retransmissions).
        self.last_response: Response | None = None
        #: The current interval of Timers A, E and G (their doubling is per transaction).
        self._intervals: dict[Timer, float] = {}

    def __repr__(self) -> str:
        state = "not started" if self._state is None else self._state.name
        return f"<{type(self).__name__} {self.request.method} {state}>"

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self) -> S:
        if self._state is None:
            raise TransactionError(f"{self.machine.name}: not started yet")
        return self._state

    @property
    def started(self) -> bool:
        return self._state is not None

    @property
    def terminated(self) -> bool:
        return self._state is self.machine.terminated

    def force_state(self, state: S) -> None:
        """Put the machine in ``state`` without running any transition (for table tests)."""
        if not isinstance(state, self.machine.states):
            raise TransactionError(f"{state!r} is not a state of the {self.machine.name}")
        self._state = state

    # -- inputs -----------------------------------------------------------------------------
    def start(self) -> list[Action]:
        """Run the machine's entry transition (send the request / pass it to the TU)."""
        if self._state is not None:
            raise TransactionError(f"{self.machine.name}: already started")
        return self._apply(self.machine.start, self.request)

    def feed(self, input_: I, message: Message | None = None) -> list[Action]:
        """Process one input; return the actions to carry out, in order.

        Inputs named after a message (``RECV_...``, ``SEND_...``) need that message; timer and
        transport-error inputs take none. Raises :class:`TransactionError` if the input does not
        belong to this machine, does not fit the message, or is not allowed in this state.
        """
        machine = self.machine
        if not isinstance(input_, machine.inputs):
            raise TransactionError(f"{input_!r} is not an input of the {machine.name}")
        state = self.state
        if message is None:
            if input_ in self._message_inputs():
                raise TransactionError(f"{machine.name}: {input_.name} needs a message")
        elif self.input_for(message) is not input_:
            raise TransactionError(f"{machine.name}: {_describe(message)} is not {input_.name}")
        found = machine.lookup(state, input_)
        if found is None:
            raise TransactionError(f"{machine.name}: {input_.name} is not allowed in {state.name}")
        if isinstance(found, str):
            return []  # legal but ignored (the reason is in the table)
        return self._apply(found, message)

    def fire(self, timer: Timer) -> list[Action]:
        """Timer ``timer`` of this transaction fired."""
        input_ = self.machine.timer_inputs.get(timer)
        if input_ is None:
            raise TransactionError(f"{self.machine.name} has no {timer}")
        return self.feed(input_)

    def transport_error(self) -> list[Action]:
        """The transport could not send a message of this transaction."""
        return self.feed(self.machine.inputs["TRANSPORT_ERROR"])

    @abstractmethod
    def input_for(self, message: Message) -> I:
        """The input ``message`` is for this machine (raises :class:`TransactionError`)."""

    def _message_inputs(self) -> frozenset[I]:
        return _MESSAGE_INPUTS[self.machine.name]  # type: ignore[return-value]

    # -- steps -> actions -------------------------------------------------------------------
    def _apply(self, transition: Transition[S], message: Message | None) -> list[Action]:
        actions: list[Action] = []
        for step in transition.steps:
            action = self._action(step, message)
            if action is not None:
                actions.append(action)
        self._state = transition.next_state
        if transition.next_state.name in _WAITING_STATES:
            # From here the messages are only matched or sent again, for up to 32 s (Timer J):
            # keep them lean (thousands wait at once under load).
            self.request.shed_views()
            if self.last_response is not None:
                self.last_response.shed_views()
        return actions

    def _action(self, step: Step, message: Message | None) -> Action | None:
        timer = START_STEPS.get(step)
        if timer is not None:
            return self._start_timer(step, timer)
        timer = CANCEL_STEPS.get(step)
        if timer is not None:
            if self.reliable and timer in RETRANSMIT_TIMERS:
                return None
            return CancelTimer(timer)
        if step is Step.SEND_REQUEST:
            return Send(self.request)
        if step is Step.DELIVER:
            assert message is not None
            return Deliver(message)
        if step is Step.SEND_RESPONSE:
            assert isinstance(message, Response)
            self.last_response = message
            return Send(message)
        if step is Step.RESEND_LAST_RESPONSE:
            return None if self.last_response is None else Send(self.last_response)
        if step is Step.SEND_ACK:
            assert isinstance(message, Response)
            return Send(build_ack(self.request, message))
        if step is Step.SEND_TRYING:
            return self._send_trying()
        if step is Step.TIMED_OUT:
            return TimedOut()
        if step is Step.TRANSPORT_FAILED:
            return TransportFailed()
        if step is Step.TERMINATE:
            return Terminate()
        raise AssertionError(f"unhandled step {step}")  # pragma: no cover

    def _start_timer(self, step: Step, timer: Timer) -> StartTimer | None:
        first = timer_duration(timer, self.config, reliable=self.reliable)
        if first is None:
            return None  # A, E, G on a reliable transport: no retransmissions
        if step in (Step.RESTART_TIMER_E, Step.RESTART_TIMER_G):
            delay = min(2 * self._intervals.get(timer, first), self.config.t2)
        elif step is Step.RESTART_TIMER_A:
            delay = 2 * self._intervals.get(timer, first)  # §17.1.1.2: no cap for INVITE
        elif step is Step.RESTART_TIMER_E_AT_T2:
            delay = self.config.t2
        else:
            delay = first
        if timer in RETRANSMIT_TIMERS:
            self._intervals[timer] = delay
        return StartTimer(timer, delay)

    def _send_trying(self) -> Send | None:
        return None


#: States in which a transaction only waits out a timer (absorbing retransmissions).
_WAITING_STATES = frozenset({"COMPLETED", "CONFIRMED", "ACCEPTED", "TERMINATED"})

#: Per machine, the inputs that come with a message (``RECV_...`` and ``SEND_...``).
_MESSAGE_INPUTS: dict[str, frozenset[Enum]] = {
    machine.name: frozenset(i for i in machine.inputs if i.name.startswith(("RECV_", "SEND_")))
    for machine in (CLIENT_INVITE, CLIENT_NON_INVITE, SERVER_INVITE, SERVER_NON_INVITE)
}


def _describe(message: Message) -> str:
    if isinstance(message, Response):
        return f"response {message.status}"
    return f"request {message.method}"


def _response_class(message: Message, what: str) -> int:
    if not isinstance(message, Response):
        raise TransactionError(f"{what}: expected a response, got {_describe(message)}")
    if not 100 <= message.status <= 699:
        raise TransactionError(f"{what}: status {message.status} is outside 100-699")
    return message.status // 100


# -- client transactions ------------------------------------------------------------------------


class ClientTransaction(Transaction[S, I]):
    """A client transaction: sends a request, receives responses (§17.1)."""

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method == "ACK":
            # §17.1: an ACK for a 2xx is sent by the TU directly; one for 300-699 by the
            # INVITE client transaction. Neither has a transaction of its own.
            raise TransactionError("ACK has no client transaction of its own (§17.1)")
        try:
            branch = request.top_via.branch
        except ParseError:
            branch = None
        if not branch:
            raise TransactionError("a client transaction needs a top Via with a branch (§8.1.1.7)")
        super().__init__(request, reliable=reliable, config=config)

    @property
    def key(self) -> ClientTransactionKey:
        """How responses find this transaction (§17.1.3)."""
        return client_key_for_request(self.request)

    def receive(self, response: Response) -> list[Action]:
        """A response matching this transaction arrived from the network."""
        return self.feed(self.input_for(response), response)


class ClientInviteTransaction(ClientTransaction[ClientInviteState, ClientInviteInput]):
    """RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2."""

    machine = CLIENT_INVITE

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"an INVITE client transaction cannot send {request.method}")
        super().__init__(request, reliable=reliable, config=config)

    def input_for(self, message: Message) -> ClientInviteInput:
        kind = _response_class(message, self.machine.name)
        if kind == 1:
            return ClientInviteInput.RECV_1XX
        if kind == 2:
            return ClientInviteInput.RECV_2XX
        return ClientInviteInput.RECV_300_699


class ClientNonInviteTransaction(ClientTransaction[ClientNonInviteState, ClientNonInviteInput]):
    """RFC 3261 §17.1.2 (Figure 6)."""

    machine = CLIENT_NON_INVITE

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method == "INVITE":
            raise TransactionError("an INVITE needs an INVITE client transaction")
        super().__init__(request, reliable=reliable, config=config)

    def input_for(self, message: Message) -> ClientNonInviteInput:
        kind = _response_class(message, self.machine.name)
        return ClientNonInviteInput.RECV_1XX if kind == 1 else ClientNonInviteInput.RECV_200_699


# -- server transactions ------------------------------------------------------------------------


class ServerTransaction(Transaction[S, I]):
    """A server transaction: receives a request, sends the TU's responses (§17.2)."""

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method == "ACK":
            raise TransactionError("an ACK creates no server transaction (§17.2.3, §17.3)")
        super().__init__(request, reliable=reliable, config=config)
        # Computed now: a request without a usable Via raises here, not in the registry.
        self.key: ServerTransactionKey = server_transaction_key(request)

    def receive(self, request: Request) -> list[Action]:
        """A request matching this transaction (a retransmission, or the ACK) arrived."""
        return self.feed(self.input_for(request), request)

    def respond(self, response: Response) -> list[Action]:
        """The TU passes a response to send."""
        return self.feed(self.input_for(response), response)


class ServerInviteTransaction(ServerTransaction[ServerInviteState, ServerInviteInput]):
    """RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1.

    With ``send_trying`` (the default) :meth:`start` sends 100 Trying at once: sipush cannot
    promise its TU answers within 200 ms (it may hold the INVITE while an app wakes), so §17.2.1
    says the transaction MUST. A retransmitted INVITE then re-sends it.
    """

    machine = SERVER_INVITE

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool,
        config: TimerConfig = DEFAULT_TIMERS,
        send_trying: bool = True,
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"an INVITE server transaction cannot serve {request.method}")
        super().__init__(request, reliable=reliable, config=config)
        self.send_trying = send_trying

    def input_for(self, message: Message) -> ServerInviteInput:
        if isinstance(message, Request):
            if message.method == "INVITE":
                return ServerInviteInput.RECV_INVITE
            if message.method == "ACK":
                return ServerInviteInput.RECV_ACK
            raise TransactionError(f"{self.machine.name}: cannot receive {message.method}")
        kind = _response_class(message, self.machine.name)
        if kind == 1:
            return ServerInviteInput.SEND_1XX
        if kind == 2:
            return ServerInviteInput.SEND_2XX
        return ServerInviteInput.SEND_300_699

    def _send_trying(self) -> Send | None:
        if not self.send_trying:
            return None
        try:
            trying = make_response(self.request, 100)
        except ParseError as err:  # pragma: no cover - the request parsed, so its headers do
            raise TransactionError(f"cannot build 100 Trying: {err}") from err
        self.last_response = trying
        return Send(trying)


class ServerNonInviteTransaction(ServerTransaction[ServerNonInviteState, ServerNonInviteInput]):
    """RFC 3261 §17.2.2 (Figure 8)."""

    machine = SERVER_NON_INVITE

    def __init__(
        self, request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method == "INVITE":
            raise TransactionError("an INVITE needs an INVITE server transaction")
        super().__init__(request, reliable=reliable, config=config)

    def input_for(self, message: Message) -> ServerNonInviteInput:
        if isinstance(message, Request):
            if message.method != self.request.method:
                raise TransactionError(f"{self.machine.name}: cannot receive {message.method}")
            return ServerNonInviteInput.RECV_REQUEST
        kind = _response_class(message, self.machine.name)
        return ServerNonInviteInput.SEND_1XX if kind == 1 else ServerNonInviteInput.SEND_200_699


# -- factories ----------------------------------------------------------------------------------


def new_client_transaction(
    request: Request, *, reliable: bool, config: TimerConfig = DEFAULT_TIMERS
) -> ClientInviteTransaction | ClientNonInviteTransaction:
    """The client transaction for ``request`` (INVITE or not); call ``start()`` to send it."""
    if request.method == "INVITE":
        return ClientInviteTransaction(request, reliable=reliable, config=config)
    return ClientNonInviteTransaction(request, reliable=reliable, config=config)


def new_server_transaction(
    request: Request,
    *,
    reliable: bool,
    config: TimerConfig = DEFAULT_TIMERS,
    send_trying: bool = True,
) -> ServerInviteTransaction | ServerNonInviteTransaction:
    """The server transaction for a new ``request``; call ``start()`` to pass it to the TU.

    ``send_trying`` only matters for INVITE (non-INVITE requests get no 100 Trying, RFC 4320).
    """
    if request.method == "INVITE":
        return ServerInviteTransaction(
            request, reliable=reliable, config=config, send_trying=send_trying
        )
    return ServerNonInviteTransaction(request, reliable=reliable, config=config)
