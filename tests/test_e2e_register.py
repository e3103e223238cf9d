"""Apps register through sipush to a real Kamailio registrar (issue #3 acceptance).

Kamailio's location table must show each contact with a Path to sipush (RFC 3327), and
``sipush bindings list --json`` each device with its parsed push information; bindings are
committed only on the PBX's 2xx (digest auth: the 401 changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_kit import Deployment, deployment
from tests.peers.pjsua2_app import start_app
from tests.peers.sipp import expires0_keys, pn_keys, run_sipp, xpush_keys

APNS_TOKEN = "3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"
FCM_TOKEN = (
    "dXNlcl90b2tlbg:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl"
    "7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZX"
    "Kqpc8FXKmhX94kIxQ"
)


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(Path(tmp_path_factory.mktemp("e2e-register"))) as dep:
        yield dep


def _path_to_sipush(dep: Deployment, path: str | None) -> bool:
    return path is not None and f"@127.0.0.1:{dep.port}" in path and ";lr" in path


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_registers_with_x_push(pbx: Deployment, transport: str, tmp_path: Path) -> None:
    user = f"xp-{transport}"
    result = run_sipp(
        "register_xpush.xml", pbx.address, workdir=tmp_path, transport=transport,
        keys=xpush_keys(user, APNS_TOKEN, app_id="com.example.app"),
    )  # fmt: skip
    ok = result.final_responses()[-1]
    assert ok.status == 200 and ok.header("Feature-Caps") == '*;+sip.pns="apns"'
    contacts = pbx.pbx.wait_for_contacts(user, 1)
    assert _path_to_sipush(pbx, contacts[0].path), contacts
    [binding] = pbx.bindings(f"sip:{user}@127.0.0.1")
    assert binding["transport"] == transport and binding["device_id"] == APNS_TOKEN
    push = binding["push"]
    assert (push["provider"], push["platform"], push["prid"], push["app_id"]) == (
        "apns", "ios", APNS_TOKEN, "com.example.app",
    )  # fmt: skip
    assert push["allow_call_push"] is True and push["source"] == "x-push"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_registers_with_rfc8599_params(
    pbx: Deployment, transport: str, tmp_path: Path
) -> None:
    user = f"pn-{transport}"
    keys = pn_keys(user, FCM_TOKEN, provider="fcm", param="my-firebase-project")
    result = run_sipp(
        "register_pn.xml", pbx.address, workdir=tmp_path, transport=transport, keys=keys
    )
    assert result.final_responses()[-1].header("Feature-Caps") == '*;+sip.pns="fcm"'
    contacts = pbx.pbx.wait_for_contacts(user, 1)
    assert _path_to_sipush(pbx, contacts[0].path)
    assert contacts[0].uri_params.get("pn-prid") == FCM_TOKEN  # the PBX keeps RFC 8599 params
    [binding] = pbx.bindings(f"sip:{user}@127.0.0.1")
    assert binding["device_id"] == f"urn:uuid:{keys['instance']}"
    assert (binding["push"]["provider"], binding["push"]["param"]) == ("fcm", "my-firebase-project")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("push", ["x-push", "rfc8599"])
def test_pjsua2_app_registers_through_sipush(
    pbx: Deployment, transport: str, push: str, tmp_path: Path
) -> None:
    user = f"app-{transport}-{push}"
    if push == "x-push":
        options: dict[str, str] = {
            "x_push": f"device-os=android;device-uid={FCM_TOKEN};app-id=com.example.droid"
        }
    else:
        options = {"pn_provider": "fcm", "pn_prid": FCM_TOKEN, "pn_param": "com.example.droid"}
    with start_app(
        tmp_path, user=user, registrar=f"sip:{pbx.pbx.address}", proxy=pbx.proxy_uri(transport),
        transport=transport, **options,  # type: ignore[arg-type]
    ) as app:  # fmt: skip
        registered = app.events_named("registered")[-1]  # start_app waited for it
        assert (
            registered["code"] == 200 and 'Feature-Caps: *;+sip.pns="fcm"' in registered["response"]
        )
        contacts = pbx.pbx.wait_for_contacts(user, 1)
        assert _path_to_sipush(pbx, contacts[0].path)
        [binding] = pbx.bindings(f"sip:{user}@127.0.0.1")
        assert binding["transport"] == transport and binding["push"]["provider"] == "fcm"
        assert binding["push"]["prid"] == FCM_TOKEN and binding["push"]["source"] == push
        if push == "x-push":
            assert binding["push"]["app_id"] == "com.example.droid"
        else:
            assert binding["push"]["param"] == "com.example.droid"


def test_reregistration_from_a_new_port_replaces_the_binding(
    pbx: Deployment, tmp_path: Path
) -> None:
    user = "mover"
    ports = []
    for attempt in range(2):
        result = run_sipp(
            "register_xpush.xml", pbx.address, workdir=tmp_path / str(attempt),
            keys=xpush_keys(user, APNS_TOKEN),
        )  # fmt: skip
        ports.append(result.command[result.command.index("-p") + 1])
    assert ports[0] != ports[1]
    [binding] = pbx.bindings(f"sip:{user}@127.0.0.1")  # one device, one binding: the new one
    assert binding["flow_remote"] == f"127.0.0.1:{ports[1]}"
    assert f":{ports[1]};" in binding["contact"] + ";"


def test_three_devices_then_one_deregisters(pbx: Deployment, tmp_path: Path) -> None:
    user = "family"
    tokens = [f"{n:02x}" * 32 for n in (1, 2, 3)]
    ports = []
    for n, token in enumerate(tokens):
        result = run_sipp(
            "register_xpush.xml",
            pbx.address,
            workdir=tmp_path / f"r{n}",
            keys=xpush_keys(user, token),
        )
        ports.append(result.command[result.command.index("-p") + 1])
    bindings = pbx.bindings(f"sip:{user}@127.0.0.1")
    assert sorted(b["device_id"] for b in bindings) == sorted(tokens)
    # Expires: 0 for the second device's contact (RFC 3261 §10.2.2)
    contact = f"<sip:{user}@127.0.0.1:{ports[1]};transport=UDP>"
    run_sipp(
        "register_expires0.xml",
        pbx.address,
        workdir=tmp_path / "off",
        keys=expires0_keys(user, contact),
    )
    remaining = sorted(b["device_id"] for b in pbx.bindings(f"sip:{user}@127.0.0.1"))
    assert remaining == sorted([tokens[0], tokens[2]])


@pytest.mark.parametrize(
    ("xpush_more", "device_os", "token", "warning"),
    [
        (";allow-call-push=maybe", "ios", APNS_TOKEN, "allow-call-push must be true or false"),
        ("", "ios", "", "device-uid"),
        ("", "windows", APNS_TOKEN, "device-os"),
        ("", "ios", "ab" * 300, "too long"),
    ],
)
def test_malformed_x_push_gets_400_with_a_warning(
    pbx: Deployment, tmp_path: Path, xpush_more: str, device_os: str, token: str, warning: str
) -> None:
    user = "broken"
    keys = xpush_keys(user, token, device_os=device_os, xpush_more=xpush_more, expect=400)
    result = run_sipp("register_xpush.xml", pbx.address, workdir=tmp_path, keys=keys)
    final = result.final_responses()[-1]
    assert final.status == 400 and warning in (final.header("Warning") or ""), final.header(
        "Warning"
    )
    assert pbx.bindings(f"sip:{user}@127.0.0.1") == []
    assert pbx.pbx.contacts(user) == [], "nothing was relayed to the PBX"
    # and sipush goes on serving: the same device with valid push info registers
    run_sipp(
        "register_xpush.xml",
        pbx.address,
        workdir=tmp_path / "ok",
        keys=xpush_keys(user, APNS_TOKEN),
    )
    assert [b["device_id"] for b in pbx.bindings(f"sip:{user}@127.0.0.1")] == [APNS_TOKEN]
    pbx.bindings()  # the CLI still reads the store
    run_sipp(
        "register_expires0.xml", pbx.address, workdir=tmp_path / "off", keys=expires0_keys(user)
    )


@pytest.mark.parametrize(
    ("provider", "prid", "param", "warning"),
    [
        ("carrier-pigeon", APNS_TOKEN, None, "pn-provider"),
        ("apns", "", "ABCDE12345.com.example.app.voip", "pn-prid"),
        ("apns", "not-hex!", "ABCDE12345.com.example.app.voip", "pn-prid"),
    ],
)
def test_malformed_pn_params_get_400_with_a_warning(
    pbx: Deployment, tmp_path: Path, provider: str, prid: str, param: str | None, warning: str
) -> None:
    keys = pn_keys("brokenpn", prid, provider=provider, param=param, expect=400)
    result = run_sipp("register_pn.xml", pbx.address, workdir=tmp_path, keys=keys)
    final = result.final_responses()[-1]
    assert final.status == 400 and warning in (final.header("Warning") or ""), final.header(
        "Warning"
    )


def test_digest_auth_challenge_is_relayed_and_stores_nothing(tmp_path: Path) -> None:
    with deployment(tmp_path / "auth", auth=True) as dep:
        user = "secure"
        challenged = run_sipp(
            "register_xpush.xml", dep.address, workdir=tmp_path / "a",
            keys=xpush_keys(user, APNS_TOKEN, expect=401),
        )  # fmt: skip
        assert challenged.final_responses()[-1].status == 401
        assert dep.bindings() == [], "a challenged REGISTER stores nothing"
        run_sipp(
            "register_xpush.xml", dep.address, workdir=tmp_path / "b",
            keys=xpush_keys(user, APNS_TOKEN), username=user, password="secret",
        )  # fmt: skip
        [binding] = dep.bindings()
        assert binding["aor"] == f"sip:{user}@127.0.0.1" and binding["push"]["prid"] == APNS_TOKEN
