"""A DingTalk (钉钉) group robot for `zhiban demo`: a webhook on loopback that keeps what it gets.

The demo's county group: the pages at the county also go to it, as `[[channels]]` sends them to
DingTalk in a real county. It answers as DingTalk does when all is well (`errcode 0`) and keeps
each message's text for the transcript. It checks nothing: the channel tests do that against
their own stand-ins.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from aiohttp import web

PATH = "/robot/send"


class DemoRobot:
    """The group robot's webhook; `texts` holds each message as the group shows it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The webhook address, as DingTalk gives it (the token is not checked)."""
        return f"http://127.0.0.1:{self.port}{PATH}?access_token=demo"

    async def _handle(self, request: web.Request) -> web.Response:
        body: Any = await request.json()
        text = body.get("text", {}).get("content", "") if isinstance(body, dict) else ""
        self.texts.append(str(text))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def __aenter__(self) -> DemoRobot:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
