"""A local APNs service (sipush.testing.apns_emulator) on its own event-loop thread, and a
``sipush serve`` configured to push through it, for the synchronous end-to-end wake tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipush.testing.apns_emulator import ApnsEmulator, RecordedRequest
from tests.push.test_apns_emulator import Pki, make_pki

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
BUNDLE = "com.example.app"


@dataclass
class Apns:
    """The emulator, driven from the test thread."""

    emulator: ApnsEmulator
    loop: asyncio.AbstractEventLoop
    pki: Pki

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a synchronous emulator method on its loop thread."""

        async def run() -> Any:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def requests(self) -> list[RecordedRequest]:
        return list(self.call(lambda: list(self.emulator.requests)))

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{count} push(es) expected, the emulator got {self.requests()}")

    def config(self, *, hold_timeout: float = 10.0, push_extra: str = "") -> str:
        """The [push] part of a sipush config that pushes through this emulator
        (``push_extra``: more ``[push]`` keys, one per line)."""
        return (
            f"[push]\nhold_timeout = {hold_timeout}\n{push_extra}\n[[push.apns]]\n"
            f'app_id = "{BUNDLE}"\nteam_id = "{TEAM_ID}"\nkey_id = "{KEY_ID}"\n'
            f'key_file = "{self.pki.provider_key}"\nendpoint = "{self.emulator.endpoint}"\n'
            f'ca_file = "{self.pki.ca_file}"\n'
        )


@contextlib.contextmanager
def apns_emulator(workdir: Path) -> Iterator[Apns]:
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="apns-emulator", daemon=True)
    thread.start()
    emulator = ApnsEmulator(pki.server_context(certificate_auth=False))
    asyncio.run_coroutine_threadsafe(emulator.__aenter__(), loop).result(10)
    apns = Apns(emulator, loop, pki)
    apns.call(emulator.add_key, TEAM_ID, KEY_ID, pki.provider_key.read_bytes())
    try:
        yield apns
    finally:
        asyncio.run_coroutine_threadsafe(emulator.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


FCM_PROJECT = "demo-project"


@dataclass
class Fcm:
    """The FCM emulator on its own loop thread, driven from the test thread."""

    emulator: Any  # sipush.testing.fcm_emulator.FcmEmulator
    loop: asyncio.AbstractEventLoop
    ca_file: str
    account_file: str

    def requests(self) -> list[Any]:
        async def run() -> list[Any]:
            return list(self.emulator.requests)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{count} FCM message(s) expected, got {self.requests()}")

    def config(self) -> str:
        """A ``[[push.fcm]]`` table for a sipush config that pushes through this emulator."""
        return (
            f'\n[[push.fcm]]\nproject_id = "{FCM_PROJECT}"\n'
            f'service_account_file = "{self.account_file}"\nendpoint = "{self.emulator.url}"\n'
            f'token_uri = "{self.emulator.token_uri}"\nca_file = "{self.ca_file}"\n'
        )


@contextlib.contextmanager
def fcm_emulator(workdir: Path) -> Iterator[Fcm]:
    import trustme

    from sipush.testing.fcm_emulator import FcmEmulator, make_service_account

    workdir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = (
        str(workdir / name) for name in ("fcm-cert.pem", "fcm-key.pem", "fcm-ca.pem")
    )
    server.cert_chain_pems[0].write_to_path(cert)
    server.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    account = make_service_account(FCM_PROJECT)
    account_file = workdir / "service-account.json"
    account.write(account_file)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fcm-emulator", daemon=True)
    thread.start()
    emulator = FcmEmulator(cert, key)
    asyncio.run_coroutine_threadsafe(emulator.__aenter__(), loop).result(10)

    async def add() -> None:
        emulator.add_service_account(account.client_email, account.public_key_pem)

    asyncio.run_coroutine_threadsafe(add(), loop).result(5)
    try:
        yield Fcm(emulator, loop, ca_file, str(account_file))
    finally:
        asyncio.run_coroutine_threadsafe(emulator.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
