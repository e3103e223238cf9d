"""``sipush bindings ...``: see and edit the binding store, for people and for scripts.

Every device bound through sipush, with what a support engineer asks about first: AOR, device,
platform, push provider, app id, (masked) push token, contact, transport, whether call and
message pushes are allowed, expiry (relative and absolute), first and last registration.
``--json`` gives the same for scripts, with full ISO-8601 UTC times. ``show`` adds each device's
most recent pushes (what ``sipush pushes list`` shows: type, provider, outcome, latency, and
how soon the app re-registered).

The commands work while ``sipush serve`` runs on the same store: SQLite is in WAL mode, so
reading never waits for the server, and a delete waits (up to the busy timeout) for the
server's write to finish. They never create a store: pointing one at the wrong directory or
database is an error, not an empty listing.

Push tokens (``pn-prid``, the iOS alert token, the X-Push ``device-uid`` parts) are masked,
first 6 and last 4 characters (``3f1a9c…2468``), wherever they appear (device id, contact
parameters, ...), unless ``--show-tokens``.

The presentation of push records lives here too (:func:`push_as_json`, :func:`push_summary`,
...), shared with ``sipush pushes`` (:mod:`sipush.cli_pushes`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sipush.config import load_config
from sipush.errors import ParseError
from sipush.push.mask import mask_token

if TYPE_CHECKING:
    from sipush.store import Binding, BindingStore, PushRecord

EXIT_NOT_FOUND = 1
MISSING = "-"
SHOW_PUSHES = 5  # recent pushes per device in `bindings show`

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

STORE_SOURCE_HELP = """
\b
The store is --store URL, else [store] url of --config FILE, else
sqlite+aiosqlite:///sipush.db (sipush.db in the working directory). Relative
SQLite paths are relative to the working directory, as for sipush serve.
"""
STORE_HELP = (
    STORE_SOURCE_HELP
    + """\b
