"""The four SIP transaction state machines as data (RFC 3261 §17 Figures 5-8, RFC 6026).

This module owns the transaction state machines: each one is a table
``(state, input) -> Transition(steps, next_state)`` of enums, in the style of h2's stream
machine. Nothing here runs anything; :mod:`sipush.sip.transaction` turns the steps into actions.

Theory of operation
-------------------
* **States** carry the RFC's own words (``CALLING``, ``PROCEEDING``, ``COMPLETED``,
  ``CONFIRMED``, ``ACCEPTED``, ``TERMINATED``), so a trace can be read against the figures.
* **Inputs** are what can happen to a transaction: a message from the network (``RECV_...``), a
  response from the transaction user (``SEND_...``, server side only), a timer firing
  (``TIMER_A``...) or a transport error.
* **Steps** say what a transition does, in order. The runner makes each into an action: ``Send``,
  ``StartTimer``, ``CancelTimer``, ``Deliver`` (to the TU), ``TimedOut``, ``TransportFailed``,
  ``Terminate``. On a reliable transport it drops every step on Timers A, E and G.
* Every (state, input) pair is in exactly one of three places:

  1. ``table``: a transition;
  2. ``ignored``: legal but does nothing, with the reason (a retransmission the RFC says to
     absorb, a late message, or a timer that fires after the machine cancelled it);
  3. neither: a protocol error. The runner raises :class:`TransactionError` and the state does
     not change. These are: a timer that cannot be running in that state, a response from the
     TU out of order (a 1xx after a final response), and anything but a timer in ``TERMINATED``
     (a terminated transaction is destroyed at once, §17.1.1.2, so nothing should reach it).

Every transition that cancels a timer cancels all timers the transaction still runs, so a
transaction that emits ``Terminate`` has no timer left (tests check this over every path).

Choices where the RFCs leave room, each also noted beside its row:

* INVITE client, ``PROCEEDING``: Timer B is cancelled (Figure 5 only lets it fire in Calling).
* INVITE client, a 2xx in ``COMPLETED`` (a 2xx from one downstream branch after a 6xx from
  another): passed to the TU. A proxy must forward every 2xx to an INVITE (§16.7 step 5).
* Server transactions stay in their state on a transport error and tell the TU: RFC 6026 §7.1
  and §8.8 (which rewrites §17.2.4 for every server transaction, so also Figure 8's arrows).
* Server transactions record the last response sent; a retransmitted request re-sends it
  (§17.2.1, §17.2.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, NamedTuple, TypeVar

from sipush.errors import TransactionError
from sipush.sip.timers import Timer

__all__ = [
    "CANCEL_STEPS",
    "CLIENT_INVITE",
    "CLIENT_NON_INVITE",
    "MACHINES",
    "SERVER_INVITE",
    "SERVER_NON_INVITE",
    "START_STEPS",
    "ClientInviteInput",
    "ClientInviteState",
    "ClientNonInviteInput",
    "ClientNonInviteState",
    "Machine",
    "ServerInviteInput",
    "ServerInviteState",
    "ServerNonInviteInput",
    "ServerNonInviteState",
    "Step",
    "TransactionError",
    "Transition",
]


# TransactionError lives with the rest of the error tree in sipush/errors.py.


# -- states -------------------------------------------------------------------------------------


class ClientInviteState(Enum):
    """RFC 3261 Figure 5, with RFC 6026 §7.2's Accepted."""

    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ClientNonInviteState(Enum):
    """RFC 3261 Figure 6."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ServerInviteState(Enum):
    """RFC 3261 Figure 7, with RFC 6026 §7.1's Accepted."""

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ServerNonInviteState(Enum):
    """RFC 3261 Figure 8."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


# -- inputs -------------------------------------------------------------------------------------


class ClientInviteInput(Enum):
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_M = "Timer M fires"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_300_699 = "300-699 received"
    TRANSPORT_ERROR = "transport error"


class ClientNonInviteInput(Enum):
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_K = "Timer K fires"
    RECV_1XX = "1xx received"
    RECV_200_699 = "200-699 received"
    TRANSPORT_ERROR = "transport error"


class ServerInviteInput(Enum):
    RECV_INVITE = "INVITE received (retransmission)"
    RECV_ACK = "ACK received"
    SEND_1XX = "101-199 from TU"
    SEND_2XX = "2xx from TU"
    SEND_300_699 = "300-699 from TU"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_L = "Timer L fires"
    TRANSPORT_ERROR = "transport error"


class ServerNonInviteInput(Enum):
    RECV_REQUEST = "request received (retransmission)"
    SEND_1XX = "1xx from TU"
    SEND_200_699 = "200-699 from TU"
    TIMER_J = "Timer J fires"
    TRANSPORT_ERROR = "transport error"


# -- steps --------------------------------------------------------------------------------------


class Step(Enum):
    """One thing a transition does. The runner turns each step into zero or one action."""

    SEND_REQUEST = "pass the request to the transport (first time or again)"
    SEND_ACK = "build the ACK for this non-2xx final response and send it (§17.1.1.3)"
    SEND_TRYING = "send 100 Trying if the transaction was asked to (§17.2.1)"
    SEND_RESPONSE = "send the response the TU passed in, and remember it"
    RESEND_LAST_RESPONSE = "send the last response again (none yet: nothing)"
    DELIVER = "pass the message to the TU"

    START_TIMER_A = "start Timer A at T1"
    RESTART_TIMER_A = "start Timer A at twice its last interval"
    CANCEL_TIMER_A = "cancel Timer A"
    START_TIMER_B = "start Timer B"
    CANCEL_TIMER_B = "cancel Timer B"
    START_TIMER_D = "start Timer D"
    CANCEL_TIMER_D = "cancel Timer D"
    START_TIMER_M = "start Timer M"

    START_TIMER_E = "start Timer E at T1"
    RESTART_TIMER_E = "start Timer E at min(2 * last interval, T2)"
    RESTART_TIMER_E_AT_T2 = "start Timer E at T2"
    CANCEL_TIMER_E = "cancel Timer E"
    START_TIMER_F = "start Timer F"
    CANCEL_TIMER_F = "cancel Timer F"
    START_TIMER_K = "start Timer K"

    START_TIMER_G = "start Timer G at T1"
    RESTART_TIMER_G = "start Timer G at min(2 * last interval, T2)"
    CANCEL_TIMER_G = "cancel Timer G"
    START_TIMER_H = "start Timer H"
    CANCEL_TIMER_H = "cancel Timer H"
    START_TIMER_I = "start Timer I"
    START_TIMER_L = "start Timer L"

    START_TIMER_J = "start Timer J"

    TIMED_OUT = "tell the TU the transaction timed out"
    TRANSPORT_FAILED = "tell the TU the transport failed"
    TERMINATE = "the transaction is over: destroy it"


#: Steps that start a timer (with its first interval) or restart it after it fired.
START_STEPS: Mapping[Step, Timer] = {
    Step.START_TIMER_A: Timer.A,
    Step.RESTART_TIMER_A: Timer.A,
    Step.START_TIMER_B: Timer.B,
    Step.START_TIMER_D: Timer.D,
    Step.START_TIMER_M: Timer.M,
    Step.START_TIMER_E: Timer.E,
    Step.RESTART_TIMER_E: Timer.E,
    Step.RESTART_TIMER_E_AT_T2: Timer.E,
    Step.START_TIMER_F: Timer.F,
    Step.START_TIMER_K: Timer.K,
    Step.START_TIMER_G: Timer.G,
    Step.RESTART_TIMER_G: Timer.G,
    Step.START_TIMER_H: Timer.H,
    Step.START_TIMER_I: Timer.I,
    Step.START_TIMER_L: Timer.L,
    Step.START_TIMER_J: Timer.J,
}

#: Steps that cancel a running timer.
CANCEL_STEPS: Mapping[Step, Timer] = {
    Step.CANCEL_TIMER_A: Timer.A,
    Step.CANCEL_TIMER_B: Timer.B,
    Step.CANCEL_TIMER_D: Timer.D,
    Step.CANCEL_TIMER_E: Timer.E,
    Step.CANCEL_TIMER_F: Timer.F,
    Step.CANCEL_TIMER_G: Timer.G,
    Step.CANCEL_TIMER_H: Timer.H,
}


# -- machines -----------------------------------------------------------------------------------

S = TypeVar("S", bound=Enum)
I = TypeVar("I", bound=Enum)  # noqa: E741


class Transition(NamedTuple, Generic[S]):
    """What one input does in one state: the steps, in order, and the state after."""

    steps: tuple[Step, ...]
    next_state: S


@dataclass(frozen=True)
class Machine(Generic[S, I]):
    """One transaction state machine: its enums, its start, its table and its ignored pairs."""

    name: str
    states: type[S]
    inputs: type[I]
    start: Transition[S]
    table: Mapping[tuple[S, I], Transition[S]]
    ignored: Mapping[tuple[S, I], str]
    timer_inputs: Mapping[Timer, I]
    terminated: S

    def lookup(self, state: S, input_: I) -> Transition[S] | str | None:
        """The transition, the reason the pair is ignored, or ``None`` for a protocol error."""
        key = (state, input_)
        transition = self.table.get(key)
        if transition is not None:
            return transition
        return self.ignored.get(key)


def _t(next_state: S, *steps: Step) -> Transition[S]:
    return Transition(steps, next_state)


STALE_TIMER = "a timer that fires after the machine cancelled it is stale"
AFTER_END = "a timer that fires after the transaction ended is stale"
LATE_TRANSPORT_ERROR = "nothing is sent in this state: a late report of an earlier send"


# -- Figure 5 + RFC 6026 §7.2: INVITE client transaction ---------------------------------------

_CI = ClientInviteState
_CII = ClientInviteInput
_s = Step

CLIENT_INVITE: Machine[ClientInviteState, ClientInviteInput] = Machine(
    name="INVITE client transaction (RFC 3261 §17.1.1, Figure 5; RFC 6026 §7.2)",
    states=ClientInviteState,
    inputs=ClientInviteInput,
    # "INVITE from TU / INVITE sent"; Timer A only on unreliable transports, Timer B always.
    start=_t(_CI.CALLING, _s.SEND_REQUEST, _s.START_TIMER_A, _s.START_TIMER_B),
    table={
        # §17.1.1.2: retransmit, reset Timer A to 2*T1, 4*T1, ...
        (_CI.CALLING, _CII.TIMER_A): _t(_CI.CALLING, _s.SEND_REQUEST, _s.RESTART_TIMER_A),
        # §17.1.1.2: still Calling when Timer B fires: inform the TU of the timeout.
        (_CI.CALLING, _CII.TIMER_B): _t(
            _CI.TERMINATED, _s.CANCEL_TIMER_A, _s.TIMED_OUT, _s.TERMINATE
        ),
        # §17.1.1.2: "SHOULD NOT retransmit the request any longer"; B only bounds Calling.
        (_CI.CALLING, _CII.RECV_1XX): _t(
            _CI.PROCEEDING, _s.CANCEL_TIMER_A, _s.CANCEL_TIMER_B, _s.DELIVER
        ),
        # RFC 6026 §7.2: a 2xx moves to Accepted and starts Timer M; no ACK (the TU sends it).
        (_CI.CALLING, _CII.RECV_2XX): _t(
            _CI.ACCEPTED, _s.CANCEL_TIMER_A, _s.CANCEL_TIMER_B, _s.DELIVER, _s.START_TIMER_M
        ),
        # §17.1.1.2: 300-699: ACK it, pass it up, start Timer D.
        (_CI.CALLING, _CII.RECV_300_699): _t(
            _CI.COMPLETED,
            _s.CANCEL_TIMER_A,
            _s.CANCEL_TIMER_B,
            _s.SEND_ACK,
            _s.DELIVER,
            _s.START_TIMER_D,
        ),
        # §17.1.1.2 / §8.1.3.1: a transport error in Calling ends the transaction.
        (_CI.CALLING, _CII.TRANSPORT_ERROR): _t(
            _CI.TERMINATED,
            _s.CANCEL_TIMER_A,
            _s.CANCEL_TIMER_B,
            _s.TRANSPORT_FAILED,
            _s.TERMINATE,
        ),
        (_CI.PROCEEDING, _CII.RECV_1XX): _t(_CI.PROCEEDING, _s.DELIVER),
        (_CI.PROCEEDING, _CII.RECV_2XX): _t(_CI.ACCEPTED, _s.DELIVER, _s.START_TIMER_M),
        (_CI.PROCEEDING, _CII.RECV_300_699): _t(
            _CI.COMPLETED, _s.SEND_ACK, _s.DELIVER, _s.START_TIMER_D
        ),
        # §17.1.1.2: a retransmitted final response is ACKed again but not passed to the TU.
        (_CI.COMPLETED, _CII.RECV_300_699): _t(_CI.COMPLETED, _s.SEND_ACK),
        # Not in the figures: a 2xx from another downstream branch after a non-2xx. Every 2xx to
        # an INVITE reaches the TU, so a proxy can forward it (§16.7 step 5).
        (_CI.COMPLETED, _CII.RECV_2XX): _t(_CI.COMPLETED, _s.DELIVER),
        (_CI.COMPLETED, _CII.TIMER_D): _t(_CI.TERMINATED, _s.TERMINATE),
        # Figure 5: sending the ACK failed.
        (_CI.COMPLETED, _CII.TRANSPORT_ERROR): _t(
            _CI.TERMINATED, _s.CANCEL_TIMER_D, _s.TRANSPORT_FAILED, _s.TERMINATE
        ),
        # RFC 6026 §7.2: every 2xx received in Accepted goes to the TU; no ACK from here.
        (_CI.ACCEPTED, _CII.RECV_2XX): _t(_CI.ACCEPTED, _s.DELIVER),
        (_CI.ACCEPTED, _CII.TIMER_M): _t(_CI.TERMINATED, _s.TERMINATE),
    },
    ignored={
        (_CI.PROCEEDING, _CII.TIMER_A): STALE_TIMER,
        (_CI.PROCEEDING, _CII.TIMER_B): STALE_TIMER,
        (_CI.PROCEEDING, _CII.TRANSPORT_ERROR): LATE_TRANSPORT_ERROR,
        (_CI.COMPLETED, _CII.RECV_1XX): "a provisional response after the final one is late",
        (_CI.COMPLETED, _CII.TIMER_A): STALE_TIMER,
        (_CI.COMPLETED, _CII.TIMER_B): STALE_TIMER,
        (_CI.ACCEPTED, _CII.RECV_1XX): "RFC 6026 §7.2: only 2xx responses reach the TU",
        (_CI.ACCEPTED, _CII.RECV_300_699): "RFC 6026 §7.2: only 2xx responses reach the TU",
        (_CI.ACCEPTED, _CII.TIMER_A): STALE_TIMER,
        (_CI.ACCEPTED, _CII.TIMER_B): STALE_TIMER,
        (_CI.ACCEPTED, _CII.TRANSPORT_ERROR): LATE_TRANSPORT_ERROR + " (the TU sends the ACK)",
        (_CI.TERMINATED, _CII.TIMER_A): AFTER_END,
        (_CI.TERMINATED, _CII.TIMER_B): AFTER_END,
        (_CI.TERMINATED, _CII.TIMER_D): AFTER_END,
        (_CI.TERMINATED, _CII.TIMER_M): AFTER_END,
    },
    timer_inputs={
        Timer.A: _CII.TIMER_A,
        Timer.B: _CII.TIMER_B,
        Timer.D: _CII.TIMER_D,
        Timer.M: _CII.TIMER_M,
    },
    terminated=_CI.TERMINATED,
)


# -- Figure 6: non-INVITE client transaction ----------------------------------------------------

_CN = ClientNonInviteState
_CNI = ClientNonInviteInput

CLIENT_NON_INVITE: Machine[ClientNonInviteState, ClientNonInviteInput] = Machine(
    name="non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6)",
    states=ClientNonInviteState,
    inputs=ClientNonInviteInput,
    # "Request from TU / send request"; Timer E only on unreliable transports, Timer F always.
    start=_t(_CN.TRYING, _s.SEND_REQUEST, _s.START_TIMER_E, _s.START_TIMER_F),
    table={
        # §17.1.2.2: retransmit, reset Timer E to min(2*T1, T2), min(4*T1, T2), ...
        (_CN.TRYING, _CNI.TIMER_E): _t(_CN.TRYING, _s.SEND_REQUEST, _s.RESTART_TIMER_E),
        (_CN.TRYING, _CNI.TIMER_F): _t(
            _CN.TERMINATED, _s.CANCEL_TIMER_E, _s.TIMED_OUT, _s.TERMINATE
        ),
        (_CN.TRYING, _CNI.TRANSPORT_ERROR): _t(
            _CN.TERMINATED,
            _s.CANCEL_TIMER_E,
            _s.CANCEL_TIMER_F,
            _s.TRANSPORT_FAILED,
            _s.TERMINATE,
        ),
        # §17.1.2.2: a provisional response moves to Proceeding; Timers E and F keep running.
        (_CN.TRYING, _CNI.RECV_1XX): _t(_CN.PROCEEDING, _s.DELIVER),
        (_CN.TRYING, _CNI.RECV_200_699): _t(
            _CN.COMPLETED, _s.CANCEL_TIMER_E, _s.CANCEL_TIMER_F, _s.DELIVER, _s.START_TIMER_K
        ),
        # §17.1.2.2: in Proceeding Timer E is reset to T2 each time.
        (_CN.PROCEEDING, _CNI.TIMER_E): _t(
            _CN.PROCEEDING, _s.SEND_REQUEST, _s.RESTART_TIMER_E_AT_T2
        ),
        (_CN.PROCEEDING, _CNI.TIMER_F): _t(
            _CN.TERMINATED, _s.CANCEL_TIMER_E, _s.TIMED_OUT, _s.TERMINATE
        ),
        (_CN.PROCEEDING, _CNI.TRANSPORT_ERROR): _t(
            _CN.TERMINATED,
            _s.CANCEL_TIMER_E,
            _s.CANCEL_TIMER_F,
            _s.TRANSPORT_FAILED,
            _s.TERMINATE,
        ),
        (_CN.PROCEEDING, _CNI.RECV_1XX): _t(_CN.PROCEEDING, _s.DELIVER),
        (_CN.PROCEEDING, _CNI.RECV_200_699): _t(
            _CN.COMPLETED, _s.CANCEL_TIMER_E, _s.CANCEL_TIMER_F, _s.DELIVER, _s.START_TIMER_K
        ),
        (_CN.COMPLETED, _CNI.TIMER_K): _t(_CN.TERMINATED, _s.TERMINATE),
    },
    ignored={
        # §17.1.2.2: Completed buffers response retransmissions.
        (_CN.COMPLETED, _CNI.RECV_1XX): "§17.1.2.2: absorbed in Completed",
        (_CN.COMPLETED, _CNI.RECV_200_699): "§17.1.2.2: final response retransmission absorbed",
        (_CN.COMPLETED, _CNI.TIMER_E): STALE_TIMER,
        (_CN.COMPLETED, _CNI.TIMER_F): STALE_TIMER,
        (_CN.COMPLETED, _CNI.TRANSPORT_ERROR): LATE_TRANSPORT_ERROR,
        (_CN.TERMINATED, _CNI.TIMER_E): AFTER_END,
        (_CN.TERMINATED, _CNI.TIMER_F): AFTER_END,
        (_CN.TERMINATED, _CNI.TIMER_K): AFTER_END,
    },
    timer_inputs={Timer.E: _CNI.TIMER_E, Timer.F: _CNI.TIMER_F, Timer.K: _CNI.TIMER_K},
    terminated=_CN.TERMINATED,
)


# -- Figure 7 + RFC 6026 §7.1: INVITE server transaction ---------------------------------------

_SI = ServerInviteState
_SII = ServerInviteInput

SERVER_INVITE: Machine[ServerInviteState, ServerInviteInput] = Machine(
    name="INVITE server transaction (RFC 3261 §17.2.1, Figure 7; RFC 6026 §7.1)",
    states=ServerInviteState,
    inputs=ServerInviteInput,
    # "INVITE / pass INV to TU, send 100 if TU won't in 200ms"
    start=_t(_SI.PROCEEDING, _s.SEND_TRYING, _s.DELIVER),
    table={
        # §17.2.1: a retransmitted INVITE re-sends the most recent provisional response.
        (_SI.PROCEEDING, _SII.RECV_INVITE): _t(_SI.PROCEEDING, _s.RESEND_LAST_RESPONSE),
        (_SI.PROCEEDING, _SII.SEND_1XX): _t(_SI.PROCEEDING, _s.SEND_RESPONSE),
        # RFC 6026 §7.1: a 2xx moves to Accepted and starts Timer L.
        (_SI.PROCEEDING, _SII.SEND_2XX): _t(_SI.ACCEPTED, _s.SEND_RESPONSE, _s.START_TIMER_L),
        # §17.2.1: 300-699: Timer G (unreliable only) and Timer H.
        (_SI.PROCEEDING, _SII.SEND_300_699): _t(
            _SI.COMPLETED, _s.SEND_RESPONSE, _s.START_TIMER_G, _s.START_TIMER_H
        ),
        # RFC 6026 §7.1 / §8.8: inform the TU, remain in the current state.
        (_SI.PROCEEDING, _SII.TRANSPORT_ERROR): _t(_SI.PROCEEDING, _s.TRANSPORT_FAILED),
        # §17.2.1: a retransmitted INVITE re-sends the final response.
        (_SI.COMPLETED, _SII.RECV_INVITE): _t(_SI.COMPLETED, _s.RESEND_LAST_RESPONSE),
        # §17.2.1: ACK -> Confirmed, stop retransmitting, Timer I (T4 unreliable, 0 reliable).
        (_SI.COMPLETED, _SII.RECV_ACK): _t(
            _SI.CONFIRMED, _s.CANCEL_TIMER_G, _s.CANCEL_TIMER_H, _s.START_TIMER_I
        ),
        # §17.2.1: resend, Timer G to min(2*T1, T2), then doubling capped at T2.
        (_SI.COMPLETED, _SII.TIMER_G): _t(
            _SI.COMPLETED, _s.RESEND_LAST_RESPONSE, _s.RESTART_TIMER_G
        ),
        # §17.2.1: no ACK before Timer H: "indicate to the TU that a transaction failure has
        # occurred".
        (_SI.COMPLETED, _SII.TIMER_H): _t(
            _SI.TERMINATED, _s.CANCEL_TIMER_G, _s.TIMED_OUT, _s.TERMINATE
        ),
        (_SI.COMPLETED, _SII.TRANSPORT_ERROR): _t(_SI.COMPLETED, _s.TRANSPORT_FAILED),
        (_SI.CONFIRMED, _SII.TIMER_I): _t(_SI.TERMINATED, _s.TERMINATE),
        # RFC 6026 §7.1: an ACK matching the transaction in Accepted goes to the TU.
        (_SI.ACCEPTED, _SII.RECV_ACK): _t(_SI.ACCEPTED, _s.DELIVER),
        # RFC 6026 §7.1: the TU retransmits its 2xx (§13.3.1.4) through the transaction.
        (_SI.ACCEPTED, _SII.SEND_2XX): _t(_SI.ACCEPTED, _s.SEND_RESPONSE),
        (_SI.ACCEPTED, _SII.TRANSPORT_ERROR): _t(_SI.ACCEPTED, _s.TRANSPORT_FAILED),
        (_SI.ACCEPTED, _SII.TIMER_L): _t(_SI.TERMINATED, _s.TERMINATE),
    },
    ignored={
        (_SI.PROCEEDING, _SII.RECV_ACK): "no final response was sent: the ACK acknowledges nothing",
        (_SI.CONFIRMED, _SII.RECV_ACK): "§17.2.1: Confirmed absorbs ACK retransmissions",
        (_SI.CONFIRMED, _SII.RECV_INVITE): "the ACK already arrived: a late INVITE retransmission",
        (_SI.CONFIRMED, _SII.TIMER_G): STALE_TIMER,
        (_SI.CONFIRMED, _SII.TIMER_H): STALE_TIMER,
        (_SI.CONFIRMED, _SII.TRANSPORT_ERROR): LATE_TRANSPORT_ERROR,
        (_SI.ACCEPTED, _SII.RECV_INVITE): "RFC 6026 §7.1: INVITE retransmissions are absorbed",
        (_SI.TERMINATED, _SII.TIMER_G): AFTER_END,
        (_SI.TERMINATED, _SII.TIMER_H): AFTER_END,
        (_SI.TERMINATED, _SII.TIMER_I): AFTER_END,
        (_SI.TERMINATED, _SII.TIMER_L): AFTER_END,
    },
    timer_inputs={
        Timer.G: _SII.TIMER_G,
        Timer.H: _SII.TIMER_H,
        Timer.I: _SII.TIMER_I,
        Timer.L: _SII.TIMER_L,
    },
    terminated=_SI.TERMINATED,
)


# -- Figure 8: non-INVITE server transaction ----------------------------------------------------

_SN = ServerNonInviteState
_SNI = ServerNonInviteInput

SERVER_NON_INVITE: Machine[ServerNonInviteState, ServerNonInviteInput] = Machine(
    name="non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8)",
    states=ServerNonInviteState,
    inputs=ServerNonInviteInput,
    # "Request received / pass to TU"
    start=_t(_SN.TRYING, _s.DELIVER),
    table={
        (_SN.TRYING, _SNI.SEND_1XX): _t(_SN.PROCEEDING, _s.SEND_RESPONSE),
        # Erratum 1470: a final response straight from Trying also goes to Completed.
        (_SN.TRYING, _SNI.SEND_200_699): _t(_SN.COMPLETED, _s.SEND_RESPONSE, _s.START_TIMER_J),
        # §17.2.2: a retransmitted request re-sends the most recent provisional response.
        (_SN.PROCEEDING, _SNI.RECV_REQUEST): _t(_SN.PROCEEDING, _s.RESEND_LAST_RESPONSE),
        (_SN.PROCEEDING, _SNI.SEND_1XX): _t(_SN.PROCEEDING, _s.SEND_RESPONSE),
        (_SN.PROCEEDING, _SNI.SEND_200_699): _t(_SN.COMPLETED, _s.SEND_RESPONSE, _s.START_TIMER_J),
        # RFC 6026 §8.8 (rewriting §17.2.4): inform the TU, remain in the current state.
        (_SN.PROCEEDING, _SNI.TRANSPORT_ERROR): _t(_SN.PROCEEDING, _s.TRANSPORT_FAILED),
        # §17.2.2: a retransmitted request re-sends the final response.
        (_SN.COMPLETED, _SNI.RECV_REQUEST): _t(_SN.COMPLETED, _s.RESEND_LAST_RESPONSE),
        (_SN.COMPLETED, _SNI.TIMER_J): _t(_SN.TERMINATED, _s.TERMINATE),
        (_SN.COMPLETED, _SNI.TRANSPORT_ERROR): _t(_SN.COMPLETED, _s.TRANSPORT_FAILED),
    },
    ignored={
        (_SN.TRYING, _SNI.RECV_REQUEST): "§17.2.2: retransmissions in Trying are discarded",
        (_SN.COMPLETED, _SNI.SEND_200_699): (
            "§17.2.2: other final responses from the TU are discarded in Completed"
        ),
        (_SN.TERMINATED, _SNI.TIMER_J): AFTER_END,
    },
    timer_inputs={Timer.J: _SNI.TIMER_J},
    terminated=_SN.TERMINATED,
)


#: The four machines, for code and tests that treat them alike.
MACHINES: tuple[Machine[Any, Any], ...] = (
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    SERVER_INVITE,
    SERVER_NON_INVITE,
)
