"""When sipush pushes instead of forwarding, and how long it holds (``[push]`` in the config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WakePolicy:
    """``hold_timeout``: seconds a held INVITE waits for the app (RFC 8599 §5.2 Bucket Timer).
    ``message_hold_timeout``: the same for MESSAGE, below the sender's Timer F (32 s, §5.6.2).
    ``ios`` / ``android``: ``always`` (push first, forward once the app re-registers) or
    ``on-failure`` (forward at once; push only when the app's TCP/TLS flow is gone).
    ``ring_while_held``: answer a held INVITE with 180 Ringing (the caller hears ringback while
    the app wakes) besides the 100 Trying.
    ``message_mode``: ``hold`` keeps the sender's MESSAGE transaction open until the app takes
    the message (the sender learns whether it arrived); ``accept`` answers 202 Accepted at once
    and delivers when the app re-registers, for at most ``accepted_message_ttl`` seconds."""

    hold_timeout: float = 30.0
    message_hold_timeout: float = 20.0
    ios: str = "always"
    android: str = "on-failure"
    ring_while_held: bool = False  # send 180 Ringing for a held INVITE
    on_failure_timeout: float = 2.0  # on-failure: no response this soon means asleep
    message_mode: str = "hold"  # "hold" | "accept"
    accepted_message_ttl: float = 3600.0
