"""Invites, linked accounts, strangers and scope, through the real bot and the emulator."""

from __future__ import annotations

from datetime import timedelta

from conftest import invite, linked
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.models import Account, AuditEntry, Invite, Person, RoleGrant, Unit
from bot.sandbox.stack import LocalStack

REFUSAL = (
    "您尚未在值班系统登记。请向学校管理员索取邀请链接。\n"
    "You are not registered with Zhiban. Ask your school's administrator for an invite link."
)


async def test_opening_an_invite_links_the_account_and_greets_in_chinese(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = sample.emulator.user(8001, "小红", language_code="zh-hans")
    await teacher.start(await invite(sample, clock, "SB01-04"))
    greeting = await teacher.wait_for()
    assert greeting.text.splitlines() == [
        "欢迎您，孙小红！您的账号已绑定。",
        "单位：石坝小学",
        "角色：值班人员 @ 石坝小学、安全员 @ 石坝小学一年级（1）班",
        "发送 /help 查看您可以使用的功能。",
    ]
    menu = sample.emulator.commands(scope="chat", chat_id=8001)
    # a safety officer of a class may look at that class (/unit, /board), run a drill and ask
    # for its summary
    assert [name for name, _ in menu] == [
        "help",
        "shifts",
        "calendar",
        "in",
        "out",
        "swap",
        "report",
        "followup",
        "final",
        "board",
        "incidents",
        "incident",
        "cancel",
        "me",
        "lang",
        "unit",
        "drill",
        "drills",
        "summary",
    ]


async def test_an_english_speaker_is_greeted_in_english(
    sample: LocalStack, clock: MovableClock
) -> None:
    colleague = sample.emulator.user(8002, "Jun", language_code="zh")
    await colleague.start(await invite(sample, clock, "SB01-05"))
    greeting = await colleague.wait_for()
    assert greeting.text.splitlines()[:3] == [
        "Welcome, 马俊! Your account is now linked.",
        "Unit: 石坝小学",
        "Roles: duty staff (值班人员) @ 石坝小学",
    ]
    assert ("me", "Who I am: unit, roles, language") in sample.emulator.commands(
        scope="chat", chat_id=8002
    )


async def test_a_used_expired_or_unknown_invite_gets_one_sentence_and_changes_nothing(
    sample: LocalStack, clock: MovableClock
) -> None:
    code = await invite(sample, clock, "SB01-06")
    owner = sample.emulator.user(8003, "唐磊")
    await owner.start(code)
    await owner.wait_for()
    thief = sample.emulator.user(8004, "someone")
    await thief.start(code)
    assert (await thief.wait_for()).text == (
        "此邀请链接已被使用，请向管理员索取新的链接。\n"
        "This invite link has already been used. Ask your administrator for a new one."
    )
    stale = await invite(sample, clock, "SB02-03")
    clock.advance(timedelta(days=7, seconds=1))
    late = sample.emulator.user(8005, "彭勇")
    await late.start(stale)
    assert (await late.wait_for()).text.startswith("此邀请链接已过期，请向管理员索取新的链接。")
    await late.start("not-a-real-code")
    assert (await late.wait_for()).text.startswith("此邀请链接无效，请向管理员索取。")
    assert sample.db is not None
    async with sample.db.uow() as uow:
        accounts = (await uow.session.exec(select(Account))).all()
    assert [(a.external_id, a.unlinked_at) for a in accounts] == [(8003, None)]


async def test_a_new_invite_on_a_new_phone_unlinks_the_old_one(
    sample: LocalStack, clock: MovableClock
) -> None:
    old_phone = await linked(sample, clock, "SB01-04", 8010, "小红")
    new_phone = sample.emulator.user(8011, "小红")
    await new_phone.start(await invite(sample, clock, "SB01-04"))
    assert (await new_phone.wait_for()).text.startswith("欢迎您，孙小红！")
    await old_phone.send("/me")
    assert (await old_phone.wait_for()).text == REFUSAL


async def test_a_stranger_gets_one_refusal_to_everything_and_sees_no_data(
    sample: LocalStack, clock: MovableClock
) -> None:
    stranger = sample.emulator.user(8020, "路人", language_code="zh")
    attempts = [
        "/me",
        "/lang",
        "/unit SB01",
        "/invite SB01-04",
        "/bindgroup",
        "/board",
        "/pages",
        "hello",
        "13800000011",
    ]
    for text in attempts:
        await stranger.send(text)
        assert (await stranger.wait_for()).text == REFUSAL
    for send in (stranger.send_sticker, stranger.send_voice, stranger.send_photo):
        await send()
        assert (await stranger.wait_for()).text == REFUSAL
    await stranger.send_location(32.5, 105.2)
    assert (await stranger.wait_for()).text == REFUSAL
    await stranger.press_data(stranger.last().message_id, "pg:a:1")
    assert (await stranger.wait_for_answer()).text == REFUSAL
    bot_texts = [m.text for m in stranger.messages()]
    assert all(text == REFUSAL for text in bot_texts)
    assert len(bot_texts) == len(attempts) + 4


async def test_a_township_officer_sees_both_schools_and_is_refused_another_township(
    sample: LocalStack, clock: MovableClock
) -> None:
    officer = await linked(sample, clock, "SB002", 8030, "吴静")
    await officer.send("/me")
    me = (await officer.wait_for()).text
    assert "我的辖区单位：" in me
    assert "石坝小学 (SB01)" in me and "石坝乡红岩小学 (SB02)" in me
    assert "木鱼小学" not in me
    await officer.send("/unit SB02")
    unit = (await officer.wait_for()).text
    assert unit.splitlines()[0] == "石坝乡红岩小学 (SB02)"
    assert "• 冯志刚 — 带班领导、校长 ☎ 13800000017 （未绑定账号）" in unit
    await officer.send("/unit MY01")
    assert (await officer.wait_for()).text == "您的职责范围内没有单位 MY01。"
    await officer.send("/unit NOPE")
    assert (await officer.wait_for()).text == "您的职责范围内没有单位 NOPE。"
    assert sample.db is not None
    async with sample.db.uow() as uow:
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
    assert [r.detail for r in refused] == [{"code": "MY01"}, {"code": "NOPE"}]


async def test_staff_cannot_look_at_units_or_invite(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8040, "唐磊")
    await teacher.send("/unit SB01")
    assert (await teacher.wait_for()).text == "您的职责范围内没有单位 SB01。"
    # staff are refused before anything is looked up, so the answer cannot tell what exists
    for text in (
        "/invite SB01-05",
        "/invite MY01-04",
        "/invite unit MY01",
        "/invite unit NOPE",
        "/invite unit SB01",
        "/invite unit",
        "/invite",
    ):
        await teacher.send(text)
        assert (await teacher.wait_for()).text == "只有管理员可以发放邀请。", text
    assert sample.db is not None
    async with sample.db.uow() as uow:
        refused = (
            await uow.session.exec(
                select(AuditEntry).where(
                    AuditEntry.action == "invite.issue", col(AuditEntry.allowed).is_(False)
                )
            )
        ).all()
        issued = (await uow.session.exec(select(Invite))).all()
    assert [(r.subject_id, r.detail) for r in refused] == [
        (None, {"reason": "not an administrator"})
    ] * 7
    assert len(issued) == 1  # the teacher's own


async def test_invite_by_unit_tells_nothing_about_units_outside_the_area(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8045, "吴静")
    # MY01 exists, has unlinked people, and lies in another township; NOPE does not exist
    for code in ("MY01", "NOPE"):
        await admin.send(f"/invite unit {code}")
        assert (await admin.wait_for()).text == f"您的职责范围内没有单位 {code}。"
    await admin.send("/invite unit")
    assert (await admin.wait_for()).text.startswith("请发送 /invite 加工号")
    await admin.send("/invite unit SB02")
    links = (await admin.wait_for()).text.splitlines()
    assert [line.split("：")[0] for line in links] == [
        "冯志刚（SB02-01）",
        "曹丽娟（SB02-02）",
        "彭勇（SB02-03）",
        "董慧（SB02-04）",
    ]
    assert sample.db is not None
    async with sample.db.uow() as uow:
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
    assert [(r.action, r.subject_type, r.detail) for r in refused] == [
        ("invite.issue", "unit", {"code": "MY01"}),
        ("invite.issue", "unit", {"code": "NOPE"}),
    ]


async def test_invites_for_one_person_are_limited_per_hour(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8046, "吴静")
    for _ in range(5):
        await admin.send("/invite SB01-05")
        assert (await admin.wait_for()).text.startswith("马俊（SB01-05）：https://t.me/")
    for _ in range(3):
        await admin.send("/invite SB01-05")
        assert (await admin.wait_for()).text == (
            "每小时最多可为工号 SB01-05 发放5个邀请，请稍后再试。"
        )
    clock.advance(timedelta(hours=1))
    await admin.send("/invite SB01-05")
    assert (await admin.wait_for()).text.startswith("马俊（SB01-05）：https://t.me/")
    assert sample.db is not None
    async with sample.db.uow() as uow:
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
        issued = (
            await uow.session.exec(select(Invite).where(col(Invite.created_by_id).is_not(None)))
        ).all()
    assert [r.detail for r in refused] == [{"limit": "per_person"}] * 3
    assert len(issued) == 6


async def test_an_admin_invites_within_their_area_only(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8050, "吴静")
    await admin.send("/invite SB01-05 SB02-04")
    links = (await admin.wait_for()).text.splitlines()
    assert links[0].startswith("马俊（SB01-05）：https://t.me/zhiban_demo_bot?start=")
    assert links[1].startswith("董慧（SB02-04）：https://t.me/zhiban_demo_bot?start=")
    code = links[0].split("start=")[1].split(" ")[0]
    assert len(code) <= 64 and set(code) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    )
    await admin.send("/invite MY01-04")
    assert (await admin.wait_for()).text == "您的职责范围内没有工号 MY01-04。"
    await admin.send("/invite XX-404")
    assert (await admin.wait_for()).text == "您的职责范围内没有工号 XX-404。"
    assert sample.db is not None
    async with sample.db.uow() as uow:
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
        issued = (await uow.session.exec(select(Invite))).all()
    # both refusals are audited, the unknown one as well as the foreign one
    assert [(r.action, r.subject_type) for r in refused] == [
        ("invite.issue", "person"),
        ("invite.issue", None),
    ]
    assert len(issued) == 3  # her own and the two she issued: the refused one was not created
    await admin.send("/invite")
    assert (await admin.wait_for()).text.startswith("请发送 /invite 加工号")
    newcomer = sample.emulator.user(8051, "Jun", language_code="en")
    await newcomer.start(code)
    assert (await newcomer.wait_for()).text.startswith("Welcome, 马俊!")


