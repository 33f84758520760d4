"""WeCom (企业微信) group robot: a page as a text message that @-mentions the paged phones.

Follows WeCom's 群机器人配置说明 (developer.work.weixin.qq.com, document 99110/91770): POST JSON to
the robot's webhook `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`; the key in the URL
is the only credential (WeCom robots have no signing). A text message's `content` is at most
2048 bytes of UTF-8, and only the text type honours `mentioned_mobile_list` (markdown cannot
mention by phone), so pages go as text. Each robot may send 20 messages a minute.
"""

from __future__ import annotations

from typing import Any

from bot.channels import ChannelError, ChannelMessage
from bot.channels._webhook import (
    DEFAULT_TIMEOUT,
    compose_text,
    mention_mobiles,
    platform_reason,
    post_json,
)

TEXT_MAX_BYTES = 2048

# WeCom's global error codes (errcode in an HTTP 200 answer) that a later try may cure.
# -1 系统繁忙 ("retry later"), 45009 接口调用超过限制 (api freq out of limit).
RETRY_CODES = frozenset({-1, 45009})
# Everything else fails for good; the usual ones: 93000 invalid webhook url (key wrong or the
# robot removed), 40008 invalid msgtype, 44004 empty content, 40058 invalid parameter.


class WeComRobot:
    """One WeCom group robot (a `[[channels]]` table with kind = "wecom")."""

    kind = "wecom"

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        per_minute: int = 20,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        # `secret` is accepted so every robot is built alike; WeCom has nothing to sign with.
        self.name = name
        self.url = url
        self.per_minute = per_minute
        self.timeout = timeout

    def body(self, message: ChannelMessage) -> dict[str, Any]:
        """The JSON WeCom expects for `message`."""
        text: dict[str, Any] = {"content": compose_text(message, max_bytes=TEXT_MAX_BYTES)}
        if mobiles := mention_mobiles(message.mention_phones):
            text["mentioned_mobile_list"] = mobiles
        return {"msgtype": "text", "text": text}

    async def send(self, message: ChannelMessage) -> None:
        """Post `message` to the group, or raise ChannelError."""
        answer = await post_json(self.kind, self.url, self.body(message), self.timeout)
        code = answer.get("errcode")
        if code == 0:
            return
        if not isinstance(code, int):
            raise ChannelError("wecom: the answer has no errcode", retry=False)
        raise ChannelError(
            platform_reason(self.kind, "errcode", code, answer.get("errmsg")),
            retry=code in RETRY_CODES,
            code=str(code),
        )
