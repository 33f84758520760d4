"""Update delivery: getUpdates long polling with Telegram's conflicts, and webhook pushes."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.params import Params
from bot.sandbox.state import DEFAULT_UPDATE_TYPES, World

_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Webhook:
    """The webhook currently set, and its delivery health."""

    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class UpdateFeed:
    """Hands pending updates to the bot by long polling or by POSTing them to its webhook."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.webhook: Webhook | None = None
        self.webhook_attempts = 3
        self.webhook_retry_delay = 0.05
        self.polls_received = 0
        self._generation = 0
        self._closed = False
        self._sender: asyncio.Task[None] | None = None

    def pending(self) -> list[dict[str, Any]]:
        """Return the queued updates the bot's allowed_updates lets through."""
        return [u for u in self.world.updates if _kind(u) in self.world.allowed_updates]

    def _set_allowed(self, p: Params) -> None:
        allowed = p.get_json("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON object")
        self.world.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        self.world.updates = self.pending()

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            self.world.updates = self.world.updates[offset:]
        else:
            self.world.updates = [u for u in self.world.updates if u["update_id"] >= offset]

    async def get_updates(self, p: Params) -> list[dict[str, Any]]:
        """Answer getUpdates, waiting up to ``timeout`` seconds for something to deliver."""
        if self.webhook is not None:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        limit = min(max(p.get_int("limit") or 100, 1), 100)
        timeout = max(p.get_float("timeout") or 0.0, 0.0)
        self._set_allowed(p)
        self._confirm(p.get_int("offset"))
        self.polls_received += 1
        self._generation += 1
        generation = self._generation
        await self.world.notify()

        def ready() -> bool:
            superseded = generation != self._generation
            return superseded or self._closed or self.webhook is not None or bool(self.pending())

        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.world.wait_until(ready), timeout)
        if generation != self._generation:
            raise ApiError(409, _TERMINATED)
        if self.webhook is not None:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        return self.pending()[:limit]

    async def set_webhook(self, p: Params) -> bool:
        """Answer setWebhook and start pushing updates to the URL."""
        url = p.get_str("url") or ""
        if not url:
            return await self.delete_webhook(p)
        parts = urlsplit(url)
        loopback_http = parts.scheme == "http" and parts.hostname in _LOOPBACK
        if parts.scheme != "https" and not loopback_http:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not parts.hostname:
            raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
        secret = p.get_str("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        max_connections = p.get_int("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        self._set_allowed(p)
        if p.get_bool("drop_pending_updates"):
            self.world.updates.clear()
        await self._stop_sender()
        hook = Webhook(url=url, secret_token=secret, max_connections=max_connections)
        self.webhook = hook
        self._sender = asyncio.create_task(self._deliver(hook), name="sandbox-webhook")
        await self.world.notify()
        return True

    async def delete_webhook(self, p: Params) -> bool:
        """Answer deleteWebhook."""
        if p.get_bool("drop_pending_updates"):
            self.world.updates.clear()
        self.webhook = None
        await self._stop_sender()
        return True

    def webhook_info(self) -> dict[str, Any]:
        """Answer getWebhookInfo."""
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending()),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.world.allowed_updates != DEFAULT_UPDATE_TYPES:
                info["allowed_updates"] = sorted(self.world.allowed_updates)
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    async def webhook_info_method(self, p: Params) -> dict[str, Any]:
        """Answer getWebhookInfo as a method."""
        return self.webhook_info()

    async def close(self) -> None:
        """Release waiting long polls and stop the webhook sender."""
        self._closed = True
        await self._stop_sender()
        await self.world.notify()

    async def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None and not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _deliver(self, hook: Webhook) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while self.webhook is hook and not self._closed:
                await self.world.wait_until(lambda: bool(self.pending()) or self._closed)
                if self._closed:
                    return
                update = self.pending()[0]
                await self._post(session, hook, update)
                self.world.updates = [u for u in self.world.updates if u is not update]
                await self.world.notify()

    async def _post(
        self, session: aiohttp.ClientSession, hook: Webhook, update: dict[str, Any]
    ) -> bool:
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        )
        for attempt in range(self.webhook_attempts):
            try:
                async with session.post(hook.url, json=update, headers=headers) as response:
                    if 200 <= response.status < 300:
                        return True
                    hook.last_error_message = (
                        f"Wrong response from the webhook: {response.status} {response.reason}"
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                hook.last_error_message = f"Connection failed: {exc.__class__.__name__}"
            hook.last_error_date = self.world.timestamp()
            await asyncio.sleep(self.webhook_retry_delay * 2**attempt)
        return False


def _kind(update: dict[str, Any]) -> str:
    return next(key for key in update if key != "update_id")
