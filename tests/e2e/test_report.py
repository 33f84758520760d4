"""/report, /followup, /incidents and /incident through the real bot, with a moved clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from conftest import linked, local
from sqlmodel import select

from bot.clock import MovableClock
from bot.models import AuditEntry, ConversationDraft, Incident, Unit
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack

NUMBER = re.compile(r"Reported: (\d{8}-\d{3})\. The leaders of 石坝小学 are being paged\.")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(2, 9))


async def incidents_stored(stack: LocalStack) -> list[Incident]:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        return list((await uow.session.exec(select(Incident))).all())


async def facts(stack: LocalStack, number: str) -> tuple[int | None, bool]:
    """The incident row's highest unit reached and its late flag."""
    assert stack.db is not None
    async with stack.db.uow() as uow:
        incident = (await uow.session.exec(select(Incident).where(Incident.number == number))).one()
        return incident.reached_unit_id, incident.forwarded_late


async def unit_id(stack: LocalStack, code: str) -> int | None:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        return (await uow.session.exec(select(Unit.id).where(Unit.code == code))).one()


async def drafts_open(stack: LocalStack) -> int:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        return len((await uow.session.exec(select(ConversationDraft))).all())


async def described(user: SimUser, text: str = "Smoke from the kitchen; pupils evacuated.") -> str:
    """/report, Fire, Serious, and what happened: the draft's summary is showing."""
    await user.send("/report")
    assert (await user.wait_for()).text.startswith("🚨 Report an incident.")
    await user.press("Fire")
    assert (await user.wait_for()).text == "Fire. How serious is it?"
    await user.press("Serious")
    assert (await user.wait_for()).text.startswith("Place: 石坝小学. Write what happened")
    await user.send(text)
    return (await user.wait_for()).text


async def test_a_serious_incident_acknowledged_at_the_school_is_passed_up_by_the_system_late(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9101, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9102, "何丽")  # leads the duty on 12-02
    yang = await linked(day, clock, "SB01-01", 9103, "杨光明")  # the principal
    wu = await linked(day, clock, "SB002", 9104, "吴静")  # the township's officer
    li = await linked(day, clock, "QC002", 9105, "李秀英")  # at the county desk
    # four interactions: the category, the severity, one message, Report
    summary = await described(ma)
    assert summary.splitlines()[:5] == [
        "Draft report:",
        "Serious · Fire",
        "Place: 石坝小学",
        "Happened: 12-02 09:00",
        "Casualties: none given",
    ]
    assert ma.last().buttons[:2] == (
        ("🚨 Report",),
        ("⏫ Report and pass straight to the county",),
    )
    await ma.press("🚨 Report")
    done = (await ma.wait_for()).text
    match = NUMBER.match(done)
    assert match is not None and match.group(1) == "20261202-001"
    await day.settle()
    # paged at the school: the duty leader of the day and the principal, with the clock
    for leader in (he, yang):
        page = next(m for m in leader.messages() if "20261202-001" in m.text)
        assert "火灾" in page.text and "✅ 接报" in page.buttons[0]
        assert "🕒 发生于0分钟前（09:00） · 须于10:00前上报，还剩1小时" in page.text
        assert "📌 当前在：石坝小学（尚未接报）" in page.text
    [incident] = await incidents_stored(day)
    assert (incident.category, incident.severity, incident.place) == ("fire", "serious", "石坝小学")
    assert await drafts_open(day) == 0
    # acknowledged at the school, and not passed up
    clock.set(local(2, 9, 2))
    await yang.press("✅ 接报")
    await yang.wait_for_answer()
    await day.settle()
    for minute in (10, 15, 30, 49):  # the township's and the county's steps stay quiet
        clock.set(local(2, 9, minute))
        await day.settle()
    assert not any("20261202-001" in m.text for m in wu.messages() + li.messages())
    assert await facts(day, "20261202-001") == (await unit_id(day, "SB01"), False)
    # at the deadline (10:00) − the margin (10 min), the system passes it up itself
    clock.set(local(2, 9, 50))
    await day.settle()
    for above in (wu, li):
        page = next(m for m in above.messages() if "20261202-001" in m.text)
        assert "🕒 发生于50分钟前（09:00） · 须于10:00前上报；系统已代为上报，记为迟报" in page.text
        assert "📌 当前在：青川县教育局（尚未接报）" in page.text
        assert "☎ 请先电话联系：马俊 13800000015、何丽 15900000012、杨光明 13800000011" in page.text
    assert await facts(day, "20261202-001") == (await unit_id(day, "QC"), True)
    await ma.send("/incident 20261202-001")
    timeline = (await ma.wait_for()).text.splitlines()
    assert timeline[1:3] == [
        "🕒 Happened 50 min ago (09:00) · report due by 10:00; passed up by the system, "
        "recorded late (迟报)",
        "📌 Now with: 青川县教育局 (not yet acknowledged)",
    ]
    assert "09:02 acknowledged by 杨光明" in timeline
    for unit in ("石坝乡中心校", "青川县教育局"):
        assert (
            f"09:50 passed up by the system to {unit}: the report deadline was near; "
            "recorded late (迟报) ⚠️"
        ) in timeline


