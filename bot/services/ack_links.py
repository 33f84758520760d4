"""Acknowledge from a link: signed tokens for one person and one page, and what a press there does.

A link is `[web] public_url` + "/a/" + a token: the page, the person, an expiry and a random
nonce, signed with HMAC-SHA256 under the secret in `ZHIBAN_LINK_SECRET`, in URL-safe base64
(50 characters). Opening it is safe to repeat; pressing Acknowledge or Pass up there is the same
use case as the Telegram page's button, with the token's person as the presser, in one
transaction that also records the nonce (an audit entry), so a token acts at most once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action
from bot.config import LONGEST_LINK_VALIDITY, Level, WebSettings
from bot.errors import NotAllowed, NotFound, ZhibanError
from bot.i18n import N_
from bot.models import AuditEntry, Escalation, Page, Person
from bot.services import audit, contacts
from bot.services.escalation import actions, matter
from bot.services.escalation.actions import Outcome
from bot.services.escalation.views import PagingContext, language, reached_levels, render
from bot.uow import Database

_VERSION = 1
_PAYLOAD = struct.Struct(">BIII8s")  # version, page id, person id, expiry (Unix seconds), nonce
_TAG_BYTES = 16  # HMAC-SHA256 cut to 128 bits: plenty against online guessing, short in a link
_TOKEN_LENGTH = 50  # base64 of 21 + 16 bytes, without padding
_TOKEN_RE = re.compile(rf"^[A-Za-z0-9_-]{{{_TOKEN_LENGTH}}}$")
_CONTEXT = b"zhiban ack link\x00"  # keeps these tags apart from any other use of the secret
NONCE_BYTES = 8
PATH = "/a/"

# The audit entry that marks a token used: its account column holds "link:<nonce>".
USED = "link.used"
REFUSED = "link.refused"

ACK = "ack"
PASS_UP = "up"


class Refusal(StrEnum):
    """Why a token was not accepted."""

    MALFORMED = "malformed"
    TAMPERED = "tampered"
    EXPIRED = "expired"


class LinkToken(NamedTuple):
    """What a valid token says: whose page, for whom, and the nonce that spends it."""

    page_id: int
    person_id: int
    nonce: str  # hex
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _tag(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), _CONTEXT + payload, hashlib.sha256).digest()[
        :_TAG_BYTES
    ]


def make_token(
    secret: str, *, page_id: int, person_id: int, expires_at: datetime, nonce: bytes
) -> str:
    """Sign a token for one person and one page, valid until `expires_at`."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce is {NONCE_BYTES} bytes")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = _PAYLOAD.pack(_VERSION, page_id, person_id, int(expires_at.timestamp()), nonce)
    return _b64(payload + _tag(secret, payload))


def _verified(secret: str, token: str) -> LinkToken | Refusal:
    """The token's contents if it is well formed and signed with `secret`, expired or not."""
    if not _TOKEN_RE.match(token):
        return Refusal.MALFORMED
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return Refusal.MALFORMED
    if _b64(raw) != token:  # the last character's spare bits set: one token, one spelling
        return Refusal.MALFORMED
    payload, tag = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if len(tag) != _TAG_BYTES:
        return Refusal.MALFORMED
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return Refusal.TAMPERED
    version, page_id, person_id, expires, nonce = _PAYLOAD.unpack(payload)
    if version != _VERSION:
        return Refusal.MALFORMED
    return LinkToken(page_id, person_id, nonce.hex(), datetime.fromtimestamp(expires, UTC))


def read_token(secret: str, token: str, now: datetime) -> LinkToken | Refusal:
    """The page, person and nonce of a valid token; else why it is refused."""
    found = _verified(secret, token)
    if isinstance(found, LinkToken) and now >= found.expires_at:
        return Refusal.EXPIRED
    return found


def link_for(
    settings: WebSettings, secret: str | None, page_id: int, person_id: int, now: datetime
) -> str | None:
    """The acknowledge link for a person's page; None when no public address or no secret."""
    if not settings.public_url or not secret:
        return None
    token = make_token(
        secret,
        page_id=page_id,
        person_id=person_id,
        expires_at=now + settings.link_valid_for,
        nonce=secrets.token_bytes(NONCE_BYTES),
    )
    return settings.public_url + PATH + token


