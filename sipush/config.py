"""sipush configuration: one TOML file, loaded into frozen dataclasses.

Every key is optional; a missing file section means "all defaults". ``sipush serve`` without
``--config`` runs on the defaults below. Unknown sections or keys are errors, so a typo never
silently does nothing. Every bad value raises :class:`sipush.errors.ConfigError` with one line
naming the file, the key and what was expected, e.g.
``config.toml: [sip] t1 must be a positive number, got "abc"``.

Keys (default in brackets)::

    [server]
    listen      ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
                Sockets to listen on, each TRANSPORT:HOST:PORT with TRANSPORT udp, tcp or tls
                (IPv6 as tcp:[::1]:5060). ``--listen`` flags replace this list.
    domains     []
                Extra host names that sipush treats as itself, besides its listen addresses
                (lower-cased: RFC 3261 §19.1.4 compares hosts case-insensitively).
    user_agent  "sipush/<version>"
                Value of the User-Agent / Server header sipush puts in what it originates.
    flow_key_file  "sipush.key"
                The secret that signs the flow tokens in sipush's Path and Record-Route URIs
                (RFC 5626 §5.2). Created (mode 0600, 32 random bytes) when missing, so the tokens
                the PBX stored stay valid across restarts; relative to the working directory.
                "" keeps the key in memory only (every restart invalidates stored Paths).
    event_loop  "auto"
                "uvloop" (libuv's event loop: about a third less CPU per message here),
                "asyncio" (the standard library's), or "auto": uvloop when it is installed.

    [upstream]
    uri         ""
                The PBX that REGISTERs and calls from apps are relayed to, as a SIP URI:
                "sip:HOST:PORT;transport=udp|tcp|tls" (default port 5060, 5061 for tls).
                Empty: sipush relays nothing (requests get 480). ``--upstream`` overrides it.
    keep_x_push false
                Keep PortSIP's X-Push header on REGISTERs relayed to the PBX (a PortSIP PBX
                wants it); by default sipush reads it and removes it.

    [sip]
    t1          0.5     RFC 3261 §17.1.1.1 round-trip estimate, seconds (> 0, t1 <= t2)
    t2          4.0     RFC 3261 §17.1.2.2 maximum retransmit interval for non-INVITE, seconds
    t4          5.0     RFC 3261 §17.1.2.2 maximum time a message stays in the network, seconds
    max_message_size  65535
                Largest SIP message accepted, bytes (1024 .. 16 MiB); larger ones get 513
                (RFC 3261 §21.5.14) or, on a stream, close the connection.
    incomplete_message_timeout  32.0
                Seconds a TCP/TLS stream may sit on a partial message before the connection is
                closed (> 0).

    [tls]
    cert_file   ""      PEM certificate chain; required (and must exist) when a tls: listen is set
    key_file    ""      PEM private key; required (and must exist) when a tls: listen is set
    ca_file     ""      PEM CA bundle to verify peers with; "" means the system default
                Relative paths are resolved against the directory of the config file.

    [store]
    url         "sqlite+aiosqlite:///sipush.db"
                SQLAlchemy URL of the binding store; the default is a SQLite file in the working
                directory (relative SQLite paths are relative to it). PostgreSQL for clusters:
                "postgresql+asyncpg://user:password@host/db".
    sweep_interval  60.0
                Seconds between sweeps that delete expired bindings (> 0).
    cache_ttl   30.0
                Seconds sipush trusts the bindings it keeps in memory (those it wrote or read)
                before reading them again: how long a change made by another process (``sipush
                bindings delete``, another node) can go unseen by calls. 0 turns the cache off
                (every call reads the database).
    cache_size  50000
                At most this many AORs are kept in memory (least recently used go first).

    [log]
    level       "info"  one of debug, info, warning, error; ``--log-level`` overrides it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sipush import __version__
from sipush.errors import ConfigError, SipushError
from sipush.push.policy import WakePolicy
from sipush.transport.listen import ListenSpec, parse_listen

LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
MIN_MESSAGE_SIZE = 1024
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
DEFAULT_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where sipush listens and which names are its own."""

    listen: tuple[ListenSpec, ...] = tuple(parse_listen(text) for text in DEFAULT_LISTEN)
    domains: tuple[str, ...] = ()
    user_agent: str = f"sipush/{__version__}"
    flow_key_file: str = "sipush.key"
    event_loop: str = "auto"


