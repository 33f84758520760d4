"""Pages beyond Telegram: which one-way channels a page event goes to, and what they carry.

A page's channels are the `[[channels]]` whose `units` hold the page's unit (not a unit above
it) and those its step names. A group robot gets one message per page event — a step paging
at one unit — mentioning the phones of everyone paged there, not one per person: the pages
written in one transaction for the same step, unit and channel share one outbox row. When
Telegram cannot deliver a page (no linked account, the bot blocked), its channels are told
before the next contact is paged: if the event's message is still being written in the same
transaction, the person is marked in it ("not reachable on Telegram"); otherwise a message of
its own goes out, mentioning that person, and a stand-in paged at the same unit joins it.
Repeats of a step go to Telegram only.

The rows are outbox rows with `channel` set (kind "channel"); the channel sender
(bot/channels/sender.py) sends them at each channel's pace.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, Translator, translator
from bot.models import Escalation, OutboxMessage, Page, Person, Unit
from bot.services import contacts
from bot.services.escalation import matter
from bot.services.escalation.views import PagingContext, drill_lines, language, render

KIND = "channel"
# The channel name of `[email]` (bot/channels/registry.py registers it under this name).
EMAIL_CHANNEL = "email"
PAGED_LINE = N_("👤 Paged: {people}")
UNREACHABLE_MARK = N_("{person} (📵 not reachable on Telegram)")
FALLBACK_LINE = N_("📵 Telegram could not deliver this page to {name}; this group is told instead.")

# session.info key: this transaction's event rows, by (channel, escalation, step, unit).
_EVENTS = "zhiban.channel_events"
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """A page's HTML as plain text (robots show no Telegram markup)."""
    return html.unescape(_TAG.sub("", text))


def channels_of(escalation: Escalation, page: Page, unit: Unit, ctx: PagingContext) -> list[str]:
    """The channels of one page: its unit's, then those its step names, each once."""
    names = list(ctx.channels.at(unit.code))
    steps = matter.policy_of(escalation).steps
    if 0 <= page.step < len(steps):
        names += [name for name in steps[page.step].channels if name not in names]
    return names


def _person_entry(
    person: Person, unreachable: bool, *, page: Page, ctx: PagingContext, now: datetime
) -> dict[str, Any]:
    link = None
    if ctx.link is not None and page.id is not None and person.id is not None:
        link = ctx.link(page.id, person.id, now)
    return {
        "id": person.id,
        "name": person.name,
        "phone": person.phone,
        "unreachable": unreachable,
        "link": link,
    }


def _people_line(tr: Translator, people: list[dict[str, Any]]) -> str:
    shown = []
    for entry in people:
        who = f"{entry['name']} {entry['phone']}" if entry.get("phone") else str(entry["name"])
        shown.append(tr._(UNREACHABLE_MARK, person=who) if entry.get("unreachable") else who)
    return tr._(PAGED_LINE, people=tr.list_text(shown))


def _body(
    tr: Translator,
    *,
    head: str,
    title: str,
    people: list[dict[str, Any]],
    page_ids: list[int],
    language: str,
    extra: str = "",
) -> dict[str, Any]:
    # Each link is bound to its person: one person's rides as the message's link, several
    # people's go one line each ("李秀英: <link>").
    linked = [entry for entry in people if entry.get("link")]
    link = linked[0]["link"] if len(people) == 1 and linked else None
    lines = "" if link else "\n".join(f"{entry['name']}: {entry['link']}" for entry in linked)
    text = "\n".join(part for part in (head, extra, _people_line(tr, people), lines) if part)
    return {
        "title": title,
        "text": text,
        "link": link,
        "mention_phones": list(dict.fromkeys(p["phone"] for p in people if p.get("phone"))),
        "language": language,
        "head": head,
        "extra": extra,
        "people": people,
        "page_ids": page_ids,
    }


async def _words(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person: Person,
    ctx: PagingContext,
    *,
    now: datetime,
    late_since: datetime | None,
    reader_language: str | None = None,
) -> tuple[str, str]:
    """The page as a group reads it (the configured language, or `reader_language`)."""
    reading = reader_language or ctx.default_language
    text, _buttons = await render(
        session,
        escalation,
        page,
        person,
        ctx,
        now=now,
        late_since=late_since,
        reader_language=reading,
    )
    head = plain(text)
    place = await contacts.unit(session, matter.place_unit_id(escalation))
    what = next((line for line in head.splitlines() if line.startswith("🚨")), head.splitlines()[0])
    title = f"{what} · {place.name}"
    if escalation.is_drill:  # a group must not take an exercise for the real thing
        title = " ".join([*drill_lines(translator(reading), escalation), title])
    return title, head


