"""/report, /followup, /incidents and /incident through the real bot, with a moved clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import linked
from sqlmodel import select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import ConversationDraft, Incident
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import roster

TZ = ZoneInfo("Asia/Shanghai")
NUMBER = re.compile(r"Reported: (\d{8}-\d{3})\. The leaders of 石坝小学 are being paged\.")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(2, 9))


@pytest.fixture
async def day(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def incidents_stored(stack: LocalStack) -> list[Incident]:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        return list((await uow.session.exec(select(Incident))).all())


async def drafts_open(stack: LocalStack) -> int:
    assert stack.db is not None
    async with stack.db.uow() as uow:
        return len((await uow.session.exec(select(ConversationDraft))).all())


async def described(user: SimUser, text: str = "Smoke from the kitchen; pupils evacuated.") -> str:
    """/report, Fire, Serious, and what happened: the draft's summary is showing."""
    await user.send("/report")
    assert (await user.wait_for()).text.startswith("🚨 Report an incident.")
    await user.press("Fire")
    assert (await user.wait_for()).text == "Fire. How serious is it?"
    await user.press("Serious")
    assert (await user.wait_for()).text.startswith("Place: 石坝小学. Write what happened")
    await user.send(text)
    return (await user.wait_for()).text


async def test_a_serious_incident_is_reported_in_four_interactions_and_pages_the_school(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9101, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9102, "何丽")  # leads the duty on 12-02
    summary = await described(ma)
    assert summary.splitlines()[:5] == [
        "Draft report:",
        "Serious · Fire",
        "Place: 石坝小学",
        "Happened: 12-02 09:00",
        "Casualties: none given",
    ]
    assert ma.last().buttons[:2] == (
        ("🚨 Report",),
        ("⏫ Report and pass straight to the county",),
    )
    await ma.press("🚨 Report")
    done = (await ma.wait_for()).text
    match = NUMBER.match(done)
    assert match is not None and match.group(1) == "20261202-001"
    await day.settle()
    page = next(m for m in he.messages() if "20261202-001" in m.text)
    assert "火灾" in page.text and "✅ 接报" in page.buttons[0]
    [incident] = await incidents_stored(day)
    assert (incident.category, incident.severity, incident.place) == ("fire", "serious", "石坝小学")
    assert await drafts_open(day) == 0


async def test_the_long_path_with_back_and_cancel(day: LocalStack, clock: MovableClock) -> None:
    ma = await linked(day, clock, "SB01-05", 9111, "Jun", language="en")
    await described(ma, "A pupil fell on the stairs.")
    await ma.send_photo()
    await ma.wait_for()
    await ma.press("✅ Done: time and casualties")
    assert (await ma.wait_for()).text.startswith("When did it happen?")
    await ma.press("↩ Back")
    assert (await ma.wait_for()).text.startswith("Draft report:")
    await ma.press("✅ Done: time and casualties")
    await ma.wait_for()
    await ma.send("8:40")
    assert (await ma.wait_for()).text.startswith("Any casualties?")
    await ma.send("one pupil hurt")
    check = (await ma.wait_for()).text
    assert "Happened: 12-02 08:40" in check and "Casualties: one pupil hurt" in check
    assert "📎 Attachments: 1" in check
    await ma.press("✖ Cancel")
    assert (await ma.wait_for()).text == "Cancelled; nothing was reported."
    assert await incidents_stored(day) == [] and await drafts_open(day) == 0
    await ma.press("🚨 Report")  # on the older summary that still shows it
    answer = await ma.wait_for_answer()
    assert answer.show_alert and answer.text is not None
    assert answer.text.startswith("This report is no longer open")
    assert await incidents_stored(day) == []


async def test_a_typed_category_is_refused_and_the_draft_stays(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9121, "Jun", language="en")
    await ma.send("/report")
    await ma.wait_for()
    await ma.send("Fire")
    refused = await ma.wait_for()
    assert refused.text == "Please choose one of the listed categories."
    await ma.press("Fire", message_id=refused.message_id)
    await ma.wait_for()
    await ma.send("serious")
    assert (await ma.wait_for()).text == "Please choose one of the listed severities."
    await ma.press("Serious")
    assert (await ma.wait_for()).text.startswith("Place: 石坝小学.")
    assert await drafts_open(day) == 1 and await incidents_stored(day) == []


async def test_a_report_in_progress_resumes_after_a_restart(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9131, "Jun", language="en")
    await ma.send("/report")
    await ma.wait_for()
    await ma.press("Fire")
    await ma.wait_for()
    await day.restart_bot()
    await ma.press("Serious")
    assert (await ma.wait_for()).text.startswith("Place: 石坝小学.")
    await day.restart_bot()
    await ma.send("Smoke in the kitchen.")
    assert (await ma.wait_for()).text.startswith("Draft report:")
    await ma.press("🚨 Report")
    assert NUMBER.match((await ma.wait_for()).text)


async def test_incidents_incident_and_a_follow_up_reaching_the_paged_leader(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9141, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9142, "何丽")
    await described(ma)
    await ma.press("🚨 Report")
    await ma.wait_for()
    await day.settle()
    clock.set(local(2, 9, 12))
    await he.send("/incidents")
    listed = (await he.wait_for()).text
    assert "20261202-001" in listed and "石坝小学" in listed
    await ma.send("/incident 20261202-001")
    timeline = (await ma.wait_for()).text
    assert timeline.startswith("20261202-001 · Serious · Fire · 石坝小学")
    assert "reported by 马俊" in timeline and "paged 何丽" in timeline
    await ma.send("/followup 20261202-001 Fire is out; nobody hurt.")
    assert (await ma.wait_for()).text.startswith("Follow-up added to 20261202-001")
    await day.settle()
    assert any("Fire is out; nobody hurt." in m.text for m in he.messages())


async def test_report_straight_to_the_county_pages_the_desk_at_once(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9151, "Jun", language="en")
    desk = await linked(day, clock, "QC002", 9152, "李秀英")
    await described(ma)
    await ma.press("⏫ Report and pass straight to the county")
    done = (await ma.wait_for()).text.splitlines()
    assert NUMBER.match(done[0])
    assert done[1] == "It went straight to the county as well (越级直报)."
    await day.settle()
    assert any("20261202-001" in m.text for m in desk.messages())


async def test_the_prompt_before_the_timeout_sends_the_report_as_it_is(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9161, "Jun", language="en")
    await described(ma)
    clock.set(local(2, 9, 25))
    await day.settle()
    assert ma.last().text.startswith("Your incident report is not sent yet")
    await ma.press("🚨 Send the report as it is")
    assert NUMBER.match((await ma.wait_for()).text)
    assert len(await incidents_stored(day)) == 1 and await drafts_open(day) == 0


async def test_a_report_pressed_too_long_ago_to_answer_is_still_confirmed_not_apologised_for(
    day: LocalStack, clock: MovableClock
) -> None:
    """In a storm of presses handled one at a time, Telegram stops taking answers to old ones."""
    ma = await linked(day, clock, "SB01-05", 9171, "Jun", language="en")
    await described(ma)
    day.emulator.world.callback_timeout = timedelta(seconds=-1)  # every answer comes too late
    await ma.press("🚨 Report")
    done = (await ma.wait_for()).text
    assert NUMBER.match(done), done
    assert [i.number for i in await incidents_stored(day)] == ["20261202-001"]
    assert not any("went wrong" in m.text for m in ma.messages())
