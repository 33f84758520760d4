"""The daily safety report (日报/零报告) of the sample district through the real bot, moved clock.

Five schools owe a report for 12-02 (due 17:00, prompted at 15:00, roll-ups at 18:00): 石坝小学
submits one, 木鱼小学 answers Nothing to report, 石坝乡红岩小学 stays silent and is paged, and
the roll-ups of its township and of the county name it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import linked
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import AuditEntry, DailyReport, Deadline, Unit
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import daily_reports, roster

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 2)
TOO_LONG = "文字太长，请控制在3000字以内。"


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


def texts(user: SimUser) -> list[str]:
    return [m.text for m in user.messages()]


def having(user: SimUser, part: str) -> list[str]:
    return [t for t in texts(user) if part in t]


async def report_of(stack: LocalStack, code: str, day: date = DAY) -> DailyReport:
    assert stack.db is not None
    async with stack.db.read() as uow:
        return (
            await uow.session.exec(
                select(DailyReport)
                .join(Unit, col(Unit.id) == DailyReport.unit_id)
                .where(Unit.code == code, DailyReport.day == day)
            )
        ).one()


async def test_a_day_of_daily_reports_with_one_school_missing(
    district: LocalStack, clock: MovableClock
) -> None:
    stack = district
    await at(stack, clock, local(2, 6))
    yang = await linked(stack, clock, "SB01-01", 9101, "杨光明")  # principal, 石坝小学
    he = await linked(stack, clock, "SB01-02", 9102, "何丽")  # duty leader, 石坝小学
    zheng = await linked(stack, clock, "SB01-03", 9103, "郑强")
    feng = await linked(stack, clock, "SB02-01", 9104, "冯志刚")  # principal, 红岩小学
    jiang = await linked(stack, clock, "MY01-01", 9105, "蒋文")  # principal, 木鱼小学
    wu = await linked(stack, clock, "SB002", 9106, "吴静")  # officer, 石坝乡
    li = await linked(stack, clock, "QC002", 9107, "李秀英")  # county desk

    # A general incident at 石坝小学 in the morning: the prompt lists it.
    await at(stack, clock, local(2, 10))
    await zheng.send("/report")
    await zheng.wait_for()
    await zheng.press("学生伤病")
    await zheng.wait_for()
    await zheng.press("一般")
    await zheng.wait_for()
    await zheng.send("一名学生体育课扭伤脚踝。")
    await zheng.wait_for()
    await zheng.press("🚨 报告")
    await zheng.wait_for(lambda m: "20261202-001" in m.text)

    await at(stack, clock, local(2, 14, 59))
    assert not having(he, "安全日报")
    await at(stack, clock, local(2, 15))
    prompt = he.last()
    assert prompt.text.splitlines() == [
        "📋 石坝小学12-02安全日报，请于17:00前提交。",
        "本校今日已报事件：",
        "• 20261202-001 学生伤病，一般，10:00",
        "请提交日报（简要说明，或按所列事件提交），或回复无事可报。",
    ]
    assert [list(row) for row in prompt.buttons] == [["📝 提交", "✅ 无事可报"]]
    assert having(yang, "📋 石坝小学12-02安全日报")
    assert having(feng, "📋 石坝乡红岩小学12-02安全日报")
    assert "本校今日未报告事件。" in having(jiang, "安全日报")[0]

    # 何丽 writes it: 📝 Submit, one message, 📤 Send.
    await he.press("📝 提交")
    assert (await he.wait_for()).text.startswith("石坝小学12-02日报：请用一条消息写明")
    await he.send("扭伤学生已送医，家长已通知。其余正常。")
    assert "扭伤学生已送医" in (await he.wait_for()).text
    await he.press("📤 发送")
    assert (await he.wait_for()).text == "已提交石坝小学12-02的日报。"
    await stack.settle()
    edited = next(m for m in yang.messages() if m.text.startswith("📋 石坝小学12-02"))
    assert edited.text == "📋 石坝小学12-02：何丽已于15:00提交日报。"
    assert not edited.buttons
    # 杨光明 answers too, on his old prompt's data: the first answer stands.
    await yang.press_data(edited.message_id, f"dy:z:{(await report_of(stack, 'SB01')).id}")
    assert (await yang.wait_for_answer()).text == "石坝小学12-02的日报已由何丽于12-02 15:00提交。"
    sb01 = await report_of(stack, "SB01")
    assert (sb01.submitted_by_id is not None, sb01.nothing_to_report, sb01.text) == (
        True,
        False,
        "扭伤学生已送医，家长已通知。其余正常。",
    )

    # 木鱼小学: Nothing to report, one tap.
    await jiang.press("✅ 无事可报")
    assert (await jiang.wait_for_answer()).text == "已提交木鱼小学12-02的日报。"
    assert (await report_of(stack, "MY01")).nothing_to_report

    # 红岩小学 stays silent: its principal is paged at the deadline, not before.
    await at(stack, clock, local(2, 16, 59))
    assert not having(feng, "日报缺报")
    await at(stack, clock, local(2, 17))
    page = next(m for m in feng.messages() if "日报缺报" in m.text)
    assert page.text.splitlines()[:2] == [
        "🚨 日报缺报：石坝乡红岩小学未提交12-02的日报",
        "📍 地点：石坝乡红岩小学",
    ]
    assert "✅ 接报" in [label for row in page.buttons for label in row]
    assert not having(wu, "日报缺报")
    assert not having(wu, "安全日报")

    # Deadline + escalate_after: the township officer is paged, and both roll-ups go out.
    await at(stack, clock, local(2, 18))
    assert having(wu, "🚨 日报缺报：石坝乡红岩小学")
    rollup = having(wu, "📋 石坝乡中心校12-02安全日报")
    assert len(rollup) == 1
    assert rollup[0].splitlines() == [
        "📋 石坝乡中心校12-02安全日报",
        "缺报1，迟报0，已报1，无事可报0",
        "❌ 石坝乡红岩小学：缺报",
        "📝 石坝小学：已报",
    ]
    county = having(li, "📋 全县12-02安全日报")
    assert len(county) == 1
    lines = county[0].splitlines()
    assert lines[:2] == ["📋 全县12-02安全日报", "3所学校缺报"]
    assert "❌ 石坝乡中心校：已交1/2（迟报0，无事可报0）" in lines
    assert "   缺报：石坝乡红岩小学" in lines
    assert "❌ 木鱼镇中心校：已交1/2（迟报0，无事可报1）" in lines  # 青坪小学 is missing
    assert "❌ 局直学校：已交0/1（迟报0，无事可报0）" in lines

    # Late: 冯志刚 answers at 18:30; the pages say so and the report is marked late.
    await at(stack, clock, local(2, 18, 30))
    await feng.press("✅ 无事可报")
    assert (await feng.wait_for_answer()).text == (
        "已提交石坝乡红岩小学12-02的日报，已过截止时间（记为迟报）。"
    )
    await stack.settle()
    closed = next(m for m in feng.messages() if "日报缺报" in m.text)
    assert closed.text.endswith("📝 冯志刚已于18:30提交日报，迟报1小时30分钟。")
    assert not closed.buttons
    officer_page = next(m for m in wu.messages() if "🚨 日报缺报" in m.text)
    assert officer_page.text.endswith("📝 冯志刚已于18:30提交日报，迟报1小时30分钟。")
    assert daily_reports.status_of(await report_of(stack, "SB02"), clock.now()) == "late"

    # The roll-ups went out once, however often the engine looks again.
    await at(stack, clock, local(2, 19))
    assert len(having(wu, "📋 石坝乡中心校12-02安全日报")) == 1
    assert len(having(li, "📋 全县12-02安全日报")) == 1


async def test_bad_daily_report_input_changes_nothing(
    district: LocalStack, clock: MovableClock
) -> None:
    stack = district
    await at(stack, clock, local(2, 6))
    he = await linked(stack, clock, "SB01-02", 9201, "何丽")
    shen = await linked(stack, clock, "MY01-02", 9202, "沈丹")  # duty leader of another school
    wu = await linked(stack, clock, "SB002", 9203, "吴静")  # township officer above 石坝小学
    fu = await linked(stack, clock, "MY02-01", 9204, "傅海")  # principal, 青坪小学
    await at(stack, clock, local(2, 15))
    sb01 = await report_of(stack, "SB01")

    # Without the role at 石坝小学: forged data on one's own message, refused and audited.
    for user in (shen, wu):
        await user.press_data(user.last().message_id, f"dy:z:{sb01.id}")
        assert (await user.wait_for_answer()).text == (
            "只有石坝小学的带班领导、安全员或校长可以提交日报。"
        )
        await user.press_data(user.last().message_id, f"dy:o:{sb01.id}")
        assert (await user.wait_for_answer()).text == (
            "只有石坝小学的带班领导、安全员或校长可以提交日报。"
        )
    # Forged data that no button writes.
    await he.press_data(he.last().message_id, "dy:z:0")
    assert (await he.wait_for_answer()).text == "此按钮已失效。"
    assert (await report_of(stack, "SB01")).submitted_at is None
    assert stack.db is not None
    async with stack.db.read() as uow:
        refusals = (
            await uow.session.exec(
                select(AuditEntry).where(
                    AuditEntry.action == "daily_report.submit", col(AuditEntry.allowed).is_(False)
                )
            )
        ).all()
    assert len(refusals) == 4

    # Submitting twice: the second press is told who was first.
    await he.press("✅ 无事可报")
    assert (await he.wait_for_answer()).text == "已提交石坝小学12-02的日报。"
    await he.press_data(he.last().message_id, f"dy:o:{sb01.id}")
    assert (await he.wait_for_answer()).text == "石坝小学12-02的日报已由何丽于12-02 15:00提交。"

    # Over-long text in the conversation: one sentence, the draft stays.
    my02 = await report_of(stack, "MY02")
    await fu.press("📝 提交")
    await fu.wait_for()
    await fu.send("长" * 3001)
    assert (await fu.wait_for()).text == TOO_LONG
    await fu.press("✖ 取消")
    assert (await fu.wait_for()).text == "已取消；日报未提交。"

    # Yesterday's prompt, the next morning: stale, and the day stays missing.
    await at(stack, clock, local(3, 9))
    await fu.press_data(fu.messages()[-1].message_id, f"dy:z:{my02.id}")
    assert (await fu.wait_for_answer()).text == "此提醒是12-02的，当天已过；该日日报记为缺报。"
    after = await report_of(stack, "MY02")
    assert after.submitted_at is None
    assert daily_reports.status_of(after, clock.now()) == "missing"


async def test_after_downtime_the_day_is_caught_up_late_and_rolled_up_once(
    district: LocalStack, clock: MovableClock
) -> None:
    stack = district
    await at(stack, clock, local(1, 12))  # 12-01 is planned: the schools owe reports already
    await at(stack, clock, local(2, 6))
    feng = await linked(stack, clock, "SB02-01", 9301, "冯志刚")
    wu = await linked(stack, clock, "SB002", 9302, "吴静")
    # The bot "was down" from 06:00 to 19:00: nothing ran; now everything due goes out late.
    await at(stack, clock, local(2, 19))
    prompt = next(m for m in feng.messages() if "12-02安全日报，请于17:00前提交" in m.text)
    assert prompt.text.endswith("⚠️ 延迟发送：当时值班系统未运行。")
    page = next(m for m in feng.messages() if "日报缺报：石坝乡红岩小学未提交12-02" in m.text)
    assert "⚠️" in page.text
    rollup = having(wu, "📋 石坝乡中心校12-02安全日报")
    assert len(rollup) == 1
    assert "⚠️ 延迟发送：当时值班系统未运行。" in rollup[0].splitlines()
    assert rollup[0].splitlines()[-2:] == ["❌ 石坝乡红岩小学：缺报", "❌ 石坝小学：缺报"]
    await stack.restart_bot()
    await at(stack, clock, local(2, 20))
    assert len(having(wu, "📋 石坝乡中心校12-02安全日报")) == 1


async def test_a_day_lost_to_downtime_is_rolled_up_late_without_asking_for_the_report(
    district: LocalStack, clock: MovableClock
) -> None:
    stack = district
    await at(stack, clock, local(1, 12))  # 12-01 is planned: the schools owe reports already
    await at(stack, clock, local(2, 6))
    feng = await linked(stack, clock, "SB02-01", 9401, "冯志刚")
    wu = await linked(stack, clock, "SB002", 9402, "吴静")
    # Down from 06:00 on 12-02 to 10:00 on 12-03: 12-02 can no longer be reported.
    await at(stack, clock, local(3, 10))
    assert not having(feng, "12-02安全日报")
    assert not having(feng, "未提交12-02")
    rollup = having(wu, "📋 石坝乡中心校12-02安全日报")
    assert len(rollup) == 1
    assert "⚠️ 延迟发送：当时值班系统未运行。" in rollup[0]
    assert (await report_of(stack, "SB02")).submitted_at is None


async def test_schools_imported_during_an_outage_owe_no_report_for_the_days_before(
    database_url: str, clock: MovableClock
) -> None:
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:  # running at 11:00 with no roster yet
        assert stack.db is not None
        await stack.settle()
        clock.set(local(4, 9))  # down for three days; the roster is imported meanwhile
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        async with stack.db.read() as uow:
            assert (await uow.session.exec(select(DailyReport))).all() == []
            kinds = (await uow.session.exec(select(Deadline.kind))).all()
            assert not [kind for kind in kinds if kind.startswith("daily.")]  # no roll-up either
        await at(stack, clock, local(4, 12))
        assert {r.day for r in [await report_of(stack, "SB01", date(2026, 12, 4))]} == {
            date(2026, 12, 4)
        }
