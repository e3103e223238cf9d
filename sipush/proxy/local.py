"""``local``: requests addressed to sipush itself (its own host and port in the Request-URI).

* OPTIONS gets 200 with Allow, Accept and Supported (RFC 3261 §11.2): how a PBX or an operator
  checks that sipush is alive.
* A method sipush does not know gets 501 with Allow (§8.2.1; RFC 4475 §3.1.1.2 intmeth).
* CANCEL gets 481: nothing addressed to sipush itself is ever pending (§9.2).
* Anything else passes on (REGISTER and calls are relayed upstream from issue #3 on).
"""

from __future__ import annotations

from sipush.proxy.chain import Continue, Drop, Outcome, Reply, RequestContext
from sipush.sip import make_response
from sipush.sip.parser import KNOWN_METHODS

ALLOW = ", ".join(
    ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "MESSAGE", "REGISTER", "PRACK", "UPDATE", "INFO",
     "REFER", "SUBSCRIBE", "NOTIFY"]
)  # fmt: skip


class Local:
    name = "local"

    def __init__(self, server_header: str) -> None:
        self.server_header = server_header

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        if not ctx.local.is_local(request.uri):
            return Continue(ctx)
        if request.method == "ACK":
            return Drop("ACK addressed to sipush")
        if request.method == "OPTIONS":
            return Reply(
                make_response(
                    request,
                    200,
                    extra_headers=[
                        ("Allow", ALLOW),
                        ("Accept", "application/sdp"),
                        ("Supported", "path, outbound"),
                        ("Server", self.server_header),
                    ],
                )
            )
        if request.method == "CANCEL":
            return Reply(make_response(request, 481))
        if request.method not in KNOWN_METHODS:
            return Reply(make_response(request, 501, extra_headers=[("Allow", ALLOW)]))
        return Continue(ctx)
