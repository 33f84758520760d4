r"""Feishu (飞书) custom bot: a signed rich-text (post) message with the page's link.

Follows Feishu's 自定义机器人使用指南 (open.feishu.cn, client-docs/bot-v3/add-custom-bot): POST
JSON to `https://open.feishu.cn/open-apis/bot/v2/hook/…`. With 签名校验 on, the body carries
"timestamp" (in SECONDS, as a string) and "sign": `timestamp + "\n" + secret` is the KEY of an
HmacSHA256 over an EMPTY message, Base64-encoded; Feishu refuses a timestamp more than one hour
(3600 s) from its own time. A body may be at most 20 KB. A custom bot cannot mention anyone by
phone (its `at` needs an open_id/user_id a webhook cannot look up), so the paged phones are
written into the text instead. Rate limit: 100 a minute and 5 a second per bot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from bot.channels import ChannelError, ChannelMessage
from bot.channels._webhook import DEFAULT_TIMEOUT, fit_utf8, platform_reason, post_json
from bot.clock import Clock, SystemClock

BODY_MAX_BYTES = 20 * 1024
# 11232: frequency limited (Feishu's own advice: retry away from busy minutes). 9499 answers
# both "too many request" (a rate limit) and "Bad Request" (a malformed body): only the first
# is worth another try. 19021 sign match fail or timestamp out of the hour, 19022 Ip Not
# Allowed, 19024 Key Words Not Found, 19001 invalid webhook token: the operator must act.
RETRY_CODES = frozenset({11232})
PHONE_MARK = "☎ "


def feishu_sign(secret: str, timestamp_s: int) -> str:
    r"""Base64 HmacSHA256 keyed by "timestamp\nsecret" over an empty message."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def _retry(code: int, msg: str) -> bool:
    return code in RETRY_CODES or (code == 9499 and "too many" in msg.lower())


class FeishuRobot:
    """One Feishu custom bot (a `[[channels]]` table with kind = "feishu")."""

    kind = "feishu"

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        per_minute: int = 20,
        *,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self.per_minute = per_minute
        self.clock: Clock = clock or SystemClock()
        self.timeout = timeout

    def content(self, message: ChannelMessage, body_text: str) -> dict[str, Any]:
        """The post content: title, the page's lines, the phones, the link as a link."""
        lines: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": line}] for line in body_text.splitlines()
        ]
        if message.mention_phones:
            phones = PHONE_MARK + ", ".join(message.mention_phones)
            lines.append([{"tag": "text", "text": phones}])
        if message.link:
            lines.append([{"tag": "a", "text": message.link, "href": message.link}])
        language = "en_us" if message.language.startswith("en") else "zh_cn"
        post = {language: {"title": message.title, "content": lines}}
        return {"post": post}

    def body(self, message: ChannelMessage) -> dict[str, Any]:
        """The JSON Feishu expects for `message`, signed when a secret is set, within 20 KB."""
        text = message.text.strip()
        body = self._body(message, text)
        size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
        if size > BODY_MAX_BYTES:
            # JSON escaping costs a few bytes per line: leave room for it.
            room = len(text.encode("utf-8")) - (size - BODY_MAX_BYTES) - 64 * (text.count("\n") + 2)
            body = self._body(message, fit_utf8(text, max(room, 0)))
        return body

    def _body(self, message: ChannelMessage, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"msg_type": "post", "content": self.content(message, text)}
        if self.secret:
            timestamp_s = int(self.clock.now().timestamp())
            body["timestamp"] = str(timestamp_s)
            body["sign"] = feishu_sign(self.secret, timestamp_s)
        return body

    async def send(self, message: ChannelMessage) -> None:
        """Post `message` to the group, or raise ChannelError."""
        answer = await post_json(self.kind, self.url, self.body(message), self.timeout)
        # Older answers carry only StatusCode/StatusMessage; newer ones code/msg (and both).
        code = answer.get("code", answer.get("StatusCode"))
        msg = str(answer.get("msg", answer.get("StatusMessage", "")))
        if code == 0:
            return
        if not isinstance(code, int):
            raise ChannelError("feishu: the answer has no code", retry=False)
        reason = platform_reason(self.kind, "code", code, msg)
        raise ChannelError(reason, retry=_retry(code, msg), code=str(code))
