"""`zhiban doctor`: is this installation ready to run? One line per check, OK or the fix."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.config import (
    LINK_SECRET_ENV,
    LINK_SECRET_MIN_LENGTH,
    TOKEN_ENV,
    ConfigError,
    Settings,
    channel_secret_problems,
    load_settings,
)
from bot.db import create_engine, is_sqlite
from bot.errors import ZhibanError
from bot.i18n import Translator, translator
from bot.migrate import current_revision, head_revision
from bot.network import bot_request, one_line, redacted

# How long the Bot API check waits for an answer before it says "not reachable".
BOT_API_TIMEOUT = 10.0


class Status(StrEnum):
    """How a check came out; a NOTE does not make the doctor fail."""

    OK = "OK"
    FAIL = "FAIL"
    NOTE = "NOTE"


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's answer."""

    status: Status
    text: str

    def line(self) -> str:
        """The line as printed: the status, then what was found or how to fix it."""
        return f"{self.status.value:<4}  {self.text}"


def failed(findings: list[Finding]) -> bool:
    """Whether any check failed."""
    return any(finding.status == Status.FAIL for finding in findings)


def check_config(path: Path, environ: Mapping[str, str] | None = None) -> Settings | list[str]:
    """The settings, or the configuration's problems (one line each)."""
    try:
        settings = load_settings(path, environ)
    except ConfigError as error:
        return error.problems
    if settings.rota.holidays_file is not None:
        from bot.services.holidays import load_holidays

        try:
            load_holidays(settings.rota.holidays_file)
        except ZhibanError as error:
            tr = translator(settings.bot.language)
            return [f"rota.holidays_file: {error.render(tr)}"]
    return settings


async def examine(settings: Settings, path: Path, *, token: str | None) -> list[Finding]:
    """Run every check after the configuration's, in order."""
    tr = translator(settings.bot.language)
    findings = [Finding(Status.OK, tr._("Configuration {path}: valid.", path=path))]
    findings += await _database(settings, tr)
    findings += await _bot_api(settings, tr, token)
    findings += _channels(settings, tr, os.environ)
    findings += await _email(settings, tr)
    findings.append(_chart_font(tr))
    findings += _links(settings, tr)
    return findings


def _links(settings: Settings, tr: Translator) -> list[Finding]:
    """The acknowledge links: a line only when `[web] public_url` is set."""
    url = settings.web.public_url
    if not url:
        return []
    if not settings.link_secret or len(settings.link_secret) < LINK_SECRET_MIN_LENGTH:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Acknowledge links: set {env} to a secret of at least {length} characters "
                    "(e.g. openssl rand -hex 32).",
                    env=LINK_SECRET_ENV,
                    length=LINK_SECRET_MIN_LENGTH,
                ),
            )
        ]
    return [Finding(Status.OK, tr._("Acknowledge links: {url}/a/…", url=url))]


def _channels(settings: Settings, tr: Translator, environ: Mapping[str, str]) -> list[Finding]:
    """The group robots' secrets (nothing when no `[[channels]]` are configured)."""
    if not settings.channels:
        return []
    problems = channel_secret_problems(settings.channels, environ)
    if problems:
        return [Finding(Status.FAIL, tr._("Channels: {problem}", problem=p)) for p in problems]
    names = ", ".join(channel.name for channel in settings.channels)
    return [Finding(Status.OK, tr._("Channels: {names}; their secrets are set.", names=names))]


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _database(settings: Settings, tr: Translator) -> list[Finding]:
    url = settings.database.url
    shown = _shown_url(url)
    database = make_url(url).database
    file = Path(database) if is_sqlite(url) and database not in (None, "", ":memory:") else None
    if file is not None and not await asyncio.to_thread(file.exists):
        # Connecting would create an empty file; say what will create it instead.
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Database {url}: the file does not exist yet. Run: zhiban db upgrade",
                    url=shown,
                ),
            )
        ]
    try:
        engine = create_engine(settings.database)
    except ModuleNotFoundError as error:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Database {url}: its driver {module} is not installed. "
                    "Install it from the source folder: pip install -e '.[postgres]'",
                    url=shown,
                    module=error.name,
                ),
            )
        ]
    try:
        try:
            async with asyncio.timeout(15):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                current = await current_revision(engine)
        except (DBAPIError, SQLAlchemyError, OSError, sqlite3.Error, TimeoutError) as error:
            reason = _database_reason(error)
            return [
                Finding(
                    Status.FAIL,
                    tr._(
                        "Database {url}: cannot connect ({reason}). Check [database] url "
                        "and that the database server is running.",
                        url=shown,
                        reason=reason,
                    ),
                )
            ]
    finally:
        await engine.dispose()
    found = [Finding(Status.OK, tr._("Database {url}: reachable.", url=shown))]
    head = head_revision()
    if current == head:
        found.append(
            Finding(Status.OK, tr._("Database schema: up to date ({revision}).", revision=head))
        )
    else:
        found.append(
            Finding(
                Status.FAIL,
                tr._(
                    "Database schema: at {current}, this version needs {head}. "
                    "Run: zhiban db upgrade",
                    current=current or "-",
                    head=head,
                ),
            )
        )
    return found


