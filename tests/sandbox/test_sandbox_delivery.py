"""Update delivery: webhook pushes with the secret header, getUpdates conflicts, groups."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sandbox_support import TOKEN, build_application
from telegram import Bot
from telegram.error import Conflict

from bot.sandbox import BotApiEmulator


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_webhook_delivers_to_ptb_and_refuses_get_updates(
    emu: BotApiEmulator, bot: Bot
) -> None:
    app = build_application(emu)
    port = _free_port()
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="hook",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        secret_token="s3cret-Token_1",
    )
    try:
        teacher = emu.user(1001, "张老师")
        await teacher.start()
        reply = await teacher.wait_for()
        assert reply.text == "你好 张老师"
        info = await bot.get_webhook_info()
        assert info.url == f"http://127.0.0.1:{port}/hook"
        assert info.last_error_message is None
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_webhook_with_a_wrong_secret_is_retried_then_reported(
    emu: BotApiEmulator, bot: Bot
) -> None:
    app = build_application(emu)
    port = _free_port()
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="hook", secret_token="right"
    )
    emu.feed.webhook_retry_delay = 0.01
    await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="wrong")
    try:
        await emu.user(1001, "张老师").send("hi")
        await asyncio.wait_for(emu.world.wait_until(lambda: emu.updates_pending() == 0), 3)
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None
        assert info.last_error_message.startswith("Wrong response from the webhook: 403")
        assert emu.user(1001, "张老师").messages() == []
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_set_webhook_needs_https_except_on_loopback(bot: Bot) -> None:
    from telegram.error import BadRequest

    with pytest.raises(BadRequest, match=r"an https url must be provided"):
        await bot.set_webhook("http://example.org/hook")
    assert await bot.set_webhook("https://example.org/hook")
    assert await bot.delete_webhook()


async def test_a_second_poller_terminates_the_first(emu: BotApiEmulator) -> None:
    async with (
        Bot(TOKEN, base_url=emu.base_url) as first,
        Bot(TOKEN, base_url=emu.base_url) as second,
    ):
        older = asyncio.create_task(first.get_updates(timeout=1))
        await asyncio.wait_for(emu.world.wait_until(lambda: emu.feed.polls_received == 1), 1)
        newer = asyncio.create_task(second.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, 2)
        await emu.user(5, "周").send("hello")
        updates = await asyncio.wait_for(newer, 2)
    assert [u.message.text for u in updates if u.message] == ["hello"]


async def test_offset_confirms_and_allowed_updates_filter(emu: BotApiEmulator, bot: Bot) -> None:
    user = emu.user(5, "周")
    await user.send("one")
    await user.send("two")

    first = await bot.get_updates(limit=1)
    rest = await bot.get_updates(offset=first[0].update_id + 1)
    await bot.get_updates(offset=rest[-1].update_id + 1, allowed_updates=["callback_query"])
    await user.send("ignored")

    assert [u.message.text for u in first + rest if u.message] == ["one", "two"]
    assert emu.updates_pending() == 0
    assert await bot.get_updates() == ()


async def test_group_privacy_and_bot_membership(emu: BotApiEmulator, bot: Bot) -> None:
    principal = emu.user(7, "校长")
    group = emu.group(-1001, "一中值班群", kind="supergroup", bot_member=False)
    await group.send(principal, "/board")
    await group.add_bot(by=principal)
    await group.send(principal, "大家好")
    await group.send(principal, "/board@zhiban_demo_bot")
    await group.send(principal, "/board@other_bot")

    updates = await bot.get_updates()
    await bot.send_message(group.chat_id, "看板")

    assert [u.my_chat_member.new_chat_member.status for u in updates if u.my_chat_member] == [
        "member"
    ]
    assert [u.message.text for u in updates if u.message] == ["/board@zhiban_demo_bot"]
    assert updates[-1].message is not None and updates[-1].message.chat.type == "supergroup"
    assert group.last().text == "看板"
