"""The wake path (RFC 8599 §5.6.2): push the sleeping app, hold the request, release it when the
app re-registers.

Theory of operation
-------------------
A new INVITE or MESSAGE that the ``forward`` module sends toward an app (over the flow named by
sipush's Path token) comes here first. The app's binding is looked up by the request's To (the
AOR) and the flow. The request is **held** when the binding can be pushed (push information, the
kind allowed by ``allow-call-push`` / ``allow-message-push``, credentials for its app) and either
its TCP/TLS flow is gone (the OS killed or suspended the app) or the policy for its platform is
``always`` (the default for iOS, whose VoIP pushes must each report a call). Otherwise it is
forwarded at once (``on-failure``, the default for Android).

A held request has a response context (100 Trying goes out for INVITE) but no branch. Its push is
sent with retries (429/5xx) inside the hold deadline. Then one of:

* the PBX's 2xx to a REGISTER from the same device (same AOR and device identity) **releases**
  it, exactly once, as a new branch to the Contact and flow of that REGISTER; from there sipush is
  an ordinary stateful proxy for the call (a 401/407 never releases anything: bindings, and so
  releases, happen only on the 2xx);
* the push fails, or its token is dead (APNs 410 / BadDeviceToken, FCM UNREGISTERED): 480 at once;
  a dead token is removed from the binding so it is not pushed again;
* CANCEL: 200 to the CANCEL, 487 to the INVITE, a ``cancelIncomingCall`` push, and a
  ``missedCall`` push unless the Reason header says the call was completed elsewhere (RFC 3326);
* the deadline passes: 480 and a ``missedCall`` push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sipush.errors import SipushError
from sipush.proxy.chain import Forward, LocalIdentity, Target
from sipush.proxy.core import ProxyCore, ResponseContext
from sipush.proxy.flow_token import FlowTokens
from sipush.proxy.forward import with_record_route
from sipush.push.notification import Notification, NotificationKind, PushResult
from sipush.push.policy import WakePolicy
from sipush.push.sender import PushSender
from sipush.sip import Request, SipUri, parse_uri
from sipush.sip.transaction import ServerTransaction
from sipush.store import Binding, BindingStore, ChangeSet, PushRecord
from sipush.transport.flow import Flow

logger = logging.getLogger(__name__)
# One line per wake step, for operators and scripts/bench/wake_latency.py: "wake-push" (the
# request's arrival -> its push handed to the provider) and "wake-release" (the device's
# REGISTER 2xx reaching sipush -> the held request handed to its new branch), in ms.
timeline = logging.getLogger("sipush.timeline")

WAKE_METHODS = ("INVITE", "MESSAGE")
MESSAGE_BODY_LIMIT = 240  # characters of a MESSAGE shown in its push


@dataclass(eq=False)
class HeldRequest:
    context: ResponseContext
    forward: Forward
    binding: Binding
    kind: NotificationKind
    deadline: float  # monotonic
    inbound: str  # transport the request came in on (for Record-Route)
    arrived: float = field(default_factory=time.monotonic)  # when the request reached sipush
    timer: asyncio.TimerHandle | None = None
    released: bool = False
    accepted: bool = False  # answered 202 already: delivered detached on release


class WakeService:
    def __init__(
        self,
        core: ProxyCore,
        store: Callable[[], BindingStore | None],
        sender: PushSender,
        *,
        flow_is_open: Callable[[Flow], bool],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        tokens: FlowTokens,
        local: Callable[[], LocalIdentity],
        policy: WakePolicy | None = None,
    ) -> None:
        self.core = core
        self.tokens = tokens
        self.local = local
        self.store = store
        self.sender = sender
        self.flow_is_open = flow_is_open
        self.spawn = spawn
        self.policy = policy or WakePolicy()
        # Held requests, in arrival order, and indexed by the device that releases them and by
        # their server transaction (a CANCEL's target): O(1) per REGISTER and CANCEL even with
        # 10,000 requests held.
        self._held: dict[HeldRequest, None] = {}
        self._held_by_device: dict[tuple[str, str], list[HeldRequest]] = {}
        self._held_by_tx: dict[ServerTransaction[Any, Any], HeldRequest] = {}
        # (aor, device_id) -> monotonic time of the last push: whose REGISTER is worth recording
        self._pushed: dict[tuple[str, str], float] = {}

    @staticmethod
    def applies(request: Request, forward: Forward) -> bool:
        """A new call or message heading for an app's flow."""
        return (
            request.method in WAKE_METHODS
            and request.to.tag is None
            and forward.target.flow is not None
        )

    def handle_now(
        self,
        server_tx: ServerTransaction[Any, Any],
        request: Request,
        forward: Forward,
        inbound: str = "udp",
        arrived: float | None = None,
    ) -> bool:
        """:meth:`handle` without a task, when the binding store's memory already knows the
        answer (the common case: the app registered through this sipush); False otherwise."""
        flow = forward.target.flow
        assert flow is not None
        known, binding = self._cached_binding_for(request, flow)
        if not known:
            return False
        self._decide(server_tx, request, forward, inbound, arrived, binding)
        return True

    async def handle(
        self,
        server_tx: ServerTransaction[Any, Any],
        request: Request,
        forward: Forward,
        inbound: str = "udp",
        arrived: float | None = None,
    ) -> None:
        flow = forward.target.flow
        assert flow is not None
        binding = await self._binding_for(request, flow)
        self._decide(server_tx, request, forward, inbound, arrived, binding)

    def _decide(
        self,
        server_tx: ServerTransaction[Any, Any],
        request: Request,
        forward: Forward,
        inbound: str,
        arrived: float | None,
        binding: Binding | None,
    ) -> None:
        """Forward, forward then push on failure, or push and hold (see the module docstring)."""
        arrived = time.monotonic() if arrived is None else arrived
        flow = forward.target.flow
        assert flow is not None
        kind: NotificationKind = "incomingCall" if request.method == "INVITE" else "messageReceived"
        if binding is None or not self._should_push(binding, kind, flow):
            if flow.is_stream and not self.flow_is_open(flow):
                context = self.core.open(server_tx, request)
                self.core.answer(context, 430)  # RFC 5626 §5.3.1: the flow is gone, no push
                return
            if binding is not None and self._can_push(binding, kind):
                self._forward_then_push_on_failure(
                    server_tx, request, forward, binding, kind, inbound
                )
                return
            self.core.proxy(server_tx, request, forward)
            return
        context = self.core.open(server_tx, request)
        accepted = kind == "messageReceived" and self.policy.message_mode == "accept"
        if accepted:
            self.core.answer(context, 202)  # delivered when the app re-registers
        if kind == "incomingCall" and self.policy.ring_while_held:
            self.core.provisional(context, 180)
        timeout = (
            self.policy.hold_timeout if kind == "incomingCall" else self.policy.message_hold_timeout
        )
        if accepted:
            timeout = self.policy.accepted_message_ttl
        self._hold(
            context, forward, binding, kind, inbound, timeout, accepted=accepted, arrived=arrived
        )

    def _hold(
        self,
        context: ResponseContext,
        forward: Forward,
        binding: Binding,
        kind: NotificationKind,
        inbound: str,
        timeout: float,
        *,
        accepted: bool = False,
        arrived: float | None = None,
    ) -> None:
        context.held = True
        held = HeldRequest(context, forward, binding, kind, time.monotonic() + timeout, inbound)
        if arrived is not None:
            held.arrived = arrived
        held.accepted = accepted
        held.timer = asyncio.get_running_loop().call_later(timeout, self._expire, held)
        self._held[held] = None
        self._held_by_device.setdefault((binding.aor, binding.device_id), []).append(held)
        self._held_by_tx[context.server_tx] = held
        self.spawn(self._push(held, kind))

    def _forward_then_push_on_failure(
        self,
        server_tx: ServerTransaction[Any, Any],
        request: Request,
        forward: Forward,
        binding: Binding,
        kind: NotificationKind,
        inbound: str,
    ) -> None:
        """``on-failure``: forward now; when the branch answers 408/480/503, or nothing at all
        within ``on_failure_timeout``, the app sleeps: push it and hold the request."""
        context = self.core.open(server_tx, request)
        timeout = (
            self.policy.hold_timeout if kind == "incomingCall" else self.policy.message_hold_timeout
        )

        def asleep(status: int) -> bool:
            if context.held or context.final_sent:
                return context.held
            logger.info("%s for %s got %s: pushing the app", request.method, binding.aor, status)
            self._hold(context, forward, binding, kind, inbound, timeout)
            return True

        branch = self.core.add_branch(context, forward.request, forward.target, on_failure=asleep)

        def silent() -> None:
            if not branch.provisional and branch.final is None and not context.final_sent:
                asleep(0)

        asyncio.get_running_loop().call_later(self.policy.on_failure_timeout, silent)

    # -- decisions ------------------------------------------------------------------------------

    def _can_push(self, binding: Binding, kind: NotificationKind) -> bool:
        push = binding.push
        if push is None:
            return False
        if kind == "incomingCall" and not push.allow_call_push:
            return False
        if kind == "messageReceived" and not push.allow_message_push:
            return False
        return self.sender.can_push(self._notification(binding, kind, None))

    def _should_push(self, binding: Binding, kind: NotificationKind, flow: Flow) -> bool:
        """Push first (rather than forward first)?"""
        push = binding.push
        if push is None or not self._can_push(binding, kind):
            return False
        if flow.is_stream and not self.flow_is_open(flow):
            return True  # the app's connection is gone: it is asleep
        platform_policy = (
            self.policy.ios
            if (push.platform or push.provider) in ("ios", "apns")
            else self.policy.android
        )
        return platform_policy == "always"

    def _cached_binding_for(self, request: Request, flow: Flow) -> tuple[bool, Binding | None]:
        """(known, binding): what :meth:`_binding_for` would find, when memory knows it."""
        store = self.store()
        uri = request.to.uri
        if store is None or not isinstance(uri, SipUri):
            return True, None
        remote = _address(flow.remote)
        return store.find_in_memory(
            uri.aor, lambda b: b.transport == flow.transport and b.flow_remote == remote
        )

    async def _binding_for(self, request: Request, flow: Flow) -> Binding | None:
        store = self.store()
        uri = request.to.uri
        if store is None or not isinstance(uri, SipUri):
            return None
        remote = _address(flow.remote)
        return await store.find(
            uri.aor, lambda b: b.transport == flow.transport and b.flow_remote == remote
        )

    # -- pushes ---------------------------------------------------------------------------------

    def _notification(
        self, binding: Binding, kind: NotificationKind, request: Request | None
    ) -> Notification:
        assert binding.push is not None
        caller_name = caller_number = body = title = None
        call_id = None
        if request is not None:
            call_id = request.call_id
            caller_name = request.from_.display_name
            caller_number = getattr(request.from_.uri, "user_text", None) or str(request.from_.uri)
            if kind == "messageReceived":
                title = caller_name or caller_number
                body = _cut(request.body.decode("utf-8", "replace"), MESSAGE_BODY_LIMIT)
            elif kind == "missedCall":
                title = "Missed call"
                body = " ".join(part for part in (caller_name, caller_number) if part)
        return Notification(
            kind=kind, push=binding.push, aor=binding.aor, call_id=call_id,
            caller_name=caller_name, caller_number=caller_number, title=title, body=body,
            collapse_id=call_id,
        )  # fmt: skip

    async def _push(self, held: HeldRequest, kind: NotificationKind) -> None:
        notification = self._notification(held.binding, kind, held.context.request)
        timeline.info(
            "wake-push aor=%s call_id=%s ms=%.3f",
            held.binding.aor, notification.call_id, (time.monotonic() - held.arrived) * 1000,
        )  # fmt: skip
        result = await self._send_recorded(notification, held.binding, held.deadline, held.arrived)
        if held.released or held not in self._held:
            return
        if result.outcome == "token-invalid":
            await self._forget_token(held.binding)
            self._end(held, 480, follow_up=False)  # no missedCall to a dead token
        elif result.outcome != "delivered":
            self._end(held, 480)  # RFC 8599 §5.6.2: the push failed, do not make the caller wait

    def _follow_up(self, binding: Binding, kind: NotificationKind, request: Request) -> None:
        async def send() -> None:
            started = time.monotonic()
            notification = self._notification(binding, kind, request)
            await self._send_recorded(notification, binding, started + 10, started)

        self.spawn(send())

    async def _send_recorded(
        self, notification: Notification, binding: Binding, deadline: float, arrived: float
    ) -> PushResult:
        """Send with retries, then record the push (type, provider, outcome, latency) in the
        store, off the request's path."""
        sent_at = datetime.now(UTC)
        self._pushed[(binding.aor, binding.device_id)] = time.monotonic()
        result, attempts = await self.sender.send_counted(notification, deadline=deadline)
        store = self.store()
        if store is not None and attempts:
            record = PushRecord(
                aor=binding.aor, device_id=binding.device_id, kind=notification.kind,
                provider=notification.push.provider, outcome=result.outcome,
                status=result.status if result.status and 100 <= result.status <= 599 else None,
                reason=result.reason, call_id=notification.call_id, sent_at=sent_at,
                latency_ms=max(0.0, (time.monotonic() - arrived) * 1000), attempts=attempts,
            )  # fmt: skip

            async def save() -> None:
                try:
                    await store.add_push_record(record)
                except SipushError as err:
                    logger.warning("could not record a push: %s", err)

            self.spawn(save())
        return result

    async def _forget_token(self, binding: Binding) -> None:
        store = self.store()
        if store is None:
            return
        logger.info(
            "push token of %s %s is dead: it will not be pushed again",
            binding.aor,
            binding.device_id,
        )
        await store.apply(ChangeSet(upserts=(replace(binding, push=None),)))

    # -- endings --------------------------------------------------------------------------------

    def pushed_recently(self, binding: Binding, within: float = 120.0) -> bool:
        """True (once) when this device was pushed in the last ``within`` seconds: its REGISTER
        is then worth stamping on the push records. Every other REGISTER skips that write."""
        now = time.monotonic()
        if len(self._pushed) > 10_000:  # bounded: forget pushes older than ``within``
            self._pushed = {k: t for k, t in self._pushed.items() if now - t < within}
        pushed = self._pushed.pop((binding.aor, binding.device_id), None)
        return pushed is not None and now - pushed < within

    @property
    def held(self) -> list[HeldRequest]:
        """The requests held now, oldest first."""
        return list(self._held)

    def on_registered(self, binding: Binding, *, accepted_at: float | None = None) -> None:
        """The PBX accepted a REGISTER of this device (its 2xx reached sipush at
        ``accepted_at``, monotonic): release what is held for it, once."""
        for held in list(self._held_by_device.get((binding.aor, binding.device_id), ())):
            self._remove(held)
            held.released = True
            flow = binding_flow(binding)
            request = self._retarget(held, flow).with_uri(parse_uri(binding.contact))
            logger.debug(
                "releasing %s for %s to %s", held.context.request.method, binding.aor, flow
            )
            if held.accepted:
                self.core.send_detached(request, Target.over(flow))
            else:
                held.context.held = False
                self.core.add_branch(held.context, request, Target.over(flow))
            if accepted_at is not None:
                timeline.info(
                    "wake-release aor=%s call_id=%s ms=%.3f",
                    binding.aor, held.context.request.call_id,
                    (time.monotonic() - accepted_at) * 1000,
                )  # fmt: skip

    def _retarget(self, held: HeldRequest, flow: Flow) -> Request:
        """The held copy with sipush's Record-Route now naming the app's new flow."""
        request = held.forward.request
        old_flow = held.forward.target.flow
        if old_flow is None:
            return request
        old_token = self.tokens.encode(old_flow)
        ours = 0
        for value in request.record_routes:
            if not isinstance(value.uri, SipUri) or value.uri.user != old_token:
                break
            ours += 1
        if not ours:
            return request
        headers = request.headers
        for _ in range(ours):
            _, headers = headers.pop_first_value("Record-Route")
        token = self.tokens.encode(flow)
        return with_record_route(
            request.with_headers(headers), self.local(), token, held.inbound, flow.transport
        )

    def on_cancel(self, server_tx: ServerTransaction[Any, Any], cancel: Request) -> bool:
        """A CANCEL for a held INVITE: 487, and the follow-up pushes. False if none is held."""
        held = self._held_by_tx.get(server_tx)
        if held is None:
            return False
        self._remove(held)
        self.core.answer(held.context, 487)
        self._follow_up(held.binding, "cancelIncomingCall", held.context.request)
        if not _completed_elsewhere(cancel):
            self._follow_up(held.binding, "missedCall", held.context.request)
        return True

    def _expire(self, held: HeldRequest) -> None:
        if held in self._held:
            self._end(held, 480)

    def _end(self, held: HeldRequest, status: int, *, follow_up: bool = True) -> None:
        self._remove(held)
        if held.accepted:
            logger.warning(
                "an accepted MESSAGE for %s could not be delivered (%d)", held.binding.aor, status
            )
            return
        self.core.answer(held.context, status)
        if follow_up and held.kind == "incomingCall":
            self._follow_up(held.binding, "missedCall", held.context.request)

    def _remove(self, held: HeldRequest) -> None:
        if held in self._held:
            del self._held[held]
            key = (held.binding.aor, held.binding.device_id)
            same_device = self._held_by_device.get(key, [])
            if held in same_device:
                same_device.remove(held)
            if not same_device:
                self._held_by_device.pop(key, None)
            if self._held_by_tx.get(held.context.server_tx) is held:
                del self._held_by_tx[held.context.server_tx]
        if held.timer is not None:
            held.timer.cancel()

    def close(self) -> None:
        for held in list(self._held):
            self._remove(held)


def binding_flow(binding: Binding) -> Flow:
    return Flow(
        binding.transport, _parse_address(binding.flow_local), _parse_address(binding.flow_remote)
    )


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary where possible, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


def _completed_elsewhere(cancel: Request) -> bool:
    """RFC 3326: ``Reason: SIP ;cause=200;text="Call completed elsewhere"``."""
    return any("cause=200" in value.replace(" ", "") for value in cancel.headers.lines("Reason"))