def _database_reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    origin = getattr(error, "orig", None) or error
    lines = str(origin).strip().splitlines()
    return lines[0] if lines else type(origin).__name__


async def _bot_api(settings: Settings, tr: Translator, token: str | None) -> list[Finding]:
    telegram = settings.telegram
    if not token:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Bot API: {env} is not set. Get a token from @BotFather, then: "
                    "export {env}=123456:ABC…",
                    env=TOKEN_ENV,
                ),
            )
        ]
    route = (
        tr._("through the proxy {proxy}", proxy=redacted(telegram.proxy))
        if telegram.proxy
        else tr._("directly (no [telegram] proxy)")
    )
    bot = Bot(
        token,
        base_url=telegram.api_base_url,
        base_file_url=telegram.api_file_url,
        request=bot_request(
            telegram, connect_timeout=BOT_API_TIMEOUT, read_timeout=BOT_API_TIMEOUT
        ),
        get_updates_request=bot_request(
            telegram, connect_timeout=BOT_API_TIMEOUT, read_timeout=BOT_API_TIMEOUT
        ),
    )
    try:
        async with bot:
            username = bot.username
    except InvalidToken:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Bot API {url}: Telegram refused the token in {env}. Check it with @BotFather.",
                    url=telegram.api_base_url,
                    env=TOKEN_ENV,
                ),
            )
        ]
    except (NetworkError, TelegramError, ImportError) as error:
        fix = (
            tr._("Check [telegram] proxy and that the proxy is running.")
            if telegram.proxy
            else tr._(
                "Telegram is blocked in mainland China: set [telegram] proxy, "
                "or api_base_url to a Bot API server you run outside."
            )
        )
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "Bot API {url}: not reachable {route} ({reason}). {fix}",
                    url=telegram.api_base_url,
                    route=route,
                    reason=one_line(error),
                    fix=fix,
                ),
            )
        ]
    found = [
        Finding(
            Status.OK,
            tr._(
                "Bot API {url}: reachable {route}; the bot is @{username}.",
                url=telegram.api_base_url,
                route=route,
                username=username,
            ),
        )
    ]
    configured = telegram.bot_username.lstrip("@")
    if configured and configured.lower() != username.lower():
        found.append(
            Finding(
                Status.FAIL,
                tr._(
                    "[telegram] bot_username is {configured}, but the token is @{username}'s: "
                    "correct one of them (invite links use bot_username).",
                    configured=configured,
                    username=username,
                ),
            )
        )
    elif configured:
        found.append(
            Finding(
                Status.OK,
                tr._("[telegram] bot_username matches the token (@{username}).", username=username),
            )
        )
    return found


async def _email(settings: Settings, tr: Translator) -> list[Finding]:
    """Log in to the `[email]` server as a page would (nothing is sent); no line when it is off."""
    from bot.channels import ChannelError
    from bot.channels.email import email_channel

    email = settings.email
    if email is None:
        return []
    server = f"{email.host}:{email.port}"
    if email.user and not settings.email_password:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "E-mail {server}: {env} is not set; it holds the password of {user}. "
                    "Then: export {env}=…",
                    server=server,
                    env=email.password_env,
                    user=email.user,
                ),
            )
        ]
    channel = email_channel(settings)
    assert channel is not None
    try:
        await channel.check()
    except ChannelError as error:
        return [
            Finding(
                Status.FAIL,
                tr._(
                    "E-mail {server}: {reason}. Check [email] host, port, starttls, use_tls "
                    "and user, and the password in the environment.",
                    server=server,
                    reason=error.reason.removeprefix(f"{server}: "),
                ),
            )
        ]
    if email.user:
        return [
            Finding(
                Status.OK,
                tr._(
                    "E-mail {server}: reachable; the login {user} is accepted.",
                    server=server,
                    user=email.user,
                ),
            )
        ]
    return [Finding(Status.OK, tr._("E-mail {server}: reachable (no login).", server=server))]


def _chart_font(tr: Translator) -> Finding:
    from bot.services.reports.charts import DEBIAN_PACKAGE, cjk_font

    family = cjk_font()
    if family is not None:
        return Finding(Status.OK, tr._("Chart font: {family}.", family=family))
    return Finding(
        Status.NOTE,
        tr._(
            "Chart font: none with Chinese glyphs; charts are labelled in English. "
            "Install one: apt-get install -y {package}",
            package=DEBIAN_PACKAGE,
        ),
    )
