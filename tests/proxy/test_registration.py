"""The pure change-set function: what a PBX's 2xx to a relayed REGISTER commits (issue #3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sipush.proxy.registration import (
    PendingRegistration,
    RegisteredDevice,
    identify,
    registration_changes,
)
from sipush.push.params import push_info_from_register
from sipush.sip import Request, Response, parse_message
from sipush.store import Binding
from sipush.transport.flow import Flow

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
FLOW = Flow("udp", ("127.0.0.1", 5060), ("192.0.2.7", 40000))
TOKEN = "ab" * 32


def register(*contacts: str, x_push: str | None = None, expires: str = "300") -> Request:
    lines = [
        "REGISTER sip:example.org SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.7:40000;branch=z9hG4bKr1",
        "From: <sip:alice@example.org>;tag=1", "To: <sip:alice@example.org>",
        "Call-ID: reg-1", "CSeq: 7 REGISTER", f"Expires: {expires}",
        *(f"Contact: {c}" for c in contacts),
    ]  # fmt: skip
    if x_push:
        lines.append(f"X-Push: {x_push}")
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def ok(*contacts: str) -> Response:
    lines = [
        "SIP/2.0 200 OK", "Via: SIP/2.0/UDP 192.0.2.7:40000;branch=z9hG4bKr1",
        "From: <sip:alice@example.org>;tag=1", "To: <sip:alice@example.org>;tag=2",
        "Call-ID: reg-1", "CSeq: 7 REGISTER", *(f"Contact: {c}" for c in contacts),
    ]  # fmt: skip
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Response)
    return message


def pending(request: Request) -> PendingRegistration:
    devices = []
    for contact in request.contacts:
        push = push_info_from_register(request, contact)
        devices.append(RegisteredDevice(contact, identify(contact, push), push))
    return PendingRegistration(
        "sip:alice@example.org", FLOW, tuple(devices), request.contact_is_star, "reg-1", 7, None
    )


def test_the_pbx_answer_is_the_truth() -> None:
    request = register("<sip:alice@192.0.2.7:40000>", x_push=f"device-os=ios;device-uid={TOKEN}")
    changes = registration_changes(
        pending(request), ok("<sip:alice@192.0.2.7:40000>;expires=120"), NOW
    )
    [binding] = changes.upserts
    assert binding.device_id == TOKEN and binding.expires_at == NOW + timedelta(seconds=120)
    assert (
        binding.contact == "sip:alice@192.0.2.7:40000" and binding.flow_remote == "192.0.2.7:40000"
    )
    assert binding.push is not None and binding.push.provider == "apns" and changes.removals == ()


def test_a_contact_missing_from_the_2xx_or_with_expires_0_is_removed() -> None:
    request = register("<sip:alice@192.0.2.7:40000>", x_push=f"device-os=ios;device-uid={TOKEN}")
    assert registration_changes(pending(request), ok(), NOW).removals == (
        ("sip:alice@example.org", TOKEN),
    )
    zero = ok("<sip:alice@192.0.2.7:40000>;expires=0")
    assert registration_changes(pending(request), zero, NOW).removals == (
        ("sip:alice@example.org", TOKEN),
    )


def test_star_removes_every_binding_of_the_aor() -> None:
    changes = registration_changes(pending(register("*", expires="0")), ok(), NOW)
    assert changes.removals == (("sip:alice@example.org", "*"),) and changes.upserts == ()


def test_instance_identifies_the_device_even_when_the_address_changed() -> None:
    contact = '<sip:alice@198.51.100.3:5555>;+sip.instance="<urn:uuid:0A0B>"'
    changes = registration_changes(pending(register(contact)), ok(contact + ";expires=60"), NOW)
    assert [b.device_id for b in changes.upserts] == ["urn:uuid:0a0b"]


def test_a_deregister_without_push_info_finds_the_existing_binding_by_contact() -> None:
    existing = registration_changes(
        pending(
            register("<sip:alice@192.0.2.7:40000>", x_push=f"device-os=ios;device-uid={TOKEN}")
        ),
        ok("<sip:alice@192.0.2.7:40000>;expires=300"),
        NOW,
    ).upserts
    off = register("<sip:alice@192.0.2.7:40000>;expires=0", expires="0")
    changes = registration_changes(pending(off), ok(), NOW, existing)
    assert changes.removals == (("sip:alice@example.org", TOKEN),)


def test_a_refresh_without_push_info_keeps_the_token() -> None:
    existing: tuple[Binding, ...] = registration_changes(
        pending(
            register("<sip:alice@192.0.2.7:40000>", x_push=f"device-os=ios;device-uid={TOKEN}")
        ),
        ok("<sip:alice@192.0.2.7:40000>;expires=300"),
        NOW,
    ).upserts
    refresh = register("<sip:alice@192.0.2.7:40000>")
    [binding] = registration_changes(
        pending(refresh), ok("<sip:alice@192.0.2.7:40000>;expires=300"), NOW, existing
    ).upserts
    assert binding.device_id == TOKEN and binding.push is not None and binding.push.prid == TOKEN
