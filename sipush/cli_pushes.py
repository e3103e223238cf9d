"""``sipush pushes list``: the pushes sipush sent, newest first, for people and for scripts.

Every push the proxy sends is recorded in the binding store (:class:`~sipush.store.PushRecord`):
its type, provider, outcome (after retries), the push service's status and reason, the latency
(from the SIP request reaching sipush to the provider's answer), how many tries it took, and
when the woken app's REGISTER was accepted. Records are kept for 7 days (the store's sweep
deletes older ones, see ``BindingStore.purge_expired``).

The table is for people: time (UTC, to the millisecond), AOR, device, type, provider, outcome,
status and reason, latency, tries, and how long after the push the app re-registered.
``--json`` gives every field for scripts, with full ISO-8601 UTC times. Device ids that are push
tokens are masked like tokens (``3f1a9c…2468``) unless ``--show-tokens``.

Like ``sipush bindings``, it finds the store the same way, never creates one, and works while
``sipush serve`` writes to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sipush.cli_bindings import (
    STORE_SOURCE_HELP,
    _normalise_aor,
    _run,
    _store_options,
    _store_url,
    _token_options,
    echo_json,
    latency_text,
    mask_device_id,
    push_answer,
    push_as_json,
    push_time,
    reregistered_text,
)

if TYPE_CHECKING:
    from sipush.store import PushRecord

DEFAULT_LIMIT = 100

PUSHES_HELP = (
    STORE_SOURCE_HELP
    + """\b
Exit status: 0 done (also when no push matched); 2 bad arguments, or the
store is missing or unreachable (one line: sipush: error: ...).
"""
)

TABLE_HEADER = (
    "TIME",
    "AOR",
    "DEVICE",
    "TYPE",
    "PROVIDER",
    "OUTCOME",
    "STATUS",
    "LATENCY",
    "TRIES",
    "RE-REGISTERED",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def pushes() -> None:
    """See the pushes sipush sent (kept 7 days) and whether the apps woke up."""


@pushes.command("list", epilog=PUSHES_HELP)
@click.option("--aor", metavar="AOR", help="Only this AOR, e.g. sip:alice@example.com.")
@click.option(
    "--device",
    "device_id",
    metavar="ID",
    help="Only this device: its id as --show-tokens prints it.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    metavar="N",
    help="At most N pushes, the newest.",
)
@_token_options
@_store_options
def list_pushes(
    aor: str | None,
    device_id: str | None,
    limit: int,
    as_json: bool,
    show_tokens: bool,
    config_path: str | None,
    store_url: str | None,
) -> None:
    """List the pushes sent (all AORs, or one), newest first."""
    wanted = None if aor is None else _normalise_aor(aor, "'--aor'")
    if device_id is not None and not device_id.strip():
        raise click.BadParameter("must not be empty", param_hint="'--device'")
    url = _store_url(config_path, store_url)
    found = _run(url, lambda store: store.pushes(wanted, device_id=device_id, limit=limit))
    if as_json:
        echo_json([push_as_json(r, mask_device_id(r.device_id, show_tokens)) for r in found])
    elif found:
        _echo_table(found, show_tokens)
    else:
        click.echo("sipush: no pushes", err=True)


def _table_row(record: PushRecord, show_tokens: bool) -> list[str]:
    return [
        push_time(record.sent_at),
        record.aor,
        mask_device_id(record.device_id, show_tokens),
        record.kind,
        record.provider,
        record.outcome,
        push_answer(record),
        latency_text(record.latency_ms),
        str(record.attempts),
        reregistered_text(record),
    ]


def _echo_table(found: list[PushRecord], show_tokens: bool) -> None:
    rows = [list(TABLE_HEADER), *(_table_row(record, show_tokens) for record in found)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
