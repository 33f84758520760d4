"""Answers to a check-in: ✅ All normal, or 🚨 Report a problem (an incident linked to it).

Rules:
- Only the person who owes a check-in answers it. Someone else's check-in (forged callback
  data with another person's id) is refused and audited; nothing changes.
- An answer is taken once. A second one is refused with the time of the first.
- The answer window ends at the Checkin's `deadline`; an answer after it is recorded and
  marked late (late is `answered_at > deadline`), and the page about the silence closes with
  "answered late at 09:41" (the matter resolves). Late answers are taken until the check-in
  closes, at the next round's moment (`rounds.closes_at`): after that the next round asks
  again, and an answer to the old one is refused.
- A check-in whose person is no longer on duty for it (`rounds.void`) takes no answer.
- Report a problem opens /report for the check-in's unit. The check-in is answered "problem"
  when that report is sent, in the report's own transaction, and holds the incident's id. A
  report is never lost to the check-in's rules: if the check-in was answered or closed in the
  meantime, the incident is stored all the same and the check-in is left as it was.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import EscalationPolicy, Severity
from bot.errors import DraftGone, InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, Translator, translator
from bot.models import Checkin, OutboxMessage, Person, Shift
from bot.services import audit, contacts, drafts, escalation, incidents, outbox
from bot.services.checkins import rounds
from bot.services.escalation import Note, PagingContext
from bot.services.escalation.actions import on_behalf
from bot.services.incidents.reporting import REPORT_GONE, store_report
from bot.services.sql import dialect_name
from bot.uow import Database

NOT_YOURS = N_("This check-in is not yours.")
ANSWERED_ALREADY = N_("You already answered this check-in at {time}.")
CLOSED = N_("This check-in closed at {time}; nothing was recorded.")
OFF_DUTY = N_("You are no longer on duty for this check-in; nothing was recorded.")
RECORDED = N_("✅ All normal: recorded at {time}. Thank you.")
RECORDED_LATE = N_(
    "✅ All normal: recorded at {time}, late (the answer was due by {deadline}). Thank you."
)
RECORDED_PROBLEM = N_("🚨 Problem reported at {time}: {number}.")
LATE_NORMAL_NOTE = N_("✔️ {name} answered late at {time}: all normal.")
LATE_PROBLEM_NOTE = N_("✔️ {name} answered late at {time}: reported a problem ({number}).")


class Answer(StrEnum):
    """What a check-in was answered with."""

    NORMAL = "normal"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Answered:
    """A recorded answer."""

    checkin_id: int
    due_at: datetime
    deadline: datetime
    at: datetime
    late: bool


@dataclass(frozen=True)
class ProblemTarget:
    """Where a problem reported from a check-in happened: the check-in's unit."""

    checkin_id: int
    unit_id: int
    unit_name: str


@dataclass(frozen=True)
class ProblemReported:
    """The incident reported from a check-in, and whether it answered the check-in."""

    report: incidents.Reported
    answered: Answered | None


def _open_checkin_statement(*, lock: bool) -> Any:
    """The check-in and its shift in one statement (the shift says whether it is void).

    Built once per backend, locking the check-in on PostgreSQL. Parameter: `checkin_id`.
    """
    statement = (
        select(Checkin, Shift)
        .outerjoin(Shift, col(Shift.id) == Checkin.shift_id)
        .where(col(Checkin.id) == sa.bindparam("checkin_id"))
    )
    return statement.with_for_update(of=Checkin) if lock else statement


_OPEN_CHECKIN = {lock: _open_checkin_statement(lock=lock) for lock in (False, True)}


async def _open_checkin(
    session: AsyncSession,
    *,
    checkin_id: int,
    person_id: int,
    now: datetime,
    times: Sequence[time],
    tz: ZoneInfo,
) -> tuple[Checkin, Person]:
    """Lock the person's check-in and check that it still takes an answer now."""
    statement = _OPEN_CHECKIN[dialect_name(session) == "postgresql"]
    found = (await session.exec(statement, params={"checkin_id": checkin_id})).first()
    if found is None:
        raise NotFound("This button is no longer valid.")
    checkin, shift = found
    if checkin.person_id != person_id:
        raise NotAllowed(NOT_YOURS)
    if checkin.answered_at is not None:
        raise InvalidInput(ANSWERED_ALREADY, time=checkin.answered_at)
    person = await contacts.person(session, person_id)
    if rounds.void(checkin, person, shift):
        raise InvalidInput(OFF_DUTY)
    closes = rounds.closes_at(checkin.due_at, times, tz)
    if now >= closes:
        raise InvalidInput(CLOSED, time=closes)
    return checkin, person


def _late_note(message: str, name: str, now: datetime, ctx: PagingContext, **params: str) -> Note:
    def note(tr: Translator) -> str:
        return tr._(
            message,
            name=html.escape(name, quote=False),
            time=tr.time_text(now, ctx.tz),
            **params,
        )

    return note


async def _record(
    session: AsyncSession,
    checkin: Checkin,
    person: Person,
    *,
    answer: Answer,
    now: datetime,
    ctx: PagingContext,
    incident: incidents.Reported | None = None,
) -> Answered:
    assert checkin.id is not None
    checkin.answered_at = now
    checkin.answer = answer.value
    checkin.incident_id = incident.incident_id if incident is not None else None
    late = now > checkin.deadline
    if late:
        if incident is None:
            note = _late_note(LATE_NORMAL_NOTE, person.name, now, ctx)
        else:
            note = _late_note(LATE_PROBLEM_NOTE, person.name, now, ctx, number=incident.number)
        await escalation.close_for_subject(
            session, subject_type=rounds.SUBJECT, subject_id=checkin.id, note=note, now=now, ctx=ctx
        )
    await _close_prompts(session, checkin, person, now=now, ctx=ctx, incident=incident)
    await audit.record(
        session,
        at=now,
        action="checkin.answer",
        actor_person_id=person.id,
        subject_type=rounds.SUBJECT,
        subject_id=checkin.id,
        unit_id=checkin.unit_id,
        detail={"answer": answer.value, "late": late, "incident": checkin.incident_id},
    )
    return Answered(checkin.id, checkin.due_at, checkin.deadline, now, late)


