"""Several `zhiban run` processes: one takes updates, a standby takes over from a killed leader.

PostgreSQL: three instances on one database; the leader is killed with SIGKILL in the middle of
a /report, a standby takes over within 10 s and finishes the conversation where it stood, and
the incident and its pages exist once, with two senders running; when the new leader's lock
session ends, it steps down and the instances elect a leader again. In webhook mode only the
leader listens, and a standby takes the webhook over. SQLite: a second instance on
the same file is refused in one line while the first goes on.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import build_district
from processes import BotProcess
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from test_run_process import process_env

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.election import LEADER_LOCK_KEY
from bot.models import Incident, OutboxMessage, OutboxStatus, Person
from bot.sandbox import BotApiEmulator
from bot.uow import Database

NUMBER = re.compile(r"Reported: (\d{8}-\d{3})\. The leaders of 石坝小学 are being paged\.")
STANDING_BY = "standby: another instance leads"


def write_config(path: Path, url: str, emu: BotApiEmulator, telegram: str = "") -> Path:
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        # No ops port: several instances (and other tests) run on this machine at once.
        "[ops]\nport = 0\n"
        f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n'
        f"{telegram}",
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until_logged(bot: BotProcess, text: str, timeout: float = 30) -> None:  # noqa: ASYNC109
    """Wait until the process has written a log line containing `text`."""
    async with asyncio.timeout(timeout):
        while not any(text in line for line in bot.lines):
            if bot.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
    assert any(text in line for line in bot.lines), "".join(bot.lines)


async def pages_all_sent(db: Database) -> int:
    """Wait until the outbox holds pages and every one is sent; return how many."""
    async with asyncio.timeout(20):
        while True:
            async with db.read() as uow:
                statuses = (
                    await uow.session.exec(
                        select(OutboxMessage.status).where(col(OutboxMessage.page_id).is_not(None))
                    )
                ).all()
            if statuses and all(status == OutboxStatus.SENT for status in statuses):
                return len(statuses)
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_standby_finishes_the_report_a_killed_leader_began_and_pages_go_out_once(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(create_engine(DatabaseSettings(url=database_url)))
    bots: list[BotProcess] = []
    async with BotApiEmulator() as emu:
        try:
            district = await build_district(db)
            async with db.uow() as uow:
                await uow.session.execute(
                    sa.update(Person)
                    .where(col(Person.id) == district.people["staff"])
                    .values(language="en")
                )
                await uow.commit()
            # Everyone linked has opened the bot (their invite link did that) before it starts:
            # what the bot sends at start (e.g. the daily report's prompt between 15:00 and 17:00
            # local) must not find their chats closed and mark them unreachable.
            users = {key: emu.user(chat, key) for key, chat in district.chats.items()}
            for chat in district.chats.values():
                emu.world.chats[chat].started = True
            env = process_env(write_config(tmp_path / "config.toml", database_url, emu))
            bots.append(await BotProcess.start(env, tmp_path))
            leader = bots[0]
            await leader.until_taking_updates()
            bots += [await BotProcess.start(env, tmp_path) for _ in range(2)]
            for standby in bots[1:]:
                await until_logged(standby, STANDING_BY)
            # The leader takes the report's first steps.
            reporter = users["staff"]
            await reporter.send("/report")
            assert (await reporter.wait_for(timeout=20)).text.startswith("🚨 Report an incident.")
            await reporter.press("Fire")
            assert (await reporter.wait_for(timeout=20)).text == "Fire. How serious is it?"
            await reporter.press("Serious")
            asked = await reporter.wait_for(timeout=20)
            assert asked.text.startswith("Place: 石坝小学. Write what happened")
            # It dies; one standby takes over within 10 s and the other stays a standby.
            assert await leader.end(signal.SIGKILL) == -signal.SIGKILL
            killed_at = asyncio.get_running_loop().time()
            taken = asyncio.wait(
                [asyncio.create_task(bot.taking_updates.wait()) for bot in bots[1:]],
                timeout=15,
                return_when=asyncio.FIRST_COMPLETED,
            )
            done, pending = await taken
            for waiting in pending:
                waiting.cancel()
            assert done, "no standby took over:\n" + "".join(bots[1].lines + bots[2].lines)
            [new_leader] = [bot for bot in bots[1:] if bot.taking_updates.is_set()]
            assert new_leader.taking_updates_at - killed_at < 10.0, "".join(new_leader.lines)
            # The person goes on where they stood: the next message answers "what happened".
            await reporter.send("Smoke from the kitchen; pupils evacuated.")
            summary = await reporter.wait_for(timeout=20)
            assert summary.text.splitlines()[:3] == [
                "Draft report:",
                "Serious · Fire",
                "Place: 石坝小学",
            ], summary.text
            await reporter.press("🚨 Report")
            done_text = (await reporter.wait_for(timeout=20)).text
            match = NUMBER.match(done_text)
            assert match is not None, done_text
            number = match.group(1)
            # Stored once, its pages sent once though two senders run. (The principal's page may
            # come from an engine step after the first pages were sent: wait for it, then count.)
            principal_page = await users["principal"].wait_for(
                lambda m: number in m.text, timeout=20
            )
            assert principal_page.buttons
            pages = await pages_all_sent(db)
            async with db.read() as uow:
                incidents = (await uow.session.exec(select(Incident.number))).all()
            assert incidents == [number]
            paged = {
                key: sum(number in m.text for m in user.messages())
                for key, user in users.items()
                if key != "staff"
            }
            assert sum(paged.values()) == pages and set(paged.values()) <= {0, 1}, paged
            assert paged["principal"] == 1
            assert not any(bot.taking_updates.is_set() for bot in bots[1:] if bot is not new_leader)
            for bot in bots:
                assert not any("Conflict" in line or "Traceback" in line for line in bot.lines), (
                    "".join(bot.lines)
                )

            # The new leader's lock session ends (as when the network drops it): it stops taking
            # updates at once, an instance is elected again, and the bot goes on answering.
            def elections() -> int:
                return sum("Zhiban is taking updates" in line for b in bots for line in b.lines)

            before = elections()
            await end_lock_session(database_url)
            await until_logged(new_leader, "the connection holding the leader lock was lost")
            async with asyncio.timeout(15):
                while True:
                    if elections() > before:
                        break
                    await asyncio.sleep(0.05)
            await reporter.send("/help")
            assert (await reporter.wait_for(timeout=20)).text
            assert all(bot.process.returncode is None for bot in bots[1:])
        finally:
            for bot in bots:
                if bot.process.returncode is None:
                    await bot.end(signal.SIGTERM)
            await db.dispose()


async def end_lock_session(url: str) -> None:
    """End the session holding the leader lock, as the server does when its connection drops."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            ended = await connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND objid = :key AND granted"
                ),
                {"key": LEADER_LOCK_KEY},
            )
            assert ended.scalars().all() == [True]
    finally:
        await admin.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_in_webhook_mode_only_the_leader_serves_the_webhook_and_a_standby_takes_it_over(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    bots: list[BotProcess] = []
    async with BotApiEmulator() as emu:
        try:
            # Both on one host with one port: only the leader listens on it.
            webhook = (
                f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/telegram"\n'
                f"webhook_port = {port}\n"
            )
            config = write_config(tmp_path / "config.toml", database_url, emu, webhook)
            env = process_env(config) | {"ZHIBAN_WEBHOOK_SECRET": "failover-secret"}
            bots.append(await BotProcess.start(env, tmp_path))
            await bots[0].until_taking_updates()
            bots.append(await BotProcess.start(env, tmp_path))
            leader, standby = bots
            await until_logged(standby, STANDING_BY)
            user = emu.user(4242, "张老师")
            await user.start()
            assert (await user.wait_for(timeout=30)).text.startswith("张老师，您好！")
            assert any("update 1: message" in line for line in leader.lines)
            assert await leader.end(signal.SIGKILL) == -signal.SIGKILL
            await standby.until_taking_updates()
            assert "taking updates (webhook)" in "".join(standby.lines)
            await user.send("/help")
            assert (await user.wait_for(timeout=30)).text
            assert any("update 2: message" in line for line in standby.lines)
            assert not any("update 1:" in line for line in standby.lines)
            assert not any("could not take updates" in line for line in standby.lines)
        finally:
            for bot in bots:
                if bot.process.returncode is None:
                    await bot.end(signal.SIGTERM)


async def test_a_second_instance_on_one_sqlite_file_is_refused_in_one_line(tmp_path: Path) -> None:
    async with BotApiEmulator() as emu:
        config = write_config(tmp_path / "config.toml", f"sqlite+aiosqlite:///{tmp_path}/z.db", emu)
        env = process_env(config)
        first = await BotProcess.start(env, tmp_path)
        try:
            await first.until_taking_updates()
            second = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                env=env,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(second.communicate(), timeout=60)
            assert second.returncode == 1
            assert (out, err.decode()) == (
                b"",
                f"zhiban: {tmp_path}/z.db is in use by another zhiban run: SQLite serves one "
                "process (several instances need PostgreSQL, see README: Several instances)\n",
            )
            # The first goes on answering.
            user = emu.user(4242, "张老师")
            await user.start()
            assert (await user.wait_for(timeout=30)).text.startswith("张老师，您好！")
        finally:
            assert await first.end(signal.SIGTERM) == 0, "".join(first.lines)
