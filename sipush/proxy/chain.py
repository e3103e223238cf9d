"""The module chain (ARCHITECTURE.md, idea 3).

A request passes through modules in order (``sanity`` -> ``routes`` -> ``local`` ->
``registrar-relay`` -> ``forward`` -> ``unroutable``). Each module looks at a
:class:`RequestContext` and returns an outcome:

* :class:`Continue` — pass the (possibly changed) context to the next module;
* :class:`Reply` — answer with this response and stop;
* :class:`Forward` — proxy the request to this target (RFC 3261 §16.6) and stop;
* :class:`Drop` — send nothing and stop (e.g. ACK, which is never answered: §17.2.1).

New behaviour means a new module, not another branch in a big function. Modules are pure: no
sockets, no awaiting; the server does the I/O with the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sipush.sip import Request, Response, SipUri, Uri
from sipush.transport.flow import Flow

if TYPE_CHECKING:
    from sipush.proxy.registration import PendingRegistration


@dataclass(frozen=True)
class LocalIdentity:
    """The names and ports under which sipush is addressed, and the address it advertises per
    transport in its own Via, Path and Record-Route values."""

    hosts: frozenset[str]
    ports: frozenset[int]
    advertised: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def is_local(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.strip("[]").lower()
        return host in self.hosts and (uri.port is None or uri.port in self.ports)

    def is_ours(self, host: str, port: int) -> bool:
        """A Via sent-by (or any host and port) that names this sipush."""
        return host.strip("[]").lower() in self.hosts and port in self.ports

    def address(self, transport: str) -> tuple[str, int]:
        """Where peers reach sipush over ``transport`` (falls back to any listen address)."""
        found = self.advertised.get(transport)
        if found is None:
            found = next(iter(self.advertised.values()), ("127.0.0.1", 5060))
        return found


@dataclass(frozen=True)
class Target:
    """Where a forwarded request goes: a transport and address, or an existing flow."""

    transport: str
    host: str
    port: int
    flow: Flow | None = None

    @classmethod
    def over(cls, flow: Flow) -> Target:
        return cls(flow.transport, flow.remote[0], flow.remote[1], flow)


@dataclass(frozen=True)
class RequestContext:
    """A request on its way through the chain, with where it came from.

    ``route_flow`` is the app flow named by a flow token in a Route that pointed at sipush
    (RFC 5626 §5.3), set by the ``routes`` module; ``route_token_invalid`` says a Route named
    sipush with a token that did not verify.
    """

    request: Request
    flow: Flow
    local: LocalIdentity
    route_flow: Flow | None = None
    route_token_invalid: bool = False

    @property
    def transport(self) -> str:
        return self.flow.transport

    @property
    def source(self) -> tuple[str, int]:
        return self.flow.remote


@dataclass(frozen=True)
class Continue:
    ctx: RequestContext


@dataclass(frozen=True)
class Reply:
    response: Response


@dataclass(frozen=True)
class Forward:
    """Proxy ``request`` to ``target``; ``registration`` is committed when the answer is 2xx."""

    request: Request
    target: Target
    registration: PendingRegistration | None = None


@dataclass(frozen=True)
class Drop:
    reason: str


Outcome = Continue | Reply | Forward | Drop


class Module(Protocol):
    """One step of the chain; ``name`` shows up in logs."""

    name: str

    def handle(self, ctx: RequestContext) -> Outcome: ...


class Chain:
    """Runs modules in order until one replies, forwards or drops."""

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = tuple(modules)

    def run(self, ctx: RequestContext) -> Reply | Forward | Drop | Continue:
        for module in self.modules:
            outcome = module.handle(ctx)
            if not isinstance(outcome, Continue):
                return outcome
            ctx = outcome.ctx
        return Continue(ctx)
