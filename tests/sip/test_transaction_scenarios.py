"""Transactions over time: retransmission schedules, timeouts, RFC 6026 Accepted, lossy networks.

Everything runs on :class:`FakeLoop`, a heap of (time, callback) with a clock that jumps; a 32 s
Timer B path takes microseconds. :class:`Runner` is the smallest possible "shell": it carries out
a transaction's actions on the fake loop, the way the asyncio shell will with ``call_later``.

The last part connects a client transaction and a server transaction through
:class:`LossyNetwork` (datagrams as bytes, parsed again on arrival, with a fixed latency and a
deterministic loss pattern) and checks that requests still complete over UDP, that a reliable
transport never retransmits, and that a message lost on a reliable transport ends in a timeout.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipush.sip import Request, Response, make_response, parse_message
from sipush.sip.timers import RETRANSMIT_TIMERS, Timer, TimerConfig
from sipush.sip.transaction import (
    Action,
    CancelTimer,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    Deliver,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    StartTimer,
    Terminate,
    TimedOut,
    Transaction,
    TransportFailed,
    build_ack,
    new_client_transaction,
    new_server_transaction,
)
from sipush.sip.transaction_registry import TransactionRegistry
from sipush.sip.transaction_tables import (
    ClientInviteState,
    ClientNonInviteState,
    ServerInviteState,
    ServerNonInviteState,
    TransactionError,
)

# -- a fake clock and a tiny shell ----------------------------------------------------------------


@dataclass(order=True)
class _Event:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class FakeLoop:
    """call_later / cancel / run on a clock that jumps from event to event."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[_Event] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Event:
        event = _Event(self.now + delay, next(self._seq), callback)
        heapq.heappush(self._heap, event)
        return event

    def run(self, until: float = 1e9) -> None:
        while self._heap and self._heap[0].when <= until:
            event = heapq.heappop(self._heap)
            if event.cancelled:
                continue
            self.now = event.when
            event.callback()
        self.now = max(self.now, until) if until < 1e9 else self.now


TX = TypeVar("TX", bound=Transaction[Any, Any])


class Runner(Generic[TX]):
    """Carries out one transaction's actions on a :class:`FakeLoop` and records them."""

    def __init__(
        self,
        loop: FakeLoop,
        tx: TX,
        send: Callable[[Request | Response], None] | None = None,
        deliver: Callable[[Request | Response], None] | None = None,
    ) -> None:
        self.loop = loop
        self.tx = tx
        self._send = send
        self._deliver = deliver
        self.timers: dict[Timer, _Event] = {}
        self.log: list[tuple[float, Action]] = []
        self.sent: list[tuple[float, Request | Response]] = []
        self.delivered: list[Request | Response] = []
        self.timed_out_at: float | None = None
        self.transport_failed = 0
        self.terminated_at: float | None = None

    def start(self) -> None:
        self.run(self.tx.start())

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            self.log.append((self.loop.now, action))
            if isinstance(action, Send):
                self.sent.append((self.loop.now, action.message))
                if self._send is not None:
                    self._send(action.message)
            elif isinstance(action, StartTimer):
                assert action.timer not in self.timers, f"{action.timer} started twice"
                self.timers[action.timer] = self.loop.call_later(
                    action.delay, functools.partial(self._fire, action.timer)
                )
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.timer).cancelled = True
            elif isinstance(action, Deliver):
                self.delivered.append(action.message)
                if self._deliver is not None:
                    self._deliver(action.message)
            elif isinstance(action, TimedOut):
                self.timed_out_at = self.loop.now
            elif isinstance(action, TransportFailed):
                self.transport_failed += 1
            elif isinstance(action, Terminate):
                assert not self.timers, f"Terminate with timers running: {list(self.timers)}"
                self.terminated_at = self.loop.now

    def _fire(self, timer: Timer) -> None:
        del self.timers[timer]
        self.run(self.tx.fire(timer))

    def started_timers(self) -> set[Timer]:
        return {a.timer for _, a in self.log if isinstance(a, StartTimer)}

    def delays(self, timer: Timer) -> list[float]:
        return [a.delay for _, a in self.log if isinstance(a, StartTimer) and a.timer is timer]

    def send_times(self, kind: str | int) -> list[float]:
        """When messages of a method (``"INVITE"``) or status (``486``) were sent."""
        return [
            t
            for t, m in self.sent
            if (isinstance(m, Request) and m.method == kind)
            or (isinstance(m, Response) and m.status == kind)
        ]


