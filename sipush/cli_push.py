"""``sipush push test AOR [--type incomingCall]``: send a test push to every device of an AOR.

It reads the same config as ``sipush serve`` (``--config``: the ``[push]`` credentials and the
``[store] url``), sends one notification of the given type to each binding of the AOR that has
push information, and prints each provider's answer. Tokens are masked unless
``--show-tokens``. Exit status: 0 every push was delivered; 1 some were not (or the AOR has no
device that can be pushed); 2 bad arguments, config or store (one line).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, get_args

import click

from sipush.cli_bindings import _normalise_aor, mask_token
from sipush.config import load_config
from sipush.push.notification import Notification, NotificationKind

KINDS = get_args(NotificationKind)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def push() -> None:
    """Send pushes by hand."""


@push.command("test")
@click.argument("aor")
@click.option(
    "--type", "kind", type=click.Choice(KINDS), default="incomingCall", show_default=True,
    help="The notification type to send.",
)  # fmt: skip
@click.option(
    "--config", "config_path", metavar="FILE", help="TOML config (push credentials, store)."
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option("--show-tokens", is_flag=True, help="Show push tokens in full.")
def push_test(
    aor: str, kind: str, config_path: str | None, as_json: bool, show_tokens: bool
) -> None:
    """Send a test push to every device of AOR and print each provider's answer."""
    config = load_config(config_path)
    target = _normalise_aor(aor, "'AOR'")
    results = asyncio.run(_send_all(config, target, kind))
    if as_json:
        click.echo(json.dumps(
            [dict(r, token=r["token"] if show_tokens else mask_token(r["token"])) for r in results],
            indent=2,
        ))  # fmt: skip
    elif not results:
        click.echo(f"{target}: no device with push information")
    for result in [] if as_json else results:
        token = result["token"] if show_tokens else mask_token(result["token"])
        click.echo(
            f"{result['device_id'] if show_tokens else mask_token(result['device_id'])}  "
            f"{result['provider']}  {token}  {result['outcome']}"
            f"{'  ' + str(result['status']) if result['status'] else ''}"
            f"{'  ' + result['reason'] if result['reason'] else ''}"
        )
    sys.exit(0 if results and all(r["outcome"] == "delivered" for r in results) else 1)


async def _send_all(config: Any, aor: str, kind: str) -> list[dict[str, Any]]:
    from sipush.push.providers import build_providers
    from sipush.push.sender import PushSender
    from sipush.store import BindingStore

    store = await BindingStore.open(config.store.url, create=False)
    sender = PushSender(build_providers(config.push))
    try:
        results = []
        for binding in await store.get(aor):
            if binding.push is None:
                continue
            notification = Notification(
                kind=kind, push=binding.push, aor=aor, call_id="sipush-push-test",  # type: ignore[arg-type]
                caller_name="sipush test", caller_number="test", title="sipush test",
                body="This is a test push from sipush.",
            )  # fmt: skip
            result = await sender.send(notification)
            results.append({
                "device_id": binding.device_id, "provider": binding.push.provider,
                "token": binding.push.prid, "outcome": result.outcome, "status": result.status,
                "reason": result.reason, "provider_id": result.provider_id,
            })  # fmt: skip
        return results
    finally:
        await sender.close()
        await store.close()
