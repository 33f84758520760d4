"""The ops port: /healthz, /readyz and /metrics over HTTP, beside polling or the webhook.

With a link secret it also serves the acknowledge link's page, /a/<token> (bot/ack_page.py).
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ack_page import AckPages
from bot.clock import Clock
from bot.config import OpsSettings
from bot.leadership import Leadership
from bot.metrics import Metrics
from bot.services import health
from bot.uow import Database

log = logging.getLogger(__name__)

# How long /healthz and /metrics wait for the database before saying it does not answer.
DATABASE_TIMEOUT = 2.0
# The largest request body read: a press on the link's page is one short form field.
MAX_BODY = 16 * 1024


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


class OpsServer:
    """Serves the ops endpoints of one instance on `[ops] listen:port` (port 0: not at all)."""

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
        self._runner: web.AppRunner | None = None
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_text)
        if ack_pages is not None:
            ack_pages.add_routes(app)
        self._app = app

    async def start(self) -> None:
        """Listen, unless the port is 0; a port taken is one log line, and the bot runs on.

        Paging matters more than being watched: an instance whose ops port is taken still
        takes updates and sends pages.
        """
        if self.settings.port == 0:
            return
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.listen, self.settings.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            log.error(
                "ops port %s:%s not served (%s); /healthz, /readyz and /metrics are off",
                self.settings.listen,
                self.settings.port,
                os.strerror(error.errno) if error.errno else error,
            )
            return
        self._runner = runner
        log.info("ops port on http://%s:%s/", self.settings.listen, self.settings.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 when the database answers a trivial query within 2 s; 503 with the reason."""
        try:
            await asyncio.wait_for(health.database_answers(self.db), DATABASE_TIMEOUT)
        except TimeoutError:
            return web.Response(status=503, text="database: no answer within 2 s\n")
        except Exception as error:  # whatever the driver raises, said in one line
            return web.Response(status=503, text=f"database: {_one_line(error)}\n")
        return web.Response(text="ok\n")

    async def readyz(self, _request: web.Request) -> web.Response:
        """200 "leader" when this instance takes updates, 503 "standby" when it stands by."""
        role = self.leadership.role
        return web.Response(status=200 if self.leadership.is_leader else 503, text=f"{role}\n")

    async def metrics_text(self, _request: web.Request) -> web.Response:
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
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
