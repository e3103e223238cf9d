"""Push: a device's push parameters (X-Push, RFC 8599 ``pn-*``, legacy ``pn-tok``), and later the
notification types and providers (APNs, FCM, Web Push, webhook). Never SIP transactions.

Public surface (from :mod:`sipush.push.params`)::

    PushInfo                                    frozen: provider, prid, param, app_id, ...
    push_info_from_register(request, contact)   -> PushInfo | None   (raises PushParamError)
    is_push_query(contact)                      RFC 8599 §4.1.5 capability query
    device_id(contact, push)                    +sip.instance, else device-uid, else pn-prid
    X_PUSH_HEADER_NAMES, x_push_header(request), parse_x_push(value), without_x_push(request)
"""

from sipush.errors import PushParamError
from sipush.push.params import (
    PROVIDERS,
    X_PUSH_HEADER_NAMES,
    PushInfo,
    device_id,
    is_push_query,
    parse_x_push,
    push_info_from_register,
    without_x_push,
    x_push_header,
)

__all__ = [
    "PROVIDERS",
    "X_PUSH_HEADER_NAMES",
    "PushInfo",
    "PushParamError",
    "device_id",
    "is_push_query",
    "parse_x_push",
    "push_info_from_register",
    "without_x_push",
    "x_push_header",
]
