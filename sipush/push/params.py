"""A device's push information, read from its REGISTER. Pure: no I/O, no clock, no config.

Three sources, in order of precedence::

    1. rfc8599   RFC 8599 Contact URI parameters   pn-provider, pn-prid, pn-param
    2. x-push    PortSIP's X-Push request header   device-os, device-uid, allow-call-push,
                 (also X-P-Push, PortSIP-Push)      allow-message-push, app-id
    3. legacy    Linphone/Flexisip Contact params  pn-type, pn-tok, app-id

:func:`push_info_from_register` parses every source present, validates each one completely
(a malformed source is an error even when a better one is present: nothing malformed is stored or
relayed), and combines them:

* **Precedence.** The highest source present wins and names ``source``: RFC 8599 is the
  standard and travels in the Contact URI itself (RFC 8599 §5.3 matches on it); X-Push is one
  vendor's header; the legacy parameters are deprecated (Flexisip reads them only when there is
  no ``pn-provider``: ``PushInfo::setDestinations`` in ``src/pushnotification/push-info.cc``).
* **Agreement.** Every lower source must describe the same registration: the same provider
  (X-Push ``device-os=ios`` is ``apns``, ``android`` is ``fcm``), a token that the winner also
  names (its ``prid`` or ``alert_token``; APNs hex compared case-insensitively), the same second
  token and the same app id where both give one. Any disagreement is a :class:`PushParamError`:
  guessing which of two tokens is current would push to a dead one.
* **Enrichment.** Fields only a lower source carries are copied into the result: ``device_uid``,
  ``alert_token`` and the two ``allow-*`` flags from X-Push, ``app_id`` where the winner has
  none. ``param`` always comes from the winner (its meaning depends on the source).

RFC 8599 (``rfc-notes.md`` §1):

* ``pn-provider`` (case-insensitive) must be ``apns``, ``fcm`` or ``webpush`` (§14.5). Flexisip's
  ``apns.dev`` (sandbox) is rejected: :class:`PushInfo` cannot say "sandbox", and pushing a
  sandbox token to production APNs would only get it deleted as invalid.
* ``pn-provider`` without ``pn-prid`` is a capability query (§4.1.5), not push info: the
  source gives nothing (see :func:`is_push_query`, for the proxy's ``Feature-Caps`` answer).
  ``pn-prid`` or ``pn-param`` without ``pn-provider`` is an error.
* ``apns``: ``pn-param`` is required, ``TEAMID.bundle.id.service``; the first ``.`` ends the
  Team ID, the last ``.`` starts the service (§10) and ``app_id`` is the bundle id between them.
  As in Flexisip (``src/pushnotification/rfc8599-push-params.cc``), the service may be ``voip``,
  ``remote`` or ``voip&remote``; a last label that is none of these belongs to the bundle id and
  the service is ``remote``. With ``voip&remote`` the ``pn-prid`` carries one token per service,
  ``VOIPTOKEN:voip&ALERTTOKEN:remote`` (a single token may carry the suffix too): ``prid`` is
  the VoIP token and ``alert_token`` the other, as for X-Push's ``voipToken|apnsToken``.
* ``fcm``: ``pn-param`` (the Firebase project id, §11) is optional; ``app_id`` stays ``None``.
* ``webpush``: ``pn-prid`` is the push subscription URI, %-decoded once by the URI parser; it
  must be an absolute ``https:`` (or ``http:``, for local push services) URI with a host.
  ``pn-param`` MUST NOT be used (§12): it is an error.

X-Push (PortSIP; ``ANCHORS.md``): ``key=value`` pairs separated by ``;``, keys case-insensitive,
spaces around keys and values ignored, empty pairs (a trailing ``;``) ignored. Unknown keys are
ignored (forward compatible); a pair without ``=``, a repeated known key, or an empty value for
a known key is an error. ``device-os`` (``ios`` or ``android``, case-insensitive) and
``device-uid`` are required. iOS may send ``device-uid=voipToken|apnsToken``: ``prid`` is the
VoIP token, ``alert_token`` the other; ``device_uid`` keeps the text as sent. The flags
``allow-call-push`` and ``allow-message-push`` default to true and accept ``true``/``false``,
``yes``/``no`` and ``1``/``0`` (case-insensitive), the usual spellings of a boolean; anything
else (``on``, ``maybe``) is an error. More than one X-Push header, in any spelling, is an error.

Legacy (Linphone before RFC 8599, read as Flexisip's ``parseLegacyPushParams`` does): the source
is present when the Contact URI has ``pn-tok`` (when the URI has none, the Contact header
parameters are read instead: clients that write ``Contact: <sip:u@h>;pn-tok=...``, as in Kazoo's
pusher documentation). ``pn-type``, ``pn-tok`` and ``app-id`` are then all required.
``pn-type`` ``apple``/``apns`` is ``apns``; ``firebase``/``google``/``android``/``fcm`` is
``fcm``; anything else (Flexisip's Windows ``wp``/``wp10`` too) is unsupported, an error. An
Apple ``app-id`` is ``<bundle id>[.voip].<prod|dev>`` (Flexisip's certificate naming,
``org.linphone.voip.prod``): ``app_id`` is the bundle id, ``param`` the app-id as sent (so
``.dev`` is not lost). Flexisip passes ``pn-tok`` through unsplit, so a legacy Apple token is one
plain hex token. For FCM, ``param`` and ``app_id`` are both the app-id (Flexisip's ``mParam``).

Validation (each failure is a :class:`PushParamError` whose ``warning`` says what is wrong, in
one line of printable ASCII, and never repeats a push token):

* empty values, control characters (also from %-escapes such as ``%00``), unknown providers,
  ``pn-type`` or ``device-os`` values, bad booleans, disagreeing sources;
* lengths: a token at most 512 characters (4096 for a Web Push URI), an app id or ``pn-param``
  at most 255;
* APNs tokens are hexadecimal, an even number of digits from 16 to 200 (8 to 100 bytes).
  Today's tokens are 64 digits, but Apple says their length may change, so the bounds are wide;
  odd lengths and non-hex characters are never a token (RFC 8599's ``00fc13adff78512`` example
  is only an illustration and is rejected);
* FCM tokens are ``[A-Za-z0-9_:-]+``;
* app ids (bundle ids, Android package names) are dot-separated labels of ``[A-Za-z0-9_-]``;
  an FCM project id is ``[A-Za-z0-9._:-]+`` (Google Cloud's ``example.com:project`` form).

RFC 8599 §5.6.1.1 lets a proxy forward a REGISTER whose PNS it does not support; sipush answers
400 instead (issue #3), so that a typo never silently disables pushes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from sipush.errors import PushParamError
from sipush.sip import NameAddr, Request, SipUri

PROVIDERS = ("apns", "fcm", "webpush")  # RFC 8599 §14.5
PLATFORMS = ("ios", "android", "web")
SOURCES = ("rfc8599", "x-push", "legacy")  # in order of precedence
PROVIDER_OF_DEVICE_OS = {"ios": "apns", "android": "fcm"}
LEGACY_PN_TYPES = {
    "apple": "apns",
    "apns": "apns",
    "firebase": "fcm",
    "google": "fcm",
    "android": "fcm",
    "fcm": "fcm",
}
X_PUSH_HEADER_NAMES = ("x-push", "x-p-push", "portsip-push")

MAX_TOKEN_LENGTH = 512
MAX_WEBPUSH_URI_LENGTH = 4096
MAX_NAME_LENGTH = 255  # app ids, pn-param

_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})
_X_PUSH_KEYS = frozenset(
    {"device-os", "device-uid", "allow-call-push", "allow-message-push", "app-id"}
)

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NOT_HEX_RE = re.compile(r"[^0-9A-Fa-f]")
_NOT_FCM_TOKEN_RE = re.compile(r"[^A-Za-z0-9_:\-]")
_APP_ID_RE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
_NOT_FCM_PROJECT_RE = re.compile(r"[^A-Za-z0-9._:\-]")
_NOT_URI_CHAR_RE = re.compile(r"[^!-~]")  # printable ASCII, no space
_APNS_TEAM_ID_RE = re.compile(r"[A-Za-z0-9]+")
_APNS_SERVICES_RE = re.compile(r"(?:voip|remote)(?:&(?:voip|remote))*", re.IGNORECASE)
_APNS_TOKEN_MIN_DIGITS = 16
_APNS_TOKEN_MAX_DIGITS = 200
_SHOW_LIMIT = 40


@dataclass(frozen=True)
class PushInfo:
    """How to wake one device: what :func:`push_info_from_register` read from its REGISTER.

    ``provider``     ``"apns"``, ``"fcm"`` or ``"webpush"`` (RFC 8599 §14.5 names)
    ``prid``         the push token (APNs: the VoIP token when two are given; Web Push: the
                     subscription URI)
    ``param``        RFC 8599 ``pn-param`` as sent (APNs ``TEAMID.bundle.id.voip``, FCM
                     project id); for ``source="legacy"`` the legacy ``app-id`` as sent
    ``app_id``       bundle id / package name: X-Push ``app-id``, legacy ``app-id`` (Apple:
                     without ``.voip.prod``), or the bundle id inside an APNs ``pn-param``
    ``platform``     ``"ios"``, ``"android"``, ``"web"`` or ``None``
    ``device_uid``   X-Push ``device-uid`` as sent (may be ``"voip|apns"``)
    ``alert_token``  the second iOS token (X-Push ``voip|apns``, or Flexisip's ``:remote`` one)
    ``allow_call_push``, ``allow_message_push``: X-Push flags, true unless the app said no
    ``source``       where the winning information came from: ``"rfc8599"``, ``"x-push"`` or
                     ``"legacy"``

    The constructor checks only the enumerations and that ``prid`` is not empty (the store
    rebuilds these from rows); the parsing functions check everything else.
    """

    provider: str
    prid: str
    param: str | None = None
    app_id: str | None = None
    platform: str | None = None
    device_uid: str | None = None
    alert_token: str | None = None
    allow_call_push: bool = True
    allow_message_push: bool = True
    source: str = "rfc8599"

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise PushParamError(
                f"push provider must be apns, fcm or webpush, got {_show(self.provider)}"
            )
        if not self.prid:
            raise PushParamError("push token is empty")
        if self.platform is not None and self.platform not in PLATFORMS:
            raise PushParamError(
                f"push platform must be ios, android or web, got {_show(self.platform)}"
            )
        if self.source not in SOURCES:
            raise PushParamError(
                f"push source must be rfc8599, x-push or legacy, got {_show(self.source)}"
            )


# -- the public functions ---------------------------------------------------------------------


def push_info_from_register(request: Request, contact: NameAddr) -> PushInfo | None:
    """The push information of ``contact`` (one Contact of the REGISTER ``request``).

    ``None`` when there is none (a capability query alone is none). Raises
    :class:`PushParamError` when any source present is malformed or the sources disagree.
    """
    found: list[PushInfo] = []
    if isinstance(contact.uri, SipUri):
        rfc8599 = _from_rfc8599(contact.uri)
        if rfc8599 is not None:
            found.append(rfc8599)
    x_push_value = x_push_header(request)
    if x_push_value is not None:
        found.append(parse_x_push(x_push_value))
    legacy = _from_legacy(contact)
    if legacy is not None:
        found.append(legacy)
    if not found:
        return None
    result = found[0]
    for lower in found[1:]:
        result = _merge(result, lower)
    return result


def is_push_query(contact: NameAddr) -> bool:
    """RFC 8599 §4.1.5: ``pn-provider`` (with or without a value) and no ``pn-prid``.

    The UA asks which push services the proxies support; the answer is one ``Feature-Caps``
    per supported provider in the 2xx (§5.6.1.2), nothing is stored for it.
    """
    uri = contact.uri
    return isinstance(uri, SipUri) and uri.has_param("pn-provider") and not uri.has_param("pn-prid")


def x_push_header(request: Request) -> str | None:
    """The one X-Push header value in any spelling, ``None`` when absent; more is an error."""
    values = [value for name in X_PUSH_HEADER_NAMES for value in request.headers.lines(name)]
    if len(values) > 1:
        raise PushParamError(
            f"more than one X-Push header ({len(values)}; spellings X-Push, X-P-Push, PortSIP-Push)"
        )
    return values[0] if values else None


def parse_x_push(value: str) -> PushInfo:
    """Parse one X-Push header value (PortSIP): ``device-os=ios;device-uid=...;...``."""
    if not value.strip(" \t"):
        raise PushParamError("X-Push header is empty")
    fields: dict[str, str] = {}
    for number, part in enumerate(value.split(";"), 1):
        part = part.strip(" \t")
        if not part:
            continue
        key, eq, field_value = part.partition("=")
        # Quote the item only when it is too short to be a token (warnings never repeat one).
        item = _show(part) if len(part) < _APNS_TOKEN_MIN_DIGITS else f"item {number}"
        if not eq:
            raise PushParamError(f"X-Push {item} is not key=value")
        key = key.strip(" \t").lower()
        if not key:
            raise PushParamError(f"X-Push {item} has no key before '='")
        if key not in _X_PUSH_KEYS:
            continue  # forward compatible: keys PortSIP may add later
        if key in fields:
            raise PushParamError(f"X-Push repeats {key}")
        field_value = field_value.strip(" \t")
        if not field_value:
            raise PushParamError(f"X-Push {key} is empty")
        fields[key] = field_value
    device_os = fields.get("device-os")
    if device_os is None:
        raise PushParamError("X-Push has no device-os (ios or android)")
    platform = device_os.lower()
    provider = PROVIDER_OF_DEVICE_OS.get(platform)
    if provider is None:
        raise PushParamError(f"X-Push device-os must be ios or android, got {_show(device_os)}")
    device_uid = fields.get("device-uid")
    if device_uid is None:
        raise PushParamError("X-Push has no device-uid (the push token)")
    alert_token: str | None = None
    if provider == "apns":
        tokens = device_uid.split("|")
        if len(tokens) > 2:
            raise PushParamError(
                f"X-Push device-uid has {len(tokens)} tokens, at most 2 (voipToken|apnsToken)"
            )
        for token in tokens:
            _check_token(token, "apns", "X-Push device-uid token")
        prid = tokens[0]
        alert_token = tokens[1] if len(tokens) == 2 else None
    else:
        _check_token(device_uid, provider, "X-Push device-uid")
        prid = device_uid
    app_id = fields.get("app-id")
    if app_id is not None:
        _check_app_id(app_id, "X-Push app-id")
    return PushInfo(
        provider=provider,
        prid=prid,
        param=None,
        app_id=app_id,
        platform=platform,
        device_uid=device_uid,
        alert_token=alert_token,
        allow_call_push=_x_push_flag(fields, "allow-call-push"),
        allow_message_push=_x_push_flag(fields, "allow-message-push"),
        source="x-push",
    )


def without_x_push(request: Request) -> Request:
    """The request without any X-Push header (every spelling): the PBX need not see tokens."""
    for name in X_PUSH_HEADER_NAMES:
        if name in request.headers:
            request = request.with_header_removed(name)
    return request


def device_id(contact: NameAddr, push: PushInfo | None) -> str | None:
    """The identity of the device behind ``contact``: the key of its binding in an AOR.

    ``+sip.instance`` (RFC 5626 §4.1) without quotes and ``<>``, lower-cased (``urn:uuid`` and
    ``urn:gsma:imei`` compare case-insensitively); else the first token of X-Push
    ``device-uid``; else the push token (``pn-prid``, or a legacy ``pn-tok``); else ``None``.
    """
    instance = contact.instance
    if instance is not None:
        text = instance.strip(' \t"<>').lower()
        if text:
            return text
    if push is None:
        return None
    if push.device_uid:
        first = push.device_uid.split("|", 1)[0].strip(" \t")
        if first:
            return first
    return push.prid


# -- RFC 8599 ---------------------------------------------------------------------------------


def _from_rfc8599(uri: SipUri) -> PushInfo | None:
    provider_text = uri.param("pn-provider")
    prid = uri.param("pn-prid")
    param = uri.param("pn-param")
    if provider_text is None:
        if prid is not None:
            raise PushParamError("Contact has pn-prid but no pn-provider (RFC 8599 section 4.1.1)")
        if param is not None:
            raise PushParamError("Contact has pn-param but no pn-provider (RFC 8599 section 4.1.1)")
        return None
    if prid is None:
        return None  # §4.1.5: a capability query
    provider = provider_text.lower()
    if not provider:
        raise PushParamError("pn-provider is empty but pn-prid is given (apns, fcm or webpush)")
    if provider not in PROVIDERS:
        raise PushParamError(
            f"pn-provider {_show(provider_text)} is not supported (apns, fcm or webpush)"
        )
    if provider == "webpush":
        if param is not None:
            raise PushParamError(
                "pn-param must not be used with pn-provider webpush (RFC 8599 section 12)"
            )
        _check_token(prid, "webpush", "pn-prid")
        return PushInfo("webpush", prid, platform="web", source="rfc8599")
    if provider == "fcm":
        _check_token(prid, "fcm", "pn-prid")
        if param is not None:
            _check_text(param, "pn-param", MAX_NAME_LENGTH)
            bad = _first_bad(param, _NOT_FCM_PROJECT_RE)
            if bad is not None:
                raise PushParamError(f"pn-param is not an FCM project id: {bad}")
        return PushInfo("fcm", prid, param=param, platform="android", source="rfc8599")
    # apns
    if param is None:
        raise PushParamError(
            "pn-param is required with pn-provider apns "
            "(TEAMID.bundle.id.voip, RFC 8599 section 10)"
        )
    bundle, services = _split_apns_param(param)
    voip_or_only, alert = _split_apns_prid(prid, services)
    return PushInfo(
        "apns",
        voip_or_only,
        param=param,
        app_id=bundle,
        platform="ios",
        alert_token=alert,
        source="rfc8599",
    )


def _split_apns_param(param: str) -> tuple[str, tuple[str, ...]]:
    """``TEAMID.bundle.id.service`` -> (bundle id, services); RFC 8599 §10 and Flexisip."""
    _check_text(param, "pn-param", MAX_NAME_LENGTH)
    team, dot, rest = param.partition(".")
    if not dot or not team or not rest:
        raise PushParamError(
            "pn-param for apns must be TEAMID.bundle.id.voip (RFC 8599 section 10), "
            f"got {_show(param)}"
        )
    if _APNS_TEAM_ID_RE.fullmatch(team) is None:
        raise PushParamError(f"pn-param Team ID {_show(team)} must be letters and digits")
    bundle, dot, last = rest.rpartition(".")
    if dot and bundle and _APNS_SERVICES_RE.fullmatch(last):
        services = tuple(last.lower().split("&"))
        if len(set(services)) != len(services):
            raise PushParamError(f"pn-param repeats an APNs service: {_show(last)}")
    else:
        # Flexisip's sPnParamNoServiceRegex: no voip/remote suffix means "remote"
        bundle, services = rest, ("remote",)
    if _APP_ID_RE.fullmatch(bundle) is None:
        raise PushParamError(f"pn-param bundle id {_show(bundle)} is not a valid bundle id")
    return bundle, services


def _split_apns_prid(prid: str, services: tuple[str, ...]) -> tuple[str, str | None]:
    """(VoIP token or the only token, the ``remote`` token beside a VoIP one).

    Flexisip's syntax (``sPnPridOneTokenRegex``, ``sPnPridMultipleTokensRegex``): one token per
    service in ``pn-param``, joined by ``&``, each ``TOKEN:voip`` or ``TOKEN:remote``; a lone
    token may omit the suffix.
    """
    _check_text(prid, "pn-prid", MAX_TOKEN_LENGTH)
    parts = prid.split("&")
    if len(parts) != len(services):
        raise PushParamError(
            f"pn-param declares {len(services)} APNs service(s) ({'&'.join(services)}) "
            f"but pn-prid has {len(parts)} token(s)"
        )
    by_service: dict[str, str] = {}
    for part in parts:
        token, colon, suffix = part.partition(":")
        if colon:
            service = suffix.lower()
            if service not in ("voip", "remote"):
                raise PushParamError(
                    f"pn-prid token suffix must be :voip or :remote, got {_show(':' + suffix)}"
                )
        elif len(parts) > 1:
            raise PushParamError("pn-prid with several tokens needs :voip or :remote after each")
        else:
            service = services[0]
        if service not in services:
            raise PushParamError(
                f"pn-prid names a {service} token but pn-param declares {'&'.join(services)}"
            )
        if service in by_service:
            raise PushParamError(f"pn-prid names two {service} tokens")
        _check_token(token, "apns", "pn-prid token")
        by_service[service] = token
    if "voip" in by_service:
        return by_service["voip"], by_service.get("remote")
    return by_service["remote"], None


# -- legacy Linphone / Flexisip parameters ----------------------------------------------------


def _from_legacy(contact: NameAddr) -> PushInfo | None:
    uri = contact.uri
    param_of = uri.param if isinstance(uri, SipUri) and uri.has_param("pn-tok") else contact.param
    token = param_of("pn-tok")
    if token is None:
        return None  # Flexisip: no pn-tok, no legacy push parameters
    pn_type = param_of("pn-type")
    app_id = param_of("app-id")
    if not token:
        raise PushParamError("pn-tok is empty")
    if not pn_type:
        raise PushParamError("pn-tok needs pn-type (legacy parameters: pn-type, pn-tok, app-id)")
    if not app_id:
        raise PushParamError("pn-tok needs app-id (legacy parameters: pn-type, pn-tok, app-id)")
    provider = LEGACY_PN_TYPES.get(pn_type.lower())
    if provider is None:
        raise PushParamError(
            f"pn-type {_show(pn_type)} is not supported (apple, firebase, google, android, fcm)"
        )
    _check_app_id(app_id, "app-id")
    _check_token(token, provider, "pn-tok")
    if provider == "apns":
        bundle = app_id
        for suffix in (".prod", ".dev"):
            if bundle.endswith(suffix):
                bundle = bundle[: -len(suffix)]
                break
        bundle = bundle.removesuffix(".voip")
        return PushInfo("apns", token, param=app_id, app_id=bundle, platform="ios", source="legacy")
    return PushInfo("fcm", token, param=app_id, app_id=app_id, platform="android", source="legacy")


# -- combining sources ------------------------------------------------------------------------

_TOKEN_NAMES = {"rfc8599": "pn-prid", "x-push": "X-Push device-uid", "legacy": "pn-tok"}
_APP_NAMES = {"rfc8599": "pn-param", "x-push": "X-Push app-id", "legacy": "app-id"}


def _describe_provider(info: PushInfo) -> str:
    if info.source == "rfc8599":
        return f"pn-provider is {info.provider}"
    if info.source == "x-push":
        return f"X-Push device-os is {info.platform} ({info.provider})"
    return f"pn-type means {info.provider}"


def _same_token(provider: str, a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.lower() == b.lower() if provider == "apns" else a == b


def _merge(winner: PushInfo, lower: PushInfo) -> PushInfo:
    """``winner`` completed by a lower-precedence source that must agree with it."""
    if lower.provider != winner.provider:
        raise PushParamError(
            f"push sources disagree: {_describe_provider(winner)} but {_describe_provider(lower)}"
        )
    provider = winner.provider
    named = _same_token(provider, lower.prid, winner.prid) or _same_token(
        provider, lower.prid, winner.alert_token
    )
    second_differs = (
        lower.alert_token is not None
        and winner.alert_token is not None
        and not _same_token(provider, lower.alert_token, winner.alert_token)
    )
    if not named or second_differs:
        raise PushParamError(
            f"push sources disagree: {_TOKEN_NAMES[winner.source]} and "
            f"{_TOKEN_NAMES[lower.source]} name different tokens"
        )
    if winner.app_id is not None and lower.app_id is not None and winner.app_id != lower.app_id:
        raise PushParamError(
            f"push sources disagree about the app: {_APP_NAMES[winner.source]} names "
            f"{_show(winner.app_id)} but {_APP_NAMES[lower.source]} names {_show(lower.app_id)}"
        )
    from_x_push = lower.source == "x-push"
    return replace(
        winner,
        app_id=winner.app_id or lower.app_id,
        platform=winner.platform or lower.platform,
        device_uid=winner.device_uid or lower.device_uid,
        alert_token=winner.alert_token or lower.alert_token,
        allow_call_push=lower.allow_call_push if from_x_push else winner.allow_call_push,
        allow_message_push=lower.allow_message_push if from_x_push else winner.allow_message_push,
    )


# -- value checks -----------------------------------------------------------------------------


def _x_push_flag(fields: dict[str, str], key: str) -> bool:
    value = fields.get(key)
    if value is None:
        return True
    word = value.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise PushParamError(f"X-Push {key} must be true or false, got {_show(value)}")


def _check_text(value: str, what: str, max_length: int) -> None:
    """Not empty, no control character, not longer than ``max_length``."""
    if not value:
        raise PushParamError(f"{what} is empty")
    control = _CONTROL_RE.search(value)
    if control is not None:
        raise PushParamError(
            f"{what} contains a control character "
            f"({_show(control.group())} at position {control.start() + 1})"
        )
    if len(value) > max_length:
        raise PushParamError(f"{what} is too long: {len(value)} characters, at most {max_length}")


def _check_token(token: str, provider: str, what: str) -> None:
    """The token rules of each provider (see the module docstring)."""
    if provider == "webpush":
        _check_text(token, what, MAX_WEBPUSH_URI_LENGTH)
        bad = _first_bad(token, _NOT_URI_CHAR_RE)
        if bad is not None:
            raise PushParamError(f"{what} is not a push subscription URI: {bad}")
        try:
            parts = urlsplit(token)
        except ValueError:  # "Invalid IPv6 URL"
            parts = None
        if parts is None or parts.scheme.lower() not in ("https", "http") or not parts.hostname:
            raise PushParamError(f"{what} is not an absolute https: push subscription URI")
        return
    _check_text(token, what, MAX_TOKEN_LENGTH)
    if provider == "apns":
        bad = _first_bad(token, _NOT_HEX_RE)
        if bad is not None:
            raise PushParamError(f"{what} is not an APNs device token: {bad}")
        digits = len(token)
        if digits % 2 or not _APNS_TOKEN_MIN_DIGITS <= digits <= _APNS_TOKEN_MAX_DIGITS:
            raise PushParamError(
                f"{what} is not an APNs device token: {digits} hex digits, expected an even "
                f"number from {_APNS_TOKEN_MIN_DIGITS} to {_APNS_TOKEN_MAX_DIGITS}"
            )
        return
    bad = _first_bad(token, _NOT_FCM_TOKEN_RE)
    if bad is not None:
        raise PushParamError(f"{what} is not an FCM registration token: {bad}")


def _check_app_id(app_id: str, what: str) -> None:
    _check_text(app_id, what, MAX_NAME_LENGTH)
    if _APP_ID_RE.fullmatch(app_id) is None:
        raise PushParamError(
            f"{what} {_show(app_id)} is not a bundle id or package name (a.b.c of A-Z a-z 0-9 _ -)"
        )


def _first_bad(value: str, bad: re.Pattern[str]) -> str | None:
    """``character "|" at position 12 is not allowed``, or ``None`` when ``bad`` never matches."""
    match = bad.search(value)
    if match is None:
        return None
    return f"character {_show(match.group())} at position {match.start() + 1} is not allowed"


def _show(value: str) -> str:
    """``value`` quoted for a one-line, printable-ASCII warning: escaped and cut at 40."""
    cut = value if len(value) <= _SHOW_LIMIT else value[:_SHOW_LIMIT] + "..."
    return '"' + cut.encode("unicode_escape").decode("ascii") + '"'
