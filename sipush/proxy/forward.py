"""``forward``: where a request goes, and the copy that goes there (RFC 3261 §16.5, §16.6).

Three cases, in order:

1. **Toward an app.** A Route carried sipush's flow token (RFC 5626 §5.3) and the request did
   not come from that flow: send it over the app's flow (the PBX routed it here through the
   Path sipush added at registration, RFC 3327 §5.4). A token that does not verify gets 403
   (RFC 5626 §5.3.1). Whether the flow is still there is the server's question: a new call or
   message may wake the app with a push (:mod:`sipush.proxy.wake`), anything else gets 430.
2. **From an app's flow, in a dialog sipush record-routed (its token came back), or from the
   PBX:** the next hop is the next Route, else the Request-URI (§16.6 step 7; RFC 3263
   resolution is reduced to host, port and the ``transport`` parameter).
3. **Anything else from an app:** to the upstream PBX (``[upstream] uri``); with no upstream,
   the ``unroutable`` module answers 480. sipush is not an open relay: it never sends a request
   to a host named only by a stranger's Request-URI.

The copy has Max-Forwards decremented (or set to 70, §16.6 step 3) and, for dialog-forming
requests, a Record-Route with a flow token for the app side (RFC 5626 §5.3.1), doubled when the
two sides use different transports (RFC 5658), so in-dialog requests come back through sipush and
reach the app over its flow. sipush's Via is added per branch by the proxy core.
"""

from __future__ import annotations

from sipush.proxy.chain import (
    Continue,
    Forward,
    LocalIdentity,
    Outcome,
    Reply,
    RequestContext,
    Target,
)
from sipush.proxy.flow_token import FlowTokens
from sipush.sip import Request, SipUri, Uri, make_response
from sipush.transport.flow import Flow

DIALOG_FORMING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def target_for_uri(uri: Uri, default_transport: str = "udp") -> Target | None:
    """The next hop named by a SIP URI: maddr or host, port, and transport (RFC 3263 §4.1, §4.2
    without DNS SRV/NAPTR: names are resolved as plain A/AAAA records by the transport)."""
    if not isinstance(uri, SipUri):
        return None
    transport = (uri.param("transport") or "").lower()
    if uri.scheme == "sips":
        transport = "tls"
    elif transport not in ("udp", "tcp", "tls"):
        transport = default_transport
    host = uri.param("maddr") or uri.host
    port = uri.port if uri.port is not None else DEFAULT_PORTS[transport]
    return Target(transport, host.strip("[]"), port)


class ForwardModule:
    name = "forward"

    def __init__(
        self,
        tokens: FlowTokens,
        upstream: Target | None,
    ) -> None:
        self.tokens = tokens
        self.upstream = upstream

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        route_flow = ctx.route_flow
        if route_flow is None and ctx.route_token_invalid:
            return Reply(make_response(request, 403, "Invalid Flow Token"))
        if route_flow is not None and not _same_peer(route_flow, ctx.flow):
            # 1. toward the app over its own flow
            target = Target.over(route_flow)
            return Forward(
                self._copy(request, ctx, app_flow=route_flow, out_transport=target.transport),
                target,
            )
        # Only a dialog sipush record-routed (its token came back in a Route) or a request from
        # the PBX is routed by Route/Request-URI: sipush is no open relay to arbitrary hosts.
        if route_flow is not None or self._from_upstream(ctx):
            # 2. next Route, else the Request-URI
            next_uri = request.routes[0].uri if request.routes else request.uri
            hop = target_for_uri(next_uri)
            if hop is None:
                return Continue(ctx)
            target = hop
            app_flow = None if self._from_upstream(ctx) else ctx.flow
            return Forward(
                self._copy(request, ctx, app_flow=app_flow, out_transport=target.transport), target
            )
        if self.upstream is None:
            return Continue(ctx)
        # 3. from an app to the PBX
        target = self.upstream
        return Forward(
            self._copy(request, ctx, app_flow=ctx.flow, out_transport=target.transport), target
        )

    def _from_upstream(self, ctx: RequestContext) -> bool:
        up = self.upstream
        return up is not None and ctx.flow.remote == (up.host, up.port)

    def _copy(
        self, request: Request, ctx: RequestContext, *, app_flow: Flow | None, out_transport: str
    ) -> Request:
        copy = request.with_max_forwards_decremented()
        if app_flow is not None and request.method in DIALOG_FORMING and request.to.tag is None:
            copy = with_record_route(
                copy, ctx.local, self.tokens.encode(app_flow), ctx.flow.transport, out_transport
            )
        return copy


def with_record_route(
    request: Request, local: LocalIdentity, token: str, inbound: str, outbound: str
) -> Request:
    """Add sipush's Record-Route with a flow token (RFC 5626 §5.3.1), twice when the previous
    and the next hop use different transports (RFC 5658). Record-Route values are read top-down
    by the callee and bottom-up by the caller: the top one must be reachable from the next hop,
    the other from the previous hop."""
    request = request.with_header_prepended("Record-Route", record_route_uri(local, token, inbound))
    if outbound != inbound:
        request = request.with_header_prepended(
            "Record-Route", record_route_uri(local, token, outbound)
        )
    return request


def record_route_uri(local: LocalIdentity, token: str, transport: str) -> str:
    host, port = local.address(transport)
    host = f"[{host}]" if ":" in host else host
    param = "" if transport == "udp" else f";transport={transport}"
    return f"<sip:{token}@{host}:{port}{param};lr>"


def _same_peer(a: Flow, b: Flow) -> bool:
    """RFC 5626 §5.3: the request came from the flow the token names (it is outgoing)."""
    return a.transport == b.transport and a.remote == b.remote
