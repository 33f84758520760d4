"""Incidents reported, escalated up the tree, followed up and closed; moved clock, real database."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.config import DatabaseSettings, Severity, settings_from_mapping
from bot.db import create_engine
from bot.errors import DraftGone, InvalidInput, NotAllowed
from bot.models import (
    AuditEntry,
    Escalation,
    EscalationEvent,
    EscalationLevel,
    Incident,
    IncidentCounter,
    IncidentEntry,
    OutboxMessage,
    Page,
)
from bot.services import drafts, escalation, incidents
from bot.services.engine import run_due
from bot.services.escalation import PagingContext, phone
from bot.services.incidents import ReportDraft
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")
HANDLERS = {escalation.STEP_KIND: escalation.step_handler(CTX)}
POLICIES = settings_from_mapping({}, environ={}).escalation
FIRE = ReportDraft(
    category="fire",
    severity="serious",
    place="教学楼二楼",
    description="二楼实验室起火，已疏散学生",
    occurred_at=T0,
    casualties="无",
)


def draft(**changes: object) -> ReportDraft:
    return dataclasses.replace(FIRE, **changes)  # type: ignore[arg-type]


async def report(
    db: Database,
    district: District,
    who: str = "staff",
    *,
    at: datetime = T0,
    drill: bool = False,
    **changes: object,
) -> incidents.Reported:
    return await incidents.report(
        db,
        person_id=district.people[who],
        draft=draft(**changes),
        now=at,
        policies=POLICIES,
        ctx=CTX,
        drill=drill,
    )


async def tick(db: Database, at: datetime) -> None:
    await run_due(db, now=at, handlers=HANDLERS, worker="test")


async def messages(db: Database, district: District, kind: str = "page") -> list[str]:
    names = {v: k for k, v in district.people.items()}
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.kind == kind, OutboxMessage.method == "sendMessage")
            .order_by(col(OutboxMessage.id))
        )
        return [names[m.person_id or 0] for m in rows.all()]


async def texts_to(db: Database, district: District, who: str) -> list[str]:
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(OutboxMessage.body)
            .where(OutboxMessage.person_id == district.people[who])
            .order_by(col(OutboxMessage.id))
        )
        return [body["text"] for body in rows.all()]


async def levels(db: Database, esc_id: int) -> dict[str, tuple[str, bool, bool]]:
    """Each level reached: how, whether acknowledged, whether late."""
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(EscalationLevel).where(EscalationLevel.escalation_id == esc_id)
        )
        return {r.level: (r.reached_how, r.acknowledged_at is not None, r.late) for r in rows.all()}


async def acknowledge(db: Database, district: District, who: str, at: datetime) -> None:
    async with db.uow() as uow:
        page = (
            await uow.session.exec(select(Page).where(Page.person_id == district.people[who]))
        ).first()
        assert page is not None and page.id is not None
        await escalation.acknowledge(
            uow.session, page_id=page.id, person_id=district.people[who], now=at, ctx=CTX
        )
        await uow.commit()


async def counts(db: Database) -> list[int]:
    found = []
    async with db.uow() as uow:
        for table in (Incident, IncidentEntry, Escalation, IncidentCounter, OutboxMessage):
            found.append(len((await uow.session.exec(select(table))).all()))
    return found


async def test_serious_incident_acknowledged_at_school_is_passed_up_by_the_system_and_late(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    assert (reported.number, reported.late) == ("20261201-001", False)
    await tick(db, T0)
    assert await messages(db, district) == ["leader", "leader2", "principal"]
    page = (await texts_to(db, district, "principal"))[0]
    for words in ("重大", "火灾", "20261201-001", "教学楼二楼", "12-01 10:00", "无"):
        assert words in page
    await acknowledge(db, district, "principal", T0 + timedelta(minutes=2))
    for minute in range(2, 50):  # acknowledged at the school and not passed up: quiet above
        await tick(db, T0 + timedelta(minutes=minute))
    assert len(await messages(db, district)) == 3
    await tick(db, T0 + timedelta(minutes=50))  # deadline (1 h) − margin (10 min)
    assert (await messages(db, district))[3:] == ["officer", "desk"]
    assert await levels(db, reported.escalation_id) == {
        "unit": ("start", True, False),
        "parent": ("deadline", False, True),
        "county": ("deadline", False, True),
    }
    [line] = await incidents.open_in_scope(
        db, person_id=district.people["desk"], now=T0 + timedelta(minutes=55)
    )
    assert (line.number, line.severity, line.category, line.unit) == (
        "20261201-001",
        Severity.SERIOUS,
        incidents.Category.FIRE,
        "石坝小学",
    )
    assert line.forwarded_late and line.late and not line.reported_late
    assert line.deadline_at == T0 + timedelta(hours=1)
    assert (line.since, line.time_left, line.late_by) == (timedelta(minutes=55), None, None)
    assert line.holder is not None
    assert (line.holder.level, line.holder.unit, line.holder.acknowledged_by) == (
        "county",
        "青川县教育局",
        None,
    )
    story = await incidents.timeline(
        db, person_id=district.people["desk"], number_or_id="20261201-001", now=T0
    )
    summary = [(i.kind, i.person, i.level, i.late) for i in story.items]
    assert summary[:2] == [("report", "张老师", None, False), ("paged", "李带班", "unit", False)]
    assert ("acknowledged", "王校长", "unit", False) in summary
    assert ("reached", None, "parent", True) in summary  # by the system, late
    assert ("reached", None, "county", True) in summary
    assert summary[-1] == ("paged", "Desk Chen", "county", False)


async def test_a_general_incident_acknowledged_at_the_school_never_leaves_it(
    db: Database, district: District
) -> None:
    reported = await report(db, district, severity="general", category="student_injury_illness")
    await tick(db, T0)
    assert await messages(db, district) == ["leader", "leader2"]
    await acknowledge(db, district, "leader", T0 + timedelta(minutes=1))
    for minute in range(1, 121, 5):
        await tick(db, T0 + timedelta(minutes=minute))
    assert await messages(db, district) == ["leader", "leader2"]
    assert await levels(db, reported.escalation_id) == {"unit": ("start", True, False)}
    [line] = await incidents.open_in_scope(db, person_id=district.people["staff"], now=T0)
    assert (line.deadline_at, line.late, line.holder and line.holder.acknowledged_by) == (
        None,
        False,
        "李带班",
    )


async def test_a_direct_report_reaches_the_county_at_once(db: Database, district: District) -> None:
    reported = await report(db, district, direct=True)
    assert await levels(db, reported.escalation_id) == {
        "unit": ("start", False, False),
        "county": ("direct", False, False),
    }
    assert sorted(await messages(db, district)) == ["desk", "leader", "leader2", "principal"]
    async with db.uow() as uow:
        row = (
            await uow.session.exec(select(EscalationLevel).where(EscalationLevel.level == "county"))
        ).one()
    assert row.reached_by_id == district.people["staff"]


async def test_a_direct_report_is_refused_for_severities_without_a_deadline(
    db: Database, district: District
) -> None:
    before = await counts(db)
    with pytest.raises(InvalidInput) as refused:
        await report(db, district, severity="large", direct=True)
    assert "straight to the county" in refused.value.message
    assert await counts(db) == before


async def test_a_report_after_occurrence_plus_deadline_is_late_and_reaches_every_level(
    db: Database, district: District
) -> None:
    reported = await report(db, district, occurred_at=T0 - timedelta(minutes=70))
    assert reported.late
    await tick(db, T0)
    assert sorted(await messages(db, district)) == sorted(
        ["leader", "leader2", "principal", "officer", "desk"]
    )
    assert {k: v[0] for k, v in (await levels(db, reported.escalation_id)).items()} == {
        "unit": "start",
        "parent": "deadline",
        "county": "deadline",
    }
    [line] = await incidents.open_in_scope(db, person_id=district.people["officer"], now=T0)
    assert (line.reported_late, line.late_by) == (True, timedelta(minutes=10))
    story = await incidents.timeline(
        db, person_id=district.people["officer"], number_or_id=reported.incident_id, now=T0
    )
    assert "reported_late" in [item.kind for item in story.items]


async def test_reporting_drops_its_draft_in_the_same_commit_so_a_second_press_stores_nothing(
    db: Database, district: District
) -> None:
    """A process killed after the report's commit left the draft open, and a press stored twice.

    The chaos drill (tests/reliability/test_chaos.py) found it: the draft is now dropped in the
    report's own transaction, so whatever the second press finds, it cannot report again.
    """
    chat = district.chats["staff"]
    started = await drafts.begin(
        db,
        conversation="report",
        chat_id=chat,
        user_id=chat,
        state=1,
        data={},
        now=T0,
        limits=settings_from_mapping({}, environ={}).conversations,
    )
    key = drafts.DraftKey("report", chat, chat, started.token)
    common = {"person_id": district.people["staff"], "policies": POLICIES, "ctx": CTX}
    first = await incidents.report(db, draft=FIRE, now=T0, finishing=key, **common)
    assert await drafts.current(db, conversation="report", chat_id=chat, user_id=chat) is None
    with pytest.raises(DraftGone):
        await incidents.report(
            db, draft=FIRE, now=T0 + timedelta(seconds=5), finishing=key, **common
        )
    async with db.read() as uow:
        numbers = (await uow.session.exec(select(Incident.number))).all()
    assert numbers == [first.number]


async def test_the_report_audit_names_the_reporters_linked_account_and_none_without_one(
    db: Database, district: District
) -> None:
    """The account is read inside the audit entry's own INSERT; it says what the SELECT said."""
    linked = await report(db, district, "staff")
    unlinked = await report(db, district, "nolink")
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(AuditEntry.subject_id, AuditEntry.actor_account).where(
                AuditEntry.action == "incident.report"
            )
        )
        accounts = dict(rows.all())
    assert accounts == {
        linked.incident_id: f"telegram:{district.chats['staff']}",
        unlinked.incident_id: None,
    }


