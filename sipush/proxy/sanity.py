"""``sanity``: request validation before anything else (RFC 3261 §16.3, §16.4).

Parsing already rejected what is malformed (§16.3 step 1). This module checks the rest, in the
RFC's order:

* step 2 — URI scheme: only sip, sips and tel are routable; others get 416 (RFC 4475 §3.3.2
  unkscm, §3.3.3 novelsc);
* step 3 — Max-Forwards: 0 on a request we would forward gets 483 (RFC 4475 §3.3.11 zeromf);
  OPTIONS addressed to us with 0 is still answered (§16.3 step 3: "MAY act as a UAS");
* step 4 — loops: a request carrying one of sipush's own Vias with the same loop hash gets 482
  (see :mod:`sipush.proxy.loop`); a spiral (different hash) goes on;
* step 5 — Proxy-Require: option tags we do not support get 420 with Unsupported listing them
  (RFC 4475 §3.3.5 bext01).

Route pre-processing (§16.4) is the next module, ``routes``.

ACK is never answered (§17.2.1); an ACK that fails validation is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipush.proxy.chain import Continue, Drop, Outcome, Reply, RequestContext
from sipush.proxy.loop import has_looped
from sipush.sip import make_response
from sipush.sip.uri import SipUri, TelUri


@dataclass(frozen=True)
class SanityConfig:
    supported_proxy_extensions: frozenset[str] = field(default_factory=frozenset)


class Sanity:
    name = "sanity"

    def __init__(self, config: SanityConfig | None = None) -> None:
        self.config = config or SanityConfig()

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        is_ack = request.method == "ACK"
        if not isinstance(request.uri, (SipUri, TelUri)):
            if is_ack:
                return Drop("ACK with an unsupported Request-URI scheme")
            return Reply(make_response(request, 416))
        addressed_to_us = ctx.local.is_local(request.uri) and not request.routes
        if request.max_forwards == 0 and not (addressed_to_us and request.method == "OPTIONS"):
            if is_ack:
                return Drop("ACK with Max-Forwards 0")
            return Reply(make_response(request, 483))
        if has_looped(request, lambda sent_by: ctx.local.is_ours(*sent_by)):
            if is_ack:
                return Drop("looped ACK")
            return Reply(make_response(request, 482))  # §16.3 step 4
        unsupported = [
            t
            for t in request.proxy_require
            if t.lower() not in self.config.supported_proxy_extensions
        ]
        if unsupported:
            if is_ack:
                return Drop("ACK with unsupported Proxy-Require")
            return Reply(
                make_response(request, 420, extra_headers=[("Unsupported", ", ".join(unsupported))])
            )
        return Continue(ctx)
