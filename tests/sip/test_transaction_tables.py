"""The four transaction state tables (RFC 3261 Figures 5-8, RFC 6026), checked as data and run.

Three layers:

1. the tables as data: only declared states and inputs, no pair both a transition and ignored,
   ``TERMINATE`` exactly on the way into ``TERMINATED``;
2. a walk over every reachable (state, running timers) pair: a running timer that fires always
   has a transition, ``Terminate`` leaves no timer running, no timer is started twice or
   cancelled when not running;
3. every (state x input) pair of every machine fed to a real transaction with real messages:
   the table's actions and next state, or nothing for an ignored pair, or TransactionError.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Any

import pytest

from sipush.sip import Request, Response, make_response, parse_message
from sipush.sip.timers import RETRANSMIT_TIMERS, Timer
from sipush.sip.transaction import (
    CancelTimer,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    StartTimer,
    Terminate,
    TimedOut,
    Transaction,
    TransportFailed,
    build_ack,
)
from sipush.sip.transaction_tables import (
    CANCEL_STEPS,
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    MACHINES,
    SERVER_INVITE,
    START_STEPS,
    Machine,
    Step,
    TransactionError,
    Transition,
)

AnyMachine = Machine[Any, Any]


def _states(machine: AnyMachine) -> list[Enum]:
    return list(machine.states.__members__.values())


MACHINE_IDS = ["client-invite", "client-non-invite", "server-invite", "server-non-invite"]


# -- 1. the tables as data ---------------------------------------------------------------------


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_tables_only_contain_declared_states_and_inputs(machine: AnyMachine) -> None:
    for (state, input_), transition in machine.table.items():
        assert isinstance(state, machine.states)
        assert isinstance(input_, machine.inputs)
        assert isinstance(transition, Transition)
        assert isinstance(transition.next_state, machine.states)
        assert all(isinstance(step, Step) for step in transition.steps)
    for state, input_ in machine.ignored:
        assert isinstance(state, machine.states)
        assert isinstance(input_, machine.inputs)
    assert isinstance(machine.start.next_state, machine.states)
    assert isinstance(machine.terminated, machine.states)
    for timer, input_ in machine.timer_inputs.items():
        assert isinstance(timer, Timer)
        assert isinstance(input_, machine.inputs)
        assert input_.name == f"TIMER_{timer.value}"
    # every TIMER_x input is reachable through fire(Timer.x)
    timer_inputs = {i for i in machine.inputs if i.name.startswith("TIMER_")}
    assert timer_inputs == set(machine.timer_inputs.values())


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_no_pair_is_both_a_transition_and_ignored(machine: AnyMachine) -> None:
    assert not set(machine.table) & set(machine.ignored)
    assert all(reason.strip() for reason in machine.ignored.values())


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_terminate_is_the_last_step_exactly_into_terminated(machine: AnyMachine) -> None:
    for (state, input_), transition in machine.table.items():
        into_terminated = transition.next_state is machine.terminated
        assert (Step.TERMINATE in transition.steps) is into_terminated, (state, input_)
        if into_terminated:
            assert transition.steps[-1] is Step.TERMINATE
        assert state is not machine.terminated, "nothing leaves Terminated"


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_terminated_ignores_timers_and_rejects_the_rest(machine: AnyMachine) -> None:
    for input_ in machine.inputs:
        found = machine.lookup(machine.terminated, input_)
        if input_.name.startswith("TIMER_"):
            assert isinstance(found, str)
        else:
            assert found is None


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_every_state_is_reachable_and_can_terminate(machine: AnyMachine) -> None:
    edges: dict[Enum, set[Enum]] = {s: set() for s in _states(machine)}
    for (state, _), transition in machine.table.items():
        edges[state].add(transition.next_state)
    seen = {machine.start.next_state}
    todo = [machine.start.next_state]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(_states(machine))
    for state in _states(machine):
        reach, todo = {state}, [state]
        while todo:
            for nxt in edges[todo.pop()] - reach:
                reach.add(nxt)
                todo.append(nxt)
        assert machine.terminated in reach, state


# -- 2. running timers over every reachable path -----------------------------------------------


def _steps_on_timers(
    steps: tuple[Step, ...], armed: frozenset[Timer], reliable: bool, where: object
) -> frozenset[Timer]:
    running = set(armed)
    for step in steps:
        started, cancelled = START_STEPS.get(step), CANCEL_STEPS.get(step)
        if reliable and (started in RETRANSMIT_TIMERS or cancelled in RETRANSMIT_TIMERS):
            continue
        if started is not None:
            assert started not in running, f"{where}: {started} started while running"
            running.add(started)
        if cancelled is not None:
            assert cancelled in running, f"{where}: {cancelled} cancelled but not running"
            running.discard(cancelled)
    return frozenset(running)


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_timers_are_consistent_on_every_path(machine: AnyMachine, reliable: bool) -> None:
    timer_of = {input_: timer for timer, input_ in machine.timer_inputs.items()}
    start = (
        machine.start.next_state,
        _steps_on_timers(machine.start.steps, frozenset(), reliable, "start"),
    )
    seen = {start}
    queue = deque([start])
    while queue:
        state, armed = queue.popleft()
        for input_ in machine.inputs:
            timer = timer_of.get(input_)
            if timer is not None and timer not in armed:
                continue  # a timer that is not running cannot fire
            found = machine.lookup(state, input_)
            where = f"{state.name} + {input_.name} with {sorted(t.value for t in armed)}"
            if timer is not None:
                assert isinstance(found, Transition), f"{where}: a running timer must act"
            if not isinstance(found, Transition):
                continue
            running = armed - {timer} if timer is not None else armed
            running = _steps_on_timers(found.steps, running, reliable, where)
            if found.next_state is machine.terminated:
                assert not running, f"{where}: timers left running after Terminate"
            nxt = (found.next_state, running)
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert {state for state, _ in seen} == set(_states(machine))


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_retransmit_timers_only_restart_from_their_own_firing(machine: AnyMachine) -> None:
    restarts = {Step.RESTART_TIMER_A, Step.RESTART_TIMER_E, Step.RESTART_TIMER_E_AT_T2}
    restarts |= {Step.RESTART_TIMER_G}
    for (state, input_), transition in machine.table.items():
        for step in transition.steps:
            if step in restarts:
                assert input_.name == f"TIMER_{START_STEPS[step].value}", (state, input_)


# -- 3. every (state x input) pair, run ---------------------------------------------------------


def _parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


INVITE = _parse_request(
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-table-1\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=a1\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"Call-ID: table-1@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
OPTIONS = _parse_request(
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-table-2\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: Alice <sip:alice@example.com>;tag=a2\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"Call-ID: table-2@192.0.2.1\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _message_for(machine: AnyMachine, input_: Enum) -> Request | Response | None:
    """A real message that is ``input_`` for ``machine`` (None for timers, transport errors)."""
    name = input_.name
    request = INVITE if machine in (CLIENT_INVITE, SERVER_INVITE) else OPTIONS
    if name == "RECV_INVITE":
        return INVITE
    if name == "RECV_REQUEST":
        return OPTIONS
    if name == "RECV_ACK":
        return build_ack(INVITE, make_response(INVITE, 486, to_tag="b1"))
    if name.endswith("1XX"):
        return make_response(request, 180, to_tag="b1")
    if name.endswith(("2XX", "200_699")):
        return make_response(request, 200, to_tag="b1")
    if name.endswith("300_699"):
        return make_response(request, 486, to_tag="b1")
    return None


def _new(machine: AnyMachine, reliable: bool) -> Transaction[Any, Any]:
    if machine is CLIENT_INVITE:
        return ClientInviteTransaction(INVITE, reliable=reliable)
    if machine is CLIENT_NON_INVITE:
        return ClientNonInviteTransaction(OPTIONS, reliable=reliable)
    if machine is SERVER_INVITE:
        return ServerInviteTransaction(INVITE, reliable=reliable)
    return ServerNonInviteTransaction(OPTIONS, reliable=reliable)


def _expected(step: Step) -> tuple[type, Timer | None]:
    if step in START_STEPS:
        return StartTimer, START_STEPS[step]
    if step in CANCEL_STEPS:
        return CancelTimer, CANCEL_STEPS[step]
    plain: dict[Step, type] = {
        Step.SEND_REQUEST: Send,
        Step.SEND_ACK: Send,
        Step.SEND_TRYING: Send,
        Step.SEND_RESPONSE: Send,
        Step.RESEND_LAST_RESPONSE: Send,
        Step.DELIVER: Deliver,
        Step.TIMED_OUT: TimedOut,
        Step.TRANSPORT_FAILED: TransportFailed,
        Step.TERMINATE: Terminate,
    }
    return plain[step], None


def _shape(actions: list[Any]) -> list[tuple[type, Timer | None]]:
    return [(type(a), getattr(a, "timer", None)) for a in actions]


ALL_PAIRS = [
    pytest.param(machine, state, input_, id=f"{mid}-{state.name}-{input_.name}")
    for machine, mid in zip(MACHINES, MACHINE_IDS, strict=True)
    for state in machine.states
    for input_ in machine.inputs
]


@pytest.mark.parametrize(("machine", "state", "input_"), ALL_PAIRS)
def test_every_state_and_input(machine: AnyMachine, state: Enum, input_: Enum) -> None:
    tx = _new(machine, reliable=False)
    tx.start()
    tx.force_state(state)
    if tx.last_response is None:  # so that RESEND_LAST_RESPONSE has something to re-send
        tx.last_response = make_response(tx.request, 180, to_tag="b1")
    message = _message_for(machine, input_)
    found = machine.lookup(state, input_)

    if found is None:
        with pytest.raises(TransactionError):
            tx.feed(input_, message)
        assert tx.state is state, "a protocol error changes nothing"
        return
    actions = tx.feed(input_, message)
    if isinstance(found, str):
        assert actions == [], f"ignored: {found}"
        assert tx.state is state
        return
    assert _shape(actions) == [_expected(step) for step in found.steps]
    assert tx.state is found.next_state
    for step, action in zip(found.steps, actions, strict=True):
        if step is Step.DELIVER:
            assert action == Deliver(message)  # type: ignore[arg-type]
        if step in (Step.SEND_RESPONSE, Step.SEND_REQUEST):
            assert isinstance(action, Send)
            assert action.message == (message if step is Step.SEND_RESPONSE else tx.request)


@pytest.mark.parametrize(("machine", "state", "input_"), ALL_PAIRS)
def test_every_state_and_input_on_a_reliable_transport(
    machine: AnyMachine, state: Enum, input_: Enum
) -> None:
    """Same table, minus every action on Timers A, E and G."""
    tx = _new(machine, reliable=True)
    tx.start()
    tx.force_state(state)
    if tx.last_response is None:
        tx.last_response = make_response(tx.request, 180, to_tag="b1")
    found = machine.lookup(state, input_)
    if not isinstance(found, Transition):
        return  # the same ignore / error as above; covered there
    actions = tx.feed(input_, _message_for(machine, input_))
    expected = [
        _expected(step)
        for step in found.steps
        if START_STEPS.get(step, CANCEL_STEPS.get(step)) not in RETRANSMIT_TIMERS
    ]
    assert _shape(actions) == expected
    for action in actions:
        if isinstance(action, StartTimer) and action.timer in (Timer.D, Timer.I, Timer.J):
            assert action.delay == 0.0
        if isinstance(action, StartTimer) and action.timer is Timer.K:
            assert action.delay == 0.0


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_start_runs_the_entry_transition(machine: AnyMachine) -> None:
    tx = _new(machine, reliable=False)
    with pytest.raises(TransactionError):
        _ = tx.state  # not started
    actions = tx.start()
    assert tx.state is machine.start.next_state
    assert _shape(actions) == [_expected(step) for step in machine.start.steps]
    with pytest.raises(TransactionError):
        tx.start()


@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_inputs_of_another_machine_are_rejected(machine: AnyMachine) -> None:
    tx = _new(machine, reliable=False)
    tx.start()
    for other in MACHINES:
        if other is machine:
            continue
        for input_ in other.inputs:
            with pytest.raises(TransactionError):
                tx.feed(input_)
        if other.states is not machine.states:
            with pytest.raises(TransactionError):
                tx.force_state(_states(other)[0])