async def test_a_general_incident_acknowledged_at_the_school_never_leaves_it(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9171, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9172, "何丽")
    yang = await linked(day, clock, "SB01-01", 9173, "杨光明")
    wu = await linked(day, clock, "SB002", 9174, "吴静")
    li = await linked(day, clock, "QC002", 9175, "李秀英")
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Student injury or illness")
    await ma.wait_for()
    await ma.press("General")
    await ma.wait_for()
    await ma.send("A pupil sprained an ankle in PE.")
    await ma.wait_for()
    await ma.press("🚨 Report")
    assert NUMBER.match((await ma.wait_for()).text)
    assert day.db is not None
    async with day.db.read() as uow:
        found = await uow.session.exec(
            select(AuditEntry.action, AuditEntry.actor_account).where(
                AuditEntry.action == "incident.report"
            )
        )
        assert found.all() == [("incident.report", "telegram:9171")]  # where the report came from
    await day.settle()
    page = next(m for m in he.messages() if "20261202-001" in m.text)
    assert "🕒 发生于0分钟前（09:00）\n📌 当前在：石坝小学（尚未接报）" in page.text  # no deadline
    clock.set(local(2, 9, 3))
    await he.press("✅ 接报")
    await he.wait_for_answer()
    for hour in range(9, 15):  # well past every step of every level
        for minute in (10, 30, 50):
            clock.set(local(2, hour, minute))
            await day.settle()
    for above in (yang, wu, li):  # the principal's step at the school stopped too
        assert not any("20261202-001" in m.text for m in above.messages())
    assert await facts(day, "20261202-001") == (await unit_id(day, "SB01"), False)
    await he.send("/incidents")
    listed = (await he.wait_for()).text
    assert "🕒 发生于5小时50分钟前（09:00）\n📌 当前在：石坝小学（何丽已接报）" in listed


async def test_the_long_path_with_back_and_cancel(day: LocalStack, clock: MovableClock) -> None:
    ma = await linked(day, clock, "SB01-05", 9111, "Jun", language="en")
    await described(ma, "A pupil fell on the stairs.")
    await ma.send_photo()
    await ma.wait_for()
    await ma.press("✅ Done: time and casualties")
    assert (await ma.wait_for()).text.startswith("When did it happen?")
    await ma.press("↩ Back")
    assert (await ma.wait_for()).text.startswith("Draft report:")
    await ma.press("✅ Done: time and casualties")
    await ma.wait_for()
    await ma.send("8:40")
    assert (await ma.wait_for()).text.startswith("Any casualties?")
    await ma.send("one pupil hurt")
    check = (await ma.wait_for()).text
    assert "Happened: 12-02 08:40" in check and "Casualties: one pupil hurt" in check
    assert "📎 Attachments: 1" in check
    await ma.press("✖ Cancel")
    assert (await ma.wait_for()).text == "Cancelled; nothing was reported."
    assert await incidents_stored(day) == [] and await drafts_open(day) == 0
    await ma.press("🚨 Report")  # on the older summary that still shows it
    answer = await ma.wait_for_answer()
    assert answer.show_alert and answer.text is not None
    assert answer.text.startswith("This report is no longer open")
    assert await incidents_stored(day) == []


async def test_a_typed_category_is_refused_and_the_draft_stays(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9121, "Jun", language="en")
    await ma.send("/report")
    await ma.wait_for()
    await ma.send("Fire")
    refused = await ma.wait_for()
    assert refused.text == "Please choose one of the listed categories."
    await ma.press("Fire", message_id=refused.message_id)
    await ma.wait_for()
    await ma.send("serious")
    assert (await ma.wait_for()).text == "Please choose one of the listed severities."
    await ma.press("Serious")
    assert (await ma.wait_for()).text.startswith("Place: 石坝小学.")
    assert await drafts_open(day) == 1 and await incidents_stored(day) == []


async def test_a_report_in_progress_resumes_after_a_restart(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9131, "Jun", language="en")
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Fire")
    await ma.wait_for()
    await day.restart_bot()
    await ma.press("Serious")
    assert (await ma.wait_for()).text.startswith("Place: 石坝小学.")
    await day.restart_bot()
    await ma.send("Smoke in the kitchen.")
    assert (await ma.wait_for()).text.startswith("Draft report:")
    await ma.press("🚨 Report")
    assert NUMBER.match((await ma.wait_for()).text)


