"""``sipush.config.load_config``: defaults, every key, overrides, path resolution.

The one-line error texts are checked end to end in ``tests/test_cli.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from sipush import __version__
from sipush.config import Config, load_config
from sipush.errors import ConfigError
from sipush.server import event_loop_factory
from sipush.transport.listen import ListenSpec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sipush.toml"


def test_defaults_without_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.server.listen == (
        ListenSpec("udp", "127.0.0.1", 5060),
        ListenSpec("tcp", "127.0.0.1", 5060),
    )
    assert config.server.domains == ()
    assert config.server.user_agent == f"sipush/{__version__}"
    assert (config.sip.t1, config.sip.t2, config.sip.t4) == (0.5, 4.0, 5.0)
    assert config.sip.max_message_size == 65535
    assert config.sip.incomplete_message_timeout == 32.0
    assert (config.tls.cert_file, config.tls.key_file, config.tls.ca_file) == ("", "", "")
    assert config.store.url == "sqlite+aiosqlite:///sipush.db"
    assert config.log.level == "info"
    assert config.source is None


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert dataclasses.replace(load_config(str(path)), source=None) == Config()


def test_example_file_matches_defaults() -> None:
    """examples/sipush.toml shows every key with its default: loading it changes nothing."""
    config = load_config(str(EXAMPLE))
    assert dataclasses.replace(config, source=None) == Config()


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    path = tmp_path / "sipush.toml"
    path.write_text(
        """
        [server]
        listen = ["udp:0.0.0.0:5070", "tls:[::1]:5071"]
        domains = ["Example.COM", "sip.example.com"]
        user_agent = "edge/1"
        [sip]
        t1 = 1
        t2 = 8
        t4 = 2.5
        max_message_size = 1024
        incomplete_message_timeout = 5
        [tls]
        cert_file = "cert.pem"
        key_file = "key.pem"
        ca_file = ""
        [store]
        url = "postgresql+asyncpg://db/sipush"
        [log]
        level = "WARNING"
        """
    )
    config = load_config(str(path))
    assert config.server.listen == (
        ListenSpec("udp", "0.0.0.0", 5070),
        ListenSpec("tls", "::1", 5071),
    )
    assert config.server.domains == ("example.com", "sip.example.com")
    assert config.server.user_agent == "edge/1"
    assert (config.sip.t1, config.sip.t2, config.sip.t4) == (1.0, 8.0, 2.5)
    assert isinstance(config.sip.t1, float)
    assert config.sip.max_message_size == 1024
    assert config.sip.incomplete_message_timeout == 5.0
    # relative paths resolve against the config file's directory, not the working directory
    assert config.tls.cert_file == str(tmp_path / "cert.pem")
    assert config.tls.key_file == str(tmp_path / "key.pem")
    assert config.tls.ca_file == ""
    assert config.store.url == "postgresql+asyncpg://db/sipush"
    assert config.log.level == "warning"
    assert config.source == str(path)


def test_flags_override_file(tmp_path: Path) -> None:
    path = tmp_path / "sipush.toml"
    path.write_text('[server]\nlisten = ["udp:127.0.0.1:5080"]\n[log]\nlevel = "error"\n')
    config = load_config(
        str(path), listen=["tcp:127.0.0.1:6000", "udp:127.0.0.1:6000"], log_level="DEBUG"
    )
    assert config.server.listen == (
        ListenSpec("tcp", "127.0.0.1", 6000),
        ListenSpec("udp", "127.0.0.1", 6000),
    )
    assert config.log.level == "debug"


def test_config_is_frozen() -> None:
    config = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sip.t1 = 2.0  # type: ignore[misc]


def test_t1_equal_t2_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[sip]\nt1 = 4\nt2 = 4\n")
    assert load_config(str(path)).sip.t1 == 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"listen": ["udp:127.0.0.1"]}, "--listen: invalid listen address"),
        ({"log_level": "loud"}, "--log-level must be one of debug, info, warning, error, got"),
    ],
)
def test_bad_overrides(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_store_cache_and_event_loop_keys(tmp_path: Path) -> None:
    path = tmp_path / "sipush.toml"
    path.write_text('[server]\nevent_loop = "asyncio"\n[store]\ncache_ttl = 5\ncache_size = 1\n')
    config = load_config(str(path))
    assert config.server.event_loop == "asyncio"
    assert config.store.cache_ttl == 5.0 and isinstance(config.store.cache_ttl, float)
    assert config.store.cache_size == 1
    defaults = load_config(None)
    assert (defaults.store.cache_ttl, defaults.store.cache_size) == (30.0, 50_000)
    assert defaults.server.event_loop == "auto"


@pytest.mark.parametrize("ttl", ["0", "0.0", "0.25", "3600"])
def test_cache_ttl_zero_or_more(tmp_path: Path, ttl: str) -> None:
    path = tmp_path / "sipush.toml"
    path.write_text(f"[store]\ncache_ttl = {ttl}\n")
    assert load_config(str(path)).store.cache_ttl == float(ttl)


@pytest.mark.parametrize("choice", ["auto", "uvloop", "asyncio"])
def test_event_loop_choices(tmp_path: Path, choice: str) -> None:
    path = tmp_path / "sipush.toml"
    path.write_text(f'[server]\nevent_loop = "{choice}"\n')
    assert load_config(str(path)).server.event_loop == choice


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store]\ncache_ttl = -1\n", "[store] cache_ttl must be a number >= 0, got -1"),
        ("[store]\ncache_ttl = -0.5\n", "[store] cache_ttl must be a number >= 0, got -0.5"),
        ('[store]\ncache_ttl = "30"\n', '[store] cache_ttl must be a number >= 0, got "30"'),
        ("[store]\ncache_ttl = true\n", "[store] cache_ttl must be a number >= 0, got true"),
        ("[store]\ncache_ttl = inf\n", "[store] cache_ttl must be a number >= 0, got inf"),
        ("[store]\ncache_ttl = nan\n", "[store] cache_ttl must be a number >= 0, got nan"),
        ("[store]\ncache_size = 0\n", "[store] cache_size must be an integer >= 1, got 0"),
        ("[store]\ncache_size = -3\n", "[store] cache_size must be an integer >= 1, got -3"),
        ("[store]\ncache_size = 1.5\n", "[store] cache_size must be an integer >= 1, got 1.5"),
        ("[store]\ncache_size = true\n", "[store] cache_size must be an integer >= 1, got true"),
        ('[store]\ncache_size = "10"\n', '[store] cache_size must be an integer >= 1, got "10"'),
        (
            '[server]\nevent_loop = "trio"\n',
            '[server] event_loop must be one of auto, uvloop, asyncio, got "trio"',
        ),
        ("[server]\nevent_loop = 1\n", "[server] event_loop must be one of auto, uvloop, asyncio"),
        ('[server]\nevent_loop = ""\n', "[server] event_loop must be one of auto, uvloop, asyncio"),
        ("[store]\ncache = 30\n", "unknown key [store] cache"),
    ],
)
def test_bad_cache_and_event_loop_values(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_example_file_sets_the_new_keys_explicitly() -> None:
    """examples/sipush.toml shows every key: the cache and event loop keys too, uncommented."""
    text = EXAMPLE.read_text()
    for line in ("event_loop = ", "cache_ttl = ", "cache_size = "):
        assert any(row.startswith(line) for row in text.splitlines()), line


def test_event_loop_factory() -> None:
    import uvloop

    assert event_loop_factory("asyncio") is None
    assert event_loop_factory("auto") is uvloop.new_event_loop
    assert event_loop_factory("uvloop") is uvloop.new_event_loop


def test_event_loop_factory_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: import fails
    assert event_loop_factory("auto") is None
    assert event_loop_factory("asyncio") is None
    with pytest.raises(ConfigError, match=r'event_loop = "uvloop" but uvloop is not installed'):
        event_loop_factory("uvloop")