Exit status: 0 done; 1 nothing matched (show, delete); 2 bad arguments, or
the store is missing or unreachable (one line: sipush: error: ...).
"""
)


def _store_options(function: _F) -> _F:
    function = click.option(
        "--store",
        "store_url",
        metavar="URL",
        help="Store URL, e.g. sqlite+aiosqlite:///sipush.db (overrides the config).",
    )(function)
    function = click.option(
        "--config", "config_path", metavar="FILE", help="TOML config file to take [store] url from."
    )(function)
    return function


def _token_options(function: _F) -> _F:
    function = click.option(
        "--show-tokens", is_flag=True, help="Show push tokens in full (masked by default)."
    )(function)
    function = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bindings() -> None:
    """See and edit the devices bound through sipush (the binding store)."""


@bindings.command("list", epilog=STORE_HELP)
@click.option("--aor", metavar="AOR", help="Only this AOR, e.g. sip:alice@example.com.")
@click.option("--include-expired", is_flag=True, help="Also bindings past their expiry.")
@_token_options
@_store_options
def list_bindings(
    aor: str | None,
    include_expired: bool,
    as_json: bool,
    show_tokens: bool,
    config_path: str | None,
    store_url: str | None,
) -> None:
    """List live bindings (all AORs, or one), sorted by AOR and device."""
    wanted = None if aor is None else _normalise_aor(aor, "'--aor'")
    url = _store_url(config_path, store_url)
    found = _run(url, lambda store: store.list(wanted, include_expired=include_expired))
    now = datetime.now(UTC)
    if as_json:
        _echo_json(found, now, show_tokens)
    elif found:
        _echo_table(found, now, show_tokens)
    else:
        click.echo("sipush: no bindings", err=True)


@bindings.command("show", epilog=STORE_HELP)
@click.argument("aor")
@click.option(
    "--pushes",
    "push_count",
    type=click.IntRange(min=0),
    default=SHOW_PUSHES,
    show_default=True,
    metavar="N",
    help="Recent pushes to show per device (0: none).",
)
@_token_options
@_store_options
def show_bindings(
    aor: str,
    push_count: int,
    as_json: bool,
    show_tokens: bool,
    config_path: str | None,
    store_url: str | None,
) -> None:
    """Show every binding of AOR in detail, expired ones included, with each device's most
    recent pushes (newest first; --json: under "pushes").

    Exits 1 when AOR has none (with --json, after printing []).
    """
    wanted = _normalise_aor(aor, "'AOR'")
    url = _store_url(config_path, store_url)

    async def fetch(store: BindingStore) -> tuple[list[Binding], dict[str, list[PushRecord]]]:
        found = await store.get(wanted)
        recent = {}
        for binding in found if push_count else []:
            recent[binding.device_id] = await store.pushes(
                wanted, device_id=binding.device_id, limit=push_count
            )
        return found, recent

    found, recent = _run(url, fetch)
    now = datetime.now(UTC)
    if as_json:
        _echo_json(found, now, show_tokens, recent)
    else:
        for number, binding in enumerate(found):
            if number:
                click.echo()
            pushes = recent.get(binding.device_id, []) if push_count else None
            _echo_details(binding, now, show_tokens, pushes)
    if not found:
        click.echo(f"sipush: no bindings of {wanted}", err=True)
        raise click.exceptions.Exit(EXIT_NOT_FOUND)


@bindings.command("delete", epilog=STORE_HELP)
@click.argument("aor")
@click.option(
    "--device",
    "device_id",
    metavar="ID",
    help="Only this device: its id as 'show --show-tokens' prints it.",
)
@_store_options
def delete_bindings(
    aor: str, device_id: str | None, config_path: str | None, store_url: str | None
) -> None:
    """Delete the bindings of AOR (every device, or one with --device).

    The app stays reachable through the PBX until its registration there expires; sipush
    can no longer route to it nor wake it with a push. Exits 1 when nothing matched.
    """
    wanted = _normalise_aor(aor, "'AOR'")
    if device_id is not None and not device_id.strip():
        raise click.BadParameter("must not be empty", param_hint="'--device'")
    url = _store_url(config_path, store_url)
    count = _run(url, lambda store: store.delete(wanted, device_id))
    which = f"device {device_id} of {wanted}" if device_id else wanted
    if not count:
        click.echo(f"sipush: nothing deleted: no binding of {which}", err=True)
        raise click.exceptions.Exit(EXIT_NOT_FOUND)
    click.echo(f"deleted {_plural(count, 'binding')} of {which}")


@bindings.command("purge", epilog=STORE_HELP)
@click.option("--expired", is_flag=True, help="Delete every binding past its expiry (required).")
@_store_options
def purge_bindings(expired: bool, config_path: str | None, store_url: str | None) -> None:
    """Delete every expired binding (needs --expired); none is not an error."""
    if not expired:
        raise click.UsageError("purge needs --expired (the only kind of purge so far)")
    url = _store_url(config_path, store_url)
    now = datetime.now(UTC)
    count = _run(url, lambda store: store.purge_expired(now))
    click.echo(f"purged {_plural(count, 'expired binding')}")


# -- plumbing ----------------------------------------------------------------------------------


def _store_url(config_path: str | None, store_url: str | None) -> str:
    if store_url is not None:
        if not store_url.strip():
            raise click.BadParameter("must not be empty", param_hint="'--store'")
        return store_url
    return load_config(config_path).store.url


def _normalise_aor(text: str, hint: str) -> str:
    """``alice@example.com`` or ``sip:Alice@EXAMPLE.com:5060`` -> ``sip:Alice@example.com``,
    the form the proxy stores (``SipUri.aor``)."""
    from sipush.sip.uri import SipUri, parse_uri

    candidate = text.strip()
    if ":" not in candidate.split("@", 1)[0]:
        candidate = "sip:" + candidate
    try:
        uri = parse_uri(candidate)
    except ParseError as err:
        raise click.BadParameter(f"{text!r} is not a SIP AOR: {err}", param_hint=hint) from None
    if not isinstance(uri, SipUri):
        raise click.BadParameter(f"{text!r} is not a sip: or sips: AOR", param_hint=hint)
    return uri.aor


def _run(url: str, action: Callable[[BindingStore], Coroutine[Any, Any, _T]]) -> _T:
    """Open the store (never creating it), run ``action``, close; StoreError goes up."""
    from sipush.store import BindingStore  # lazy: `sipush serve` and --help need no SQLAlchemy

    async def session() -> _T:
        store = await BindingStore.open(url, create=False)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(session())


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- presentation ------------------------------------------------------------------------------


class _Redactor:
    """Replaces every push token of one binding, wherever it appears, by its masked form."""

    def __init__(self, binding: Binding, show_tokens: bool) -> None:
        secrets: set[str] = set()
        push = binding.push
        if push is not None and not show_tokens:
            secrets.update(token for token in (push.prid, push.alert_token) if token)
            if push.device_uid:
                secrets.update(part for part in push.device_uid.split("|") if part)
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, mask_token(secret))
        return text


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _duration(delta: timedelta) -> str:
    """``2d03h``, ``1h05m``, ``4m09s``, ``12s``: the two largest units."""
    seconds = int(abs(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def _expiry(binding: Binding, now: datetime) -> str:
    left = binding.expires_at - now
    relative = f"expired {_duration(left)} ago" if left <= timedelta(0) else f"in {_duration(left)}"
    return f"{_utc_text(binding.expires_at)} ({relative})"


def _flag(value: bool | None) -> str:
    return MISSING if value is None else ("yes" if value else "no")


def _table_row(binding: Binding, now: datetime, show_tokens: bool) -> list[str]:
    redact = _Redactor(binding, show_tokens)
    push = binding.push
    return [
        binding.aor,
        redact(binding.device_id) or MISSING,
        (push.platform if push else None) or MISSING,
        push.provider if push else MISSING,
        (push.app_id if push else None) or MISSING,
        (redact(push.prid) if push else None) or MISSING,
        redact(binding.contact) or MISSING,
        binding.transport,
        _flag(push.allow_call_push if push else None),
        _flag(push.allow_message_push if push else None),
        _expiry(binding, now),
        _utc_text(binding.created_at),
        _utc_text(binding.registered_at),
    ]


TABLE_HEADER = (
    "AOR",
    "DEVICE",
    "PLATFORM",
    "PROVIDER",
    "APP ID",
    "TOKEN",
    "CONTACT",
    "TRANSPORT",
    "CALL PUSH",
    "MSG PUSH",
    "EXPIRES",
    "CREATED",
    "LAST REGISTERED",
)


def _echo_table(found: Sequence[Binding], now: datetime, show_tokens: bool) -> None:
    rows = [list(TABLE_HEADER), *(_table_row(b, now, show_tokens) for b in found)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _echo_details(
    binding: Binding,
    now: datetime,
    show_tokens: bool,
    recent: Sequence[PushRecord] | None = None,
) -> None:
    """``binding`` in detail; with ``recent`` (``None``: not asked for), its latest pushes."""
    redact = _Redactor(binding, show_tokens)
    lines: list[tuple[str, str | None]] = [
        ("device", redact(binding.device_id)),
        ("contact", redact(binding.contact)),
        ("flow", f"{binding.transport} {binding.flow_local} <- {binding.flow_remote}"),
        ("expires", _expiry(binding, now)),
        ("last registered", f"{_utc_text(binding.registered_at)} (CSeq {binding.cseq})"),
        ("created", _utc_text(binding.created_at)),
        ("call-id", binding.call_id),
        ("user agent", binding.user_agent),
    ]
    push = binding.push
    if push is None:
        lines.append(("push", "none (the app sent no push parameters)"))
    else:
        lines += [
            ("push", f"{push.provider} ({push.source})"),
            ("platform", push.platform),
            ("app id", push.app_id),
            ("token", redact(push.prid)),
            ("alert token", redact(push.alert_token)),
            ("pn-param", push.param),
            ("device-uid", redact(push.device_uid)),
            ("call push", _flag(push.allow_call_push)),
            ("message push", _flag(push.allow_message_push)),
        ]
    if recent:
        lines.append(("recent pushes", push_summary(recent[0])))
        lines += [("", push_summary(record)) for record in recent[1:]]
    elif recent is not None and push is not None:
        lines.append(("recent pushes", "none"))
    click.echo(binding.aor)
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"  {label.ljust(width)}  {MISSING if value is None else value}")


def _as_json(binding: Binding, now: datetime, show_tokens: bool) -> dict[str, Any]:
    redact = _Redactor(binding, show_tokens)
    push = binding.push
    return {
        "aor": binding.aor,
        "device_id": redact(binding.device_id),
        "contact": redact(binding.contact),
        "expires_at": _iso(binding.expires_at),
        "expired": binding.is_expired(now),
        "registered_at": _iso(binding.registered_at),
        "created_at": _iso(binding.created_at),
        "transport": binding.transport,
        "flow_local": binding.flow_local,
        "flow_remote": binding.flow_remote,
        "call_id": binding.call_id,
        "cseq": binding.cseq,
        "user_agent": binding.user_agent,
        "push": None
        if push is None
        else {
            "provider": push.provider,
            "prid": redact(push.prid),
            "param": push.param,
            "app_id": push.app_id,
            "platform": push.platform,
            "device_uid": redact(push.device_uid),
            "alert_token": redact(push.alert_token),
            "allow_call_push": push.allow_call_push,
            "allow_message_push": push.allow_message_push,
            "source": push.source,
        },
    }


def _echo_json(
    found: Iterable[Binding],
    now: datetime,
    show_tokens: bool,
    recent: Mapping[str, Sequence[PushRecord]] | None = None,
) -> None:
    """The bindings as a JSON array; with ``recent`` (show), each gets its ``"pushes"``."""
    payload = []
    for binding in found:
        item = _as_json(binding, now, show_tokens)
        if recent is not None:
            redact = _Redactor(binding, show_tokens)
            item["pushes"] = [
                push_as_json(record, redact(record.device_id) or record.device_id)
                for record in recent.get(binding.device_id, [])
            ]
        payload.append(item)
    echo_json(payload)


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


# -- push records (also sipush pushes) ---------------------------------------------------------

_NOT_TOKENS = ("urn:", "sip:", "sips:")  # device ids that are an instance id or a Contact URI


def mask_device_id(device_id: str, show_tokens: bool) -> str:
    """A push record's device id as people may see it.

    A device id is the app's ``+sip.instance`` (``urn:uuid:...``), else the X-Push
    ``device-uid``, else the push token itself, else the Contact URI (no push info: no token).
    So one that is not a ``urn:`` or ``sip:`` URI is masked like a token (each ``|`` part),
    unless ``show_tokens``.
    """
    if show_tokens or device_id.lstrip("<").lower().startswith(_NOT_TOKENS):
        return device_id
    return "|".join(mask_token(part) if part else part for part in device_id.split("|"))


def push_time(moment: datetime) -> str:
    """``2026-11-22 10:00:00.123Z``: pushes are told apart by the millisecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def push_answer(record: PushRecord) -> str:
    """The push service's status and reason: ``410 Unregistered``, ``200``, ``timeout``, ``-``."""
    parts = [str(record.status) if record.status is not None else "", record.reason or ""]
    return " ".join(part for part in parts if part) or MISSING


