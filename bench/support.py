"""What the paging benchmarks share: throwaway databases, a district of schools, result lines."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import Settings, settings_from_mapping
from bot.models import Account, Person, RoleGrant, Unit
from bot.sandbox import ApiCall, BotApiEmulator
from bot.sandbox.bytecode import compile_packages
from bot.services.page_text import PageSubject
from bot.uow import Database

# Telegram user ids (and private chat ids) of the simulated duty leaders.
FIRST_CHAT = 7_000_001
# What every benchmark page is about.
SUBJECT = PageSubject(
    what="Post unmanned: {post}", ask="Please acknowledge.", what_params={"post": "门卫"}
)


@dataclass(frozen=True)
class Result:
    """One benchmark's verdict and the figures behind it, printed as one line."""

    name: str
    passed: bool
    figures: str
    details: tuple[str, ...] = ()

    def line(self) -> str:
        """The benchmark's line: name, verdict, figures."""
        return f"{self.name:<10} {'PASS' if self.passed else 'FAIL'}  {self.figures}"


@dataclass(frozen=True)
class Options:
    """What the command line passes to every benchmark."""

    database_url: str | None
    verbose: bool
    messages_per_second: float | None = None
    api_latency: float = 0.0

    @property
    def backend(self) -> str:
        """Which database the benchmarks run on, as the line shows it."""
        return "sqlite" if self.database_url is None else make_url(self.database_url).drivername


@dataclass(frozen=True)
class Leader:
    """A school's duty leader who has pressed Start: where an escalation at that school pages."""

    unit_id: int
    person_id: int
    chat_id: int


@asynccontextmanager
async def temporary_database(options: Options) -> AsyncIterator[str]:
    """A fresh, empty database URL: a SQLite file in a temp dir, or zhiban_bench_<random>."""
    if options.database_url is None:
        with tempfile.TemporaryDirectory(prefix="zhiban-bench-") as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return
    base = make_url(options.database_url)
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    name = f"zhiban_bench_{uuid.uuid4().hex[:12]}"
    await _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def bench_settings(database_url: str, *, messages_per_second: float | None = None) -> Settings:
    """The product defaults, on the given database (and, if asked, another overall rate)."""
    data: dict[str, dict[str, object]] = {"database": {"url": database_url}}
    if messages_per_second is not None:
        data["telegram"] = {"messages_per_second": messages_per_second}
    return settings_from_mapping(data, environ={})


async def build_schools(db: Database, count: int) -> list[Leader]:
    """Write county → township → `count` schools, each with one linked duty leader."""
    linked_at = datetime.now(UTC) - timedelta(days=1)
    async with db.uow() as uow:
        session = uow.session
        county = Unit(code="BC", name="基准县教育局", kind="county")
        session.add(county)
        await session.flush()
        county.path = f"/{county.id}/"
        township = Unit(code="BT", name="基准乡中心校", kind="township", parent_id=county.id)
        session.add(township)
        await session.flush()
        township.path = f"{county.path}{township.id}/"
        schools = [
            Unit(code=f"BS{i:05d}", name=f"基准小学{i}", kind="school", parent_id=township.id)
            for i in range(count)
        ]
        session.add_all(schools)
        await session.flush()
        for school in schools:
            school.path = f"{township.path}{school.id}/"
        people = [
            Person(
                staff_no=f"B{i:05d}",
                name=f"带班{i}",
                unit_id=_id(school.id),
                phone=f"1390000{i:04d}",
            )
            for i, school in enumerate(schools)
        ]
        session.add_all(people)
        await session.flush()
        leaders = [
            Leader(unit_id=_id(school.id), person_id=_id(person.id), chat_id=FIRST_CHAT + i)
            for i, (school, person) in enumerate(zip(schools, people, strict=True))
        ]
        for leader in leaders:
            session.add(
                RoleGrant(person_id=leader.person_id, role="duty_leader", unit_id=leader.unit_id)
            )
            session.add(
                Account(
                    person_id=leader.person_id,
                    external_id=leader.chat_id,
                    chat_id=leader.chat_id,
                    linked_at=linked_at,
                )
            )
        await uow.commit()
    return leaders


@dataclass(frozen=True)
class School:
    """A school of the storm district: its duty leader, principal and one reporter, by chat."""

    unit_id: int
    leader_chat: int
    principal_chat: int
    reporter_chat: int


@dataclass(frozen=True)
class District:
    """County → townships → schools, with the county duty desk's chat."""

    schools: list[School]
    desk_chat: int
    names: dict[int, str]  # chat id → display name, for the emulator's users


# Chat id ranges of the storm district's people (leaders use FIRST_CHAT's range elsewhere).
LEADER_CHAT, PRINCIPAL_CHAT, REPORTER_CHAT, DESK_CHAT = 7_100_001, 7_200_001, 7_300_001, 7_400_001


