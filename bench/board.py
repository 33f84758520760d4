"""/board for the county desk of a 500-school county: end to end through the bot, and the service.

The real bot (`LocalStack` with a clock standing at 17:30 local, the emulator) and a county of
20 townships and 500 schools (`support.build_district`: a desk, an officer per township who has
no account, and per school a duty leader, a principal and a member of staff, linked). The
situation at 17:30: at every school the leader of the day and the staff member are on shift
since 08:00 and one school in ten has a third post with nobody on it; nine in ten shifts are
clocked in; 50 incidents are open (10 serious, 40 general, 5 of them drills); the 17:00 check-in
round has a tenth of its check-ins unanswered; a tenth of the schools have not sent their daily
report (due 17:00); one principal in twenty has blocked the bot. The desk sends `/board`
`ROUNDS` times; each is timed from the moment the emulator takes the update to the moment the
bot's reply arrives there. Then the service call alone (`board.for_code`), `ROUNDS` times.
Writes bench/results/board.json.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from support import (
    Options,
    Result,
    bench_settings,
    build_district,
    median,
    temporary_database,
)

from bot.clock import MovableClock
from bot.models import Account, Checkin, ClockEvent, DailyReport, Person, Shift, ShiftKind, Unit
from bot.sandbox.stack import LocalStack
from bot.services import accounts, board, incidents
from bot.services.incidents import ReportDraft
from bot.uow import Database

SCHOOLS = 500
TOWNSHIPS = 20
ROUNDS = 7
TARGET = 1.0  # seconds, end to end on SQLite
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 17, 30, tzinfo=TZ).astimezone(UTC)
RESULTS = Path(__file__).resolve().parent / "results" / "board.json"


def _local(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=TZ).astimezone(UTC)


async def _situation(db: Database, stack: LocalStack) -> None:
    """Shifts, clock-ins, a check-in round, daily reports, unreachable principals; incidents."""
    async with db.uow() as uow:
        session = uow.session
        rows = (
            await session.exec(
                select(Person.id, Person.unit_id, Person.staff_no).order_by(col(Person.id))
            )
        ).all()
        by_school: dict[int, dict[str, int]] = {}
        for person_id, unit_id, staff_no in rows:
            assert person_id is not None
            by_school.setdefault(unit_id, {})[staff_no[:2]] = person_id
        schools = sorted(
            (unit_id, people) for unit_id, people in by_school.items() if "SL" in people
        )
        shifts = []
        for index, (unit_id, people) in enumerate(schools):
            shifts.append(
                Shift(
                    unit_id=unit_id,
                    post="带班",
                    start=_local(8),
                    end=_local(8) + timedelta(days=1),
                    person_id=people["SL"],
                    kind=ShiftKind.LEADER,
                    planned_at=NOW,
                )
            )
            shifts.append(
                Shift(
                    unit_id=unit_id,
                    post="值班室",
                    start=_local(8),
                    end=_local(20),
                    person_id=people["SR"],
                    kind=ShiftKind.STAFF,
                    planned_at=NOW,
                )
            )
            if index % 10 == 0:
                shifts.append(
                    Shift(
                        unit_id=unit_id,
                        post="门卫",
                        start=_local(17),
                        end=_local(23),
                        person_id=None,
                        kind=ShiftKind.STAFF,
                        planned_at=NOW,
                    )
                )
        session.add_all(shifts)
        await session.flush()
        filled = [s for s in shifts if s.person_id is not None]
        for index, shift in enumerate(filled):
            assert shift.id is not None and shift.person_id is not None
            if index % 10 != 3:
                session.add(
                    ClockEvent(
                        shift_id=shift.id,
                        person_id=shift.person_id,
                        kind="in",
                        at=shift.start + timedelta(minutes=5),
                    )
                )
            session.add(
                Checkin(
                    person_id=shift.person_id,
                    unit_id=shift.unit_id,
                    shift_id=shift.id,
                    due_at=_local(17),
                    deadline=_local(17, 30) - timedelta(minutes=1),
                    answered_at=None if index % 10 == 7 else _local(17, 5),
                    answer=None if index % 10 == 7 else "normal",
                )
            )
        for index, (unit_id, people) in enumerate(schools):
            session.add(
                DailyReport(
                    unit_id=unit_id,
                    day=NOW.astimezone(TZ).date(),
                    deadline=_local(17),
                    submitted_at=None if index % 10 == 5 else _local(16, 30),
                    submitted_by_id=None if index % 10 == 5 else people["SP"],
                    nothing_to_report=index % 2 == 0,
                )
            )
        principals = [people["SP"] for _u, people in schools[::20]]
        blocked = await session.exec(select(Account).where(col(Account.person_id).in_(principals)))
        for account in blocked.all():
            account.unreachable_since = _local(9)
            account.unreachable_reason = "blocked the bot"
        await uow.commit()
    assert stack.runtime is not None
    for index, (_unit_id, people) in enumerate(schools[:50]):
        await incidents.report(
            db,
            person_id=people["SP" if index >= 45 else "SR"],  # a drill is a leader's to start
            draft=ReportDraft(
                category="fire" if index % 2 else "student_injury_illness",
                severity="serious" if index < 10 else "general",
                description=f"基准事件{index}",
                occurred_at=NOW - timedelta(minutes=5 + index),
            ),
            now=NOW,
            policies=stack.runtime.settings.escalation,
            ctx=stack.runtime.paging,
            drill=index >= 45,
        )


async def _quiet(stack: LocalStack) -> None:
    """Let the pages about the incidents go out before timing (a busy SQLite may need a while)."""
    for _ in range(12):
        try:
            await stack.settle()
            return
        except TimeoutError:
            continue


async def run(options: Options) -> Result:
    # The clock stands at 17:30 from the start: the day's check-in round and daily reports are
    # this benchmark's own rows, not planned (and paged) by the engine.
    clock = MovableClock(NOW)
    async with temporary_database(options) as url:
        settings = bench_settings(url)
        async with LocalStack(settings, clock) as stack:
            assert stack.db is not None and stack.runtime is not None
            district = await build_district(stack.db, schools=SCHOOLS, townships=TOWNSHIPS)
            for chat, name in district.names.items():  # everyone linked has pressed Start
                stack.emulator.user(chat, name)
                stack.emulator.world.chats[chat].started = True
            desk = stack.emulator.user(district.desk_chat, "县值班室")
            setup_started = time.monotonic()
            await _situation(stack.db, stack)
            setup = time.monotonic() - setup_started
            await _quiet(stack)
            end_to_end = []
            text = ""
            for _ in range(ROUNDS):
                started = time.monotonic()
                await desk.send("/board")
                reply = await desk.wait_for(lambda m: m.text.startswith("📋"), timeout=30)
                end_to_end.append(time.monotonic() - started)
                text = reply.text
            me = await accounts.identify(stack.db, external_id=district.desk_chat)
            assert me is not None
            service = []
            found = None
            for _ in range(ROUNDS):
                started = time.monotonic()
                found = await board.for_code(
                    stack.db,
                    me=me,
                    code=None,
                    now=clock.now(),
                    daily=settings.daily_report,
                    tz=settings.bot.tz,
                )
                service.append(time.monotonic() - started)
            assert found is not None
            async with stack.db.read() as uow:
                units = len((await uow.session.exec(select(Unit.id))).all())
    totals = found.totals
    e2e_median, e2e_max = median(end_to_end), max(end_to_end)
    svc_median, svc_max = median(service), max(service)
    passed = e2e_max < TARGET and totals.schools == SCHOOLS and len(text) <= 4096
    figures = (
        f"end_to_end median={e2e_median:.3f}s max={e2e_max:.3f}s"
        f" service median={svc_median:.3f}s max={svc_max:.3f}s"
        f" schools={totals.schools} units={units} on_duty={totals.on_duty}"
        f" clocked_in={totals.clocked_in} unmanned={totals.unmanned}"
        f" incidents={totals.incidents}+{totals.drills} drills"
        f" checkins_missed={totals.checkins_missed} reports_missing={totals.reports_missing}"
        f" unreachable={totals.unreachable} first_page_chars={len(text)}"
        f" setup={setup:.1f}s (target: every /board under {TARGET:.0f}s end to end)"
        f" [{options.backend}]"
    )
    # One entry per backend, so a run on PostgreSQL keeps the SQLite figures beside it.
    RESULTS.parent.mkdir(exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept[options.backend] = {
        "benchmark": "board",
        "passed": passed,
        "line": figures,
        "schools": SCHOOLS,
        "rounds": ROUNDS,
        "end_to_end_s": {"median": e2e_median, "max": e2e_max, "all": end_to_end},
        "service_s": {"median": svc_median, "max": svc_max, "all": service},
        "totals": totals.__dict__,
        "first_page_chars": len(text),
        "target_s": TARGET,
    }
    RESULTS.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
    return Result("board", passed, figures)
