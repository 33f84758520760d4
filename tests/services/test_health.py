"""The ops port's figures: outbox due rows and their age, the engine's lag, pages by status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services import deadlines, health, outbox
from bot.uow import Database

NOW = datetime(2026, 12, 2, 0, 15, tzinfo=UTC)


async def test_an_idle_database_has_no_lag_and_every_page_status_at_zero(db: Database) -> None:
    await health.database_answers(db)
    figures = await health.ops_figures(db, now=NOW)
    assert figures == health.OpsFigures(
        pages={"active": 0, "closed": 0, "undeliverable": 0},
        outbox_due=0,
        outbox_oldest_age=0.0,
        engine_lag=0.0,
    )


async def test_lag_and_outbox_age_count_from_the_oldest_due_row_only(db: Database) -> None:
    async with db.uow() as uow:
        for key, due in (("a", NOW - timedelta(seconds=90)), ("b", NOW + timedelta(hours=1))):
            await deadlines.schedule(
                uow.session,
                key=f"test:{key}",
                kind="test",
                subject_type="test",
                subject_id=1,
                due_at=due,
                now=NOW - timedelta(hours=1),
            )
        for created, not_before in (
            (NOW - timedelta(seconds=40), None),
            (NOW - timedelta(seconds=5), None),
            (NOW, NOW + timedelta(minutes=5)),  # not due yet: not in the backlog
        ):
            await outbox.enqueue(
                uow.session, now=created, text="hi", chat_id=-100, not_before=not_before
            )
        await uow.commit()
    figures = await health.ops_figures(db, now=NOW)
    assert (figures.engine_lag, figures.outbox_due, figures.outbox_oldest_age) == (90.0, 2, 40.0)
