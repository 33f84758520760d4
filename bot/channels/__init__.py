"""One-way channels a page can go out on besides Telegram: group robots and e-mail (SPEC §4).

Every kind implements `Channel`: it sends one `ChannelMessage` and raises `ChannelError` saying
whether trying again later may help. Throttling, retries and the outbox rows around a send are
the channel sender's (not a channel's) business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChannelMessage:
    """What a one-way channel carries: a page or notice, its link, whom to mention or mail."""

    title: str  # one line: what happened, where (a mail's subject; a robot message's heading)
    text: str  # plain text, several lines: the page as Telegram shows it, without buttons
    link: str | None = None  # the signed acknowledge link (bot/services/ack_links.py), if any
    mention_phones: tuple[str, ...] = ()  # robots @-mention these mobile numbers
    emails: tuple[str, ...] = ()  # e-mail: the recipients
    language: str = "zh"


@dataclass
class ChannelError(Exception):
    """A send that failed: `retry` when trying again later may help (rate limit, 5xx, timeout)."""

    reason: str
    retry: bool
    code: str | None = field(default=None)  # the platform's error code, when it gave one

    def __str__(self) -> str:
        return self.reason


class Channel(Protocol):
    """A configured channel (one `[[channels]]` table, or the `[email]` settings)."""

    name: str
    kind: str  # "wecom" | "dingtalk" | "feishu" | "email"
    per_minute: int  # the platform's rate limit for this channel (robots: about 20 a minute)

    async def send(self, message: ChannelMessage) -> None:
        """Deliver one message, or raise ChannelError."""
