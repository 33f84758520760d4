"""/board through the real bot at a moved clock: a school, a township and the county.

The situation at 17:10 on 12-01: at 石坝小学 张老师 and 李带班 are on duty and clocked in, a
serious fire happened at 17:05 (its one-hour clock running), 李带班 left the 16:30 check-in
unanswered, the daily report came in as nothing to report, and 周带班 blocked the bot; at
木鱼小学 the duty post has been unmanned since 16:00, its duty staff missed the check-in, the
daily report is missing and its principal never linked an account.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District, build_district
from sqlmodel import col, select

from bot.callbacks import BoardPage, DailyNothing
from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import Account, AuditEntry, DailyReport, Person, RoleGrant, Shift, ShiftKind, Unit
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import incidents
from bot.services.incidents import ReportDraft
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")


def local(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(16))


@dataclass
class Scene:
    stack: LocalStack
    district: District
    users: dict[str, SimUser]


async def _add(db: Database, district: District, *, schools: int) -> None:
    """木鱼小学's principal (never linked) and duty staff, the day's shifts, more schools."""
    async with db.uow() as uow:
        session = uow.session
        s2 = district.units["S2"]
        for key, name, role in (
            ("s2principal", "陈校长", "principal"),
            ("s2staff", "吴老师", "staff"),
        ):
            person = Person(staff_no=f"X-{key}", name=name, unit_id=s2)
            session.add(person)
            await session.flush()
            assert person.id is not None
            session.add(RoleGrant(person_id=person.id, role=role, unit_id=s2))
            district.people[key] = person.id
        for unit, post, key, kind in (
            ("S", "值班室", "staff", ShiftKind.STAFF),
            ("S", "带班", "leader", ShiftKind.LEADER),
            ("S2", "值班室", "s2staff", ShiftKind.STAFF),
        ):
            session.add(
                Shift(
                    unit_id=district.units[unit],
                    post=post,
                    start=local(16),
                    end=local(8, day=2),
                    person_id=district.people[key],
                    kind=kind,
                    planned_at=local(16),  # no shift reminders: this test is about the board
                )
            )
        # Many more schools under 木鱼镇, each with a principal who never linked: the county's
        # board then needs more than one page.
        township = await session.get(Unit, district.units["T2"])
        assert township is not None
        for index in range(schools):
            unit = Unit(code=f"MY{index:03d}", name=f"木鱼镇第{index:03d}小学", kind="school")
            unit.parent_id = township.id
            session.add(unit)
            await session.flush()
            unit.path = f"{township.path}{unit.id}/"
            person = Person(
                staff_no=f"MYP{index:03d}", name=f"校长{index:03d}", unit_id=unit.id or 0
            )
            session.add(person)
            await session.flush()
            session.add(RoleGrant(person_id=person.id or 0, role="principal", unit_id=unit.id or 0))
        await uow.commit()


@pytest.fixture
async def scene(database_url: str, db: Database, clock: MovableClock) -> AsyncIterator[Scene]:
    district = await build_district(db)
    await _add(db, district, schools=90)
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "checkins": {"times": ["16:30"]}}, environ={}
    )
    async with LocalStack(settings, clock) as stack:
        users = {}
        for key, name in (
            ("staff", "张老师"),
            ("leader", "李带班"),
            ("leader2", "周带班"),
            ("safety", "孙安全"),
            ("principal", "王校长"),
            ("officer", "赵专干"),
            ("officer2", "钱专干"),
            ("desk", "Desk Chen"),
        ):
            users[key] = stack.emulator.user(district.chats[key], name)
            await users[key].start()
            await users[key].wait_for()
        await stack.settle()
        yield Scene(stack, district, users)


async def blocked(db: Database, person_id: int) -> None:
    """Wait until the bot has taken the block (its update is handled in the background)."""
    for _ in range(200):
        async with db.read() as uow:
            account = (
                await uow.session.exec(select(Account).where(Account.person_id == person_id))
            ).one()
        if account.unreachable_since is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the block was not recorded")


async def at(stack: LocalStack, clock: MovableClock, moment: datetime) -> None:
    clock.set(moment)
    await stack.settle()


async def test_board_for_a_school_a_township_and_the_county(
    scene: Scene, db: Database, clock: MovableClock
) -> None:
    stack, district, users = scene.stack, scene.district, scene.users
    staff, leader, principal = users["staff"], users["leader"], users["principal"]
    officer, officer2, desk = users["officer"], users["officer2"], users["desk"]

    # 16:05: 张老师 and 李带班 clock in at 石坝小学; 木鱼小学's 吴老师 has no account and does not
    for person in (staff, leader):
        await at(stack, clock, local(16, 5))
        await person.send("/in")
        await person.wait_for(lambda m: "签到" in m.text)
    # 16:20: 周带班, the school's other duty leader, blocks the bot
    await at(stack, clock, local(16, 20))
    await users["leader2"].block()
    await blocked(db, district.people["leader2"])
    # 16:30 check-in: 张老师 answers, 李带班 does not
    await at(stack, clock, local(16, 30))
    prompt = await staff.wait_for(lambda m: "平安报告" in m.text)
    await staff.press("✅ 一切正常", message_id=prompt.message_id)
    await staff.wait_for_answer()
    # 16:40: 石坝小学's principal answers the daily report with nothing to report
    await at(stack, clock, local(16, 40))
    async with db.read() as uow:
        report = (
            await uow.session.exec(
                select(DailyReport).where(DailyReport.unit_id == district.units["S"])
            )
        ).one()
    assert report.id is not None
    daily = await principal.wait_for(lambda m: "日报" in m.text)
    await principal.press_data(daily.message_id, DailyNothing(report.id).data)
    await principal.wait_for_answer()
    # 17:08: 张老师 reports a serious fire that happened at 17:05
    await at(stack, clock, local(17, 8))
    reported = await incidents.report(
        stack.db,  # type: ignore[arg-type]
        person_id=district.people["staff"],
        draft=ReportDraft(
            category="fire",
            severity="serious",
            description="实验室起火，已疏散",
            occurred_at=local(17, 5),
        ),
        now=clock.now(),
        policies=stack.runtime.settings.escalation,
        ctx=stack.runtime.paging,
    )
    await at(stack, clock, local(17, 10))
    # (sending a burst to one chat takes clock time: the board reads the clock as it stands)
    now = clock.now()
    hhmm = now.astimezone(TZ).strftime("%H:%M")
    since = minutes(now - local(17, 5))
    left = minutes(local(18, 5) - now)
    unmanned = minutes(now - local(16))

    # The school's board, for its principal, in Chinese: a few lines
    await principal.send("/board")
    board = await principal.wait_for(lambda m: "值班看板" in m.text)
    assert board.text == "\n".join(
        [
            f"📋 值班看板：石坝小学（S）· {hhmm}",
            "👮 在岗：张老师（值班室） ✅、李带班（带班，带班领导） ✅",
            f"🚨 {reported.number} · 重大 · 火灾",
            f"   🕒 发生于{since}分钟前（17:05） · 须于18:05前上报，还剩{left}分钟",
            "   📌 当前在：石坝小学（尚未接报）",
            "🛡 16:30平安报告未回复：李带班",
            "📝 日报：零报告（16:40）",
            "📵 联系不上：周带班（带班领导；自16:20起消息无法送达）",
        ]
    ), board.text
    assert [list(row) for row in board.buttons] == [["🔄 刷新"]]

    # The township's board: the school with the fire first, one line
    await officer.send("/board")
    township = await officer.wait_for(lambda m: "值班看板" in m.text)
    lines = township.text.split("\n")
    assert lines[0] == f"📋 值班看板：石坝乡中心校（T）· {hhmm}"
    assert lines[1] == (
        "🏫 学校1所 · 👮 值班2人，已签到2人 · 🚫 空岗0 · 🚨 未结事件1起 · 🛡 平安报告未回复1 "
        "· 📝 日报未报0 · 📵 联系不上的领导1人"
    )
    assert lines[3] == (
        f"🔴 石坝小学（S）：🚨 重大火灾 {reported.number}，还剩{left}分钟 · 🛡 平安报告未回复1 "
        "· 📵 联系不上1人"
    )
    assert lines[4] == "✅ 其余1个单位一切正常。"

    # The county desk, in English: a summary, the worst schools first, more than one page
    await desk.send("/board")
    county = await desk.wait_for(lambda m: "Duty board" in m.text)
    lines = county.text.split("\n")
    assert lines[0] == f"📋 Duty board: 青川县教育局 (C) · as of {hhmm}"
    assert lines[1] == (
        "🏫 schools 92 · 👮 on duty 3, clocked in 2 · 🚫 unmanned 1 · 🚨 open incidents 1 · "
        "🛡 check-ins missed 2 · 📝 daily reports missing 91 · 📵 leaders unreachable 92"
    )
    assert lines[3] == (
        f"🔴 石坝小学 (S): 🚨 Serious Fire {reported.number}, {left} min left · "
        "🛡 check-ins missed 1 · 📵 unreachable 1"
    )
    assert lines[4] == (
        f"🔴 木鱼小学 (S2): 🚫 unmanned 1 (1 h {unmanned - 60} min) · 🛡 check-ins missed 1 · "
        "📝 daily report missing · 📵 unreachable 1"
    )
    assert lines[5] == "🟡 木鱼镇第000小学 (MY000): 📝 daily report missing · 📵 unreachable 1"
    assert len(county.text) <= 4096
    assert county.buttons[0] == ("◀", "1/2", "▶")
    assert county.buttons[1] == ("🔄 Refresh",)

    # ▶ edits the same message to page 2, which repeats the header
    await desk.press("▶", message_id=county.message_id)
    second = await desk.wait_for()
    assert second.message_id == county.message_id
    assert second.text.split("\n")[:2] == lines[:2]
    assert "木鱼镇第089小学 (MY089)" in second.text
    assert second.text.endswith("✅ 2 more units all clear.")
    assert second.buttons[0] == ("◀", "2/2", "▶")

    # Refresh at 17:25 edits it in place with the new time and the clocks moved on
    await at(stack, clock, local(17, 25))
    now = clock.now()
    hhmm = now.astimezone(TZ).strftime("%H:%M")
    await desk.press("🔄 Refresh", message_id=county.message_id)
    fresh = await desk.wait_for()
    assert fresh.message_id == county.message_id
    assert fresh.text.startswith(f"📋 Duty board: 青川县教育局 (C) · as of {hhmm}")
    assert "木鱼镇第089小学" in fresh.text  # still page 2
    # back to page 1; a page beyond the end (the board may have shrunk since) shows the last one
    await desk.press("◀", message_id=county.message_id)
    assert (await desk.wait_for()).buttons[0] == ("◀", "1/2", "▶")
    await desk.press_data(county.message_id, BoardPage(district.units["C"], 999).data)
    last = await desk.wait_for()
    assert last.message_id == county.message_id and last.buttons[0] == ("◀", "2/2", "▶")

    # /board S2 by 石坝乡's officer: outside the area, one sentence, nothing shown
    await officer.send("/board S2")
    refused = await officer.wait_for()
    assert refused.text == (
        "您的职责范围内没有单位S2。发送 /board 查看整个辖区，或发送 /board 加辖区内单位的代码。"
    )
    await officer.send("/board NOSUCH")
    refused = await officer.wait_for()
    assert refused.text.startswith("您的职责范围内没有单位NOSUCH。")

    # 木鱼镇's officer narrows to 木鱼小学: unmanned, missed check-in, missing report, unlinked
    await officer2.send("/board S2")
    s2 = await officer2.wait_for(lambda m: "值班看板" in m.text)
    assert s2.text == "\n".join(
        [
            f"📋 值班看板：木鱼小学（S2）· {hhmm}",
            "👮 在岗：吴老师（值班室） ❌",
            f"🚫 空岗：值班室（吴老师）已1小时{minutes(now - local(16)) - 60}分钟",
            "🛡 16:30平安报告未回复：吴老师",
            "📝 日报：未报（应于17:00前）",
            "📵 联系不上：陈校长（校长；未绑定账号）",
        ]
    ), s2.text

    # A forged press for 石坝乡's township by 木鱼镇's officer: refused, audited, nothing shown
    before = len(officer2.messages())
    await officer2.press_data(s2.message_id, BoardPage(district.units["T"], 0).data)
    answer = await officer2.wait_for_answer()
    assert answer.text == "该单位不在您的职责范围内。"
    assert len(officer2.messages()) == before
    assert officer2.messages()[-1].text == s2.text
    # Duty staff have no board
    await staff.send("/board")
    assert (await staff.wait_for()).text.startswith("值班看板供校长")
    await stack.settle()
    async with db.read() as uow:
        refusals = (
            await uow.session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "board.view", col(AuditEntry.allowed).is_(False))
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert [(r.actor_person_id, (r.detail or {}).get("reason")) for r in refusals] == [
        (district.people["officer"], "not in area"),
        (district.people["officer"], "not in area"),
        (district.people["officer2"], "button not in area"),
        (district.people["staff"], "role"),
    ]
    assert refusals[2].subject_id == district.units["T"]
