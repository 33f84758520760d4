"""Drills (演练): started in scope, run through the real escalation, ended and reviewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.config import Severity, settings_from_mapping
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import translator
from bot.models import Deadline, Incident, OutboxMessage, Page
from bot.services import escalation, incidents
from bot.services.engine import run_due
from bot.services.escalation import PagingContext
from bot.services.escalation.views import DRILL_LINE
from bot.services.incidents import drills
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")
HANDLERS = {
    escalation.STEP_KIND: escalation.step_handler(CTX),
    **drills.deadline_handlers(CTX),
}
POLICIES = settings_from_mapping({}, environ={}).escalation
MARKS = {translator(code)._(DRILL_LINE) for code in ("zh", "en")}


def marked(text: str) -> bool:
    """The message opens with the DRILL marker, in the reader's language."""
    return text.split("\n", 1)[0] in MARKS


ZH = translator("zh")


async def start(
    db: Database,
    district: District,
    who: str = "principal",
    unit: int | str = "S",
    *,
    severity: str = "serious",
    length: timedelta = timedelta(minutes=55),
) -> drills.DrillStarted:
    return await drills.start_drill(
        db,
        person_id=district.people[who],
        unit_code_or_id=unit,
        severity=severity,
        now=T0,
        policies=POLICIES,
        ctx=CTX,
        length=length,
    )


async def tick(db: Database, at: datetime) -> None:
    await run_due(db, now=at, handlers=HANDLERS, worker="test")


async def texts_to(db: Database, district: District, who: str) -> list[str]:
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(OutboxMessage.body)
            .where(OutboxMessage.person_id == district.people[who])
            .order_by(col(OutboxMessage.id))
        )
        return [body["text"] for body in rows.all()]


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


async def test_a_drill_runs_the_real_path_and_ends_with_a_review_of_each_level(
    db: Database, district: District
) -> None:
    started = await start(db, district)
    assert (started.unit, started.severity) == ("石坝小学", Severity.SERIOUS)
    assert started.ends_at == T0 + timedelta(minutes=55)
    await tick(db, T0)
    await acknowledge(db, district, "leader", T0 + timedelta(minutes=2))
    for minute in range(2, 55):
        await tick(db, T0 + timedelta(minutes=minute))
    # Acknowledged at the school, never passed up: the system passes it up at deadline − margin.
    officer = await texts_to(db, district, "officer")
    assert officer and all(marked(text) for text in officer)
    await tick(db, T0 + timedelta(minutes=55))
    review = (await texts_to(db, district, "principal"))[-1]
    assert marked(review)
    two, fifty = ZH.duration_text(timedelta(minutes=2)), ZH.duration_text(timedelta(minutes=50))
    school, township, county = review.split("• ")[1:]
    assert "石坝小学" in school and two in school and "李带班" in school
    assert "石坝乡中心校" in township and fifty in township and "赵专干" in township
    assert "青川县教育局" in county and "Desk Chen" in county
    assert ZH._(drills.REVIEW_NO_ACK) in township and ZH._(drills.REVIEW_NO_ACK) in county
    assert ZH._(drills.REVIEW_FORWARDED) in review
    async with db.uow() as uow:
        incident = await uow.session.get(Incident, started.incident_id)
        assert incident is not None and incident.is_drill and incident.status == "closed"
        pages = (await uow.session.exec(select(Page))).all()
        assert {page.status for page in pages} <= {"closed", "undeliverable"}
    # Every message about the drill, to anyone, starts with the marker.
    for who in ("leader", "leader2", "officer", "desk", "principal"):
        for text in await texts_to(db, district, who):
            assert marked(text), (who, text)
    # Nothing more after its end; the review is sent once.
    before = len(await texts_to(db, district, "principal"))
    for minute in range(56, 90, 5):
        await tick(db, T0 + timedelta(minutes=minute))
    assert len(await texts_to(db, district, "principal")) == before


