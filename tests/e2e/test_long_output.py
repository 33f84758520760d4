"""Text longer than one Telegram message reaches the reader whole: split, or paged with buttons."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import at, linked, local
from sqlmodel import col, select
from test_attendance import clock_in_here

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.message_parts import split_html, visible_length
from bot.models import AuditEntry, ClockEvent, OutboxMessage, Person
from bot.sandbox.html import utf16_len
from bot.sandbox.stack import LocalStack
from bot.services import outbox, roster
from bot.services.outbox import Button

LOG_LENGTH = 12_290
SCHOOL_SIZE = 126


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 5))


def duty_log_messages() -> list[str]:
    """A night's duty log of exactly 12,290 characters, as four messages a person could send."""
    lines = [
        f"{n:03d} 22:{n % 60:02d} 巡查东门 & 操场 <正常>，门锁完好；宿舍楼熄灯，无异常。Patrol ok."
        for n in range(1, 400)
    ]
    text = "\n".join(lines)
    while len(text) < LOG_LENGTH:
        text += "\n补记：夜间气温较低，已提醒宿管老师注意学生保暖。"
    text = text[:LOG_LENGTH].rstrip("\n。")
    text += "。" * (LOG_LENGTH - len(text))
    assert len(text) == LOG_LENGTH
    messages, current = [], ""
    for line in text.split("\n"):
        if current and len(current) + 1 + len(line) > 4000:
            messages.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return [*messages, current]


async def test_a_12290_character_duty_log_is_handed_over_whole_over_several_messages(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7, 50))
    ma = await linked(day, clock, "SB01-05", 9160, "Jun")
    tang = await linked(day, clock, "SB01-06", 9161, "唐磊")
    await clock_in_here(ma)
    await at(day, clock, local(1, 20, 2))
    await ma.send("/out")
    await ma.wait_for()
    sent = duty_log_messages()
    assert len("\n".join(sent)) == LOG_LENGTH and all(len(m) <= 4096 for m in sent)
    for text in sent:
        await ma.send(text)
        await ma.wait_for()
    await ma.send_photo(caption="门锁照片")
    await ma.wait_for()
    await ma.press("✅ Done")
    assert (await ma.wait_for()).text.startswith("👋 Clocked out at 20:02.")

    await at(day, clock, local(1, 20, 5))
    first = await clock_in_here(tang)
    assert first.startswith("✅ 已于20:05签到：石坝小学值班室")
    photo = await tang.wait_for(lambda m: m.photo is not None, timeout=15)
    shown = tang.messages()
    start = next(i for i, m in enumerate(shown) if m.text.startswith("✅ 已于20:05签到"))
    parts = shown[start : shown.index(next(m for m in shown if m.message_id == photo.message_id))]
    assert len(parts) >= 4
    assert all(utf16_len(p.text) <= 4096 for p in parts)
    lines = "\n".join(p.text for p in parts).split("\n")
    handover = lines.index("📋 马俊的交接（12-01 20:02）：")
    assert lines[handover + 1 :] == [
        *"\n".join([*sent, "门锁照片"]).split("\n"),
        "（随后发送1张照片）",
    ]
    assert shown[-1].photo
    assert day.db is not None
    async with day.db.uow() as uow:
        events = (await uow.session.exec(select(ClockEvent).where(ClockEvent.kind == "in"))).all()
    assert len(events) == 2  # 马俊 in the morning, 唐磊 now: the clock-in itself went through


