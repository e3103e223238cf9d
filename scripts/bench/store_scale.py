"""Figure 5: the REGISTER relay rate through sipush when its binding store already holds many
bindings, against the same relay with 1,000 bindings (same backend, same run).

Four cases: SQLite with 1,000 and 100,000 bindings, PostgreSQL with 1,000 and 1,000,000.
Target: the rate with the big store >= 80 % of the rate with 1,000 bindings.

Each case gets a store of its own (a SQLite file in a temporary directory; a PostgreSQL
database ``sipush_bench_<pid>_<case>`` created for it and dropped at the end, even on failure or
SIGTERM: ``[store]`` has no PostgreSQL schema key), whose schema ``BindingStore.open`` creates.
The synthetic bindings are then bulk-inserted straight into it, outside the measurement
(``sqlite3`` executemany in one transaction, then a WAL checkpoint; asyncpg
``copy_records_to_table``, then VACUUM ANALYZE and CHECKPOINT): a mix of iOS (X-Push, APNs
token as device id) and Android (RFC 8599, FCM token, ``+sip.instance`` device id) devices,
some AORs with two devices, expiring 25 to 60 minutes from now. AOR user parts are hashes, so
the measured REGISTERs' keys fall all over the existing indexes rather than at one end.

The measured REGISTERs come from SIPp over UDP, one new device per call (an injection CSV:
user, push token; X-Push), so each inserts a new row into the big table. The rate is doubled
from 100/s until a step has a failed call or >= 0.1 % retransmissions, then bisected between
the last rate that held and the first that did not (``--refine`` steps); the highest rate that
held is the figure. The steps of a backend's two cases alternate (1k, big, 1k, big, ...) so
that both see the same machine, whose other load comes and goes. Every step starts fresh peers
(Kamailio as the PBX, then ``sipush serve --config`` naming the case's store); the store keeps
what earlier steps inserted. The rows in the store are counted before and after each step
(``rows_before``, ``rows_after``, ``inserted``).

    python scripts/bench/store_scale.py                # full (about 3-4 minutes)
    python scripts/bench/store_scale.py --smoke        # 1k vs 10k rows, one low rate, ~15 s
    python scripts/bench/store_scale.py --backend sqlite --duration 5 --out /tmp/bench

Writes ``<out>/store_scale.json`` (every step of every case) and ``<out>/store_scale.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    Step,
    machine,
    plot_steps,
    print_table,
    ratio,
    run_load,
    start_kamailio,
    step_rates,
    write_json,
)
from sqlalchemy.engine import URL, make_url

from sipush.store import BindingStore
from sipush.store.tables import bindings
from tests.conftest import SipushProcess, free_port, run_sipush
from tests.peers.sipp import csv_variant, write_injection_csv, xpush_keys

NAME = "store_scale"
TARGET = 0.8
SMALL_ROWS = 1_000
SQLITE_ROWS = 100_000
POSTGRESQL_ROWS = 1_000_000
LADDER = (100, 200, 400, 800, 1600, 3200, 6400)
REFINE_STEPS = 3
DURATION = 3.0
SMOKE_ROWS = (1_000, 10_000)
SMOKE_RATE = 50.0
SMOKE_SECONDS = 2.0
POSTGRESQL_URL = os.environ.get(
    "SIPUSH_TEST_POSTGRESQL_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
DATABASE_PREFIX = "sipush_bench_"
COLUMNS = tuple(column.name for column in bindings.columns)
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Case:
    """One store to measure: a backend, the bindings it holds before the first step, and the
    steps run against it."""

    backend: str  # sqlite | postgresql
    rows: int
    label: str = ""
    url: str = ""  # the SQLAlchemy URL sipush opens
    prefill_s: float = 0.0
    best: float = 0.0
    steps: list[Step] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.label = self.label or f"{BACKEND_NAMES[self.backend]} {size_label(self.rows)}"

    @property
    def tag(self) -> str:
        return re.sub(r"\W+", "_", self.label.lower())


def size_label(rows: int) -> str:
    """1000 -> 1k, 100000 -> 100k, 1000000 -> 1M."""
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


# --- synthetic bindings -------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def synthetic_rows(
    count: int,
    salt: str,
    now: datetime,
    stamp: Callable[[datetime], Any],
    flag: Callable[[bool], Any],
) -> Iterator[tuple[Any, ...]]:
    """``count`` realistic ``bindings`` rows, in ``COLUMNS`` order.

    Even rows are iOS apps with an X-Push header (the APNs VoIP token is the device id), odd
    rows Android apps with RFC 8599 parameters and ``+sip.instance`` (an FCM token); of every
    five devices, two share an AOR. Registered up to 5 minutes ago, expiring 25 to 60 minutes
    from ``now``. ``stamp`` and ``flag`` turn datetimes and booleans into what the driver takes.
    """
    registered = [stamp(now - timedelta(seconds=s)) for s in range(300)]
    expiring = [
        [stamp(now - timedelta(seconds=s) + timedelta(seconds=e)) for e in (1800, 2700, 3600)]
        for s in range(300)
    ]
    yes = flag(True)
    for i in range(count):
        token = _digest(f"{salt}:device:{i}")
        user = "u" + _digest(f"{salt}:user:{i * 4 // 5}")[:12]
        address = f"10.{int(token[0:2], 16)}.{int(token[2:4], 16)}.{int(token[4:6], 16)}"
        port = 1024 + int(token[6:10], 16) % 60000
        ago = i % 300
        if i % 2 == 0:  # iOS, X-Push
            transport = "udp"
            device_id = token
            push: tuple[Any, ...] = (
                "apns", token, None, "com.example.app", "ios", token, None, yes, yes, "x-push"
            )  # fmt: skip
            agent = "BenchPhone/2.4 (iOS 17.5)"
        else:  # Android, RFC 8599
            transport = "tcp"
            device_id = (
                f"<urn:uuid:{token[:8]}-{token[8:12]}-4{token[13:16]}-8{token[17:20]}"
                f"-{token[20:32]}>"
            )
            fcm_token = f"{token[:22]}:APA91b{token}{token[:64]}"
            push = (
                "fcm", fcm_token, "sipush-bench", "com.example.app", "android", None, None,
                yes, yes, "rfc8599",
            )  # fmt: skip
            agent = "BenchPhone/2.4 (Android 14)"
        yield (
            f"sip:{user}@127.0.0.1",
            device_id,
            f"sip:{user}@{address}:{port};transport={transport}",
            expiring[ago][i % 3],
            registered[ago],
            registered[ago],
            transport,
            "127.0.0.1:5060",
            f"{address}:{port}",
            f"{token[32:52]}@{address}",
            1 + i % 50,
            agent,
            *push,
        )


def sqlite_stamp(moment: datetime) -> str:
    """What ``UtcDateTime`` stores on SQLite: fixed-width UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def measured_devices(salt: str, count: int) -> list[tuple[str, str]]:
    """New devices for one step (not among the prefilled ones): (user, 64-hex push token)."""
    return [
        ("u" + _digest(f"{salt}:user:{i}")[:12], _digest(f"{salt}:device:{i}"))
        for i in range(count)
    ]


