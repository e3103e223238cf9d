"""``routes``: Route pre-processing (RFC 3261 §16.4) and flow tokens (RFC 5626 §5.3).

Every Route value at the top that names sipush is removed (loose routing: sipush's own Path and
Record-Route URIs always carry ``lr``). When such a Route carries a flow token in its user part,
the flow it names is kept in the context: the ``forward`` module sends the request over that
flow when it is heading for the app. A token that does not verify is remembered too (403).
"""

from __future__ import annotations

from dataclasses import replace

from sipush.proxy.chain import Continue, Outcome, RequestContext
from sipush.proxy.flow_token import FlowTokens
from sipush.sip import SipUri
from sipush.transport.flow import Flow


class Routes:
    name = "routes"

    def __init__(self, tokens: FlowTokens) -> None:
        self.tokens = tokens

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        route_flow: Flow | None = None
        invalid = False
        while request.routes and ctx.local.is_local(request.routes[0].uri):
            top, request = request.with_top_route_popped()
            uri = top.uri if top is not None else None
            if isinstance(uri, SipUri) and uri.user:
                flow = self.tokens.decode(uri.user)
                if flow is None:
                    invalid = True
                elif route_flow is None:
                    route_flow = flow
        if request is ctx.request:
            return Continue(ctx)
        return Continue(
            replace(ctx, request=request, route_flow=route_flow, route_token_invalid=invalid)
        )
