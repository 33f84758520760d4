"""The emulator refuses what Telegram refuses, and PTB raises the exceptions it would."""

from __future__ import annotations

import pytest
from sandbox_support import MovableClock
from telegram import Bot, BotCommand, BotCommandScopeChat, InlineKeyboardButton
from telegram import InlineKeyboardMarkup as Markup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.sandbox import BotApiEmulator
from bot.sandbox.html import parse_html, utf16_len

# Reading RetryAfter's message touches PTB's deprecated float retry_after.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def _button(data: str) -> Markup:
    return Markup([[InlineKeyboardButton("go", callback_data=data)]])


async def test_html_is_parsed_and_broken_html_refused(emu: BotApiEmulator, bot: Bot) -> None:
    user = emu.user(1, "李")
    await user.start()

    await bot.send_message(1, "<b>a</b> &lt;b&gt;", parse_mode=ParseMode.HTML)
    assert user.last().text == "a <b>"

    for broken in ("<b>a", "1 < 2", "a & b", "<br>", "<b><i>x</b></i>", '<span class="x">s</span>'):
        with pytest.raises(BadRequest, match=r"^Can't parse entities: "):
            await bot.send_message(1, broken, parse_mode=ParseMode.HTML)
    assert len(user.messages()) == 1


def test_html_entities_are_placed_in_utf16_units_across_runs_of_text() -> None:
    parsed = parse_html(
        '🚨 <b>岗位无人</b>：值班室 &amp; <i>😀x</i> 🙂<a href="https://e.x/">ok</a>'
    )
    assert parsed.text == "🚨 岗位无人：值班室 & 😀x 🙂ok"
    assert parsed.entities == (
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 14, "length": 3},
        {"type": "text_link", "offset": 20, "length": 2, "url": "https://e.x/"},
    )


async def test_markdown_v2_needs_escaped_reserved_characters(emu: BotApiEmulator, bot: Bot) -> None:
    await emu.user(1, "李").start()

    with pytest.raises(BadRequest, match=r"character '\.' is reserved"):
        await bot.send_message(1, "done.", parse_mode=ParseMode.MARKDOWN_V2)
    sent = await bot.send_message(1, "*done*\\.", parse_mode=ParseMode.MARKDOWN_V2)

    assert sent.text == "done."
    assert sent.entities[0].type == "bold"


async def test_length_is_counted_in_utf16_after_parsing(emu: BotApiEmulator, bot: Bot) -> None:
    await emu.user(1, "李").start()
    fitting = "值班🚒" * 1024  # 1024 × (2 + 2 UTF-16 units) = 4096
    assert utf16_len(fitting) == 4096 and len(fitting) == 3072

    await bot.send_message(1, f"<b>{fitting}</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"^Message is too long$"):
        await bot.send_message(1, fitting + "!")
    with pytest.raises(BadRequest, match=r"^Message text is empty$"):
        await bot.send_message(1, "<b> </b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"^Message caption is too long$"):
        await bot.send_photo(1, b"\xff\xd8photo", caption="字" * 1025)


async def test_callback_data_is_limited_to_64_bytes(emu: BotApiEmulator, bot: Bot) -> None:
    await emu.user(1, "李").start()

    await bot.send_message(1, "ok", reply_markup=_button("x" * 64))
    await bot.send_message(1, "ok", reply_markup=_button("值" * 21))  # 63 bytes
    with pytest.raises(BadRequest, match=r"^Button_data_invalid$"):
        await bot.send_message(1, "no", reply_markup=_button("x" * 65))
    with pytest.raises(BadRequest, match=r"^Button_data_invalid$"):
        await bot.send_message(1, "no", reply_markup=_button("值" * 22))  # 66 bytes


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning")
async def test_inline_buttons_need_one_action_and_a_proper_url(
    emu: BotApiEmulator, bot: Bot
) -> None:
    await emu.user(1, "李").start()

    with pytest.raises(BadRequest, match=r"wrong http url"):
        await bot.send_message(
            1, "x", reply_markup=Markup([[InlineKeyboardButton("a", url="ftp://x.org")]])
        )
    with pytest.raises(BadRequest, match=r"text buttons are unallowed"):
        await bot.do_api_request(
            "sendMessage",
            api_kwargs={
                "chat_id": 1,
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"text": "a"}]]},
            },
        )


