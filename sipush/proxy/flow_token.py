"""Flow tokens (RFC 5626 §5.2): a flow encoded in the user part of sipush's Path/Record-Route URI.

sipush puts ``<sip:TOKEN@sipush-host:port;lr;ob>`` into the Path of every REGISTER it relays
(RFC 3327) and into Record-Route of dialogs it proxies. The PBX later sends requests for the app
with that URI as the top Route; decoding the token gives the exact flow (transport, sipush's
local address, the app's address) to send them over, which is the only way to reach an app behind
NAT or on a TCP connection it opened (RFC 5626 §5.3).

Token = base64url(HMAC-SHA256-80(K, S) || S), S = transport || local address || remote address,
K = the key in ``[server] flow_key_file`` (created on first start), so the Paths a PBX stored
stay valid when sipush restarts; or a random key per process. A tampered or
foreign token does not verify (§5.3.1: answer 403); a flow that no longer exists gets 430.
All characters of base64url are allowed unescaped in a SIP URI user part (§25.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import struct

from sipush.errors import ConfigError
from sipush.sip.ip import ip_literal
from sipush.transport.flow import Flow

_TRANSPORT_CODES = {"udp": 1, "tcp": 2, "tls": 3}
_TRANSPORT_NAMES = {code: name for name, code in _TRANSPORT_CODES.items()}
_MAC_BYTES = 10  # 80 bits, as RFC 5626 §5.2's HMAC-SHA1-80 example


class FlowTokens:
    """Encodes flows into tokens and verifies tokens back into flows with one secret key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else os.urandom(20)

    def encode(self, flow: Flow) -> str:
        payload = (
            bytes([_TRANSPORT_CODES[flow.transport]])
            + _pack_address(flow.local)
            + _pack_address(flow.remote)
        )
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode("ascii")

    def decode(self, token: str) -> Flow | None:
        """The flow a token names, or ``None`` when it is malformed or was not made with our key."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected) or not payload:
            return None
        transport = _TRANSPORT_NAMES.get(payload[0])
        if transport is None:
            return None
        local, rest = _unpack_address(payload[1:])
        remote, rest = _unpack_address(rest) if local is not None else (None, b"")
        if local is None or remote is None or rest:
            return None
        return Flow(transport, local, remote)


def load_or_create_key(path: str) -> bytes:
    """The flow-token key kept in ``path`` (created with 32 random bytes, mode 0600, if missing).

    Raises :class:`~sipush.errors.ConfigError` with one line when the file cannot be used.
    """
    try:
        with open(path, "rb") as file:
            key = file.read()
    except FileNotFoundError:
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(key)
        except FileExistsError:  # another process created it first: use theirs
            return load_or_create_key(path)
        except OSError as err:
            raise ConfigError(
                f"[server] flow_key_file: cannot create {path}: {err.strerror}"
            ) from None
    except OSError as err:
        raise ConfigError(f"[server] flow_key_file: cannot read {path}: {err.strerror}") from None
    if len(key) < 16:
        raise ConfigError(f"[server] flow_key_file: {path} holds fewer than 16 bytes")
    return key


def _pack_address(address: tuple[str, int]) -> bytes:
    ip = ip_literal(address[0])
    packed = ipaddress.ip_address(address[0]).packed if ip is None else ip.packed
    return bytes([len(packed)]) + packed + struct.pack("!H", address[1])


def _unpack_address(data: bytes) -> tuple[tuple[str, int] | None, bytes]:
    if not data or data[0] not in (4, 16) or len(data) < 1 + data[0] + 2:
        return None, b""
    size = data[0]
    host = str(ipaddress.ip_address(data[1 : 1 + size]))
    (port,) = struct.unpack("!H", data[1 + size : 3 + size])
    return (host, port), data[3 + size :]
