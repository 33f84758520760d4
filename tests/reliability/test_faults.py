"""Telegram misbehaving while a burst of pages falls due: nothing is lost, every failure shows.

Six schools report serious fires at once through the real service; their duty leaders and
principals are paged by the real bot (LocalStack, a MovableClock) through the emulator, which
meanwhile answers a storm of 429s with retry_after across the chats, 502 Bad Gateway and 500s,
one principal's pages with 502 every time (past `[telegram] max_retries`), one leader's page
only after the client's read timeout (5 s), and two leaders' pages with 403 (they blocked the
bot, and the update saying so was lost).

Afterwards:
- no outgoing message is left pending or sending; each ended sent, unreachable, failed or
  cancelled, and per chat the emulator holds exactly as many of the bot's messages as the
  outbox says were sent (none lost, none twice);
- every page reached its person, or was marked undeliverable and a stand-in further down the
  fallback chain (here the county desk) was paged and reached;
- `zhiban pages` shows each failure: unreachable with Telegram's words, failed after its
  attempts with "Bad Gateway", sent with "timed out; delivery not confirmed", and retried rows
  with their attempts;
- no ERROR was logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot import cli
from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.delivery import UNCONFIRMED
from bot.models import Account, OutboxMessage, Page, Person
from bot.sandbox.stack import LocalStack
from bot.services.escalation import PagingContext
from bot.services.incidents.reporting import ReportDraft, report

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for bench/

from bench.support import District, build_district

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
SCHOOLS = 6
# The client's read timeout (python-telegram-bot's HTTPXRequest default, which bot/network.py
# keeps): an answer later than this is never read.
READ_TIMEOUT = 5.0
BLOCKED = "Forbidden: bot was blocked by the user"


class ErrorLog(logging.Handler):
    """Collects every ERROR record from any logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def county(database_url: str) -> AsyncIterator[tuple[LocalStack, District]]:
    """The real bot on a county of six schools in two townships, every chat open."""
    clock = MovableClock(NOW)
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "digest": {"enabled": False}}, environ={}
    )
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        district = await build_district(stack.db, schools=SCHOOLS, townships=2)
        for chat, name in district.names.items():
            stack.emulator.user(chat, name)
            stack.emulator.world.chats[chat].started = True
        yield stack, district


async def _fires(stack: LocalStack, district: District) -> None:
    """Each school's reporter reports a serious fire, all at the same moment."""
    assert stack.db is not None and stack.runtime is not None
    settings = stack.runtime.settings
    ctx = PagingContext(tz=settings.bot.tz, default_language=settings.bot.language)
    async with stack.db.read() as uow:
        reporters = {
            account.chat_id: account.person_id
            for account in (await uow.session.exec(select(Account))).all()
        }
    for index, school in enumerate(district.schools):
        draft = ReportDraft(
            category="fire",
            severity="serious",
            description=f"Smoke in the kitchen of school {index}.",
            occurred_at=stack.clock.now(),
        )
        await report(
            stack.db,
            person_id=reporters[school.reporter_chat],
            draft=draft,
            now=stack.clock.now(),
            policies=settings.escalation,
            ctx=ctx,
        )
    stack.runtime.wake()


async def _zhiban_pages(database_url: str, tmp_path: Path) -> dict[int, str]:
    """`zhiban pages` in this process, against the same database: its lines by outbox row id."""
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[bot]\nlanguage = "en"\n')
    printed = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(printed):
            return cli.main(["pages", "--config", str(config), "--limit", "500"])

    assert await asyncio.to_thread(run) == 0
    lines = printed.getvalue().splitlines()
    return {int(line.split("\t")[0][1:]): line for line in lines if line.startswith("#")}


