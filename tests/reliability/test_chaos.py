"""Kill -9 at any moment: a real `zhiban run` killed and restarted through a busy stretch of a day.

While people report incidents through /report (button presses), clock in with /in, and planted
escalations and missed shifts fall due (some in bursts that take the sender seconds to drain),
the process is killed with SIGKILL after a random (seeded) time and started again, 20 times
per backend (200 with ZHIBAN_RELIABILITY_LONG=1). A last run, stopped cleanly, drains what is
left. Then: every report whose confirmation the reporter read is stored; every clock-in the
person saw confirmed is stored; every page that fell due reached its chat, and a page reached it
twice only where the design allows (the process died between Telegram taking the message and
the row being marked sent: that row was claimed again, so its page arrived at most once per
claim); nothing is half-done; the processes logged no error.

On SQLite one process serves the file, so each start sends again at once what the killed run was
sending (`outbox.free_every_claim`). On PostgreSQL another instance may still be alive, so a
killed sender's claims last their lease (2 minutes) before another sender may take the rows; the
drill does not wait that long there: before the last run it moves those claims back, as the lease
running out would (`stand_in_for_the_lease`).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from process_support import (
    CHECK,
    County,
    bot_texts,
    half_done,
    log_problems,
    open_chats,
    page_counts,
    plant_county,
    process_env,
    stand_in_for_the_lease,
    summary,
    write_config,
)
from processes import BotProcess
from sqlmodel import col, select

from bot.config import DatabaseSettings, EscalationStep
from bot.db import create_engine, is_sqlite
from bot.models import ClockEvent, Deadline, DeadlineStatus, Incident, OutboxMessage, OutboxStatus
from bot.sandbox import BotApiEmulator, SimUser
from bot.sandbox.state import SimCallbackQuery
from bot.services import escalation
from bot.services.page_text import PageSubject
from bot.uow import Database

LONG = os.environ.get("ZHIBAN_RELIABILITY_LONG") == "1"
KILLS = 200 if LONG else 20
SEED = int(os.environ.get("ZHIBAN_RELIABILITY_SEED", "20261130"))
# One kill in five lands while the process starts (seconds from its start; a start takes
# 1.5 to 3 s); the others this long after it began taking updates.
EARLY = 0.2
LIFE_STARTING = (0.2, 2.0)
LIFE_WORKING = (0.1, 2.0)
# A kill cycle takes about this long (s): when the planted work falls due.
CYCLE = 3.3
# How long a person waits for an answer before acting again on what the chat shows (s).
PATIENCE = 6.0
SCHOOLS = 6
REPORTERS_PER_SCHOOL = 1
# The stretch of the day the planted work falls due in, as a share of the expected kill phase.
CHECKS_PER_KILL = 2
BURST = 10  # escalations due at one moment, all paging the same few leaders
NUMBER = re.compile(r"Reported: (\d{8}-\d{3})\.")
CLOCKED = ("✅ Clocked in at", "You already clocked in at")
SHIFTS = (
    # The bot's clock is the system's, so the missed-shift rules run on seconds, not minutes.
    '[shifts]\nremind_after = "5s"\npage_after = "15s"\nescalate_after = "30s"\n'
)


@dataclass
class Reporter:
    """A person who reports one incident after another through /report, as long as asked."""

    user: SimUser
    started: int = 0
    in_report: bool = False
    # What each report said (its marker): read back confirmed, or gone without a confirmation.
    confirmed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event, rng: random.Random) -> None:
        while not stop.is_set():
            await self.report_once()
            await asyncio.sleep(rng.uniform(0.0, 1.0))

    async def report_once(self) -> None:
        """Go through /report as the chat shows it, acting again where the bot went silent."""
        self.in_report = True
        self.started += 1
        marker = f"Smoke in room {self.user.user_id}-{self.started}."
        try:
            # What the bot said before (the last report's confirmation) is not this report's.
            floor = (await self.user.send("/report")).message_id
            for attempt in range(40):
                shown = [m for m in self.user.messages() if m.message_id > floor]
                text = shown[-1].text if shown else ""
                if not text and attempt % 3 != 2:
                    await self._answer(None)  # no answer to /report yet: wait a while more
                    continue
                if NUMBER.search(text):
                    self.confirmed.append(marker)
                    return
                try:
                    pressed = await self._act(text, marker)
                except AssertionError:  # the button is gone: the chat moved on meanwhile
                    pressed = None
                    await self.user.send("/report")
                answer = await self._answer(pressed)
                if answer is not None and "no longer open" in answer:
                    # Sent, cancelled or timed out, the bot says: the person starts again.
                    self.vanished.append(marker)
                    return
        finally:
            self.in_report = False

    async def _answer(self, pressed: SimCallbackQuery | None) -> str | None:
        """Wait (a person's patience) for a message, or for an alert answering the press."""
        until = time.monotonic() + PATIENCE
        while time.monotonic() < until:
            try:
                await self.user.wait_for(timeout=0.25)
                return None
            except AssertionError:
                if pressed is not None and pressed.answer is not None and pressed.answer.text:
                    return pressed.answer.text
        return None  # the bot is down, or lost the update as it died: act on what shows

    async def _act(self, text: str, marker: str) -> SimCallbackQuery | None:
        if text.startswith("🚨 Report an incident"):
            return await self.user.press("Fire")
        if "How serious is it?" in text:
            return await self.user.press("Serious")
        if text.startswith("Where did it happen?"):
            return await self.user.press("📍")
        if text.startswith(("Draft report:", "Please check the report")):
            return await self.user.press("🚨 Report")
        if text.startswith("Place:"):
            await self.user.send(marker)
        else:
            await self.user.send("/report")
        return None


@dataclass
class Clocker:
    """A member of staff who clocks in at a chosen moment (or never) and reads the answer."""

    user: SimUser
    at: float | None  # monotonic time to clock in; None: never (the shift is missed)
    confirmed: bool = False

    async def run(self, done: asyncio.Event) -> None:
        if self.at is None:
            return
        await asyncio.sleep(max(0.0, self.at - time.monotonic()))
        while not self.confirmed:
            await self.user.send("/in")
            try:
                reply = await self.user.wait_for(
                    lambda m: m.text.startswith(CLOCKED), timeout=PATIENCE
                )
            except AssertionError:
                if done.is_set():
                    return
                continue
            self.confirmed = reply.text.startswith(CLOCKED)


async def plant_checks(
    db: Database, county: County, rng: random.Random, span: float
) -> tuple[list[int], float]:
    """Escalations whose first page falls due during the kills: spread out, and in bursts.

    Returns their subject numbers and the last one's due time (seconds from now).
    """
    count = KILLS * CHECKS_PER_KILL
    offsets: list[float] = []
    while len(offsets) < count:
        if rng.random() < 0.3:  # a burst: many pages due at once to the same leaders
            moment = rng.uniform(3.0, span)
            offsets += [moment] * min(BURST, count - len(offsets))
        else:
            offsets.append(rng.uniform(3.0, span))
    now = datetime.now(UTC)
    async with db.uow() as uow:
        for n, offset in enumerate(offsets, start=1):
            school = county.schools[rng.randrange(len(county.schools))]
            await escalation.start(
                uow.session,
                policy="reliability",
                steps=[EscalationStep(after=timedelta(seconds=offset), roles=["duty_leader"])],
                subject_type="check",
                subject_id=n,
                unit_id=school,
                now=now,
                subject=PageSubject(what=CHECK, ask="Acknowledge.", what_params={"n": f"{n:05d}"}),
            )
        await uow.commit()
    return list(range(1, count + 1)), max(offsets)


async def until_drained(
    db: Database,
    final: BotProcess,
    *,
    before: datetime,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Wait until what fell due before `before` is done: its deadlines handled, messages sent.

    The reported matters go on paging (repeats, the next steps) as long as the run lasts, so
    what falls due later is left to the next run.
    """
    until = time.monotonic() + timeout
    while True:
        assert final.running, "".join(final.lines)
        async with db.read() as uow:
            due = (
                await uow.session.exec(
                    select(Deadline).where(
                        Deadline.status == DeadlineStatus.PENDING, col(Deadline.due_at) <= before
                    )
                )
            ).all()
            waiting = (
                await uow.session.exec(
                    select(OutboxMessage).where(
                        col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                        col(OutboxMessage.created_at) <= before,
                    )
                )
            ).all()
        if not due and not waiting:
            return
        if time.monotonic() > until:
            shown = [line for line in final.lines if " INFO bot.app: update " not in line]
            raise AssertionError(f"not drained: {due} {waiting}\n" + "".join(shown))
        await asyncio.sleep(0.25)


async def test_kill_9_at_random_moments_loses_no_report_no_clock_in_and_no_page(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}-{database_url.split(':')[0]}")
    db = Database(create_engine(DatabaseSettings(url=database_url)))
    runs: list[BotProcess] = []
    async with BotApiEmulator() as emu:
        # Telegram stores a message before its answer comes back: with some latency a kill can
        # land between the two, the one moment a page can be sent twice.
        emu.method_latency = {"sendMessage": 0.03}
        try:
            span = KILLS * CYCLE * 0.85  # the planted work falls due within it
            started = time.monotonic()
            # A shift's page (15 s) and escalation (30 s) also fall due within the span.
            shift_offsets = [
                [rng.uniform(5.0, max(6.0, span - 35.0)) for _ in range(3)] for _ in range(SCHOOLS)
            ]
            now = datetime.now(UTC)
            county = await plant_county(
                db,
                schools=SCHOOLS,
                reporters_per_school=REPORTERS_PER_SCHOOL,
                shifts_at=[[now + timedelta(seconds=o) for o in row] for row in shift_offsets],
            )
            checks, last_check = await plant_checks(db, county, rng, span)
            open_chats(emu, list(county.chat_of_person.values()))
            reporters = [Reporter(emu.user(chat, f"用户{chat}")) for chat in county.reporters]
            # Per school: one clocks in 3 s before the start, one 20 s after it (the page to the
            # leader went out at 15 s and closes), one never (the page stays and escalates).
            clockers = []
            for s, row in enumerate(shift_offsets):
                for k, offset in enumerate(row):
                    chat = county.clockers[s * 3 + k]
                    at = [started + offset - 3.0, started + offset + 20.0, None][k]
                    clockers.append(Clocker(emu.user(chat, f"用户{chat}"), at))
            env = process_env(write_config(tmp_path / "config.toml", database_url, emu, SHIFTS))

            stop_reporting = asyncio.Event()
            clocking_done = asyncio.Event()
            agents = [asyncio.create_task(r.run(stop_reporting, rng)) for r in reporters]
            agents += [asyncio.create_task(c.run(clocking_done)) for c in clockers]

            kills_mid_report = kills_before_updates = 0
            held_at_kill: list[int] = []
            for k in range(KILLS):
                run = await BotProcess.start(env, tmp_path, name=f"run{k}")
                runs.append(run)
                if rng.random() < EARLY:  # while it starts: migrating, electing, connecting
                    await asyncio.sleep(rng.uniform(*LIFE_STARTING))
                else:
                    await run.until_taking_updates()
                    await asyncio.sleep(rng.uniform(*LIFE_WORKING))
                assert run.running, f"run {k} ended by itself:\n" + "".join(run.lines)
                kills_before_updates += not run.taking_updates.is_set()
                kills_mid_report += any(r.in_report for r in reporters)
                assert await run.end(signal.SIGKILL) == -signal.SIGKILL
                held_at_kill.append(await claimed_by_pid(db, run.process.pid))
                await asyncio.sleep(rng.uniform(0.0, 0.3))
            chaos_seconds = time.monotonic() - started
            starts = [run.started_in for run in runs if run.started_in is not None]

            # The last run: started after what was planted has fallen due, stopped cleanly.
            stop_reporting.set()
            # SQLite: the product frees them at each start; PostgreSQL: the lease would
            stale = 0 if is_sqlite(database_url) else await stand_in_for_the_lease(db)
            final = await BotProcess.start(env, tmp_path, name="final")
            runs.append(final)
            await final.until_taking_updates()
            wait_planted = max(last_check, *(o + 35.0 for row in shift_offsets for o in row))
            await asyncio.sleep(max(0.0, started + wait_planted - time.monotonic()))
            _, pending = await asyncio.wait(agents[: len(reporters)], timeout=90)
            if pending:
                shown = [
                    (bot_texts(emu, r.user.user_id)[-1:], r.user.callback_answers()[-1:])
                    for r in reporters
                    if r.in_report
                ]
                raise AssertionError(f"reports not finished: {shown}\n{''.join(final.lines)}")
            clocking_done.set()
            await asyncio.gather(*agents)
            # Everything that fell due until now goes out; then a clean stop.
            drained_from = datetime.now(UTC)
            await until_drained(db, final, before=drained_from, timeout=300 if LONG else 90)
            assert await final.end(signal.SIGTERM) == 0, "".join(final.lines)

            # Every confirmation a reporter read is an incident in the database.
            confirmed = {
                match.group(1)
                for chat in county.reporters
                for text in bot_texts(emu, chat)
                if (match := NUMBER.search(text))
            }
            async with db.read() as uow:
                incidents = (await uow.session.exec(select(Incident))).all()
                stored = {incident.number for incident in incidents}
                clocked_in = set(
                    (
                        await uow.session.exec(
                            select(ClockEvent.shift_id).where(ClockEvent.kind == "in")
                        )
                    ).all()
                )
                unconfirmed = (
                    await uow.session.exec(
                        select(OutboxMessage.id).where(
                            OutboxMessage.status == OutboxStatus.SENT,
                            col(OutboxMessage.last_error).is_not(None),
                        )
                    )
                ).all()
            assert confirmed, "no report was confirmed"
            assert confirmed <= stored, sorted(confirmed - stored)
            # A report is stored once, however often the person pressed 🚨 Report around a kill.
            told = [marker for r in reporters for marker in r.confirmed]
            vanished = [marker for r in reporters for marker in r.vanished]
            times_stored = {
                marker: sum(marker in incident.description for incident in incidents)
                for marker in told + vanished
            }
            assert all(times_stored[marker] == 1 for marker in told), times_stored
            assert all(times_stored[marker] <= 1 for marker in vanished), times_stored
            # Every clock-in the person saw confirmed is stored.
            seen_clocked = {county.shifts[c.user.user_id] for c in clockers if c.confirmed}
            assert seen_clocked <= clocked_in, sorted(seen_clocked - clocked_in)

            # Every page that fell due reached its chat; twice only where its row was claimed
            # again after a kill, and never more often than it was claimed.
            counts = await page_counts(db, emu, county.chat_of_person)
            lost = [c for c in counts if c.rows_sent and c.arrived < c.rows_sent]
            assert not lost, lost
            doubled = [c for c in counts if c.arrived > c.rows_sent]
            beyond = [c for c in doubled if c.arrived > c.attempts]
            assert not beyond, [
                (c, [t for t in bot_texts(emu, c.chat) if c.marker in t]) for c in beyond[:2]
            ]
            duplicates = sum(c.arrived - c.rows_sent for c in doubled)
            assert duplicates <= sum(held_at_kill), (duplicates, held_at_kill)
            arrived_checks = {
                int(c.marker.split()[-1].rstrip("."))
                for c in counts
                if "check" in c.marker
                if c.arrived
            }
            assert arrived_checks == set(checks), sorted(set(checks) - arrived_checks)
            missed = [c for c in clockers if c.at is None]
            for clocker in missed:
                post_marker = f"Gate {clockers.index(clocker) // 3:02d}02"
                assert any(
                    post_marker in c.marker and c.arrived and c.chat in county.leaders.values()
                    for c in counts
                ), post_marker
            assert await half_done(db, before=drained_from) == []
            problems = [line for run in runs for line in log_problems(run.lines)]
            assert not problems, "".join(problems)

            figures = {
                "backend": database_url.split("+")[0],
                "kills": KILLS,
                "start_to_updates_s": f"{statistics.median(starts):.1f}",
                "chaos_s": f"{chaos_seconds:.0f}",
                "kills_before_taking_updates": kills_before_updates,
                "kills_mid_report": kills_mid_report,
                "kills_holding_rows": sum(1 for h in held_at_kill if h),
                "rows_held_at_kills": sum(held_at_kill),
                "claims_moved_back": stale,
                "reports_confirmed": len(confirmed),
                "reports_gone_unconfirmed": len(vanished),
                "of_which_stored": sum(times_stored[marker] for marker in vanished),
                "incidents_stored": len(stored),
                "clock_ins_confirmed": len(seen_clocked),
                "pages_sent": sum(c.rows_sent for c in counts),
                "pages_arrived": sum(c.arrived for c in counts),
                "duplicates": duplicates,
                "unconfirmed_rows": len(unconfirmed),
            }
            print("\nchaos " + summary(figures))
        finally:
            for run in runs:
                if run.running:
                    await run.end(signal.SIGKILL)
            # Each run's log, for reading after a failure.
            (tmp_path / "runs.log").write_text(
                "".join(
                    f"=== {run.name} pid {run.process.pid}\n" + "".join(run.lines) for run in runs
                ),
                encoding="utf-8",
            )
            await db.dispose()


async def claimed_by_pid(db: Database, pid: int) -> int:
    """How many outbox rows the sender of process `pid` held when it died."""
    async with db.read() as uow:
        claims = (
            await uow.session.exec(
                select(OutboxMessage.claimed_by).where(OutboxMessage.status == OutboxStatus.SENDING)
            )
        ).all()
    return sum(1 for claim in claims if claim and claim.split(":")[1:2] == [str(pid)])
