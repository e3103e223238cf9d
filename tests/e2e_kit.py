"""Shared pieces of the end-to-end tests: Kamailio as the PBX, sipush in front of it, and the
bindings as ``sipush bindings list --json`` shows them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import SipushProcess, free_port, run_sipush
from tests.peers.kamailio import KamailioProcess, run_kamailio


@dataclass
class Deployment:
    """A Kamailio "PBX" and a ``sipush serve`` relaying to it."""

    pbx: KamailioProcess
    sipush: SipushProcess
    port: int
    workdir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def proxy_uri(self, transport: str = "udp") -> str:
        return f"sip:127.0.0.1:{self.port};transport={transport};lr"

    @property
    def store_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.workdir / 'sipush.db'}"

    def bindings(self, aor: str | None = None) -> list[dict[str, Any]]:
        """``sipush bindings list --json --show-tokens`` run as an operator would."""
        args = ["bindings", "list", "--json", "--show-tokens", "--store", self.store_url]
        if aor is not None:
            args += ["--aor", aor]
        result = subprocess.run(
            [sys.executable, "-m", "sipush", *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        data: list[dict[str, Any]] = json.loads(result.stdout)
        return data


@contextlib.contextmanager
def deployment(
    workdir: Path, *, upstream_transport: str = "udp", auth: bool = False
) -> Iterator[Deployment]:
    workdir.mkdir(parents=True, exist_ok=True)
    with run_kamailio(workdir / "pbx", auth=auth) as pbx:
        port = free_port()
        with run_sipush(workdir, port, "--upstream", pbx.upstream(upstream_transport)) as proc:
            yield Deployment(pbx, proc, port, workdir)
