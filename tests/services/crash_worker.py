"""A worker process that dies by SIGKILL in the middle of its work (run by test_engine.py).

Usage: crash_worker.py DATABASE_URL deadlines|outbox|engine
- deadlines: claims every due deadline, writes an outbox row for each, then waits before commit;
- outbox: claims every due outbox row for sending and commits the claim, then waits.
It prints "ready" when it is at the point where the test kills it.
- engine: a second engine process (not killed): handles due deadlines in batches of 20 and
  prints how many it handled.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.models import Deadline
from bot.services import deadlines, outbox
from bot.services.engine import run_due
from bot.uow import Database

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def notice(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
    """One outbox message per deadline, as the test's handler writes it."""
    await outbox.enqueue(
        session, now=now, text=f"#{deadline.subject_id}", chat_id=deadline.subject_id
    )


async def main(url: str, mode: str) -> None:
    db = Database(create_engine(DatabaseSettings(url=url)))
    if mode == "engine":
        print("ready", flush=True)
        result = await run_due(db, now=NOW, handlers={"notice": notice}, worker="process", batch=20)
        print(result.handled, flush=True)
        await db.dispose()
        return
    async with db.uow() as uow:
        if mode == "deadlines":
            for deadline in await deadlines.claim_due(uow.session, now=NOW, limit=1000):
                await outbox.enqueue(uow.session, now=NOW, text="x", chat_id=deadline.subject_id)
            print("ready", flush=True)
            await asyncio.sleep(60)  # killed here, before the commit
        else:
            await outbox.claim(
                uow.session, now=NOW, limit=1000, worker="doomed", lease=timedelta(minutes=2)
            )
            await uow.commit()
            print("ready", flush=True)
            await asyncio.sleep(60)  # killed here, after the claim and before any send


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
