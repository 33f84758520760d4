"""A day of check-in rounds (平安报告) at 石坝小学 through the real bot, with a moved clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from factories import District
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.models import AuditEntry, Checkin, Escalation, Incident, Page, Person, Shift, ShiftKind
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import checkins
from bot.services.checkins import POLICY
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")


def local(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def user(stack: LocalStack, district: District, key: str, name: str) -> SimUser:
    """A roster person who has opened the bot."""
    sim = stack.emulator.user(district.chats[key], name)
    await sim.start()
    await sim.wait_for()
    return sim


async def roster_day(db: Database, district: District, *, english: tuple[str, ...] = ()) -> None:
    """张老师 by day, 孙安全 by night, 李带班 leading all day; no shift reminders."""
    async with db.uow() as uow:
        for key, start, end, kind in (
            ("staff", local(8), local(20), ShiftKind.STAFF),
            ("safety", local(20), local(8, day=2), ShiftKind.STAFF),
            ("leader", local(8), local(8, day=2), ShiftKind.LEADER),
        ):
            uow.session.add(
                Shift(
                    unit_id=district.units["S"],
                    post="带班" if kind == ShiftKind.LEADER else "值班室",
                    start=start,
                    end=end,
                    person_id=district.people[key],
                    kind=kind,
                    planned_at=start,  # these tests are about check-ins, not shift reminders
                )
            )
        for key in english:
            person = await uow.session.get(Person, district.people[key])
            assert person is not None
            person.language = "en"
        await uow.commit()


async def at(stack: LocalStack, clock: MovableClock, moment: datetime) -> None:
    clock.set(moment)
    await stack.settle()


async def checkin_of(db: Database, district: District, key: str, due: datetime) -> Checkin:
    async with db.read() as uow:
        return (
            await uow.session.exec(
                select(Checkin).where(
                    Checkin.person_id == district.people[key], Checkin.due_at == due
                )
            )
        ).one()


async def answer(sim: SimUser, message_id: int, data: str) -> str | None:
    await sim.press_data(message_id, data)
    return (await sim.wait_for_answer()).text


async def test_a_day_of_rounds_one_silent_paged_one_late_one_problem_reported(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    await roster_day(db, district, english=("staff", "leader", "safety"))
    staff = await user(stack, district, "staff", "张老师")
    leader = await user(stack, district, "leader", "李带班")
    safety = await user(stack, district, "safety", "孙安全")

    # 09:00: the two on duty are asked; the night shift is not yet on duty
    await at(stack, clock, local(9))
    prompt = await staff.wait_for()
    assert prompt.text == (
        "🛡 Safety check-in (平安报告) for 09:00 at 石坝小学. Is everything normal? "
        "Please answer by 09:30."
    )
    assert [list(row) for row in prompt.buttons] == [["✅ All normal", "🚨 Report a problem"]]
    leader_prompt = await leader.wait_for()
    assert leader_prompt.text.startswith("🛡 Safety check-in (平安报告) for 09:00")
    assert not [m for m in safety.messages() if "check-in" in m.text]

    # the duty leader reports a problem: /report opens at the check-in's unit
    await at(stack, clock, local(9, 4))
    await leader.press("🚨 Report a problem", message_id=leader_prompt.message_id)
    ask = await leader.wait_for()
    assert ask.text == "🚨 Report an incident. What happened? Choose the kind."
    await leader.press("Building or facility")
    await leader.wait_for()
    await leader.press("General")
    where = await leader.wait_for()
    assert where.text.startswith("Place: 石坝小学.")
    await leader.send("A window in the stairwell is cracked; the stairs are closed off.")
    await leader.wait_for()
    await leader.press("🚨 Report")
    reported = await leader.wait_for()
    assert reported.text.startswith("Reported: ")
    assert "The leaders of 石坝小学 are being paged." in reported.text
    problem = await checkin_of(db, district, "leader", local(9))
    assert problem.answer == "problem" and problem.answered_at == local(9, 4)
    async with db.read() as uow:
        incident = (await uow.session.exec(select(Incident))).one()
    assert problem.incident_id == incident.id and incident.number in reported.text
    await stack.settle()
    answered_prompt = next(m for m in leader.messages() if m.message_id == leader_prompt.message_id)
    assert answered_prompt.text == f"🚨 Problem reported at 09:04: {incident.number}."
    assert not answered_prompt.buttons

    # 张老师 stays silent: reminded at 09:15, the duty leader paged at 09:30, naming them
    await at(stack, clock, local(9, 15))
    reminder = await staff.wait_for()
    assert reminder.text == (
        "⏰ You have not answered the 09:00 safety check-in yet. Please answer by 09:30."
    )
    assert [list(row) for row in reminder.buttons] == [["✅ All normal", "🚨 Report a problem"]]
    await at(stack, clock, local(9, 30))
    page = await leader.wait_for(lambda m: "Check-in unanswered" in m.text)
    assert page.text.splitlines()[0] == (
        "🚨 Check-in unanswered: 张老师 (☎ 13800000007) did not answer the 09:00 check-in"
    )
    assert [list(row) for row in page.buttons] == [
        ["✅ Acknowledge", "⬆️ Pass up"],
        ["✔️ All well", "ℹ️ Details"],
    ]
    assert not [m for m in staff.messages() if "Check-in unanswered" in m.text]
    await at(stack, clock, local(9, 33))
    await leader.press("✅ Acknowledge", message_id=page.message_id)
    assert (await leader.wait_for_answer()).text == ("Acknowledged. Paging has stopped.")
    await stack.settle()

    # 21:00: the night shift and the leader are asked; 张老师 has gone home
    await at(stack, clock, local(21))
    night = await safety.wait_for(lambda m: "for 21:00" in m.text)
    evening = await leader.wait_for(lambda m: "for 21:00" in m.text)
    assert len([m for m in staff.messages() if "for 21:00" in m.text]) == 0
    # the 09:00 check-in closed when the 21:00 round began: an answer is refused
    silent = await checkin_of(db, district, "staff", local(9))
    assert await answer(staff, prompt.message_id, f"ck:n:{silent.id}") == (
        "This check-in closed at 12-01 21:00; nothing was recorded."
    )
    # all normal, in time
    await at(stack, clock, local(21, 5))
    await leader.press("✅ All normal", message_id=evening.message_id)
    assert (await leader.wait_for_answer()).text == "✅ All normal: recorded at 21:05. Thank you."
    done = await leader.wait_for()
    assert done.text == "✅ All normal: recorded at 21:05. Thank you."
    assert not done.buttons

    # 孙安全 answers at 21:41, after the page went out: late, and the page says so
    await at(stack, clock, local(21, 30))
    late_page = await leader.wait_for(lambda m: "孙安全" in m.text and "unanswered" in m.text)
    await at(stack, clock, local(21, 41))
    await safety.press("✅ All normal", message_id=night.message_id)
    await safety.wait_for_answer()
    recorded = await safety.wait_for()
    assert recorded.text == (
        "✅ All normal: recorded at 21:41, late (the answer was due by 21:30). Thank you."
    )
    await stack.settle()
    edited = next(m for m in leader.messages() if m.message_id == late_page.message_id)
    assert edited.text.endswith("✔️ 孙安全 answered late at 21:41: all normal.")
    assert not edited.buttons

    # what the database holds: in time, late, missing, and the problem linked
    night_checkin = await checkin_of(db, district, "safety", local(21))
    assert night_checkin.answered_at == local(21, 41) and night_checkin.answer == "normal"
    async with db.read() as uow:
        found = await uow.session.exec(select(Escalation).where(Escalation.policy == POLICY))
        matters = {e.subject_id: e.status for e in found.all()}
    assert matters == {silent.id: "acknowledged", night_checkin.id: "resolved"}
    async with db.read() as uow:
        found = await uow.session.exec(
            select(AuditEntry.action, AuditEntry.actor_account).where(
                col(AuditEntry.action).in_(["checkin.answer", "page.acknowledge"])
            )
        )
        accounts = sorted(found.all())
    # each entry names the account the press came from (the leader answered twice)
    assert accounts == [
        ("checkin.answer", f"telegram:{leader.user_id}"),
        ("checkin.answer", f"telegram:{leader.user_id}"),
        ("checkin.answer", f"telegram:{safety.user_id}"),
        ("page.acknowledge", f"telegram:{leader.user_id}"),
    ]
    figures = await checkins.compliance(
        db, unit_id=district.units["T"], start=local(0), end=local(0, day=2), now=local(23)
    )
    assert figures.total == checkins.Figures(in_time=2, late=1, missing=1)
    assert figures.by_person[district.people["staff"]] == checkins.Figures(missing=1)
    assert figures.by_person[district.people["leader"]] == checkins.Figures(in_time=2)
    assert figures.by_person[district.people["safety"]] == checkins.Figures(late=1)
    assert figures.by_unit == {district.units["S"]: figures.total}


async def test_bad_answers_get_one_sentence_and_change_nothing(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    await roster_day(db, district, english=("staff", "leader2"))
    staff = await user(stack, district, "staff", "张老师")
    other = await user(stack, district, "leader2", "周带班")
    hello = other.last()
    await at(stack, clock, local(9))
    prompt = await staff.wait_for()
    mine = await checkin_of(db, district, "staff", local(9))

    # someone else's check-in, by forged data: refused, audited, nothing recorded
    assert await answer(other, hello.message_id, f"ck:n:{mine.id}") == (
        "This check-in is not yours."
    )
    assert await answer(other, hello.message_id, f"ck:p:{mine.id}") == (
        "This check-in is not yours."
    )
    assert (await checkin_of(db, district, "staff", local(9))).answered_at is None
    assert await answer(other, hello.message_id, "ck:n:999999") == (
        "This button is no longer valid."
    )
    async with db.read() as uow:
        refusals = (
            await uow.session.exec(
                select(AuditEntry.action).where(
                    AuditEntry.actor_person_id == district.people["leader2"],
                    col(AuditEntry.allowed).is_(False),
                )
            )
        ).all()
    assert sorted(refusals) == ["checkin.answer", "checkin.problem"]

    # answering twice
    await at(stack, clock, local(9, 2))
    await staff.press("✅ All normal", message_id=prompt.message_id)
    await staff.wait_for_answer()
    assert (await staff.wait_for()).text == "✅ All normal: recorded at 09:02. Thank you."
    await at(stack, clock, local(9, 3))
    assert await answer(staff, prompt.message_id, f"ck:n:{mine.id}") == (
        "You already answered this check-in at 12-01 09:02."
    )
    assert await answer(staff, prompt.message_id, f"ck:p:{mine.id}") == (
        "You already answered this check-in at 12-01 09:02."
    )
    assert (await checkin_of(db, district, "leader", local(9))).answered_at is None

    # a check-in of a person no longer on duty for it: the shift was handed to someone else
    leader_checkin = await checkin_of(db, district, "leader", local(9))
    async with db.uow() as uow:
        shift = await uow.session.get(Shift, leader_checkin.shift_id)
        assert shift is not None
        shift.person_id = district.people["leader2"]
        await uow.commit()
    leader = await user(stack, district, "leader", "李带班")
    assert await answer(leader, leader.last().message_id, f"ck:n:{leader_checkin.id}") == (
        "您已不在这次平安报告的值班中，未作记录。"
    )
    # …and nobody is paged about their silence
    await at(stack, clock, local(9, 40))
    async with db.read() as uow:
        assert (await uow.session.exec(select(Page))).all() == []
    assert (await checkin_of(db, district, "leader", local(9))).answered_at is None


async def test_a_silent_duty_leader_is_not_paged_about_themselves(
    stack: LocalStack, district: District, db: Database, clock: MovableClock
) -> None:
    await roster_day(db, district)
    leader = await user(stack, district, "leader", "李带班")
    safety = await user(stack, district, "safety", "孙安全")
    staff = await user(stack, district, "staff", "张老师")
    await at(stack, clock, local(9))
    prompt = await staff.wait_for()
    assert [list(row) for row in prompt.buttons] == [["✅ 一切正常", "🚨 报告问题"]]
    await staff.press("✅ 一切正常")
    await staff.wait_for_answer()
    await at(stack, clock, local(9, 30))
    # the leader of the day is the silent one: the page goes down the fallback chain
    page = await safety.wait_for(lambda m: "平安报告无人回复" in m.text)
    assert "李带班" in page.text
    assert not [m for m in leader.messages() if "平安报告无人回复" in m.text]
    async with db.read() as uow:
        paged = (await uow.session.exec(select(Page.person_id))).all()
    assert district.people["leader"] not in paged
