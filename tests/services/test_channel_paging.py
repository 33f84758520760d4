"""Pages on one-way channels: one robot message per page event, the fallback, the sender's pace."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from factories import District
from sqlmodel import col, select
from test_cli import zhiban

from bot.channels import ChannelError, ChannelMessage, registry
from bot.channels.email import EmailChannel
from bot.channels.sender import ChannelSender
from bot.clock import MovableClock
from bot.config import ConfigError, EmailSettings, EscalationStep, settings_from_mapping
from bot.models import OutboxMessage, OutboxStatus, Page, Person
from bot.services import escalation
from bot.services.engine import run_due
from bot.services.escalation import ChannelRoutes, PagingContext
from bot.services.page_text import PageSubject
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CTX = PagingContext(
    tz=ZoneInfo("Asia/Shanghai"),
    default_language="en",
    channels=ChannelRoutes({"S": ("school-robot",)}),
)


@dataclass
class FakeRobot:
    """A channel that keeps what it is sent, or fails as told."""

    name: str
    per_minute: int = 20
    kind: str = "dingtalk"
    fail: ChannelError | None = None
    sent: list[ChannelMessage] = field(default_factory=list)

    async def send(self, message: ChannelMessage) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


async def start_matter(db: Database, district: District, steps: list[EscalationStep]) -> None:
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=steps,
            subject_type="test",
            subject_id=1,
            unit_id=district.units["S"],
            now=T0,
            subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
        )
        await uow.commit()
    await run_due(
        db, now=T0, handlers={escalation.STEP_KIND: escalation.step_handler(CTX)}, worker="w"
    )


async def robot_rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as uow:
        statement = (
            select(OutboxMessage)
            .where(col(OutboxMessage.channel).is_not(None))
            .order_by(col(OutboxMessage.id))
        )
        return list((await uow.session.exec(statement)).all())


async def test_a_page_event_is_one_robot_message_and_a_failed_page_reaches_it_before_the_next(
    db: Database, district: District
) -> None:
    # Both duty leaders of S are paged by one step: the school's robot gets one message.
    await start_matter(db, district, [EscalationStep(after=timedelta(0), roles=["duty_leader"])])
    [event] = await robot_rows(db)
    assert event.channel == "school-robot" and event.kind == "channel"
    assert event.body["mention_phones"] == ["13800000000", "13800000001"]
    assert event.body["title"] == "🚨 Post unmanned · 石坝小学"
    assert event.body["text"].splitlines()[-1] == (
        "👤 Paged: 李带班 13800000000, 周带班 13800000001"
    )
    assert "<b>" not in event.body["text"]
    # Telegram then refuses 李带班's page: the robot hears it before the next contact is paged.
    async with db.uow() as uow:
        page = (
            await uow.session.exec(select(Page).where(Page.person_id == district.people["leader"]))
        ).one()
        await escalation.mark_undeliverable(
            uow.session, page_id=page.id or 0, reason="Forbidden: blocked", now=T0, ctx=CTX
        )
        await uow.commit()
    # one more robot message: the failure, and the stand-in paged at S in its place
    _event, fallback = await robot_rows(db)
    assert fallback.body["mention_phones"] == ["13800000000", "13800000002"]
    assert fallback.body["text"].splitlines()[-2:] == [
        "📵 Telegram could not deliver this page to 李带班; this group is told instead.",
        "👤 Paged: 李带班 13800000000 (📵 not reachable on Telegram), 孙安全 13800000002",
    ]
    async with db.read() as uow:
        stand_in = (
            await uow.session.exec(select(Page).where(col(Page.replaces_page_id) == page.id))
        ).one()
        first_of_stand_in = (
            await uow.session.exec(
                select(OutboxMessage.id).where(
                    OutboxMessage.page_id == stand_in.id, col(OutboxMessage.channel).is_(None)
                )
            )
        ).one()
    assert stand_in.person_id == district.people["safety"]
    assert (fallback.id or 0) < first_of_stand_in


async def test_a_step_names_a_channel_and_someone_without_telegram_is_marked_in_it(
    db: Database, district: District
) -> None:
    steps = [
        EscalationStep(after=timedelta(0), roles=["staff"], channels=["county-robot"]),
    ]
    await start_matter(db, district, steps)
    rows = await robot_rows(db)
    # staff at S: 张老师 (linked) and 刘老师 (no account), one message on each channel
    assert [row.channel for row in rows] == ["school-robot", "county-robot"]
    for row in rows:
        assert row.body["text"].splitlines()[-1] == (
            "👤 Paged: 张老师 13800000007, 刘老师 13800000008 (📵 not reachable on Telegram), "
            "李带班 13800000000"
        )


def robot_row(channel: str, number: int) -> OutboxMessage:
    return OutboxMessage(
        created_at=T0,
        not_before=T0,
        kind="channel",
        method="channel",
        channel=channel,
        body={"title": f"t{number}", "text": f"page {number}", "mention_phones": ["1380"]},
    )


async def test_the_sender_keeps_each_robot_within_its_minute_and_fails_what_it_must(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock(T0)
    fast = FakeRobot("fast", per_minute=20)
    broken = FakeRobot("broken", fail=ChannelError("sign not match", retry=False, code="310000"))
    busy = FakeRobot("busy", fail=ChannelError("send too fast", retry=True, code="130101"))
    async with db.uow() as uow:
        uow.session.add_all([robot_row("fast", n) for n in range(25)])
        uow.session.add_all([robot_row("broken", 0), robot_row("busy", 0), robot_row("gone", 0)])
        await uow.commit()
    sender = ChannelSender(
        db=db,
        clock=clock,
        channels={"fast": fast, "broken": broken, "busy": busy},
        worker="w1",
        max_retries=1,
    )
    while await sender.step():
        pass
    # 20 within the minute, the other 5 wait for it, visibly
    assert [m.text for m in fast.sent] == [f"page {n}" for n in range(20)]
    rows = {(row.channel, row.body["title"]): row for row in await robot_rows(db)}
    waiting = [row for row in rows.values() if row.channel == "fast" and row.status == "pending"]
    assert len(waiting) == 5 and {row.not_before for row in waiting} == {T0 + timedelta(minutes=1)}
    assert rows["broken", "t0"].status == OutboxStatus.FAILED
    assert rows["broken", "t0"].last_error == "310000: sign not match"
    assert rows["busy", "t0"].status == OutboxStatus.PENDING
    assert rows["busy", "t0"].not_before == T0 + timedelta(seconds=2)
    assert rows["gone", "t0"].status == OutboxStatus.FAILED
    # a minute on, the rest goes out; the busy robot had its one retry and is failed
    clock.set(T0 + timedelta(minutes=1))
    while await sender.step():
        pass
    assert len(fast.sent) == 25
    rows = {(row.channel, row.body["title"]): row for row in await robot_rows(db)}
    assert rows["busy", "t0"].status == OutboxStatus.FAILED
    assert rows["busy", "t0"].attempts == 2
    assert rows["busy", "t0"].last_error == "130101: send too fast"
    # the operator sees the failures and their reasons
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[bot]\nlanguage = "en"\n')
    listing = zhiban("pages", "--status", "failed", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert lines[0] == "Pages on one-way channels (group robots):"
    assert [line.split("\t")[1] for line in lines[1:]] == ["failed"] * 3
    assert [line.split("\t")[4] for line in lines[1:]] == [
        "→ gone (-): ",
        "→ busy (-): ",
        "→ broken (-): ",
    ]
    assert lines[-1].endswith("310000: sign not match")


def test_channels_are_checked_when_the_configuration_is_read() -> None:
    robot = {"name": "county-dingtalk", "kind": "dingtalk", "url": "https://oapi.example/robot"}
    problems = []
    for bad in (
        {"channels": [robot | {"kind": "email"}]},
        {"channels": [robot, robot]},
        {"channels": [robot | {"name": "email"}]},
        {"channels": [robot | {"url": "oapi.example"}]},
        {
            "escalation": {
                "serious": {"steps": [{"after": "0s", "roles": ["desk"], "channels": ["x"]}]}
            }
        },
    ):
        with pytest.raises(ConfigError) as error:
            settings_from_mapping(bad, environ={})
        problems += error.value.problems
    assert problems == [
        "channels[0].kind: Input should be 'wecom', 'dingtalk' or 'feishu'",
        'channels: two channels are named "county-dingtalk"',
        'channels: "email" is the name of [email]\'s channel; name the robot apart',
        "channels[0].url: write the robot's webhook address, https://…",
        'escalation.serious.steps[0].channels: no [[channels]] table is named "x"',
    ]


async def test_two_senders_send_each_robot_message_once_and_share_its_minute(
    db: Database,
) -> None:
    clock = MovableClock(T0)
    robot = FakeRobot("county", per_minute=20)
    # and one row a dead instance claimed three minutes ago: its lease has run out
    dead = robot_row("county", 30)
    dead.status, dead.claimed_by, dead.attempts = OutboxStatus.SENDING, "host-dead:9", 1
    dead.claimed_at = T0 - timedelta(minutes=3)
    async with db.uow() as uow:
        uow.session.add_all([robot_row("county", n) for n in range(30)] + [dead])
        await uow.commit()
    senders = [
        ChannelSender(db=db, clock=clock, channels={"county": robot}, worker=name)
        for name in ("host-a:1", "host-b:2")
    ]

    async def drain() -> None:
        while any(await asyncio.gather(*(sender.step() for sender in senders))):
            pass

    await drain()
    assert len(robot.sent) == 20  # one minute's budget between the two, not each
    clock.set(T0 + timedelta(minutes=1))
    await drain()
    assert sorted(m.text for m in robot.sent) == sorted(f"page {n}" for n in range(31))
    rows = await robot_rows(db)
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert {row.claimed_by for row in rows} == {"host-a:1", "host-b:2"}  # both took a share


def test_run_names_a_robot_secret_missing_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/z.db"\n'
        '[[channels]]\nname = "county-dingtalk"\nkind = "dingtalk"\n'
        'url = "https://oapi.dingtalk.com/robot/send?access_token=t"\n'
        'secret_env = "ZHIBAN_DINGTALK_SECRET"\nunits = ["QC"]\n'
    )
    started = zhiban("run", "--config", str(config), env={"ZHIBAN_TELEGRAM_TOKEN": "1:x"})
    assert started.returncode == 1
    assert started.stderr == (
        "zhiban: channels[0].secret_env: ZHIBAN_DINGTALK_SECRET is not set "
        "(the signing secret of county-dingtalk)\n"
    )
    assert zhiban("check-config", str(config)).stdout == "OK\n"
    doctor = zhiban("doctor", "--config", str(config)).stdout.splitlines()
    assert (
        "FAIL  单向渠道：channels[0].secret_env: ZHIBAN_DINGTALK_SECRET is not set "
        "(the signing secret of county-dingtalk)"
    ) in doctor
    doctor = zhiban(
        "doctor", "--config", str(config), env={"ZHIBAN_DINGTALK_SECRET": "SEC"}
    ).stdout.splitlines()
    assert "OK    单向渠道：county-dingtalk；签名密钥均已设置。" in doctor


def fake_link(page_id: int, person_id: int, now: datetime) -> str | None:
    return f"https://duty.example.edu.cn/a/{page_id}.{person_id}"


LINKED = PagingContext(
    tz=ZoneInfo("Asia/Shanghai"),
    default_language="en",
    channels=ChannelRoutes({"S": ("school-robot",)}),
    link=fake_link,
    email=True,
)


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every mail."""

    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


