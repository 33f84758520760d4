"""The typed callback context every handler receives: the runtime and the reader's language."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from bot.channels import Channel
from bot.clock import Clock
from bot.config import Settings
from bot.i18n import Translator, translator
from bot.leadership import Leadership
from bot.metrics import Metrics
from bot.services import ack_links
from bot.services.accounts import Me
from bot.services.escalation import PagingContext, channel_routes
from bot.uow import Database


@dataclass
class Runtime:
    """What the handlers and jobs share: configuration, database and clock."""

    settings: Settings
    db: Database
    clock: Clock
    # Called after a use case added deadlines or messages: the engine and sender look now.
    wake: Callable[[], None] = field(default=lambda: None)
    # Called after a use case added messages but no deadline: only the senders look now (an
    # engine step would open a write transaction to find nothing new due).
    wake_senders: Callable[[], None] = field(default=lambda: None)
    # Whether this instance takes updates (bot/leadership.py); alone, it always does.
    leadership: Leadership = field(default_factory=Leadership)
    # What /metrics shows of this instance (bot/metrics.py), on its own registry.
    metrics: Metrics = field(default_factory=Metrics)
    # The one-way channels by name; None: built from `[[channels]]` (tests give their own).
    channels: Mapping[str, Channel] | None = None

    @property
    def paging(self) -> PagingContext:
        """What page rendering needs from the configuration."""
        return PagingContext(
            tz=self.settings.bot.tz,
            default_language=self.settings.bot.language,
            channels=channel_routes(self.settings.channels),
            link=self._link_maker(),
            email=self.settings.email is not None,
        )

    def _link_maker(self) -> Callable[[int, int, datetime], str | None] | None:
        """Signed acknowledge links from `[web]` and the link secret; None without either."""
        web, secret = self.settings.web, self.settings.link_secret
        if not web.public_url or not secret:
            return None

        def make(page_id: int, person_id: int, now: datetime) -> str | None:
            return ack_links.link_for(web, secret, page_id, person_id, now)

        return make


class Engine(Protocol):
    """The deadline engine as the app and the sandbox drive it (jobs/engine.py)."""

    def attach(self, queue: Any) -> None:
        """Start its scheduled job."""

    def detach(self) -> None:
        """Arm no more steps (the bot is stopping)."""

    async def step(self) -> object:
        """Handle what is due now."""


class Sender(Protocol):
    """The outbox sender as the app and the sandbox drive it (bot/delivery.py)."""

    def wake(self) -> None:
        """Look at the outbox now."""

    def idle(self) -> bool:
        """Whether nothing is under way but waits on the clock."""

    async def open(self) -> None:
        """Open its connection to the Bot API."""

    async def close(self) -> None:
        """Close its connection to the Bot API."""

    async def run(self, stop: asyncio.Event, *, poll_every: float = 2.0) -> None:
        """Send until stopped, then give back what was claimed and not sent."""


class BotData:
    """`application.bot_data`: the runtime and the background workers, set by the app factory."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.engine: Engine | None = None
        self.sender: Sender | None = None
        # Robot messages (bot/channels/sender.py), built by the app factory.
        self.channel_sender: Sender | None = None


class ZhibanContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """CallbackContext with typed access to the runtime and the linked person."""

    # Set by the gate for every update: the linked person, or None for a stranger.
    me: Me | None = None

    @property
    def runtime(self) -> Runtime:
        """The runtime the app factory installed."""
        runtime = self.bot_data.runtime
        if runtime is None:
            raise RuntimeError("the application was built without a runtime")
        return runtime

    def tr_for(self, update: object) -> Translator:
        """The reader's translator: their own choice, else the configured default.

        A stranger reads in their Telegram client's language.
        """
        default = self.runtime.settings.bot.language
        if self.me is not None:
            return translator(self.me.language or default, default)
        user = update.effective_user if isinstance(update, Update) else None
        return translator(user.language_code if user else None, default)


ZhibanApplication = Application[
    ExtBot[Any], ZhibanContext, dict[Any, Any], dict[Any, Any], BotData, Any
]
