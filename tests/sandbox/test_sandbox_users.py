"""The simulated users' side: media, waiting, edits read back, the call log and latency."""

from __future__ import annotations

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    ReplyKeyboardMarkup,
)

from bot.sandbox import BotApiEmulator


async def test_user_media_reaches_the_bot_and_files_download(emu: BotApiEmulator, bot: Bot) -> None:
    user = emu.user(9, "钱", last_name="老师", username="qian")
    await user.send_location(30.25, 120.16, horizontal_accuracy=15)
    await user.send_photo(caption="现场")
    await user.send_voice(duration=4)
    await user.send_sticker()
    await user.send_document("log.txt", b"duty log")
    await user.send_contact("+8613800000000")

    messages = [u.message for u in await bot.get_updates() if u.message]

    assert [m.effective_attachment.__class__.__name__ for m in messages[2:4]] == [
        "Voice",
        "Sticker",
    ]
    assert messages[0].location is not None and messages[0].location.latitude == 30.25
    assert messages[1].caption == "现场" and len(messages[1].photo) == 3
    photo = await bot.get_file(messages[1].photo[-1].file_id)
    assert (await photo.download_as_bytearray()).startswith(b"\xff\xd8")
    assert messages[2].voice is not None and messages[2].voice.file_size
    assert messages[3].sticker is not None
    assert messages[4].document is not None and messages[4].document.file_name == "log.txt"
    document = await bot.get_file(messages[4].document.file_id)
    assert bytes(await document.download_as_bytearray()) == b"duty log"
    assert messages[5].contact is not None and messages[5].contact.user_id == 9
    assert messages[0].from_user is not None and messages[0].from_user.username == "qian"


async def test_wait_for_times_out_with_the_transcript_tail(emu: BotApiEmulator) -> None:
    user = emu.user(9, "钱")
    await user.send("/in")

    with pytest.raises(AssertionError, match=r"(?s)timed out.*钱 → bot: /in"):
        await user.wait_for(timeout=0.05)


async def test_wait_for_counts_sends_and_edits_since_the_last_action(
    emu: BotApiEmulator, bot: Bot
) -> None:
    user = emu.user(9, "钱")
    await user.send("/report")
    first = await bot.send_message(9, "类别?", reply_markup=ReplyKeyboardMarkup([["火灾", "其他"]]))
    await bot.send_message(9, "second")
    await bot.edit_message_text("类别：火灾", 9, first.message_id)

    both = await user.wait_for_many(2)
    edited = await user.wait_for(lambda m: m.edited)

    assert [m.text for m in both] == ["类别：火灾", "second"]  # current state, edits applied
    assert edited.message_id == first.message_id
    assert both[0].keyboard == ()
    await bot.delete_message(9, first.message_id)
    assert [m.text for m in user.messages()] == ["second"]


async def test_press_data_forges_callback_data_and_call_log_records_status(
    emu: BotApiEmulator, bot: Bot
) -> None:
    user = emu.user(9, "钱")
    await user.start()
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("接报 ✅", callback_data="ack:1")]])
    sent = await bot.send_message(9, "页面", reply_markup=markup)

    pressed = await user.press("接报")  # substring match when no exact label
    forged = await user.press_data(sent.message_id, "ack:999")
    emu.method_latency["getUpdates"] = 0.01
    updates = await bot.get_updates()

    assert pressed.data == "ack:1" and forged.data == "ack:999"
    assert [u.callback_query.data for u in updates if u.callback_query] == ["ack:1", "ack:999"]
    call = emu.calls_of("getUpdates")[-1]
    assert call.status == 200 and call.duration >= 0.01
    assert emu.calls_of("sendMessage")[0].params["chat_id"] == "9"


async def test_media_group_resolves_attach_references(emu: BotApiEmulator, bot: Bot) -> None:
    user = emu.user(9, "钱")
    await user.start()

    sent = await bot.send_media_group(
        9,
        [
            InputMediaDocument(b"a,b\n", filename="week.csv", caption="周报"),
            InputMediaDocument(b"PK\x03\x04", filename="week.xlsx"),
        ],
    )

    assert len({m.media_group_id for m in sent}) == 1
    names = [(m.document_name, m.document_bytes, m.text) for m in user.messages()]
    assert names == [("week.csv", b"a,b\n", "周报"), ("week.xlsx", b"PK\x03\x04", "")]