@pytest.fixture
async def big_school(
    database_url: str, clock: MovableClock, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    """The sample district with 石坝乡红岩小学 (SB02) grown to 126 people."""
    files = []
    for path in roster.sample_district_files():
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        files.append(copy)
    people = tmp_path / "people.csv"
    rows = [
        f"SB02-{n:03d},红岩小学教师{n:03d},SB02,staff,139{n:08d},"
        for n in range(100, 100 + SCHOOL_SIZE - 4)
    ]
    with people.open("a", encoding="utf-8", newline="") as handle:
        handle.write("\r\n".join(rows) + "\r\n")
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, files, tz=settings.bot.tz, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def test_unit_of_a_school_of_126_pages_with_buttons_and_lists_everyone_once(
    big_school: LocalStack, clock: MovableClock
) -> None:
    officer = await linked(big_school, clock, "SB002", 9170, "吴静")
    await officer.send("/unit SB02")
    page = await officer.wait_for()
    assert page.text.splitlines()[0] == "石坝乡红岩小学 (SB02)"
    labels = page.labels
    assert labels[0] == "◀" and labels[2] == "▶" and labels[1].startswith("1/")
    count = int(labels[1].split("/")[1])
    assert count >= 2
    seen: list[str] = []
    for number in range(1, count + 1):
        assert page.labels[1] == f"{number}/{count}"
        assert page.text.splitlines()[0] == "石坝乡红岩小学 (SB02)"
        seen += [line.split(" — ")[0][2:] for line in page.text.splitlines() if line[:2] == "• "]
        await officer.press("▶", message_id=page.message_id)
        page = await officer.wait_for()
    assert page.labels[1] == f"1/{count}"  # ▶ on the last page goes round to the first
    assert len(seen) == SCHOOL_SIZE == len(set(seen))
    assert {"冯志刚", "董慧", "红岩小学教师100", "红岩小学教师221"} <= set(seen)

    data = page.callback_data[0][2] or ""
    unit_id = data.split(":")[1]
    await officer.press_data(page.message_id, f"unit:{unit_id}:999")
    assert (await officer.wait_for()).labels[1] == f"{count}/{count}"
    for forged in ("unit:1:²", f"unit:{unit_id}:-1", "unit:" + "9" * 40 + ":0", "unit:x"):
        await officer.press_data(page.message_id, forged)
        assert (await officer.wait_for_answer()).text == "此按钮已失效。"

    teacher = await linked(big_school, clock, "SB02-100", 9171, "红岩小学教师100")
    await teacher.press_data(teacher.last().message_id, f"unit:{unit_id}:1")
    assert (await teacher.wait_for_answer()).text == "该单位不在您的职责范围内。"
    assert not any("☎" in m.text for m in teacher.messages())
    assert big_school.db is not None
    async with big_school.db.uow() as uow:
        refused = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "unit.view"))
        ).all()
    assert [r.allowed for r in refused] == [False]


async def test_a_long_outbox_message_arrives_in_order_with_its_buttons_under_the_last_part(
    day: LocalStack, clock: MovableClock
) -> None:
    await at(day, clock, local(1, 7))
    he = await linked(day, clock, "SB01-02", 9180, "何丽")
    text = "\n".join(f"<b>{n:04d}</b> 东门 &amp; 操场：正常。" for n in range(1, 750))
    assert visible_length(text) > 12_000
    assert day.db is not None
    async with day.db.uow() as uow:
        person = (await uow.session.exec(select(Person).where(Person.staff_no == "SB01-02"))).one()
        first = await outbox.enqueue(
            uow.session,
            now=clock.now(),
            text=text,
            person_id=person.id,
            buttons=[[Button("OK", "x:1")]],
        )
        page = await outbox.enqueue(
            uow.session,
            now=clock.now(),
            text="🚨 <b>" + "长" * 5000 + "</b>",
            person_id=person.id,
            kind="page",
        )
        await uow.commit()
        rows = (
            await uow.session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.person_id == person.id, col(OutboxMessage.id) >= first.id)
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    count = len(split_html(text))
    assert count >= 3 and len(rows) == count + 1
    assert rows[0].id == first.id and rows[-1].id == page.id
    assert [bool(r.body["buttons"]) for r in rows] == [False] * (count - 1) + [True, False]
    assert rows[-1].body["text"].endswith("</b>…")
    await at(day, clock, local(1, 7, 1))
    shown = he.messages()[-(count + 1) :]
    assert "\n".join(m.text for m in shown[:count]).split("\n") == [
        f"{n:04d} 东门 & 操场：正常。" for n in range(1, 750)
    ]
    assert [m.labels for m in shown] == [[]] * (count - 1) + [["OK"], []]
    assert all(e["type"] == "bold" for m in shown[:count] for e in m.entities)
    assert utf16_len(shown[-1].text) == 4096 and shown[-1].text.endswith("…")
