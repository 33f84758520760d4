"""A drill through the real bot and the emulator: /drill, its pages, its end and its review."""

from __future__ import annotations

from datetime import timedelta

from factories import District

from bot.clock import MovableClock
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack

MARK = "【演练 DRILL】这是一次演练。"


async def person(stack: LocalStack, district: District, key: str, name: str) -> SimUser:
    """A roster person who has opened the bot (so it may write to them)."""
    user = stack.emulator.user(district.chats[key], name)
    await user.start()
    await user.wait_for()
    return user


async def test_a_drill_from_drill_to_its_review(
    stack: LocalStack, district: District, clock: MovableClock
) -> None:
    principal = await person(stack, district, "principal", "王校长")
    leader = await person(stack, district, "leader", "李带班")
    staff = await person(stack, district, "staff", "张老师")
    await staff.send("/drill S 重大")
    refusal = await staff.wait_for()
    assert refusal.text == "只有管理员和领导可以发起演练。"
    await principal.send("/drill S2 重大")  # another township's school
    assert (await principal.wait_for()).text == "您的辖区内没有单位 S2。"

    await principal.send("/drill S")
    ask = await principal.wait_for()
    assert ask.text.splitlines() == [MARK, "在石坝小学发起演练：事件级别？"]
    await principal.press("重大")
    started = await principal.wait_for()
    assert started.text.startswith(MARK + "\n演练 20261201-001 已开始：石坝小学，重大。")
    assert "08:30" in started.text  # the default length: 30 minutes
    await stack.settle()
    page = await leader.wait_for()
    assert page.text.startswith(MARK)
    clock.advance(timedelta(minutes=2))
    await leader.press("✅ 接报")
    await leader.wait_for_answer()
    for _ in range(6):
        clock.advance(timedelta(minutes=5))
        await stack.settle()
    review = await principal.wait_for(lambda m: "演练复盘" in m.text)
    lines = review.text.splitlines()
    assert lines[0] == MARK
    assert lines[1] == "📋 演练复盘：20261201-001，石坝小学，重大"
    assert "   2分钟后首次接报，接报人：李带班" in lines
    assert lines[-1] == "报告时限到点由系统上报：未发生。"
    # The pages closed with the drill, the marker still on top.
    closed = leader.messages()[-1]
    assert closed.text.startswith(MARK) and not closed.buttons
    await principal.send("/drills")
    log = await principal.wait_for()
    assert log.text.splitlines()[0] == "演练记录"
    assert "20261201-001 · 石坝小学 · 重大 · 发起人王校长 · 首次接报：2分钟" in log.text
