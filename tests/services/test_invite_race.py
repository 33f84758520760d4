"""One invite, two accounts redeeming it at the same moment: exactly one is linked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from factories import District
from sqlmodel import col, select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.errors import InvalidInput
from bot.models import Account
from bot.services import accounts
from bot.uow import Database

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def test_two_accounts_redeeming_one_invite_at_once_only_one_is_linked(
    db: Database, district: District, database_url: str
) -> None:
    issued = await accounts.issue_invites(
        db, staff_nos=["T008"], now=NOW, valid_for=timedelta(days=7)
    )
    code = issued[0].code
    # Two connection pools, as two handlers (or two instances) would use.
    other = Database(create_engine(DatabaseSettings(url=database_url)))
    try:
        outcomes = await asyncio.gather(
            *(
                accounts.redeem(
                    database, code=code, external_id=chat, chat_id=chat, username=None, now=NOW
                )
                for database, chat in ((db, 9001), (other, 9002))
            ),
            return_exceptions=True,
        )
    finally:
        await other.dispose()
    linked = [outcome for outcome in outcomes if isinstance(outcome, accounts.Me)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, InvalidInput)]
    assert len(linked) == 1 and len(refused) == 1, outcomes
    assert "already been used" in str(refused[0].args[0])
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(Account).where(
                Account.person_id == district.people["nolink"], col(Account.unlinked_at).is_(None)
            )
        )
        assert len(rows.all()) == 1
