"""The real PTB Application polls the emulator: commands, buttons, documents, edits."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram.ext import Application

from bot.sandbox import BotApiEmulator


async def test_start_reaches_the_handler_and_the_reply_is_read_back(
    emu: BotApiEmulator,
    polling_app: Application,  # type: ignore[type-arg]
) -> None:
    teacher = emu.user(1001, "张老师")

    sent = await teacher.start("INVITE42")
    reply = await teacher.wait_for()

    assert sent.raw["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert reply.text == "你好 张老师 INVITE42"
    assert reply.html == "你好 <b>张老师</b> INVITE42"
    assert reply.entities == ({"type": "bold", "offset": 3, "length": 3},)
    assert reply.buttons == (("接报", "详情"),)
    assert reply.reply_to_message_id is None  # PTB quotes only in groups by default
    assert reply.message_id == sent.message_id + 1


async def test_button_press_gives_callback_query_answer_and_edit(
    emu: BotApiEmulator,
    polling_app: Application,  # type: ignore[type-arg]
) -> None:
    teacher = emu.user(1001, "张老师")
    await teacher.start()
    await teacher.wait_for()

    query = await teacher.press("接报")
    answer = await teacher.wait_for_answer()
    edited = await teacher.wait_for(lambda m: m.edited)

    assert query.data == "ack:7"
    assert answer.text == "收到 ack:7"
    assert not answer.show_alert
    assert edited.text == "已接报 (ack:7)"
    assert edited.buttons == ()  # an edit without reply_markup drops the keyboard
    assert [m.text for m in teacher.messages()] == ["已接报 (ack:7)"]
    assert teacher.callback_answers() == [answer]


async def test_press_of_a_missing_label_lists_the_visible_ones(
    emu: BotApiEmulator,
    polling_app: Application,  # type: ignore[type-arg]
) -> None:
    teacher = emu.user(1001, "张老师")
    await teacher.start()
    await teacher.wait_for()

    try:
        await teacher.press("上报")
    except AssertionError as exc:
        assert "接报" in str(exc) and "详情" in str(exc)
    else:
        raise AssertionError("pressing a missing label must fail")


async def test_document_round_trips_through_multipart_upload(
    emu: BotApiEmulator,
    polling_app: Application,  # type: ignore[type-arg]
) -> None:
    teacher = emu.user(1001, "张老师")
    await teacher.send("/doc")

    document = await teacher.wait_for()

    assert document.document_name == "roster.csv"
    assert document.document_bytes == "id,name\n1,张\n".encode()
    assert document.text == "名册"
    file = await polling_app.bot.get_file(document.raw["document"]["file_id"])
    assert bytes(await file.download_as_bytearray()) == document.document_bytes


async def test_text_echo_and_transcript_lines(
    emu: BotApiEmulator,
    polling_app: Application,  # type: ignore[type-arg]
) -> None:
    teacher = emu.user(1001, "张老师")
    await teacher.start()
    await teacher.wait_for()
    await teacher.send("一切正常")
    await teacher.wait_for(lambda m: m.text.startswith("echo"))

    lines = emu.transcript_text(ZoneInfo("Asia/Shanghai")).splitlines()

    assert lines == [
        "[08:03] 张老师 → bot: /start",
        "[08:03] bot → 张老师: 你好 张老师  [接报] [详情]",
        "[08:03] 张老师 → bot: 一切正常",
        "[08:03] bot → 张老师: echo: 一切正常",
    ]
    assert [e.kind for e in emu.transcript()] == ["message"] * 4
