"""SIP transaction timers as data: their names and durations (RFC 3261 §17, Table 4 in §A).

Nothing here reads a clock or sleeps. A transaction asks for a timer with
``StartTimer(Timer.A, 0.5)``; whatever runs it (the asyncio shell, or a fake clock in a test)
feeds the timer back as an input when it fires.

    timer   value                     what it bounds                             section
    T1      0.5 s (default)           RTT estimate                               §17.1.1.1
    T2      4 s (default)             longest retransmit interval, non-INVITE    §17.1.2.2
    T4      5 s (default)             longest time a message lives in the net    §17.1.2.2
    A       T1, doubling              INVITE request retransmit (UDP only)       §17.1.1.2
    B       64*T1                     INVITE client transaction timeout          §17.1.1.2
    C       > 3 min                   proxy INVITE transaction timeout           §16.6 step 11
    D       >= 32 s UDP, 0 reliable   wait for response retransmits              §17.1.1.2
    E       T1, doubling up to T2     non-INVITE request retransmit (UDP only)   §17.1.2.2
    F       64*T1                     non-INVITE client transaction timeout      §17.1.2.2
    G       T1, doubling up to T2     INVITE response retransmit (UDP only)      §17.2.1
    H       64*T1                     wait for ACK receipt                       §17.2.1
    I       T4 UDP, 0 reliable        wait for ACK retransmits                   §17.2.1
    J       64*T1 UDP, 0 reliable     wait for non-INVITE request retransmits    §17.2.2
    K       T4 UDP, 0 reliable        wait for response retransmits              §17.1.2.2
    L       64*T1                     server: 2xx retransmits from the TU, ACKs  RFC 6026 §7.1
    M       64*T1                     client: more 2xx (retransmits, forking)    RFC 6026 §7.2

Timers A, E and G drive retransmission, which only unreliable transports need: on TCP/TLS they
are never started (§17.1.1.2, §17.1.2.2, §17.2.1), and :func:`timer_duration` says so by
returning ``None``. Their doubling is state of one transaction, so it lives in the transaction
object (:mod:`sipush.sip.transaction`); this module gives the first interval and the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sipush.errors import ConfigError

__all__ = ["RETRANSMIT_TIMERS", "Timer", "TimerConfig", "timer_duration"]


@dataclass(frozen=True)
class TimerConfig:
    """The base durations, in seconds, every transaction timer derives from.

    ``t1``, ``t2`` and ``t4`` are RFC 3261's T1, T2 and T4 (§17.1.1.1, §17.1.2.2, Table 4);
    ``timer_c`` is the proxy's Timer C (§16.6 step 11: "MUST be larger than 3 minutes").
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_c: float = 181.0

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4", "timer_c"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(
                    f"timer {name} must be a positive number of seconds, not {value!r}"
                )
        if self.t1 > self.t2:
            # §17.1.2.2: retransmit intervals double from T1 and are capped at T2.
            raise ConfigError(f"timer t1 ({self.t1} s) must not be larger than t2 ({self.t2} s)")
        if self.timer_c <= 180:
            raise ConfigError(
                f"timer_c must be larger than 3 minutes (§16.6), not {self.timer_c} s"
            )


class Timer(Enum):
    """The transaction timers of RFC 3261 Table 4, plus L and M from RFC 6026."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"

    def __str__(self) -> str:
        return f"Timer {self.value}"


#: Timers that retransmit; never started on a reliable transport.
RETRANSMIT_TIMERS = frozenset({Timer.A, Timer.E, Timer.G})

#: §17.1.1.2: Timer D is "at least 32 seconds for unreliable transports".
MIN_TIMER_D = 32.0


def timer_duration(timer: Timer, config: TimerConfig, *, reliable: bool) -> float | None:
    """The (first) duration of ``timer`` in seconds, or ``None`` if it is not started at all.

    For A, E and G this is the first interval (T1); the transaction doubles it (§17.1.1.2,
    §17.1.2.2, §17.2.1). ``reliable`` is True for TCP, TLS, SCTP and WebSocket flows.
    """
    t1, t4 = config.t1, config.t4
    if timer in RETRANSMIT_TIMERS:
        return None if reliable else t1
    if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
        return 64 * t1
    if timer is Timer.C:
        return config.timer_c
    if timer is Timer.D:
        # §17.1.1.2: covers the server's Timer H (64*T1) worth of response retransmissions.
        return 0.0 if reliable else max(MIN_TIMER_D, 64 * t1)
    if timer is Timer.J:
        return 0.0 if reliable else 64 * t1
    # Timer I (§17.2.1) and Timer K (§17.1.2.2)
    return 0.0 if reliable else t4