async def test_numbers_run_per_local_day(db: Database, district: District) -> None:
    # 01:00 on 1 December in Shanghai is still 30 November in UTC
    early = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    first = await report(db, district, at=early, occurred_at=early, severity="general")
    second = await report(db, district, at=T0, severity="general")
    next_day = T0 + timedelta(days=1)
    third = await report(db, district, at=next_day, occurred_at=next_day, severity="general")
    assert [first.number, second.number, third.number] == [
        "20261201-001",
        "20261201-002",
        "20261202-001",
    ]


async def test_reports_at_once_from_two_connection_pools_never_share_a_number(
    db: Database, district: District, database_url: str
) -> None:
    other = Database(create_engine(DatabaseSettings(url=database_url)))
    try:
        results = await asyncio.gather(
            *(
                report(pool, district, severity="general", description=f"第{n}起")
                for n in range(6)
                for pool in (db, other)
            )
        )
    finally:
        await other.dispose()
    numbers = sorted(r.number for r in results)
    assert numbers == [f"20261201-{n:03d}" for n in range(1, 13)]


async def test_a_follow_up_goes_to_everyone_paged_and_the_reporter(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    await tick(db, T0)
    followed = await incidents.follow_up(
        db,
        person_id=district.people["leader"],
        incident_id=reported.number,
        text="火已扑灭",
        attachments=("photo-1", "photo-2"),
        now=T0 + timedelta(minutes=5),
        ctx=CTX,
    )
    assert followed.forwarded == 3
    assert await messages(db, district, kind="notice") == ["leader2", "principal", "staff"]
    [text] = await texts_to(db, district, "staff")
    assert "20261201-001" in text and "火已扑灭" in text and "李带班" in text and "2" in text
    with pytest.raises(NotAllowed):
        await incidents.follow_up(
            db,
            person_id=district.people["officer2"],
            incident_id=reported.incident_id,
            text="?",
            now=T0,
            ctx=CTX,
        )
    with pytest.raises(InvalidInput):
        await incidents.follow_up(
            db,
            person_id=district.people["leader"],
            incident_id=reported.incident_id,
            text="  ",
            now=T0,
            ctx=CTX,
        )


async def test_the_final_report_closes_the_incident_and_stops_paging(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    await tick(db, T0)
    final = {"cause": "电线老化", "measures": "断电、疏散、灭火", "outcome": "无人员伤亡"}
    with pytest.raises(NotAllowed):  # staff may report, not close
        await incidents.final_report(
            db,
            person_id=district.people["staff"],
            incident_id=reported.incident_id,
            now=T0,
            ctx=CTX,
            **final,
        )
    closed = await incidents.final_report(
        db,
        person_id=district.people["principal"],
        incident_id=reported.incident_id,
        now=T0 + timedelta(minutes=3),
        ctx=CTX,
        **final,
    )
    assert closed.escalations_closed == 1
    pages_before = len(await messages(db, district))
    for minute in range(3, 70, 5):
        await tick(db, T0 + timedelta(minutes=minute))
    assert len(await messages(db, district)) == pages_before
    async with db.uow() as uow:
        incident = await uow.session.get(Incident, reported.incident_id)
        matter = await uow.session.get(Escalation, reported.escalation_id)
    assert incident is not None and matter is not None
    assert (incident.status, incident.closed_at, matter.status) == (
        "closed",
        T0 + timedelta(minutes=3),
        "resolved",
    )
    assert any("电线老化" in text for text in await texts_to(db, district, "staff"))
    assert await incidents.open_in_scope(db, person_id=district.people["principal"], now=T0) == []
    story = await incidents.timeline(
        db, person_id=district.people["principal"], number_or_id=reported.number, now=T0
    )
    assert story.final is not None and story.final.cause == "电线老化"
    assert [i.kind for i in story.items][-1] == "closed"
    with pytest.raises(InvalidInput):
        await incidents.follow_up(
            db,
            person_id=district.people["leader"],
            incident_id=reported.incident_id,
            text="还有",
            now=T0 + timedelta(minutes=4),
            ctx=CTX,
        )


async def test_an_incident_heard_of_elsewhere_pages_the_school_to_report_it(
    db: Database, district: District
) -> None:
    for outsider in ("officer2", "staff"):
        with pytest.raises(NotAllowed):
            await incidents.record_heard_elsewhere(
                db,
                person_id=district.people[outsider],
                unit_id=district.units["S"],
                draft=FIRE,
                now=T0,
                policies=POLICIES,
                ctx=CTX,
            )
    recorded = await incidents.record_heard_elsewhere(
        db,
        person_id=district.people["officer"],
        unit_id=district.units["S"],
        draft=draft(severity="general"),
        now=T0,
        policies=POLICIES,
        ctx=CTX,
    )
    assert recorded.late
    await tick(db, T0)
    assert await messages(db, district) == ["leader", "leader2", "principal"]
    assert "漏报" in (await texts_to(db, district, "principal"))[0]
    [line] = await incidents.open_in_scope(db, person_id=district.people["desk"], now=T0)
    assert line.not_reported_by_unit and line.reported_late
    story = await incidents.timeline(
        db, person_id=district.people["leader"], number_or_id=recorded.number, now=T0
    )
    assert story.items[0].kind == "not_reported_by_unit" and story.items[0].person == "赵专干"


async def test_views_refuse_incidents_outside_the_persons_scope(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    assert await incidents.open_in_scope(db, person_id=district.people["officer2"], now=T0) == []
    assert len(await incidents.open_in_scope(db, person_id=district.people["officer"], now=T0)) == 1
    with pytest.raises(NotAllowed) as refused:
        await incidents.timeline(
            db, person_id=district.people["officer2"], number_or_id=reported.number, now=T0
        )
    assert refused.value.message == "This incident is outside your area of responsibility."


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "   "},
        {"occurred_at": T0 + timedelta(minutes=5)},
        {"category": "alien_invasion"},
        {"severity": "catastrophic"},
        {"latitude": float("nan"), "longitude": 104.0},
        {"latitude": 32.0, "longitude": 181.0},
        {"latitude": 32.0},
        {"attachments": tuple(f"photo-{n}" for n in range(20))},
        {"description": "火" * 3001},
    ],
)
async def test_bad_input_is_refused_with_one_sentence_and_changes_nothing(
    db: Database, district: District, changes: dict[str, object]
) -> None:
    before = await counts(db)
    with pytest.raises(InvalidInput):
        await report(db, district, **changes)
    assert await counts(db) == before