# --- stores -------------------------------------------------------------------------------------


async def create_schema(url: str) -> None:
    """Let sipush create its schema (``sql/<dialect>/schema.sql``) in an empty database."""
    store = await BindingStore.open(url)
    await store.close()


def prefill_sqlite(path: Path, count: int, salt: str) -> None:
    """Insert ``count`` synthetic bindings in one transaction, then checkpoint the WAL."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        placeholders = ", ".join("?" for _ in COLUMNS)
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            f"INSERT INTO bindings ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            synthetic_rows(count, salt, datetime.now(UTC), sqlite_stamp, int),
        )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def count_sqlite(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM bindings").fetchone()[0])
    finally:
        connection.close()


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(dsn: str, *statements: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _pg_fetchval(dsn: str, query: str) -> Any:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def prefill_postgresql(dsn: str, count: int, salt: str) -> None:
    """COPY ``count`` synthetic bindings in, then leave the table as a store that has been
    running for a while would be: VACUUM ANALYZE (hint bits set, visibility map and planner
    statistics, which autovacuum would otherwise start doing in the middle of the measurement)
    and a CHECKPOINT (so that the gigabyte of WAL the load wrote is not flushed during it)."""
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = synthetic_rows(count, salt, datetime.now(UTC), lambda moment: moment, bool)
        await connection.copy_records_to_table("bindings", records=rows, columns=COLUMNS)
        await connection.execute("VACUUM (ANALYZE) bindings")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):  # superuser/pg_checkpoint
            await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def count_postgresql(dsn: str) -> int:
    return int(asyncio.run(_pg_fetchval(dsn, "SELECT count(*) FROM bindings")))


def _quoted(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"unexpected database name {name!r}")
    return f'"{name}"'


def drop_stale_databases(admin: URL) -> list[str]:
    """Drop the ``sipush_bench_<pid>_*`` databases of earlier runs whose process is gone."""

    async def work() -> list[str]:
        import asyncpg

        connection = await asyncpg.connect(asyncpg_dsn(admin), timeout=10)
        dropped = []
        try:
            names = await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", DATABASE_PREFIX + "%"
            )
            for (name,) in names:
                match = re.fullmatch(DATABASE_PREFIX + r"(\d+)_[a-z0-9_]+", name)
                if match is None or _alive(int(match.group(1))):
                    continue
                await connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
                dropped.append(name)
        finally:
            await connection.close()
        return dropped

    return asyncio.run(work())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def postgresql_database(admin: URL, name: str) -> Iterator[URL]:
    """A new, empty database ``name`` on the server of ``admin``; dropped on exit, always."""
    quoted = _quoted(name)
    asyncio.run(_pg_execute(asyncpg_dsn(admin), f"CREATE DATABASE {quoted}"))
    try:
        yield admin.set(database=name)
    finally:
        asyncio.run(
            _pg_execute(asyncpg_dsn(admin), f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        )


@contextlib.contextmanager
def prepared_store(case: Case, workdir: Path, admin: URL) -> Iterator[Callable[[], int]]:
    """Create the case's store, prefill it, set ``case.url``/``case.prefill_s``; yield a
    function counting its rows. A PostgreSQL database is dropped on exit."""
    salt = f"prefill-{case.tag}"
    if case.backend == "sqlite":
        path = workdir / "store.db"
        case.url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(create_schema(case.url))
        started = time.monotonic()
        prefill_sqlite(path, case.rows, salt)
        case.prefill_s = round(time.monotonic() - started, 2)
        yield lambda: count_sqlite(path)
        return
    with postgresql_database(admin, f"{DATABASE_PREFIX}{os.getpid()}_{case.tag}") as url:
        case.url = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        asyncio.run(create_schema(case.url))
        started = time.monotonic()
        asyncio.run(prefill_postgresql(asyncpg_dsn(url), case.rows, salt))
        case.prefill_s = round(time.monotonic() - started, 2)
        yield lambda: count_postgresql(asyncpg_dsn(url))


# --- one step -----------------------------------------------------------------------------------


@contextlib.contextmanager
def start_sipush_on(workdir: Path, upstream: str, store_url: str) -> Iterator[SipushProcess]:
    """``sipush serve --config`` (``[store] url = store_url``) on a free port, in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "sipush.toml"
    config.write_text(f"[store]\nurl = {json.dumps(store_url)}\n")  # a TOML basic string
    args = ("--config", str(config), "--upstream", upstream, "--log-level", "warning")
    with run_sipush(workdir, free_port(), *args) as proxy:
        yield proxy


