"""The emulator's HTTP server and control surface: ``BotApiEmulator``."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from bot.sandbox.errors import ApiError
from bot.sandbox.limits import FloodLimiter
from bot.sandbox.methods import BotApi, Method
from bot.sandbox.params import Params, UploadedFile
from bot.sandbox.state import ChatState, UserProfile, World, utc_now
from bot.sandbox.transcript import TranscriptEntry, render_transcript
from bot.sandbox.updates import UpdateFeed
from bot.sandbox.users import SimGroup, SimUser

_TOKEN_RE = re.compile(r"(\d{1,20}):[A-Za-z0-9_-]{1,64}")
_MAX_BODY = 50 * 1024 * 1024
_T = TypeVar("_T")


@dataclass(frozen=True)
class ApiCall:
    """One call the bot made: method, parameters, when (monotonic), the status answered."""

    method: str
    params: Mapping[str, Any]
    at: float
    status: int
    duration: float


class BotApiEmulator:
    """A local, strict Telegram Bot API server for the real python-telegram-bot client."""

    def __init__(
        self,
        *,
        bot_username: str = "zhiban_demo_bot",
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.world = World(bot_username=bot_username, clock=clock or utc_now)
        self.monotonic = monotonic
        self.limiter = FloodLimiter(monotonic=monotonic)
        self.feed = UpdateFeed(self.world)
        self._api = BotApi(self.world, self.limiter)
        self.latency = 0.0
        self.method_latency: dict[str, float] = {}
        self.calls: list[ApiCall] = []
        # Failures and slow answers to come, by (method, chat id); chat None: whatever the chat.
        self._failures: dict[tuple[str, int | None], deque[ApiError]] = {}
        self._slow: dict[tuple[str, int | None], deque[float]] = {}
        self._users: dict[int, SimUser] = {}
        self._groups: dict[int, SimGroup] = {}
        self._methods: dict[str, Method] = {
            **self._api.methods(),
            "getupdates": self.feed.get_updates,
            "setwebhook": self.feed.set_webhook,
            "deletewebhook": self.feed.delete_webhook,
            "getwebhookinfo": self.feed.webhook_info_method,
        }
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on ``host:port`` (port 0 picks a free one)."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        address = self._runner.addresses[0]
        self._host, self._port = host, int(address[1])

    async def stop(self) -> None:
        """Release long polls, stop webhook delivery and close the server."""
        await self.feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        return self._port

    @property
    def base_url(self) -> str:
        """Return the URL to give PTB's ``base_url`` (the token is appended)."""
        return f"http://{self._host}:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the URL to give PTB's ``base_file_url``."""
        return f"http://{self._host}:{self._port}/file/bot"

    # -- switches ---------------------------------------------------------------------------

    @property
    def enforce_flood_limits(self) -> bool:
        """Whether sending methods answer 429 beyond Telegram's rate limits (default False)."""
        return self._api.enforce_flood_limits

    @enforce_flood_limits.setter
    def enforce_flood_limits(self, value: bool) -> None:
        self._api.enforce_flood_limits = value

    @property
    def group_privacy(self) -> bool:
        """Whether the bot only sees commands and mentions in groups (default True)."""
        return self.world.group_privacy

    @group_privacy.setter
    def group_privacy(self, value: bool) -> None:
        self.world.group_privacy = value

    def reset_limits(self) -> None:
        """Forget the flood-limit history."""
        self.limiter.reset()

    def inject_failure(
        self,
        method: str,
        status: int,
        count: int = 1,
        description: str | None = None,
        retry_after: int | None = None,
        *,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail with ``status``.

        With ``chat_id``, only calls for that chat (their ``chat_id`` parameter) fail; those
        are answered before any failure injected for every chat.
        """
        queue = self._failures.setdefault((method.lower(), chat_id), deque())
        for _ in range(count):
            queue.append(ApiError(status, description, retry_after=retry_after))

    def slow_answers(
        self, method: str, seconds: float, count: int = 1, *, chat_id: int | None = None
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (for ``chat_id``) ``seconds`` late.

        The call takes effect at once, as at Telegram: a message is delivered, and only the
        answer is late (later than the client waits, if ``seconds`` is longer than its timeout).
        """
        queue = self._slow.setdefault((method.lower(), chat_id), deque())
        queue.extend([seconds] * count)

    # -- simulated people -------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh",
    ) -> SimUser:
        """Return the simulated user with this id, creating them on first use."""
        existing = self._users.get(user_id)
        if existing is not None:
            return existing
        profile = UserProfile(user_id, first_name, last_name, username, language_code)
        created = SimUser(self.world, profile)
        self._users[user_id] = created
        return created

    def group(
        self, chat_id: int, title: str, *, kind: str = "group", bot_member: bool = True
    ) -> SimGroup:
        """Return the simulated group with this id, creating it on first use."""
        existing = self._groups.get(chat_id)
        if existing is not None:
            return existing
        if kind not in ("group", "supergroup"):
            raise ValueError(f"group kind must be 'group' or 'supergroup', not {kind!r}")
        chat = ChatState(chat_id=chat_id, kind=kind, title=title, bot_member=bot_member)
        self.world.chats[chat_id] = chat
        created = SimGroup(self.world, chat)
        self._groups[chat_id] = created
        return created

    # -- inspection -------------------------------------------------------------------------

    def updates_pending(self) -> int:
        """Return how many updates wait to be delivered to the bot."""
        return len(self.feed.pending())

    def commands(
        self,
        scope: str = "default",
        *,
        chat_id: int | None = None,
        language_code: str = "",
    ) -> list[tuple[str, str]]:
        """Return the (command, description) pairs setMyCommands stored for a scope."""
        key = f"{scope}:{chat_id}" if chat_id is not None else scope
        stored = self.world.commands.get((key, language_code), [])
        return [(c["command"], c["description"]) for c in stored]

    def webhook_info(self) -> dict[str, Any]:
        """Return what getWebhookInfo would answer."""
        return self.feed.webhook_info()

    def transcript(self) -> list[TranscriptEntry]:
        """Return every recorded event, oldest first."""
        return list(self.world.entries)

    def transcript_text(self, tz: tzinfo | None = None) -> str:
        """Return the transcript as readable lines, times shown in ``tz``."""
        return render_transcript(self.world.entries, tz)

    def calls_of(self, method: str) -> list[ApiCall]:
        """Return the logged calls of one method (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def count_status(self, status: int) -> int:
        """Return how many calls were answered with ``status``."""
        return sum(1 for c in self.calls if c.status == status)

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        started = self.monotonic()
        method = request.match_info["method"]
        params = Params({})
        try:
            token = _TOKEN_RE.fullmatch(request.match_info["token"])
            if token is None:
                raise ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            params = await _read_params(request)
            self.world.bot_id = int(token.group(1))
            failures = _due(self._failures, method, params)
            if failures:
                raise failures.popleft()
            body: dict[str, Any] = {"ok": True, "result": await handler(params)}
            status = 200
        except ApiError as exc:
            status, body = exc.status, exc.to_json()
        delay = next(
            (v for k, v in self.method_latency.items() if k.lower() == method.lower()),
            self.latency,
        )
        slow = _due(self._slow, method, params)
        if slow:
            delay = max(delay, slow.popleft())
        if delay > 0:
            await asyncio.sleep(delay)
        self.calls.append(
            ApiCall(method, params.summary(), started, status, self.monotonic() - started)
        )
        return web.json_response(body, status=status)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if _TOKEN_RE.fullmatch(request.match_info["token"]) is None:
            return web.json_response(ApiError(401, "Unauthorized").to_json(), status=401)
        stored = self.world.file_by_path(request.match_info["path"])
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").to_json(), status=404)
        content_type = stored.mime_type or "application/octet-stream"
        return web.Response(body=stored.content, content_type=content_type)


def _due(
    queues: dict[tuple[str, int | None], deque[_T]], method: str, params: Params
) -> deque[_T] | None:
    """The queue of what is injected for this call: its chat's first, then any chat's."""
    if not queues:
        return None
    try:
        chat_id = int(params.get_str("chat_id") or "")
    except ValueError:
        chat_id = None
    if chat_id is not None and (mine := queues.get((method.lower(), chat_id))):
        return mine
    return queues.get((method.lower(), None))


async def _read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: can't parse JSON encoded request")
            values.update(body)
        else:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    files[name] = UploadedFile(value.filename, content, value.content_type)
                elif isinstance(value, str):
                    values[name] = value
    return Params(values, files)
