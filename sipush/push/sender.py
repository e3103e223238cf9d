"""Routes each notification to the provider that holds credentials for the device's app, with
retries inside a deadline (issue #4: 429 and 5xx are retried with backoff)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sipush.push.mask import mask_token
from sipush.push.notification import Notification, PushProvider, PushResult

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.2  # seconds; doubles per retry, capped by Retry-After and the deadline


class PushSender:
    def __init__(self, providers: Sequence[PushProvider]) -> None:
        self.providers = tuple(providers)

    def can_push(self, notification: Notification) -> bool:
        return self._provider(notification) is not None

    def _provider(self, notification: Notification) -> PushProvider | None:
        for provider in self.providers:
            if provider.name == notification.push.provider and provider.handles(notification.push):
                return provider
        return None

    async def send(
        self, notification: Notification, *, deadline: float | None = None
    ) -> PushResult:
        """Send, retrying ``retry`` outcomes with backoff until ``deadline`` (a monotonic time)."""
        result, _ = await self.send_counted(notification, deadline=deadline)
        return result

    async def send_counted(
        self, notification: Notification, *, deadline: float | None = None
    ) -> tuple[PushResult, int]:
        """:meth:`send`, also returning how many requests it took."""
        provider = self._provider(notification)
        if provider is None:
            reason = (
                f"no {notification.push.provider} credentials for app "
                f"{notification.push.app_id or '?'}"
            )
            return PushResult("failed", reason=reason), 0
        backoff = FIRST_BACKOFF
        attempts = 0
        while True:
            attempts += 1
            result = await provider.send(notification)
            logger.info(
                "push %s to %s via %s: %s %s",
                notification.kind, mask_token(notification.push.prid), provider.name,
                result.outcome, result.reason or result.status or "",
            )  # fmt: skip
            if result.outcome != "retry":
                return result, attempts
            wait = max(backoff, result.retry_after or 0.0)
            if deadline is None or time.monotonic() + wait >= deadline:
                return result, attempts
            await asyncio.sleep(wait)
            backoff *= 2

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()
