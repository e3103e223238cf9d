"""The ``sipush`` command line, in-process (click's CliRunner) and as a real subprocess.

Every user error must end as exactly one ``sipush: error: ...`` line on stderr with exit
status 2 and no traceback; a started server must stop with status 0 on SIGTERM and SIGINT.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner

from sipush import __version__
from sipush.cli import cli


class Outcome(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


def run_in_process(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_subprocess(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "sipush", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


RUNNERS = [
    pytest.param(run_in_process, id="CliRunner"),
    pytest.param(run_subprocess, id="subprocess"),
]
Runner = Callable[[list[str], Path, pytest.MonkeyPatch], Outcome]


def assert_one_error_line(outcome: Outcome, *expected: str) -> str:
    """Exit 2, nothing on stdout, exactly one ``sipush: error:`` line containing ``expected``."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    line = lines[0]
    assert line.startswith("sipush: error: "), line
    for text in expected:
        assert text in line, line
    assert outcome.exit_code == 2, outcome
    assert outcome.stdout == ""
    return line


# (id, config file text, substrings the one error line must contain)
BAD_CONFIGS = [
    (
        "t1-not-number",
        '[sip]\nt1 = "abc"\n',
        'config.toml: [sip] t1 must be a positive number, got "abc"',
    ),
    ("t1-zero", "[sip]\nt1 = 0\n", "config.toml: [sip] t1 must be a positive number, got 0"),
    ("t1-bool", "[sip]\nt1 = true\n", "[sip] t1 must be a positive number, got true"),
    ("t1-above-t2", "[sip]\nt1 = 5.0\n", "[sip] t1 must not be greater than t2"),
    ("t4-negative", "[sip]\nt4 = -1\n", "[sip] t4 must be a positive number, got -1"),
    (
        "size-small",
        "[sip]\nmax_message_size = 10\n",
        "[sip] max_message_size must be an integer from 1024 to 16777216, got 10",
    ),
    ("size-float", "[sip]\nmax_message_size = 2048.5\n", "[sip] max_message_size"),
    (
        "incomplete-timeout",
        "[sip]\nincomplete_message_timeout = 0\n",
        "[sip] incomplete_message_timeout must be a positive number",
    ),
    (
        "listen-bad",
        '[server]\nlisten = ["sctp:1.2.3.4:5060"]\n',
        "config.toml: [server] listen: invalid listen address 'sctp:1.2.3.4:5060'",
    ),
    ("listen-empty", "[server]\nlisten = []\n", "[server] listen must list at least one address"),
    (
        "listen-string",
        '[server]\nlisten = "udp:127.0.0.1:5060"\n',
        "[server] listen must be a list of strings",
    ),
    (
        "listen-twice",
        '[server]\nlisten = ["udp:127.0.0.1:5060", "UDP:127.0.0.1:5060"]\n',
        "is listed twice",
    ),
    ("domains-int", "[server]\ndomains = [1]\n", "[server] domains must be a list of strings"),
    (
        "user-agent-newline",
        '[server]\nuser_agent = "a\\nb"\n',
        "[server] user_agent must not contain control characters",
    ),
    (
        "tls-without-cert",
        '[server]\nlisten = ["tls:127.0.0.1:5061"]\n',
        "config.toml: [tls] cert_file is required when listening on tls:",
    ),
    (
        "tls-cert-missing",
        '[tls]\ncert_file = "missing.pem"\n',
        "[tls] cert_file",
        "missing.pem",
        "does not exist",
    ),
    ("store-url", '[store]\nurl = "sipush.db"\n', "[store] url must be a URL"),
    (
        "log-level",
        '[log]\nlevel = "loud"\n',
        'config.toml: [log] level must be one of debug, info, warning, error, got "loud"',
    ),
    ("unknown-key", "[sip]\nt5 = 1\n", "config.toml: unknown key [sip] t5"),
    ("unknown-section", "[proxy]\nmode = 1\n", "config.toml: unknown section [proxy]"),
    ("unknown-top-key", "debug = true\n", "config.toml: unknown key debug"),
    ("section-not-table", "sip = 3\n", "config.toml: [sip] must be a table, got 3"),
    ("toml-syntax", "[sip]\nt1 = \n", "config.toml: invalid TOML:", "line 2"),
    ("toml-duplicate", "[sip]\nt1 = 1\n[sip]\n", "config.toml: invalid TOML:", "line 3"),
]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, *expected in BAD_CONFIGS],
)
def test_bad_config_is_one_line_exit_2(
    runner: Runner,
    text: str,
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "config.toml").write_text(text)
    outcome = runner(["serve", "--config", "config.toml"], tmp_path, monkeypatch)
    assert_one_error_line(outcome, *expected)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["serve", "--bogus"], ["No such option", "--bogus"], id="bad-flag"),
        pytest.param(["serve", "--confg", "x"], ["--confg", "--config"], id="flag-typo"),
        pytest.param(["bogus"], ["No such command", "bogus"], id="bad-command"),
        pytest.param(
            ["serve", "--listen", "udp:127.0.0.1"],
            ["--listen:", "missing :PORT"],
            id="listen-no-port",
        ),
        pytest.param(
            ["serve", "--listen", "quic:127.0.0.1:5060"],
            ["--listen:", "quic"],
            id="listen-bad-transport",
        ),
        pytest.param(
            ["serve", "--listen", "udp:127.0.0.1:70000"],
            ["--listen:", "port"],
            id="listen-bad-port",
        ),
        pytest.param(
            ["serve", "--listen"], ["--listen", "requires an argument"], id="listen-no-value"
        ),
        pytest.param(["serve", "--log-level", "loud"], ["--log-level", "loud"], id="bad-log-level"),
        pytest.param(
            ["serve", "--config", "nope.toml"],
            ["nope.toml: cannot read config file: No such file or directory"],
            id="missing-file",
        ),
        pytest.param(["serve", "--config", "."], ["cannot read config file"], id="directory"),
        pytest.param(
            ["serve", "--listen", "tls:127.0.0.1:5061"],
            ["[tls] cert_file is required when listening on tls:"],
            id="tls-listen-without-config",
        ),
    ],
)
def test_bad_command_line_is_one_line_exit_2(
    runner: Runner,
    args: list[str],
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert_one_error_line(runner(args, tmp_path, monkeypatch), *expected)


@pytest.mark.parametrize("runner", RUNNERS)
def test_config_not_utf8(runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_bytes(b'[server]\nuser_agent = "\xff"\n')
    outcome = runner(["serve", "--config", "config.toml"], tmp_path, monkeypatch)
    assert_one_error_line(outcome, "config.toml: not valid UTF-8")


@pytest.mark.parametrize("runner", RUNNERS)
def test_version(runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = runner(["--version"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0
    assert outcome.stdout.strip() == f"sipush, version {__version__}"


@pytest.mark.parametrize("runner", RUNNERS)
def test_help_lists_serve_options(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = runner(["serve", "--help"], tmp_path, monkeypatch)
    assert outcome.exit_code == 0
    for option in ("--config", "--listen", "--log-level"):
        assert option in outcome.stdout


# ---- needs sipush.server (the lead's) -------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_port_in_use_is_one_line_exit_2(
    runner: Runner,
    transport: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    free_port: Callable[[], int],
) -> None:
    port = free_port()
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as squatter:
        squatter.bind(("127.0.0.1", port))
        if transport == "tcp":
            squatter.listen()
        outcome = runner(
            ["serve", "--listen", f"{transport}:127.0.0.1:{port}"], tmp_path, monkeypatch
        )
    assert_one_error_line(outcome, str(port))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda sig: sig.name)
def test_serve_without_config_stops_cleanly_on_signal(
    sig: signal.Signals,
    start_sipush: Callable[..., AbstractContextManager[Any]],
    tmp_path: Path,
) -> None:
    assert list(tmp_path.iterdir()) == []  # no config file anywhere near
    with start_sipush() as server:
        listening = [line for line in server.stderr_lines if "listening on" in line]
        assert sorted(listening) == [
            f"sipush: listening on tcp:127.0.0.1:{server.port}",
            f"sipush: listening on udp:127.0.0.1:{server.port}",
        ]
        code = server.stop(sig)
        stderr = server.stderr_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
