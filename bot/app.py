"""Composition root: builds the Application, wires handlers and jobs, and serves updates."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.ext._utils.trackingdict import TrackingDict

from bot.ack_page import AckPages
from bot.channels import registry
from bot.channels.sender import ChannelSender
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db import create_engine, is_sqlite
from bot.delivery import (
    OutboxSender,
    SendWindow,
    SharedWindowLimiter,
    outbox_bot,
    worker_name,
)
from bot.election import Election, LeaderLock, PostgresLeaderLock
from bot.i18n import LANGUAGES, translator
from bot.leadership import Leadership, Role
from bot.migrate import upgrade
from bot.network import (
    NetworkErrorsOnOneLine,
    SecretFilter,
    bot_request,
    one_line,
    polling_request,
    proxy_secrets,
    redacted,
    until_reachable,
)
from bot.ops import OpsServer
from bot.persistence import DatabasePersistence
from bot.services import attendance, checkins, daily_reports, digest, drafts, escalation, outbox
from bot.services.engine import DeadlineHandler
from bot.services.incidents import drills
from bot.uow import Database
from bot.updates import PerPersonUpdates
from handlers import attendance as attendance_handlers
from handlers import board as board_handlers
from handlers import buttons, calendar, conversations, edge, fallback, gate, menu, people
from handlers import drills as drill_handlers
from handlers import incidents as incident_handlers
from handlers import start as start_handlers
from handlers import summary as summary_handlers
from handlers.context import (
    BotData,
    Engine,
    Runtime,
    Sender,
    ZhibanApplication,
    ZhibanContext,
)
from handlers.errors import on_error
from jobs.engine import EngineJob

log = logging.getLogger(__name__)


# How /metrics counts an update (bot/metrics.py): a message, a button press, or anything else.
_METRIC_KIND = {"message": "message", "callback_query": "callback"}


async def _log_update(update: Update, context: ZhibanContext) -> None:
    """Write one INFO line per incoming update (never its content) and count it for /metrics."""
    user = update.effective_user
    kind = next(
        (
            name
            for name in ("message", "callback_query", "edited_message", "my_chat_member")
            if getattr(update, name) is not None
        ),
        "other",
    )
    log.info("update %s: %s from user %s", update.update_id, kind, user.id if user else "-")
    context.runtime.metrics.update_handled(_METRIC_KIND.get(kind, "other"))


async def _register_commands(application: ZhibanApplication) -> None:
    """Publish the newcomer's menu in each language; linked people get theirs at linking.

    The menus go out side by side: one after another they were three round trips before the
    first getUpdates, each the proxy's delay where Telegram is reached through one.
    """
    runtime = application.bot_data.runtime
    default = runtime.settings.bot.language if runtime else "zh"

    async def publish(code: str | None) -> None:
        tr = translator(code or default)
        commands = [BotCommand(c, d) for c, d in menu.commands_for(None, tr)]
        await application.bot.set_my_commands(
            commands, scope=BotCommandScopeDefault(), language_code=code
        )

    await asyncio.gather(*(publish(code) for code in (None, *LANGUAGES)))


def build_application(runtime: Runtime, *, token: str) -> ZhibanApplication:
    """Build the python-telegram-bot Application for this runtime."""
    telegram = runtime.settings.telegram
    context_types = ContextTypes(context=ZhibanContext, bot_data=BotData)
    # One count of Telegram's 30 a second for the outbox sender and the bot's direct replies.
    window = SendWindow(runtime.clock, per_second=telegram.messages_per_second)
    updates = PerPersonUpdates(telegram.update_workers)
    # Both of PTB's clients go through the proxy: the bot's calls (and file downloads), and
    # getUpdates, whose client also logs a try that could not connect.
    application: ZhibanApplication = (
        ApplicationBuilder()
        .token(token)
        .request(bot_request(telegram))
        .get_updates_request(polling_request(telegram))
        .base_url(telegram.api_base_url)
        .base_file_url(telegram.api_file_url)
        .context_types(context_types)
        .concurrent_updates(updates)
        .rate_limiter(
            SharedWindowLimiter(
                AIORateLimiter(
                    overall_max_rate=telegram.messages_per_second,
                    group_max_rate=telegram.group_messages_per_minute,
                    max_retries=telegram.max_retries,
                ),
                window,
                on_flood=lambda: runtime.metrics.flood_wait("replies"),
            )
        )
        .post_init(_register_commands)
        .persistence(
            DatabasePersistence(
                runtime.db,
                runtime.clock,
                max_age=runtime.settings.conversations.timeout,
                drafted=conversations.PROMPTS.keys(),
            )
        )
        .build()
    )
    worker = worker_name()
    sender = OutboxSender(
        db=runtime.db,
        # Not the Application's bot: its AIORateLimiter would retry a 429 itself and pause
        # every request meanwhile; the sender answers Telegram per chat.
        bot=outbox_bot(token, telegram),
        clock=runtime.clock,
        telegram=telegram,
        paging=runtime.paging,
        worker=worker,
        window=window,
        on_flood=lambda: runtime.metrics.flood_wait("outbox"),
    )
    channels = (
        runtime.channels
        if runtime.channels is not None
        else registry.build(runtime.settings, os.environ, clock=runtime.clock)
    )
    # Also without channels: it fails robot messages an earlier configuration left, and ends.
    channel_sender = ChannelSender(
        db=runtime.db, clock=runtime.clock, channels=channels, worker=worker
    )
    shift_settings = runtime.settings.shifts

    async def plan_shifts(now: datetime) -> int:
        return await attendance.plan_upcoming(runtime.db, now=now, settings=shift_settings)

    daily_settings = runtime.settings.daily_report

    async def plan_daily_reports(now: datetime) -> int:
        return await daily_reports.plan_upcoming(
            runtime.db, now=now, settings=daily_settings, tz=runtime.settings.bot.tz
        )

    async def plan_checkins(now: datetime) -> int:
        return await checkins.plan_upcoming(
            runtime.db, now=now, settings=runtime.settings.checkins, tz=runtime.settings.bot.tz
        )

    async def plan_digests(now: datetime) -> int:
        return await digest.plan_upcoming(
            runtime.db, now=now, settings=runtime.settings.digest, tz=runtime.settings.bot.tz
        )

    engine = EngineJob(
        db=runtime.db,
        clock=runtime.clock,
        handlers=deadline_handlers(runtime),
        worker=worker,
        after_step=lambda: wake_senders(sender, channel_sender),
        planners=[plan_shifts, plan_daily_reports, plan_checkins, plan_digests],
        updates_answered=updates.answered,
    )

    def wake() -> None:
        engine.wake()
        wake_senders(sender, channel_sender)

    runtime.wake = wake
    runtime.wake_senders = lambda: wake_senders(sender, channel_sender)
    application.bot_data.runtime = runtime
    application.bot_data.engine = engine
    application.bot_data.sender = sender
    application.bot_data.channel_sender = channel_sender
    application.add_handler(TypeHandler(Update, edge.clean), group=-3)
    application.add_handler(TypeHandler(Update, _log_update), group=-2)
    application.add_handler(TypeHandler(Update, gate.gate), group=-1)
    for name, callback in (
        ("start", start_handlers.start),
        ("help", start_handlers.help_command),
        ("me", people.me_command),
        ("lang", people.lang_command),
        ("unit", people.unit_command),
        ("board", board_handlers.board_command),
        ("invite", people.invite_command),
        ("shifts", attendance_handlers.shifts_command),
        ("calendar", calendar.calendar_command),
        ("in", attendance_handlers.in_command),
        ("incidents", incident_handlers.incidents_command),
        ("incident", incident_handlers.incident_command),
        ("drill", drill_handlers.drill_command),
        ("drills", drill_handlers.drills_command),
        ("summary", summary_handlers.summary_command),
    ):
        # Private chats only: invite links, phones and pages do not belong in a group.
        application.add_handler(CommandHandler(name, callback, filters=filters.ChatType.PRIVATE))
    application.add_handler(CommandHandler("bindgroup", people.bindgroup_command))
    # Conversations first: each takes its own steps' presses and input (handlers/conversations.py).
    for conversation in conversations.conversation_handlers():
        application.add_handler(conversation)
    # /cancel when no conversation took it: there is nothing to cancel.
    application.add_handler(
        CommandHandler("cancel", fallback.nothing_to_cancel, filters=filters.ChatType.PRIVATE)
    )
    # One handler for every press: bot/callbacks.py decodes it, handlers/buttons.py routes it.
    application.add_handler(CallbackQueryHandler(buttons.on_button))
    application.add_handler(
        MessageHandler(
            filters.LOCATION & filters.ChatType.PRIVATE & edge.IMPLAUSIBLE_LOCATION_FILTER,
            edge.refuse_location,
        )
    )
    application.add_handler(
        MessageHandler(filters.LOCATION & filters.ChatType.PRIVATE, attendance_handlers.on_location)
    )
    application.add_handler(
        MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, fallback.not_understood)
    )
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE, fallback.free_input))
    application.add_error_handler(on_error)
    return application


def wake_senders(*senders: Sender | None) -> None:
    """Ask the Telegram sender and the channel sender (if any) to look at the outbox now."""
    for sender in senders:
        if sender is not None:
            sender.wake()


def ops_server(runtime: Runtime) -> OpsServer:
    """The ops port of this runtime (/healthz, /readyz, /metrics, /a/ links), not started yet.

    The acknowledge link's page is served only with a link secret (ZHIBAN_LINK_SECRET).
    """
    ack_pages = None
    if runtime.settings.link_secret:
        ack_pages = AckPages(
            db=runtime.db,
            clock=runtime.clock,
            secret=runtime.settings.link_secret,
            paging=runtime.paging,
            # Looked up at each press: the app factory installs the engine's and sender's wake.
            wake=lambda: runtime.wake(),
        )
    return OpsServer(
        runtime.settings.ops,
        db=runtime.db,
        clock=runtime.clock,
        leadership=runtime.leadership,
        metrics=runtime.metrics,
        ack_pages=ack_pages,
    )


def deadline_handlers(runtime: Runtime) -> dict[str, DeadlineHandler]:
    """Every kind of deadline the engine knows, with its handler."""
    return {
        escalation.STEP_KIND: escalation.step_handler(runtime.paging),
        **drills.deadline_handlers(runtime.paging),
        **attendance.deadline_handlers(runtime.settings.shifts, runtime.paging),
        **daily_reports.deadline_handlers(runtime.settings.daily_report, runtime.paging),
        **checkins.deadline_handlers(
            runtime.settings.checkins, runtime.settings.shifts, runtime.paging
        ),
        **digest.deadline_handlers(
            runtime.settings.digest, runtime.settings.shifts, runtime.paging
        ),
        **drafts.deadline_handlers(
            conversations.PROMPTS,
            default_language=runtime.settings.bot.language,
            limits=runtime.settings.conversations,
        ),
    }


async def serve(
    application: ZhibanApplication, stop: asyncio.Event, *, leader_lock: LeaderLock | None = None
) -> None:
    """Run until `stop` is set, taking updates alone or while elected (`leader_lock`).

    Without a lock (SQLite, or the sandbox) this instance is the only one and always takes
    updates. With one, it takes updates only while it holds the lock (bot/election.py); its
    engine and outbox sender run either way. Until Telegram answers (no route, a proxy down),
    each start-up call is tried again with backoff, one log line a try, until it answers or
    `stop` is set.
    """
    runtime = application.bot_data.runtime
    if runtime is None:
        raise RuntimeError("the application was built without a runtime")
    telegram = runtime.settings.telegram
    mode = telegram.mode
    intake = UpdateIntake(application)
    if telegram.proxy:
        log.info("reaching Telegram through the proxy %s", redacted(telegram.proxy))
    if not await until_reachable(application.initialize, what="getMe", stop=stop):
        log.info("stopping")
        await application.shutdown()
        return
    async with application:
        post_init = application.post_init
        if post_init is not None and not await until_reachable(
            lambda: post_init(application), what="setMyCommands", stop=stop
        ):
            log.info("stopping")
            return
        await application.start()
        workers = await start_workers(application, stop)
        if workers is None:
            log.info("stopping")
            await application.stop()
            return
        if leader_lock is None:
            what = "setWebhook" if mode == "webhook" else "deleteWebhook"
            if await until_reachable(intake.start, what=what, stop=stop):
                log.info("Zhiban is taking updates (%s)", mode)
                await stop.wait()
        else:
            election = Election(
                leader_lock,
                runtime.leadership,
                take_updates=intake.start,
                stop_updates=intake.stop,
                mode=mode,
            )
            await election.run(stop)
        log.info("stopping")
        await intake.stop()
        await workers.stop()
        await application.stop()


class UpdateIntake:
    """Taking updates on and off, by polling or the webhook as configured: the leader's part."""

    def __init__(self, application: ZhibanApplication) -> None:
        runtime = application.bot_data.runtime
        if runtime is None or application.updater is None:
            raise RuntimeError("the application was built without a runtime or an updater")
        self._application = application
        self._updater = application.updater
        self._runtime = runtime

    async def start(self) -> None:
        """Load where every conversation stands now, then start getUpdates or the webhook."""
        await reload_conversations(self._application)
        telegram = self._runtime.settings.telegram
        if telegram.mode == "webhook":
            await self._updater.start_webhook(
                listen=telegram.webhook_listen,
                port=telegram.webhook_port,
                url_path=telegram.webhook_path,
                webhook_url=telegram.webhook_url,
                secret_token=self._runtime.settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await self._updater.start_polling(
                poll_interval=0.0,
                timeout=10,
                allowed_updates=Update.ALL_TYPES,
                error_callback=_polling_failed,
            )

    async def stop(self) -> None:
        """Stop taking updates (those in hand are still handled)."""
        if self._updater.running:
            await self._updater.stop()


async def reload_conversations(application: ZhibanApplication) -> None:
    """Read where every person stands in each conversation from the database, as it is now.

    python-telegram-bot reads conversation states once, in `Application.initialize`. A standby
    initialized long before it is elected would hold what the database said then, and resume
    people at old steps; so each time an instance starts taking updates, its conversations are
    read again, as `initialize` reads them, forgetting what it read before. The library has no
    public call for this; tests/e2e/test_standby.py holds the behaviour across upgrades.
    """
    for handler in itertools.chain.from_iterable(application.handlers.values()):
        if isinstance(handler, ConversationHandler) and handler.persistent and handler.name:
            handler._conversations = TrackingDict()
            await application._add_ch_to_persistence(handler)


def _polling_failed(error: TelegramError) -> None:
    """One line per failed getUpdates; python-telegram-bot waits longer each time (up to 30 s)."""
    if isinstance(error, NetworkError):
        log.warning("Telegram not reachable (getUpdates: %s); polling again", one_line(error))
    else:  # e.g. 409 Conflict: another process polls with this token
        log.warning("getUpdates refused (%s: %s); polling again", type(error).__name__, error)


class Workers:
    """The background work of one instance: the outbox senders (the engine runs in the JobQueue)."""

    def __init__(
        self,
        sender: Sender,
        sender_task: asyncio.Task[None],
        stop_sender: asyncio.Event,
        channel_task: asyncio.Task[None] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._task = sender_task
        self._stop = stop_sender
        self._channel_task = channel_task

    async def stop(self) -> None:
        """Arm no more engine steps; let the senders finish the calls in hand, then end them."""
        if self._engine is not None:
            self._engine.detach()
        self._stop.set()
        try:
            with suppress(asyncio.CancelledError, TimeoutError):
                # Claimed rows not sent go back to pending as it stops, for the next sender.
                await asyncio.wait_for(self._task, timeout=10)
            if self._channel_task is not None:
                with suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._channel_task, timeout=10)
        finally:
            await self._sender.close()


async def start_workers(
    application: ZhibanApplication, stop: asyncio.Event | None = None
) -> Workers | None:
    """Attach the engine to the JobQueue and start the outbox sender (None if stopped first)."""
    engine, sender = application.bot_data.engine, application.bot_data.sender
    if engine is None or sender is None or application.job_queue is None:
        raise RuntimeError("the application was built without its workers")
    engine.attach(application.job_queue)
    if not await until_reachable(sender.open, what="getMe", stop=stop or asyncio.Event()):
        await sender.close()
        return None
    stop_sender = asyncio.Event()
    channel_sender = application.bot_data.channel_sender
    channel_task = asyncio.create_task(channel_sender.run(stop_sender)) if channel_sender else None
    return Workers(
        sender, asyncio.create_task(sender.run(stop_sender)), stop_sender, channel_task, engine
    )


def install_stop_signals(stop: asyncio.Event) -> Callable[[], None]:
    """Set `stop` on SIGTERM or SIGINT; return a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in signals:
            with suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)

    return remove


def configure_logging(token: str | None, level: int = logging.INFO, *, proxy: str = "") -> None:
    """Log to stderr: the HTTP client quiet, secrets redacted, network errors in one line."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    secrets = [token or "", *proxy_secrets(proxy)]
    for handler in logging.getLogger().handlers:
        handler.addFilter(NetworkErrorsOnOneLine())
        handler.addFilter(SecretFilter(secrets))


async def _resend_what_a_stopped_run_was_sending(database: Database) -> None:
    async with database.uow() as uow:
        freed = await outbox.free_every_claim(uow.session)
        await uow.commit()
    if freed:
        log.warning(
            "%d messages were being sent when the last run stopped; sending them again now "
            "(one Telegram had already taken arrives twice)",
            freed,
        )


async def run_bot(settings: Settings, *, token: str, clock: Clock | None = None) -> None:
    """Migrate the database, then serve until SIGTERM or SIGINT (elected, on PostgreSQL)."""
    database = Database(create_engine(settings.database))
    try:
        await upgrade(database.engine)
        # Several instances may share a PostgreSQL database: they elect the one taking updates.
        leader_lock = (
            None if is_sqlite(settings.database.url) else PostgresLeaderLock(settings.database.url)
        )
        if leader_lock is None:  # SQLite: this process alone sends (`zhiban run` holds the file)
            await _resend_what_a_stopped_run_was_sending(database)
        runtime = Runtime(
            settings=settings,
            db=database,
            clock=clock or SystemClock(),
            leadership=Leadership(Role.LEADER if leader_lock is None else Role.STANDBY),
        )
        application = build_application(runtime, token=token)
        stop = asyncio.Event()
        remove_signals = install_stop_signals(stop)
        # The ops port serves a standby too (its /readyz says so), so it opens before updates.
        ops = ops_server(runtime)
        await ops.start()
        try:
            await serve(application, stop, leader_lock=leader_lock)
        finally:
            await ops.stop()
            remove_signals()
            if leader_lock is not None:
                await leader_lock.release()
    finally:
        await database.dispose()