async def test_each_paged_person_gets_their_link_and_one_without_telegram_is_still_mailed(
    db: Database, district: District
) -> None:
    # 刘老师 has no Telegram account and an e-mail address; 张老师 reads Telegram only.
    async with db.uow() as uow:
        teacher = await uow.session.get(Person, district.people["nolink"])
        assert teacher is not None
        teacher.email = "liu@example.edu.cn"
        await uow.commit()
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=[EscalationStep(after=timedelta(0), roles=["staff"])],
            subject_type="test",
            subject_id=1,
            unit_id=district.units["S"],
            now=T0,
            subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
        )
        await uow.commit()
    await run_due(
        db, now=T0, handlers={escalation.STEP_KIND: escalation.step_handler(LINKED)}, worker="w"
    )
    async with db.read() as uow:
        pages = {
            page.person_id: page.id
            for page in (await uow.session.exec(select(Page).order_by(col(Page.id)))).all()
        }
    rows = await robot_rows(db)
    robot = [row for row in rows if row.channel == "school-robot"]
    mails = [row for row in rows if row.channel == "email"]
    # The group's one message lists everyone paged there, each with their own link.
    [event] = robot
    zhang, liu = district.people["staff"], district.people["nolink"]
    li = district.people["leader"]  # the stand-in paged in 刘老师's place joins the message
    assert event.body["link"] is None
    assert event.body["text"].splitlines()[-3:] == [
        f"张老师: https://duty.example.edu.cn/a/{pages[zhang]}.{zhang}",
        f"刘老师: https://duty.example.edu.cn/a/{pages[liu]}.{liu}",
        f"李带班: https://duty.example.edu.cn/a/{pages[li]}.{li}",
    ]
    # 刘老师 alone is mailed, with her link only (the fallback stand-in has no address).
    [mail] = mails
    assert mail.body["emails"] == ["liu@example.edu.cn"]
    assert mail.body["link"] == f"https://duty.example.edu.cn/a/{pages[liu]}.{liu}"
    assert "https://" not in mail.body["text"] and mail.body["mention_phones"] == []
    # The channel sender mails it through the `[email]` channel to a real SMTP server.
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = EmailChannel(
            EmailSettings.model_validate(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "from": "zhiban@example.edu.cn",
                    "starttls": False,
                }
            ),
            password=None,
            clock=MovableClock(T0),
        )
        sender = ChannelSender(
            db=db,
            clock=MovableClock(T0),
            channels={"email": mailer, "school-robot": FakeRobot("school-robot")},
            worker="w1",
        )
        while await sender.step():
            pass
    finally:
        controller.stop()
    [envelope] = inbox.received
    assert envelope.rcpt_tos == ["liu@example.edu.cn"]
    content = message_from_bytes(envelope.original_content or b"", policy=policy.default)
    assert isinstance(content, EmailMessage)
    plain = content.get_body(("plain",))
    assert plain is not None
    assert f"https://duty.example.edu.cn/a/{pages[liu]}.{liu}" in plain.get_content()
    assert content["Subject"] == "🚨 Post unmanned · 石坝小学"
    assert [row.status for row in await robot_rows(db)] == [OutboxStatus.SENT] * 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_email_is_a_channel_named_email_when_configured() -> None:
    robot = {"name": "county-dingtalk", "kind": "dingtalk", "url": "https://oapi.example/robot"}
    without = settings_from_mapping({"channels": [robot]}, environ={})
    assert set(registry.build(without, {})) == {"county-dingtalk"}
    mail = {"host": "smtp.example.edu.cn", "from": "zhiban@example.edu.cn"}
    with_mail = settings_from_mapping({"channels": [robot], "email": mail}, environ={})
    built = registry.build(with_mail, {})
    assert set(built) == {"county-dingtalk", "email"}
    assert (built["email"].kind, built["email"].per_minute) == ("email", 60)
