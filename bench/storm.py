"""County-wide storm: 100 schools report serious incidents at once, straight to the county.

The honest path through the chat: each of 100 reporters (one per school, under 10 townships
under one county) opens `/report`, taps Fire and Serious and writes what happened, so that 100
drafts stand at their summary. Then all 100 tap "⏫ Report and pass straight to the county"
(越级直报) within a few milliseconds. The default `[escalation.serious]` policy reaches the
county only after 15 minutes of silence (or at the report deadline), so the skip-level direct
report is what pages the county desk at once; the school's duty leader and principal are paged
by the same report (the policy's first step, after 0 s).

Measured from the moment the first tap was sent (emulator times, monotonic):
- each school's first page (to its duty leader or principal): first, median, last, and the
  spread between the first and the last school;
- the emulator's whole send rate over the storm (peak in any one second) and its 429 answers;
- the county desk's first page (target within 2 s), and how the desk is served: one page per
  incident, at the desk chat's 1 a second;
- the reporters: how many read the confirmation with their number, how many an apology, and how
  many presses were handled after Telegram stopped taking their answer (the bot handles one
  update at a time, so the 100th press waits for the 99 before it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlmodel import func, select
from support import (
    District,
    Options,
    Result,
    bench_settings,
    build_district,
    median,
    peak_in_window,
    sends_to,
    temporary_database,
)

from bot.clock import SystemClock
from bot.models import Incident, OutboxMessage, Person
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack

SCHOOLS = 100
TOWNSHIPS = 10
TELEGRAM_RATE = 30
TARGET_DESK = 2.0
# How long the storm may take before the schools still unpaged count as missed.
WITHIN = 60.0
# After the last school's page, how long the desk's queue is watched to measure its pace.
DESK_WATCH = 10.0


async def run(options: Options) -> Result:
    clock = SystemClock()
    async with (
        temporary_database(options) as url,
        LocalStack(bench_settings(url), clock) as stack,
    ):
        assert stack.db is not None
        emulator = stack.emulator
        district = await build_district(stack.db, schools=SCHOOLS, townships=TOWNSHIPS)
        for chat, name in district.names.items():  # every linked person has pressed Start
            emulator.user(chat, name, language_code="zh")
            emulator.world.chats[chat].started = True
        reporters = [
            emulator.user(school.reporter_chat, district.names[school.reporter_chat])
            for school in district.schools
        ]
        await asyncio.gather(*(_draft(reporter, index) for index, reporter in enumerate(reporters)))
        await _quiet(stack)
        emulator.enforce_flood_limits = True
        emulator.limiter.reset()
        before = len(emulator.calls)
        started = time.monotonic()
        for reporter in reporters:
            await reporter.press("⏫ Report and pass straight to the county")
        pressed = time.monotonic() - started
        school_chats = {s.leader_chat for s in district.schools} | {
            s.principal_chat for s in district.schools
        }
        paged = await _wait_schools(stack, district, within=WITHIN)
        await asyncio.sleep(DESK_WATCH)
        storm = emulator.calls[before:]
        desk = [c for c in sends_to(emulator, {district.desk_chat}) if c.at >= started]
        async with stack.db.read() as uow:
            session = uow.session
            incidents = (await session.exec(select(func.count()).select_from(Incident))).one()
            first_report, last_report = (
                await session.exec(
                    select(func.min(Incident.reported_at), func.max(Incident.reported_at))
                )
            ).one()
            desk_person = (
                await session.exec(select(Person.id).where(Person.staff_no == "SD0001"))
            ).one()
            desk_rows = (
                await session.exec(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.person_id == desk_person, OutboxMessage.kind == "page")
                )
            ).one()
        school_sends = [c for c in sends_to(emulator, school_chats) if c.at >= started]
        confirmed = sum(
            1
            for reporter in reporters
            if any(m.text.startswith("Reported: ") for m in reporter.messages())
        )
        apologised = sum(
            1 for reporter in reporters if any("went wrong" in m.text for m in reporter.messages())
        )
    firsts = sorted(paged.values())
    refused = sum(1 for call in storm if call.status == 429)
    refused_by = Counter(call.method for call in storm if call.status == 429)
    expired = sum(1 for c in storm if c.method.lower() == "answercallbackquery" and c.status == 400)
    reports_span = (
        (last_report - first_report).total_seconds() if first_report and last_report else 0.0
    )
    sends = [c.at for c in storm if c.method.lower() == "sendmessage" and c.status == 200]
    peak = peak_in_window(sends)
    desk_first = desk[0].at - started if desk else float("inf")
    desk_rate = (len(desk) - 1) / (desk[-1].at - desk[0].at) if len(desk) > 1 else 0.0
    missing = SCHOOLS - len(firsts)
    passed = (
        missing == 0
        and refused == 0
        and peak <= TELEGRAM_RATE
        and desk_first <= TARGET_DESK
        and incidents == SCHOOLS
        and confirmed == SCHOOLS
    )
    if not firsts:
        figures = f"no school was paged; desk_first={desk_first:.2f}s 429s={refused}"
        return Result("storm", False, f"{figures} [{options.backend}]")
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    figures = (
        f"schools_paged={len(firsts)}/{SCHOOLS} first_page_per_school:"
        f" first={firsts[0] - started:.2f}s median={median(firsts) - started:.2f}s"
        f" last={firsts[-1] - started:.2f}s spread={firsts[-1] - firsts[0]:.2f}s"
        f" desk_first={desk_first:.2f}s 429s={refused}{_by_method(refused_by)} peak_1s={peak}"
        f" sends={len(sends)} in {span:.1f}s school_pages={len(school_sends)}"
        f" desk_pages={len(desk)} of {desk_rows} at {desk_rate:.2f}/s"
        f" reports={incidents} stored_over={reports_span:.2f}s taps_sent_in={pressed * 1000:.0f}ms"
        f" confirmed={confirmed}/{SCHOOLS} apologised={apologised}"
        f" taps_answered_too_late={expired}"
        f" (target: every school paged, 0 x 429, <= {TELEGRAM_RATE}/s,"
        f" desk within {TARGET_DESK:.0f}s, every reporter confirmed) [{options.backend}]"
    )
    return Result("storm", passed, figures)


def _by_method(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{method} {n}" for method, n in counts.most_common()) + ")"


async def _draft(reporter: SimUser, index: int) -> None:
    """/report, Fire, Serious, what happened: the draft's summary with its buttons is showing."""
    await reporter.send("/report")
    await reporter.wait_for(timeout=WITHIN)
    await reporter.press("Fire")
    await reporter.wait_for(timeout=WITHIN)
    await reporter.press("Serious")
    await reporter.wait_for(timeout=WITHIN)
    await reporter.send(f"Smoke from the kitchen of school {index}; pupils evacuated.")
    summary = await reporter.wait_for(timeout=WITHIN)
    if not summary.text.startswith("Draft report:"):
        raise AssertionError(f"reporter {index}: no draft summary but {summary.text[:80]!r}")


async def _quiet(stack: LocalStack) -> None:
    """Wait until the bot has sent nothing for a second: the drafts' answers are all out."""
    seen = -1
    while seen != len(stack.emulator.calls):
        seen = len(stack.emulator.calls)
        await asyncio.sleep(1.0)


async def _wait_schools(
    stack: LocalStack, district: District, *, within: float
) -> dict[int, float]:
    """School unit id → when its first page (leader or principal) arrived; until all or timeout."""
    deadline = time.monotonic() + within
    by_chat = {s.leader_chat: s.unit_id for s in district.schools} | {
        s.principal_chat: s.unit_id for s in district.schools
    }
    while True:
        first: dict[int, float] = {}
        for call in sends_to(stack.emulator, set(by_chat)):
            unit = by_chat[int(call.params["chat_id"])]
            first.setdefault(unit, call.at)
        if len(first) >= len(district.schools) or time.monotonic() >= deadline:
            return first
        await asyncio.sleep(0.05)
