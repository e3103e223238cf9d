"""Flows: the transport associations a message arrived on or leaves by (RFC 5626 §2.1).

A flow is the transport plus the local and remote address. For TCP and TLS it names one
connection; for UDP the datagram stream between two sockets. The proxy stores flows with bindings
(RFC 5626 §6) and sends responses back over the flow the request came on (RFC 3261 §18.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipush.sip.ip import ip_literal

STREAM_TRANSPORTS = ("tcp", "tls")
FLOW_TRANSPORTS = ("udp", *STREAM_TRANSPORTS)

Address = tuple[str, int]


def normalize_address(address: tuple[object, ...]) -> Address:
    """``(host, port)`` from a socket address (IPv6 ones carry flowinfo and scope id too).

    IP literals are put in canonical text form (``0:0::1`` -> ``::1``, brackets removed), so the
    same peer always compares equal; host names are kept, lower-cased.
    """
    host, port = str(address[0]), address[1]
    if not isinstance(port, int):
        raise ValueError(f"port must be an int, got {port!r}")
    host = host.strip("[]")
    ip = ip_literal(host)
    return (host.lower() if ip is None else str(ip)), port


@dataclass(frozen=True)
class Flow:
    """One transport association: ``transport`` ('udp', 'tcp' or 'tls'), local and remote address.

    Frozen and hashable, so it can key dictionaries and be stored with a binding.
    """

    transport: str
    local: Address
    remote: Address

    def __post_init__(self) -> None:
        if self.transport not in FLOW_TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}; expected udp, tcp or tls")

    @property
    def is_stream(self) -> bool:
        """True for connection-oriented flows (TCP, TLS)."""
        return self.transport in STREAM_TRANSPORTS

    def __str__(self) -> str:
        return f"{self.transport}:{_show(self.local)}->{_show(self.remote)}"


def _show(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