async def test_follow_ups_on_a_drill_carry_the_marker(db: Database, district: District) -> None:
    started = await start(db, district)
    await tick(db, T0)
    await incidents.follow_up(
        db,
        person_id=district.people["leader"],
        incident_id=started.incident_id,
        text="已组织疏散",
        now=T0 + timedelta(minutes=3),
        ctx=CTX,
    )
    forwarded = (await texts_to(db, district, "principal"))[-1]
    assert marked(forwarded) and "已组织疏散" in forwarded


async def test_staff_cannot_start_a_drill(db: Database, district: District) -> None:
    with pytest.raises(NotAllowed):
        await start(db, district, "staff")
    async with db.uow() as uow:
        assert (await uow.session.exec(select(Incident))).all() == []


async def test_a_foreign_unit_and_an_unknown_one_get_the_same_sentence(
    db: Database, district: District
) -> None:
    with pytest.raises(NotAllowed) as foreign:
        await start(db, district, "principal", "S2")
    with pytest.raises(NotAllowed) as unknown:
        await start(db, district, "principal", "NOPE")
    assert foreign.value.message == unknown.value.message == drills.NO_UNIT
    with pytest.raises(NotAllowed) as by_id:  # the township is above the principal's school
        await start(db, district, "principal", district.units["T"])
    assert by_id.value.message == drills.NO_UNIT
    async with db.uow() as uow:
        assert (await uow.session.exec(select(Incident))).all() == []
    # An officer above may drill a school of their township.
    started = await start(db, district, "officer", "S")
    assert started.unit == "石坝小学"


async def test_a_bad_severity_is_one_sentence(db: Database, district: District) -> None:
    with pytest.raises(InvalidInput):
        await start(db, district, severity="huge")


async def test_drills_stay_out_of_open_incidents_and_go_to_the_drill_log(
    db: Database, district: District
) -> None:
    started = await start(db, district, severity="general")
    await tick(db, T0)
    await acknowledge(db, district, "leader", T0 + timedelta(minutes=3))
    for who in ("desk", "officer", "principal", "leader", "staff"):
        lines = await incidents.open_in_scope(db, person_id=district.people[who], now=T0)
        assert lines == []
    [line] = await drills.drill_log(db, person_id=district.people["desk"])
    assert (line.number, line.unit, line.severity, line.started_by) == (
        started.number,
        "石坝小学",
        Severity.GENERAL,
        "王校长",
    )
    assert line.first_acknowledged_after == timedelta(minutes=3)
    assert line.ended_at is None
    assert await drills.drill_log(db, person_id=district.people["officer2"]) == []
    with pytest.raises(NotAllowed):
        await drills.drill_log(db, person_id=district.people["staff"])


async def test_the_starter_ends_a_drill_early_once(db: Database, district: District) -> None:
    started = await start(db, district, severity="general")
    await tick(db, T0)
    with pytest.raises(NotAllowed):
        await drills.end_drill(
            db, person_id=district.people["staff"], incident_id=started.incident_id, now=T0, ctx=CTX
        )
    review = await drills.end_drill(
        db,
        person_id=district.people["principal"],
        incident_id=started.number,
        now=T0 + timedelta(minutes=4),
        ctx=CTX,
    )
    assert review.ended_by == "王校长" and review.forwarded_at_deadline is None
    [school] = review.levels
    assert (school.first_page_after, school.acknowledged_after) == (timedelta(0), None)
    assert set(school.silent) == {"李带班", "周带班"}
    async with db.uow() as uow:
        pending = (
            await uow.session.exec(select(Deadline).where(Deadline.status == "pending"))
        ).all()
        assert pending == []
    with pytest.raises(InvalidInput):
        await drills.end_drill(
            db,
            person_id=district.people["principal"],
            incident_id=started.incident_id,
            now=T0 + timedelta(minutes=5),
            ctx=CTX,
        )
    [line] = await drills.drill_log(db, person_id=district.people["principal"])
    assert line.ended_at == T0 + timedelta(minutes=4)