# The sentences of a refusal on the link's page, with the HTTP status each answers with.
NOT_VALID = N_("This link is not valid. Open the page in Telegram, or call the duty desk.")
EXPIRED = N_("This link has expired. Open the page in Telegram, or call the duty desk.")
USED_ALREADY = N_("This link has been used already. Open it again to see where the matter stands.")
UNKNOWN_ACTION = N_("Zhiban does not know this action; nothing was changed.")
GONE = N_("This page no longer exists.")
NOT_ON_ROSTER = N_("You are no longer on the duty roster; nothing was changed.")


class LinkRefused(ZhibanError):
    """A link or a press on its page refused: one sentence, an HTTP status, the reader's language.

    `language` is None when the token could not be read: the sentence is then shown in every
    language.
    """

    def __init__(
        self, message: str, /, *, status: int, reason: str, language: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.language = language


@dataclass(frozen=True)
class Closed:
    """Who closed a page's level, and when: acknowledged (or passed up), or resolved."""

    kind: str  # "acknowledged" | "resolved"
    by_name: str
    at: datetime


@dataclass(frozen=True)
class LinkView:
    """What the link's page shows: the page's text as Telegram shows it, and what may be pressed."""

    language: str
    person_name: str
    text_html: str  # Telegram's HTML subset (<b>), everything else escaped
    closed: Closed | None
    can_pass_up: bool


@dataclass(frozen=True)
class LinkOutcome:
    """A press on the link's page, done: the use case's outcome, in the presser's language."""

    language: str
    outcome: Outcome


def _refusal_for(found: Refusal) -> tuple[str, int]:
    if found is Refusal.EXPIRED:
        return EXPIRED, 410
    return NOT_VALID, 400 if found is Refusal.MALFORMED else 403


async def _audit_refusal(
    db: Database,
    *,
    refusal: LinkRefused,
    now: datetime,
    action: str,
    token: LinkToken | None,
    remote: str | None,
) -> None:
    async with db.uow() as uow:
        person_id = None
        if token is not None and await uow.session.get(Person, token.person_id) is not None:
            person_id = token.person_id
        await audit.record(
            uow.session,
            at=now,
            action=REFUSED,
            actor_person_id=person_id,
            actor_account=f"link:{token.nonce}" if token is not None else "web",
            subject_type="page" if token is not None else None,
            subject_id=token.page_id if token is not None else None,
            allowed=False,
            detail={"reason": refusal.reason, "action": action[:16], "remote": remote},
        )
        await uow.commit()


async def _language_of(db: Database, person_id: int, ctx: PagingContext) -> str:
    async with db.read() as uow:
        person = await uow.session.get(Person, person_id)
        return language(person, ctx) if person is not None else ctx.default_language


async def _readable(
    db: Database,
    *,
    secret: str,
    token: str,
    action: str,
    now: datetime,
    ctx: PagingContext,
    remote: str | None,
) -> LinkToken:
    """The token's contents, or a refusal (audited) when it is malformed, forged or expired."""
    found = read_token(secret, token, now)
    if isinstance(found, LinkToken):
        return found
    message, status = _refusal_for(found)
    signed = _verified(secret, token)  # an expired token still says whose it is
    known = signed if isinstance(signed, LinkToken) else None
    refusal = LinkRefused(
        message,
        status=status,
        reason=found.value,
        language=await _language_of(db, known.person_id, ctx) if known else None,
    )
    await _audit_refusal(db, refusal=refusal, now=now, action=action, token=known, remote=remote)
    raise refusal


async def _page_for(
    session: AsyncSession, link: LinkToken, *, action: Action, lock: bool
) -> tuple[Page, Escalation, Person]:
    """The token's page, its matter (locked when about to change) and person, checked as a press."""
    page = await session.get(Page, link.page_id)
    person = await session.get(Person, link.person_id)
    if page is None or person is None:
        raise NotFound(GONE)
    escalation = (
        await matter.lock(session, page.escalation_id)
        if lock
        else await session.get(Escalation, page.escalation_id)
    )
    if escalation is None:
        raise NotFound(GONE)
    if not person.active:
        raise NotAllowed(NOT_ON_ROSTER)
    await actions.check_press(session, escalation, page, person_id=link.person_id, action=action)
    return page, escalation, person


def _as_refusal(error: ZhibanError, language: str) -> LinkRefused:
    if isinstance(error, NotFound):
        return LinkRefused(GONE, status=404, reason="gone", language=language)
    refusal = LinkRefused(error.message, status=403, reason="not_allowed", language=language)
    refusal.params = error.params
    return refusal


async def _closed(session: AsyncSession, escalation: Escalation, page: Page) -> Closed | None:
    if escalation.status == matter.RESOLVED and escalation.resolved_at is not None:
        by = escalation.resolved_by_id
        name = (await contacts.person(session, by)).name if by else ""
        return Closed("resolved", name, escalation.resolved_at)
    for reached in await reached_levels(session, escalation):
        if reached.level.value == page.level and reached.acknowledged_at is not None:
            return Closed("acknowledged", reached.acknowledged_by or "", reached.acknowledged_at)
    return None


async def view_link(
    db: Database,
    *,
    secret: str,
    token: str,
    now: datetime,
    ctx: PagingContext,
    remote: str | None = None,
) -> LinkView:
    """What the link's page shows now (safe to repeat); a refusal when the token or person fails."""
    link = await _readable(
        db, secret=secret, token=token, action="view", now=now, ctx=ctx, remote=remote
    )
    lang = await _language_of(db, link.person_id, ctx)
    async with db.read() as uow:
        session = uow.session
        try:
            page, escalation, person = await _page_for(
                session, link, action=Action.PAGE_ACKNOWLEDGE, lock=False
            )
        except (NotFound, NotAllowed) as error:
            refusal = _as_refusal(error, lang)
        else:
            text, _buttons = await render(session, escalation, page, person, ctx, now=now)
            policy = matter.policy_of(escalation)
            level = Level(page.level)
            position = policy.levels.index(level) if level in policy.levels else 0
            return LinkView(
                language=lang,
                person_name=person.name,
                text_html=text,
                closed=await _closed(session, escalation, page),
                can_pass_up=position + 1 < len(policy.levels),
            )
    await _audit_refusal(db, refusal=refusal, now=now, action="view", token=link, remote=remote)
    raise refusal


_USE_CASES = {ACK: actions.acknowledge, PASS_UP: actions.pass_up}
_CHECKED_AS = {ACK: Action.PAGE_ACKNOWLEDGE, PASS_UP: Action.PAGE_PASS_UP}


async def _spent(session: AsyncSession, link: LinkToken) -> bool:
    """Whether the token was used for a press: its mark can only be from while it was valid.

    No link is valid longer than `LONGEST_LINK_VALIDITY`, so the lookup reads the audit log's last
    weeks through its index on `at`, not a year of it.
    """
    statement = select(AuditEntry.id).where(
        col(AuditEntry.at) >= link.expires_at - LONGEST_LINK_VALIDITY,
        AuditEntry.action == USED,
        AuditEntry.actor_account == f"link:{link.nonce}",
    )
    return (await session.exec(statement)).first() is not None


async def press_link(
    db: Database,
    *,
    secret: str,
    token: str,
    action: str,
    now: datetime,
    ctx: PagingContext,
    remote: str | None = None,
) -> LinkOutcome:
    """Acknowledge or pass up from the link's page, as the Telegram button does, at most once.

    The matter is locked before the nonce is looked up, so two presses with one token take turns
    and the second finds the first's mark.
    """
    link = await _readable(
        db, secret=secret, token=token, action=action, now=now, ctx=ctx, remote=remote
    )
    lang = await _language_of(db, link.person_id, ctx)
    use_case = _USE_CASES.get(action)
    refusal: LinkRefused
    if use_case is None:
        refusal = LinkRefused(UNKNOWN_ACTION, status=400, reason="unknown_action", language=lang)
    else:
        async with db.uow() as uow:
            session = uow.session
            try:
                page, escalation, _person = await _page_for(
                    session, link, action=_CHECKED_AS[action], lock=True
                )
                if await _spent(session, link):
                    raise LinkRefused(USED_ALREADY, status=409, reason="replayed", language=lang)
                outcome = await use_case(
                    session, page_id=link.page_id, person_id=link.person_id, now=now, ctx=ctx
                )
            except LinkRefused as error:
                refusal = error
            except (NotFound, NotAllowed) as error:
                refusal = _as_refusal(error, lang)
            else:
                await audit.record(
                    session,
                    at=now,
                    action=USED,
                    actor_person_id=link.person_id,
                    actor_account=f"link:{link.nonce}",
                    subject_type="page",
                    subject_id=page.id,
                    unit_id=escalation.unit_id,
                    detail={"action": action, "escalation": escalation.id, "remote": remote},
                )
                await uow.commit()
                return LinkOutcome(lang, outcome)
    await _audit_refusal(db, refusal=refusal, now=now, action=action, token=link, remote=remote)
    raise refusal
