"""Updates of different chats side by side, one chat's in order, a flood holding no worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Chat, Message, Update, User

from bot.updates import PerPersonUpdates, line_of

T = 1_764_000_000


def _update(update_id: int, chat_id: int, *, kind: str = "private") -> Update:
    # In a group each update comes from someone else; a private chat is its person's.
    user_id = 1000 + update_id if kind != "private" else chat_id
    user = User(id=user_id, first_name="u", is_bot=False)
    chat = Chat(id=chat_id, type=kind)
    message = Message(message_id=update_id, date=T, chat=chat, from_user=user, text=f"m{update_id}")  # type: ignore[arg-type]
    return Update(update_id=update_id, message=message)


class Recorder:
    """Handling that waits for a go-ahead per update and notes starts and ends."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.in_work = 0
        self.most_in_work = 0

    def gate(self, update_id: int) -> asyncio.Event:
        return self.gates.setdefault(update_id, asyncio.Event())

    async def handle(self, update: Update) -> None:
        self.in_work += 1
        self.most_in_work = max(self.most_in_work, self.in_work)
        self.events.append(f"start {update.update_id}")
        await self.gate(update.update_id).wait()
        self.events.append(f"end {update.update_id}")
        self.in_work -= 1


async def _feed(processor: PerPersonUpdates, recorder: Recorder, updates: list[Update]) -> Any:
    """Start the updates in order, as python-telegram-bot does: a task each."""
    tasks = [asyncio.create_task(processor.process_update(u, recorder.handle(u))) for u in updates]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return tasks


async def test_two_chats_are_handled_side_by_side() -> None:
    processor, recorder = PerPersonUpdates(workers=4), Recorder()
    tasks = await _feed(processor, recorder, [_update(1, 101), _update(2, 202)])
    assert recorder.events == ["start 1", "start 2"]  # the second did not wait for the first
    recorder.gate(2).set()
    recorder.gate(1).set()
    await asyncio.gather(*tasks)
    assert recorder.events == ["start 1", "start 2", "end 2", "end 1"]


async def test_one_chat_is_handled_in_the_order_it_wrote() -> None:
    processor, recorder = PerPersonUpdates(workers=4), Recorder()
    tasks = await _feed(processor, recorder, [_update(i, 101) for i in (1, 2, 3)])
    assert recorder.events == ["start 1"]
    for i in (3, 2, 1):  # later ones are ready first; they still wait their turn
        recorder.gate(i).set()
    await asyncio.gather(*tasks)
    assert recorder.events == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
    assert processor._lines == {}  # a line nobody waits in is forgotten


async def test_a_flooding_chat_holds_one_worker_and_others_go_on() -> None:
    processor, recorder = PerPersonUpdates(workers=2), Recorder()
    flood = [_update(i, 101) for i in range(1, 21)]
    tasks = await _feed(processor, recorder, [*flood, _update(100, 202), _update(200, 303)])
    # one of the flood at work, the other chats take the second worker in turn
    assert recorder.events == ["start 1", "start 100"]
    recorder.gate(100).set()
    await asyncio.sleep(0.01)
    assert recorder.events[-1] == "start 200"
    for gate in (200, *range(1, 21)):
        recorder.gate(gate).set()
    await asyncio.gather(*tasks)
    assert recorder.most_in_work == 2
    flood_starts = [e for e in recorder.events if e.startswith("start") and int(e[6:]) <= 20]
    assert flood_starts == [f"start {i}" for i in range(1, 21)]


async def test_a_group_keeps_one_line_for_everyone_in_it() -> None:
    one, two = _update(1, -500, kind="group"), _update(2, -500, kind="group")
    assert line_of(one) == line_of(two) == -500
    assert line_of(_update(3, 101)) == 101
    assert line_of(object()) is None


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers"):
        PerPersonUpdates(workers=0)


async def test_answered_returns_at_once_when_nothing_is_in_hand() -> None:
    processor = PerPersonUpdates(workers=2)
    assert await asyncio.wait_for(processor.answered(within=60.0), 1.0) is True


async def test_answered_waits_for_every_update_in_hand_waiting_ones_included() -> None:
    processor, recorder = PerPersonUpdates(workers=1), Recorder()
    # 1 at work, 2 behind it in the same chat, 3 waiting for the one worker
    tasks = await _feed(processor, recorder, [_update(1, 101), _update(2, 101), _update(3, 202)])
    assert processor.in_hand == 3
    waiter = asyncio.create_task(processor.answered(within=60.0))
    for update_id in (1, 2):
        recorder.gate(update_id).set()
        await asyncio.sleep(0.01)
        assert not waiter.done()  # update 3 is still in hand
    recorder.gate(3).set()
    assert await asyncio.wait_for(waiter, 1.0) is True
    await asyncio.gather(*tasks)
    assert processor.in_hand == 0


async def test_answered_gives_up_after_within_and_says_so() -> None:
    processor, recorder = PerPersonUpdates(workers=1), Recorder()
    tasks = await _feed(processor, recorder, [_update(1, 101)])
    assert await asyncio.wait_for(processor.answered(within=0.05), 1.0) is False
    recorder.gate(1).set()
    await asyncio.gather(*tasks)
    assert await processor.answered(within=0.05) is True


async def test_a_failing_update_still_counts_as_answered() -> None:
    processor = PerPersonUpdates(workers=1)

    async def broken() -> None:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await processor.process_update(_update(1, 101), broken())
    assert processor.in_hand == 0
    assert await asyncio.wait_for(processor.answered(within=60.0), 1.0) is True