async def test_switching_language_changes_messages_and_menu(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8060, "唐磊")
    await teacher.send("/lang")
    menu = await teacher.wait_for()
    [english] = [
        data
        for labels, datas in zip(menu.buttons, menu.callback_data, strict=True)
        for label, data in zip(labels, datas, strict=True)
        if label == "English"
    ]
    await teacher.press("English")
    assert (await teacher.wait_for()).text == "Zhiban will talk to you in English from now on."
    # A second press of the same button (a double tap) asks for what the message already shows:
    # Telegram refuses that edit ("message is not modified"), and it is no error for the person.
    sent = len(teacher.messages())
    assert english is not None
    await teacher.press_data(menu.message_id, english)
    answer = await teacher.wait_for_answer()
    assert not answer.show_alert and len(teacher.messages()) == sent
    await teacher.send("/me")
    assert "Language: English" in (await teacher.wait_for()).text
    assert ("lang", "Switch language: 中文 / English") in sample.emulator.commands(
        scope="chat", chat_id=8060
    )


async def test_linked_people_get_one_sentence_for_what_the_bot_does_not_understand(
    sample: LocalStack, clock: MovableClock
) -> None:
    teacher = await linked(sample, clock, "SB01-06", 8070, "唐磊")
    await teacher.send_sticker()
    assert (await teacher.wait_for()).text == "没有看懂您的消息。发送 /help 查看可用功能。"
    await teacher.send("/nonsense")
    assert (await teacher.wait_for()).text == "没有这个命令。发送 /help 查看可用功能。"
    await teacher.send("/unit")
    assert (await teacher.wait_for()).text == "请发送 /unit 加单位代码，例如 /unit SB01。"


