"""The `zhiban` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

from sqlalchemy.exc import DBAPIError

from bot.clock import SystemClock
from bot.config import (
    CONFIG_ENV,
    LINK_SECRET_ENV,
    LINK_SECRET_MIN_LENGTH,
    TOKEN_ENV,
    WEBHOOK_SECRET_ENV,
    ConfigError,
    Settings,
    load_settings,
    resolve_config_path,
)
from bot.db import create_engine
from bot.election import InstanceLockedError, hold_sqlite_file
from bot.errors import ZhibanError
from bot.i18n import Translator, translator
from bot.migrate import current_revision, upgrade
from bot.services import audit, channel_outbox, outbox
from bot.uow import Database


class CommandError(Exception):
    """A command failed; the message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 1."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming what is wrong and exit 1."""
        self.exit(1, f"{self.prog}: {message}\n")


def _parser() -> _Parser:
    # --config is accepted before or after the command name.
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"configuration file (default: ${CONFIG_ENV}, else ./config.toml)",
    )
    parser = _Parser(prog="zhiban", description="Zhiban (值班) duty bot", parents=[common])
    commands = parser.add_subparsers(dest="command", required=False, parser_class=_Parser)
    commands.add_parser("run", parents=[common], help="run the bot (polling or webhook)")
    demo = commands.add_parser(
        "demo", parents=[common], help="play a scripted duty day against a local Bot API emulator"
    )
    demo.add_argument("--lang", "--language", dest="language", choices=["zh", "en"], default=None)
    demo.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        default=None,
        help="keep the database, transcript, chart and XLSX in DIR, with a config to open them",
    )
    check = commands.add_parser("check-config", parents=[common], help="validate a config file")
    check.add_argument("path", nargs="?", default=None)
    commands.add_parser(
        "doctor",
        parents=[common],
        help="check the config, database, migrations and the Bot API (through the proxy)",
    )
    database = commands.add_parser("db", parents=[common], help="database schema")
    db_commands = database.add_subparsers(dest="db_command", required=False, parser_class=_Parser)
    db_commands.add_parser("upgrade", parents=[common], help="apply pending migrations")
    roster = commands.add_parser("roster", parents=[common], help="import and export the roster")
    roster_commands = roster.add_subparsers(
        dest="roster_command", required=False, parser_class=_Parser
    )
    importing = roster_commands.add_parser(
        "import", parents=[common], help="import units.csv, people.csv, shifts.csv or one .xlsx"
    )
    importing.add_argument("files", nargs="+", type=Path)
    exporting = roster_commands.add_parser("export", parents=[common], help="write CSV and XLSX")
    exporting.add_argument("directory", type=Path)
    template = roster_commands.add_parser(
        "template", parents=[common], help="write templates, each with one example row"
    )
    template.add_argument("directory", type=Path)
    template.add_argument("--force", action="store_true", help="overwrite files already there")
    roster_commands.add_parser(
        "sample", parents=[common], help="import the packaged sample district (empty database)"
    )
    leaving = roster_commands.add_parser(
        "deactivate",
        parents=[common],
        help="take people off the roster: unlink accounts, leave future shifts unfilled",
    )
    leaving.add_argument("staff_nos", nargs="+", metavar="STAFF_NO")
    invite = commands.add_parser(
        "invite", parents=[common], help="print one-time invite links (STAFF_NO… or --unit CODE)"
    )
    invite.add_argument("staff_nos", nargs="*", metavar="STAFF_NO")
    invite.add_argument("--unit", metavar="CODE", help="everyone in the unit and below unlinked")
    invite.add_argument("--qr", metavar="DIR", type=Path, help="also write printable QR codes")
    ical = commands.add_parser(
        "ical", parents=[common], help="write a person's shifts as an .ics calendar file"
    )
    ical.add_argument("staff_no", metavar="STAFF_NO")
    ical.add_argument(
        "--out", metavar="FILE", type=Path, help="where to write (default: zhiban-STAFF_NO.ics)"
    )
    pages = commands.add_parser("pages", parents=[common], help="list pages and their delivery")
    pages.add_argument(
        "--status",
        action="append",
        choices=["pending", "sending", "sent", "failed", "unreachable", "cancelled"],
        help="only pages in this status (may be repeated)",
    )
    pages.add_argument("--limit", type=_positive_int, default=50)
    audit_parser = commands.add_parser("audit", parents=[common], help="print the audit log")
    audit_parser.add_argument(
        "--since",
        required=True,
        type=_local_date,
        help="local date YYYY-MM-DD or 'YYYY-MM-DD HH:MM'",
    )
    audit_parser.add_argument("--limit", type=_positive_int, default=1000)
    report = commands.add_parser(
        "report",
        parents=[common],
        help="the summary of a unit and everything below it: text, chart (PNG) and XLSX",
    )
    for flag, dest in (("--from", "first"), ("--to", "last")):
        report.add_argument(
            flag,
            dest=dest,
            required=True,
            type=_day,
            metavar="YYYY-MM-DD",
            help="first day" if dest == "first" else "last day, included",
        )
    report.add_argument("--unit", metavar="CODE", help="the unit (default: the top unit)")
    report.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("."), help="where to write the files"
    )
    report.add_argument("--lang", choices=["zh", "en"], default=None, help="language")
    shifts = commands.add_parser("shifts", parents=[common], help="duty shifts")
    shift_commands = shifts.add_subparsers(
        dest="shifts_command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    generating = shift_commands.add_parser(
        "generate",
        parents=[common],
        help="fill shifts from the [rota] pattern for a unit and below, rotating people",
    )
    generating.add_argument("--unit", required=True, metavar="CODE")
    for flag, dest in (("--from", "first"), ("--to", "last")):
        generating.add_argument(
            flag, dest=dest, required=True, type=_local_date, metavar="YYYY-MM-DD"
        )
    generating.add_argument(
        "--replace",
        action="store_true",
        help="reassign people on existing shifts (never ones begun or clocked in)",
    )
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _local_date(value: str) -> datetime:
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern)  # noqa: DTZ007 - made aware with the config's zone
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-12-01 or 2026-12-01 08:00")


