"""The leaders' daily digest through the real bot, at a moved clock (sample district).

Day 12-02 at 石坝小学: 郑强 clocks in on time and answers the 09:00 check-in, 何丽 (leader of the
day) clocks in 20 minutes late and leaves the 09:00 check-in unanswered, 孙小红 never comes to the
night shift; 郑强 reports a serious incident 90 minutes after it happened, late (迟报); 杨光明
answers the daily report in time, every other school misses it. The 08:00 digest of 12-03 covers
12-02 08:00–12-03 08:00 for the principal, the township officer and the county desk.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from conftest import TZ, linked
from icalendar import Calendar
from PIL import Image
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import Deadline, OutboxMessage, Person, Shift, Unit
from bot.sandbox import SentMessage, SimUser
from bot.sandbox.stack import LocalStack
from bot.services import digest, roster

SCHOOL = (32.4825, 105.1540)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 11))


@pytest.fixture
async def district(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def at(stack: LocalStack, clock: MovableClock, moment: datetime) -> None:
    clock.set(moment)
    await stack.settle()


WINDOW = "12-02 08:00–12-03 08:00"


def charts(user: SimUser) -> list[SentMessage]:
    """The charts of 12-03's digest."""
    return [m for m in user.messages() if m.photo is not None and WINDOW in (m.caption or "")]


def digests(user: SimUser) -> list[str]:
    """The digests of 12-03 (the one of 12-02 came at the first morning)."""
    return [m.text for m in user.messages() if m.text.startswith("📰") and WINDOW in m.text]


async def clock_in_here(user: SimUser) -> str:
    await user.send("/in")
    await user.wait_for()
    await user.send_location(SCHOOL[0] + 0.0005, SCHOOL[1], horizontal_accuracy=15)
    return (await user.wait_for()).text