async def test_refused_reporters_change_nothing(db: Database, district: District) -> None:
    before = await counts(db)
    with pytest.raises(NotAllowed):  # staff may report, not start a drill
        await report(db, district, drill=True)
    async with db.uow() as uow:  # deactivated staff may no longer report
        person = await uow.session.get(incidents.reporting.Person, district.people["staff"])
        assert person is not None
        person.active = False
        await uow.commit()
    with pytest.raises(NotAllowed):
        await report(db, district)
    assert await counts(db) == before


async def test_a_drill_is_marked_in_every_page(db: Database, district: District) -> None:
    reported = await report(db, district, "principal", drill=True)
    await tick(db, T0)
    assert all("演练" in text for text in await texts_to(db, district, "leader"))
    async with db.uow() as uow:
        incident = await uow.session.get(Incident, reported.incident_id)
    assert incident is not None and incident.is_drill


async def facts(db: Database, incident_id: int) -> tuple[int | None, bool]:
    """What the incident row says: the highest unit it reached, and whether that came late."""
    async with db.uow() as uow:
        incident = await uow.session.get(Incident, incident_id)
        assert incident is not None
        return incident.reached_unit_id, incident.forwarded_late


async def page_of(db: Database, district: District, who: str) -> int:
    async with db.uow() as uow:
        page = (
            await uow.session.exec(
                select(Page)
                .where(Page.person_id == district.people[who])
                .order_by(col(Page.id).desc())
            )
        ).first()
        assert page is not None and page.id is not None
        return page.id