async def build_district(db: Database, *, schools: int, townships: int) -> District:
    """Write a county with one duty desk, `townships` townships and `schools` schools.

    Schools are spread evenly over the townships; each township has an officer (unlinked, so
    nobody there is paged by chat), each school a duty leader, a principal and a member of
    staff who reports, all linked. Reporters read English so the benchmark can press buttons
    by their English labels; everyone else reads the default language.
    """
    linked_at = datetime.now(UTC) - timedelta(days=1)
    names: dict[int, str] = {}
    async with db.uow() as uow:
        session = uow.session
        county = Unit(code="SC", name="风暴县教育局", kind="county")
        session.add(county)
        await session.flush()
        county.path = f"/{county.id}/"
        towns = [
            Unit(code=f"ST{t:03d}", name=f"风暴镇{t}", kind="township", parent_id=county.id)
            for t in range(townships)
        ]
        session.add_all(towns)
        await session.flush()
        for town in towns:
            town.path = f"{county.path}{town.id}/"
        units = [
            Unit(
                code=f"SS{i:04d}",
                name=f"风暴小学{i}",
                kind="school",
                parent_id=towns[i % townships].id,
            )
            for i in range(schools)
        ]
        session.add_all(units)
        await session.flush()
        parents = {town.id: town for town in towns}
        for unit in units:
            unit.path = f"{parents[unit.parent_id].path}{unit.id}/"

        phones = itertools.count(13_100_000_000)

        def person(staff_no: str, name: str, unit: Unit, language: str | None = None) -> Person:
            return Person(
                staff_no=staff_no,
                name=name,
                unit_id=_id(unit.id),
                phone=str(next(phones)),
                language=language,
            )

        desk = person("SD0001", "县值班室", county)
        officers = [person(f"SO{t:04d}", f"专干{t}", town) for t, town in enumerate(towns)]
        staff = [
            (
                person(f"SL{i:04d}", f"带班{i}", unit),
                person(f"SP{i:04d}", f"校长{i}", unit),
                person(f"SR{i:04d}", f"Reporter {i}", unit, language="en"),
            )
            for i, unit in enumerate(units)
        ]
        session.add_all([desk, *officers, *(p for trio in staff for p in trio)])
        await session.flush()

        def grant(who: Person, role: str, unit: Unit, chat: int | None) -> None:
            session.add(RoleGrant(person_id=_id(who.id), role=role, unit_id=_id(unit.id)))
            if chat is not None:
                names[chat] = who.name
                session.add(
                    Account(
                        person_id=_id(who.id), external_id=chat, chat_id=chat, linked_at=linked_at
                    )
                )

        grant(desk, "desk", county, DESK_CHAT)
        for officer, town in zip(officers, towns, strict=True):
            grant(officer, "officer", town, None)
        found = []
        for i, (unit, (leader, principal, reporter)) in enumerate(zip(units, staff, strict=True)):
            grant(leader, "duty_leader", unit, LEADER_CHAT + i)
            grant(principal, "principal", unit, PRINCIPAL_CHAT + i)
            grant(reporter, "staff", unit, REPORTER_CHAT + i)
            found.append(
                School(_id(unit.id), LEADER_CHAT + i, PRINCIPAL_CHAT + i, REPORTER_CHAT + i)
            )
        await uow.commit()
    return District(found, DESK_CHAT, names)


def _id(value: int | None) -> int:
    if value is None:
        raise RuntimeError("a flushed row has no id")
    return value


def press_start(emulator: BotApiEmulator, leaders: Iterable[Leader]) -> None:
    """Make each leader's private chat one that has started the bot, without sending /start.

    Sending /start for hundreds of users would make the bot answer each of them and spend the
    very rate limit a benchmark measures, so the chat is marked started directly.
    """
    for leader in leaders:
        emulator.user(leader.chat_id, f"带班{leader.chat_id - FIRST_CHAT}")
        emulator.world.chats[leader.chat_id].started = True


class WallClock:
    """Converts the emulator's monotonic call times to UTC, from one paired reading."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._mono = time.monotonic()

    def utc(self, monotonic: float) -> datetime:
        """The UTC moment of a `time.monotonic()` reading."""
        return datetime.fromtimestamp(self._wall + (monotonic - self._mono), tz=UTC)


def sends_to(emulator: BotApiEmulator, chats: set[int], *, status: int = 200) -> list[ApiCall]:
    """The sendMessage calls to `chats` answered with `status`, in arrival order."""
    found = []
    for call in list(emulator.calls):
        if call.method.lower() != "sendmessage" or call.status != status:
            continue
        try:
            chat_id = int(call.params.get("chat_id", ""))
        except (TypeError, ValueError):
            continue
        if chat_id in chats:
            found.append(call)
    return sorted(found, key=lambda call: call.at)  # the log is in order of answers


async def wait_for_sends(
    emulator: BotApiEmulator, chats: set[int], *, within: float
) -> list[ApiCall]:
    """Wait until every chat in `chats` got a message (or `within` seconds passed); return them."""
    deadline = time.monotonic() + within
    while True:
        sent = sends_to(emulator, chats)
        if len({int(c.params["chat_id"]) for c in sent}) >= len(chats):
            return sent
        if time.monotonic() >= deadline:
            return sent
        await asyncio.sleep(0.05)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of non-empty `values`."""
    ordered = sorted(values)
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def peak_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most calls that fall in any `window` seconds (as Telegram would count them)."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def process_config(url: str, emulator: BotApiEmulator) -> str:
    """The config.toml of a `python -m bot run` on `url` talking to `emulator` (no ops port)."""
    return (
        f'[database]\nurl = "{url}"\n'
        f'[telegram]\napi_base_url = "{emulator.base_url}"\n'
        f'api_file_url = "{emulator.base_file_url}"\nbot_username = "zhiban_bench_bot"\n'
        "[ops]\nport = 0\n"
    )


def start_process(config: Path, folder: Path, token: str) -> subprocess.Popen[bytes]:
    """Start `python -m bot run` with `config`, its output in `folder/run.log`.

    The packages are byte-compiled first, as an install does (bot/sandbox/bytecode.py).
    """
    compile_packages()
    env = dict(os.environ, ZHIBAN_TELEGRAM_TOKEN=token)
    env.pop("ZHIBAN_LINK_SECRET", None)
    with (folder / "run.log").open("wb") as log:  # the process keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