async def test_incidents_incident_and_a_follow_up_reaching_the_paged_leader(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9141, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9142, "何丽")
    await described(ma)
    await ma.press("🚨 Report")
    await ma.wait_for()
    await day.settle()
    clock.set(local(2, 9, 12))
    await he.send("/incidents")
    listed = (await he.wait_for()).text
    assert "20261202-001" in listed and "石坝小学" in listed
    await ma.send("/incident 20261202-001")
    timeline = (await ma.wait_for()).text
    assert timeline.startswith("20261202-001 · Serious · Fire · 石坝小学")
    assert "reported by 马俊" in timeline and "paged 何丽" in timeline
    await ma.send("/followup 20261202-001 Fire is out; nobody hurt.")
    assert (await ma.wait_for()).text.startswith("Follow-up added to 20261202-001")
    await day.settle()
    assert any("Fire is out; nobody hurt." in m.text for m in he.messages())


async def test_report_straight_to_the_county_pages_the_desk_at_once(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9151, "Jun", language="en")
    desk = await linked(day, clock, "QC002", 9152, "李秀英")
    await described(ma)
    await ma.press("⏫ Report and pass straight to the county")
    done = (await ma.wait_for()).text.splitlines()
    assert NUMBER.match(done[0])
    assert done[1] == "It went straight to the county as well (越级直报)."
    # the county has it at once, on the record and on the desk's page
    assert await facts(day, "20261202-001") == (await unit_id(day, "QC"), False)
    await day.settle()
    page = next(m for m in desk.messages() if "20261202-001" in m.text)
    assert "🕒 发生于0分钟前（09:00） · 须于10:00前上报，还剩1小时" in page.text
    assert "📌 当前在：青川县教育局（尚未接报）" in page.text


async def test_a_phone_report_is_recorded_confirmed_and_counted_for_the_incident(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9181, "Jun", language="en")
    yang = await linked(day, clock, "SB01-01", 9182, "杨光明")
    wu = await linked(day, clock, "SB002", 9183, "吴静")
    await described(ma)
    await ma.press("🚨 Report")
    await ma.wait_for()
    await day.settle()
    clock.set(local(2, 9, 6))
    page = next(m for m in yang.messages() if "20261202-001" in m.text)
    await yang.press("📞 已电话上报", message_id=page.message_id)
    whom = await yang.wait_for()
    assert [list(row) for row in whom.buttons] == [["周国庆 · 校长"], ["吴静 · 应急专干"]]
    await yang.press("吴静 · 应急专干")
    await yang.wait_for()
    await yang.press("5分钟前")
    assert (await yang.wait_for()).text.startswith("📞 已记录：您于09:01电话报告了吴静")
    await day.settle()
    assert await facts(day, "20261202-001") == (await unit_id(day, "SB01"), False)  # not yet
    clock.set(local(2, 9, 8))
    await wu.press("✅ 已接到电话")
    await wu.wait_for_answer()
    await day.settle()
    # confirmed: it counts as the township having it since the call, acknowledged there
    assert await facts(day, "20261202-001") == (await unit_id(day, "SB"), False)
    await yang.send("/incidents")
    listed = (await yang.wait_for()).text
    assert "🕒 发生于8分钟前（09:00） · 须于10:00前上报，还剩52分钟" in listed  # the county next
    assert "📌 当前在：石坝乡中心校（吴静已接报）" in listed
    await ma.send("/incident 20261202-001")
    timeline = (await ma.wait_for()).text.splitlines()
    assert "09:06 phone report recorded by 杨光明" in timeline
    assert "09:08 phone report confirmed by 吴静" in timeline
    assert "09:08 reached 石坝乡中心校 by a phone call" in timeline


async def test_the_prompt_before_the_timeout_sends_the_report_as_it_is(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9161, "Jun", language="en")
    await described(ma)
    clock.set(local(2, 9, 25))
    await day.settle()
    assert ma.last().text.startswith("Your incident report is not sent yet")
    await ma.press("🚨 Send the report as it is")
    assert NUMBER.match((await ma.wait_for()).text)
    assert len(await incidents_stored(day)) == 1 and await drafts_open(day) == 0


async def test_a_report_pressed_too_long_ago_to_answer_is_still_confirmed_not_apologised_for(
    day: LocalStack, clock: MovableClock
) -> None:
    """In a storm of presses handled one at a time, Telegram stops taking answers to old ones."""
    ma = await linked(day, clock, "SB01-05", 9171, "Jun", language="en")
    await described(ma)
    day.emulator.world.callback_timeout = timedelta(seconds=-1)  # every answer comes too late
    await ma.press("🚨 Report")
    done = (await ma.wait_for()).text
    assert NUMBER.match(done), done
    assert [i.number for i in await incidents_stored(day)] == ["20261202-001"]
    assert not any("went wrong" in m.text for m in ma.messages())