async def test_edit_rules(emu: BotApiEmulator, bot: Bot) -> None:
    user = emu.user(1, "李")
    said = await user.send("hello")
    sent = await bot.send_message(1, "<i>v1</i>", parse_mode="HTML", reply_markup=_button("a"))

    with pytest.raises(BadRequest, match=r"^Message is not modified: specified new message"):
        await bot.edit_message_text(
            "<i>v1</i>", 1, sent.message_id, parse_mode="HTML", reply_markup=_button("a")
        )
    await bot.edit_message_text("v1", 1, sent.message_id, reply_markup=_button("a"))
    with pytest.raises(BadRequest, match=r"^Message to edit not found$"):
        await bot.edit_message_text("v2", 1, 999)
    with pytest.raises(BadRequest, match=r"^Message can't be edited$"):
        await bot.edit_message_text("v2", 1, said.message_id)
    await bot.edit_message_reply_markup(1, sent.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match=r"^Message is not modified"):
        await bot.edit_message_reply_markup(1, sent.message_id, reply_markup=None)

    assert user.last().text == "v1" and user.last().buttons == () and user.last().edited


async def test_who_may_be_messaged(emu: BotApiEmulator, bot: Bot) -> None:
    stranger = emu.user(2, "王")
    fan = emu.user(3, "赵")
    await fan.start()
    await fan.block()

    with pytest.raises(
        Forbidden, match=r"^Forbidden: bot can't initiate conversation with a user$"
    ):
        await bot.send_message(stranger.user_id, "hi")
    with pytest.raises(Forbidden, match=r"^Forbidden: bot was blocked by the user$"):
        await bot.send_message(fan.user_id, "hi")
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot.send_message(999, "hi")

    await fan.unblock()
    await bot.send_message(fan.user_id, "welcome back")
    kinds = [
        u.my_chat_member.new_chat_member.status for u in await bot.get_updates() if u.my_chat_member
    ]
    assert kinds == ["kicked", "member"]


async def test_callback_answers_are_once_and_within_15_seconds(
    emu: BotApiEmulator, bot: Bot, clock: MovableClock
) -> None:
    user = emu.user(1, "李")
    await user.start()
    await bot.send_message(1, "page", reply_markup=_button("ack"))

    first = await user.press("go")
    await bot.answer_callback_query(first.query_id, "ok", show_alert=True)
    with pytest.raises(BadRequest, match=r"^Query is too old and response timeout expired"):
        await bot.answer_callback_query(first.query_id)
    late = await user.press("go")
    clock.advance(16)
    with pytest.raises(BadRequest, match=r"^Query is too old"):
        await bot.answer_callback_query(late.query_id)
    with pytest.raises(BadRequest, match=r"^Query is too old"):
        await bot.answer_callback_query("nonsense")

    updates = await bot.get_updates()
    assert [u.callback_query.data for u in updates if u.callback_query] == ["ack", "ack"]
    assert user.callback_answers()[0].show_alert


async def test_flood_limits_are_off_by_default_and_enforced_when_on(
    emu: BotApiEmulator, bot: Bot
) -> None:
    await emu.user(1, "李").start()
    for _ in range(10):
        await bot.send_message(1, "burst")

    emu.enforce_flood_limits = True
    for _ in range(3):
        await bot.send_message(1, "burst")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "one too many")

    assert "Retry in 1 seconds" in str(caught.value)
    assert emu.count_status(429) == 1
    emu.reset_limits()
    await bot.send_message(1, "after reset")


async def test_group_limit_is_20_a_minute(emu: BotApiEmulator, bot: Bot) -> None:
    emu.group(-100, "一中值班群")
    emu.enforce_flood_limits = True
    for _ in range(20):
        await bot.send_message(-100, "round-up")
    with pytest.raises(RetryAfter):
        await bot.send_message(-100, "one too many")


async def test_injected_failures_map_to_ptb_errors(emu: BotApiEmulator, bot: Bot) -> None:
    await emu.user(1, "李").start()
    emu.inject_failure("sendMessage", 500)
    emu.inject_failure("sendMessage", 429, retry_after=7)
    emu.inject_failure("sendMessage", 502)
    emu.inject_failure("sendMessage", 403, description="Forbidden: user is deactivated")

    with pytest.raises(NetworkError, match=r"Internal Server Error"):
        await bot.send_message(1, "x")
    with pytest.raises(RetryAfter, match=r"Retry in 7 seconds"):
        await bot.send_message(1, "x")
    with pytest.raises(NetworkError, match=r"Bad Gateway"):
        await bot.send_message(1, "x")
    with pytest.raises(Forbidden, match=r"deactivated"):
        await bot.send_message(1, "x")
    await bot.send_message(1, "x")

    assert [c.status for c in emu.calls_of("sendMessage")] == [500, 429, 502, 403, 200]