async def test_the_incident_row_follows_the_system_passing_it_up_at_the_deadline(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    await tick(db, T0)
    await acknowledge(db, district, "principal", T0 + timedelta(minutes=2))
    await tick(db, T0 + timedelta(minutes=49))
    assert await facts(db, reported.incident_id) == (district.units["S"], False)
    await tick(db, T0 + timedelta(minutes=50))  # no follow-up or final report needed
    assert await facts(db, reported.incident_id) == (district.units["C"], True)


async def test_the_incident_row_follows_a_person_passing_it_up(
    db: Database, district: District
) -> None:
    reported = await report(db, district)
    await tick(db, T0)
    async with db.uow() as uow:
        await escalation.pass_up(
            uow.session,
            page_id=await page_of(db, district, "principal"),
            person_id=district.people["principal"],
            now=T0 + timedelta(minutes=3),
            ctx=CTX,
        )
        await uow.commit()
    assert await facts(db, reported.incident_id) == (district.units["T"], False)


async def test_the_incident_row_follows_silence_and_a_direct_report(
    db: Database, district: District
) -> None:
    large = await report(db, district, severity="large")
    await tick(db, T0)
    await tick(db, T0 + timedelta(minutes=30))  # nobody acknowledged: the township has it
    assert await facts(db, large.incident_id) == (district.units["T"], False)
    direct = await report(db, district, direct=True)
    assert await facts(db, direct.incident_id) == (district.units["C"], False)


async def test_the_incident_row_follows_a_confirmed_phone_report(
    db: Database, district: District
) -> None:
    on_time = await report(db, district)
    await tick(db, T0)
    async with db.uow() as uow:
        await phone.record(
            uow.session,
            page_id=await page_of(db, district, "principal"),
            person_id=district.people["principal"],
            callee_id=district.people["officer"],
            minutes_ago=10,
            now=T0 + timedelta(minutes=20),
            ctx=CTX,
        )
        await uow.commit()
    assert await facts(db, on_time.incident_id) == (district.units["S"], False)  # not yet
    async with db.uow() as uow:
        call = (
            await uow.session.exec(
                select(EscalationEvent).where(EscalationEvent.kind == "phone_report")
            )
        ).one()
        await phone.confirm(
            uow.session,
            event_id=call.id or 0,
            person_id=district.people["officer"],
            received=True,
            now=T0 + timedelta(minutes=25),
            ctx=CTX,
        )
        await uow.commit()
    assert await facts(db, on_time.incident_id) == (district.units["T"], False)
    [line] = await incidents.open_in_scope(
        db, person_id=district.people["officer"], now=T0 + timedelta(minutes=25)
    )
    assert line.holder is not None
    assert (line.holder.unit, line.holder.acknowledged_by) == ("石坝乡中心校", "赵专干")