def _state(runner: Runner[Any]) -> Any:
    """The state now (a call, so a type checker does not keep an earlier narrowing)."""
    return runner.tx.state


# -- messages ---------------------------------------------------------------------------------


def _request(method: str, branch: str, *, transport: str = "UDP", extra: str = "") -> Request:
    message = parse_message(
        (
            f"{method} sip:bob@example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 192.0.2.1:5060;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"{extra}"
            "From: Alice <sip:alice@example.com>;tag=a1\r\n"
            "To: Bob <sip:bob@example.com>\r\n"
            f"Call-ID: {branch}@192.0.2.1\r\n"
            f"CSeq: 1 {method}\r\n"
            "Contact: <sip:alice@192.0.2.1>\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


INVITE = _request("INVITE", "z9hG4bK-scn-invite")
OPTIONS = _request("OPTIONS", "z9hG4bK-scn-options")


# -- INVITE client (Figure 5) ---------------------------------------------------------------------


def test_invite_client_timer_a_doubles_until_timer_b_times_out() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientInviteTransaction(INVITE, reliable=False))
    runner.start()
    loop.run()
    # §17.1.1.2: retransmit at T1, then 2*T1, 4*T1, ... (no cap for INVITE)
    assert runner.send_times("INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert runner.delays(Timer.A) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    # Timer B = 64*T1 = 32 s: TimedOut, and Timer A (due at 63.5) is cancelled.
    assert runner.timed_out_at == 32.0
    assert runner.terminated_at == 32.0
    assert runner.tx.state is ClientInviteState.TERMINATED
    assert runner.delivered == []


def test_invite_client_timers_follow_the_config() -> None:
    loop = FakeLoop()
    config = TimerConfig(t1=0.1, t2=0.4)
    runner = Runner(loop, ClientInviteTransaction(INVITE, reliable=False, config=config))
    runner.start()
    loop.run()
    assert runner.timed_out_at == pytest.approx(6.4)
    assert runner.send_times("INVITE") == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])


def test_invite_client_provisional_stops_retransmission_and_timer_b() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientInviteTransaction(INVITE, reliable=False))
    runner.start()
    loop.run(until=1.0)  # INVITE at 0 and 0.5
    ringing = make_response(INVITE, 180, to_tag="b1")
    runner.run(runner.tx.receive(ringing))
    assert runner.tx.state is ClientInviteState.PROCEEDING
    loop.run(until=200.0)
    assert runner.send_times("INVITE") == [0.0, 0.5]
    assert runner.timed_out_at is None  # Figure 5: Timer B only bounds Calling
    assert runner.delivered == [ringing]
    assert runner.tx.state is ClientInviteState.PROCEEDING


def test_invite_client_acks_a_non_2xx_final_response_itself() -> None:
    loop = FakeLoop()
    routed = _request(
        "INVITE",
        "z9hG4bK-scn-ack",
        extra="Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n",
    )
    runner = Runner(loop, ClientInviteTransaction(routed, reliable=False))
    runner.start()
    busy = make_response(routed, 486, to_tag="b1")
    runner.run(runner.tx.receive(busy))
    assert runner.tx.state is ClientInviteState.COMPLETED
    assert runner.delivered == [busy]
    ack = runner.sent[-1][1]
    assert isinstance(ack, Request)
    # §17.1.1.3
    assert ack.method == "ACK"
    assert str(ack.uri) == str(routed.uri)
    assert ack.call_id == routed.call_id
    assert ack.headers.get("From") == routed.headers.get("From")
    assert ack.to.tag == "b1"
    assert ack.headers.get("To") == busy.headers.get("To")
    assert (ack.cseq.number, ack.cseq.method) == (routed.cseq.number, "ACK")
    assert ack.headers.get_all("Via") == routed.headers.get_all("Via")[:1]
    assert ack.headers.get_all("Route") == routed.headers.get_all("Route")
    assert ack.max_forwards == 70
    assert ack.body == b""
    assert parse_message(bytes(ack)) == ack  # real bytes round trip

    # A retransmitted 486 is ACKed again, not passed to the TU; Timer D (32 s) ends it.
    loop.run(until=5.0)
    runner.run(runner.tx.receive(busy))
    assert runner.delivered == [busy]
    assert [m.method for _, m in runner.sent if isinstance(m, Request)].count("ACK") == 2
    loop.run()
    assert runner.terminated_at == 32.0
    assert runner.timed_out_at is None


