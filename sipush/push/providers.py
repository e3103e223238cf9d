"""The push providers a configuration asks for (``[push] apns`` and ``[push] fcm`` apps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipush.push.notification import PushProvider

if TYPE_CHECKING:
    from sipush.config import PushConfig


def build_providers(config: PushConfig) -> list[PushProvider]:
    providers: list[PushProvider] = []
    if config.apns:
        from sipush.push.apns import ApnsProvider

        providers.append(ApnsProvider(config.apns))
    if config.fcm:
        from sipush.push.fcm import FcmProvider

        providers.append(FcmProvider(config.fcm))
    return providers
