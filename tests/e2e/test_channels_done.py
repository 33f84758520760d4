"""Issue 14 done: a county desk without Telegram is reached on DingTalk and acknowledges from it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TZ, at, linked, local
from sqlmodel import col, select
from test_ack_link import CHROMEDRIVER, browser_available, press_acknowledge_in_chromium

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import EscalationLevel, Page, Person
from bot.sandbox.stack import LocalStack, free_port
from bot.services import roster
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

LINK_SECRET = "test-link-secret-0123456789abcdef0123456789"
DINGTALK_SECRET = "SECdingtalk-0123456789abcdef"

# The platforms' stand-ins live beside the robots' own tests (tests/channels/standins.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "channels"))
from standins import DingTalkStandIn  # noqa: E402


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(2, 9))


@pytest.fixture
async def dingtalk(clock: MovableClock) -> AsyncIterator[DingTalkStandIn]:
    """The county group's DingTalk robot; it checks signatures against the test's clock."""
    async with DingTalkStandIn(
        secret=DINGTALK_SECRET, now=lambda: clock.now().timestamp()
    ) as standin:
        yield standin


@pytest.fixture
async def county(
    database_url: str,
    clock: MovableClock,
    dingtalk: DingTalkStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[LocalStack]:
    """The sample district; the county desk's pages also go to the county's DingTalk group."""
    monkeypatch.setenv("ZHIBAN_DINGTALK_SECRET", DINGTALK_SECRET)
    ops_port = free_port()
    settings = settings_from_mapping(
        {
            "database": {"url": database_url},
            "digest": {"enabled": False},
            "web": {"public_url": f"http://127.0.0.1:{ops_port}"},
            "channels": [
                {
                    "name": "county-dingtalk",
                    "kind": "dingtalk",
                    "url": dingtalk.url,
                    "secret_env": "ZHIBAN_DINGTALK_SECRET",
                    "units": ["QC"],
                }
            ],
            "escalation": {
                "serious": {
                    "report_deadline": "1h",
                    "steps": [
                        {"after": "0s", "roles": ["duty_leader", "principal"], "repeat": 1},
                        {"after": "10m", "roles": ["officer"], "level": "parent"},
                        {"after": "15m", "roles": ["desk"], "level": "county"},
                        {"after": "25m", "roles": ["officer"], "level": "county"},
                    ],
                }
            },
        },
        environ={"ZHIBAN_LINK_SECRET": LINK_SECRET},
    )
    async with LocalStack(settings, clock, ops_port=ops_port) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def person_id(db: Database, staff_no: str) -> int:
    async with db.read() as uow:
        found = (await uow.session.exec(select(Person.id).where(Person.staff_no == staff_no))).one()
    assert found is not None
    return found


async def county_pages(db: Database) -> list[tuple[int | None, int, int, str]]:
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(Page.id, Page.step, Page.person_id, Page.status)
            .where(Page.level == "county")
            .order_by(col(Page.id))
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_a_county_desk_without_telegram_acknowledges_from_dingtalk_in_a_browser(
    county: LocalStack, clock: MovableClock, dingtalk: DingTalkStandIn
) -> None:
    if not browser_available() and os.environ.get("CI") != "true":
        pytest.skip("chromium is missing: apt-get install -y chromium chromium-driver")
    assert shutil.which(CHROMEDRIVER) is not None, "CI=true: chromium-driver must be installed"
    assert county.db is not None and county.runtime is not None
    he = await linked(county, clock, "SB01-02", 9401, "何丽")  # leads the school's duty today
    yang = await linked(county, clock, "SB01-01", 9402, "杨光明")  # the principal
    await linked(county, clock, "SB002", 9403, "吴静")  # the township's officer
    # Nobody at the county desk has a Telegram account.
    await report(
        county.db,
        person_id=await person_id(county.db, "SB01-03"),
        draft=ReportDraft(
            category="fire", severity="serious", description="厨房冒烟", occurred_at=clock.now()
        ),
        now=clock.now(),
        policies=county.runtime.settings.escalation,
        ctx=county.runtime.paging,
    )
    await county.settle()
    school_pages = {
        user: await user.wait_for(lambda message: "厨房冒烟" in message.text) for user in (he, yang)
    }
    # Nobody answers: the township at 09:10, the county desk at 09:15.
    await at(county, clock, local(2, 9, 10))
    # (the group also hears of the county's own missed shifts of the morning)
    assert not any("厨房冒烟" in text for text, _ in dingtalk.messages())
    await at(county, clock, local(2, 9, 15))

    li = await person_id(county.db, "QC002")  # 李秀英, the desk officer
    [(text, mentioned)] = [(t, m) for t, m in dingtalk.messages() if "厨房冒烟" in t]
    assert dingtalk.refused == []  # the signature checked out against the platform's clock
    assert "15900000002" in mentioned and "@15900000002" in text
    [her_link] = re.findall(r"^李秀英: (http://\S+)$", text, flags=re.MULTILINE)
    assert her_link.startswith(county.ops_url + "/a/")
    before = await county_pages(county.db)
    assert [step for _id, step, _who, _status in before if _who == li] == [2]
    clock.set(local(2, 9, 17))

    page_text, label, result = await asyncio.to_thread(press_acknowledge_in_chromium, her_link)

    assert "厨房冒烟" in page_text
    assert label == "✅ 接报"
    assert result.startswith("✅ 已于09:17接报。")
    await county.settle()
    async with county.db.read() as uow:
        levels = {
            row.level: row
            for row in (
                await uow.session.exec(select(EscalationLevel).order_by(col(EscalationLevel.id)))
            ).all()
        }
    assert levels["county"].acknowledged_by_id == li
    assert levels["county"].acknowledged_at is not None
    assert levels["unit"].acknowledged_by_id is None  # the school's own level is not stopped
    # The school's Telegram pages show who acknowledged at the county, and when.
    for user, paged in school_pages.items():
        edited = await user.wait_for(
            lambda message, first=paged: (
                message.message_id == first.message_id and "李秀英" in message.text
            )
        )
        assert "✅ 青川县教育局已由李秀英于09:17接报。" in edited.text
        assert edited.buttons, "the school's own page still asks its level to act"
    # The county's next step (its officer at 09:40) never comes.
    acknowledged = await county_pages(county.db)
    for moment in (local(2, 9, 40), local(2, 10, 30)):
        await at(county, clock, moment)
    after = await county_pages(county.db)
    assert after == acknowledged
    assert all(step != 3 for _id, step, _who, _status in after)