def _day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()  # noqa: DTZ007 - a local day
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-12-01") from None


def _settings(args: argparse.Namespace) -> Settings:
    path = resolve_config_path(getattr(args, "config", None))
    try:
        return load_settings(path)
    except ConfigError as error:
        raise CommandError(error.problems[0]) from None


async def _with_database(
    settings: Settings, work: Callable[[Database], Awaitable[None]], *, migrate: bool = True
) -> None:
    database = Database(create_engine(settings.database))
    try:
        if migrate:
            await upgrade(database.engine)
        await work(database)
    finally:
        await database.dispose()


def _check_config(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else resolve_config_path(getattr(args, "config", None))
    try:
        settings = load_settings(path)
    except ConfigError as error:
        for line in error.problems:
            print(line)
        return 1
    if settings.rota.holidays_file is not None:
        from bot.services.holidays import load_holidays

        try:
            load_holidays(settings.rota.holidays_file)
        except ZhibanError as error:
            print(f"rota.holidays_file: {error.render(translator(settings.bot.language))}")
            return 1
    print("OK")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from bot.doctor import Finding, Status, check_config, examine, failed

    path = resolve_config_path(getattr(args, "config", None))
    checked = check_config(path)
    if isinstance(checked, list):
        tr = translator(None)
        for problem in checked:
            print(Finding(Status.FAIL, tr._("Configuration: {problem}", problem=problem)).line())
        return 1
    findings = asyncio.run(examine(checked, path, token=os.environ.get(TOKEN_ENV)))
    for finding in findings:
        print(finding.line())
    return 1 if failed(findings) else 0


def _db_upgrade(settings: Settings, tr: Translator) -> int:
    async def work(database: Database) -> None:
        revision = await current_revision(database.engine)
        print(tr._("The database is at revision {revision}.", revision=revision))

    asyncio.run(_with_database(settings, work))
    return 0


def _roster(args: argparse.Namespace, settings: Settings, tr: Translator) -> int:
    from bot.services import roster

    tz = settings.bot.tz

    async def do_import(database: Database, files: Sequence[Path], *, sample: bool) -> None:
        summary = await roster.import_roster(
            database,
            files,
            tz=tz,
            default_language=settings.bot.language,
            now=SystemClock().now(),
            only_into_empty=sample,
        )
        print(roster.describe_summary(summary, tr, tz))

    async def work(database: Database) -> None:
        if args.roster_command == "import":
            await do_import(database, args.files, sample=False)
        elif args.roster_command == "sample":
            await do_import(database, roster.sample_district_files(), sample=True)
        elif args.roster_command == "export":
            for path in await roster.export_roster(database, args.directory, tz=tz):
                print(path)
        elif args.roster_command == "deactivate":
            departures = await roster.deactivate(
                database, args.staff_nos, now=SystemClock().now(), tz=tz
            )
            print(roster.describe_departures(departures, tr, tz))

    if args.roster_command == "template":
        for path in roster.write_templates(args.directory, force=args.force):
            print(path)
        return 0
    asyncio.run(_with_database(settings, work))
    return 0


def _pages(args: argparse.Namespace, settings: Settings, tr: Translator) -> int:
    tz = settings.bot.tz

    async def work(database: Database) -> None:
        async with database.uow() as uow:
            rows = await outbox.page_listing(uow.session, statuses=args.status, limit=args.limit)
            robots = await channel_outbox.listing(
                uow.session, statuses=args.status, limit=args.limit
            )
        if not rows and not robots:
            print(tr._("No pages."))
        for row in rows:
            sent = tr.datetime_text(row.sent_at, tz, "MM-dd HH:mm:ss") if row.sent_at else "-"
            flags = " " + tr._("(late)") if row.late else ""
            error = f"  {row.last_error}" if row.last_error else ""
            print(
                f"#{row.id}\t{row.status}\t{tr.datetime_text(row.created_at, tz, 'MM-dd HH:mm:ss')}"
                f"\t{sent}\t{row.person} ({row.unit})\t{row.attempts}{flags}{error}"
            )
        if robots:
            print(tr._("Pages on one-way channels (group robots):"))
        for robot in robots:
            stamp = "MM-dd HH:mm:ss"
            sent = tr.datetime_text(robot.sent_at, tz, stamp) if robot.sent_at else "-"
            waits = ""
            if robot.status == "pending" and robot.not_before > robot.created_at:
                when = tr.datetime_text(robot.not_before, tz, stamp)
                waits = "  " + tr._("waits until {time}", time=when)
            error = f"  {robot.last_error}" if robot.last_error else ""
            people = tr.list_text(robot.mentioned)
            print(
                f"#{robot.id}\t{robot.status}\t{tr.datetime_text(robot.created_at, tz, stamp)}"
                f"\t{sent}\t→ {robot.channel} ({robot.unit}): {people}\t{robot.attempts}"
                f"{waits}{error}"
            )

    asyncio.run(_with_database(settings, work))
    return 0


def _audit(args: argparse.Namespace, settings: Settings, tr: Translator) -> int:
    tz = settings.bot.tz
    since = args.since.replace(tzinfo=tz)

    async def work(database: Database) -> None:
        async with database.uow() as uow:
            lines = await audit.entries_since(uow.session, since=since, limit=args.limit)
        for line in lines:
            refused = "\t" + tr._("refused") if not line.allowed else ""
            detail = "\t" + json.dumps(line.detail, ensure_ascii=False) if line.detail else ""
            print(
                f"{tr.datetime_text(line.at, tz, 'yyyy-MM-dd HH:mm:ss')}\t{line.actor}"
                f"\t{line.action}\t{line.subject}{refused}{detail}"
            )

    asyncio.run(_with_database(settings, work))
    return 0


def _shifts_generate(args: argparse.Namespace, settings: Settings, tr: Translator) -> int:
    from bot.services import rota
    from bot.services.holidays import load_holidays

    def show(note: rota.RotaNote) -> None:
        print(note.render(tr), file=sys.stderr, flush=True)

    calendar = load_holidays(settings.rota.holidays_file)

    async def work(database: Database) -> None:
        summary = await rota.generate(
            database,
            unit_code=args.unit,
            first=args.first.date(),
            last=args.last.date(),
            rota=settings.rota,
            tz=settings.bot.tz,
            replace=args.replace,
            now=SystemClock().now(),
            progress=show,
            calendar=calendar,
        )
        print(
            tr._(
                "{what}: {created} new, {updated} updated, {unchanged} unchanged",
                what=tr._("Shifts"),
                created=summary.created,
                updated=summary.updated,
                unchanged=summary.unchanged,
            )
        )

    asyncio.run(_with_database(settings, work))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import col, select

    from bot.models import Unit
    from bot.services.reports import charts, summary, workbook
    from bot.services.reports.figures import days_between, figures

    tz = settings.bot.tz
    tr = translator(args.lang or settings.bot.language)
    if args.last < args.first:
        raise CommandError(f"--to {args.last} is before --from {args.first}")
    period = days_between(args.first, args.last, tz)

    async def work(database: Database) -> None:
        async with database.read() as uow:
            query = select(Unit)
            if args.unit:
                query = query.where(Unit.code == args.unit)
            else:
                query = query.where(col(Unit.parent_id).is_(None)).order_by(col(Unit.id))
            unit = (await uow.session.exec(query)).first()
        if unit is None or unit.id is None:
            raise CommandError(
                f"--unit: there is no unit {args.unit}" if args.unit else "the roster has no units"
            )
        found = await figures(
            database,
            unit_id=unit.id,
            period=period,
            now=SystemClock().now(),
            deadline_severities=summary.deadline_severities(settings),
        )
        print(summary.plain_text(summary.summary_text(tr, found, tz)))
        args.out.mkdir(parents=True, exist_ok=True)
        stem = summary.file_stem(found)
        png = args.out / f"{stem}.png"
        png.write_bytes(
            charts.summary_chart(tr, found, period=summary.period_text(tr, found, tz, days=True))
        )
        xlsx = args.out / f"{stem}.xlsx"
        xlsx.write_bytes(workbook.summary_workbook(tr, found, tz))
        print(png)
        print(xlsx)

    asyncio.run(_with_database(settings, work))
    return 0


async def _bot_username(settings: Settings) -> str:
    if settings.telegram.bot_username:
        return settings.telegram.bot_username.lstrip("@")
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CommandError(
            f"set [telegram] bot_username in the config, or {TOKEN_ENV} to ask Telegram for it"
        )
    from telegram import Bot
    from telegram.error import TelegramError

    from bot.network import bot_request

    try:
        async with Bot(
            token,
            base_url=settings.telegram.api_base_url,
            request=bot_request(settings.telegram),
            get_updates_request=bot_request(settings.telegram),
        ) as bot:
            return str(bot.username)
    except TelegramError as error:
        raise CommandError(f"cannot ask the Bot API for the bot's name: {error}") from None


def _invite(args: argparse.Namespace, settings: Settings, tr: Translator) -> int:
    from bot.invite_sheet import invite_link, write_sheet
    from bot.services import accounts

    if bool(args.staff_nos) == bool(args.unit):
        raise CommandError("give staff numbers or --unit CODE (one of the two)")

    async def work(database: Database) -> None:
        username = await _bot_username(settings)
        now = SystemClock().now()
        invites = await accounts.issue_invites(
            database,
            staff_nos=args.staff_nos,
            unit_code=args.unit,
            now=now,
            valid_for=settings.invites.valid_for,
        )
        for invite in invites:
            print(f"{invite.staff_no}\t{invite.name}\t{invite_link(username, invite.code)}")
        if args.qr is not None and invites:
            written = write_sheet(
                args.qr, invites, bot_username=username, tr=tr, tz=settings.bot.tz, now=now
            )
            print(tr._("QR codes written: {path}", path=written[-1]), file=sys.stderr)

    asyncio.run(_with_database(settings, work))
    return 0


def _ical(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import calendar_feed

    now = SystemClock().now()
    found: list[calendar_feed.Feed] = []

    async def work(database: Database) -> None:
        found.append(await calendar_feed.feed(database, staff_no=args.staff_no, now=now))

    asyncio.run(_with_database(settings, work))
    feed = found[0]
    reader = translator(feed.language or settings.bot.language)
    out: Path = args.out or Path(calendar_feed.file_name(feed))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(calendar_feed.ics(feed, reader, settings.bot.tz, now=now))
    print(
        reader.n_(
            "{path}: {count} shift of {name}",
            "{path}: {count} shifts of {name}",
            len(feed.shifts),
            path=out,
            name=feed.name,
        )
    )
    return 0


def _run(settings: Settings) -> int:
    gc.disable()  # the bot's modules load faster without the cyclic collector (bot/__main__.py)
    try:
        from bot.app import configure_logging, run_bot
    finally:
        gc.enable()

    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CommandError(f"{TOKEN_ENV} is not set: get a token from @BotFather and export it")
    if settings.telegram.mode == "webhook" and not settings.webhook_secret:
        raise CommandError(f"{WEBHOOK_SECRET_ENV} is not set: webhook mode needs a secret token")
    secret = settings.link_secret or ""
    if settings.web.public_url and len(secret) < LINK_SECRET_MIN_LENGTH:
        raise CommandError(
            f"{LINK_SECRET_ENV} is {'too short' if secret else 'not set'}: [web] public_url needs "
            f"a secret of at least {LINK_SECRET_MIN_LENGTH} characters (openssl rand -hex 32)"
        )
    from telegram.error import InvalidToken

    from bot.channels import registry

    try:
        registry.build(settings, os.environ)  # a missing secret or client: one line, before all
    except ConfigError as error:
        raise CommandError(error.problems[0]) from None
    try:
        # Held until the process ends: a second `zhiban run` on this SQLite file is refused.
        instance_lock = hold_sqlite_file(settings.database.url)
    except InstanceLockedError as error:
        raise CommandError(str(error)) from None
    try:
        configure_logging(token, proxy=settings.telegram.proxy)
        asyncio.run(run_bot(settings, token=token))
    except InvalidToken:
        raise CommandError(
            f"Telegram refused the token in {TOKEN_ENV}: check it with @BotFather"
        ) from None
    finally:
        if instance_lock is not None:
            instance_lock.close()
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    language = args.language or settings.bot.language
    run_demo(language=language, out=sys.stdout, keep=args.keep)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `zhiban` command and return its exit status."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unknown option or argument: {' '.join(unknown)}")
    for level in ("command", "db_command", "roster_command"):
        if getattr(args, level, "") is None:
            parser.error("a command is missing; see zhiban --help")
    tr = translator(None)
    try:
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "doctor":
            return _doctor(args)
        if args.command == "demo":
            path = resolve_config_path(getattr(args, "config", None))
            settings = _settings(args) if path.exists() else Settings()
            return _demo(args, settings)
        settings = _settings(args)
        tr = translator(settings.bot.language)
        if args.command == "db":
            return _db_upgrade(settings, tr)
        if args.command == "roster":
            return _roster(args, settings, tr)
        if args.command == "run":
            return _run(settings)
        if args.command == "invite":
            return _invite(args, settings, tr)
        if args.command == "ical":
            return _ical(args, settings)
        if args.command == "pages":
            return _pages(args, settings, tr)
        if args.command == "audit":
            return _audit(args, settings, tr)
        if args.command == "shifts":
            return _shifts_generate(args, settings, tr)
        if args.command == "report":
            return _report(args, settings)
    except CommandError as error:
        print(f"zhiban: {error}", file=sys.stderr)
        return 1
    except ZhibanError as error:
        print(f"zhiban: {error.render(tr)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except DBAPIError as error:
        # An unreachable server or an unopenable file: say what the driver said, not where.
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"zhiban: database ([database] url): {reason}", file=sys.stderr)
        return 1
    except OSError as error:
        # A path that does not exist or cannot be written: one line naming it, not a traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"zhiban: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (`zhiban demo | head`): end quietly, as Unix tools do.

    Python's documented recipe (library/signal.html, "Note on SIGPIPE"): point stdout at devnull
    so the interpreter's final flush does not fail again, and exit with 128 + SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def entry() -> NoReturn:
    """Console-script entry point (`zhiban`, `python -m bot`)."""
    # Zhiban runs on asyncio only. httpcore (under python-telegram-bot's httpx) imports trio
    # when it is installed, to serve trio event loops too: a development install has it
    # (selenium's), and it cost every start 0.16 s. Marked absent in the command's process,
    # httpcore uses asyncio's primitives, as in an install without it.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    try:
        status = main()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
    except BrokenPipeError:
        status = _quiet_broken_pipe()
    sys.exit(status)