async def test_a_burst_of_pages_through_429s_5xx_timeouts_and_blocked_leaders_loses_nothing(
    county: tuple[LocalStack, District], database_url: str, tmp_path: Path
) -> None:
    stack, district = county
    assert stack.db is not None
    emulator = stack.emulator
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        schools = district.schools
        # Two leaders blocked the bot; Telegram refuses their pages with 403.
        for school in schools[:2]:
            emulator.world.chats[school.leader_chat].blocked = True
        # One principal's pages meet 502 every time, past the retries.
        failing = schools[2].principal_chat
        emulator.inject_failure("sendMessage", 502, count=20, chat_id=failing)
        # One leader's page is answered only after the client stopped waiting.
        slow = schools[3].leader_chat
        emulator.slow_answers("sendMessage", READ_TIMEOUT + 1.0, chat_id=slow)
        # And a storm over the other chats: 429s with retry_after, 502s and 500s, some one
        # after another for the same chat. (Injected per chat, so that none meets the slow
        # answer: a 429 answered after the timeout is a page the bot must take as sent.)
        storm = [
            (schools[0].principal_chat, 429),
            (schools[1].principal_chat, 429),
            (schools[1].principal_chat, 502),
            (schools[2].leader_chat, 502),
            (schools[3].principal_chat, 500),
            (schools[3].principal_chat, 429),
            (schools[4].leader_chat, 429),
            (schools[4].principal_chat, 429),
            (schools[4].principal_chat, 429),
            (schools[5].leader_chat, 500),
            (schools[5].principal_chat, 429),
            (schools[5].principal_chat, 502),
            (schools[5].principal_chat, 500),
        ]
        for chat, status in storm:
            retry_after = 3 if status == 429 else None
            emulator.inject_failure("sendMessage", status, retry_after=retry_after, chat_id=chat)

        await _fires(stack, district)
        # Two minutes and a half of clock, in steps: the backoffs after 5xx (2, 4, 8, 16 s…)
        # and the 429s' waits fall due, and every stand-in is paged.
        for _ in range(30):
            await stack.settle()
            stack.clock.advance(timedelta(seconds=5))
        await stack.settle()
        # The late answer is logged by the emulator only once given, after the bot stopped
        # waiting for it.
        for _ in range(200):
            if any(int(c.params["chat_id"]) == slow for c in emulator.calls_of("sendMessage")):
                break
            await asyncio.sleep(0.05)

        async with stack.db.read() as uow:
            session = uow.session
            rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
            pages = {
                page.id: page
                for page in (await session.exec(select(Page).order_by(col(Page.id)))).all()
            }
            chats = {
                account.person_id: account.chat_id
                for account in (await session.exec(select(Account))).all()
            }
            names = {
                person.id: person.name for person in (await session.exec(select(Person))).all()
            }
            unreachable = {
                account.chat_id
                for account in (await session.exec(select(Account))).all()
                if account.unreachable_since is not None
            }

        # The storm was answered as injected, and every failure for one chat was met.
        answered = Counter(call.status for call in emulator.calls_of("sendMessage"))
        injected = Counter(status for _chat, status in storm)
        assert answered[429] == injected[429] and answered[500] == injected[500]
        assert answered[502] == injected[502] + 6
        assert answered[403] == 2

        # Nothing is left under way; per chat, the emulator holds what the outbox sent.
        assert {row.status for row in rows} <= {"sent", "unreachable", "failed", "cancelled"}
        sent_to: Counter[int] = Counter(
            row.chat_id for row in rows if row.status == "sent" and row.method == "sendMessage"
        )
        shown: Counter[int] = Counter()
        for chat_id, chat in emulator.world.chats.items():
            shown[chat_id] = sum(1 for message in chat.messages.values() if message.from_bot)
        assert +shown == +sent_to
        assert answered[200] == sum(sent_to.values())

        page_rows = [row for row in rows if row.kind == "page"]
        by_page = {row.page_id: row for row in page_rows if row.method == "sendMessage"}
        first_pages = [p for p in pages.values() if p.replaces_page_id is None and p.step == 0]
        # every school's leader and principal was paged
        assert len({(p.unit_id, p.role) for p in first_pages}) == 2 * SCHOOLS

        def reached(page: Page) -> bool:
            """The page reached its person, or a stand-in for it was reached."""
            row = by_page.get(page.id)
            if row is not None and row.status == "sent":
                return True
            assert page.status == "undeliverable", (page, row)
            stand_ins = [p for p in pages.values() if p.replaces_page_id == page.id]
            assert len(stand_ins) == 1, f"{names[page.person_id]}'s page went to nobody"
            return reached(stand_ins[0])

        for page in pages.values():
            assert reached(page)

        # The blocked leaders: unreachable with Telegram's words, the desk paged instead.
        desk_chat = district.desk_chat
        for school in schools[:2]:
            assert school.leader_chat in unreachable
            blocked = [
                row
                for row in page_rows
                if row.chat_id == school.leader_chat and row.status == "unreachable"
            ]
            assert [row.last_error for row in blocked] == [BLOCKED]
            page = pages[blocked[0].page_id]
            stand_in = next(p for p in pages.values() if p.replaces_page_id == page.id)
            assert chats[stand_in.person_id] == desk_chat
        # The principal whose pages always met 502: failed after her tries, the desk paged.
        failed = [row for row in page_rows if row.chat_id == failing]
        assert [(row.status, row.attempts) for row in failed] == [("failed", 6)]
        assert failed[0].last_error is not None and "Bad Gateway" in failed[0].last_error
        stand_in = next(p for p in pages.values() if p.replaces_page_id == failed[0].page_id)
        assert chats[stand_in.person_id] == desk_chat
        assert failing not in unreachable  # a server error says nothing of her chat
        # The slow answer: delivered, but not confirmed; not sent again.
        late = [row for row in page_rows if row.chat_id == slow]
        assert [(row.status, row.last_error) for row in late] == [("sent", UNCONFIRMED)]
        assert len(emulator.world.chats[slow].messages) == 1
        # Rows that met the storm went out on a later try; a 429 is not a try, its wait shows
        # in the time sent.
        retried = [row for row in page_rows if row.status == "sent" and row.attempts > 1]
        assert {row.chat_id for row in retried} == {chat for chat, status in storm if status >= 500}
        for row in page_rows:
            if (row.chat_id, 429) in storm:
                assert row.sent_at is not None and row.sent_at >= row.created_at + timedelta(
                    seconds=3
                ), row

        # `zhiban pages` shows each of these.
        listing = await _zhiban_pages(database_url, tmp_path)
        for row in blocked:
            assert listing[row.id or 0].split("\t")[1] == "unreachable"
        for school in schools[:2]:
            row = next(
                r for r in page_rows if r.chat_id == school.leader_chat and r.status != "sent"
            )
            line = listing[row.id or 0].split("\t")
            assert line[1] == "unreachable" and line[-1].endswith(BLOCKED), line
        line = listing[failed[0].id or 0].split("\t")
        assert line[1] == "failed" and line[-1].startswith("6  ") and "Bad Gateway" in line[-1]
        line = listing[late[0].id or 0].split("\t")
        assert line[1] == "sent" and line[-1].endswith(UNCONFIRMED), line
        for row in retried:
            line = listing[row.id or 0].split("\t")
            assert line[1] == "sent" and line[-1].startswith(str(row.attempts)), line
        assert [r.getMessage() for r in errors.records] == []
    finally:
        logging.getLogger().removeHandler(errors)