def test_invite_client_on_a_reliable_transport_never_retransmits() -> None:
    loop = FakeLoop()
    tcp_invite = _request("INVITE", "z9hG4bK-scn-tcp", transport="TCP")
    runner = Runner(loop, ClientInviteTransaction(tcp_invite, reliable=True))
    runner.start()
    loop.run()
    assert runner.send_times("INVITE") == [0.0]
    assert Timer.A not in runner.started_timers()
    assert runner.timed_out_at == 32.0  # Timer B still bounds the transaction


def test_invite_client_transport_error_in_calling_informs_the_tu() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientInviteTransaction(INVITE, reliable=False))
    runner.start()
    runner.run(runner.tx.transport_error())
    assert runner.transport_failed == 1
    assert runner.terminated_at == 0.0
    assert runner.tx.terminated


# -- RFC 6026: INVITE client Accepted -------------------------------------------------------------


def test_invite_client_accepted_passes_every_2xx_and_never_acks() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientInviteTransaction(INVITE, reliable=False))
    runner.start()
    ok_1 = make_response(INVITE, 200, to_tag="branch-1")
    ok_2 = make_response(INVITE, 200, to_tag="branch-2")  # forked downstream
    runner.run(runner.tx.receive(ok_1))
    assert runner.tx.state is ClientInviteState.ACCEPTED
    assert runner.delays(Timer.M) == [32.0]
    loop.run(until=1.0)
    runner.run(runner.tx.receive(ok_1))  # retransmission
    runner.run(runner.tx.receive(ok_2))
    runner.run(runner.tx.receive(make_response(INVITE, 180, to_tag="branch-3")))  # absorbed
    runner.run(runner.tx.receive(make_response(INVITE, 486, to_tag="branch-4")))  # absorbed
    assert runner.delivered == [ok_1, ok_1, ok_2]
    # RFC 6026 §7.2: "The client transaction MUST NOT generate an ACK to the 2xx response."
    assert runner.send_times("INVITE") == [0.0]
    assert runner.send_times("ACK") == []
    loop.run()
    assert runner.terminated_at == 32.0  # Timer M


# -- non-INVITE client (Figure 6) -----------------------------------------------------------------


def test_non_invite_client_timer_e_doubles_capped_at_t2_until_timer_f() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientNonInviteTransaction(OPTIONS, reliable=False))
    runner.start()
    loop.run()
    # §17.1.2.2: T1, 2*T1, 4*T1, then T2 (4 s) each time
    assert runner.delays(Timer.E)[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert runner.send_times("OPTIONS") == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip
    assert runner.timed_out_at == 32.0  # Timer F = 64*T1
    assert runner.terminated_at == 32.0


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientNonInviteTransaction(OPTIONS, reliable=False))
    runner.start()
    loop.run(until=0.2)
    trying = make_response(OPTIONS, 100)
    runner.run(runner.tx.receive(trying))
    assert _state(runner) is ClientNonInviteState.PROCEEDING
    loop.run(until=10.0)
    # Timer E keeps running; from Proceeding it is reset to T2 each time (§17.1.2.2).
    assert runner.send_times("OPTIONS") == [0.0, 0.5, 4.5, 8.5]
    ok = make_response(OPTIONS, 200, to_tag="b1")
    runner.run(runner.tx.receive(ok))
    assert _state(runner) is ClientNonInviteState.COMPLETED
    runner.run(runner.tx.receive(ok))  # retransmission absorbed in Completed
    loop.run()
    assert runner.delivered == [trying, ok]
    assert runner.send_times("OPTIONS") == [0.0, 0.5, 4.5, 8.5]
    assert runner.terminated_at == 15.0  # Timer K = T4 after the 200 at 10 s
    assert runner.timed_out_at is None


