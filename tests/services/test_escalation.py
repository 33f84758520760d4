"""Escalation policies over durable deadlines, with a moved clock and a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.config import EscalationStep, Level, Severity, settings_from_mapping
from bot.errors import NotAllowed, NotFound
from bot.models import (
    Account,
    AuditEntry,
    Deadline,
    Escalation,
    EscalationEvent,
    EscalationLevel,
    OutboxMessage,
    Page,
    Person,
    RoleGrant,
    Shift,
    ShiftKind,
)
from bot.services import contacts, deadlines, escalation
from bot.services.engine import run_due
from bot.services.escalation import PagingContext, phone
from bot.services.page_text import PageSubject
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")
HANDLERS = {escalation.STEP_KIND: escalation.step_handler(CTX)}
SERIOUS = settings_from_mapping({}, environ={}).escalation[Severity.SERIOUS].steps
SUBJECT = PageSubject(
    what="Post unmanned: {post}", ask="Please acknowledge.", what_params={"post": "值班室"}
)


async def start(
    db: Database, district: District, *, steps: list[EscalationStep] = SERIOUS, subject_id: int = 1
) -> int:
    async with db.uow() as uow:
        esc = await escalation.start(
            uow.session,
            policy="test",
            steps=steps,
            subject_type="test",
            subject_id=subject_id,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=T0,
        )
        await uow.commit()
    assert esc.id is not None
    return esc.id


async def tick(db: Database, at: datetime) -> None:
    await run_due(db, now=at, handlers=HANDLERS, worker="test")


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.uow() as uow:
        rows = await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return list(rows.all())


async def recipients(db: Database, district: District, *, kind: str = "page") -> list[str]:
    names = {v: k for k, v in district.people.items()}
    return [names[m.person_id or 0] for m in await outbox(db) if m.kind == kind]


async def page_of(db: Database, district: District, who: str) -> int:
    async with db.uow() as uow:
        page = (
            await uow.session.exec(select(Page).where(Page.person_id == district.people[who]))
        ).first()
    assert page is not None and page.id is not None
    return page.id


async def test_first_step_pages_unit_leaders_at_once_and_repeats_every_five_minutes(
    db: Database, district: District
) -> None:
    await start(db, district)
    await tick(db, T0)
    assert await recipients(db, district) == ["leader", "leader2", "principal"]
    await tick(db, T0 + timedelta(minutes=4, seconds=59))
    assert len(await recipients(db, district)) == 3
    await tick(db, T0 + timedelta(minutes=5))
    rows = await outbox(db)
    assert len(rows) == 6
    assert [r.reply_to_outbox_id for r in rows[3:]] == [r.id for r in rows[:3]]
    assert "第1次提醒：仍未接报" in rows[3].body["text"]


async def test_without_acknowledgement_it_climbs_to_township_then_county(
    db: Database, district: District
) -> None:
    await start(db, district)
    first_paged: dict[str, int] = {}
    for minute in range(0, 21):
        await tick(db, T0 + timedelta(minutes=minute))
        for who in await recipients(db, district):
            first_paged.setdefault(who, minute)
    assert first_paged == {"leader": 0, "leader2": 0, "principal": 0, "officer": 10, "desk": 15}
    # the unit's leaders got the page and two reminders; the upper levels one page each
    pages = await recipients(db, district)
    assert (pages.count("principal"), pages.count("officer"), pages.count("desk")) == (3, 1, 1)


async def test_acknowledgement_stops_every_later_step_in_the_same_transaction(
    db: Database, district: District
) -> None:
    esc_id = await start(db, district)
    await tick(db, T0)
    page_id = await page_of(db, district, "principal")
    async with db.uow() as uow:
        outcome = await escalation.acknowledge(
            uow.session,
            page_id=page_id,
            person_id=district.people["principal"],
            now=T0 + timedelta(minutes=2),
            ctx=CTX,
        )
        await uow.commit()
    assert outcome.done_now and outcome.by_name == "王校长"
    for minutes in (5, 10, 15, 60):
        await tick(db, T0 + timedelta(minutes=minutes))
    assert await recipients(db, district) == ["leader", "leader2", "principal"]
    async with db.uow() as uow:
        pending = await uow.session.exec(
            select(Deadline).where(Deadline.subject_id == esc_id, Deadline.status == "pending")
        )
        assert pending.all() == []
        audit = (
            await uow.session.exec(
                select(AuditEntry).where(AuditEntry.action == "page.acknowledge")
            )
        ).one()
    assert audit.actor_person_id == district.people["principal"]


async def test_a_second_acknowledgement_is_harmless_and_names_the_first(
    db: Database, district: District
) -> None:
    await start(db, district)
    await tick(db, T0)
    for who, minute in (("principal", 1), ("leader", 3)):
        async with db.uow() as uow:
            outcome = await escalation.acknowledge(
                uow.session,
                page_id=await page_of(db, district, who),
                person_id=district.people[who],
                now=T0 + timedelta(minutes=minute),
                ctx=CTX,
            )
            await uow.commit()
    assert not outcome.done_now
    assert (outcome.by_name, outcome.at) == ("王校长", T0 + timedelta(minutes=1))


async def test_someone_outside_the_units_scope_cannot_acknowledge(
    db: Database, district: District
) -> None:
    await start(db, district)
    await tick(db, T0)
    page_id = await page_of(db, district, "leader")
    async with db.uow() as uow:
        with pytest.raises(NotAllowed):
            await escalation.acknowledge(
                uow.session,
                page_id=page_id,
                person_id=district.people["officer2"],
                now=T0,
                ctx=CTX,
            )
    with pytest.raises(NotFound):
        await escalation.press(
            db, external_id=district.chats["leader"], action="a", page_id=99999, now=T0, ctx=CTX
        )


async def test_refused_presses_are_audited(db: Database, district: District) -> None:
    await start(db, district)
    await tick(db, T0)
    page_id = await page_of(db, district, "leader")
    with pytest.raises(NotAllowed):
        await escalation.press(
            db, external_id=district.chats["officer2"], action="a", page_id=page_id, now=T0, ctx=CTX
        )
    async with db.uow() as uow:
        entry = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).one()
    assert (entry.actor_person_id, entry.subject_id) == (district.people["officer2"], page_id)


async def test_starting_the_same_policy_twice_pages_once(db: Database, district: District) -> None:
    first = await start(db, district)
    second = await start(db, district)
    await tick(db, T0)
    assert first == second
    assert len(await recipients(db, district)) == 3


async def test_a_person_without_an_account_is_replaced_by_the_next_contact(
    db: Database, district: District
) -> None:
    only_staff = [EscalationStep(after=timedelta(0), roles=["staff"], level=Level.UNIT)]
    await start(db, district, steps=only_staff)
    await tick(db, T0)
    # 张老师 is linked and paged; 刘老师 has no account, so the duty leader is paged instead.
    pages = await recipients(db, district)
    assert pages[0] == "staff" and pages[1] in {"leader", "leader2"}
    async with db.uow() as uow:
        failed = (await uow.session.exec(select(Page).where(Page.status == "undeliverable"))).one()
    assert failed.error == "no linked account"


async def test_after_downtime_due_steps_fire_once_and_say_they_are_late(
    db: Database, district: District
) -> None:
    await start(db, district)
    await tick(db, T0 + timedelta(minutes=20))
    await tick(db, T0 + timedelta(minutes=20))
    pages = await recipients(db, district)
    assert sorted(pages) == sorted(["leader", "leader2", "principal", "officer", "desk"])
    rows = await outbox(db)
    assert all(row.late for row in rows)
    assert "系统未运行" in rows[0].body["text"]


async def test_passing_up_pages_the_township_until_it_acknowledges(
    db: Database, district: District
) -> None:
    await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    async with db.uow() as uow:
        outcome = await escalation.pass_up(
            uow.session,
            page_id=await page_of(db, district, "leader"),
            person_id=district.people["leader"],
            now=T0 + timedelta(minutes=1),
            ctx=CTX,
        )
        await uow.commit()
    assert outcome.kind == "passed_up"
    await tick(db, T0 + timedelta(minutes=1))
    assert (await recipients(db, district))[-1] == "officer"
    texts = [m.body["text"] for m in await outbox(db) if m.person_id == district.people["officer"]]
    assert "石坝小学" in texts[0]  # the page still says where the matter is


async def test_a_stand_in_who_is_also_named_by_the_step_is_paged_once(
    db: Database, district: District
) -> None:
    # The township's officer cannot be reached; its principal stands in and is on the step too.
    async with db.uow() as uow:
        principal = Person(staff_no="T-P", name="陈校长", unit_id=district.units["T"])
        uow.session.add(principal)
        await uow.session.flush()
        uow.session.add(
            RoleGrant(person_id=principal.id or 0, role="principal", unit_id=district.units["T"])
        )
        uow.session.add(
            Account(person_id=principal.id or 0, external_id=7777, chat_id=7777, linked_at=T0)
        )
        officer = (
            await uow.session.exec(
                select(Account).where(Account.person_id == district.people["officer"])
            )
        ).one()
        officer.unlinked_at = T0
        await uow.commit()
    await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    async with db.uow() as uow:
        await escalation.pass_up(
            uow.session,
            page_id=await page_of(db, district, "leader"),
            person_id=district.people["leader"],
            now=T0,
            ctx=CTX,
        )
        await uow.commit()
    await tick(db, T0)
    async with db.uow() as uow:
        failed = (
            await uow.session.exec(
                select(Deadline).where(Deadline.status == "pending", Deadline.attempts > 0)
            )
        ).all()
        to_principal = (
            await uow.session.exec(
                select(OutboxMessage).where(OutboxMessage.person_id == principal.id)
            )
        ).all()
    assert failed == []
    assert len(to_principal) == 1


async def test_passing_up_a_resolved_matter_pages_nobody(db: Database, district: District) -> None:
    await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    async with db.uow() as uow:
        await escalation.resolve(
            uow.session,
            page_id=await page_of(db, district, "principal"),
            person_id=district.people["principal"],
            now=T0,
            ctx=CTX,
        )
        await uow.commit()
    async with db.uow() as uow:
        outcome = await escalation.pass_up(
            uow.session,
            page_id=await page_of(db, district, "leader"),
            person_id=district.people["leader"],
            now=T0,
            ctx=CTX,
        )
        await uow.commit()
    await tick(db, T0 + timedelta(minutes=1))
    assert (outcome.done_now, outcome.kind, outcome.by_name) == (False, "resolved", "王校长")
    assert "officer" not in await recipients(db, district)


async def test_acknowledging_while_the_engine_holds_a_repeat_does_not_deadlock(
    db: Database, district: District
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: on SQLite the press waits its turn for the one write lock")
    esc_id = await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    later = T0 + timedelta(minutes=5)
    async with db.uow() as engine:  # the engine has claimed the first repeat and is busy
        claimed = await deadlines.claim_due(engine.session, now=later, limit=10)
        assert [d.key for d in claimed] == [escalation.tick_key(esc_id, 2)]
        outcome = await asyncio.wait_for(
            escalation.press(
                db,
                external_id=district.chats["principal"],
                action="a",
                page_id=await page_of(db, district, "principal"),
                now=later,
                ctx=CTX,
            ),
            timeout=10,
        )
        for deadline in claimed:
            await HANDLERS[escalation.STEP_KIND](engine.session, deadline, later, False)
        await engine.commit()
    assert outcome.done_now
    assert len(await recipients(db, district)) == 3  # the repeat found the matter closed


DEADLINE_POLICY = settings_from_mapping({}, environ={}).escalation[Severity.SERIOUS]


async def start_serious(
    db: Database,
    district: District,
    *,
    occurred_at: datetime = T0,
    now: datetime = T0,
    exclude: tuple[int, ...] = (),
) -> int:
    """A matter under the configured serious policy, with its one-hour report deadline."""
    async with db.uow() as uow:
        esc = await escalation.start(
            uow.session,
            policy="serious",
            steps=DEADLINE_POLICY.steps,
            subject_type="test",
            subject_id=7,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=now,
            occurred_at=occurred_at,
            report_deadline=DEADLINE_POLICY.report_deadline,
            forward_margin=DEADLINE_POLICY.forward_margin,
            exclude=exclude,
        )
        await uow.commit()
    assert esc.id is not None
    return esc.id


async def act(
    db: Database, district: District, use_case: str, who: str, at: datetime, *, page_of_: str = ""
) -> escalation.Outcome:
    page_id = await page_of(db, district, page_of_ or who)
    async with db.uow() as uow:
        outcome: escalation.Outcome = await getattr(escalation, use_case)(
            uow.session, page_id=page_id, person_id=district.people[who], now=at, ctx=CTX
        )
        await uow.commit()
    return outcome


async def levels(db: Database, esc_id: int) -> dict[str, tuple[str, bool, bool]]:
    """Each level reached: how, whether acknowledged, whether late."""
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(EscalationLevel).where(EscalationLevel.escalation_id == esc_id)
        )
        return {r.level: (r.reached_how, r.acknowledged_at is not None, r.late) for r in rows.all()}


async def test_acknowledged_at_the_school_it_still_reaches_township_and_county_by_the_deadline(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    await act(db, district, "acknowledge", "principal", T0 + timedelta(minutes=2))
    for minute in range(2, 50):  # the school acknowledged: its repeats and the silence steps stop
        await tick(db, T0 + timedelta(minutes=minute))
    assert sorted(await recipients(db, district)) == ["leader", "leader2", "principal"]
    await tick(db, T0 + timedelta(minutes=50))  # one hour − the ten-minute margin
    assert (await recipients(db, district))[3:] == ["officer", "desk"]
    assert await levels(db, esc_id) == {
        "unit": ("start", True, False),
        "parent": ("deadline", False, True),
        "county": ("deadline", False, True),
    }
    async with db.uow() as uow:
        matter = await uow.session.get(Escalation, esc_id)
    assert matter is not None and matter.status == "active"  # the levels above must acknowledge


async def test_acknowledging_one_level_leaves_the_others_paging(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    for minute in range(1, 16):  # nobody answers: township at 10, county at 15
        await tick(db, T0 + timedelta(minutes=minute))
    await act(db, district, "acknowledge", "officer", T0 + timedelta(minutes=16))
    before = len(await recipients(db, district))
    await tick(db, T0 + timedelta(minutes=20))
    # the school's leaders were reminded twice already; the county's desk is still being paged
    # only by its one page (no repeats); the township's acknowledgement stopped nothing else
    assert await levels(db, esc_id) == {
        "unit": ("start", False, False),
        "parent": ("silence", True, False),
        "county": ("silence", False, False),
    }
    assert len(await recipients(db, district)) == before
    async with db.uow() as uow:
        pages = (await uow.session.exec(select(Page))).all()
    names = {v: k for k, v in district.people.items()}
    assert {names[p.person_id]: p.status for p in pages} == {
        "leader": "active",
        "leader2": "active",
        "principal": "active",
        "officer": "closed",
        "desk": "active",
    }
    outcome = await act(db, district, "acknowledge", "desk", T0 + timedelta(minutes=21))
    assert outcome.done_now
    again = await act(db, district, "acknowledge", "officer", T0 + timedelta(minutes=22))
    assert (again.done_now, again.by_name) == (False, "赵专干")


async def test_a_report_after_the_deadline_reaches_every_level_at_once_and_is_late(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district, occurred_at=T0 - timedelta(minutes=70))
    await tick(db, T0)
    assert sorted(await recipients(db, district)) == sorted(
        ["leader", "leader2", "principal", "officer", "desk"]
    )
    assert {k: v[0] for k, v in (await levels(db, esc_id)).items()} == {
        "unit": "start",
        "parent": "deadline",
        "county": "deadline",
    }


async def test_direct_report_reaches_the_county_at_once(db: Database, district: District) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    outcome = await act(db, district, "report_direct", "leader", T0 + timedelta(minutes=1))
    assert outcome.kind == "reported_direct"
    await tick(db, T0 + timedelta(minutes=1))
    assert (await recipients(db, district))[-1] == "desk"
    assert await levels(db, esc_id) == {
        "unit": ("start", True, False),
        "county": ("direct", False, False),
    }
    # the township is skipped, not forgotten: the deadline still brings the matter there
    await tick(db, T0 + timedelta(minutes=50))
    assert (await levels(db, esc_id))["parent"] == ("deadline", False, True)


async def test_direct_report_is_only_for_matters_with_a_report_deadline(
    db: Database, district: District
) -> None:
    await start(db, district)
    await tick(db, T0)
    with pytest.raises(NotAllowed):
        await act(db, district, "report_direct", "leader", T0 + timedelta(minutes=1))


async def test_passing_up_stops_the_schools_paging_and_keeps_the_county_quiet(
    db: Database, district: District
) -> None:
    esc_id = await start(db, district)
    await tick(db, T0)
    await act(db, district, "pass_up", "leader", T0 + timedelta(minutes=1))
    await tick(db, T0 + timedelta(minutes=1))
    await act(db, district, "acknowledge", "officer", T0 + timedelta(minutes=3))
    for minute in range(3, 40):
        await tick(db, T0 + timedelta(minutes=minute))
    assert sorted(await recipients(db, district)) == sorted(
        ["leader", "leader2", "principal", "officer"]
    )
    assert set(await levels(db, esc_id)) == {"unit", "parent"}


async def test_the_timeline_says_who_did_what_and_when(db: Database, district: District) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    await act(db, district, "pass_up", "principal", T0 + timedelta(minutes=3))
    await tick(db, T0 + timedelta(minutes=3))
    async with db.uow() as uow:
        events = await escalation.timeline(uow.session, esc_id)
    names = {v: k for k, v in district.people.items()}
    assert [
        (e.kind, e.level, names.get(e.person_id or 0), int((e.at - T0).total_seconds() // 60))
        for e in events
    ] == [
        ("started", "unit", None, 0),
        ("fired", "unit", None, 0),
        ("passed_up", "unit", "principal", 3),
        ("reached", "parent", "principal", 3),
        ("fired", "parent", None, 3),
    ]


async def test_a_page_closed_meanwhile_is_not_marked_undeliverable(
    db: Database, district: District
) -> None:
    await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    page_id = await page_of(db, district, "leader")
    await act(db, district, "acknowledge", "principal", T0 + timedelta(minutes=1))
    async with db.uow() as uow:
        stand_in = await escalation.mark_undeliverable(
            uow.session, page_id=page_id, reason="Forbidden", now=T0, ctx=CTX
        )
        await uow.commit()
    async with db.uow() as uow:
        page = await uow.session.get(Page, page_id)
    assert stand_in is None and page is not None and page.status == "closed"


async def test_undeliverable_waiting_for_an_acknowledgement_leaves_the_page_closed(
    db: Database, district: District
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: on SQLite writers take turns for the one write lock")
    await start(db, district, steps=SERIOUS[:1])
    await tick(db, T0)
    page_id = await page_of(db, district, "leader")

    async def sender_hears_403() -> object:
        async with db.uow() as uow:
            stand_in = await escalation.mark_undeliverable(
                uow.session, page_id=page_id, reason="Forbidden", now=T0, ctx=CTX
            )
            await uow.commit()
        return stand_in

    async with db.uow() as leader:  # the leader's acknowledgement holds the matter
        await escalation.acknowledge(
            leader.session, page_id=page_id, person_id=district.people["leader"], now=T0, ctx=CTX
        )
        sender = asyncio.create_task(sender_hears_403())
        await asyncio.sleep(0.3)
        assert not sender.done()  # the sender waits for the matter's lock
        await leader.commit()
    assert await asyncio.wait_for(sender, timeout=10) is None
    async with db.uow() as uow:
        page = await uow.session.get(Page, page_id)
    assert page is not None and page.status == "closed"
    assert "safety" not in await recipients(db, district)  # nobody stands in for a closed page


async def phone_up(
    db: Database, district: District, who: str, to: str, at: datetime, minutes_ago: int
) -> None:
    async with db.uow() as uow:
        await phone.record(
            uow.session,
            page_id=await page_of(db, district, who),
            person_id=district.people[who],
            callee_id=district.people[to],
            minutes_ago=minutes_ago,
            now=at,
            ctx=CTX,
        )
        await uow.commit()


async def answer_call(
    db: Database, district: District, who: str, at: datetime, *, received: bool = True
) -> phone.PhoneOutcome:
    async with db.uow() as uow:
        event = (
            await uow.session.exec(
                select(EscalationEvent).where(EscalationEvent.kind == "phone_report")
            )
        ).one()
        outcome = await phone.confirm(
            uow.session,
            event_id=event.id or 0,
            person_id=district.people[who],
            received=received,
            now=at,
            ctx=CTX,
        )
        await uow.commit()
    return outcome


async def test_a_confirmed_phone_report_reaches_the_township_at_the_time_of_the_call(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    await phone_up(db, district, "principal", "officer", T0 + timedelta(minutes=20), 10)
    asked = (await outbox(db))[-1]
    assert asked.person_id == district.people["officer"]
    assert "王校长表示已于10:10电话向您报告此事" in asked.body["text"]
    assert [[b["data"][:6] for b in row] for row in asked.body["buttons"]] == [["phc:y:", "phc:n:"]]
    outcome = await answer_call(db, district, "officer", T0 + timedelta(minutes=25))
    assert outcome.kind == "confirmed"
    async with db.uow() as uow:
        parent = (
            await uow.session.exec(
                select(EscalationLevel).where(
                    EscalationLevel.escalation_id == esc_id, EscalationLevel.level == "parent"
                )
            )
        ).one()
    assert (parent.reached_how, parent.reached_at, parent.late) == (
        "phone",
        T0 + timedelta(minutes=10),
        False,
    )
    assert parent.acknowledged_by_id == district.people["officer"]
    assert (await levels(db, esc_id))["unit"] == ("start", True, False)
    # the township knows: nobody pages it; the deadline still brings the county in at 50
    await tick(db, T0 + timedelta(minutes=50))
    assert [r for r in await recipients(db, district) if r in ("officer", "desk")] == ["desk"]


async def test_a_call_made_in_time_clears_the_late_mark_of_a_forced_forward(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    await act(db, district, "acknowledge", "principal", T0 + timedelta(minutes=1))
    await tick(db, T0 + timedelta(minutes=50))
    assert (await levels(db, esc_id))["parent"] == ("deadline", False, True)
    await phone_up(db, district, "leader", "officer", T0 + timedelta(minutes=51), 30)
    await answer_call(db, district, "officer", T0 + timedelta(minutes=52))
    assert (await levels(db, esc_id))["parent"] == ("phone", True, False)


async def test_a_denied_call_tells_the_caller_and_the_township_is_still_paged(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    await tick(db, T0)
    await phone_up(db, district, "principal", "officer", T0 + timedelta(minutes=2), 0)
    outcome = await answer_call(db, district, "officer", T0 + timedelta(minutes=3), received=False)
    assert outcome.kind == "denied"
    told = (await outbox(db))[-1]
    assert told.person_id == district.people["principal"]
    assert "赵专干表示未接到您10:02的电话报告" in told.body["text"]
    assert "parent" not in await levels(db, esc_id)
    await tick(db, T0 + timedelta(minutes=50))
    assert (await levels(db, esc_id))["parent"] == ("deadline", False, True)


async def test_phone_reports_refuse_forged_people_times_and_answers(
    db: Database, district: District
) -> None:
    await start_serious(db, district)
    await tick(db, T0)
    for callee, minutes in (("desk", 0), ("officer2", 0), ("officer", 7)):
        with pytest.raises(NotFound):
            await phone_up(db, district, "principal", callee, T0, minutes)
    await phone_up(db, district, "principal", "officer", T0, 0)
    with pytest.raises(NotAllowed):
        await answer_call(db, district, "desk", T0)
    first = await answer_call(db, district, "officer", T0)
    second = await answer_call(db, district, "officer", T0 + timedelta(minutes=1))
    assert (first.kind, second.kind) == ("confirmed", "already")


RELATIONS = {
    # relation: (who presses, whether allowed)
    "paged person": ("leader", True),
    "leader in scope": ("safety", True),
    "subject of the matter": ("leader2", False),
    "out of scope": ("officer2", False),
    "stranger": ("", False),
}
PAGE_ACTIONS = ["a", "u", "x", "r", "d", "p"]


@pytest.mark.parametrize("action", PAGE_ACTIONS)
@pytest.mark.parametrize("relation", list(RELATIONS))
async def test_who_may_press_each_page_button(
    db: Database, district: District, relation: str, action: str
) -> None:
    """Every page action against every relation to the matter, decided in one place."""
    # 周带班 is the one the matter is about (absent from their own leader shift)
    esc_id = await start_serious(db, district, exclude=(district.people["leader2"],))
    await tick(db, T0)
    page_id = await page_of(db, district, "leader")
    who, allowed = RELATIONS[relation]
    external_id = district.chats[who] if who else 424242
    before = await snapshot_matter(db, esc_id)

    async def attempt() -> object:
        if action == "d":
            return await escalation.view(db, external_id=external_id, page_id=page_id)
        if action == "p":
            return await phone.callees(db, external_id=external_id, page_id=page_id)
        return await escalation.press(
            db, external_id=external_id, action=action, page_id=page_id, now=T0, ctx=CTX
        )

    if allowed:
        assert await attempt()
        return
    with pytest.raises(NotAllowed) as refused:
        await attempt()
    expected = {
        "subject of the matter": "You cannot act on a page about yourself.",
        "out of scope": "This page is outside your area of responsibility.",
        "stranger": "This button is not for you.",
    }[relation]
    assert refused.value.message == expected
    assert await snapshot_matter(db, esc_id) == before


async def snapshot_matter(db: Database, esc_id: int) -> tuple[object, ...]:
    async with db.uow() as uow:
        matter = await uow.session.get(Escalation, esc_id)
        assert matter is not None
        levels = (
            await uow.session.exec(
                select(EscalationLevel.level, EscalationLevel.acknowledged_at).where(
                    EscalationLevel.escalation_id == esc_id
                )
            )
        ).all()
        pages = (await uow.session.exec(select(Page.id, Page.status))).all()
    return (matter.status, matter.resolved_at, sorted(levels), sorted(pages))


async def test_reaching_the_county_directly_with_the_report_pages_it_without_acknowledging(
    db: Database, district: District
) -> None:
    esc_id = await start_serious(db, district)
    async with db.uow() as uow:
        reached = await escalation.reach_county_directly(
            uow.session, escalation_id=esc_id, person_id=district.people["staff"], now=T0, ctx=CTX
        )
        await uow.commit()
    assert reached
    assert await levels(db, esc_id) == {
        "unit": ("start", False, False),
        "county": ("direct", False, False),
    }
    assert sorted(await recipients(db, district)) == ["desk", "leader", "leader2", "principal"]
    async with db.uow() as uow:
        again = await escalation.reach_county_directly(
            uow.session, escalation_id=esc_id, person_id=district.people["staff"], now=T0, ctx=CTX
        )
    assert not again


async def test_reaching_the_county_directly_needs_a_report_deadline(
    db: Database, district: District
) -> None:
    esc_id = await start(db, district)
    async with db.uow() as uow:
        with pytest.raises(NotAllowed):
            await escalation.reach_county_directly(
                uow.session,
                escalation_id=esc_id,
                person_id=district.people["staff"],
                now=T0,
                ctx=CTX,
            )


async def test_who_holds_a_role_is_remembered_within_a_look_and_read_afresh_after_it(
    db: Database, district: District
) -> None:
    school = district.units["S"]
    async with db.uow() as uow:
        session = uow.session

        async def principals() -> list[int | None]:
            found = await contacts.holders(session, role="principal", unit_id=school, now=T0)
            return [person.id for person in found]

        with contacts.remembering_holders(session):
            inside = await principals()
            session.add(
                RoleGrant(person_id=district.people["safety"], role="principal", unit_id=school)
            )
            await session.flush()
            remembered = await principals()
        after = await principals()
    assert inside == remembered == [district.people["principal"]]
    assert sorted(after) == sorted([district.people["principal"], district.people["safety"]])


async def test_the_duty_leader_is_the_leader_on_shift_else_every_duty_leader_by_staff_number(
    db: Database, district: District
) -> None:
    """Both answers come from one statement; the role's holders count only with nobody on shift."""
    school = district.units["S"]

    async def duty_leaders(at: datetime) -> list[int | None]:
        async with db.read() as uow:
            found = await contacts.holders(uow.session, role="duty_leader", unit_id=school, now=at)
            return [person.id for person in found]

    assert await duty_leaders(T0) == [district.people["leader"], district.people["leader2"]]
    async with db.uow() as uow:
        uow.session.add(
            Shift(
                unit_id=school,
                post="带班",
                start=T0 - timedelta(hours=1),
                end=T0 + timedelta(hours=8),
                person_id=district.people["leader2"],
                kind=ShiftKind.LEADER,
            )
        )
        await uow.commit()
    assert await duty_leaders(T0) == [district.people["leader2"]]
    assert await duty_leaders(T0 + timedelta(hours=9)) == [
        district.people["leader"],
        district.people["leader2"],
    ]
