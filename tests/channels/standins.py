"""Loopback stand-ins for the WeCom, DingTalk and Feishu robot webhooks, strict as documented.

Each is a small aiohttp server that checks a request the way its platform documents it (path
and token, signature recomputed from the shared secret with the platform's own algorithm,
timestamp window, JSON shape, size limits, keywords, rate limit) and answers with the
platform's JSON: success, or the documented error code. It records what it accepted and what it
refused; a test can make it answer an error code, an HTTP status, or slowly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass
class Refusal:
    """A request the stand-in turned down, with the code it answered."""

    code: int
    msg: str


@dataclass
class _Forced:
    body: dict[str, Any] | None = None
    status: int | None = None


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class StandIn:
    """One platform's webhook on loopback; subclasses check and answer the platform's way."""

    secret: str | None = None
    keywords: tuple[str, ...] = ()
    per_minute: int | None = None  # answer the platform's rate-limit code past this many
    now: Callable[[], float] = time.time  # the platform's clock, in seconds
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    delay: float = 0.0  # answer this many seconds late (until the stand-in stops)
    received: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._forced: list[_Forced] = []
        self._sent_at: list[float] = []
        self._stopping = asyncio.Event()

    # What a test tells the stand-in to do next -----------------------------------------
    def answer_next(self, code: int, msg: str, times: int = 1) -> None:
        """Answer the next `times` well-formed requests with this error code."""
        self._forced.extend(_Forced(body=self.error_body(code, msg)) for _ in range(times))

    def status_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with this HTTP status and no JSON."""
        self._forced.extend(_Forced(status=status) for _ in range(times))

    # Per platform -------------------------------------------------------------------------
    path = "/"

    @property
    def url(self) -> str:
        """The webhook address as the platform's admin screen shows it."""
        raise NotImplementedError

    def error_body(self, code: int, msg: str) -> dict[str, Any]:
        """The platform's JSON for an error."""
        return {"errcode": code, "errmsg": msg}

    def ok_body(self) -> dict[str, Any]:
        """The platform's JSON for success."""
        return self.error_body(0, "ok")

    def check(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        """The JSON body of an acceptable request, or raise _Refused."""
        raise NotImplementedError

    rate_limit_code = 0
    rate_limit_msg = ""

    def shown(self, body: dict[str, Any]) -> str:
        """What the group reads of an accepted message."""
        raise NotImplementedError

    def mentioned(self, body: dict[str, Any]) -> list[str]:
        """The phones whose owners get an @-notification from an accepted message."""
        return []

    def messages(self) -> list[tuple[str, list[str]]]:
        """Each accepted message as the group sees it: (text, @-mentioned phones)."""
        return [(self.shown(body), self.mentioned(body)) for body in self.received]

    # The server ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        raw = await request.read()
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.delay)
        try:
            body = self.check(request, raw)
        except _Refused as refusal:
            self.refused.append(Refusal(refusal.code, refusal.msg))
            return web.json_response(self.error_body(refusal.code, refusal.msg))
        if self._forced:
            forced = self._forced.pop(0)
            if forced.status is not None:
                return web.Response(status=forced.status, text="upstream trouble")
            assert forced.body is not None
            return web.json_response(forced.body)
        if self.per_minute is not None:
            moment = self.now()
            self._sent_at = [t for t in self._sent_at if moment - t < 60]
            if len(self._sent_at) >= self.per_minute:
                self.refused.append(Refusal(self.rate_limit_code, self.rate_limit_msg))
                return web.json_response(self.error_body(self.rate_limit_code, self.rate_limit_msg))
            self._sent_at.append(moment)
        self.received.append(body)
        self.queries.append(dict(request.query))
        return web.json_response(self.ok_body())

    async def __aenter__(self) -> StandIn:
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        assert self._runner is not None
        await self._runner.cleanup()

    # Shared checks -------------------------------------------------------------------------
    @staticmethod
    def json_object(request: web.Request, raw: bytes, code: int, msg: str) -> dict[str, Any]:
        """The body as a JSON object sent as application/json in UTF-8, or refuse."""
        if request.content_type != "application/json":
            raise _Refused(code, msg)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Refused(code, msg) from None
        if not isinstance(body, dict):
            raise _Refused(code, msg)
        return body

    def within_hour(self, timestamp_s: float) -> bool:
        """Both platforms refuse a timestamp more than one hour from their own time."""
        return abs(self.now() - timestamp_s) <= 3600

    def has_keyword(self, text: str) -> bool:
        """True when no keywords are set, or the text holds one of them."""
        return not self.keywords or any(word in text for word in self.keywords)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class WeComStandIn(StandIn):
    """企业微信 群机器人: POST /cgi-bin/webhook/send?key=…, errcode/errmsg answers."""

    path = "/cgi-bin/webhook/send"
    rate_limit_code = 45009
    rate_limit_msg = "api freq out of limit"

    @property
    def url(self) -> str:
        """The webhook with its key, as the robot's details page shows it."""
        return f"http://127.0.0.1:{self.port}{self.path}?key={self.token}"

    def check(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        """Key, JSON, msgtype, content within 2048 (text) / 4096 (markdown) bytes, mentions."""
        if request.query.get("key") != self.token:
            raise _Refused(93000, "invalid webhook url")
        body = self.json_object(request, raw, 40058, "invalid parameter: wrong json format")
        kind = body.get("msgtype")
        if kind not in ("text", "markdown"):
            raise _Refused(40008, "invalid message type")
        part = body.get(kind)
        if not isinstance(part, dict) or not isinstance(part.get("content"), str):
            raise _Refused(40058, f"invalid parameter: {kind}.content")
        content = part["content"]
        if not content:
            raise _Refused(44004, "empty content")
        limit = 2048 if kind == "text" else 4096
        if len(content.encode("utf-8")) > limit:
            raise _Refused(40058, f"content exceed max length {limit}")
        for key in ("mentioned_list", "mentioned_mobile_list"):
            if key in part and (kind != "text" or not _strings(part[key])):
                raise _Refused(40058, f"invalid parameter: {key}")
        return body

    def shown(self, body: dict[str, Any]) -> str:
        """The text or markdown content."""
        return str(body[body["msgtype"]]["content"])

    def mentioned(self, body: dict[str, Any]) -> list[str]:
        """Text messages mention `mentioned_mobile_list` (markdown ones cannot)."""
        return list(body["text"].get("mentioned_mobile_list", [])) if "text" in body else []


class DingTalkStandIn(StandIn):
    """钉钉 自定义机器人: POST /robot/send?access_token=…[&timestamp=…&sign=…]."""

    path = "/robot/send"
    rate_limit_code = 130101
    rate_limit_msg = "send too fast, exceed 20 times per minute"

    @property
    def url(self) -> str:
        """The webhook with its access token, as the robot's settings show it."""
        return f"http://127.0.0.1:{self.port}{self.path}?access_token={self.token}"

    def expected_sign(self, timestamp: str) -> str:
        r"""Documented: Base64(HmacSHA256(key=secret, message=timestamp + "\n" + secret))."""
        assert self.secret is not None
        mac = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), "sha256")
        return base64.b64encode(mac.digest()).decode()

    def check(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        """Token, signature (ms timestamp within an hour), keywords, JSON shape."""
        if request.query.get("access_token") != self.token:
            raise _Refused(300001, "token is not exist")
        if self.secret is not None:
            # aiohttp decodes the query: a sign sent without URL-encoding loses its "+".
            timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not timestamp.isdigit() or not self.within_hour(int(timestamp) / 1000):
                raise _Refused(310000, "invalid timestamp")
            if not hmac.compare_digest(sign.encode(), self.expected_sign(timestamp).encode()):
                raise _Refused(310000, "sign not match")
        body = self.json_object(request, raw, 40035, "缺少参数 json")
        kind = body.get("msgtype")
        fields = {"text": ("content",), "markdown": ("title", "text")}.get(str(kind))
        if fields is None:
            raise _Refused(40035, "缺少参数 msgtype")
        part = body.get(str(kind))
        if not isinstance(part, dict) or not all(isinstance(part.get(f), str) for f in fields):
            raise _Refused(40035, f"缺少参数 {kind}")
        shown = "\n".join(part[f] for f in fields)
        if not shown.strip():
            raise _Refused(40035, f"缺少参数 {kind}")
        at = body.get("at", {})
        if not isinstance(at, dict) or not _strings(at.get("atMobiles", [])):
            raise _Refused(40035, "at.atMobiles")
        if not self.has_keyword(shown):
            raise _Refused(310000, "keywords not in content")
        return body

    def shown(self, body: dict[str, Any]) -> str:
        """The text content, or the markdown's title and text."""
        part = body[body["msgtype"]]
        return str(part.get("content") or f"{part['title']}\n{part['text']}")

    def mentioned(self, body: dict[str, Any]) -> list[str]:
        """DingTalk notifies a phone in at.atMobiles only where the text also holds @phone."""
        text = self.shown(body)
        return [m for m in body.get("at", {}).get("atMobiles", []) if f"@{m}" in text]


class FeishuStandIn(StandIn):
    """飞书 自定义机器人: POST /open-apis/bot/v2/hook/<token>, code/msg answers."""

    path = "/open-apis/bot/v2/hook/{token}"
    rate_limit_code = 11232
    rate_limit_msg = "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"

    @property
    def url(self) -> str:
        """The webhook as the bot's settings show it."""
        return f"http://127.0.0.1:{self.port}/open-apis/bot/v2/hook/{self.token}"

    def error_body(self, code: int, msg: str) -> dict[str, Any]:
        """Feishu's error JSON."""
        return {"code": code, "msg": msg, "data": {}}

    def ok_body(self) -> dict[str, Any]:
        """Feishu's success JSON, with the legacy StatusCode fields it still sends."""
        return {
            "code": 0,
            "msg": "success",
            "data": {},
            "StatusCode": 0,
            "StatusMessage": "success",
        }

    def expected_sign(self, timestamp: str) -> str:
        r"""Documented: Base64(HmacSHA256(key=timestamp + "\n" + secret, message=empty))."""
        assert self.secret is not None
        key = f"{timestamp}\n{self.secret}".encode()
        return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    def check(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        """Token, 20 KB, JSON, signature (s timestamp within an hour), keywords, shape."""
        if request.match_info["token"] != self.token:
            raise _Refused(19001, "param invalid: incoming webhook access token invalid")
        if len(raw) > 20 * 1024:
            raise _Refused(9499, "Bad Request")
        body = self.json_object(request, raw, 9499, "Bad Request")
        if self.secret is not None:
            timestamp, sign = str(body.get("timestamp", "")), body.get("sign")
            fresh = timestamp.isdigit() and self.within_hour(int(timestamp))
            if not fresh or not isinstance(sign, str) or sign != self.expected_sign(timestamp):
                raise _Refused(
                    19021, "sign match fail or timestamp is not within one hour from current time"
                )
        shown = self._shown(body)
        if shown is None:
            raise _Refused(9499, "Bad Request")
        if not self.has_keyword(shown):
            raise _Refused(19024, "Key Words Not Found")
        return body

    def shown(self, body: dict[str, Any]) -> str:
        """The text, or the post's title and lines; a custom bot mentions nobody by phone."""
        return self._shown(body) or ""

    @staticmethod
    def _shown(body: dict[str, Any]) -> str | None:
        """The text a group would see, or None when the body is not a text or post message."""
        content = body.get("content")
        if not isinstance(content, dict):
            return None
        if body.get("msg_type") == "text":
            text = content.get("text")
            return text if isinstance(text, str) and text else None
        if body.get("msg_type") != "post" or not isinstance(content.get("post"), dict):
            return None
        shown = []
        for language, post in content["post"].items():
            if language not in ("zh_cn", "en_us", "ja_jp") or not isinstance(post, dict):
                return None
            shown.append(str(post.get("title", "")))
            rows = post.get("content")
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                return None
            for row in rows:
                for element in row:
                    if not isinstance(element, dict):
                        return None
                    tag = element.get("tag")
                    fields = ("text",) if tag == "text" else ("text", "href")
                    if tag in ("text", "a") and all(
                        isinstance(element.get(key), str) for key in fields
                    ):
                        shown.append(element["text"])
                    elif tag not in ("at", "img", "media", "emotion"):
                        return None
        return "\n".join(shown)
