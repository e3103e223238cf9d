"""Timer durations (RFC 3261 Table 4, §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2; RFC 6026) and
their config."""

from __future__ import annotations

import dataclasses

import pytest

from sipush.errors import ConfigError, SipushError
from sipush.sip.timers import RETRANSMIT_TIMERS, Timer, TimerConfig, timer_duration

DEFAULT = TimerConfig()


def test_defaults_are_the_rfc_values() -> None:
    assert (DEFAULT.t1, DEFAULT.t2, DEFAULT.t4) == (0.5, 4.0, 5.0)
    assert DEFAULT.timer_c > 180


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.t1 = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"t1": 0},
        {"t1": -0.5},
        {"t2": 0.0},
        {"t4": -1},
        {"t1": float("nan")},
        {"t1": True},
        {"t1": "0.5"},
        {"t1": 5.0, "t2": 4.0},  # T1 must not exceed T2
        {"timer_c": 180.0},  # §16.6: larger than 3 minutes
    ],
)
def test_bad_config_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        TimerConfig(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, SipushError)
    assert "\n" not in str(info.value)


def test_t1_equal_to_t2_is_allowed() -> None:
    assert TimerConfig(t1=4.0, t2=4.0).t1 == 4.0


# Table 4, with the defaults (T1 = 0.5 s, T2 = 4 s, T4 = 5 s).
UNRELIABLE = {
    Timer.A: 0.5,  # initially T1
    Timer.B: 32.0,  # 64*T1
    Timer.C: 181.0,  # > 3 min
    Timer.D: 32.0,  # >= 32 s for UDP
    Timer.E: 0.5,  # initially T1
    Timer.F: 32.0,
    Timer.G: 0.5,
    Timer.H: 32.0,
    Timer.I: 5.0,  # T4
    Timer.J: 32.0,  # 64*T1
    Timer.K: 5.0,  # T4
    Timer.L: 32.0,  # RFC 6026: 64*T1
    Timer.M: 32.0,  # RFC 6026: 64*T1
}
RELIABLE = {
    Timer.A: None,  # no retransmission over TCP/TLS
    Timer.B: 32.0,
    Timer.C: 181.0,
    Timer.D: 0.0,
    Timer.E: None,
    Timer.F: 32.0,
    Timer.G: None,
    Timer.H: 32.0,
    Timer.I: 0.0,
    Timer.J: 0.0,
    Timer.K: 0.0,
    Timer.L: 32.0,
    Timer.M: 32.0,
}


@pytest.mark.parametrize("timer", list(Timer), ids=str)
def test_durations_unreliable(timer: Timer) -> None:
    assert timer_duration(timer, DEFAULT, reliable=False) == UNRELIABLE[timer]


@pytest.mark.parametrize("timer", list(Timer), ids=str)
def test_durations_reliable(timer: Timer) -> None:
    assert timer_duration(timer, DEFAULT, reliable=True) == RELIABLE[timer]


def test_durations_follow_the_config() -> None:
    fast = TimerConfig(t1=0.1, t2=0.4, t4=0.7)
    assert timer_duration(Timer.A, fast, reliable=False) == 0.1
    assert timer_duration(Timer.B, fast, reliable=False) == pytest.approx(6.4)
    assert timer_duration(Timer.K, fast, reliable=False) == 0.7
    assert timer_duration(Timer.I, fast, reliable=False) == 0.7
    # §17.1.1.2: Timer D is at least 32 s on UDP whatever T1 is ...
    assert timer_duration(Timer.D, fast, reliable=False) == 32.0
    # ... and covers 64*T1 when T1 is larger than the default.
    slow = TimerConfig(t1=1.0, t2=4.0)
    assert timer_duration(Timer.D, slow, reliable=False) == 64.0


def test_retransmit_timers_are_a_e_g() -> None:
    assert {Timer.A, Timer.E, Timer.G} == RETRANSMIT_TIMERS


def test_timer_names_read_like_the_rfc() -> None:
    assert str(Timer.B) == "Timer B"
    assert [t.value for t in Timer] == list("ABCDEFGHIJKLM")