def register_step(
    case: Case, workdir: Path, rate: float, duration: float, count_rows: Callable[[], int]
) -> Step:
    """One step with fresh peers: ``rate`` REGISTER/s for ``duration`` s, each a new device;
    its files go in ``<workdir>/step<N>-<rate>``."""
    calls = max(1, round(rate * duration))
    workdir = workdir / f"step{len(case.steps)}-{rate:g}"
    workdir.mkdir(parents=True)
    scenario = csv_variant("register_xpush.xml", ["user", "token"], workdir)
    text = scenario.read_text(encoding="iso-8859-1")
    text = text.replace('<recv response="200" timeout="8000"', '<recv response="200" rtd="true"')
    scenario.write_text(text, encoding="iso-8859-1")  # REGISTER -> 200 is the response time
    salt = f"measured-{case.tag}-{len(case.steps)}"
    inf = write_injection_csv(workdir / "devices.csv", measured_devices(salt, calls))
    keys = xpush_keys("unused", "unused", expires=600)
    rows_before = count_rows()
    with (
        start_kamailio(workdir / "pbx") as pbx,
        start_sipush_on(workdir / "sipush", pbx.upstream("udp"), case.url) as proxy,
    ):
        step = run_load(scenario, f"{proxy.host}:{proxy.port}", workdir / "sipp",
                        rate=rate, duration=duration, inf=inf, keys=keys)  # fmt: skip
        sipush_log = proxy.stderr_text()
    rows_after = count_rows()
    case.steps.append(step)
    record = {
        **step.summary(),
        "rows_before": rows_before,
        "rows_after": rows_after,
        "inserted": rows_after - rows_before,
    }
    if not step.passed:  # what the peers said, since the work directory goes away
        record["sipush_stderr_tail"] = _tail(sipush_log)
        record["sipp_errors_tail"] = _tail(_read_text(workdir / "sipp" / "errors.log"))
    case.records.append(record)
    return step


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 15) -> list[str]:
    return [line[:300] for line in text.splitlines()[-lines:]]