def answered_text(
    tr: Translator, answered: Answered, tz: ZoneInfo, number: str | None = None
) -> str:
    """What the person reads once their answer is recorded (pure)."""
    at = tr.time_text(answered.at, tz)
    if number is not None:
        return tr._(RECORDED_PROBLEM, time=at, number=number)
    if answered.late:
        return tr._(RECORDED_LATE, time=at, deadline=tr.time_text(answered.deadline, tz))
    return tr._(RECORDED, time=at)


# Built once: every answer asks it. Parameter: `keys`, the prompt's and the reminder's.
_PROMPTS_SENT = select(OutboxMessage).where(
    col(OutboxMessage.dedupe_key).in_(sa.bindparam("keys", expanding=True))
)


async def _close_prompts(
    session: AsyncSession,
    checkin: Checkin,
    person: Person,
    *,
    now: datetime,
    ctx: PagingContext,
    incident: incidents.Reported | None,
) -> None:
    """Replace the buttons of the check-in's prompt and reminder by the answer.

    Through the outbox, so that 1,500 answers within a minute are each answered at once and
    their edits go out at Telegram's pace.
    """
    assert checkin.id is not None
    keys = [rounds.asked_key(checkin.id, name) for name in ("prompt", "remind")]
    sent = (await session.exec(_PROMPTS_SENT, params={"keys": keys})).all()
    tr = translator(person.language or ctx.default_language)
    answered = Answered(checkin.id, checkin.due_at, checkin.deadline, now, now > checkin.deadline)
    text = answered_text(tr, answered, ctx.tz, incident.number if incident else None)
    for message in sent:
        await outbox.enqueue_edit(session, now=now, target=message, text=text)


async def answer_normal(
    db: Database,
    *,
    external_id: int,
    checkin_id: int,
    now: datetime,
    times: Sequence[time],
    ctx: PagingContext,
) -> Answered:
    """✅ All normal: record the answer (late after the window), in one transaction."""

    async def use_case(session: AsyncSession, person_id: int) -> Answered:
        checkin, person = await _open_checkin(
            session, checkin_id=checkin_id, person_id=person_id, now=now, times=times, tz=ctx.tz
        )
        return await _record(session, checkin, person, answer=Answer.NORMAL, now=now, ctx=ctx)

    return await on_behalf(
        db,
        external_id=external_id,
        use_case=use_case,
        action="checkin.answer",
        subject_id=checkin_id,
        now=now,
        subject_type=rounds.SUBJECT,
    )


async def problem_target(
    db: Database,
    *,
    external_id: int,
    checkin_id: int,
    now: datetime,
    times: Sequence[time],
    tz: ZoneInfo,
) -> ProblemTarget:
    """🚨 Report a problem: check the check-in still takes an answer; say where it is."""

    async def use_case(session: AsyncSession, person_id: int) -> ProblemTarget:
        checkin, _person = await _open_checkin(
            session, checkin_id=checkin_id, person_id=person_id, now=now, times=times, tz=tz
        )
        unit = await contacts.unit(session, checkin.unit_id)
        return ProblemTarget(checkin_id, checkin.unit_id, unit.name)

    return await on_behalf(
        db,
        external_id=external_id,
        use_case=use_case,
        action="checkin.problem",
        subject_id=checkin_id,
        now=now,
        subject_type=rounds.SUBJECT,
    )


async def report_problem(
    db: Database,
    *,
    person_id: int,
    checkin_id: int,
    draft: incidents.ReportDraft,
    now: datetime,
    policies: Mapping[Severity, EscalationPolicy],
    times: Sequence[time],
    ctx: PagingContext,
    finishing: drafts.DraftKey | None = None,
    account: str | None = None,
) -> ProblemReported:
    """Report the incident at the check-in's unit and answer the check-in with it, at once.

    `finishing` names the /report draft this ends, dropped in the same commit, and `account`
    the account the report came from (see `incidents.report`).
    """
    async with db.uow() as uow:
        if account is not None:
            audit.acting_as(uow.session, person_id=person_id, account=account)
        session = uow.session
        if finishing is not None and not await drafts.finish(session, finishing, now=now):
            raise DraftGone(REPORT_GONE)
        checkin = await session.get(Checkin, checkin_id)
        unit_id = (
            checkin.unit_id if checkin is not None and checkin.person_id == person_id else None
        )
        reported = await store_report(
            session,
            person_id=person_id,
            draft=draft,
            now=now,
            policies=policies,
            ctx=ctx,
            unit_id=unit_id,
        )
        answered = None
        try:
            async with session.begin_nested():
                found, person = await _open_checkin(
                    session,
                    checkin_id=checkin_id,
                    person_id=person_id,
                    now=now,
                    times=times,
                    tz=ctx.tz,
                )
                answered = await _record(
                    session,
                    found,
                    person,
                    answer=Answer.PROBLEM,
                    now=now,
                    ctx=ctx,
                    incident=reported,
                )
        except (InvalidInput, NotAllowed, NotFound):
            pass  # the report stands; the check-in keeps the answer it had
        await uow.commit()
    return ProblemReported(reported, answered)
