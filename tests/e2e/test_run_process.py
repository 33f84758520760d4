"""`zhiban run` as an operator starts it: a real process polling the emulator, ended by SIGTERM.

And killed by SIGKILL: the restarted process catches up at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import processes
from factories import District, build_district
from processes import BotProcess

from bot.config import DatabaseSettings, EscalationStep
from bot.db import create_engine
from bot.models import OutboxStatus
from bot.sandbox import BotApiEmulator, SimUser
from bot.services import escalation, outbox
from bot.services.page_text import PageSubject
from bot.uow import Database

TOKEN = "654321:RUN-process-token-xyz"


def process_env(config: Path) -> dict[str, str]:
    """The environment of a `zhiban run` process with this configuration."""
    return processes.process_env(config, TOKEN)


async def test_run_polls_answers_logs_each_update_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with BotApiEmulator() as emu:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"\n'
            f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n'
            "[ops]\nport = 0\n",  # other tests run bots on this machine at the same time
            encoding="utf-8",
        )
        env = process_env(config)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            user = emu.user(4242, "张老师")
            await user.start()
            reply = await user.wait_for(timeout=60)
            assert reply.text.startswith("张老师，您好！")
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    log = err.decode()
    assert process.returncode == 0, log
    assert "update 1: message from user 4242" in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "stopping" in log
    assert (tmp_path / "run.db").exists()


@dataclass
class KilledRun:
    """A district whose principal has started the bot, and a `zhiban run` killed with SIGKILL."""

    env: dict[str, str]
    tmp_path: Path
    db: Database
    district: District
    principal: SimUser
    again: list[BotProcess] = field(default_factory=list)

    async def restart(self) -> BotProcess:
        """Start `zhiban run` again and wait until it takes updates."""
        bot = await BotProcess.start(self.env, self.tmp_path)
        self.again.append(bot)
        await bot.until_taking_updates()
        return bot


@asynccontextmanager
async def killed_run(tmp_path: Path) -> AsyncIterator[KilledRun]:
    """Migrate and set up through a first run, kill it, and end every later run afterwards."""
    url = f"sqlite+aiosqlite:///{tmp_path}/run.db"
    async with BotApiEmulator() as emu:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n'
            f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n'
            # other tests run bots on this machine at the same time; no digest at start
            "[ops]\nport = 0\n[digest]\nenabled = false\n",
            encoding="utf-8",
        )
        env = process_env(config)
        db = Database(create_engine(DatabaseSettings(url=url)))
        first = await BotProcess.start(env, tmp_path)
        run: KilledRun | None = None
        try:
            await first.until_taking_updates()  # it has migrated the database
            district = await build_district(db)
            principal = emu.user(district.chats["principal"], "王校长")
            await principal.start()
            await principal.wait_for(timeout=30)
            assert await first.end(signal.SIGKILL) == -signal.SIGKILL
            run = KilledRun(env, tmp_path, db, district, principal)
            yield run
        finally:
            for bot in [first, *(run.again if run else [])]:
                if bot.process.returncode is None:
                    await bot.end(signal.SIGTERM)
            await db.dispose()


async def test_after_kill_9_and_a_restart_the_due_page_goes_out_within_2_s_of_taking_updates(
    tmp_path: Path,
) -> None:
    async with killed_run(tmp_path) as run:
        # While it is down, a page falls due (its first step was due a minute ago).
        async with run.db.uow() as uow:
            await escalation.start(
                uow.session,
                policy="test",
                steps=[EscalationStep(after=timedelta(0), roles=["principal"])],
                subject_type="test",
                subject_id=1,
                unit_id=run.district.units["S"],
                now=datetime.now(UTC) - timedelta(minutes=1),
                subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
            )
            await uow.commit()
        second = await run.restart()
        page = await run.principal.wait_for(timeout=20)
        arrived = asyncio.get_running_loop().time()
        assert page.text.startswith("🚨 Post unmanned"), page.text
        assert arrived - second.taking_updates_at < 2.0, "".join(second.lines)


async def test_on_sqlite_a_restart_sends_at_once_what_the_killed_run_was_sending(
    tmp_path: Path,
) -> None:
    """A row left `sending` by a dead process goes out at the start, not after its 2 min lease.

    On SQLite one process serves the file, so nothing else can still be sending it.
    """
    async with killed_run(tmp_path) as run:
        # What the killed run had claimed and was sending when it died.
        now = datetime.now(UTC)
        async with run.db.uow() as uow:
            row = await outbox.enqueue(
                uow.session,
                now=now,
                text="🚨 Left mid-send",
                person_id=run.district.people["principal"],
            )
            row.status = OutboxStatus.SENDING
            row.claimed_by = "host:99999:dead"
            row.claimed_at = now
            row.attempts = 1
            await uow.commit()
        second = await run.restart()
        page = await run.principal.wait_for(timeout=20)  # the lease alone would take 2 minutes
        assert page.text == "🚨 Left mid-send"
        assert any("were being sent when the last run stopped" in x for x in second.lines)