def test_non_invite_client_reliable_timer_k_is_zero() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ClientNonInviteTransaction(OPTIONS, reliable=True))
    runner.start()
    loop.run(until=0.3)
    runner.run(runner.tx.receive(make_response(OPTIONS, 200, to_tag="b1")))
    loop.run()
    assert runner.terminated_at == 0.3
    assert runner.delays(Timer.K) == [0.0]
    assert Timer.E not in runner.started_timers()


# -- INVITE server (Figure 7) ---------------------------------------------------------------------


def test_invite_server_sends_100_trying_and_resends_it() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False))
    runner.start()
    assert runner.delivered == [INVITE]
    trying = runner.sent[0][1]
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None  # §8.2.6.2: no To tag on 100
    runner.run(runner.tx.receive(INVITE))  # retransmission: the 100 again, not to the TU
    assert runner.send_times(100) == [0.0, 0.0]
    ringing = make_response(INVITE, 180, to_tag="b1")
    runner.run(runner.tx.respond(ringing))
    runner.run(runner.tx.receive(INVITE))  # now the most recent provisional is the 180
    assert [m for _, m in runner.sent][-2:] == [ringing, ringing]
    assert runner.delivered == [INVITE]


def test_invite_server_without_100_trying_stays_silent_until_the_tu_answers() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False, send_trying=False))
    runner.start()
    runner.run(runner.tx.receive(INVITE))
    assert runner.sent == []
    assert runner.delivered == [INVITE]


def test_invite_server_timer_g_retransmits_the_final_response_until_timer_h() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False))
    runner.start()
    runner.run(runner.tx.respond(make_response(INVITE, 486, to_tag="b1")))
    assert runner.tx.state is ServerInviteState.COMPLETED
    loop.run()
    # §17.2.1: Timer G at T1, then doubling up to T2; Timer H = 64*T1 without an ACK.
    assert runner.delays(Timer.G)[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert runner.send_times(486) == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip
    assert runner.timed_out_at == 32.0
    assert runner.terminated_at == 32.0


def test_invite_server_ack_confirms_and_timer_i_ends_it() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False))
    runner.start()
    busy = make_response(INVITE, 486, to_tag="b1")
    runner.run(runner.tx.respond(busy))
    loop.run(until=1.0)
    runner.run(runner.tx.receive(INVITE))  # a retransmission in Completed: the 486 again
    ack = build_ack(INVITE, busy)
    runner.run(runner.tx.receive(ack))
    assert runner.tx.state is ServerInviteState.CONFIRMED
    runner.run(runner.tx.receive(ack))  # absorbed
    runner.run(runner.tx.receive(INVITE))  # absorbed
    loop.run()
    assert runner.send_times(486) == [0.0, 0.5, 1.0]
    assert runner.delivered == [INVITE]  # §17.2.1: the ACK for a non-2xx stays here
    assert runner.terminated_at == 6.0  # Timer I = T4 after the ACK at 1 s
    assert runner.timed_out_at is None


def test_invite_server_reliable_no_timer_g_and_timer_i_is_zero() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=True))
    runner.start()
    busy = make_response(INVITE, 486, to_tag="b1")
    runner.run(runner.tx.respond(busy))
    loop.run(until=2.0)
    runner.run(runner.tx.receive(build_ack(INVITE, busy)))
    loop.run()
    assert runner.send_times(486) == [0.0]
    assert Timer.G not in runner.started_timers()
    assert runner.terminated_at == 2.0


def test_invite_server_transport_error_keeps_the_state() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False))
    runner.start()
    runner.run(runner.tx.respond(make_response(INVITE, 486, to_tag="b1")))
    runner.run(runner.tx.transport_error())
    # RFC 6026 §7.1: inform the TU, stay; Timer H ends it later.
    assert runner.transport_failed == 1
    assert runner.tx.state is ServerInviteState.COMPLETED
    loop.run()
    assert runner.terminated_at == 32.0


# -- RFC 6026: INVITE server Accepted -------------------------------------------------------------


