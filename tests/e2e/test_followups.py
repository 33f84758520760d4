"""Follow-ups (续报), the final report (终报) and 漏报 through the real bot and the emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import linked, local
from sqlmodel import select

from bot.clock import MovableClock
from bot.models import (
    AuditEntry,
    ConversationDraft,
    Escalation,
    Incident,
    IncidentEntry,
)
from bot.sandbox import SentMessage, SimUser
from bot.sandbox.stack import LocalStack
from bot.services.escalation.views import INCIDENT_SUBJECT
from bot.services.incidents import SUBJECT_TYPE

NUMBER = "20261202-001"
FOLLOW_UP = "➕ Follow-up (续报)"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(2, 9))


async def rows(stack: LocalStack, model: type) -> list:  # type: ignore[type-arg]
    assert stack.db is not None
    async with stack.db.read() as uow:
        return list((await uow.session.exec(select(model))).all())


async def entries(stack: LocalStack, kind: str) -> list[IncidentEntry]:
    return [e for e in await rows(stack, IncidentEntry) if e.kind == kind]


async def reported(stack: LocalStack, reporter: SimUser) -> SentMessage:
    """A serious fire reported at 石坝小学 on the fast path; its confirmation, once paged."""
    await reporter.send("/report")
    await reporter.wait_for(lambda m: m.text.startswith("🚨 Report an incident."))
    await reporter.press("Fire")
    await reporter.wait_for(lambda m: m.text == "Fire. How serious is it?")
    await reporter.press("Serious")
    await reporter.wait_for(lambda m: m.text.startswith("Place: 石坝小学. Write what happened"))
    await reporter.send("Smoke from the kitchen; pupils evacuated.")
    await reporter.wait_for(lambda m: m.text.startswith("Draft report:"))
    await reporter.press("🚨 Report")
    confirmation = await reporter.wait_for(lambda m: m.text.startswith("Reported:"))
    assert confirmation.text.startswith(f"Reported: {NUMBER}.")
    await stack.settle()
    return confirmation


def bot_media(user: SimUser, kind: str) -> list[str]:
    """The file ids of the photos or voice notes the bot sent this person, in order."""
    found = []
    for message in user.messages():
        if kind == "photo" and "photo" in message.raw:
            found.append(message.raw["photo"][-1]["file_id"])
        if kind == "voice" and "voice" in message.raw:
            found.append(message.raw["voice"]["file_id"])
    return found


async def test_a_follow_up_from_the_confirmation_with_a_photo_and_a_voice_note_reaches_the_paged(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9201, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9202, "何丽")  # leads the duty on 12-02
    yang = await linked(day, clock, "SB01-01", 9203, "杨光明")  # the principal
    confirmation = await reported(day, ma)
    assert confirmation.buttons == ((FOLLOW_UP,),)
    for leader in (he, yang):
        assert any(NUMBER in m.text for m in leader.messages())
    clock.advance(timedelta(minutes=2))

    await ma.press(FOLLOW_UP)
    opened = await ma.wait_for()
    assert opened.text.splitlines() == [
        f"Follow-up (续报) to incident {NUMBER}:",
        "Write what is new; photos and voice notes are welcome too.",
    ]
    await ma.send("Fire brigade on site.")
    await ma.wait_for()
    photo = (await ma.send_photo()).raw["photo"][-1]["file_id"]
    await ma.wait_for()
    voice = (await ma.send_voice(duration=20)).raw["voice"]["file_id"]
    draft = await ma.wait_for()
    assert "Fire brigade on site." in draft.text and "📎 1 photo, 1 voice note" in draft.text
    assert await entries(day, "follow_up") == []  # nothing reaches the incident before Send
    await ma.press("📤 Send")
    assert (await ma.wait_for()).text == f"Follow-up added to {NUMBER}; sent to 2 people."
    await day.settle()

    for leader in (he, yang):
        texts = [m for m in leader.messages() if "Fire brigade on site." in m.text]
        assert len(texts) == 1
        assert texts[0].text.startswith("📝") and NUMBER in texts[0].text
        assert bot_media(leader, "photo") == [photo]
        assert bot_media(leader, "voice") == [voice]
        assert [m.caption for m in leader.messages() if "photo" in m.raw or "voice" in m.raw] == [
            NUMBER,
            NUMBER,
        ]
        # the text first, then the photo, then the voice note
        ids = [m.message_id for m in leader.messages()]
        first_photo = next(m.message_id for m in leader.messages() if "photo" in m.raw)
        first_voice = next(m.message_id for m in leader.messages() if "voice" in m.raw)
        assert ids.index(texts[0].message_id) < ids.index(first_photo) < ids.index(first_voice)
    assert bot_media(ma, "photo") == [] and bot_media(ma, "voice") == []  # not to its author
    [entry] = await entries(day, "follow_up")
    assert entry.text == "Fire brigade on site."
    assert entry.attachments == [f"photo:{photo}", f"voice:{voice}"]
    assert await rows(day, ConversationDraft) == []

    await ma.send(f"/incident {NUMBER}")
    timeline = (await ma.wait_for()).text
    assert "follow-up by 马俊: Fire brigade on site. 📎 1 photo, 1 voice note" in timeline, timeline
    await he.send(f"/incident {NUMBER}")
    assert "马俊续报：Fire brigade on site. 📎 1张照片、1条语音" in (await he.wait_for()).text


async def test_a_follow_up_from_a_page_reaches_the_reporter_and_not_its_author(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9211, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9212, "何丽")
    await reported(day, ma)
    page = next(m for m in he.messages() if NUMBER in m.text)
    assert page.buttons[-1] == ("➕ 续报",)
    await he.press("✅ 接报", message_id=page.message_id)
    await he.wait_for_answer()
    await day.settle()
    # acknowledged: the page keeps only its follow-up button
    page = next(m for m in he.messages() if m.message_id == page.message_id)
    assert page.buttons == (("➕ 续报",),) and "何丽已于09:00接报" in page.text
    await he.press("➕ 续报", message_id=page.message_id)
    assert (await he.wait_for(lambda m: "的续报：" in m.text)).text.startswith(
        f"事件{NUMBER}的续报："
    )
    await he.send("已疏散全部学生。")
    await he.wait_for()
    await he.press("📤 发送")
    assert (await he.wait_for()).text == f"已向{NUMBER}添加续报；已发送给1人。"
    await day.settle()
    assert any("已疏散全部学生。" in m.text for m in ma.messages())
    assert not any("已疏散全部学生。" in m.text for m in he.messages() if m.text != page.text)
    assert [e.text for e in await entries(day, "follow_up")] == ["已疏散全部学生。"]


async def test_followup_is_refused_for_unknown_out_of_scope_and_closed_incidents(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9221, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9222, "何丽")
    xu = await linked(day, clock, "MY01-05", 9223, "许亮")  # staff at another township's school
    await reported(day, ma)

    await ma.send("/followup 20261202-099")
    assert (await ma.wait_for()).text == "There is no incident 20261202-099."
    await xu.send(f"/followup {NUMBER}")
    assert (await xu.wait_for()).text == "此事件不在您的职责范围内。"
    await xu.send(f"/followup {NUMBER} 我听说了。")
    assert (await xu.wait_for()).text == "此事件不在您的职责范围内。"
    refused = [a for a in await rows(day, AuditEntry) if a.action == "incident.follow_up"]
    assert [a.allowed for a in refused] == [False]
    assert await rows(day, ConversationDraft) == []

    await closed_by_final_report(he)
    await day.settle()
    await ma.wait_for(lambda m: m.text.startswith("🏁 Final report"))
    closed = f"Incident {NUMBER} is closed; it takes no more follow-ups."
    await ma.send(f"/followup {NUMBER}")
    assert (await ma.wait_for()).text == closed
    await ma.send(f"/followup {NUMBER} One more thing.")
    assert (await ma.wait_for()).text == closed
    confirmation = next(m for m in ma.messages() if m.buttons == ((FOLLOW_UP,),))
    await ma.press(FOLLOW_UP, message_id=confirmation.message_id)
    answer = await ma.wait_for_answer()
    assert answer.show_alert and answer.text == closed
    assert await entries(day, "follow_up") == []
    assert await rows(day, ConversationDraft) == []


async def test_a_forged_follow_up_button_is_refused_audited_and_changes_nothing(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9231, "Jun", language="en")
    xu = await linked(day, clock, "MY01-05", 9232, "许亮")
    await reported(day, ma)
    [incident] = await rows(day, Incident)
    anchor = xu.last().message_id

    await xu.press_data(anchor, "fu:o:x1")
    assert (await xu.wait_for_answer()).text == "此按钮已失效。"
    await xu.press_data(anchor, f"fu:o:{incident.id}")  # well formed, but not in his area
    assert (await xu.wait_for_answer()).text == "此事件不在您的职责范围内。"
    await xu.press_data(anchor, "fu:s")  # Send with no follow-up open
    assert (await xu.wait_for_answer()).text is not None

    audit = await rows(day, AuditEntry)
    assert [a.detail for a in audit if a.action == "button.refused"] == [
        {"data": "fu:o:x1", "reason": "not a button of ours"}
    ]
    assert [a.allowed for a in audit if a.action == "incident.follow_up"] == [False]
    assert await rows(day, ConversationDraft) == []
    assert await entries(day, "follow_up") == []


async def closed_by_final_report(leader: SimUser) -> None:
    """The duty leader closes the incident with /final, in Chinese."""
    await leader.send(f"/final {NUMBER}")
    assert (await leader.wait_for()).text == f"🏁 事件{NUMBER}的终报。事件原因是什么？"
    await leader.send("厨房油锅起火。")
    assert (await leader.wait_for()).text == "采取了哪些措施？"
    await leader.press("↩ 返回")
    await leader.wait_for(lambda m: m.text.endswith("事件原因是什么？"))
    await leader.send("厨房油锅起火。")
    assert (await leader.wait_for()).text == "采取了哪些措施？"
    await leader.send("疏散学生，扑灭明火。")
    assert (await leader.wait_for()).text == "结果如何？"
    await leader.send("无人受伤，厨房停用一天。")
    check = await leader.wait_for()
    assert "原因：厨房油锅起火。" in check.text and "结果：无人受伤，厨房停用一天。" in check.text
    await leader.press("🏁 结案")
    assert (await leader.wait_for()).text == (f"事件{NUMBER}已凭终报结案，已通知所有接到呼叫的人。")


async def test_a_final_report_by_the_duty_leader_closes_the_incident_and_tells_the_paged(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9241, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9242, "何丽")
    yang = await linked(day, clock, "SB01-01", 9243, "杨光明")
    await reported(day, ma)
    clock.advance(timedelta(minutes=3))
    closing = clock.now()
    await closed_by_final_report(he)
    await day.settle()

    [incident] = await rows(day, Incident)
    assert incident.status == "closed" and incident.closed_at == closing
    matters = [e for e in await rows(day, Escalation) if e.subject_type == "incident"]
    assert [e.status for e in matters] == ["resolved"]
    told = [m.text for m in ma.messages() if "Final report" in m.text]
    assert told and "Cause: 厨房油锅起火。" in told[-1]
    assert any("终报" in m.text and "疏散学生" in m.text for m in yang.messages())
    # paging has stopped: no reminder, no pass-up when the clock runs on
    about = [m for user in (yang, he) for m in user.messages() if NUMBER in m.text]
    for _ in range(4):
        clock.advance(timedelta(minutes=10))
        await day.settle()
    assert [m for user in (yang, he) for m in user.messages() if NUMBER in m.text] == about

    await he.send(f"/final {NUMBER}")
    assert (await he.wait_for()).text == f"事件{NUMBER}已经结案。"
    await ma.send(f"/incident {NUMBER}")
    timeline = (await ma.wait_for()).text
    assert "🏁 Closed with its final report (终报)." in timeline
    assert "left to report up" not in timeline and "not acknowledged yet" not in timeline
    assert "final report by 何丽" in timeline and "resolved by the system" not in timeline
    assert "🏁 Final report (终报):\nCause: 厨房油锅起火。" in timeline
    assert len(await entries(day, "final_report")) == 1


async def test_a_teacher_may_not_write_the_final_report(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9251, "Jun", language="en")
    await reported(day, ma)
    await ma.send(f"/final {NUMBER}")
    assert (await ma.wait_for()).text == (
        "Only a leader of the unit or above may close an incident with its final report."
    )
    await ma.send("It was the oil pan.")  # no /final conversation took this
    await ma.wait_for()
    [incident] = await rows(day, Incident)
    assert incident.status == "open"
    assert await rows(day, ConversationDraft) == []
    assert await entries(day, "final_report") == []
    audit = await rows(day, AuditEntry)
    assert [a.allowed for a in audit if a.action == "incident.final_report"] == [False]


async def test_a_township_officer_records_an_unreported_incident_and_the_school_is_paged(
    day: LocalStack, clock: MovableClock
) -> None:
    wu = await linked(day, clock, "SB002", 9261, "吴静")  # the township's emergency officer
    he = await linked(day, clock, "SB01-02", 9262, "何丽")
    ma = await linked(day, clock, "SB01-05", 9263, "Jun", language="en")

    await ma.send("/heard")
    assert (await ma.wait_for()).text == (
        "Only an officer or the duty desk above a unit may record an incident it did not report."
    )
    await wu.send("/heard")
    schools = await wu.wait_for()
    assert ("石坝小学 (SB01)", "石坝乡红岩小学 (SB02)") in schools.buttons
    await wu.send("MY01")  # a school of another township
    assert (await wu.wait_for()).text == "MY01不是您下级中可记录事件的单位。"
    await wu.press("石坝小学 (SB01)", message_id=schools.message_id)
    assert (await wu.wait_for()).text == "石坝小学：发生了什么？请选择类别。"
    await wu.send("火灾")
    assert (await wu.wait_for()).text == "请从列出的类别中选择一项。"
    await wu.press("火灾")
    await wu.wait_for()
    await wu.press("重大")
    await wu.wait_for()
    await wu.send("家长来电：学校厨房冒烟。")
    check = await wu.wait_for()
    assert "石坝小学，学校未上报（漏报）" in check.text
    assert await rows(day, Incident) == []  # nothing stored before Record
    await wu.press("📣 记录并呼叫该校")
    done = await wu.wait_for()
    assert done.text == f"已记录：{NUMBER}，石坝小学未上报（漏报）。正在呼叫石坝小学上报。"
    assert done.buttons == (("➕ 续报",),)
    await day.settle()

    page = next(m for m in he.messages() if NUMBER in m.text)
    assert "漏报" in page.text and "家长来电：学校厨房冒烟。" in page.text
    [incident] = await rows(day, Incident)
    assert incident.reported_late and incident.place == "石坝小学"
    assert [e.kind for e in await rows(day, IncidentEntry)] == ["not_reported_by_unit"]
    await wu.send(f"/incident {NUMBER}")
    timeline = (await wu.wait_for()).text
    assert "⚠️ 单位未上报（漏报）：由上级记录。" in timeline
    await ma.send(f"/incident {NUMBER}")
    assert (
        "⚠️ Not reported by the unit (漏报): recorded by a level above."
        in (await ma.wait_for()).text
    )


async def test_a_follow_up_draft_is_offered_before_it_times_out(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9271, "Jun", language="en")
    await reported(day, ma)
    await ma.send(f"/followup {NUMBER}")
    await ma.wait_for()
    await ma.send("The kitchen is closed for today.")
    await ma.wait_for()
    clock.advance(timedelta(minutes=26))
    await day.settle()
    assert ma.last().text.startswith("Your follow-up is not sent yet")
    await ma.press("📝 Send the follow-up as it is")
    assert (await ma.wait_for()).text.startswith(f"Follow-up added to {NUMBER}")
    assert [e.text for e in await entries(day, "follow_up")] == ["The kitchen is closed for today."]
    assert await rows(day, ConversationDraft) == []


def test_the_page_views_know_the_incidents_subject_type() -> None:
    assert INCIDENT_SUBJECT == SUBJECT_TYPE


async def test_a_final_report_in_progress_resumes_after_a_restart(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9281, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9282, "何丽")
    await reported(day, ma)
    await he.send(f"/final {NUMBER}")
    await he.wait_for()
    await he.send("厨房油锅起火。")
    assert (await he.wait_for()).text == "采取了哪些措施？"
    await day.restart_bot()
    await he.send("疏散学生。")
    assert (await he.wait_for()).text == "结果如何？"
    await day.restart_bot()
    await he.send("无人受伤。")
    assert "措施：疏散学生。" in (await he.wait_for()).text
    await he.press("🏁 结案")
    assert (await he.wait_for()).text.startswith(f"事件{NUMBER}已凭终报结案")
    [incident] = await rows(day, Incident)
    assert incident.status == "closed"


async def test_a_follow_up_refuses_too_many_photos_an_hour_of_voice_and_stickers(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9291, "Jun", language="en")
    await reported(day, ma)
    await ma.send(f"/followup {NUMBER}")
    await ma.wait_for()
    await ma.send_voice(duration=3600)
    assert (await ma.wait_for()).text == (
        "That voice note is longer than 10 minutes; nothing was added. "
        "Say it in a shorter one, or write it."
    )
    await ma.send_sticker()
    assert (await ma.wait_for()).text == "Send text, photos or voice notes for the follow-up."
    for _ in range(10):
        await ma.send_photo()
        await ma.wait_for()
    await ma.send_photo()
    assert (await ma.wait_for()).text == (
        "This draft already holds 10 photos and voice notes, the most it can; that one "
        "was not added. Send text, or finish the draft."
    )
    await ma.press("📤 Send")
    sent = await ma.wait_for()
    assert sent.text == f"Follow-up added to {NUMBER}; sent to 0 people."
    [entry] = await entries(day, "follow_up")
    assert entry.text is None and len(entry.attachments or []) == 10
    await ma.press("📤 Send")  # on an older draft message: the draft is gone now
    answer = await ma.wait_for_answer()
    assert answer.show_alert and answer.text is not None
    assert answer.text.startswith("This follow-up is no longer open")
    assert len(await entries(day, "follow_up")) == 1


async def test_a_final_report_started_while_writing_a_follow_up_takes_the_next_message(
    day: LocalStack, clock: MovableClock
) -> None:
    ma = await linked(day, clock, "SB01-05", 9301, "Jun", language="en")
    he = await linked(day, clock, "SB01-02", 9302, "何丽")
    await reported(day, ma)
    await he.send(f"/followup {NUMBER}")
    assert (await he.wait_for()).text.startswith(f"事件{NUMBER}的续报：")
    await he.send(f"/final {NUMBER}")  # replaces the follow-up draft, and says so
    assert (await he.wait_for()).text.endswith("事件原因是什么？")
    assert (await he.wait_for()).text == (
        "您未完成的续报已丢弃，未发送任何内容。请发送 /followup 加事件编号重新开始。"
    )
    await he.send("厨房油锅起火。")
    assert (await he.wait_for()).text == "采取了哪些措施？"
    assert await entries(day, "follow_up") == []
    [draft] = await rows(day, ConversationDraft)
    assert draft.conversation == "final" and draft.data["cause"] == "厨房油锅起火。"
