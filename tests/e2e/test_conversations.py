"""One mechanism for every conversation: /swap as one, one at a time per person, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import at, linked, local
from sqlmodel import select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import ConversationDraft, ShiftSwap
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack

SCHOOL = (32.4825, 105.1540)  # 石坝小学, geofence 400 m
LIMITS = settings_from_mapping({}, environ={}).conversations
PROMPT_AFTER = LIMITS.timeout - LIMITS.prompt_before

OUT_DISCARDED = (
    "Your unfinished duty log was discarded; you are still clocked in. Send /out to write it again."
)
REPORT_DISCARDED = (
    "Your unfinished incident report was discarded; nothing was reported. "
    "Send /report to start it again."
)
SWAP_DISCARDED = "Your unfinished swap request was discarded; nobody was asked."
SWAP_GONE = "This swap request is no longer open: it was sent, cancelled or timed out. Send /swap."
REPORT_GONE = "This report is no longer open: it was sent, cancelled or timed out. Send /report."
NIGHT = "12-02 20:00–08:00 值班室"  # 孙小红's night shift


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 7, 50))


async def stored(day: LocalStack) -> list[tuple[str, int | None]]:
    assert day.db is not None
    async with day.db.uow() as uow:
        rows = (await uow.session.exec(select(ConversationDraft))).all()
    return [(row.conversation, row.state) for row in rows]


async def offers(day: LocalStack) -> list[tuple[int, str]]:
    assert day.db is not None
    async with day.db.uow() as uow:
        rows = (await uow.session.exec(select(ShiftSwap))).all()
    return [(row.to_person_id, row.status) for row in rows]


async def on_duty_writing(day: LocalStack, clock: MovableClock, user_id: int) -> SimUser:
    """马俊 clocked in at 石坝小学 and writing the duty log at 20:00, in English."""
    ma = await linked(day, clock, "SB01-05", user_id, "Jun", language="en")
    await ma.send("/in")
    await ma.wait_for()
    await ma.send_location(SCHOOL[0] + 0.0005, SCHOOL[1], horizontal_accuracy=15)
    await ma.wait_for()
    await at(day, clock, local(1, 20))
    await ma.send("/out")
    assert (await ma.wait_for()).text.startswith("Clocking out of 值班室, 石坝小学.")
    return ma


async def in_english(user: SimUser) -> SimUser:
    """Switch the person's language to English with /lang."""
    await user.send("/lang")
    await user.wait_for()
    await user.press("English")
    await user.wait_for()
    return user


async def sun_choosing(day: LocalStack, clock: MovableClock, user_id: int) -> SimUser:
    """孙小红 (night of 12-02), in English, at the colleague step of /swap on 12-02 06:00."""
    await at(day, clock, local(2, 6))
    sun = await in_english(await linked(day, clock, "SB01-04", user_id, "孙小红"))
    await sun.send("/swap")
    assert (await sun.wait_for()).text == "Which shift do you want to hand over?"
    await sun.press(NIGHT)
    assert (await sun.wait_for()).text == "Who should take it?"
    return sun


# One conversation at a time: starting one ends the other, in the database and in the handler.


