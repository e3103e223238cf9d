"""SIPp (a real, independent SIP implementation) sends OPTIONS to ``sipush serve`` and expects 200.

SIPp exits 0 only when every call of the scenario succeeded; the run is bounded by ``-m``
(calls), ``-timeout`` (whole run) with ``-timeout_error`` (a timeout is a failure).
SIPp comes from Debian's ``sip-tester`` package: ``bash scripts/test.sh`` installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).resolve().parent / "sipp" / "options_uac.xml"
CALLS = 20


def sipp_binary() -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail("sipp is not installed: run `bash scripts/test.sh` (installs sip-tester)")
    return sipp


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_sipp_options_gets_200(
    transport: str, sipush_server: Any, free_port: Callable[[], int], tmp_path: Path
) -> None:
    work = tmp_path / "sipp"
    work.mkdir()
    command = [
        sipp_binary(),
        f"{sipush_server.host}:{sipush_server.port}",
        "-sf",
        str(SCENARIO),
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-s",
        "sipush",
        "-m",
        str(CALLS),
        "-l",
        "5",
        "-r",
        "50",
        "-timeout",
        "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]
    done = subprocess.run(
        command, cwd=work, capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL
    )
    errors = "\n".join(path.read_text(errors="replace") for path in work.glob("*_errors.log"))
    assert done.returncode == 0, (
        f"sipp exited {done.returncode}\n--- sipp stderr:\n{done.stderr[-3000:]}"
        f"\n--- sipp stdout (tail):\n{done.stdout[-3000:]}\n--- sipp errors log:\n{errors[-3000:]}"
        f"\n--- sipush stderr:\n{sipush_server.stderr_text()}"
    )
