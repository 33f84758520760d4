"""Forged buttons, presses in groups and unstorable characters, through the real bot."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from conftest import invite, linked
from sqlmodel import SQLModel, select

from bot.clock import MovableClock
from bot.models import Account
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.sandbox.state import SimCallbackQuery

NO_LONGER_VALID = "此按钮已失效。"
ONLY_IN_OWN_CHAT = "此按钮只能在您与值班机器人的私聊中使用。"
APOLOGY = "抱歉，系统出了点问题，请一分钟后再试。"

FORGED = [
    "sh:in:²",  # isdigit() said yes and int() raised ValueError
    "sh:out:²",
    "sh:in:" + "9" * 40,  # OverflowError on SQLite
    "sh:in:" + "9" * 12,  # int32 out of range on PostgreSQL
    "pg:a:" + "9" * 12,
    "pg:r:" + "9" * 40,
    "sw:p:1:" + "9" * 12,
    "sw:s:²",
    "ph:" + "9" * 12 + ":1",
    "ph:1:1:999",
    "phc:y:" + "9" * 12,
    "sh:in:0",
    "lang:fr",
    "out:maybe",
    "nope:1",
    "",
]


async def everything(stack: LocalStack) -> dict[str, list[str]]:
    """Every row a press could change, to show no change.

    Left out: the audit log (refusals are audited) and the engine's planning mark, which the
    engine moves on its own schedule while the test runs.
    """
    assert stack.db is not None
    rows: dict[str, list[str]] = {}
    async with stack.db.uow() as uow:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in ("audit_log", "engine_marks"):
                continue
            result = await uow.session.execute(sa.select(table))
            rows[table.name] = sorted(repr(tuple(row)) for row in result.all())
    return rows


def answers(stack: LocalStack, query: SimCallbackQuery) -> list[dict[str, Any]]:
    """Every answerCallbackQuery the bot made for one press, accepted or not."""
    return [
        dict(call.params)
        for call in stack.emulator.calls_of("answerCallbackQuery")
        if call.params.get("callback_query_id") == query.query_id
    ]


async def one_answer(stack: LocalStack, user: SimUser, query: SimCallbackQuery) -> str:
    """The text of the press's answer, after checking it was answered exactly once."""
    answer = await user.wait_for_answer()
    await stack.settle()
    assert len(answers(stack, query)) == 1, answers(stack, query)
    return answer.text or ""


async def test_forged_oversized_and_unicode_digit_buttons_get_one_sentence_and_change_nothing(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8501, "唐磊")
    await teacher.send("/lang")
    menu = await teacher.wait_for()
    await sample.settle()  # the engine's planning (shifts, check-ins, reports) is done first
    before = await everything(sample)
    for data in FORGED:
        query = await teacher.press_data(menu.message_id, data)
        assert await one_answer(sample, teacher, query) == NO_LONGER_VALID, data
        assert query.answer is not None and query.answer.show_alert
    assert await everything(sample) == before
    assert [m.text for m in teacher.messages()][-1] == menu.text  # no reply, no edit
    assert await refused_presses(sample) == len(FORGED)


async def refused_presses(stack: LocalStack) -> int:
    """How many presses were audited as refused at the door."""
    assert stack.db is not None
    async with stack.db.uow() as uow:
        rows = await uow.session.execute(
            sa.text("SELECT count(*) FROM audit_log WHERE action = 'button.refused'")
        )
        return int(rows.scalar_one())


async def test_a_handler_failing_after_its_answer_still_tells_the_person(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8502, "唐磊")
    await teacher.send("/lang")
    menu = await teacher.wait_for()
    sample.emulator.inject_failure("editMessageText", 400, description="Bad Request: boom")
    query = await teacher.press_data(menu.message_id, "lang:en")
    assert await one_answer(sample, teacher, query) == ""
    assert (await teacher.wait_for()).text == APOLOGY


async def test_a_forged_press_on_a_file_is_answered_in_a_message_of_its_own(
    sample: LocalStack, clock: MovableClock
) -> None:
    # The calendar file carries no button and no text to edit; a modified client presses one
    # on it anyway: the answer arrives as a new message, and nothing fails.
    teacher = await linked(sample, clock, "SB01-03", 8503, "郑强")
    await teacher.send("/calendar")
    document = await teacher.wait_for(lambda m: m.document_name is not None)
    query = await teacher.press_data(document.message_id, "lang:en")
    assert await one_answer(sample, teacher, query) == ""
    reply = await teacher.wait_for()
    assert reply.message_id != document.message_id
    assert reply.text == "Zhiban will talk to you in English from now on."


async def test_buttons_pressed_in_a_bound_group_act_nowhere(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8510, "吴静")
    teacher = await linked(sample, clock, "SB01-06", 8511, "唐磊")
    stranger = sample.emulator.user(8512, "Eve", language_code="en")
    group = sample.emulator.group(-100600, "石坝乡值班群")
    await group.add_bot(by=admin)
    await group.send(admin, "/bindgroup")
    bound = await group.wait_for()
    menus = len(sample.emulator.calls_of("setMyCommands"))
    await sample.settle()  # the engine's planning (shifts, check-ins, reports) is done first
    before = await everything(sample)
    for data in ("lang:en", "sh:in:1", "sh:out:1", "out:done", "pg:a:1", "sw:x", "sh:in:²"):
        query = await group.press_data(teacher, bound.message_id, data)
        assert await one_answer(sample, teacher, query) == ONLY_IN_OWN_CHAT, data
    query = await group.press_data(stranger, bound.message_id, "lang:en")
    assert await one_answer(sample, stranger, query) == (
        "This button works only in your own chat with Zhiban."
    )
    assert [m.text for m in group.messages()] == [bound.text]
    assert teacher.messages()[-1].text.startswith("欢迎您")  # nothing personal went anywhere
    assert len(sample.emulator.calls_of("setMyCommands")) == menus
    assert await everything(sample) == before


async def test_a_press_in_an_unbound_group_is_answered_too(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8520, "唐磊")
    group = sample.emulator.group(-100601, "别的群")
    await group.add_bot(by=teacher)
    posted = await group.send(teacher, "/help")
    query = await group.press_data(teacher, posted.message_id, "sh:in:1")
    assert await one_answer(sample, teacher, query) == ONLY_IN_OWN_CHAT
    assert group.messages() == []


async def test_a_nul_in_a_deep_link_still_links_the_account(
    sample: LocalStack, clock: MovableClock
) -> None:
    code = await invite(sample, clock, "SB01-04")
    teacher = sample.emulator.user(8530, "小红", language_code="zh")
    await teacher.start(code[:3] + "\x00" + code[3:] + "\x00")
    assert (await teacher.wait_for()).text.startswith("欢迎您，孙小红！")
    assert sample.db is not None
    async with sample.db.uow() as uow:
        account = (await uow.session.exec(select(Account).where(Account.external_id == 8530))).one()
    assert account.chat_id == 8530


async def test_a_nul_in_a_command_argument_is_dropped(
    sample: LocalStack, clock: MovableClock
) -> None:
    principal = await linked(sample, clock, "SB01-01", 8540, "杨光明")
    await principal.send("/unit SB\x0001")
    assert (await principal.wait_for()).text.splitlines()[0] == "石坝小学 (SB01)"
    await principal.send("/unit \x00")
    assert (await principal.wait_for()).text == "请发送 /unit 加单位代码，例如 /unit SB01。"
    await principal.send("/unit\x00 SB01\ud800")
    assert (await principal.wait_for()).text.splitlines()[0] == "石坝小学 (SB01)"