async def test_failures_and_slow_answers_for_one_chat_leave_the_others_alone(
    emu: BotApiEmulator, bot: Bot
) -> None:
    first, second = emu.user(1, "李"), emu.user(2, "王")
    await first.start()
    await second.start()
    emu.inject_failure("sendMessage", 502, count=2, chat_id=2)
    emu.inject_failure("sendMessage", 500)

    with pytest.raises(NetworkError, match=r"Bad Gateway"):
        await bot.send_message(2, "x")  # the chat's own failure comes first
    with pytest.raises(NetworkError, match=r"Internal Server Error"):
        await bot.send_message(1, "x")  # a failure for any chat
    emu.slow_answers("sendMessage", 0.3, chat_id=1)
    await bot.send_message(1, "late")
    with pytest.raises(NetworkError, match=r"Bad Gateway"):
        await bot.send_message(2, "x")
    await bot.send_message(2, "y")

    calls = [
        (int(c.params["chat_id"]), c.status, c.duration >= 0.3) for c in emu.calls_of("sendMessage")
    ]
    assert calls == [
        (2, 502, False),
        (1, 500, False),
        (1, 200, True),
        (2, 502, False),
        (2, 200, False),
    ]
    assert [m.text for m in first.messages()] == ["late"]
    assert [m.text for m in second.messages()] == ["y"]


async def test_commands_are_stored_per_scope_and_language(emu: BotApiEmulator, bot: Bot) -> None:
    await emu.user(1, "李").start()

    await bot.set_my_commands([BotCommand("in", "签到"), BotCommand("out", "签退")])
    await bot.set_my_commands([BotCommand("board", "值班看板")], scope=BotCommandScopeChat(1))
    await bot.set_my_commands([BotCommand("in", "Clock in")], language_code="en")

    assert emu.commands() == [("in", "签到"), ("out", "签退")]
    assert emu.commands("chat", chat_id=1) == [("board", "值班看板")]
    assert emu.commands(language_code="en") == [("in", "Clock in")]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(1))] == ["board"]
    with pytest.raises(BadRequest, match=r"Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    await bot.delete_my_commands(scope=BotCommandScopeChat(1))
    assert emu.commands("chat", chat_id=1) == []


async def test_bad_token_and_unknown_method(emu: BotApiEmulator) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emu.base_url}nonsense/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with session.post(f"{emu.base_url}1:a/fooBar", json={}) as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found"
        async with session.post(f"{emu.base_url}77:a/getMe") as response:
            me = (await response.json())["result"]
            assert me["id"] == 77 and me["is_bot"] and me["username"] == "zhiban_demo_bot"


async def test_photos_and_voice_notes_go_again_only_by_a_file_id_the_emulator_has_seen(
    emu: BotApiEmulator, bot: Bot
) -> None:
    user = emu.user(1, "李")
    await user.start()
    photo = (await user.send_photo()).raw["photo"][-1]["file_id"]
    voice = (await user.send_voice(duration=7)).raw["voice"]["file_id"]

    sent_photo = await bot.send_photo(1, photo=photo)
    sent_voice = await bot.send_voice(1, voice=voice)

    assert sent_photo.photo[-1].file_id == photo
    assert sent_voice.voice is not None and sent_voice.voice.file_id == voice
    assert sent_voice.voice.to_dict()["duration"] == 7
    assert user.last().raw["voice"]["file_id"] == voice
    with pytest.raises(BadRequest, match=r"^Wrong file identifier/http url specified$"):
        await bot.send_voice(1, voice="AwACAgIAAxkBAAIBnever-seen")
    with pytest.raises(BadRequest, match=r"^Wrong file identifier/http url specified$"):
        await bot.send_photo(1, photo="AgACAgIAAxkBAAIBnever-seen")
    with pytest.raises(BadRequest, match=r"^Type of file mismatch$"):
        await bot.send_voice(1, voice=photo)
    with pytest.raises(BadRequest, match=r"^Type of file mismatch$"):
        await bot.send_photo(1, photo=voice)
