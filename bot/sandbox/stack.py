"""The whole bot on one machine: emulator, database and the real Application, for tests and demo."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from types import TracebackType

from bot.app import build_application, ops_server, serve
from bot.channels import Channel
from bot.clock import Clock, MovableClock
from bot.config import Settings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.ops import OpsServer
from bot.sandbox.server import BotApiEmulator
from bot.services import outbox
from bot.uow import Database
from handlers.context import Runtime, ZhibanApplication

SANDBOX_TOKEN = "123456:SANDBOX-zhiban-token"


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalStack:
    """Runs the real Application against the local Bot API emulator on loopback."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        webhook: bool = False,
        channels: Mapping[str, Channel] | None = None,
        ops_port: int | None = None,
    ) -> None:
        self.clock = clock
        # A port chosen beforehand, so that `[web] public_url` can name it; None: any free one.
        self._ops_port = ops_port
        self._channels = channels
        self.emulator = BotApiEmulator(clock=clock.now)
        self._settings = settings
        self._webhook = webhook
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.db: Database | None = None
        self.app: ZhibanApplication | None = None
        self.runtime: Runtime | None = None
        self.ops: OpsServer | None = None
        # Where the ops port listens (/healthz, /readyz, /metrics): loopback, a free port.
        self.ops_url = ""

    async def __aenter__(self) -> LocalStack:
        await self.emulator.start()
        telegram: dict[str, object] = {
            "api_base_url": self.emulator.base_url,
            "api_file_url": self.emulator.base_file_url,
        }
        if self._webhook:
            port = free_port()
            telegram |= {
                "mode": "webhook",
                "webhook_listen": "127.0.0.1",
                "webhook_port": port,
                "webhook_path": "telegram",
                "webhook_url": f"http://127.0.0.1:{port}/telegram",
            }
        ops_port = self._ops_port or free_port()
        self.ops_url = f"http://127.0.0.1:{ops_port}"
        settings = self._settings.model_copy(
            update={
                "telegram": self._settings.telegram.model_copy(update=telegram),
                "ops": self._settings.ops.model_copy(
                    update={"listen": "127.0.0.1", "port": ops_port}
                ),
                "webhook_secret": self._settings.webhook_secret
                or ("sandbox-secret" if self._webhook else None),
            }
        )
        self.db = Database(create_engine(settings.database))
        await upgrade(self.db.engine)
        self.runtime = Runtime(
            settings=settings, db=self.db, clock=self.clock, channels=self._channels
        )
        self.app = build_application(self.runtime, token=SANDBOX_TOKEN)
        self.ops = ops_server(self.runtime)
        await self.ops.start()
        self._task = asyncio.create_task(serve(self.app, self._stop))
        await self._wait_until_taking_updates()
        return self

    async def _wait_until_taking_updates(self) -> None:
        # serve() has started once the bot asked the emulator for updates or set its webhook.
        for _ in range(500):
            if self._task is not None and self._task.done():
                self._task.result()
            if self.emulator.feed.polls_received or self.emulator.calls_of("setWebhook"):
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("the bot did not start taking updates")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            if self._task is not None:
                await asyncio.wait_for(self._task, timeout=30)
        finally:
            if self.ops is not None:
                await self.ops.stop()
            await self.emulator.stop()
            if self.db is not None:
                await self.db.dispose()

    async def restart_bot(self) -> None:
        """Stop the bot and start a fresh Application on the same database and emulator."""
        assert self.runtime is not None
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=30)
        self._stop = asyncio.Event()
        self.runtime = Runtime(
            settings=self.runtime.settings,
            db=self.runtime.db,
            clock=self.clock,
            channels=self._channels,
        )
        self.app = build_application(self.runtime, token=SANDBOX_TOKEN)
        if self.ops is not None:
            await self.ops.stop()
        self.ops = ops_server(self.runtime)
        await self.ops.start()
        self.emulator.feed.polls_received = 0
        self._task = asyncio.create_task(serve(self.app, self._stop))
        await self._wait_until_taking_updates()

    async def settle(self, *, within: float = 10.0) -> None:
        """Run the engine for the clock's current time and wait until everything due is sent.

        The background sender does the sending; this waits until no due row is pending or
        claimed, so a test reads a settled state. With a `MovableClock`, when the sender has
        nothing under way and only waits on the clock (a chat's 1-a-second pace, the overall
        window, a 429's retry_after), this moves the clock forward to the earliest moment it
        waits for: sending a burst to one chat takes clock time, not real seconds. Rows put
        back for later (backoff, an edit waiting for its message) are not waited for. Past
        `within` real seconds it gives up (TimeoutError).
        """
        assert self.app is not None and self.db is not None
        engine, sender = self.app.bot_data.engine, self.app.bot_data.sender
        assert engine is not None and sender is not None
        channel_sender = self.app.bot_data.channel_sender
        await engine.step()
        sender.wake()
        if channel_sender is not None:
            channel_sender.wake()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await asyncio.sleep(0.01)
            async with self.db.read() as uow:
                unsettled = await outbox.count_unsettled(uow.session, now=self.clock.now())
            if not unsettled:
                return
            channels_idle = channel_sender is None or channel_sender.idle()
            if isinstance(self.clock, MovableClock) and sender.idle() and channels_idle:
                moment = self.clock.earliest_sleeper()
                if moment is not None and moment > self.clock.now():
                    self.clock.set(moment)
                    continue
                sender.wake()  # the claimed rows went out; look for the rest now
                if channel_sender is not None:
                    channel_sender.wake()  # a failed page may have told its robots
            if loop.time() > deadline:
                raise TimeoutError(f"{unsettled} outgoing messages were not settled")