def _events(session: AsyncSession) -> dict[tuple[str, int, int, int], OutboxMessage]:
    events: dict[tuple[str, int, int, int], OutboxMessage] = session.info.setdefault(_EVENTS, {})
    # A row written in a savepoint that was rolled back (a failed engine handler) is gone.
    for key, row in list(events.items()):
        if not sa.inspect(row).persistent:
            del events[key]
    return events


async def note_page(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person: Person,
    unit: Unit,
    *,
    ctx: PagingContext,
    now: datetime,
    late_since: datetime | None,
    reachable: bool,
) -> None:
    """Queue a just-written page on its channels, in its event's message if one is being written.

    With `[email]` configured, a person with an address is also mailed the page, alone.
    """
    if ctx.email and person.email:
        await _mail(session, escalation, page, person, ctx=ctx, now=now, late_since=late_since)
    names = channels_of(escalation, page, unit, ctx)
    if not names:
        return
    assert escalation.id is not None and page.id is not None
    tr = translator(ctx.default_language)
    events = _events(session)
    words: tuple[str, str] | None = None
    for name in names:
        key = (name, escalation.id, page.step, page.unit_id)
        row = events.get(key)
        if row is not None:
            body = dict(row.body)
            entry = _person_entry(person, not reachable, page=page, ctx=ctx, now=now)
            people = [*body["people"], entry]
            row.body = _body(
                tr,
                head=body["head"],
                title=body["title"],
                people=people,
                page_ids=[*body["page_ids"], page.id],
                language=body["language"],
                extra=body.get("extra") or "",
            )
            continue
        if words is None:
            words = await _words(
                session, escalation, page, person, ctx, now=now, late_since=late_since
            )
        title, head = words
        row = OutboxMessage(
            created_at=now,
            not_before=now,
            kind=KIND,
            channel=name,
            page_id=page.id,
            method=KIND,
            body=_body(
                tr,
                head=head,
                title=title,
                people=[_person_entry(person, not reachable, page=page, ctx=ctx, now=now)],
                page_ids=[page.id],
                language=ctx.default_language,
            ),
            late=late_since is not None,
        )
        session.add(row)
        events[key] = row
    await session.flush()


async def note_undeliverable(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    *,
    ctx: PagingContext,
    now: datetime,
) -> None:
    """Tell a page's channels that Telegram could not deliver it, before the next contact."""
    unit = await contacts.unit(session, page.unit_id)
    names = channels_of(escalation, page, unit, ctx)
    if not names:
        return
    assert escalation.id is not None and page.id is not None
    person = await contacts.person(session, page.person_id)
    tr = translator(ctx.default_language)
    events = _events(session)
    words: tuple[str, str] | None = None
    for name in names:
        row = events.get((name, escalation.id, page.step, page.unit_id))
        if row is not None and page.id in row.body["page_ids"]:
            body = dict(row.body)
            people = [
                {**entry, "unreachable": True} if entry.get("id") == person.id else entry
                for entry in body["people"]
            ]
            row.body = _body(
                tr,
                head=body["head"],
                title=body["title"],
                people=people,
                page_ids=body["page_ids"],
                language=body["language"],
                extra=body.get("extra") or "",
            )
            continue
        if words is None:
            words = await _words(session, escalation, page, person, ctx, now=now, late_since=None)
        title, head = words
        row = OutboxMessage(
            created_at=now,
            not_before=now,
            kind=KIND,
            channel=name,
            page_id=page.id,
            method=KIND,
            body=_body(
                tr,
                head=head,
                title=title,
                people=[_person_entry(person, True, page=page, ctx=ctx, now=now)],
                page_ids=[page.id],
                language=ctx.default_language,
                extra=tr._(FALLBACK_LINE, name=person.name),
            ),
        )
        session.add(row)
        # The stand-in paged next at the same unit joins this message.
        events[(name, escalation.id, page.step, page.unit_id)] = row
    await session.flush()


async def _mail(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person: Person,
    *,
    ctx: PagingContext,
    now: datetime,
    late_since: datetime | None,
) -> None:
    """Queue one mail of the page to its person alone, in their language, with their own link."""
    reading = language(person, ctx)
    title, head = await _words(
        session,
        escalation,
        page,
        person,
        ctx,
        now=now,
        late_since=late_since,
        reader_language=reading,
    )
    body = _body(
        translator(reading),
        head=head,
        title=title,
        people=[_person_entry(person, False, page=page, ctx=ctx, now=now)],
        page_ids=[page.id or 0],
        language=reading,
    )
    # The mail is to this person: no "paged" line naming them to themselves.
    body["text"] = head
    body["emails"] = [person.email]
    body["mention_phones"] = []
    session.add(
        OutboxMessage(
            created_at=now,
            not_before=now,
            kind=KIND,
            channel=EMAIL_CHANNEL,
            page_id=page.id,
            method=KIND,
            body=body,
            late=late_since is not None,
        )
    )