def test_invite_server_accepted_absorbs_invites_and_passes_acks() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerInviteTransaction(INVITE, reliable=False))
    runner.start()
    ok = make_response(INVITE, 200, to_tag="b1")
    runner.run(runner.tx.respond(ok))
    assert runner.tx.state is ServerInviteState.ACCEPTED
    assert runner.delays(Timer.L) == [32.0]
    sent_before = len(runner.sent)
    runner.run(runner.tx.receive(INVITE))  # RFC 6026 §7.1: absorbed, nothing re-sent
    assert len(runner.sent) == sent_before
    loop.run(until=0.5)
    runner.run(runner.tx.respond(ok))  # the TU retransmits its 2xx (§13.3.1.4)
    assert runner.send_times(200) == [0.0, 0.5]
    ack = build_ack(INVITE, ok)  # same branch: an ACK that matches goes to the TU
    runner.run(runner.tx.receive(ack))
    assert runner.delivered == [INVITE, ack]
    with pytest.raises(TransactionError):
        runner.tx.respond(make_response(INVITE, 486, to_tag="b1"))  # a second final
    loop.run()
    assert runner.terminated_at == 32.0  # Timer L
    assert Timer.G not in runner.started_timers()


# -- non-INVITE server (Figure 8) -----------------------------------------------------------------


def test_non_invite_server_resends_the_last_response_then_timer_j() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerNonInviteTransaction(OPTIONS, reliable=False))
    runner.start()
    assert runner.delivered == [OPTIONS]
    assert runner.sent == []  # no 100 Trying for non-INVITE
    runner.run(runner.tx.receive(OPTIONS))  # Trying: discarded
    assert runner.sent == []
    trying = make_response(OPTIONS, 100)
    runner.run(runner.tx.respond(trying))
    runner.run(runner.tx.receive(OPTIONS))  # Proceeding: the provisional again
    assert runner.send_times(100) == [0.0, 0.0]
    loop.run(until=1.0)
    ok = make_response(OPTIONS, 200, to_tag="b1")
    runner.run(runner.tx.respond(ok))
    assert runner.tx.state is ServerNonInviteState.COMPLETED
    loop.run(until=3.0)
    runner.run(runner.tx.receive(OPTIONS))  # Completed: the final again
    runner.run(runner.tx.respond(make_response(OPTIONS, 500)))  # §17.2.2: discarded
    assert runner.send_times(200) == [1.0, 3.0]
    assert runner.send_times(500) == []
    loop.run()
    assert runner.terminated_at == 33.0  # Timer J = 64*T1 after the 200 at 1 s
    assert runner.delivered == [OPTIONS]


def test_non_invite_server_reliable_timer_j_is_zero() -> None:
    loop = FakeLoop()
    runner = Runner(loop, ServerNonInviteTransaction(OPTIONS, reliable=True))
    runner.start()
    loop.run(until=0.25)
    runner.run(runner.tx.respond(make_response(OPTIONS, 200, to_tag="b1")))
    loop.run()
    assert runner.terminated_at == 0.25


# -- misuse is a TransactionError ---------------------------------------------------------------


def test_misuse_raises_transaction_error() -> None:
    ack = build_ack(INVITE, make_response(INVITE, 486, to_tag="b1"))
    with pytest.raises(TransactionError):
        new_client_transaction(ack, reliable=False)  # ACK has no client transaction
    with pytest.raises(TransactionError):
        new_server_transaction(ack, reliable=False)
    with pytest.raises(TransactionError):
        ClientNonInviteTransaction(INVITE, reliable=False)
    with pytest.raises(TransactionError):
        ServerInviteTransaction(OPTIONS, reliable=False)
    no_branch = parse_message(bytes(INVITE).replace(b";branch=z9hG4bK-scn-invite", b""))
    assert isinstance(no_branch, Request)
    with pytest.raises(TransactionError):
        ClientInviteTransaction(no_branch, reliable=False)

    client = ClientInviteTransaction(INVITE, reliable=False)
    client.start()
    with pytest.raises(TransactionError):
        client.fire(Timer.E)  # not a timer of this machine
    with pytest.raises(TransactionError):
        client.receive(INVITE)  # type: ignore[arg-type]  # a request is no response
    with pytest.raises(TransactionError):
        client.feed(client.input_for(make_response(INVITE, 180)))  # message missing
    with pytest.raises(TransactionError):
        client.feed(client.input_for(make_response(INVITE, 180)), make_response(INVITE, 200))
    with pytest.raises(TransactionError):
        client.fire(Timer.D)  # Timer D cannot run in Calling: a protocol error
    assert client.state is ClientInviteState.CALLING

    server = ServerNonInviteTransaction(OPTIONS, reliable=False)
    server.start()
    with pytest.raises(TransactionError):
        server.receive(_request("BYE", "z9hG4bK-other"))
    big = make_response(OPTIONS, 200)
    with pytest.raises(TransactionError):
        server.respond(Response(700, "Odd", big.headers))


