r"""DingTalk (钉钉) custom robot: a signed text message that @-mentions the paged phones.

Follows DingTalk's 自定义机器人接入 and 自定义机器人安全设置 (open.dingtalk.com): POST JSON to
`https://oapi.dingtalk.com/robot/send?access_token=…`. With 加签 (signing) on, the string to sign
is `timestamp + "\n" + secret` with the timestamp in MILLISECONDS; its HmacSHA256 keyed by the
secret (UTF-8) is Base64-encoded, then URL-encoded, and sent as the query parameters
`&timestamp=…&sign=…`; DingTalk refuses a timestamp more than one hour from its own time.
`at.atMobiles` mentions people by phone, and the mention shows only where the text also holds
`@<phone>`. Each robot may send 20 messages a minute (then it is throttled for 10 minutes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote_plus

from bot.channels import ChannelError, ChannelMessage
from bot.channels._webhook import (
    DEFAULT_TIMEOUT,
    compose_text,
    mention_mobiles,
    platform_reason,
    post_json,
)
from bot.clock import Clock, SystemClock

# DingTalk's errcode values that a later try may cure: -1 系统繁忙, 130101 send too fast
# (more than 20 a minute). 310000 (sign not match / keywords not in content / ip not in
# whitelist) and 300001 (token is not exist) need the operator, as does anything else.
RETRY_CODES = frozenset({-1, 130101})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    r"""The Base64 HmacSHA256 of "timestamp\nsecret" keyed by the secret (before URL-encoding)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """`url` with DingTalk's `timestamp` and URL-encoded `sign` query parameters appended."""
    sign = quote_plus(dingtalk_sign(secret, timestamp_ms))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign}"


class DingTalkRobot:
    """One DingTalk custom robot (a `[[channels]]` table with kind = "dingtalk")."""

    kind = "dingtalk"

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

    def body(self, message: ChannelMessage) -> dict[str, Any]:
        """The JSON DingTalk expects for `message`: the @phones in the text and in at.atMobiles."""
        mobiles = mention_mobiles(message.mention_phones)
        mentions = " ".join(f"@{mobile}" for mobile in mobiles)
        return {
            "msgtype": "text",
            "text": {"content": compose_text(message, tail=mentions)},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }

    def request_url(self) -> str:
        """The webhook, signed with the clock's current time when a secret is set."""
        if not self.secret:
            return self.url
        timestamp_ms = int(self.clock.now().timestamp() * 1000)
        return signed_url(self.url, self.secret, timestamp_ms)

    async def send(self, message: ChannelMessage) -> None:
        """Post `message` to the group, or raise ChannelError."""
        answer = await post_json(self.kind, self.request_url(), self.body(message), self.timeout)
        code = answer.get("errcode")
        if code == 0:
            return
        if not isinstance(code, int):
            raise ChannelError("dingtalk: the answer has no errcode", retry=False)
        raise ChannelError(
            platform_reason(self.kind, "errcode", code, answer.get("errmsg")),
            retry=code in RETRY_CODES,
            code=str(code),
        )
