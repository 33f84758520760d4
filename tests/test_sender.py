"""The outbox sender against the local Bot API emulator, with time moved by the test's clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District, build_district
from sqlmodel import col, select
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.clock import MovableClock
from bot.config import EscalationStep, Level, TelegramSettings
from bot.delivery import PER_CHAT, UNCONFIRMED, OutboxSender
from bot.models import OutboxMessage, OutboxStatus, Page
from bot.sandbox import ApiCall, BotApiEmulator
from bot.services import escalation, outbox
from bot.services.engine import run_due
from bot.services.escalation import PagingContext
from bot.services.page_text import PageSubject
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TOKEN = "123456:SENDER-test-token"
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")
SUBJECT = PageSubject(
    what="Post unmanned: {post}", ask="Please acknowledge.", what_params={"post": "值班室"}
)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
async def emulator(clock: MovableClock) -> AsyncIterator[BotApiEmulator]:
    # Telegram's flood limits counted on the test's clock, as the sender paces on it.
    async with BotApiEmulator(
        clock=clock.now, monotonic=lambda: clock.now().timestamp()
    ) as running:
        running.enforce_flood_limits = True
        yield running


@pytest.fixture
async def district(db: Database, emulator: BotApiEmulator) -> District:
    """The small district; everyone linked has pressed Start in their private chat."""
    built = await build_district(db, skip={"leader2"})
    for key, chat_id in built.chats.items():
        emulator.user(chat_id, key)
        emulator.world.chats[chat_id].started = True
    return built


@asynccontextmanager
async def sender_running(
    db: Database,
    emulator: BotApiEmulator,
    clock: MovableClock,
    *,
    worker: str = "sender-1",
    max_retries: int = 5,
    read_timeout: float = 5.0,
) -> AsyncIterator[OutboxSender]:
    """A sender with its own plain Bot, running until the block ends (a clean stop)."""
    telegram = TelegramSettings(
        api_base_url=emulator.base_url,
        api_file_url=emulator.base_file_url,
        max_retries=max_retries,
    )
    bot = Bot(
        TOKEN,
        base_url=emulator.base_url,
        base_file_url=emulator.base_file_url,
        request=HTTPXRequest(read_timeout=read_timeout),
    )
    sender = OutboxSender(db=db, bot=bot, clock=clock, telegram=telegram, paging=CTX, worker=worker)
    await sender.open()
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop, poll_every=0.05))
    try:
        yield sender
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await sender.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Wait (real time, polling) until `check` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError("the condition never held")
        await asyncio.sleep(0.01)


async def quiet(sender: OutboxSender) -> None:
    """Wait until the sender has nothing under way but waits on the clock."""
    await asyncio.sleep(0.05)
    await eventually(lambda: _true(sender.idle()))


async def _true(value: bool) -> bool:
    return value


async def is_sent(db: Database, row_id: int) -> bool:
    return (await row(db, row_id)).status == OutboxStatus.SENT


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as uow:
        return list(
            (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        )


async def row(db: Database, row_id: int) -> OutboxMessage:
    async with db.read() as uow:
        return await outbox.by_id(uow.session, row_id)


async def notices(db: Database, now: datetime, chat_id: int, count: int) -> list[int]:
    async with db.uow() as uow:
        made = [
            await outbox.enqueue(uow.session, now=now, text=f"通知 {i}", chat_id=chat_id)
            for i in range(count)
        ]
        await uow.commit()
    return [message.id or 0 for message in made]


async def page_the_duty_leader(db: Database, district: District) -> None:
    """A matter at the school whose first step pages its duty leader now (outbox rows written)."""
    async with db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=[EscalationStep(after=timedelta(0), roles=["duty_leader"], level=Level.UNIT)],
            subject_type="test",
            subject_id=1,
            unit_id=district.units["S"],
            subject=SUBJECT,
            now=T0,
        )
        await uow.commit()
    handlers = {escalation.STEP_KIND: escalation.step_handler(CTX)}
    await run_due(db, now=T0, handlers=handlers, worker="test")


def sends(emulator: BotApiEmulator, chat_id: int, *, status: int = 200) -> list[ApiCall]:
    return [
        call
        for call in emulator.calls_of("sendMessage")
        if call.status == status and int(call.params.get("chat_id", 0)) == chat_id
    ]


async def test_a_message_to_one_person_is_not_held_back_by_a_burst_to_another(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    desk, leader = district.chats["desk"], district.chats["leader"]
    burst = await notices(db, T0, desk, 8)
    clock.advance(timedelta(seconds=0.3))
    [single] = await notices(db, clock.now(), leader, 1)
    async with sender_running(db, emulator, clock) as sender:
        await eventually(lambda: is_sent(db, single))
        # The leader's message went out at once, while the desk's burst waits for its pace,
        # most of it still pending in the database rather than claimed.
        assert (await row(db, single)).sent_at == T0 + timedelta(seconds=0.3)
        assert len(sends(emulator, desk)) == 1
        waiting = [r for r in await rows(db) if r.id in burst]
        assert sum(r.status == OutboxStatus.PENDING for r in waiting) >= len(burst) - PER_CHAT
        while len(sends(emulator, desk)) < len(burst):
            await quiet(sender)
            # (on a busy machine the desk's worker may settle its last send before it sleeps,
            # or send it without sleeping again: then there is nothing left to wait for)
            await eventually(
                lambda: _true(
                    clock.earliest_sleeper() is not None or len(sends(emulator, desk)) == len(burst)
                )
            )
            moment = clock.earliest_sleeper()
            if moment is not None:
                clock.set(moment)
            await asyncio.sleep(0.02)
    sent_at = [r.sent_at for r in await rows(db) if r.id in burst]
    assert all(at is not None for at in sent_at)
    gaps = [b - a for a, b in itertools.pairwise(sent_at) if a and b]
    assert all(gap >= timedelta(seconds=1) for gap in gaps)
    assert emulator.count_status(429) == 0


async def test_a_flood_wait_delays_that_chat_only_and_sends_the_row_after_it(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader, desk, safety = (district.chats[k] for k in ("leader", "desk", "safety"))
    emulator.inject_failure("sendMessage", 429, retry_after=30)
    [flooded] = await notices(db, T0, leader, 1)
    async with sender_running(db, emulator, clock) as sender:
        await eventually(lambda: _true(emulator.count_status(429) == 1))
        others = await notices(db, T0, desk, 1) + await notices(db, T0, safety, 1)
        sender.wake()
        for other in others:
            await eventually(lambda other=other: is_sent(db, other))
        assert [(await row(db, r)).sent_at for r in others] == [T0, T0]

        async def held_with_its_flood_wait() -> bool:
            # (written by the flooded chat's worker, which may come after the others' sends)
            waiting = await row(db, flooded)
            return (waiting.status, waiting.last_error) == (
                OutboxStatus.SENDING,
                "429: retry after 30.0s",
            )

        await eventually(held_with_its_flood_wait)
        clock.advance(timedelta(seconds=29))
        await quiet(sender)
        assert sends(emulator, leader) == []
        clock.advance(timedelta(seconds=1))
        await eventually(lambda: is_sent(db, flooded))
    sent = await row(db, flooded)
    assert (sent.status, sent.sent_at, sent.attempts) == (
        OutboxStatus.SENT,
        T0 + timedelta(seconds=30),
        1,
    )


async def test_bad_gateway_answers_back_off_then_deliver(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader = district.chats["leader"]
    emulator.inject_failure("sendMessage", 502, count=2)
    [row_id] = await notices(db, T0, leader, 1)
    async with sender_running(db, emulator, clock) as sender:
        for attempts, backoff in ((1, 2), (2, 4)):

            async def backed_off(attempts: int = attempts) -> bool:
                current = await row(db, row_id)
                return current.status == OutboxStatus.PENDING and current.attempts == attempts

            await eventually(backed_off)
            current = await row(db, row_id)
            assert current.not_before == clock.now() + timedelta(seconds=backoff)
            assert current.claimed_by is None and current.last_error == "Bad Gateway"
            clock.advance(timedelta(seconds=backoff - 1))
            sender.wake()
            await quiet(sender)
            assert (await row(db, row_id)).status == OutboxStatus.PENDING  # not before its time
            clock.advance(timedelta(seconds=1))
            sender.wake()
        await eventually(lambda: is_sent(db, row_id))
    sent = await row(db, row_id)
    assert (sent.status, sent.attempts, sent.last_error) == (OutboxStatus.SENT, 3, None)
    assert len(emulator.calls_of("sendMessage")) == 3


async def test_a_page_that_keeps_failing_is_failed_and_goes_to_the_next_contact(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    await page_the_duty_leader(db, district)
    emulator.inject_failure("sendMessage", 502, count=2)
    async with sender_running(db, emulator, clock, max_retries=1) as sender:

        async def backed_off() -> bool:
            first = (await rows(db))[0]
            return (first.status, first.attempts) == (OutboxStatus.PENDING, 1)

        await eventually(backed_off)
        clock.advance(timedelta(seconds=2))
        sender.wake()

        async def rerouted() -> bool:
            return len(sends(emulator, district.chats["safety"])) == 1

        await eventually(rerouted)
    first, *rest = [r for r in await rows(db) if r.kind == "page"]
    assert (first.status, first.attempts, first.last_error) == (
        OutboxStatus.FAILED,
        2,
        "Bad Gateway",
    )
    assert [r.person_id for r in rest] == [district.people["safety"]]
    async with db.read() as uow:
        page = await uow.session.get(Page, first.page_id)
    assert page is not None and page.status == "undeliverable"
    assert sends(emulator, district.chats["leader"]) == []


async def test_an_answer_slower_than_the_timeout_is_not_sent_again_and_its_edit_is_skipped(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader = district.chats["leader"]
    emulator.method_latency["sendMessage"] = 0.6
    [row_id] = await notices(db, T0, leader, 1)
    async with sender_running(db, emulator, clock, read_timeout=0.2) as sender:

        async def settled() -> bool:
            return (await row(db, row_id)).status == OutboxStatus.SENT

        await eventually(settled)
        emulator.method_latency.clear()
        async with db.uow() as uow:
            target = await outbox.by_id(uow.session, row_id)
            edit = await outbox.enqueue_edit(uow.session, now=T0, target=target, text="已接报")
            await uow.commit()
        clock.advance(timedelta(seconds=1))  # the chat's next turn
        sender.wake()

        async def skipped() -> bool:
            return (await row(db, edit)).status == OutboxStatus.CANCELLED

        await eventually(skipped)
        clock.advance(timedelta(minutes=10))
        sender.wake()
        await quiet(sender)
    unconfirmed = await row(db, row_id)
    assert (unconfirmed.sent_message_id, unconfirmed.last_error) == (None, UNCONFIRMED)
    assert (await row(db, edit)).last_error == "the message to edit was not confirmed"
    assert unconfirmed.attempts == 1
    assert emulator.calls_of("editMessageText") == []
    assert len(emulator.user(leader, "leader").messages()) == 1  # it did arrive, once


async def test_a_clean_stop_gives_back_claimed_rows_for_the_next_sender_at_once(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader = district.chats["leader"]
    ids = await notices(db, T0, leader, 4)
    async with sender_running(db, emulator, clock, worker="old") as sender:
        await eventually(lambda: is_sent(db, ids[0]))
        await quiet(sender)
        assert sender.held() == PER_CHAT - 1
    after_stop = {r.id: r for r in await rows(db)}
    assert after_stop[ids[0]].status == OutboxStatus.SENT
    for row_id in ids[1:]:
        given_back = after_stop[row_id]
        assert (given_back.status, given_back.claimed_by, given_back.attempts) == (
            OutboxStatus.PENDING,
            None,
            0,
        )
    clock.advance(timedelta(seconds=1))
    async with sender_running(db, emulator, clock, worker="new"):
        await eventually(lambda: is_sent(db, ids[1]))
    assert (await row(db, ids[1])).sent_at == T0 + timedelta(seconds=1)  # no lease to wait out


async def test_a_row_taken_over_by_another_sender_is_not_sent_by_the_old_one(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader = district.chats["leader"]
    first, second = await notices(db, T0, leader, 2)
    async with sender_running(db, emulator, clock, worker="old") as sender:
        await eventually(lambda: is_sent(db, first))
        await quiet(sender)
        # Another instance decides the old one's lease ran out (a zero lease) and claims it.
        async with db.uow() as uow:
            taken = await outbox.claim(
                uow.session,
                now=T0 + timedelta(milliseconds=500),
                limit=10,
                worker="new",
                lease=timedelta(0),
            )
            await uow.commit()
        assert [r.id for r in taken] == [second]
        clock.advance(timedelta(seconds=1))
        await quiet(sender)
        assert sender.held() == 0
    assert len(sends(emulator, leader)) == 1
    taken_row = await row(db, second)
    assert (taken_row.status, taken_row.claimed_by) == (OutboxStatus.SENDING, "new")
    assert (await row(db, first)).status == OutboxStatus.SENT


async def test_a_text_and_its_photo_and_voice_note_go_in_order_at_the_chats_pace(
    db: Database, district: District, emulator: BotApiEmulator, clock: MovableClock
) -> None:
    leader = district.chats["leader"]
    world = emulator.world
    photo = world.store_file(b"\xff\xd8photo", folder="photos", file_name=None, mime_type=None)
    voice = world.store_file(b"OggS", folder="voice", file_name=None, mime_type="audio/ogg")
    async with db.uow() as uow:
        text = await outbox.enqueue(uow.session, now=T0, text="续报", chat_id=leader)
        sent_photo = await outbox.enqueue_media(
            uow.session, now=T0, method="sendPhoto", file_id=photo.file_id, chat_id=leader
        )
        sent_voice = await outbox.enqueue_media(
            uow.session,
            now=T0,
            method="sendVoice",
            file_id=voice.file_id,
            caption="No. 1",
            chat_id=leader,
        )
        unknown = await outbox.enqueue_media(
            uow.session, now=T0, method="sendVoice", file_id="AwACAgIAAxkBnever", chat_id=leader
        )
        await uow.commit()
    async with sender_running(db, emulator, clock) as sender:
        for _ in range(50):  # move the clock to each pause the chat's pace asks for
            if len(emulator.calls_of("sendVoice")) == 2:
                break
            await quiet(sender)
            moment = clock.earliest_sleeper()
            if moment is not None:
                clock.set(moment)
            await asyncio.sleep(0.02)
        await eventually(lambda: _true(len(emulator.calls_of("sendVoice")) == 2))
        await quiet(sender)
    done = {r.id: r for r in await rows(db)}
    order = [done[r.id or 0].sent_at for r in (text, sent_photo, sent_voice)]
    assert order == sorted(order) and order[0] is not None and order[2] is not None
    gaps = [b - a for a, b in itertools.pairwise(order) if a and b]
    assert all(gap >= timedelta(seconds=1) for gap in gaps)  # one chat, one a second
    chat = world.chats[leader]
    bot_sent = [m.payload for m in chat.messages.values() if m.from_bot]
    assert [("photo" in p, "voice" in p) for p in bot_sent] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    assert bot_sent[2]["caption"] == "No. 1"
    failed = done[unknown.id or 0]
    assert failed.status == OutboxStatus.FAILED
    assert failed.last_error == "Wrong file identifier/http url specified"


async def test_a_claimed_row_is_read_again_with_its_page_and_the_message_it_edits(
    db: Database, district: District
) -> None:
    """What a sender reads just before sending: the page's status, the edit's target, gone rows."""
    [first] = await notices(db, T0, district.chats["leader"], 1)
    async with db.uow() as uow:
        target = await outbox.by_id(uow.session, first)
        edit = await outbox.enqueue_edit(uow.session, now=T0, target=target, text="已接报")
        await uow.commit()
    waiting = await outbox.recheck(db, edit)
    assert (waiting.method, waiting.target_status, waiting.target_message_id) == (
        "editMessageText",
        OutboxStatus.PENDING,
        None,
    )
    assert (waiting.page_status, waiting.reply_to_message_id) == (None, None)
    async with db.uow() as uow:
        await outbox.mark_sent(uow.session, first, now=T0, sent_message_id=77)
        await uow.commit()
    ready = await outbox.recheck(db, edit)
    assert (ready.target_status, ready.target_message_id) == (OutboxStatus.SENT, 77)

    await page_the_duty_leader(db, district)
    [paged] = [r for r in await rows(db) if r.kind == "page"]
    assert paged.id is not None and paged.page_id is not None
    assert (await outbox.recheck(db, paged.id)).page_status == "active"
    async with db.uow() as uow:
        page = await uow.session.get(Page, paged.page_id)
        assert page is not None
        page.status = "acknowledged"
        await uow.commit()
    assert (await outbox.recheck(db, paged.id)).page_status == "acknowledged"
    with pytest.raises(LookupError):
        await outbox.recheck(db, 10**9)
