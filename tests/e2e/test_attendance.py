"""A duty day at 石坝小学 (sample district) through the real bot, with a moved clock."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import TZ, at, linked, local
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import AuditEntry, ClockEvent, ConversationDraft, Shift, ShiftSwap, Unit
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import roster, rota

SCHOOL = (32.4825, 105.1540)  # 石坝小学, geofence 400 m


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 5))


def texts(user: SimUser) -> list[str]:
    return [m.text for m in user.messages()]


async def clock_in_here(user: SimUser, *, accuracy: float = 15.0) -> str:
    await user.send("/in")
    ask = await user.wait_for()
    assert "400" in ask.text and len(ask.keyboard) == 1  # the one-tap location button
    await user.send_location(SCHOOL[0] + 0.0005, SCHOOL[1], horizontal_accuracy=accuracy)
    return (await user.wait_for()).text


async def test_on_time_clock_in_inside_the_geofence(day: LocalStack, clock: MovableClock) -> None:
    await at(day, clock, local(1, 7, 40))
    ma = await linked(day, clock, "SB01-05", 9001, "Jun", language="en")
    await ma.send("/in")
    ask = await ma.wait_for()
    assert ask.text == "Share your location to clock in: you need to be within 400 m of 石坝小学."
    await ma.send_location(SCHOOL[0] + 0.001, SCHOOL[1] + 0.001, horizontal_accuracy=12)
    done = await ma.wait_for()
    assert done.text == "✅ Clocked in at 07:40: 值班室, 石坝小学 (12-01 08:00–20:00)."
    assert day.db is not None
    async with day.db.uow() as uow:
        event = (await uow.session.exec(select(ClockEvent))).one()
        entry = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "shift.clock_in"))
        ).one()
    assert (event.kind, event.late_minutes, event.accuracy_m) == ("in", 0, 12)
    assert (entry.actor_person_id, entry.actor_account) == (event.person_id, "telegram:9001")
    await ma.send("/in")
    assert (await ma.wait_for()).text == "You already clocked in at 07:40."


async def test_the_reminders_clock_in_button_clocks_in_to_its_shift_where_no_geofence_is_set(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    zheng = await linked(day, clock, "SB01-03", 9040, "郑强")  # day shift 12-02 08:00
    assert day.db is not None
    async with day.db.uow() as uow:
        school = (await uow.session.exec(select(Unit).where(Unit.name == "石坝小学"))).one()
        school.radius_m = None
        await uow.commit()
    await at(day, clock, local(2, 7))
    reminder = zheng.last()
    assert reminder.text.startswith("⏰ 您的班次12-02 08:00开始")
    await at(day, clock, local(2, 7, 50))
    await zheng.press("✅ 签到", message_id=reminder.message_id)
    assert (
        await zheng.wait_for()
    ).text == "✅ 已于07:50签到：石坝小学值班室（12-02 08:00–20:00）。"
    async with day.db.uow() as uow:
        event = (await uow.session.exec(select(ClockEvent))).one()
        shift = await uow.session.get(Shift, event.shift_id)
    assert shift is not None and shift.start == local(2, 8)
    assert (event.kind, event.late_minutes, event.latitude) == ("in", 0, None)
    await zheng.press("✅ 签到", message_id=reminder.message_id)
    assert (await zheng.wait_for()).text == "您已于07:50签到。"


async def test_late_clock_in_is_marked_with_the_minutes(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 8, 3))
    zheng = await linked(day, clock, "SB01-03", 9002, "郑强")
    assert (await clock_in_here(zheng)).splitlines() == [
        "✅ 已于08:03签到：石坝小学值班室（12-02 08:00–20:00）。",
        "您迟到了3分钟，已记录。",
    ]


async def test_outside_the_geofence_or_imprecise_or_too_early_changes_nothing(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 7, 45))
    zheng = await linked(day, clock, "SB01-03", 9003, "郑强")
    await zheng.send_location(SCHOOL[0] + 0.02, SCHOOL[1])
    assert (await zheng.wait_for()).text == "您距离石坝小学2223米；需在400米范围内签到。"
    await zheng.send_location(SCHOOL[0], SCHOOL[1], horizontal_accuracy=500)
    assert (await zheng.wait_for()).text.startswith("您的位置精度只有500米")
    sun = await linked(day, clock, "SB01-04", 9004, "孙小红")  # next on the night of 12-02
    await sun.send("/in")
    assert (await sun.wait_for()).text == ("您的下一个班次12-02 20:00开始；12-02 19:30起可以签到。")
    assert day.db is not None
    async with day.db.uow() as uow:
        assert (await uow.session.exec(select(ClockEvent))).all() == []


async def test_a_missed_shift_reminds_then_pages_the_duty_leader_then_the_principal(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    zheng = await linked(day, clock, "SB01-03", 9010, "郑强")  # day shift 12-02 08:00
    he = await linked(day, clock, "SB01-02", 9011, "何丽")  # leader of the day 12-02
    yang = await linked(day, clock, "SB01-01", 9012, "杨光明")  # principal
    await at(day, clock, local(2, 7))
    assert texts(zheng)[-1].startswith("⏰ 您的班次12-02 08:00开始：石坝小学值班室。")
    await at(day, clock, local(2, 8, 5))
    assert texts(zheng)[-1].startswith("⚠️ 您在石坝小学（值班室）的班次已于12-02 08:00开始")
    await at(day, clock, local(2, 8, 14))
    assert not any("岗位无人" in t for t in texts(he))
    await at(day, clock, local(2, 8, 15))
    page = he.last()
    assert page.text.splitlines()[:2] == [
        "🚨 岗位无人：值班室，郑强（☎ 13800000013）未签到",
        "📍 地点：石坝小学",
    ]
    assert [list(r) for r in page.buttons] == [["✅ 接报", "⬆️ 上报"], ["🔁 已顶岗", "ℹ️ 详情"]]
    # (杨光明 is paged at 08:15 too, about 何丽's own leader shift: she has not clocked in either)
    assert not any("值班室，郑强" in t for t in texts(yang))
    await at(day, clock, local(2, 8, 30))
    assert any("岗位无人：值班室，郑强" in t for t in texts(yang))


async def test_acknowledging_stops_the_missed_shift_escalation(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    await linked(day, clock, "SB01-03", 9020, "郑强")
    he = await linked(day, clock, "SB01-02", 9021, "何丽")
    yang = await linked(day, clock, "SB01-01", 9022, "杨光明")
    await at(day, clock, local(2, 8, 15))
    await he.press("✅ 接报")
    assert (await he.wait_for_answer()).text == "已接报。呼叫已停止。"
    await at(day, clock, local(2, 9))
    assert not any("值班室，郑强" in t for t in texts(yang))


async def test_clocking_in_late_closes_the_page_and_says_so(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    zheng = await linked(day, clock, "SB01-03", 9030, "郑强")
    he = await linked(day, clock, "SB01-02", 9031, "何丽")
    await at(day, clock, local(2, 8, 16))
    await clock_in_here(zheng)
    await day.settle()
    page = next(m for m in he.messages() if "岗位无人：值班室，郑强" in m.text)
    assert page.text.endswith("✔️ 郑强已于08:16签到，迟到16分钟。")
    assert not page.buttons


async def test_an_unfilled_post_pages_at_its_start(day: LocalStack, clock: MovableClock) -> None:
    # SB02's night shift on 12-01 has nobody; 冯志刚 leads SB02 that day.
    await at(day, clock, local(1, 18))
    feng = await linked(day, clock, "SB02-01", 9040, "冯志刚")
    await at(day, clock, local(1, 19, 59))
    assert not any("空岗" in t for t in texts(feng))
    await at(day, clock, local(1, 20))
    assert feng.last().text.startswith("🚨 岗位空岗：值班室无人排班")


async def test_an_unmanned_leader_shift_pages_the_principal(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    await linked(day, clock, "SB01-02", 9050, "何丽")  # leads 12-02, never clocks in
    yang = await linked(day, clock, "SB01-01", 9051, "杨光明")
    await at(day, clock, local(2, 8, 15))
    assert any("岗位无人：带班，何丽" in t for t in texts(yang))


async def test_the_duty_log_is_handed_to_the_next_shift(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9060, "Jun")
    tang = await linked(day, clock, "SB01-06", 9061, "唐磊")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20, 2))
    await ma.send("/out")
    ask = await ma.wait_for()
    assert ask.text.startswith("Clocking out of 值班室, 石坝小学. Write the duty log (值班记录)")
    await ma.send("东门门锁损坏，已报何丽。")
    await ma.wait_for()
    await ma.send_photo(caption="门锁照片")
    await ma.wait_for()
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:02.")
    await at(day, clock, local(1, 20, 5))
    arrived = await clock_in_here(tang)
    assert arrived.splitlines()[-4:] == [
        "📋 马俊的交接（12-01 20:02）：",
        "东门门锁损坏，已报何丽。",
        "门锁照片",
        "（随后发送1张照片）",
    ]
    photo = await tang.wait_for()
    assert photo.photo


async def test_a_clock_out_in_progress_survives_a_restart_of_the_bot(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9070, "Jun")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20))
    await ma.send("/out")
    await ma.wait_for()
    await ma.send("一切正常")
    await ma.wait_for()
    await day.restart_bot()
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:00.")
    assert day.db is not None
    async with day.db.uow() as uow:
        out = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "out"))).one()
    assert out.duty_log == "一切正常"


async def test_forgetting_to_clock_out_asks_the_person_then_tells_the_leader(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9080, "Jun")
    yang = await linked(day, clock, "SB01-01", 9081, "杨光明")  # leader of the day 12-01
    await clock_in_here(ma)
    await at(day, clock, local(1, 20, 30))
    assert texts(ma)[-1].startswith("Your shift at 石坝小学 ended at 20:00. Please clock out")
    await ma.press("👋 Clock out")
    assert (await ma.wait_for()).text.startswith("Clocking out of 值班室, 石坝小学.")
    await at(day, clock, local(1, 21))
    # (the 21:00 safety check-in reaches the leader of the day at the same moment)
    assert "马俊尚未签退石坝小学值班室（班次已于20:00结束）。" in texts(yang)[-2:]


async def test_shifts_lists_mine_and_leaders_see_their_units_day(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 9))
    ma = await linked(day, clock, "SB01-05", 9090, "Jun")
    await clock_in_here(ma)
    await ma.send("/shifts")
    mine = (await ma.wait_for()).text.splitlines()
    assert mine[0] == "My shifts (next 7 days)"
    assert mine[1] == "• 12-01 08:00–20:00 值班室, 石坝小学 — ✅ in 09:00, 60 minutes late"
    yang = await linked(day, clock, "SB01-01", 9091, "杨光明")
    await yang.send("/shifts")
    board = (await yang.wait_for()).text
    assert "石坝小学今日值班" in board
    assert "• 12-01 08:00–20:00 值班室: 马俊 — ✅ 09:00签到" in board
    assert "• 12-01 20:00–08:00 值班室: 唐磊" in board


async def person_id(stack: LocalStack, staff_no: str) -> int:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        person = await roster.person_by_staff_no(uow.session, staff_no)
    assert person is not None and person.id is not None
    return person.id


async def test_a_swap_accepted_and_approved_moves_the_shift_and_its_deadlines(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    sun = await linked(day, clock, "SB01-04", 9100, "孙小红")  # night of 12-02
    tang = await linked(day, clock, "SB01-06", 9101, "唐磊")
    he = await linked(day, clock, "SB01-02", 9102, "何丽")  # leader of the day 12-02
    await sun.send("/swap")
    assert (await sun.wait_for()).labels[0] == "12-02 20:00–08:00 值班室"
    await sun.press("12-02 20:00–08:00 值班室")
    who = await sun.wait_for()
    assert who.text == "请选择接班的同事："
    assert "唐磊" in who.labels and "孙小红" not in who.labels and "何丽" not in who.labels
    await sun.press("唐磊")
    confirm = await sun.wait_for()
    assert confirm.text == (
        "请唐磊接替您的班次12-02 20:00–08:00 值班室吗？对方同意后由带班领导审批。"
    )
    assert confirm.labels == ["🔁 发出请求", "↩ 返回", "✖ 取消"]
    await sun.press("🔁 发出请求")
    assert (await sun.wait_for()).text == "已发出请求。对方答复和带班领导审批后会通知您。"
    await day.settle()
    assert tang.last().text == "🔁 孙小红请您接替其班次12-02 20:00–08:00 值班室。您愿意吗？"
    await tang.press("✅ 同意")
    await tang.wait_for_answer()
    await day.settle()
    assert he.last().text == (
        "🔁 孙小红想把班次12-02 20:00–08:00 值班室交给唐磊，对方已同意。是否批准？"
    )
    await he.press("✅ 批准")
    await he.wait_for_answer()
    await day.settle()
    approved = "✅ 何丽已批准：班次12-02 20:00–08:00 值班室改由唐磊值班（原为孙小红）。"
    assert approved in texts(sun) and approved in texts(tang) and approved in texts(he)
    await at(day, clock, local(2, 19))
    assert texts(tang)[-1].startswith("⏰ 您的班次12-02 20:00开始")
    assert not any(t.startswith("⏰ 您的班次12-02 20:00开始") for t in texts(sun))
    await at(day, clock, local(2, 20, 15))
    assert any(t.startswith("🚨 岗位无人：值班室，唐磊（☎ 15900000016）未签到") for t in texts(he))


async def test_a_swap_outside_the_unit_or_onto_someone_on_duty_is_refused(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    sun = await linked(day, clock, "SB01-04", 9110, "孙小红")
    await sun.send("/swap")
    menu = await sun.wait_for()
    shift_id = int(menu.data_for("12-02 20:00–08:00 值班室").split(":")[2])
    other_unit = await person_id(day, "SB02-03")
    busy = await person_id(day, "SB01-02")  # 何丽 leads 12-02 08:00 to 12-03 08:00
    await sun.press_data(menu.message_id, f"sw:p:{shift_id}:{other_unit}")
    assert (await sun.wait_for_answer()).text == "该按钮属于换班的另一步骤。"  # not this step's
    await sun.press("12-02 20:00–08:00 值班室")
    who = await sun.wait_for()
    await sun.press_data(who.message_id, f"sw:p:{shift_id}:{other_unit}")
    assert (await sun.wait_for_answer()).text == "只能与本单位的同事换班。"
    await sun.press_data(who.message_id, f"sw:p:{shift_id}:{busy}")
    assert (await sun.wait_for_answer()).text == "何丽在该时段已有班次。"
    await sun.press_data(who.message_id, "sw:y:1")
    assert (await sun.wait_for_answer()).text == "此按钮已失效。"
    await sun.press("✖ 取消", message_id=who.message_id)
    assert (await sun.wait_for()).text == "已取消，没有任何改动。"
    await sun.press_data(who.message_id, who.data_for("唐磊"))  # the swap is over
    assert (await sun.wait_for_answer()).text == (
        "该换班申请已结束（已发送、已取消或已超时）。请发送 /swap。"
    )
    assert day.db is not None
    async with day.db.uow() as uow:
        assert (await uow.session.exec(select(ShiftSwap))).all() == []


async def test_pressing_a_colleague_again_keeps_one_offer_and_a_shift_never_goes_to_its_owner(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    sun = await linked(day, clock, "SB01-04", 9120, "孙小红")
    tang = await linked(day, clock, "SB01-06", 9121, "唐磊")
    await sun.send("/swap")
    menu = await sun.wait_for()
    shift_id = int(menu.data_for("12-02 20:00–08:00 值班室").split(":")[2])
    await sun.press("12-02 20:00–08:00 值班室")
    who = await sun.wait_for()
    await sun.press_data(who.message_id, f"sw:p:{shift_id}:{await person_id(day, 'SB01-04')}")
    assert (await sun.wait_for_answer()).text == "不能把班次交给自己，请选择一位同事。"
    await sun.press("唐磊")
    confirm = await sun.wait_for()
    await sun.press("🔁 发出请求")
    await sun.wait_for()
    await sun.press_data(confirm.message_id, confirm.data_for("🔁 发出请求"))  # once more: over
    assert (await sun.wait_for_answer()).text.startswith("该换班申请已结束")
    tang_id = await person_id(day, "SB01-06")
    await sun.send("/swap")  # asking the same colleague again for the same shift
    await sun.wait_for()
    await sun.press("12-02 20:00–08:00 值班室")
    await sun.wait_for()
    await sun.press("唐磊")
    await sun.wait_for()
    await sun.press("🔁 发出请求")
    assert (await sun.wait_for()).text == "您已请唐磊接替该班次，未重复发送。"
    await day.settle()
    assert [t for t in texts(tang) if t.startswith("🔁")] == [
        "🔁 孙小红请您接替其班次12-02 20:00–08:00 值班室。您愿意吗？"
    ]
    assert day.db is not None
    async with day.db.uow() as uow:
        offers = (await uow.session.exec(select(ShiftSwap))).all()
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
    assert [(o.shift_id, o.to_person_id, o.status) for o in offers] == [
        (shift_id, tang_id, "offered")
    ]
    assert [r.action for r in refused] == ["swap.offer"]


async def test_a_leader_shift_goes_only_to_someone_who_may_lead_the_duty(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    he = await linked(day, clock, "SB01-02", 9130, "何丽")  # leader of the day 12-02
    await he.send("/swap")
    menu = await he.wait_for()
    label = next(label for label in menu.labels if label.endswith("带班"))
    shift_id = int(menu.data_for(label).split(":")[2])
    await he.press(label)
    who = await he.wait_for()
    assert "杨光明" in who.labels  # principal and duty leader of 石坝小学
    assert not {"郑强", "孙小红", "马俊", "唐磊"} & set(who.labels)
    tang_id = await person_id(day, "SB01-06")
    await he.press_data(who.message_id, f"sw:p:{shift_id}:{tang_id}")
    assert (await he.wait_for_answer()).text == "唐磊在本单位没有领导职务，不能带班。"
    assert day.db is not None
    async with day.db.uow() as uow:
        offers = (await uow.session.exec(select(ShiftSwap))).all()
        shift = (await uow.session.exec(select(Shift).where(Shift.id == shift_id))).one()
    assert offers == []
    assert shift.person_id == await person_id(day, "SB01-02")


async def test_a_forged_clock_out_button_cannot_skip_the_duty_log(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9140, "Jun")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20, 2))
    await ma.send("/out")
    ask = await ma.wait_for()
    for data in ("out:", "out:x"):  # not buttons of ours: refused before the service
        await ma.press_data(ask.message_id, data)
        assert (await ma.wait_for_answer()).text == "This button is no longer valid."
    for _ in range(3):
        await ma.press_data(ask.message_id, "out:done")
        assert (await ma.wait_for_answer()).text == (
            "The duty log is empty: write something, or press Nothing to report."
        )
    assert day.db is not None
    async with day.db.uow() as uow:
        outs = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "out"))).all()
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
    assert outs == []
    assert sorted(r.action for r in refused) == ["button.refused"] * 2 + ["shift.clock_out"] * 3
    await ma.press("Nothing to report", message_id=ask.message_id)
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:02.")
    async with day.db.uow() as uow:
        out = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "out"))).one()
    assert out.duty_log == ""


async def test_a_national_holiday_uses_the_holiday_pattern(database_url: str) -> None:
    clock = MovableClock(datetime(2026, 9, 29, 2, 0, tzinfo=UTC))  # 09-29 10:00 in Shanghai
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db,
            roster.sample_district_files()[:2],
            tz=TZ,
            default_language="zh",
            now=clock.now(),
        )
        await rota.generate(
            stack.db,
            unit_code="SB01",
            first=date(2026, 9, 30),
            last=date(2026, 10, 1),
            rota=settings.rota,
            tz=TZ,
            now=clock.now(),
        )
        principal = await linked(stack, clock, "SB01-01", 9200, "杨光明")
        days = {}
        for moment in (datetime(2026, 9, 30, 1, tzinfo=UTC), datetime(2026, 10, 1, 1, tzinfo=UTC)):
            clock.set(moment)  # 09:00 in Shanghai
            await principal.send("/shifts")
            text = (await principal.wait_for()).text
            board = text.split("石坝小学今日值班")[1].splitlines()
            day = moment.astimezone(TZ).strftime("%m-%d")
            days[day] = [line.split(": ")[0] for line in board if line.startswith(f"• {day}")]
    # 09-30 is a workday: a day and a night shift; 10-01, National Day, one 24-hour shift.
    assert days == {
        "09-30": [
            "• 09-30 08:00–20:00 值班室",
            "• 09-30 20:00–08:00 值班室",
            "• 09-30 08:00–08:00 带班",
        ],
        "10-01": ["• 10-01 08:00–08:00 值班室", "• 10-01 08:00–08:00 带班"],
    }


async def test_a_nul_in_the_duty_log_is_dropped_and_the_clock_out_goes_through(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9300, "Jun")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20, 1))
    await ma.send("/out")
    await ma.wait_for()
    await ma.send("东门\x00门锁损坏")
    assert (await ma.wait_for()).text == "Added to the duty log. Send more, or press Done."
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:01.")
    assert day.db is not None
    async with day.db.uow() as uow:
        out = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "out"))).one()
    assert out.duty_log == "东门门锁损坏"


IMPLAUSIBLE = "这个位置不可能正确。请用📍按钮重新共享您的位置。"
IMPOSSIBLE = [
    (math.nan, SCHOOL[1], 10.0),  # NaN passed every comparison and clocked in
    (SCHOOL[0], math.nan, None),
    (math.inf, SCHOOL[1], 10.0),  # infinity ended in "math domain error"
    (SCHOOL[0], -math.inf, 10.0),
    (90.5, SCHOOL[1], 10.0),
    (SCHOOL[0], 180.5, 10.0),
    (SCHOOL[0], SCHOOL[1], -5.0),
    (SCHOOL[0], SCHOOL[1], math.nan),
    (SCHOOL[0], SCHOOL[1], math.inf),
]


async def test_a_location_no_phone_sends_is_refused_and_nobody_clocks_in(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 7, 45))
    zheng = await linked(day, clock, "SB01-03", 9310, "郑强")
    for latitude, longitude, accuracy in IMPOSSIBLE:
        await zheng.send_location(latitude, longitude, horizontal_accuracy=accuracy)
        refused = await zheng.wait_for()
        assert refused.text == IMPLAUSIBLE, (latitude, longitude, accuracy)
        assert len(refused.keyboard) == 1  # the one-tap location button, to try again
    assert day.db is not None
    async with day.db.uow() as uow:
        assert (await uow.session.exec(select(ClockEvent))).all() == []
    assert (await clock_in_here(zheng)).startswith("✅ 已于07:45签到")


# /out as a persisted ConversationHandler: cancel, back, the prompt before the timeout, the
# timeout itself, and stale buttons. The timeout follows the moved clock (engine deadlines).

GONE = "This clock-out was already finished or has timed out. Send /out to start again."
# The draft's times as configured (the defaults: a prompt 5 minutes before a 30-minute timeout).
LIMITS = settings_from_mapping({}, environ={}).conversations
PROMPT_AFTER = LIMITS.timeout - LIMITS.prompt_before
WARNING = (
    f"Your duty log is not sent yet and will be dropped in "
    f"{int(LIMITS.prompt_before.total_seconds() // 60)} min. "
    "Clock out with what is written, keep writing, or discard it?"
)
TIMED_OUT = (
    f"Your unfinished duty log was left for {int(LIMITS.timeout.total_seconds() // 60)} min and "
    "has been dropped; you are still clocked in. Send /out to start again."
)
START = local(1, 20)  # when `writing` sends the last line


def hhmm(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%H:%M")


async def writing(day: LocalStack, clock: MovableClock, user_id: int, *lines: str) -> SimUser:
    """Ma Jun on duty at 石坝小学, clocking out at 20:00 with these lines written."""
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", user_id, "Jun", language="en")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20))
    await ma.send("/out")
    await ma.wait_for()
    for line in lines:
        await ma.send(line)
        assert (await ma.wait_for()).text == "Added to the duty log. Send more, or press Done."
    return ma


async def duty_logs(day: LocalStack) -> list[str]:
    assert day.db is not None
    async with day.db.uow() as uow:
        outs = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "out"))).all()
    return [out.duty_log or "" for out in outs]


async def open_drafts(day: LocalStack) -> int:
    assert day.db is not None
    async with day.db.uow() as uow:
        return len((await uow.session.exec(select(ConversationDraft))).all())


async def test_cancel_drops_the_draft_and_an_old_done_button_gets_one_sentence(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9400, "东门门锁损坏")
    await ma.press("✖ Cancel")
    assert (await ma.wait_for()).text == "Cancelled. You are still clocked in."
    assert await open_drafts(day) == 0
    await ma.press("✅ Done")  # on the older message that still shows it
    answer = await ma.wait_for_answer()
    assert (answer.text, answer.show_alert) == (GONE, True)
    await ma.send("还有一件事")  # the conversation is over: free text is not taken
    assert (await ma.wait_for()).text.startswith("I didn't understand that.")
    assert await duty_logs(day) == []


async def test_back_takes_back_the_last_entry(day: LocalStack, clock: MovableClock) -> None:
    ma = await writing(day, clock, 9410, "一切正常", "写错了")
    await ma.press("↩ Back")
    assert (await ma.wait_for()).text == (
        "Took back the last thing you added. Send more, or press Done."
    )
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:00.")
    assert await duty_logs(day) == ["一切正常"]


async def test_the_prompt_before_the_timeout_clocks_out_with_what_is_written(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9420, "一切正常")
    await at(day, clock, START + PROMPT_AFTER)
    prompt = ma.last()
    assert prompt.text == WARNING
    assert prompt.buttons == (
        ("👋 Clock out with what is written",),
        ("✏️ Go on", "🗑 Discard"),
    )
    await ma.press("👋 Clock out with what is written")
    assert (await ma.wait_for()).text.startswith(f"👋 Clocked out at {hhmm(START + PROMPT_AFTER)}.")
    assert await duty_logs(day) == ["一切正常"]
    assert await open_drafts(day) == 0
    await at(day, clock, START + LIMITS.timeout + timedelta(minutes=10))  # cancelled with it
    assert TIMED_OUT not in texts(ma)


async def test_go_on_gives_the_draft_its_full_time_again(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9430, "一切正常")
    await at(day, clock, START + PROMPT_AFTER)
    await ma.press("✏️ Go on")
    assert (await ma.wait_for()).text.startswith("Go on: send text or photos for the duty log")
    await at(day, clock, START + PROMPT_AFTER + LIMITS.timeout - timedelta(minutes=10))
    assert TIMED_OUT not in texts(ma) and await open_drafts(day) == 1
    await ma.send("东门门锁损坏")
    await ma.wait_for()
    last_entry = clock.now()
    await at(day, clock, last_entry + PROMPT_AFTER)  # counted from the last entry
    assert texts(ma)[-1] == WARNING
    await ma.press("✅ Done")
    done = f"👋 Clocked out at {hhmm(last_entry + PROMPT_AFTER)}."
    assert (await ma.wait_for()).text.startswith(done)
    assert await duty_logs(day) == ["一切正常\n东门门锁损坏"]


async def test_discard_drops_the_draft_and_its_stale_prompt_gets_one_sentence(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9440, "一切正常")
    await at(day, clock, START + PROMPT_AFTER)
    prompt = ma.last()
    await ma.press("🗑 Discard")
    assert (await ma.wait_for()).text == (
        "The duty log draft is discarded. You are still clocked in."
    )
    assert await open_drafts(day) == 0 and await duty_logs(day) == []
    send = prompt.callback_data[0][0]
    assert send is not None
    await ma.press_data(prompt.message_id, send)
    answer = await ma.wait_for_answer()
    assert answer.text == "This draft is no longer open: it was sent, discarded or timed out."
    assert await duty_logs(day) == []


async def test_an_abandoned_draft_times_out_with_a_polite_word(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9450, "一切正常")
    await at(day, clock, START + PROMPT_AFTER)
    assert texts(ma)[-1] == WARNING
    await at(day, clock, START + LIMITS.timeout)
    assert TIMED_OUT in texts(ma)
    assert await open_drafts(day) == 0
    await ma.send("还有一件事")
    assert (await ma.wait_for()).text == GONE
    await ma.send("再说一句")  # the conversation has ended now
    assert (await ma.wait_for()).text.startswith("I didn't understand that.")
    assert await duty_logs(day) == []


async def test_the_prompt_and_the_draft_survive_a_restart_of_the_bot(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await writing(day, clock, 9460, "一切正常")
    await day.restart_bot()
    await ma.send("东门门锁损坏")
    assert (await ma.wait_for()).text == "Added to the duty log. Send more, or press Done."
    await day.restart_bot()
    await at(day, clock, START + PROMPT_AFTER)
    assert texts(ma)[-1] == WARNING
    await ma.press("👋 Clock out with what is written")
    assert (await ma.wait_for()).text.startswith(f"👋 Clocked out at {hhmm(START + PROMPT_AFTER)}.")
    assert await duty_logs(day) == ["一切正常\n东门门锁损坏"]
