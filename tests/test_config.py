"""``sipush.config.load_config``: defaults, every key, overrides, path resolution.

The one-line error texts are checked end to end in ``tests/test_cli.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sipush import __version__
from sipush.config import Config, load_config
from sipush.errors import ConfigError
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
