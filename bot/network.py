"""Reaching the Bot API: the configured proxy, secrets kept out of logs, and waiting out a network.

Every Bot or request this process builds for Telegram goes through `bot_request` or
`polling_request`, so `[telegram] proxy` covers every call: getUpdates, replies, the outbox
sender, file downloads and `zhiban doctor`.

They share one TLS context (`tls_context`): each HTTP client building its own read the CA
certificates again, some 30 ms a client, four clients before the first getUpdates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from telegram.error import InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from bot.config import TelegramSettings

log = logging.getLogger(__name__)

# Waits between two tries of a start-up call while Telegram cannot be reached.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


def proxy_url(telegram: TelegramSettings) -> str | None:
    """The configured proxy, or None for a direct connection."""
    return telegram.proxy or None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context for Telegram, as httpx builds it (certifi, SSL_CERT_FILE)."""
    return httpx.create_ssl_context()


def bot_request(
    telegram: TelegramSettings, *, connection_pool_size: int = 256, **timeouts: float
) -> HTTPXRequest:
    """A Bot API request object through the configured proxy (if any); PTB's pool of 256."""
    return HTTPXRequest(
        connection_pool_size=connection_pool_size,
        proxy=proxy_url(telegram),
        httpx_kwargs={"verify": tls_context()},
        **timeouts,  # type: ignore[arg-type]
    )


class PollingRequest(HTTPXRequest):
    """getUpdates' client: a try that could not even connect is one log line.

    python-telegram-bot retries a timed-out getUpdates at once and logs it only at DEBUG; where
    Telegram is blocked, connections to it time out rather than fail, and the log would be
    silent while no update arrives.
    """

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Make the call; log a connect timeout before it goes back to the polling loop."""
        try:
            return await super().do_request(*args, **kwargs)
        except TimedOut as error:
            if isinstance(error.__cause__, httpx.ConnectTimeout):
                log.warning("Telegram not reachable (getUpdates: connect timed out); polling again")
            raise


def polling_request(telegram: TelegramSettings) -> PollingRequest:
    """The request for getUpdates, as python-telegram-bot builds it, through the proxy."""
    return PollingRequest(
        connection_pool_size=1, proxy=proxy_url(telegram), httpx_kwargs={"verify": tls_context()}
    )


def proxy_secrets(proxy: str) -> list[str]:
    """The proxy's password as written and decoded, to keep out of every log line."""
    if not proxy:
        return []
    password = urlsplit(proxy).password
    if not password:
        return []
    return sorted({password, unquote(password)}, key=len, reverse=True)


def redacted(proxy: str) -> str:
    """The proxy address fit to print: scheme, host and port, never the credentials."""
    parts = urlsplit(proxy)
    user = f"{parts.username}:***@" if parts.password else ""
    return f"{parts.scheme}://{user}{parts.hostname}:{parts.port}"


def one_line(error: BaseException) -> str:
    """A network error as one short phrase for a log line ("httpx.ConnectError: …")."""
    text = str(error).strip().splitlines()
    return f"{text[0]}" if text else type(error).__name__


def backoff_delays() -> Iterator[float]:
    """1, 2, 4 … seconds, capped at MAX_BACKOFF, for ever."""
    delay = FIRST_BACKOFF
    while True:
        yield delay
        delay = min(delay * 2, MAX_BACKOFF)


async def until_reachable(
    action: Callable[[], Awaitable[object]],
    *,
    what: str,
    stop: asyncio.Event,
    delays: Iterator[float] | None = None,
) -> bool:
    """Run `action` until Telegram answers it; False if `stop` was set first.

    A network failure (no route, refused, a proxy's 502, a timeout) or a flood wait is one log
    line and a wait (1, 2, 4 … 60 s); anything else Telegram answers (a bad token, a bad
    request) is raised, since trying again would not change it.
    """
    waits = delays or backoff_delays()
    while not stop.is_set():
        try:
            await action()
            return True
        except InvalidToken:
            raise
        except RetryAfter as error:
            wait = error.retry_after
            delay = wait if isinstance(wait, int | float) else wait.total_seconds()
            log.warning("Telegram asks to wait %s s before %s; waiting", delay, what)
        except NetworkError as error:
            delay = next(waits)
            log.warning(
                "Telegram not reachable (%s: %s); retrying in %s s",
                what,
                one_line(error),
                f"{delay:g}",
            )
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    return False


class SecretFilter(logging.Filter):
    """Keep the bot token and the proxy password out of every log line (URLs carry them)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace each secret in the formatted message."""
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "<secret>")
            record.msg = message
            record.args = None
        return True


class NetworkErrorsOnOneLine(logging.Filter):
    """Log a Telegram network error as one line, not a traceback.

    python-telegram-bot logs with the traceback when a call fails, e.g. while polling or when it
    marks updates read on the way out; for a network that is down, what failed is all that helps.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Fold the exception of a network error into the message."""
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, NetworkError) or (
            isinstance(error, TelegramError) and isinstance(error.__cause__, OSError)
        ):
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {one_line(error)})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
