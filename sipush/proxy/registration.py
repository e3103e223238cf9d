"""Registration bookkeeping: what a relayed REGISTER asked for, and what the PBX's 2xx commits.

Bindings are committed only on the PBX's 2xx (ARCHITECTURE.md, idea 4): a REGISTER that is
challenged or rejected changes nothing. :func:`registration_changes` is the pure function that
turns (the REGISTER as sipush relayed it, the PBX's 2xx, now) into a :class:`ChangeSet` which the
store applies in one transaction:

* each device of the REGISTER whose Contact the 2xx lists with a non-zero expiry is upserted
  with the Contact and expiry *the PBX returned* (§10.3 step 8: the registrar's answer is the
  truth; a device that re-registers from a new address replaces its binding, since the store is
  keyed by AOR + device);
* a device whose Contact is missing from the 2xx, or listed with ``expires=0``, is removed;
* ``Contact: *`` (with ``Expires: 0``, §10.2.2) removes every binding of the AOR.

A device is identified by ``+sip.instance`` (RFC 5626), else X-Push ``device-uid``, else
``pn-prid``. A Contact with none of these (a de-REGISTER or a refresh that does not repeat the
push information) is matched against the AOR's existing bindings by Contact URI: it then keeps
that binding's device identity and push information. A Contact that matches nothing is
identified by its URI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sipush.errors import ParseError
from sipush.push.params import PushInfo, device_id
from sipush.sip import NameAddr, Response, SipUri, parse_uri
from sipush.store import Binding, ChangeSet
from sipush.transport.flow import Flow

DEFAULT_EXPIRES = 3600  # §10.2.1.1 when neither the Contact nor the Expires header says


@dataclass(frozen=True)
class RegisteredDevice:
    """One Contact of a relayed REGISTER and the push information it carried."""

    contact: NameAddr
    device_id: str
    push: PushInfo | None


@dataclass(frozen=True)
class PendingRegistration:
    """A REGISTER relayed upstream, waiting for the PBX's final answer."""

    aor: str
    flow: Flow
    devices: tuple[RegisteredDevice, ...]
    remove_all: bool  # Contact: *
    call_id: str
    cseq: int
    user_agent: str | None

    @property
    def providers(self) -> tuple[str, ...]:
        """The push providers of the devices, each once, in order (for Feature-Caps)."""
        seen: dict[str, None] = {}
        for device in self.devices:
            if device.push is not None:
                seen.setdefault(device.push.provider, None)
        return tuple(seen)


def identify(contact: NameAddr, push: PushInfo | None) -> str:
    """The device identity of a Contact: instance, device-uid, pn-prid, else the Contact URI."""
    return device_id(contact, push) or str(contact.uri)


def registration_changes(
    pending: PendingRegistration,
    response: Response,
    now: datetime,
    existing: Sequence[Binding] = (),
) -> ChangeSet:
    """The bindings a 2xx to ``pending`` commits, given the AOR's ``existing`` bindings (see the
    module docstring)."""
    if pending.remove_all:
        return ChangeSet(removals=((pending.aor, "*"),))
    header_expires = response.expires
    returned = response.contacts
    upserts: list[Binding] = []
    removals: list[tuple[str, str]] = []
    for device in pending.devices:
        device = _with_known_identity(device, existing)
        match = _matching_contact(device, returned)
        expires = None
        if match is not None:
            expires = match.expires if match.expires is not None else header_expires
            if expires is None:
                expires = (
                    device.contact.expires
                    if device.contact.expires is not None
                    else DEFAULT_EXPIRES
                )
        if match is None or not expires:
            removals.append((pending.aor, device.device_id))
            continue
        upserts.append(
            Binding(
                aor=pending.aor,
                device_id=device.device_id,
                contact=str(match.uri),
                expires_at=now + timedelta(seconds=expires),
                registered_at=now,
                created_at=now,  # the store keeps the first value when the binding exists
                transport=pending.flow.transport,
                flow_local=_address(pending.flow.local),
                flow_remote=_address(pending.flow.remote),
                call_id=pending.call_id,
                cseq=pending.cseq,
                user_agent=pending.user_agent,
                push=device.push,
            )
        )
    return ChangeSet(upserts=tuple(upserts), removals=tuple(removals))


def _with_known_identity(device: RegisteredDevice, existing: Sequence[Binding]) -> RegisteredDevice:
    """A Contact identified only by its URI takes the identity and push information of the
    existing binding with the same Contact, if there is one."""
    if device.device_id != str(device.contact.uri):
        return device
    key = _uri_key(device.contact.uri)
    for binding in existing:
        try:
            same = _uri_key(parse_uri(binding.contact)) == key
        except ParseError:
            continue
        if same:
            return RegisteredDevice(device.contact, binding.device_id, device.push or binding.push)
    return device


def _matching_contact(device: RegisteredDevice, returned: tuple[NameAddr, ...]) -> NameAddr | None:
    """The Contact of the 2xx that is this device's: same +sip.instance, else same URI (§19.1.4,
    compared on user, host, port and the pn-* parameters, which registrars keep unchanged)."""
    instance = device.contact.instance
    if instance is not None:
        for candidate in returned:
            if candidate.instance is not None and candidate.instance.lower() == instance.lower():
                return candidate
    key = _uri_key(device.contact.uri)
    for candidate in returned:
        if _uri_key(candidate.uri) == key:
            return candidate
    return None


def _uri_key(uri: object) -> tuple[object, ...]:
    if not isinstance(uri, SipUri):
        return (str(uri),)
    pn = tuple(uri.param(name) for name in ("pn-provider", "pn-prid", "pn-param", "pn-tok"))
    return (uri.scheme, uri.user, uri.host.lower(), uri.effective_port, pn)


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