async def test_groups_are_silent_until_an_admin_binds_them(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8080, "吴静")
    teacher = await linked(sample, clock, "SB01-06", 8081, "唐磊")
    group = sample.emulator.group(-100500, "石坝乡值班群")
    await group.add_bot(by=admin)
    await group.send(teacher, "/help")
    await group.send(teacher, "/bindgroup")
    await group.send(admin, "/bindgroup")
    bound = await group.wait_for()
    assert bound.text == "本群现在是石坝乡中心校的值班群。"
    assert [m.text for m in group.messages()] == [bound.text]
    # even bound, a group gets no invite links, phones or personal menus
    for text in ("/invite SB01-05", "/unit SB01", "/me"):
        await group.send(admin, text)
    await group.send(admin, "/bindgroup")
    assert (await group.wait_for()).text == bound.text
    assert [m.text for m in group.messages()] == [bound.text, bound.text]


async def test_a_group_serves_one_unit_and_a_second_bind_moves_it(
    sample: LocalStack, clock: MovableClock
) -> None:
    admin = await linked(sample, clock, "SB002", 8082, "吴静")
    assert sample.db is not None
    async with sample.db.uow() as uow:
        school = (await uow.session.exec(select(Unit).where(Unit.code == "SB01"))).one()
        school.name = "石坝<小学>&"  # the answer must show this as written, not as entities
        await uow.commit()
    group = sample.emulator.group(-100501, "石坝值班群")
    await group.add_bot(by=admin)
    await group.send(admin, "/bindgroup SB")
    assert (await group.wait_for()).text == "本群现在是石坝乡中心校的值班群。"
    await group.send(admin, "/bindgroup SB01")
    assert (await group.wait_for()).text == (
        "本群现在是石坝<小学>&的值班群，不再是石坝乡中心校的值班群。"
    )
    await group.send(admin, "/bindgroup MY01")
    assert (await group.wait_for()).text == "您的职责范围内没有单位 MY01。"
    # an administrator of another township, in the group, cannot take it from 石坝小学
    async with sample.db.uow() as uow:
        uow.session.add(
            RoleGrant(
                person_id=(
                    await uow.session.exec(select(Person.id).where(Person.staff_no == "MY002"))
                ).one(),
                role="admin",
                unit_id=(await uow.session.exec(select(Unit.id).where(Unit.code == "MY"))).one(),
            )
        )
        await uow.commit()
    my_admin = await linked(sample, clock, "MY002", 8084, "高云")
    await group.send(my_admin, "/bindgroup MY01")
    assert (await group.wait_for()).text == (
        "本群是您职责范围以外某单位的值班群，须由该单位的管理员迁移。"
    )
    async with sample.db.uow() as uow:
        bound = (
            await uow.session.exec(select(Unit.code).where(Unit.duty_chat_id == -100501))
        ).all()
        binds = (
            await uow.session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "group.bind")
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert bound == ["SB01"]
    assert [(b.allowed, (b.detail or {}).get("moved_from")) for b in binds] == [
        (True, None),
        (True, [binds[0].subject_id]),
        (False, None),
        (False, None),
    ]


async def test_a_command_for_another_bot_gets_strangers_the_refusal(
    sample: LocalStack, clock: MovableClock
) -> None:
    stranger = sample.emulator.user(8090, "路人", language_code="zh")
    await stranger.send("/help@other_bot")
    assert (await stranger.wait_for()).text == REFUSAL
    await stranger.send("/start@other_bot")
    assert (await stranger.wait_for()).text == REFUSAL
    teacher = await linked(sample, clock, "SB01-06", 8091, "唐磊")
    await teacher.send("/help@other_bot")
    assert (await teacher.wait_for()).text == "没有这个命令。发送 /help 查看可用功能。"
    await teacher.send("/me@zhiban_demo_bot")
    assert (await teacher.wait_for()).text.startswith("唐磊 (SB01-06)")
