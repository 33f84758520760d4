"""What the three group robots share: one JSON POST with a timeout, and how a failure is told."""

from __future__ import annotations

import functools
import json
import re
import ssl
from typing import Any

import httpx

from bot.channels import ChannelError, ChannelMessage

# A page that waits longer than this on a robot holds up the channel's other pages; the sender
# retries a timeout later, so a short wait loses nothing.
DEFAULT_TIMEOUT = 5.0
ELLIPSIS = "…"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every send: loading the CA bundle costs more than the send itself."""
    return httpx.create_ssl_context()


async def post_json(kind: str, url: str, body: dict[str, Any], wait: float) -> dict[str, Any]:
    """POST `body` to a robot's webhook and return its JSON answer, or raise ChannelError.

    Transport trouble (timeout, refused connection, reset) and HTTP 5xx may pass: retry=True.
    HTTP 429 is a rate limit: retry=True. Any other 4xx (a wrong or deleted webhook): retry=False.
    """
    # trust_env=False: the robots are domestic services; an HTTPS_PROXY set for reaching
    # Telegram from mainland China must not carry them.
    try:
        async with httpx.AsyncClient(timeout=wait, trust_env=False, verify=_tls()) as client:
            response = await client.post(
                url,
                content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        # A URL mistyped into [[channels]]: no later try will mend it.
        reason = f"{kind}: the webhook URL is not usable ({type(error).__name__})"
        raise ChannelError(reason, retry=False, code="url") from error
    except httpx.TimeoutException as error:
        reason = f"{kind}: no answer within {wait:g}s"
        raise ChannelError(reason, retry=True, code="timeout") from error
    except httpx.TransportError as error:
        reason = f"{kind}: {type(error).__name__}: {error}".rstrip(": ")
        raise ChannelError(reason, retry=True, code="network") from error
    status = response.status_code
    if status >= 500 or status == 429:
        raise ChannelError(f"{kind}: HTTP {status}", retry=True, code=f"HTTP {status}")
    if status >= 400:
        raise ChannelError(f"{kind}: HTTP {status}", retry=False, code=f"HTTP {status}")
    try:
        answer = response.json()
    except ValueError as error:
        raise ChannelError(f"{kind}: the answer is not JSON", retry=False) from error
    if not isinstance(answer, dict):
        raise ChannelError(f"{kind}: the answer is not a JSON object", retry=False)
    return answer


def fit_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 (ending in an ellipsis when cut)."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    room = max_bytes - len(ELLIPSIS.encode("utf-8"))
    cut = text.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
    return cut + ELLIPSIS


def compose_text(message: ChannelMessage, *, tail: str = "", max_bytes: int | None = None) -> str:
    """Title, body, link and `tail` as plain lines; only the body is shortened to fit."""
    head = message.title.strip()
    ending = "\n".join(part for part in (message.link or "", tail) if part)
    body = message.text.strip()
    if max_bytes is not None:
        fixed = len(f"{head}\n\n\n{ending}".encode())
        body = fit_utf8(body, max(max_bytes - fixed, 0))
    text = "\n".join(part for part in (head, body, ending) if part)
    # Only an absurd title or link is longer than the limit alone; then cut the whole.
    return text if max_bytes is None else fit_utf8(text, max_bytes)


def platform_reason(kind: str, label: str, code: int, message: object) -> str:
    """The platform's own words, kept short: 'dingtalk errcode 310000: sign not match'."""
    words = " ".join(str(message or "").split())
    if len(words) > 200:
        words = words[:199] + ELLIPSIS
    return f"{kind} {label} {code}: {words}" if words else f"{kind} {label} {code}"


_MAINLAND_MOBILE = re.compile(r"^(?:\+86|0086)?(1\d{10})$")


def mention_mobiles(phones: tuple[str, ...]) -> list[str]:
    """The phones as the robots match group members: mainland mobiles without +86, no repeats.

    A roster may hold "+8613800001111"; WeCom and DingTalk know the member as "13800001111".
    """
    found: list[str] = []
    for phone in phones:
        plain = re.sub(r"[\s\-()]", "", phone)
        match = _MAINLAND_MOBILE.match(plain)
        mobile = match.group(1) if match else plain
        if mobile and mobile not in found:
            found.append(mobile)
    return found