def test_factories_pick_the_machine() -> None:
    assert isinstance(new_client_transaction(INVITE, reliable=False), ClientInviteTransaction)
    assert isinstance(new_client_transaction(OPTIONS, reliable=False), ClientNonInviteTransaction)
    assert isinstance(new_server_transaction(INVITE, reliable=False), ServerInviteTransaction)
    assert isinstance(new_server_transaction(OPTIONS, reliable=False), ServerNonInviteTransaction)


# -- random runs: only our error, and timers always tidy -----------------------------------------

_EVENTS = st.lists(
    st.one_of(
        st.sampled_from(["fire", "transport_error", "request"]),
        st.sampled_from([100, 180, 200, 202, 302, 486, 603]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["client-invite", "client-non-invite", "server-invite", "server-nn"]),
    reliable=st.booleans(),
    events=_EVENTS,
    picks=st.lists(st.integers(min_value=0, max_value=7), min_size=25, max_size=25),
)
def test_random_runs_raise_only_transaction_error_and_leave_no_timer(
    kind: str, reliable: bool, events: list[str | int], picks: list[int]
) -> None:
    """Whatever arrives in whatever order, with timers firing only while running (as a real
    shell does): only TransactionError escapes, and Terminate never leaves a timer running."""
    loop = FakeLoop()
    request = INVITE if "invite" in kind and "non" not in kind else OPTIONS
    tx: (
        ClientInviteTransaction
        | ClientNonInviteTransaction
        | ServerInviteTransaction
        | ServerNonInviteTransaction
    )
    if kind.startswith("client"):
        tx = new_client_transaction(request, reliable=reliable)
    else:
        tx = new_server_transaction(request, reliable=reliable)
    runner = Runner(loop, tx)  # Runner asserts on double starts and timers left running
    runner.start()
    for event, pick in zip(events, picks, strict=False):
        if tx.terminated:
            break
        try:
            if event == "fire":
                if runner.timers:
                    timer = sorted(runner.timers, key=lambda t: t.value)[pick % len(runner.timers)]
                    runner.timers.pop(timer).cancelled = True
                    runner.run(tx.fire(timer))
            elif event == "transport_error":
                runner.run(tx.transport_error())
            elif event == "request":
                if isinstance(tx, ServerInviteTransaction) and pick % 2:
                    runner.run(tx.receive(build_ack(request, make_response(request, 486))))
                elif isinstance(tx, ServerTransaction):
                    runner.run(tx.receive(request))
            else:
                assert isinstance(event, int)
                response = make_response(request, event, to_tag="b1")
                if isinstance(tx, ClientTransaction):
                    runner.run(tx.receive(response))
                else:
                    runner.run(tx.respond(response))
        except TransactionError:
            pass
    if reliable:
        assert not runner.started_timers() & RETRANSMIT_TIMERS
    if tx.terminated:
        assert runner.terminated_at is not None
        assert not runner.timers


# -- client and server through a lossy network ----------------------------------------------------


@dataclass
class Datagram:
    number: int
    at: float
    direction: str
    first_line: str
    dropped: bool


class LossyNetwork:
    """Messages as bytes between two ends, with a latency and a fixed loss pattern.

    ``drop`` holds the 1-based numbers of the messages that are lost, counting every message
    on the network in both directions (``{1, 3}``: the first and the third).
    """

    def __init__(
        self, loop: FakeLoop, *, drop: frozenset[int] = frozenset(), latency: float = 0.01
    ):
        self.loop = loop
        self.drop = drop
        self.latency = latency
        self.log: list[Datagram] = []

    def send(
        self, message: Request | Response, direction: str, deliver: Callable[[bytes], None]
    ) -> None:
        data = bytes(message)
        number = len(self.log) + 1
        dropped = number in self.drop
        first_line = data.split(b"\r\n", 1)[0].decode()
        self.log.append(Datagram(number, self.loop.now, direction, first_line, dropped))
        if not dropped:
            self.loop.call_later(self.latency, lambda: deliver(data))


class ServerEnd:
    """A UAS: a registry of server transactions and a TU that answers every new request."""

    def __init__(
        self, loop: FakeLoop, network: LossyNetwork, *, reliable: bool, status: int
    ) -> None:
        self.loop = loop
        self.network = network
        self.reliable = reliable
        self.status = status
        self.registry = TransactionRegistry()
        self.runners: list[Runner] = []
        self.requests_to_tu: list[Request] = []
        self.stray_acks: list[Request] = []
        self.client: ClientEnd | None = None

    def receive(self, data: bytes) -> None:
        request = parse_message(data)
        assert isinstance(request, Request)
        tx = self.registry.match_request(request)
        if tx is not None:
            self._runner(tx).run(tx.receive(request))
            return
        if request.method == "ACK":
            self.stray_acks.append(request)  # §17.3 / §13.3.1.4: an ACK for a 2xx is the TU's
            return
        tx = new_server_transaction(request, reliable=self.reliable)
        self.registry.add(tx)
        runner = Runner(self.loop, tx, send=self._send, deliver=functools.partial(self._tu, tx))
        self.runners.append(runner)
        runner.start()

    def _runner(self, tx: Transaction[Any, Any]) -> Runner:
        return next(r for r in self.runners if r.tx is tx)

    def _tu(self, tx: Any, message: Request | Response) -> None:
        assert isinstance(message, Request)
        self.requests_to_tu.append(message)
        if message.method == "ACK":
            return
        response = make_response(message, self.status, to_tag="uas-1")
        # the TU answers a moment later, as a real one would
        self.loop.call_later(0.001, lambda: self._runner(tx).run(tx.respond(response)))

    def _send(self, message: Request | Response) -> None:
        assert self.client is not None
        self.network.send(message, "server->client", self.client.receive)


class ClientEnd:
    """A UAC with one client transaction."""

    def __init__(
        self,
        loop: FakeLoop,
        network: LossyNetwork,
        server: ServerEnd,
        request: Request,
        *,
        reliable: bool,
    ) -> None:
        self.network = network
        self.server = server
        self.registry = TransactionRegistry()
        self.tx = new_client_transaction(request, reliable=reliable)
        self.registry.add(self.tx)
        self.runner = Runner(loop, self.tx, send=self._send)
        self.unmatched: list[Response] = []

    def _send(self, message: Request | Response) -> None:
        self.network.send(message, "client->server", self.server.receive)

    def receive(self, data: bytes) -> None:
        response = parse_message(data)
        assert isinstance(response, Response)
        tx = self.registry.match_response(response)
        if tx is None:
            self.unmatched.append(response)
            return
        self.runner.run(tx.receive(response))


def _pair(
    request: Request, *, reliable: bool, drop: frozenset[int], status: int
) -> tuple[FakeLoop, LossyNetwork, ClientEnd, ServerEnd]:
    loop = FakeLoop()
    network = LossyNetwork(loop, drop=drop)
    server = ServerEnd(loop, network, reliable=reliable, status=status)
    client = ClientEnd(loop, network, server, request, reliable=reliable)
    server.client = client
    return loop, network, client, server


def _all_timers(*runners: Runner) -> set[Timer]:
    return set().union(*(r.started_timers() for r in runners))


def test_udp_non_invite_survives_losing_the_1st_and_3rd_datagrams() -> None:
    loop, network, client, server = _pair(
        OPTIONS, reliable=False, drop=frozenset({1, 3}), status=200
    )
    client.runner.start()
    loop.run()
    assert [(d.direction, d.first_line, d.dropped) for d in network.log] == [
        ("client->server", "OPTIONS sip:bob@example.com SIP/2.0", True),
        ("client->server", "OPTIONS sip:bob@example.com SIP/2.0", False),  # Timer E at 0.5 s
        ("server->client", "SIP/2.0 200 OK", True),
        ("client->server", "OPTIONS sip:bob@example.com SIP/2.0", False),  # Timer E at 1.5 s
        ("server->client", "SIP/2.0 200 OK", False),  # re-sent from Completed
    ]
    [ok] = client.runner.delivered
    assert isinstance(ok, Response) and ok.status == 200
    assert [r.method for r in server.requests_to_tu] == ["OPTIONS"]  # the TU saw it once
    assert client.runner.timed_out_at is None
    assert client.runner.terminated_at is not None
    assert all(r.terminated_at is not None for r in server.runners)
    assert len(server.runners) == 1  # the retransmission matched the same transaction


def test_udp_invite_survives_loss_and_the_ack_reaches_the_server_transaction() -> None:
    loop, network, client, server = _pair(
        INVITE, reliable=False, drop=frozenset({1, 3}), status=486
    )
    client.runner.start()
    loop.run()
    lines = [(d.first_line.split(" ")[0:2], d.dropped) for d in network.log]
    assert lines == [
        (["INVITE", "sip:bob@example.com"], True),
        (["INVITE", "sip:bob@example.com"], False),  # Timer A
        (["SIP/2.0", "100"], True),  # 100 Trying lost: harmless
        (["SIP/2.0", "486"], False),
        (["ACK", "sip:bob@example.com"], False),  # built by the client transaction
    ]
    [busy] = client.runner.delivered
    assert isinstance(busy, Response) and busy.status == 486
    [server_runner] = server.runners
    assert server_runner.tx.state is ServerInviteState.TERMINATED
    assert server_runner.timed_out_at is None  # the ACK arrived: Confirmed, then Timer I
    assert [r.method for r in server.requests_to_tu] == ["INVITE"]
    assert server.stray_acks == []


def test_udp_invite_2xx_goes_to_accepted_on_both_sides() -> None:
    loop, network, client, server = _pair(INVITE, reliable=False, drop=frozenset({3}), status=200)
    client.runner.start()
    loop.run(until=1.0)
    # INVITE, 100, 200 (lost), then nothing: the server TU owns 2xx retransmission (§13.3.1.4)
    assert [d.dropped for d in network.log] == [False, False, True]
    assert client.tx.state is ClientInviteState.PROCEEDING
    [server_runner] = server.runners
    assert server_runner.tx.state is ServerInviteState.ACCEPTED
    server_runner.run(server_runner.tx.respond(server_runner.tx.last_response))  # TU re-sends
    loop.run()
    assert client.runner.terminated_at is not None  # Timer M
    assert server_runner.terminated_at is not None  # Timer L
    assert [m.status for m in client.runner.delivered if isinstance(m, Response)] == [100, 200]


@pytest.mark.parametrize(("request_", "status"), [(OPTIONS, 200), (INVITE, 486), (INVITE, 200)])
def test_reliable_transport_without_loss_never_retransmits(request_: Request, status: int) -> None:
    tcp = _request(request_.method, "z9hG4bK-tcp-" + request_.method.lower(), transport="TCP")
    loop, network, client, server = _pair(tcp, reliable=True, drop=frozenset(), status=status)
    client.runner.start()
    loop.run()
    sent_requests = [d for d in network.log if d.direction == "client->server"]
    assert [d.first_line.split(" ")[0] for d in sent_requests] == (
        [tcp.method, "ACK"] if status == 486 else [tcp.method]
    )
    responses = [d.first_line for d in network.log if d.direction == "server->client"]
    assert len(responses) == len(set(responses))  # each response sent once
    assert not _all_timers(client.runner, *server.runners) & RETRANSMIT_TIMERS  # A, E, G
    assert client.runner.timed_out_at is None
    assert client.runner.terminated_at is not None


@pytest.mark.parametrize(("request_", "timer"), [(OPTIONS, Timer.F), (INVITE, Timer.B)])
def test_reliable_transport_with_a_lost_message_times_out(request_: Request, timer: Timer) -> None:
    """A reliable transport does not retransmit, so a message it lost ends in Timer B or F."""
    tcp = _request(request_.method, "z9hG4bK-tcp-lost-" + request_.method.lower(), transport="TCP")
    loop, network, client, server = _pair(tcp, reliable=True, drop=frozenset({1}), status=200)
    client.runner.start()
    loop.run()
    assert len(network.log) == 1  # the one request, never sent again
    assert server.runners == []
    assert client.runner.timed_out_at == 32.0
    assert timer in client.runner.started_timers()
    assert not client.runner.started_timers() & RETRANSMIT_TIMERS
