"""Loop detection (RFC 3261 §16.3 step 4, §16.6 step 8).

sipush's Via branch is ``z9hG4bK-<loop hash>-<random>``. The loop hash covers what a loop
leaves unchanged and a spiral changes: the To and From tags, Call-ID, the Request-URI as
received, the CSeq number, Proxy-Require and Proxy-Authorization (never the method, so a CANCEL
or ACK can reuse an INVITE's branch). §16.6 step 8 also lists "the topmost Via"; sipush leaves
it out, because a looped request comes back with another hop's Via on top and would never match.
A request that comes back with one of sipush's own Vias carrying the same hash has looped (482);
a different hash means it spiralled (a PBX retargeted it and sent it back through sipush), which
is fine.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable

from sipush.sip import MAGIC_COOKIE, Request

# Branches must be unique (§8.1.1.7), not secret: a generator seeded once from the OS is enough
# and avoids a getrandom() system call per forwarded request.
_unique = random.Random(os.urandom(32))


# The shape of the branches branch_for makes: a Via without it is not sipush's.
_OUR_BRANCH = re.compile(re.escape(MAGIC_COOKIE) + r"-[0-9a-f]{16}-[0-9a-f]{12}\b")


def loop_hash(request: Request) -> str:
    parts = [
        request.to.tag or "",
        request.from_.tag or "",
        request.call_id,
        str(request.uri),
        str(request.cseq.number),
        ",".join(request.headers.get_all("proxy-require")),
        ",".join(request.headers.lines("proxy-authorization")),
    ]
    digest = hashlib.md5("\n".join(parts).encode("utf-8", "surrogateescape"), usedforsecurity=False)
    return digest.hexdigest()[:16]


def branch_for(request: Request) -> str:
    """A fresh branch for a request sipush forwards, carrying its loop hash."""
    return f"{MAGIC_COOKIE}-{loop_hash(request)}-{_unique.getrandbits(48):012x}"


def has_looped(request: Request, is_ours: Callable[[tuple[str, int]], bool]) -> bool:
    """True when one of sipush's own Vias in ``request`` carries this request's loop hash."""
    if not any(_OUR_BRANCH.search(line) for line in request.headers.by_key("via")):
        return False  # no Via with a branch of sipush's shape: nothing to parse
    expected = None
    for via in request.vias:
        branch = via.branch or ""
        if not branch.startswith(MAGIC_COOKIE + "-") or not is_ours(via.sent_by):
            continue
        if expected is None:
            expected = loop_hash(request)
        if branch.split("-")[1:2] == [expected]:
            return True
    return False
