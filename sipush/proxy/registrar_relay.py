"""``registrar-relay``: REGISTER from an app, relayed to the PBX with push information noted.

For each REGISTER (RFC 3261 §10, RFC 3327, RFC 8599 §5.6.1):

* the To must be a SIP or SIPS URI (an AOR; RFC 4475 §3.3.4 unksm2) -> else 400;
* push information is read from X-Push / RFC 8599 ``pn-*`` / legacy params; anything malformed
  gets 400 with a Warning saying what, and nothing is stored or relayed;
* sipush's Path ``<sip:TOKEN@sipush;lr;ob>`` goes on top (RFC 3327 §5.2), its token naming the
  app's flow (RFC 5626 §5.1), so the PBX sends calls for the app back through sipush;
* ``Feature-Caps: *;+sip.pns="<provider>"`` tells upstream proxies that sipush does the pushing
  (RFC 8599 §5.6.1.1); the X-Push header is removed unless ``[upstream] keep_x_push``;
* the request is forwarded upstream with a :class:`PendingRegistration`, committed by the proxy
  core only when the PBX answers 2xx.
"""

from __future__ import annotations

from sipush.errors import PushParamError
from sipush.proxy.chain import Continue, Forward, Outcome, Reply, RequestContext, Target
from sipush.proxy.flow_token import FlowTokens
from sipush.proxy.registration import PendingRegistration, RegisteredDevice, identify
from sipush.push.params import push_info_from_register, without_x_push
from sipush.sip import SipUri, make_response


class RegistrarRelay:
    name = "registrar-relay"

    def __init__(
        self,
        tokens: FlowTokens,
        upstream: Target | None,
        *,
        keep_x_push: bool = False,
        warn_agent: str = "sipush",
    ) -> None:
        self.tokens = tokens
        self.upstream = upstream
        self.keep_x_push = keep_x_push
        self.warn_agent = warn_agent

    def handle(self, ctx: RequestContext) -> Outcome:
        request = ctx.request
        if request.method != "REGISTER" or self.upstream is None:
            return Continue(ctx)
        to_uri = request.to.uri
        if not isinstance(to_uri, SipUri):
            return self._reject(ctx, "the To of a REGISTER must be a SIP or SIPS URI (the AOR)")
        devices = []
        try:
            for contact in request.contacts:
                push = push_info_from_register(request, contact)
                devices.append(RegisteredDevice(contact, identify(contact, push), push))
        except PushParamError as err:
            return self._reject(ctx, err.warning)
        pending = PendingRegistration(
            aor=to_uri.aor,
            flow=ctx.flow,
            devices=tuple(devices),
            remove_all=request.contact_is_star,
            call_id=request.call_id,
            cseq=request.cseq.number,
            user_agent=request.headers.get("User-Agent"),
        )
        relayed = request if self.keep_x_push else without_x_push(request)
        for provider in pending.providers:
            relayed = relayed.with_header_appended("Feature-Caps", f'*;+sip.pns="{provider}"')
        # The Path URI is where the PBX will send requests for this app: sipush's address on the
        # upstream side; the token inside names the app's own flow.
        upstream_transport = self.upstream.transport
        host, port = ctx.local.address(upstream_transport)
        host = f"[{host}]" if ":" in host else host
        transport = "" if upstream_transport == "udp" else f";transport={upstream_transport}"
        path = f"<sip:{self.tokens.encode(ctx.flow)}@{host}:{port}{transport};lr;ob>"
        relayed = relayed.with_header_prepended("Path", path).with_max_forwards_decremented()
        return Forward(relayed, self.upstream, registration=pending)

    def _reject(self, ctx: RequestContext, warning: str) -> Reply:
        text = warning.replace("\\", "\\\\").replace('"', '\\"')
        return Reply(
            make_response(
                ctx.request, 400, extra_headers=[("Warning", f'399 {self.warn_agent} "{text}"')]
            )
        )
