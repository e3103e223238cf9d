"""IP literals, parsed once: the same few peer addresses come with every message.

``ipaddress.ip_address`` costs about 10 µs a call, and a relayed request needs it half a dozen
times (Via ``received``, flow addresses, flow tokens, the broadcast check). :func:`ip_literal`
keeps the answers for the last 4,096 distinct texts.
"""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=4096)
def ip_literal(text: str) -> IPAddress | None:
    """``text`` as an IPv4 or IPv6 address (no brackets), or ``None`` when it is not one."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