async def test_the_digest_of_a_school_a_township_and_the_county_once_across_a_restart(
    district: LocalStack, clock: MovableClock
) -> None:
    stack = district
    await at(stack, clock, local(2, 6))
    yang = await linked(stack, clock, "SB01-01", 9201, "杨光明")  # principal, 石坝小学
    he = await linked(stack, clock, "SB01-02", 9202, "何丽")  # leader of the day 12-02
    zheng = await linked(stack, clock, "SB01-03", 9203, "郑强")  # staff 08:00–20:00
    wu = await linked(stack, clock, "SB002", 9204, "吴静")  # officer, 石坝乡
    li = await linked(stack, clock, "QC002", 9205, "李秀英", language="en")  # county desk

    await at(stack, clock, local(2, 8))
    assert "✅" in await clock_in_here(zheng)
    await at(stack, clock, local(2, 8, 20))
    assert "20" in await clock_in_here(he)

    await at(stack, clock, local(2, 9))
    await zheng.press("✅ 一切正常")
    await zheng.wait_for_answer()
    # A serious incident nobody passes up: the system forwards it at the deadline, late (迟报).
    # At 10:00 郑强 reports a serious incident that happened at 08:30: past the 1-hour rule (迟报).
    await at(stack, clock, local(2, 10))
    await zheng.send("/report")
    await zheng.wait_for()
    await zheng.press("学生伤病")
    await zheng.wait_for()
    await zheng.press("重大")
    await zheng.wait_for()
    await zheng.send("一名学生从单杠摔下，已送医。")
    await zheng.wait_for()
    await zheng.press("✅ 完成：填写时间和伤亡")
    await zheng.wait_for()
    await zheng.send("08:30")
    await zheng.wait_for()
    await zheng.press("无")
    await zheng.wait_for()
    await zheng.press("🚨 报告")
    await zheng.wait_for(lambda m: "20261202-001" in m.text)
    await at(stack, clock, local(2, 15))
    await yang.press("✅ 无事可报")
    await yang.wait_for_answer()
    await at(stack, clock, local(3, 7, 59))
    for reader in (yang, wu, li):
        assert not digests(reader)

    await at(stack, clock, local(3, 8))
    assert digests(yang) == [
        "📰 石坝小学值班简报，12-02 08:00–12-03 08:00\n"
        "事件：1起（迟报1起）；演练：0次\n"
        "• 20261202-001 学生伤病，重大 — ⚠️ 报告超过时限（迟报）\n"
        "日报：按时提交\n"
        "平安报告：应报2次，已回复1次（50%），其中迟复0次\n"
        "缺岗班次：1个；迟到签到：1次\n"
        "• 12-02 20:00 值班室：孙小红未签到"
    ]
    township = digests(wu)[0].splitlines()
    assert township[:4] == [
        "📰 石坝乡中心校值班简报，12-02 08:00–12-03 08:00",
        "事件：1起（迟报1起）；演练：0次",
        "• 20261202-001 学生伤病，重大，石坝小学 — ⚠️ 报告超过时限（迟报）",
        "日报：应报2份，按时1份，迟交0份，缺报1份",
    ]
    assert township[-4:] == [
        "分单位（有问题的在前）：",
        "❌ 石坝小学：1起事件（1起迟报）、1个班次缺岗、1次迟到签到、平安报告1/2",
        "❌ 石坝乡红岩小学：日报缺报、3个班次缺岗、平安报告0/2",
        "❌ 石坝乡中心校：3个班次缺岗、平安报告0/2",
    ]
    county = digests(li)[0].splitlines()
    assert county[3:6] == [
        "日报：应报5份，按时1份，迟交0份，缺报4份",
        "平安报告：应报16次，已回复1次（6%），其中迟复0次",
        "缺岗班次：22个；迟到签到：1次",
    ]
    assert len(county) == 7 + 8  # every unit of the county had a problem: one line each
    assert county[7].startswith("❌ 石坝小学：1起事件（1起迟报）")
    # A township's and the county's digest carry a chart (drawn by the sender), under the text;
    # a school's does not.
    await stack.settle()
    assert charts(yang) == []
    for reader in (wu, li):
        [chart] = charts(reader)
        assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
        text_at = next(i for i, m in enumerate(reader.messages()) if "08:00–12-03 08:00" in m.text)
        assert reader.messages().index(chart) > text_at
        width, height = Image.open(io.BytesIO(chart.photo)).size
        assert width == 1100 and height > 250

    # Planned twice and restarted: no second digest of the day.
    assert stack.db is not None
    settings = stack.runtime.settings if stack.runtime else None
    assert settings is not None
    for _ in range(2):
        await digest.plan_upcoming(
            stack.db, now=clock.now(), settings=settings.digest, tz=settings.bot.tz
        )
    await stack.restart_bot()
    await at(stack, clock, local(3, 8, 5))
    assert [len(digests(reader)) for reader in (yang, wu, li)] == [1, 1, 1]
    assert [len(charts(reader)) for reader in (yang, wu, li)] == [0, 1, 1]

    # The bot is down at the next digest time (12-04 08:00) and back at 10:00: the digest goes
    # out then, once, saying it is late.
    clock.set(local(4, 10))
    await stack.restart_bot()
    await stack.settle()
    await stack.restart_bot()
    await stack.settle()
    late = [m.text for m in yang.messages() if "12-03 08:00–12-04 08:00" in m.text]
    assert len(late) == 1
    assert late[0].splitlines()[1] == "⚠️ 延迟发送：当时值班系统未运行。"
    async with stack.db.read() as uow:
        planned = (
            await uow.session.exec(select(Deadline).where(col(Deadline.kind) == digest.KIND))
        ).all()
        rows = (
            await uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "digest"))
        ).all()
    assert sorted(d.key for d in planned) == [
        "digest:2026-12-02",
        "digest:2026-12-03",
        "digest:2026-12-04",
    ]
    # Five readers linked, three of them get digests (郑强 and 何丽 hold no such role).
    assert (
        len([r for r in rows if r.dedupe_key and r.dedupe_key.startswith("digest:2026-12-04")]) == 3
    )


async def test_calendar_sends_my_shifts_as_an_ics_document(
    sample: LocalStack, clock: MovableClock
) -> None:
    zheng = await linked(sample, clock, "SB01-03", 9301, "郑强")
    wang = await linked(sample, clock, "QC001", 9302, "王德明")  # the admin keeps no shifts
    await zheng.send("/calendar")
    sent = await zheng.wait_for(lambda m: m.document_name is not None)
    assert sent.document_name == "zhiban-SB01-03.ics"
    assert sent.caption == "📅 自30天前起的4个班次：打开文件即可加入手机日历。"
    assert sent.document_bytes is not None
    events = Calendar.from_ical(sent.document_bytes).walk("VEVENT")
    assert sample.db is not None
    async with sample.db.read() as uow:
        rows = (
            await uow.session.exec(
                select(Shift, Unit.name)
                .join(Person, col(Person.id) == Shift.person_id)
                .join(Unit, col(Unit.id) == Shift.unit_id)
                .where(Person.staff_no == "SB01-03")
                .order_by(col(Shift.start))
            )
        ).all()
    assert [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]), str(e["uid"])) for e in events
    ] == [(s.start, s.end, f"值班 · {s.post} · {unit}", f"shift-{s.id}@zhiban") for s, unit in rows]
    assert {str(e.decoded("dtstart").tzinfo) for e in events} == {"Asia/Shanghai"}
    await wang.send("/calendar")
    assert (await wang.wait_for()).text == "您自30天前起没有任何班次。"
