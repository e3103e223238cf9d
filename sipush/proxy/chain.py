"""The module chain (ARCHITECTURE.md, idea 3).

A request passes through modules in order (``sanity`` -> ``local`` -> ... -> ``unroutable``).
Each module looks at a :class:`RequestContext` and returns an outcome:

* :class:`Continue` — pass the (possibly changed) request to the next module;
* :class:`Reply` — answer with this response and stop;
* :class:`Drop` — send nothing and stop (e.g. ACK, which is never answered: §17.2.1).

New behaviour means a new module, not another branch in a big function. Modules are pure: no
sockets, no awaiting; the server does the I/O with the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sipush.sip import Request, Response, SipUri, Uri


@dataclass(frozen=True)
class LocalIdentity:
    """The names and ports under which sipush is addressed (for §16.4 and "addressed to me")."""

    hosts: frozenset[str]
    ports: frozenset[int]

    def is_local(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.strip("[]").lower()
        return host in self.hosts and (uri.port is None or uri.port in self.ports)


@dataclass(frozen=True)
class RequestContext:
    """A request on its way through the chain, with where it came from."""

    request: Request
    transport: str  # "udp" | "tcp" | "tls"
    source: tuple[str, int]
    local: LocalIdentity

    def with_request(self, request: Request) -> RequestContext:
        return replace(self, request=request)


@dataclass(frozen=True)
class Continue:
    request: Request


@dataclass(frozen=True)
class Reply:
    response: Response


@dataclass(frozen=True)
class Drop:
    reason: str


Outcome = Continue | Reply | Drop


class Module(Protocol):
    """One step of the chain; ``name`` shows up in logs."""

    name: str

    def handle(self, ctx: RequestContext) -> Outcome: ...


class Chain:
    """Runs modules in order until one replies or drops."""

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = tuple(modules)

    def run(self, ctx: RequestContext) -> Reply | Drop | Continue:
        for module in self.modules:
            outcome = module.handle(ctx)
            if not isinstance(outcome, Continue):
                return outcome
            ctx = ctx.with_request(outcome.request)
        return Continue(ctx.request)
