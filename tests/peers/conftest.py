"""Fixtures for the peer harness tests: a fresh Kamailio per test, with and without auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.kamailio import KamailioProcess, run_kamailio


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[KamailioProcess]:
    """Kamailio from examples/kamailio.cfg on a free UDP+TCP port, no authentication."""
    with run_kamailio(tmp_path / "kamailio") as pbx:
        yield pbx


@pytest.fixture
def kamailio_auth(tmp_path: Path) -> Iterator[KamailioProcess]:
    """The same with digest auth for REGISTER (every user's password: ``pbx.password``)."""
    with run_kamailio(tmp_path / "kamailio-auth", auth=True) as pbx:
        yield pbx
