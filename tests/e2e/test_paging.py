"""Pages through the real bot and the emulator: buttons, acknowledgement, refusals, failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from factories import District
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import EscalationStep, Level, Severity, settings_from_mapping
from bot.models import (
    Account,
    Escalation,
    EscalationEvent,
    EscalationLevel,
    OutboxMessage,
    Page,
)
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import escalation
from bot.services.page_text import PageSubject
from bot.uow import Database

SERIOUS = settings_from_mapping({}, environ={}).escalation[Severity.SERIOUS].steps
SUBJECT = PageSubject(
    what="Post unmanned: {post}", ask="Please acknowledge.", what_params={"post": "值班室"}
)
LABELS = [["✅ 接报", "⬆️ 上报"], ["✔️ 处理完毕", "ℹ️ 详情"]]


async def person(stack: LocalStack, district: District, key: str, name: str) -> SimUser:
    """A roster person who has opened the bot (so it may write to them)."""
    user = stack.emulator.user(district.chats[key], name)
    await user.start()
    await user.wait_for()
    return user


async def start_paging(
    db: Database, district: District, clock: MovableClock, steps: list[EscalationStep] = SERIOUS
) -> None:
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=steps,
            subject_type="test",
            subject_id=1,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=clock.now(),
        )
        await uow.commit()


async def start_serious(
    db: Database, district: District, started: datetime, subject_id: int
) -> None:
    """A matter under the configured serious policy, with its one-hour report deadline."""
    policy = settings_from_mapping({}, environ={}).escalation[Severity.SERIOUS]
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="serious",
            steps=policy.steps,
            subject_type="test",
            subject_id=subject_id,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=started,
            occurred_at=started,
            report_deadline=policy.report_deadline,
            forward_margin=policy.forward_margin,
        )
        await uow.commit()


async def test_a_page_carries_what_where_since_and_the_acknowledge_button(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    await start_paging(db, district, clock)
    await stack.settle()
    page = await principal.wait_for()
    assert page.text.splitlines() == [
        "🚨 Post unmanned: 值班室",
        "📍 地点：石坝小学",
        "🕒 开始于：12-01 08:00（0分钟前）",
        "👉 Please acknowledge.",
    ]
    assert [list(row) for row in page.buttons] == LABELS


async def test_acknowledging_stops_paging_and_tells_the_others_who_and_when(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    leader = await person(stack, district, "leader", "李带班")
    officer = await person(stack, district, "officer", "赵专干")
    await start_paging(db, district, clock)
    await stack.settle()
    await leader.wait_for()
    clock.advance(timedelta(minutes=2))
    await principal.press("✅ 接报")
    answer = await principal.wait_for_answer()
    assert answer.text == "已接报。呼叫已停止，其他人已收到通知。"
    await stack.settle()
    edited = await leader.wait_for()
    assert edited.text.endswith("✅ 王校长已于08:02接报。")
    assert not edited.buttons
    # a late press by someone else is harmless and names the first
    late = await press(leader, edited.message_id, await page_data(db, district, "leader"))
    assert late == "王校长已于08:02接报。"
    # (the township officer was paged at once, standing in for 周带班 who never opened the bot)
    before = len(officer.messages())
    for minutes in (5, 10, 15, 30):
        clock.advance(timedelta(minutes=minutes))
        await stack.settle()
    assert len(officer.messages()) == before


async def snapshot(db: Database) -> list[tuple[object, ...]]:
    """Pages and escalations as the database holds them."""
    async with db.uow() as uow:
        pages = (await uow.session.exec(select(Page.id, Page.status, Page.sent_count))).all()
        escalations = (
            await uow.session.exec(
                select(Escalation.id, Escalation.status, Escalation.acknowledged_at)
            )
        ).all()
    return [tuple(row) for row in [*pages, *escalations]]


async def press(user: SimUser, message_id: int, data: str) -> str | None:
    """Press a button with this data and return the answer the bot gave."""
    await user.press_data(message_id, data)
    return (await user.wait_for_answer()).text


async def page_data(db: Database, district: District, key: str) -> str:
    async with db.uow() as uow:
        page = (
            await uow.session.exec(select(Page).where(Page.person_id == district.people[key]))
        ).one()
    return f"pg:a:{page.id}"


async def test_forged_stale_and_foreign_presses_get_one_sentence_and_change_nothing(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    outsider = await person(stack, district, "officer2", "钱专干")
    await start_paging(db, district, clock)
    await stack.settle()
    page = await leader.wait_for()
    before = await snapshot(db)
    for data in ("pg:a:999999", "pg:z:1", "nonsense", "pg:a:1 OR 1=1"):
        assert await press(leader, page.message_id, data) == "此按钮已失效。"
    data = await page_data(db, district, "leader")
    own = outsider.last().message_id
    assert await press(outsider, own, data) == "此呼叫不在您的职责范围内。"
    stranger = stack.emulator.user(99, "路人")
    await stranger.start()
    greeting = await stranger.wait_for()
    assert await press(stranger, greeting.message_id, data) == (
        "您尚未在值班系统登记。请向学校管理员索取邀请链接。\n"
        "You are not registered with Zhiban. Ask your school's administrator for an invite link."
    )
    assert await snapshot(db) == before


async def test_repeats_reply_to_the_first_page(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    await start_paging(db, district, clock)
    await stack.settle()
    first = await leader.wait_for()
    clock.advance(timedelta(minutes=5))
    await stack.settle()
    reminder = await leader.wait_for()
    assert reminder.reply_to_message_id == first.message_id
    assert reminder.text.startswith("⏰ 第1次提醒：仍未接报。")


async def test_a_blocked_leader_is_marked_unreachable_and_the_next_contact_is_paged(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    safety = await person(stack, district, "safety", "孙安全")
    await leader.block()
    only_leaders = [EscalationStep(after=timedelta(0), roles=["duty_leader"], level=Level.UNIT)]
    await start_paging(db, district, clock, steps=only_leaders)
    await stack.settle()
    await stack.settle()
    stand_in = await safety.wait_for()
    assert "Post unmanned" in stand_in.text
    async with db.uow() as uow:
        account = (
            await uow.session.exec(
                select(Account).where(Account.person_id == district.people["leader"])
            )
        ).one()
        failed = (
            await uow.session.exec(select(Page).where(Page.person_id == district.people["leader"]))
        ).one()
    assert account.unreachable_since == clock.now()
    assert failed.status == "undeliverable"
    assert failed.error is not None and "blocked" in failed.error


async def test_a_flood_wait_is_honoured_and_the_page_arrives_once(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    stack.emulator.inject_failure("sendMessage", 429, count=1, retry_after=1)
    await start_paging(db, district, clock, steps=SERIOUS[:1])
    await stack.settle()
    await stack.settle()
    pages = [m for m in leader.messages() if "Post unmanned" in m.text]
    assert len(pages) == 1
    assert stack.emulator.count_status(429) == 1


async def test_server_errors_are_retried_with_backoff_until_the_page_is_sent(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    stack.emulator.inject_failure("sendMessage", 500, count=2)
    only_principal = [EscalationStep(after=timedelta(0), roles=["principal"], level=Level.UNIT)]
    await start_paging(db, district, clock, steps=only_principal)
    await stack.settle()
    assert [m for m in principal.messages() if "Post unmanned" in m.text] == []
    for _ in range(3):
        clock.advance(timedelta(seconds=10))
        await stack.settle()
    assert len([m for m in principal.messages() if "Post unmanned" in m.text]) == 1
    async with db.uow() as uow:
        row = (
            await uow.session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.person_id == district.people["principal"],
                    OutboxMessage.kind == "page",
                )
            )
        ).one()
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


async def test_details_show_every_page_and_its_state(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    await start_paging(db, district, clock)
    await stack.settle()
    await leader.wait_for()
    await leader.press("ℹ️ 详情")
    details = await leader.wait_for()
    assert details.text.splitlines()[:6] == [
        "Post unmanned: 值班室",
        "📍 地点：石坝小学",
        "开始：2026-12-01 08:00",
        "已报告到：",
        "• 石坝小学：08:00报告 — 尚未接报",
        "呼叫记录：",
    ]
    assert "• 08:00 李带班 (石坝小学) × 1 — 等待中" in details.text
    # 周带班 never opened the bot, so Telegram refused his page
    assert "• 08:00 周带班 (石坝小学) × 1 — 无法送达" in details.text


async def test_passing_up_pages_the_township_officer(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    leader = await person(stack, district, "leader", "李带班")
    officer = await person(stack, district, "officer", "赵专干")
    await start_paging(db, district, clock, steps=SERIOUS[:1])
    await stack.settle()
    await leader.wait_for()
    await leader.press("⬆️ 上报")
    assert (await leader.wait_for_answer()).text == "已上报上一级，正在呼叫上级。"
    await stack.settle()
    page = await officer.wait_for()
    assert page.text.startswith("🚨 Post unmanned: 值班室")
    assert "石坝小学" in page.text


async def test_a_serious_matter_acknowledged_at_the_school_still_reaches_township_and_county(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    for key in ("leader", "leader2"):  # reachable, so nobody stands in for them
        await person(stack, district, key, key)
    officer = await person(stack, district, "officer", "赵专干")
    desk = await person(stack, district, "desk", "Desk Chen")
    started = clock.now()
    await start_serious(db, district, started, subject_id=2)
    await stack.settle()
    page = await principal.wait_for()
    # a serious matter offers the skip-level report one tap away
    assert [list(row) for row in page.buttons] == [
        ["✅ 接报", "⬆️ 上报"],
        ["📞 已电话上报", "⏫ 越级直报"],
        ["✔️ 处理完毕", "ℹ️ 详情"],
    ]
    clock.advance(timedelta(minutes=1))
    await principal.press("✅ 接报")
    await principal.wait_for_answer()
    await stack.settle()
    clock.set(started + timedelta(minutes=49))
    await stack.settle()
    assert [m.text[:1] for m in officer.messages() + desk.messages()] == ["值", "W"]  # greetings
    clock.set(started + timedelta(minutes=50))  # one hour − the ten-minute margin
    await stack.settle()
    township = await officer.wait_for()
    county = await desk.wait_for()
    assert township.text.startswith("🚨 Post unmanned") and "石坝小学" in township.text
    # phone first: the township reads whom to call at the school
    assert "☎ 请先电话联系：李带班 13800000000、周带班 13800000001、王校长 13800000003" in (
        township.text
    )
    assert "📍 Where: 石坝小学" in county.text
    # the township may still pass it up; the county is the top
    assert [b for row in township.buttons for b in row][:2] == ["✅ 接报", "⬆️ 上报"]
    assert "⬆️ Pass up" not in [b for row in county.buttons for b in row]


async def test_a_phone_report_is_recorded_in_three_taps_and_confirmed_by_the_township(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    for key in ("leader", "leader2", "desk"):
        await person(stack, district, key, key)
    officer = await person(stack, district, "officer", "赵专干")
    started = clock.now()
    await start_serious(db, district, started, subject_id=3)
    await stack.settle()
    await principal.wait_for()
    clock.advance(timedelta(minutes=12))
    await principal.press("📞 已电话上报")
    whom = await principal.wait_for()
    assert whom.text == "📞 您打电话报告了谁？"
    assert [list(row) for row in whom.buttons] == [["赵专干 · 应急专干"]]
    await principal.press("赵专干 · 应急专干")
    when = await principal.wait_for()
    assert when.text == "📞 何时打的电话？"
    await principal.press("10分钟前")
    recorded = await principal.wait_for()
    assert recorded.text == "📞 已记录：您于08:02电话报告了赵专干，已请对方确认。"
    await stack.settle()
    ask = await officer.wait_for()
    assert "王校长表示已于08:02电话向您报告此事" in ask.text
    async with db.uow() as uow:
        report = (
            await uow.session.exec(
                select(EscalationEvent).where(EscalationEvent.kind == "phone_report")
            )
        ).one()
    # the caller cannot confirm their own call with a forged button
    assert await press(principal, recorded.message_id, f"phc:y:{report.id}") == "此按钮不是给您的。"
    await officer.press("✅ 已接到电话")
    answer = await officer.wait_for_answer()
    assert answer.text == "谢谢：电话报告已确认，视为已接报。"
    await stack.settle()
    assert "📞 王校长于08:12已电话上报。" in principal.messages()[1].text  # the page, closed
    assert officer.last().text.endswith("谢谢：电话报告已确认，视为已接报。")
    async with db.uow() as uow:
        reached = (
            await uow.session.exec(
                select(EscalationLevel.level, EscalationLevel.reached_how).order_by(
                    col(EscalationLevel.id)
                )
            )
        ).all()
    assert list(reached) == [("unit", "start"), ("parent", "phone")]


async def test_the_absent_person_cannot_silence_the_page_about_them(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    absent = await person(stack, district, "leader2", "周带班")  # a duty leader of this school
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=SERIOUS[:1],
            subject_type="test",
            subject_id=4,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=clock.now(),
            exclude=(district.people["leader2"],),
        )
        await uow.commit()
    await stack.settle()
    await principal.wait_for()
    data = await page_data(db, district, "principal")
    before = await snapshot(db)
    own = absent.last().message_id
    for action in ("r", "a", "u", "d"):
        forged = data.replace("pg:a:", f"pg:{action}:")
        assert await press(absent, own, forged) == "您不能处理关于您自己的呼叫。"
    assert await snapshot(db) == before
    assert len(absent.messages()) == 1  # the greeting only: no page, no details
