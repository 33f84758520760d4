"""The ops port: /healthz, /readyz and /metrics over HTTP, beside polling or the webhook.

With a link secret it also serves the acknowledge link's page, /a/<token> (bot/ack_page.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from tornado.httpserver import HTTPServer
from tornado.web import Application, HTTPError, RequestHandler

from bot.ack_page import AckPages, Reply
from bot.clock import Clock
from bot.config import OpsSettings
from bot.leadership import Leadership
from bot.metrics import Metrics
from bot.services import health
from bot.services.ack_links import PATH as LINK_PATH
from bot.uow import Database

log = logging.getLogger(__name__)

# How long /healthz and /metrics wait for the database before saying it does not answer.
DATABASE_TIMEOUT = 2.0
# The largest request body read: a press on the link's page is one short form field.
MAX_BODY = 16 * 1024

# What an endpoint does with the request (and the path's parts) to make its answer.
Answer = Callable[..., Awaitable[Reply]]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


class _Endpoint(RequestHandler):
    """One path of the ops port: its GET and POST answers, no ETag, no Server header."""

    def initialize(self, get: Answer | None = None, post: Answer | None = None) -> None:
        self._answers = {"GET": get, "POST": post}

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def compute_etag(self) -> None:
        return None

    async def get(self, *path: str) -> None:
        await self._answer("GET", path)

    async def post(self, *path: str) -> None:
        await self._answer("POST", path)

    async def _answer(self, method: str, path: tuple[str, ...]) -> None:
        answer = self._answers[method]
        if answer is None:
            raise HTTPError(405)
        reply = await answer(self, *path)
        self.set_status(reply.status)
        self.set_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.finish(reply.body)


def _no_access_log(_handler: Any) -> None:
    """Requests are not logged one by one (tornado's access log)."""


class OpsServer:
    """Serves the ops endpoints of one instance on `[ops] listen:port` (port 0: not at all).

    On tornado, which python-telegram-bot's webhook server already loads: the ops port costs
    the start no HTTP library of its own (aiohttp's import was 0.17 s of it).
    """

    def __init__(
        self,
        settings: OpsSettings,
        *,
        db: Database,
        clock: Clock,
        leadership: Leadership,
        metrics: Metrics,
        ack_pages: AckPages | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.leadership = leadership
        self.metrics = metrics
        self._server: HTTPServer | None = None
        routes: list[Any] = [
            (r"/healthz", _Endpoint, {"get": self.healthz}),
            (r"/readyz", _Endpoint, {"get": self.readyz}),
            (r"/metrics", _Endpoint, {"get": self.metrics_text}),
        ]
        if ack_pages is not None:
            # Any one path segment, whatever it holds: a forged link gets the page's sentence.
            routes.append(
                (
                    LINK_PATH + r"([^/]+)",
                    _Endpoint,
                    {"get": _show(ack_pages), "post": _press(ack_pages)},
                )
            )
        self._app = Application(routes, log_function=_no_access_log)

    async def start(self) -> None:
        """Listen, unless the port is 0; a port taken is one log line, and the bot runs on.

        Paging matters more than being watched: an instance whose ops port is taken still
        takes updates and sends pages.
        """
        if self.settings.port == 0:
            return
        server = HTTPServer(self._app, max_body_size=MAX_BODY)
        try:
            server.listen(self.settings.port, self.settings.listen)
        except OSError as error:
            server.stop()
            log.error(
                "ops port %s:%s not served (%s); /healthz, /readyz and /metrics are off",
                self.settings.listen,
                self.settings.port,
                os.strerror(error.errno) if error.errno else error,
            )
            return
        self._server = server
        log.info("ops port on http://%s:%s/", self.settings.listen, self.settings.port)

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            await server.close_all_connections()

    async def healthz(self, _handler: RequestHandler) -> Reply:
        """200 when the database answers a trivial query within 2 s; 503 with the reason."""
        try:
            await asyncio.wait_for(health.database_answers(self.db), DATABASE_TIMEOUT)
        except TimeoutError:
            return Reply(503, "database: no answer within 2 s\n")
        except Exception as error:  # whatever the driver raises, said in one line
            return Reply(503, f"database: {_one_line(error)}\n")
        return Reply(200, "ok\n")

    async def readyz(self, _handler: RequestHandler) -> Reply:
        """200 "leader" when this instance takes updates, 503 "standby" when it stands by."""
        role = self.leadership.role
        return Reply(200 if self.leadership.is_leader else 503, f"{role}\n")

    async def metrics_text(self, _handler: RequestHandler) -> Reply:
        """The Prometheus exposition; the database's gauges left out if it does not answer."""
        figures: health.OpsFigures | None
        try:
            figures = await asyncio.wait_for(
                health.ops_figures(self.db, now=self.clock.now()), DATABASE_TIMEOUT
            )
        except Exception as error:  # the counters are still worth a scrape
            log.warning("metrics: database figures not read (%s)", _one_line(error))
            figures = None
        body = self.metrics.render(figures, leader=self.leadership.is_leader)
        return Reply(200, body, CONTENT_TYPE_LATEST)


def _show(pages: AckPages) -> Answer:
    async def show(handler: RequestHandler, token: str) -> Reply:
        return await pages.show(token, remote=handler.request.remote_ip)

    return show


def _press(pages: AckPages) -> Answer:
    async def press(handler: RequestHandler, token: str) -> Reply:
        action = handler.get_body_argument("action", default="", strip=False)
        return await pages.press(token, action, remote=handler.request.remote_ip)

    return press
