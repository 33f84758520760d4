"""A newcomer's first contact: /start and /help through the real bot and the emulator."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.sandbox.stack import LocalStack


async def test_start_greets_in_chinese_first_for_a_chinese_phone(stack: LocalStack) -> None:
    teacher = stack.emulator.user(1001, "张老师", language_code="zh-hans")
    await teacher.start()
    reply = await teacher.wait_for()
    chinese, english = reply.text.split("\n\n")
    assert chinese.startswith("张老师，您好！这里是“值班”机器人")
    assert "邀请链接" in chinese
    assert english.startswith("Hello, 张老师. This is Zhiban")


async def test_start_greets_in_english_first_for_an_english_phone(stack: LocalStack) -> None:
    visitor = stack.emulator.user(1002, "Anna", language_code="en")
    await visitor.start()
    reply = await visitor.wait_for()
    english, chinese = reply.text.split("\n\n")
    assert english.startswith("Hello, Anna. This is Zhiban (值班)")
    assert "invite link" in english
    assert chinese.startswith("Anna，您好！")


async def test_help_lists_the_commands_in_the_readers_language(stack: LocalStack) -> None:
    visitor = stack.emulator.user(1003, "Anna", language_code="en")
    await visitor.send("/help")
    assert (await visitor.wait_for()).text.splitlines() == [
        "What Zhiban can do",
        "/start — Start, or open an invite link",
        "/help — What this bot can do",
    ]


async def test_command_menu_is_registered_in_both_languages(stack: LocalStack) -> None:
    assert ("help", "本机器人的功能") in stack.emulator.commands(language_code="zh")
    assert ("help", "What this bot can do") in stack.emulator.commands(language_code="en")
    assert ("help", "本机器人的功能") in stack.emulator.commands()


async def test_a_name_with_markup_characters_is_shown_as_written(stack: LocalStack) -> None:
    visitor = stack.emulator.user(1004, "<b>Tom & Jerry</b>", language_code="en")
    await visitor.start()
    assert (await visitor.wait_for()).text.startswith("Hello, <b>Tom & Jerry</b>.")


async def test_webhook_mode_takes_updates_with_the_secret_token(database_url: str) -> None:
    clock = MovableClock(datetime(2026, 12, 1, tzinfo=UTC))
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock, webhook=True) as running:
        info = running.emulator.webhook_info()
        assert info["url"].endswith("/telegram")
        visitor = running.emulator.user(1005, "Anna", language_code="en")
        await visitor.send("/help")
        assert (await visitor.wait_for()).text.startswith("What Zhiban can do")
