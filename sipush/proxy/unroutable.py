"""``unroutable``: the last module; answers what no module before it could route.

Until an upstream PBX is configured (issue #3), sipush has no target for requests that are not
addressed to itself. §16.5: an empty target set gets an error response, which SHOULD be 480; a
Warning (§20.43) says why, so an operator reading a trace knows what to fix. ACK is dropped
(§17.2.1: never answered) and CANCEL gets 481 (§9.2: no matching transaction).
"""

from __future__ import annotations

from sipush.proxy.chain import Drop, Outcome, Reply, RequestContext
from sipush.sip import make_response


class Unroutable:
    name = "unroutable"

    def __init__(
        self, warn_agent: str = "sipush", reason: str = "no route for this request"
    ) -> None:
        self.warn_agent = warn_agent
        self.reason = reason

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        if request.method == "ACK":
            return Drop("ACK with no route")
        if request.method == "CANCEL":
            return Reply(make_response(request, 481))
        warning = f'399 {self.warn_agent} "{self.reason}"'
        return Reply(make_response(request, 480, extra_headers=[("Warning", warning)]))
