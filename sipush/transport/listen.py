"""Listen addresses: ``udp:HOST:PORT``, ``tcp:HOST:PORT``, ``tls:HOST:PORT`` (IPv6 as ``[::1]``)."""

from __future__ import annotations

from dataclasses import dataclass

from sipush.errors import ConfigError

TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class ListenSpec:
    """One socket to listen on."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def parse_listen(text: str) -> ListenSpec:
    """Parse ``TRANSPORT:HOST:PORT``; raise :class:`ConfigError` with one readable line."""
    transport, sep, rest = text.strip().partition(":")
    transport = transport.lower()
    if not sep or transport not in TRANSPORTS:
        raise ConfigError(
            f"invalid listen address {text!r}: "
            "expected udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT"
        )
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ConfigError(f"invalid listen address {text!r}: IPv6 hosts look like [::1]:5060")
        port_text = port_text[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ConfigError(f"invalid listen address {text!r}: missing :PORT")
    if not host:
        raise ConfigError(f"invalid listen address {text!r}: missing host")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"invalid listen address {text!r}: port must be a number from 0 to 65535")
    return ListenSpec(transport, host, int(port_text))