def latency_text(milliseconds: float) -> str:
    """``0.8 ms``, ``83 ms``, ``1.25 s``."""
    if milliseconds < 10:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


def reregistered_text(record: PushRecord) -> str:
    """``after 1.4 s`` / ``after 2m05s``; ``-`` while the app has not re-registered."""
    after = record.reregistered_after
    if after is None:
        return MISSING
    if abs(after) < 60:
        return f"after {after:.1f} s"
    return f"after {_duration(timedelta(seconds=after))}"


def push_summary(record: PushRecord) -> str:
    """One line for ``bindings show``: ``2026-11-22 10:00:00.123Z incomingCall via apns:
    delivered (200), 83 ms, re-registered after 1.4 s``."""
    answer = push_answer(record)
    parts = [f"{record.outcome}{'' if answer == MISSING else f' ({answer})'}"]
    parts.append(latency_text(record.latency_ms))
    if record.attempts > 1:
        parts.append(f"{record.attempts} tries")
    if record.reregistered_at is not None:
        parts.append(f"re-registered {reregistered_text(record)}")
    head = f"{push_time(record.sent_at)} {record.kind} via {record.provider}"
    return f"{head}: {', '.join(parts)}"


def push_as_json(record: PushRecord, device_id: str) -> dict[str, Any]:
    """A push record for scripts (``device_id`` as it may be shown)."""
    return {
        "id": record.id,
        "sent_at": _iso(record.sent_at),
        "aor": record.aor,
        "device_id": device_id,
        "type": record.kind,
        "provider": record.provider,
        "outcome": record.outcome,
        "status": record.status,
        "reason": record.reason,
        "call_id": record.call_id,
        "latency_ms": record.latency_ms,
        "attempts": record.attempts,
        "reregistered_at": None if record.reregistered_at is None else _iso(record.reregistered_at),
        "reregistered_after_s": record.reregistered_after,
    }