class RateSearch:
    """Which rate to try next for one case: the ladder until a step fails, then ``refine``
    bisections between the last rate that held and the lowest that did not."""

    def __init__(self, ladder: Sequence[float], refine: int) -> None:
        self._ladder = list(ladder)
        self._refine = refine
        self.best = 0.0
        self._failed_at: float | None = None

    def next_rate(self) -> float | None:
        """The next rate to try, or ``None`` when the search is over."""
        if self._failed_at is None:
            return self._ladder.pop(0) if self._ladder else None
        if self._refine <= 0:
            return None
        middle = _round_rate((self.best + self._failed_at) / 2)
        return middle if self.best < middle < self._failed_at else None

    def record(self, step: Step) -> None:
        if self._failed_at is not None:  # a bisection step
            self._refine -= 1
        if step.passed:
            self.best = max(self.best, float(step.rate))
        else:
            self._failed_at = min(step.rate, self._failed_at or step.rate)
            self._ladder = []


def measure_pair(
    cases: Sequence[Case],
    workdirs: Sequence[Path],
    counters: Sequence[Callable[[], int]],
    *,
    rates: Sequence[float],
    refine: int,
    duration: float,
) -> None:
    """Search the best rate of each case, their steps interleaved (small, big, small, ...) so
    that both see the same machine: it is shared, and its load comes and goes."""
    searches = [RateSearch(rates, refine) for _ in cases]
    while True:
        ran = False
        for case, workdir, count_rows, search in zip(
            cases, workdirs, counters, searches, strict=True
        ):
            rate = search.next_rate()
            if rate is None:
                continue
            run_one = functools.partial(
                register_step, case, workdir, duration=duration, count_rows=count_rows
            )
            _, (step,) = step_rates([rate], run_one, case.label)
            search.record(step)
            case.best = search.best
            ran = True
        if not ran:
            return


def _round_rate(rate: float) -> float:
    """Round to a readable rate: a multiple of 10 below 1000/s, of 50 above."""
    unit = 10 if rate < 1000 else 50
    return float(round(rate / unit) * unit)


# --- the run ------------------------------------------------------------------------------------