async def test_starting_a_report_while_writing_the_duty_log_ends_the_duty_log(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await on_duty_writing(day, clock, 9501)
    await ma.send("东门门锁损坏")
    await ma.wait_for()
    await ma.send("/report")
    first, told = await ma.wait_for_many(2)
    assert first.text.startswith("🚨 Report an incident.")
    assert told.text == OUT_DISCARDED
    assert await stored(day) == [("report", 1)]
    # the next message belongs to the report, not to the duty log that is gone
    await ma.send("kitchen fire")
    assert (await ma.wait_for()).text == "Please choose one of the listed categories."
    await ma.press("Fire")
    assert (await ma.wait_for()).text == "Fire. How serious is it?"
    # the duty log's old Done button is a stale button now, and changes nothing
    await ma.press("✅ Done")
    answer = await ma.wait_for_answer()
    assert answer.text == (
        "This clock-out was already finished or has timed out. Send /out to start again."
    )
    assert await stored(day) == [("report", 2)]


async def test_a_restart_after_switching_resumes_only_the_new_conversation(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await on_duty_writing(day, clock, 9502)
    await ma.send("/report")
    await ma.wait_for_many(2)
    await day.restart_bot()
    await ma.send("一切正常")  # the report's first step, not the duty log
    assert (await ma.wait_for()).text == "Please choose one of the listed categories."
    await ma.send("/cancel")
    assert (await ma.wait_for()).text == "Cancelled; nothing was reported."
    await ma.send("还有一件事")
    assert (await ma.wait_for()).text.startswith("I didn't understand that.")
    assert await stored(day) == []


async def test_starting_a_swap_while_reporting_ends_the_report(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(2, 6))
    sun = await in_english(await linked(day, clock, "SB01-04", 9503, "孙小红"))
    await sun.send("/report")
    await sun.wait_for()
    await sun.press("Fire")
    severity = await sun.wait_for()
    await sun.send("/swap")
    first, told = await sun.wait_for_many(2)
    assert first.text == "Which shift do you want to hand over?"
    assert told.text == REPORT_DISCARDED
    await sun.send("Smoke")  # neither the report nor "not understood": the swap's steps are buttons
    assert (await sun.wait_for()).text == (
        "Choose with the buttons above, or send /cancel to stop the swap."
    )
    await sun.press("Serious", message_id=severity.message_id)
    assert (await sun.wait_for_answer()).text == REPORT_GONE
    await sun.send("/out")  # not clocked in: nothing starts, so the swap stays open
    assert (await sun.wait_for()).text == "You are not clocked in to any shift."
    assert await stored(day) == [("swap", 1)]
    await sun.send("/report")
    _first, told = await sun.wait_for_many(2)
    assert told.text == SWAP_DISCARDED
    assert await stored(day) == [("report", 1)]


async def test_cancel_is_in_the_menu_and_outside_a_conversation_there_is_nothing_to_cancel(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9504, "Jun")  # 马俊 reads English
    english = day.emulator.commands(language_code="en")
    assert english == [
        ("start", "Start, or open an invite link"),
        ("help", "What this bot can do"),
    ]  # a newcomer has nothing to cancel
    assert ("cancel", "Cancel what I am writing (duty log, report, swap)") in (
        day.emulator.commands(scope="chat", chat_id=9504)
    )
    await ma.send("/cancel")
    assert (await ma.wait_for()).text == "There is nothing to cancel."
    await ma.send("/lang")
    await ma.wait_for()
    await ma.press("中文")
    await ma.wait_for()
    menu = day.emulator.commands(scope="chat", chat_id=9504)
    assert ("cancel", "取消正在填写的内容（值班记录、报告、换班）") in menu
    await ma.send("/cancel")
    assert (await ma.wait_for()).text == "当前没有可取消的内容。"


# /swap as a conversation kept in the database.


async def test_swap_back_and_confirm_asks_the_colleague_once(
    day: LocalStack, clock: MovableClock
) -> None:
    sun = await sun_choosing(day, clock, 9510)
    tang = await linked(day, clock, "SB01-06", 9511, "唐磊")
    await sun.press("↩ Back")
    assert (await sun.wait_for()).text == "Which shift do you want to hand over?"
    await sun.press(NIGHT)
    await sun.wait_for()
    await sun.press("唐磊")
    confirm = await sun.wait_for()
    assert confirm.text == (
        f"Ask 唐磊 to take your shift {NIGHT}? The duty leader approves once they accept."
    )
    await sun.press("↩ Back")
    assert (await sun.wait_for()).text == "Who should take it?"
    assert await offers(day) == []
    await sun.press("唐磊")
    await sun.wait_for()
    await sun.press("🔁 Ask them")
    assert (await sun.wait_for()).text == (
        "Asked. You will hear when they answer and the duty leader decides."
    )
    await day.settle()
    assert tang.last().text == f"🔁 孙小红请您接替其班次{NIGHT}。您愿意吗？"
    assert [status for _, status in await offers(day)] == ["offered"]
    assert await stored(day) == []


async def test_swap_cancel_by_button_and_by_command_changes_nothing(
    day: LocalStack, clock: MovableClock
) -> None:
    sun = await sun_choosing(day, clock, 9520)
    await sun.press("✖ Cancel")
    assert (await sun.wait_for()).text == "Cancelled; nothing was changed."
    await sun.send("/swap")
    await sun.wait_for()
    await sun.press(NIGHT)
    await sun.wait_for()
    await sun.press("唐磊")
    confirm = await sun.wait_for()
    await sun.send("/cancel")
    assert (await sun.wait_for()).text == "Cancelled; nothing was changed."
    await sun.press_data(confirm.message_id, confirm.data_for("🔁 Ask them"))
    assert (await sun.wait_for_answer()).text == SWAP_GONE
    assert await offers(day) == [] and await stored(day) == []


async def test_a_swap_in_progress_resumes_at_the_same_step_after_a_restart(
    day: LocalStack, clock: MovableClock
) -> None:
    sun = await sun_choosing(day, clock, 9530)
    await day.restart_bot()
    await sun.press("唐磊")
    assert (await sun.wait_for()).text.startswith("Ask 唐磊 to take your shift")
    await day.restart_bot()
    await sun.press("🔁 Ask them")
    assert (await sun.wait_for()).text.startswith("Asked.")
    assert [status for _, status in await offers(day)] == ["offered"]


async def test_a_swap_left_alone_is_prompted_then_asked_as_it_stands(
    day: LocalStack, clock: MovableClock
) -> None:
    sun = await sun_choosing(day, clock, 9540)
    await sun.press("唐磊")
    await sun.wait_for()
    await at(day, clock, local(2, 6) + PROMPT_AFTER)
    prompt = sun.last()
    minutes = int(LIMITS.prompt_before.total_seconds() // 60)
    assert prompt.text == (
        f"Your swap request is not sent yet and will be dropped in {minutes} min. "
        "Ask the colleague now, go on, or discard it?"
    )
    assert prompt.buttons == (("🔁 Ask them now",), ("✏️ Go on", "🗑 Discard"))
    await sun.press("🔁 Ask them now")
    assert (await sun.wait_for()).text.startswith("Asked.")
    assert [status for _, status in await offers(day)] == ["offered"]


async def test_a_swap_left_alone_times_out_with_a_polite_word(
    day: LocalStack, clock: MovableClock
) -> None:
    sun = await sun_choosing(day, clock, 9550)
    await at(day, clock, local(2, 6) + PROMPT_AFTER)
    await sun.press("🔁 Ask them now")  # nobody chosen yet: nothing can be sent
    assert (await sun.wait_for_answer()).text == "Choose the shift and the colleague first."
    await at(day, clock, local(2, 6) + LIMITS.timeout + timedelta(minutes=1))
    minutes = int(LIMITS.timeout.total_seconds() // 60)
    assert sun.last().text == (
        f"Your unfinished swap request was left for {minutes} min and has been dropped; nobody "
        "was asked. Send /swap to start again."
    )
    assert await stored(day) == [] and await offers(day) == []
    await sun.press("唐磊")
    assert (await sun.wait_for_answer()).text == SWAP_GONE


# Bad input inside /report and /out: one sentence, nothing changed, the draft stays.


async def report_at_what(day: LocalStack, clock: MovableClock, user_id: int) -> SimUser:
    ma = await linked(day, clock, "SB01-05", user_id, "Jun", language="en")
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Fire")
    await ma.wait_for()
    await ma.press("Serious")
    assert (await ma.wait_for()).text.startswith("Place: 石坝小学. Write what happened")
    return ma


async def draft_data(day: LocalStack) -> dict[str, object]:
    assert day.db is not None
    async with day.db.uow() as uow:
        row = (await uow.session.exec(select(ConversationDraft))).one()
    return {k: v for k, v in (row.data or {}).items() if k != "_draft"}


CAP = (
    "This draft already holds 10 photos and voice notes, the most it can; that one was not "
    "added. Send text, or finish the draft."
)
TOO_LARGE = "That file is larger than 20 MB and cannot be kept; nothing was added."
TOO_LONG = (
    "That voice note is longer than 10 minutes; nothing was added. Say it in a shorter one, "
    "or write it."
)
NOT_KEPT = "Send text, photos, a voice note or a location about what happened."


async def test_an_album_of_twenty_photos_keeps_ten_and_says_so_at_the_eleventh(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await report_at_what(day, clock, 9560)
    await ma.send_album(20, caption="kitchen")
    answers = [m.text for m in await ma.wait_for_many(20)]
    assert answers[9].startswith("Draft report:") and "📎 Attachments: 10" in answers[9]
    assert answers[10:] == [CAP] * 10
    data = await draft_data(day)
    assert len(data["attachments"]) == 10  # type: ignore[arg-type]
    await ma.send("Smoke from the kitchen.")  # text still goes in
    assert "Smoke from the kitchen." in (await ma.wait_for()).text


async def test_a_file_too_large_an_hour_of_voice_and_the_wrong_kinds_change_nothing(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await report_at_what(day, clock, 9570)
    before = await draft_data(day)
    await ma.send_photo(file_size=30 * 1024 * 1024)
    assert (await ma.wait_for()).text == TOO_LARGE
    await ma.send_voice(duration=3600)
    assert (await ma.wait_for()).text == TOO_LONG
    await ma.send_voice(duration=20, file_size=25 * 1024 * 1024)
    assert (await ma.wait_for()).text == TOO_LARGE
    await ma.send_document("notes.pdf", b"%PDF-1.4")
    assert (await ma.wait_for()).text == NOT_KEPT
    await ma.send_sticker()
    assert (await ma.wait_for()).text == NOT_KEPT
    await ma.send_video()
    assert (await ma.wait_for()).text == NOT_KEPT
    assert await draft_data(day) == before
    await ma.send_voice(duration=30)  # a short one is welcome
    assert "📎 Attachments: 1" in (await ma.wait_for()).text


async def test_the_duty_log_caps_photos_and_refuses_what_it_cannot_keep(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await on_duty_writing(day, clock, 9580)
    await ma.send_album(12)
    answers = [m.text for m in await ma.wait_for_many(12)]
    added = "Added to the duty log. Send more, or press Done."
    assert answers == [added] * 10 + [CAP] * 2
    await ma.send_photo(file_size=21 * 1024 * 1024)
    assert (await ma.wait_for()).text == TOO_LARGE
    for send in (ma.send_voice, ma.send_sticker, ma.send_video):
        await send()
        assert (await ma.wait_for()).text == "Send text or photos for the duty log, or press Done."
    data = await draft_data(day)
    assert len(data["photos"]) == 10  # type: ignore[arg-type]
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:00.")
