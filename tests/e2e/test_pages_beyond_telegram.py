"""Pages beyond Telegram through the real bot: the county's robot and a step's robot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from conftest import TZ, linked, local

from bot.channels import ChannelMessage
from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.sandbox.stack import LocalStack
from bot.services import roster


@dataclass
class FakeRobot:
    """A group robot that keeps what it is sent."""

    name: str
    kind: str = "dingtalk"
    per_minute: int = 20
    sent: list[ChannelMessage] = field(default_factory=list)

    async def send(self, message: ChannelMessage) -> None:
        self.sent.append(message)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(2, 9))


@pytest.fixture
def robots() -> dict[str, FakeRobot]:
    return {
        "county-dingtalk": FakeRobot("county-dingtalk"),
        "school-wecom": FakeRobot("school-wecom"),
    }


@pytest.fixture
async def district(
    database_url: str, clock: MovableClock, robots: dict[str, FakeRobot]
) -> AsyncIterator[LocalStack]:
    """The sample district; the county has a DingTalk robot, the school step names a WeCom one."""
    settings = settings_from_mapping(
        {
            "database": {"url": database_url},
            "digest": {"enabled": False},
            "channels": [
                {
                    "name": "county-dingtalk",
                    "kind": "dingtalk",
                    "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
                    "units": ["QC"],
                },
                {
                    "name": "school-wecom",
                    "kind": "wecom",
                    "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                },
            ],
            "escalation": {
                "serious": {
                    "report_deadline": "1h",
                    "steps": [
                        {
                            "after": "0s",
                            "roles": ["duty_leader", "principal"],
                            "repeat": 2,
                            "channels": ["school-wecom"],
                        },
                        {"after": "10m", "roles": ["officer"], "level": "parent"},
                        {"after": "15m", "roles": ["desk"], "level": "county"},
                    ],
                }
            },
        },
        environ={},
    )
    async with LocalStack(settings, clock, channels=robots) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def test_a_serious_incident_reaches_the_county_robot_when_the_desk_has_no_telegram(
    district: LocalStack, clock: MovableClock, robots: dict[str, FakeRobot]
) -> None:
    ma = await linked(district, clock, "SB01-05", 9301, "Jun", language="en")
    he = await linked(district, clock, "SB01-02", 9302, "何丽")  # leads the duty on 12-02
    yang = await linked(district, clock, "SB01-01", 9303, "杨光明")  # the principal
    # Nobody at the county desk has a Telegram account.
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Fire")
    await ma.wait_for()
    await ma.press("Serious")
    await ma.wait_for()
    await ma.send("Smoke from the kitchen; pupils evacuated.")
    await ma.wait_for()
    await ma.press("⏫ Report and pass straight to the county")
    await ma.wait_for()
    await district.settle()
    # Telegram pages the school's leaders; the step's robot gets one message naming both.
    for leader in (he, yang):
        assert any("20261202-001" in m.text for m in leader.messages())
    [school] = robots["school-wecom"].sent
    assert school.mention_phones == ("15900000012", "13800000011")
    assert school.title == "🚨 重大事件 20261202-001：火灾 · 石坝小学"
    assert school.text.splitlines()[-1] == "👤 已呼叫：何丽 15900000012、杨光明 13800000011"
    # The county's robot gets the desk's page once, the three desk officers' phones mentioned
    # and marked (it also has the county's own missed shifts of the morning).
    [county] = [m for m in robots["county-dingtalk"].sent if "20261202-001" in m.title]
    assert county.mention_phones == ("15900000002", "13800000003", "15900000006")
    assert "📌 当前在：青川县教育局（尚未接报）" in county.text
    assert county.text.splitlines()[-1] == (
        "👤 已呼叫：李秀英 15900000002（📵Telegram联系不上）、"
        "张伟 13800000003（📵Telegram联系不上）、"
        "黄敏 15900000006（📵Telegram联系不上）"
    )
    assert county.link is None
    # The step's repeats stay on Telegram: the robots hear of each page event once.
    sent_before = len(robots["county-dingtalk"].sent)
    clock.set(local(2, 9, 5))
    await district.settle()
    assert sum("⏰" in m.text and "20261202-001" in m.text for m in yang.messages()) == 1
    assert len(robots["school-wecom"].sent) == 1
    assert len(robots["county-dingtalk"].sent) == sent_before


async def test_a_page_telegram_refuses_is_told_to_the_county_robot(
    district: LocalStack, clock: MovableClock, robots: dict[str, FakeRobot]
) -> None:
    ma = await linked(district, clock, "SB01-05", 9311, "Jun", language="en")
    li = await linked(district, clock, "QC002", 9312, "李秀英")  # at the county desk
    # She blocks the bot, and the bot is not told (the update was lost): Telegram refuses.
    district.emulator.world.chats[9312].blocked = True
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Fire")
    await ma.wait_for()
    await ma.press("Serious")
    await ma.wait_for()
    await ma.send("Smoke from the kitchen; pupils evacuated.")
    await ma.wait_for()
    await ma.press("⏫ Report and pass straight to the county")
    await ma.wait_for()
    await district.settle()
    assert not any("20261202-001" in m.text for m in li.messages())
    # Nobody at the school is linked here, so she was paged early as the school's stand-in
    # (the fallback chain ends at the county desk); the robot heard of that page, then of
    # Telegram's refusal, after the county's own step paged the other two desk officers.
    found = [m for m in robots["county-dingtalk"].sent if "20261202-001" in m.title]
    assert found[0].text.splitlines()[-1] == "👤 已呼叫：李秀英 15900000002"
    refused = found[-1]
    assert refused.mention_phones == ("15900000002",)
    assert refused.text.splitlines()[-2:] == [
        "📵 Telegram无法把这条呼叫送达李秀英，现改在本群通知。",
        "👤 已呼叫：李秀英 15900000002（📵Telegram联系不上）",
    ]
