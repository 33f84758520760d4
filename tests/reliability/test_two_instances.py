"""Two instances, one PostgreSQL database: the leader dies with 1,000 pages half sent.

Two `zhiban run` processes share the database (active/standby, bot/election.py). 1,000 pages
are due at once, one to the linked duty leader of each of 1,000 schools, written as the engine
writes them (escalation, page, outbox row; in bulk, so that the drill times the sending and not
1,000 engine steps); both instances' senders share them. When about half the pages have reached the
emulator (which enforces no flood limits here, to keep the drill short), the leader is killed
with SIGKILL; the standby takes updates over, and every page arrives: once, or twice only for a
row the killed sender held when it died (it may have reached Telegram with its row not yet
marked sent), never more often than its row was claimed.

The rows the killed sender held keep its claim for the lease (2 minutes) before the other
instance may take them; the drill does not wait that long and moves those claims back once the
standby has taken over (`stand_in_for_the_lease`), as the lease running out would.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from process_support import (
    CHECK,
    bot_texts,
    log_problems,
    open_chats,
    plant_schools,
    process_env,
    stand_in_for_the_lease,
    summary,
    unsettled,
    write_config,
)
from processes import BotProcess
from sqlmodel import col, select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.models import Account, Escalation, OutboxMessage, OutboxStatus, Page
from bot.sandbox import BotApiEmulator
from bot.uow import Database

PAGES = 1000
STANDING_BY = "standby: another instance leads"


def arrived(emu: BotApiEmulator) -> int:
    """Pages of the drill the emulator took (sendMessage answered with a message).

    Other messages (a daily report's prompt, when the drill runs near its hour) are not counted.
    """
    return sum(
        1
        for call in emu.calls_of("sendMessage")
        if call.status == 200 and "Reliability check" in str(call.params.get("text", ""))
    )


async def plant_pages(db: Database, leaders: dict[int, int]) -> None:
    """One active escalation per school with one page to its leader, its message due now."""
    now = datetime.now(UTC)
    matters: sa.Table = Escalation.__table__  # type: ignore[attr-defined]
    pages: sa.Table = Page.__table__  # type: ignore[attr-defined]
    messages: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
    async with db.engine.begin() as connection:
        people = dict(
            (
                await connection.execute(
                    sa.select(Account.chat_id, Account.person_id).where(
                        col(Account.chat_id).in_(list(leaders.values()))
                    )
                )
            ).all()
        )
        rows = [
            {
                "policy": "reliability",
                "subject_type": "check",
                "subject_id": n,
                "unit_id": school,
                "started_at": now,
                "status": "active",
            }
            for n, school in enumerate(leaders, start=1)
        ]
        ids = (
            (await connection.execute(sa.insert(matters).returning(matters.c.id), rows))
            .scalars()
            .all()
        )
        page_ids = (
            (
                await connection.execute(
                    sa.insert(pages).returning(pages.c.id),
                    [
                        {
                            "escalation_id": matter,
                            "step": 0,
                            "person_id": people[chat],
                            "unit_id": school,
                            "role": "duty_leader",
                            "level": "unit",
                            "created_at": now,
                            "sent_count": 0,
                            "status": "active",
                        }
                        for matter, (school, chat) in zip(ids, leaders.items(), strict=True)
                    ],
                )
            )
            .scalars()
            .all()
        )
        await connection.execute(
            sa.insert(messages),
            [
                {
                    "created_at": now,
                    "not_before": now,
                    "person_id": people[chat],
                    "kind": "page",
                    "page_id": page,
                    "method": "sendMessage",
                    "body": {"text": CHECK.format(n=f"{n:05d}"), "buttons": []},
                    "status": OutboxStatus.PENDING,
                    "attempts": 0,
                    "late": False,
                }
                for n, (page, chat) in enumerate(zip(page_ids, leaders.values(), strict=True), 1)
            ],
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_standby_finishes_1000_pages_the_killed_leader_left_and_each_arrives_once(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(create_engine(DatabaseSettings(url=database_url)))
    runs: list[BotProcess] = []
    async with BotApiEmulator() as emu:
        # Telegram stores a message before its answer comes back: a kill can land between.
        emu.method_latency = {"sendMessage": 0.02}
        try:
            leaders = await plant_schools(db, PAGES)
            open_chats(emu, leaders)
            # 1,000 matters, each paging its school's leader now, written before the instances
            # start as the engine writes a page (the escalation, the page, its outbox row).
            planting = time.monotonic()
            await plant_pages(db, leaders)
            written = time.monotonic() - planting

            # The emulator enforces no flood limits here; each sender may go faster than
            # Telegram's 30 a second, which keeps the drill short.
            fast = "messages_per_second = 100\n"
            env = process_env(write_config(tmp_path / "config.toml", database_url, emu, fast))
            leader = await BotProcess.start(env, tmp_path, name="leader")
            runs.append(leader)
            await leader.until_taking_updates()
            standby = await BotProcess.start(env, tmp_path, name="standby")
            runs.append(standby)
            async with asyncio.timeout(60):
                while not any(STANDING_BY in line for line in standby.lines):
                    assert standby.running, "".join(standby.lines)
                    await asyncio.sleep(0.05)

            async with asyncio.timeout(60):
                while arrived(emu) < PAGES // 2:
                    assert leader.running, "".join(leader.lines)
                    await asyncio.sleep(0.01)
            at_kill = arrived(emu)
            assert await leader.end(signal.SIGKILL) == -signal.SIGKILL
            killed = time.monotonic()
            pid = str(leader.process.pid)
            async with db.read() as uow:
                claims = (
                    await uow.session.exec(
                        select(OutboxMessage.claimed_by).where(
                            OutboxMessage.status == OutboxStatus.SENDING
                        )
                    )
                ).all()
            held = sum(1 for claim in claims if claim and claim.split(":")[1:2] == [pid])
            await standby.until_taking_updates(timeout=15)
            took_over = time.monotonic() - killed
            # The killed sender's claims would run out in 2 minutes; the drill moves them back.
            moved = await stand_in_for_the_lease(db, leader.process.pid)

            async with asyncio.timeout(60):
                while await unsettled(db) or arrived(emu) < PAGES:
                    assert standby.running, "".join(standby.lines)
                    await asyncio.sleep(0.1)
            drained = time.monotonic() - killed
            async with db.read() as uow:
                rows = (
                    await uow.session.exec(
                        select(OutboxMessage)
                        .join(Page, col(Page.id) == OutboxMessage.page_id)
                        .join(Escalation, col(Escalation.id) == Page.escalation_id)
                        .where(Escalation.subject_type == "check")
                    )
                ).all()
            assert len(rows) == PAGES
            assert {row.status for row in rows} == {OutboxStatus.SENT}
            attempts = {row.chat_id: row.attempts for row in rows}

            # Each page at its leader's chat: once, or more only as often as its row was claimed.
            copies = {}
            for n, chat in enumerate(leaders.values(), start=1):
                marker = CHECK.format(n=f"{n:05d}")
                copies[chat] = sum(marker in text for text in bot_texts(emu, chat))
            assert min(copies.values()) == 1, [c for c, k in copies.items() if k == 0][:10]
            doubled = {chat: k for chat, k in copies.items() if k > 1}
            assert all(k <= attempts[chat] for chat, k in doubled.items()), doubled
            duplicates = sum(k - 1 for k in doubled.values())
            assert duplicates <= held, (duplicates, held)
            assert took_over < 10.0
            problems = [line for run in runs for line in log_problems(run.lines)]
            assert not problems, "".join(problems)
            assert await standby.end(signal.SIGTERM) == 0, "".join(standby.lines)
            print(
                "\ntwo_instances "
                + summary(
                    {
                        "pages": PAGES,
                        "arrived_at_kill": at_kill,
                        "held_by_killed_leader": held,
                        "claims_moved_back": moved,
                        "standby_took_over_s": f"{took_over:.2f}",
                        "written_in_s": f"{written:.1f}",
                        "all_sent_after_kill_s": f"{drained:.1f}",
                        "duplicates": duplicates,
                        "sendMessage_calls": arrived(emu),
                    }
                )
            )
        finally:
            for run in runs:
                if run.running:
                    await run.end(signal.SIGKILL)
            (tmp_path / "runs.log").write_text(
                "".join(f"=== {run.name}\n" + "".join(run.lines) for run in runs), encoding="utf-8"
            )
            await db.dispose()