@dataclass(frozen=True)
class UpstreamConfig:
    """``[upstream]``: the PBX behind sipush."""

    uri: str = ""
    keep_x_push: bool = False


@dataclass(frozen=True)
class SipConfig:
    """``[sip]``: RFC 3261 timer values (seconds) and message limits."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_message_size: int = 65535
    incomplete_message_timeout: float = 32.0


@dataclass(frozen=True)
class TlsConfig:
    """``[tls]``: certificate files; empty strings mean "not set"."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class StoreConfig:
    """``[store]``: the binding store's SQLAlchemy URL and how often expired bindings go."""

    url: str = "sqlite+aiosqlite:///sipush.db"
    sweep_interval: float = 60.0
    cache_ttl: float = 30.0
    cache_size: int = 50_000


@dataclass(frozen=True)
class PushConfig:
    """``[push]``: the hold policy and the push credentials of each app."""

    policy: WakePolicy = field(default_factory=WakePolicy)
    apns: tuple[Any, ...] = ()  # sipush.push.apns.ApnsAppConfig
    fcm: tuple[Any, ...] = ()  # sipush.push.fcm.FcmAppConfig


@dataclass(frozen=True)
class LogConfig:
    """``[log]``: log verbosity."""

    level: str = "info"


@dataclass(frozen=True)
class Config:
    """The whole configuration. ``source`` is the file it came from, ``None`` for defaults."""

    server: ServerConfig = field(default_factory=ServerConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    push: PushConfig = field(default_factory=PushConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: str | None = None


def load_config(
    path: str | None,
    *,
    listen: Sequence[str] = (),
    log_level: str | None = None,
    upstream: str | None = None,
) -> Config:
    """Read ``path`` (or use the defaults when ``None``) and apply command-line overrides.

    ``listen`` (the ``--listen`` flags), when non-empty, replaces ``[server] listen``;
    ``log_level`` replaces ``[log] level``. Raises :class:`ConfigError` on anything invalid.
    """
    data = _read_toml(path) if path is not None else {}
    where = f"{path}: " if path is not None else ""  # prefix of every error line
    check = _Checker(where, data)

    server = check.section("server")
    listen_specs = _parse_listen_list(
        server.get("listen", list(DEFAULT_LISTEN), check.string_list), f"{where}[server] listen"
    )
    if listen:  # --listen flags replace the file's list (which must still be valid)
        listen_specs = _parse_listen_list(list(listen), "--listen")
    domains = tuple(
        name.lower() for name in server.get("domains", [], check.string_list, non_empty=True)
    )
    user_agent = server.get("user_agent", f"sipush/{__version__}", check.header_text)
    flow_key_file = server.get("flow_key_file", "sipush.key", check.string)
    event_loop = server.get("event_loop", "auto", check.choice, choices=EVENT_LOOPS)
    server.done()

    up = check.section("upstream")
    upstream_uri = up.get("uri", "", check.upstream_uri)
    keep_x_push = up.get("keep_x_push", False, check.boolean)
    up.done()
    if upstream is not None:
        try:
            upstream_uri = _Checker.upstream_uri(upstream)
        except ValueError as err:
            raise ConfigError(f"--upstream {err}, got {_show(upstream)}") from None

    sip = check.section("sip")
    t1 = sip.get("t1", 0.5, check.positive_number)
    t2 = sip.get("t2", 4.0, check.positive_number)
    t4 = sip.get("t4", 5.0, check.positive_number)
    if t1 > t2:
        raise ConfigError(f"{where}[sip] t1 must not be greater than t2, got t1={t1} t2={t2}")
    max_size = sip.get("max_message_size", 65535, check.message_size)
    incomplete = sip.get("incomplete_message_timeout", 32.0, check.positive_number)
    sip.done()

    tls = check.section("tls")
    base = os.path.dirname(os.path.abspath(path)) if path is not None else os.getcwd()
    cert_file = _resolve(tls.get("cert_file", "", check.string), base)
    key_file = _resolve(tls.get("key_file", "", check.string), base)
    ca_file = _resolve(tls.get("ca_file", "", check.string), base)
    tls.done()
    if any(spec.transport == "tls" for spec in listen_specs):
        for key, file in (("cert_file", cert_file), ("key_file", key_file)):
            if not file:
                raise ConfigError(f"{where}[tls] {key} is required when listening on tls:")
    for key, file in (("cert_file", cert_file), ("key_file", key_file), ("ca_file", ca_file)):
        if file and not os.path.isfile(file):
            raise ConfigError(f"{where}[tls] {key} {file!r} does not exist or is not a file")

    store = check.section("store")
    url = store.get("url", "sqlite+aiosqlite:///sipush.db", check.url)
    sweep_interval = store.get("sweep_interval", 60.0, check.positive_number)
    cache_ttl = store.get("cache_ttl", 30.0, check.non_negative_number)
    cache_size = store.get("cache_size", 50_000, check.positive_integer)
    store.done()

    push = _load_push(check.section("push"), where, base)

    log = check.section("log")
    level = log.get("level", "info", check.log_level)
    log.done()
    if log_level is not None:
        level = log_level.lower()
        if level not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {_show(log_level)}"
            )

    check.done()
    return Config(
        server=ServerConfig(
            listen=listen_specs,
            domains=domains,
            user_agent=user_agent,
            flow_key_file=flow_key_file,
            event_loop=event_loop,
        ),
        upstream=UpstreamConfig(uri=upstream_uri, keep_x_push=keep_x_push),
        sip=SipConfig(
            t1=t1, t2=t2, t4=t4, max_message_size=max_size, incomplete_message_timeout=incomplete
        ),
        tls=TlsConfig(cert_file=cert_file, key_file=key_file, ca_file=ca_file),
        store=StoreConfig(
            url=url, sweep_interval=sweep_interval, cache_ttl=cache_ttl, cache_size=cache_size
        ),
        push=push,
        log=LogConfig(level=level),
        source=path,
    )


POLICIES = ("always", "on-failure")
# Keys of [[push.apns]] / [[push.fcm]] tables that name files (resolved against the config dir).
_FILE_KEYS = ("key_file", "cert_file", "ca_file", "service_account_file")


def _load_push(section: _Section, where: str, base: str) -> PushConfig:
    check = section.checker
    hold = section.get("hold_timeout", 30.0, check.positive_number)
    message_hold = section.get("message_hold_timeout", 20.0, check.positive_number)
    if message_hold >= 32:
        raise ConfigError(
            f"{where}[push] message_hold_timeout must be below 32 s (the sender's Timer F), "
            f"got {message_hold:g}"
        )
    ios = section.get("ios_policy", "always", check.choice, choices=POLICIES)
    android = section.get("android_policy", "on-failure", check.choice, choices=POLICIES)
    ring = section.get("ring_while_held", False, check.boolean)
    on_failure_timeout = section.get("on_failure_timeout", 2.0, check.positive_number)
    message_mode = section.get("message_mode", "hold", check.choice, choices=("hold", "accept"))
    accepted_ttl = section.get("accepted_message_ttl", 3600.0, check.positive_number)
    apns = section.get("apns", [], check.table_list)
    fcm = section.get("fcm", [], check.table_list)
    section.done()
    policy = WakePolicy(
        hold_timeout=hold,
        message_hold_timeout=message_hold,
        ios=ios,
        android=android,
        ring_while_held=ring,
        on_failure_timeout=on_failure_timeout,
        message_mode=message_mode,
        accepted_message_ttl=accepted_ttl,
    )
    apps_apns: tuple[Any, ...] = ()
    apps_fcm: tuple[Any, ...] = ()
    if apns:
        from sipush.push.apns import ApnsAppConfig

        apps_apns = tuple(
            _app(ApnsAppConfig, table, f"{where}[[push.apns]]", base) for table in apns
        )
    if fcm:
        from sipush.push.fcm import FcmAppConfig

        apps_fcm = tuple(_app(FcmAppConfig, table, f"{where}[[push.fcm]]", base) for table in fcm)
    return PushConfig(policy=policy, apns=apps_apns, fcm=apps_fcm)


def _app(kind: Any, table: dict[str, Any], where: str, base: str) -> Any:
    """One app's credentials: known keys only, right types, existing files; the app class's own
    checks (e.g. "key_file or cert_file") come back as ConfigError too."""
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{where} unknown key {key}")
        if not isinstance(value, (str, bool, int, float)) or isinstance(value, dict):
            raise ConfigError(f"{where} {key} must be a string or true/false, got {_show(value)}")
        if key in _FILE_KEYS and isinstance(value, str) and value:
            value = _resolve(value, base)
            if not os.path.isfile(value):
                raise ConfigError(f"{where} {key} {value!r} does not exist or is not a file")
        values[key] = value
    try:
        return kind(**values)
    except (TypeError, ValueError, SipushError) as err:
        raise ConfigError(f"{where} {err}") from None


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {err.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _parse_listen_list(texts: list[str], where: str) -> tuple[ListenSpec, ...]:
    if not texts:
        raise ConfigError(f"{where} must list at least one address")
    specs: list[ListenSpec] = []
    for text in texts:
        try:
            spec = parse_listen(text)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        if spec in specs:
            raise ConfigError(f"{where}: {str(spec)!r} is listed twice")
        specs.append(spec)
    return tuple(specs)


def _resolve(file: str, base: str) -> str:
    return os.path.join(base, file) if file and not os.path.isabs(file) else file


def _show(value: object) -> str:
    """Render a TOML value the way the user wrote it: strings in double quotes, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


class _Checker:
    """Validates values and tracks which keys were read, so leftovers are reported as unknown."""

    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self.where = where
        self.data = data
        self.seen: set[str] = set()

    def section(self, name: str) -> _Section:
        self.seen.add(name)
        table = self.data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self.where}[{name}] must be a table, got {_show(table)}")
        return _Section(self, name, table)

    def done(self) -> None:
        for key, value in self.data.items():
            if key not in self.seen:
                kind = "section" if isinstance(value, dict) else "key"
                label = f"[{key}]" if kind == "section" else key
                raise ConfigError(f"{self.where}unknown {kind} {label}")

    # Value checks: each returns the value (converted) or an "expected" phrase via ValueError.

    @staticmethod
    def positive_number(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a positive number")
        if not math.isfinite(value) or value <= 0:
            raise ValueError("must be a positive number")
        return float(value)

    @staticmethod
    def non_negative_number(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number >= 0")
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a number >= 0")
        return float(value)

    @staticmethod
    def positive_integer(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be an integer >= 1")
        return value

    @staticmethod
    def message_size(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer from {MIN_MESSAGE_SIZE} to {MAX_MESSAGE_SIZE}")
        if not MIN_MESSAGE_SIZE <= value <= MAX_MESSAGE_SIZE:
            raise ValueError(f"must be an integer from {MIN_MESSAGE_SIZE} to {MAX_MESSAGE_SIZE}")
        return value

    @staticmethod
    def string(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value

    @staticmethod
    def header_text(value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ValueError("must not contain control characters (it goes into a header)")
        return value

    @staticmethod
    def string_list(value: object, non_empty: bool = False) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of strings")
        if non_empty and not all(item.strip() for item in value):
            raise ValueError("must be a list of non-empty strings")
        return value

    @staticmethod
    def url(value: object) -> str:
        if not isinstance(value, str) or "://" not in value or value.startswith("://"):
            raise ValueError("must be a URL like sqlite+aiosqlite:///sipush.db")
        return value

    @staticmethod
    def boolean(value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    @staticmethod
    def upstream_uri(value: object) -> str:
        expected = "must be a SIP URI like sip:192.0.2.10:5060;transport=udp (or empty)"
        if not isinstance(value, str):
            raise ValueError(expected)
        if not value:
            return value
        from sipush.errors import ParseError
        from sipush.sip import SipUri, parse_uri

        try:
            uri = parse_uri(value)
        except ParseError:
            raise ValueError(expected) from None
        transport = (uri.param("transport") or "udp").lower() if isinstance(uri, SipUri) else ""
        if not isinstance(uri, SipUri) or transport not in ("udp", "tcp", "tls") or uri.headers:
            raise ValueError(expected)
        return value

    @staticmethod
    def choice(value: object, choices: Sequence[str] = ()) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    @staticmethod
    def table_list(value: object) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ValueError("must be an array of tables ([[push.apns]] / [[push.fcm]])")
        return value

    @staticmethod
    def log_level(value: object) -> str:
        if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()


class _Section:
    """One ``[section]`` table being read."""

    def __init__(self, checker: _Checker, name: str, table: Mapping[str, Any]) -> None:
        self.checker = checker
        self.name = name
        self.table = table
        self.seen: set[str] = set()

    def get(self, key: str, default: Any, check: Callable[..., Any], **options: Any) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        try:
            return check(value, **options)
        except ValueError as err:
            raise ConfigError(
                f"{self.checker.where}[{self.name}] {key} {err}, got {_show(value)}"
            ) from None

    def done(self) -> None:
        for key in self.table:
            if key not in self.seen:
                raise ConfigError(f"{self.checker.where}unknown key [{self.name}] {key}")