def run(
    out: Path,
    *,
    smoke: bool = False,
    duration: float = DURATION,
    backends: Sequence[str] = ("sqlite", "postgresql"),
    postgresql_url: str = POSTGRESQL_URL,
    small_rows: int = SMALL_ROWS,
    sqlite_rows: int = SQLITE_ROWS,
    postgresql_rows: int = POSTGRESQL_ROWS,
    rates: Sequence[float] = LADDER,
    refine: int = REFINE_STEPS,
) -> list[dict[str, Any]]:
    """Measure every case; write ``out/store_scale.json`` and ``.png``; return one summary row
    per backend (the big store against the 1k one)."""
    if smoke:
        small_rows, sqlite_rows = SMOKE_ROWS
        postgresql_rows = SMOKE_ROWS[1]
        rates, refine, duration = (SMOKE_RATE,), 0, SMOKE_SECONDS
    admin = make_url(postgresql_url)
    big_rows = {"sqlite": sqlite_rows, "postgresql": postgresql_rows}
    pairs = [(Case(b, small_rows), Case(b, big_rows[b])) for b in backends]
    print(
        f"{NAME}: REGISTER relay over UDP, one new device per call (X-Push), {duration:g} s steps,"
        f" rates {', '.join(f'{r:g}' for r in rates)}/s + {refine} bisection steps"
    )
    if "postgresql" in backends:
        for name in drop_stale_databases(admin):
            print(f"  dropped {name}, left by an earlier run that is gone")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for pair in pairs:
            with contextlib.ExitStack() as stores:
                workdirs, counters = [], []
                for case in pair:
                    workdir = Path(tmp) / case.tag
                    workdir.mkdir()
                    count_rows = stores.enter_context(prepared_store(case, workdir, admin))
                    print(
                        f"  {case.label:<16} prefilled {case.rows:,} bindings in"
                        f" {case.prefill_s:.1f} s ({count_rows():,} rows in the store)",
                        flush=True,
                    )
                    workdirs.append(workdir)
                    counters.append(count_rows)
                measure_pair(
                    pair, workdirs, counters, rates=rates, refine=refine, duration=duration
                )
    elapsed = round(time.monotonic() - started, 1)
    rows = [summary_row(small, big) for small, big in pairs]
    write_json(
        out,
        NAME,
        {
            "name": NAME,
            "smoke": smoke,
            "duration_s": duration,
            "rates": list(rates),
            "refine_steps": refine,
            "criterion": "0 failed calls and < 0.1 % retransmissions",
            "target": f">= {TARGET:.0%}",
            "elapsed_s": elapsed,
            "summary": rows,
            "cases": {
                case.label: {
                    "backend": case.backend,
                    "rows": case.rows,
                    "prefill_s": case.prefill_s,
                    "best_rate": case.best,
                    "steps": case.records,
                }
                for pair in pairs
                for case in pair
            },
            "machine": machine(),
        },
    )
    plot_steps(
        out,
        NAME,
        "Figure 5: REGISTER relay with a small and a big binding store",
        {
            f"{case.label} rows": sorted(case.steps, key=lambda step: step.rate)
            for pair in pairs
            for case in pair
        },
    )
    print(f"{NAME}: {elapsed:g} s")
    return rows


def summary_row(small: Case, big: Case) -> dict[str, Any]:
    achieved = ratio(big.best, small.best)
    return {
        "figure": f"5 store size: {big.label}",
        "measured": f"{big.best:g}/s",
        "baseline": f"{small.best:g}/s with {size_label(small.rows)}",
        "ratio": achieved,
        "target": f">= {TARGET:.0%}".replace("%", " %"),
        "met": achieved >= TARGET,
        "measured_rate": big.best,
        "baseline_rate": small.best,
        "rows": big.rows,
        "baseline_rows": small.rows,
        "prefill_s": big.prefill_s,
        "baseline_prefill_s": small.prefill_s,
    }


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: peers stopped, databases dropped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="1k vs 10k rows, one low rate")
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds per step")
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    parser.add_argument(
        "--postgresql-url", default=POSTGRESQL_URL,
        help="a PostgreSQL the bench may create databases on (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--sqlite-rows", type=int, default=SQLITE_ROWS)
    parser.add_argument("--postgresql-rows", type=int, default=POSTGRESQL_ROWS)
    parser.add_argument("--refine", type=int, default=REFINE_STEPS, help="bisection steps")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON/PNG directory")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    rows = run(
        args.out,
        smoke=args.smoke,
        duration=args.duration,
        backends=args.backend or ("sqlite", "postgresql"),
        postgresql_url=args.postgresql_url,
        sqlite_rows=args.sqlite_rows,
        postgresql_rows=args.postgresql_rows,
        refine=args.refine,
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
