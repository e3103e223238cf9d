"""The SIP core (``sipush/sip/``) stays sans-I/O: an AST walk of its imports.

It may import the standard library (minus I/O, event-loop and network modules), itself
(``sipush.sip.*``) and ``sipush.errors``; nothing from the transports, proxy, store or push
layers, no event loop, socket, SQL or HTTP library (ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "sipush"
SIP_CORE = PACKAGE_ROOT / "sip"

FORBIDDEN = (
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "http",
    "urllib.request",
    "httpx",
    "aiohttp",
    "h2",
    "hypercorn",
    "aioapns",
    "firebase_admin",
    "pywebpush",
    "requests",
)
ALLOWED_OWN = ("sipush.sip", "sipush.errors")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    """Dotted name of ``path`` inside the package rooted at ``root`` (``sipush/sip/uri.py``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module name ``source`` imports (relative imports resolved), with line numbers.

    ``from x import y`` yields both ``x`` and ``x.y`` (``y`` may be a submodule).
    """
    names: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.append((node.lineno, base))
            names.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return names


def violations(path: Path, root: Path = PACKAGE_ROOT) -> list[str]:
    """``file:line: imports X`` for every import the SIP core must not make."""
    module = module_name(path, root)
    found: list[str] = []
    for line, name in imported_names(path.read_text(), module, path.name == "__init__.py"):
        if any(_within(name, bad) for bad in FORBIDDEN):
            found.append(f"{path}:{line}: imports {name} (I/O or network library)")
        elif _within(name, "sipush") and not any(_within(name, ok) for ok in ALLOWED_OWN):
            # "from sipush import errors" yields "sipush" then "sipush.errors": judge the latter
            if name == "sipush":
                continue
            found.append(
                f"{path}:{line}: imports {name} (outer layer; allowed: sipush.sip.*, sipush.errors)"
            )
    return found


def sip_core_modules() -> list[Path]:
    return sorted(SIP_CORE.rglob("*.py"))


def test_sip_core_exists() -> None:
    """Guard against a vacuous pass: the walk below must have files to look at."""
    assert (SIP_CORE / "__init__.py").is_file(), f"{SIP_CORE}/__init__.py is missing"


def test_sip_core_imports_no_io() -> None:
    problems = [problem for path in sip_core_modules() for problem in violations(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import asyncio\n", ["imports asyncio"]),
        ("import os, socket as s\n", ["imports socket"]),
        ("from ssl import SSLContext\n", ["imports ssl"]),
        ("from http.client import HTTPConnection\n", ["imports http.client"]),
        ("import urllib.request\n", ["imports urllib.request"]),
        ("from urllib import request\n", ["imports urllib.request"]),
        ("import sqlalchemy.ext.asyncio\n", ["imports sqlalchemy.ext.asyncio"]),
        ("def f() -> None:\n    import selectors\n", ["imports selectors"]),
        ("from sipush.transport import udp\n", ["imports sipush.transport"]),
        ("from sipush import proxy\n", ["imports sipush.proxy"]),
        ("from ..transport.listen import parse_listen\n", ["imports sipush.transport"]),
        ("from .. import store\n", ["imports sipush.store"]),
        ("import h2.connection\n", ["imports h2.connection"]),
    ],
)
def test_walker_detects_forbidden_import(tmp_path: Path, source: str, expected: list[str]) -> None:
    """Self-check on a throwaway tree shaped like the real one: tmp/sipush/sip/bad.py."""
    sip_dir = tmp_path / "sipush" / "sip"
    sip_dir.mkdir(parents=True)
    bad = sip_dir / "bad.py"
    bad.write_text(source)
    found = violations(bad, tmp_path / "sipush")
    assert found, f"walker missed a forbidden import in {source!r}"
    for text in expected:
        assert any(text in problem for problem in found), found


def test_walker_accepts_allowed_imports(tmp_path: Path) -> None:
    sip_dir = tmp_path / "sipush" / "sip"
    sip_dir.mkdir(parents=True)
    good = sip_dir / "good.py"
    good.write_text(
        "from __future__ import annotations\n"
        "import re\nimport enum\nfrom dataclasses import dataclass\n"
        "from urllib.parse import quote\n"
        "from sipush.errors import ParseError\n"
        "from sipush import errors\n"
        "from sipush.sip.uri import SipUri\n"
        "from . import headers\nfrom .via import Via\nfrom .. import errors as errs\n"
        "import httpolice_is_not_http\n"
    )
    assert violations(good, tmp_path / "sipush") == []
    init = sip_dir / "__init__.py"
    init.write_text("from .message import Request\nfrom . import parser\n")
    assert violations(init, tmp_path / "sipush") == []
