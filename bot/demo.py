"""`zhiban demo`: the real bot, a local Bot API emulator and the sample district, on loopback.

A scripted duty day plays in accelerated (moved) time and the conversation is printed as the
people in it would see it. No token and no network are needed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlmodel import select

from bot import demo_summary
from bot.clock import MovableClock
from bot.config import LINK_SECRET_ENV, Settings, settings_from_mapping
from bot.demo_robot import DemoRobot
from bot.i18n import N_, Translator, translator
from bot.models import Unit
from bot.sandbox import SentMessage, SimUser
from bot.sandbox.server import BotApiEmulator
from bot.sandbox.stack import LocalStack, free_port
from bot.services import accounts, roster
from bot.services.reports import summary, workbook
from bot.services.reports.figures import days_between, figures

# What the reporter writes, in the demo's language (a teacher types what comes to hand).
FIRE_TEXT = N_("Smoke from the canteen kitchen; all pupils are out on the playground.")
_NUMBER = re.compile(r"\d{8}-\d{3}")

# 2026-12-01 07:50 in Shanghai: ten minutes before the day shift starts.
DEMO_START = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
DEMO_DAY = date(2026, 12, 1)

# What `zhiban demo --keep DIR` leaves in DIR.
DATABASE = "demo.db"
TRANSCRIPT = "transcript.txt"
CHART = "digest-chart.png"
WORKBOOK = "summary.xlsx"
CONFIG = "config.toml"
KEPT_FILES = (DATABASE, TRANSCRIPT, CHART, WORKBOOK, CONFIG)
SANDBOX_PORT = 8081
PRINCIPAL_ID = 7004  # 杨光明's Telegram user id in the demo
KEPT_CONFIG = """\
# Written by `zhiban demo --keep`: the demo's day, opened by a real `zhiban run` against the
# Bot API emulator (`python -m bot.sandbox --port {port}`). The token comes from
# ZHIBAN_TELEGRAM_TOKEN; the emulator takes any.
[bot]
language = "{language}"

[database]
url = "{url}"

[digest]
time = "20:00"

[telegram]
bot_username = "zhiban_demo_bot"
api_base_url = "http://127.0.0.1:{port}/bot"
api_file_url = "http://127.0.0.1:{port}/file/bot"
"""


class Transcript:
    """Prints what happened since the last call, with narration between the scenes."""

    def __init__(self, emulator: BotApiEmulator, out: TextIO, tz: object) -> None:
        self._emulator = emulator
        self._out = out
        self._tz = tz
        self._shown = 0
        self._robot_shown = 0

    def scene(self, title: str) -> None:
        """Print a scene heading."""
        self.flush()
        self._out.write(f"\n— {title} —\n")

    def skip(self, note: str) -> None:
        """Leave out what happened since the last call, saying so in one line."""
        self._shown = len(self._emulator.transcript())
        self._out.write(f"\n{note}\n")

    def robot(self, texts: list[str], group: str, time: str, about: str) -> None:
        """Print the group robot's messages `about` something since the last call.

        The county group also gets the morning's pages about unmanned posts; they are left out.
        """
        self.flush()
        for text in texts[self._robot_shown :]:
            if about not in text:
                continue
            body = text.strip().replace("\n", "\n        ")
            self._out.write(f"[{time}] bot → {group}: {body}\n")
        self._robot_shown = len(texts)

    def flush(self) -> None:
        """Print the new transcript lines."""
        entries = self._emulator.transcript()
        for entry in entries[self._shown :]:
            self._out.write(entry.render(self._tz) + "\n")  # type: ignore[arg-type]
        self._shown = len(entries)


async def _report_fire(reporter: SimUser, what: str) -> str:
    """/report, Fire, Serious, what happened, Report (the fast path); the incident's number.

    The reporter, 马俊, reads the bot in English, so his buttons are pressed by their English
    labels whatever the demo's language.
    """
    await reporter.send("/report")
    await reporter.wait_for()
    await reporter.press("Fire")
    await reporter.wait_for()
    await reporter.press("Serious")
    await reporter.wait_for()
    await reporter.send(what)
    await reporter.wait_for()
    await reporter.press("🚨 Report")
    found = _NUMBER.search((await reporter.wait_for()).text)
    assert found is not None, "the report was not confirmed with a number"
    return found.group(0)


async def _daily_reports(
    stack: LocalStack,
    clock: MovableClock,
    show: Transcript,
    tr: Translator,
    *,
    principal: SimUser,
    silent: SimUser,
    officer: SimUser,
    desk: SimUser,
) -> None:
    """The afternoon's daily safety report (日报): one school submits, one stays silent.

    The silent school's principal is paged at the deadline (17:00); at 18:00 the township officer
    is paged too and reads the roll-up of her schools, and the county desk reads the county's.
    """
    show.flush()
    clock.set(DEMO_START + timedelta(hours=7, minutes=9))  # 14:59: the morning's pages ran
    await stack.settle()
    show.skip(tr._("(The day goes on; the morning's pages and reminders are left out.)"))
    clock.set(DEMO_START + timedelta(hours=7, minutes=10))
    show.scene(
        tr._(
            "{time} Each school's principal and duty leader are asked for the daily safety report",
            time="15:00",
        )
    )
    await stack.settle()
    await silent.wait_for(lambda m: m.text.startswith("📋"))
    prompt = await principal.wait_for(lambda m: m.text.startswith("📋"))
    await principal.press(prompt.labels[0], message_id=prompt.message_id)  # 📝 Submit
    draft = await principal.wait_for()
    await principal.press(draft.labels[0], message_id=draft.message_id)  # 📤 Send, as listed
    await principal.wait_for()
    await stack.settle()  # the prompt is edited to say who submitted

    clock.set(DEMO_START + timedelta(hours=9, minutes=10))
    show.scene(
        tr._("{time} 石坝乡红岩小学 has not sent its report: its principal is paged", time="17:00")
    )
    await stack.settle()

    clock.set(DEMO_START + timedelta(hours=10, minutes=10))
    show.scene(
        tr._(
            "{time} Still missing: the township officer is paged, and the roll-ups name it",
            time="18:00",
        )
    )
    await stack.settle()
    await officer.wait_for(lambda m: "SB02" in m.text or "红岩" in m.text)
    await desk.wait_for(lambda m: "红岩" in m.text)


async def _evening_digest(
    stack: LocalStack, clock: MovableClock, show: Transcript, tr: Translator, *, desk: SimUser
) -> None:
    """20:00 (the demo's `[digest] time`): every leader reads the day of their area.

    A principal reads their school's; the township officer and the county desk read theirs by
    unit, problems first, followed by a chart.
    """
    show.flush()
    clock.set(DEMO_START + timedelta(hours=12, minutes=9))  # 19:59: the evening's pages ran
    await stack.settle()
    show.skip(tr._("(The evening's pages and reminders are left out.)"))
    clock.set(DEMO_START + timedelta(hours=12, minutes=10))
    show.scene(
        tr._(
            "{time} The daily digest: each leader reads the last 24 hours of their area, "
            "the township and the county with a chart",
            time="20:00",
        )
    )
    await stack.settle()
    await desk.wait_for(lambda m: m.photo is not None)


def _has_button(message: SentMessage, prefix: str) -> bool:
    """Whether the message carries a button whose callback data starts with `prefix`."""
    return any((data or "").startswith(prefix) for row in message.callback_data for data in row)


async def _checkin_round(
    show: Transcript, stack: LocalStack, tr: Translator, *, answering: tuple[SimUser, ...]
) -> None:
    """09:00: the safety check-in (平安报告) reaches everyone on duty; the leaders answer."""
    show.scene(
        tr._("{time} The morning safety check-in (平安报告) asks everyone on duty", time="09:00")
    )
    await stack.settle()
    for person in answering:
        prompt = await person.wait_for(lambda m: _has_button(m, "ck:n:"))
        await person.press(prompt.labels[0], message_id=prompt.message_id)
        await person.wait_for_answer()
    await stack.settle()


async def _silent_checkin(
    show: Transcript,
    stack: LocalStack,
    clock: MovableClock,
    tr: Translator,
    *,
    silent: SimUser,
    leader: SimUser,
) -> None:
    """09:30: one person never answered the check-in; their duty leader is paged about them.

    The silent person was reminded at 09:15. The leader acknowledges; the person's answer
    comes late and the page says so.
    """
    clock.set(DEMO_START + timedelta(minutes=100))
    show.scene(
        tr._(
            "{time} 马俊 has not answered the 09:00 check-in: his duty leader is paged",
            time="09:30",
        )
    )
    await stack.settle()
    page = await leader.wait_for(lambda m: _has_button(m, "pg:a:") and "09:00" in m.text)
    clock.advance(timedelta(minutes=2))
    await leader.press(page.labels[0], message_id=page.message_id)
    await leader.wait_for_answer()
    await stack.settle()
    clock.advance(timedelta(minutes=3))
    show.scene(tr._("{time} 马俊 answers at last: recorded as late", time="09:35"))
    await silent.press("✅ All normal")
    await silent.wait_for_answer()
    await stack.settle()
    # The page about him is edited through the outbox: wait for the edit that says so.
    await leader.wait_for(lambda m: m.message_id == page.message_id and "09:35" in m.text)


# What the reporter adds, and what the principal writes in the final report (终报).
FOLLOW_UP_TEXT = N_("The fire brigade has put out the fire; the kitchen is closed. Photo attached.")
FINAL_CAUSE = N_("Oil in a pan caught fire on the kitchen stove.")
FINAL_MEASURES = N_(
    "Pupils evacuated, fire put out with the kitchen's extinguisher, brigade called."
)
FINAL_OUTCOME = N_("Nobody hurt; the kitchen is closed for one day.")


async def _follow_up_and_final(
    show: Transcript,
    stack: LocalStack,
    clock: MovableClock,
    tr: Translator,
    *,
    number: str,
    reporter: SimUser,
    leader: SimUser,
) -> None:
    """09:45 the reporter adds a follow-up (续报) with a photo; 10:30 the principal closes it.

    The follow-up goes to everyone paged about the fire: the text first, then the photo. The
    final report (终报, `/final N`) asks for the cause, the measures and the outcome.
    """
    clock.set(DEMO_START + timedelta(minutes=115))
    show.scene(
        tr._("{time} 马俊 adds a follow-up (续报) with a photo from the kitchen", time="09:45")
    )
    confirmation = next(m for m in reporter.messages() if _has_button(m, "fu:o:"))
    await reporter.press(confirmation.labels[0], message_id=confirmation.message_id)
    await reporter.wait_for()
    await reporter.send(tr._(FOLLOW_UP_TEXT))
    await reporter.wait_for()
    await reporter.send_photo()
    draft = await reporter.wait_for()
    await reporter.press(draft.labels[0], message_id=draft.message_id)  # 📤 Send
    await reporter.wait_for()
    await stack.settle()

    clock.set(DEMO_START + timedelta(minutes=160))
    show.scene(
        tr._("{time} The principal closes the incident with its final report (终报)", time="10:30")
    )
    await leader.send(f"/final {number}")
    await leader.wait_for()
    for answer in (FINAL_CAUSE, FINAL_MEASURES, FINAL_OUTCOME):
        await leader.send(tr._(answer))
        check = await leader.wait_for()
    await leader.press(check.labels[0], message_id=check.message_id)  # 🏁 Close
    await leader.wait_for()
    await stack.settle()


DUTY_LOG = N_("Quiet afternoon. The kitchen stays closed until tomorrow: keep pupils out of it.")


async def _handover(
    show: Transcript, stack: LocalStack, clock: MovableClock, tr: Translator, *, leaving: SimUser
) -> None:
    """20:02 马俊 clocks out with his duty log; 20:05 唐磊, late for the night shift, reads it.

    The night shift starts at 20:00, so 唐磊's clock-in is recorded late.
    """
    show.flush()
    clock.set(DEMO_START + timedelta(hours=12, minutes=12))
    show.scene(tr._("{time} 马俊 clocks out with the duty log (值班记录)", time="20:02"))
    await leaving.send("/out")
    await leaving.wait_for()
    await leaving.send(tr._(DUTY_LOG))
    draft = await leaving.wait_for()
    await leaving.press(draft.labels[0], message_id=draft.message_id)  # ✅ Done
    await leaving.wait_for()
    await stack.settle()

    show.flush()
    clock.set(DEMO_START + timedelta(hours=12, minutes=15))
    await stack.settle()
    show.skip(tr._("(The evening's pages and reminders are left out.)"))
    show.scene(
        tr._("{time} 唐磊 links his account and clocks in late for the night shift", time="20:05")
    )
    assert stack.db is not None
    issued = await accounts.issue_invites(
        stack.db, staff_nos=["SB01-06"], now=clock.now(), valid_for=timedelta(days=7)
    )
    night = stack.emulator.user(7007, "唐磊", language_code="zh-hans")
    await night.start(issued[0].code)
    await night.wait_for()
    await night.send("/in")
    await night.wait_for()  # 📍 Share my location
    await night.send_location(32.4826, 105.1541, horizontal_accuracy=15)
    await night.wait_for(lambda m: "✅" in m.text)
    await stack.settle()


class _Tee:
    """Writes to the terminal and to the kept transcript."""

    def __init__(self, *outs: TextIO) -> None:
        self._outs = outs

    def write(self, text: str) -> int:
        for out in self._outs:
            out.write(text)
        return len(text)


def run_demo(*, language: str, out: TextIO, keep: Path | None = None) -> None:
    """Play the scripted day and print it; with `keep`, leave its files in that folder."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="zhiban-demo-") as folder:
            asyncio.run(_play(language=language, out=out, folder=Path(folder), keep=False))
        return
    keep.mkdir(parents=True, exist_ok=True)
    kept_in = keep.resolve()
    for name in KEPT_FILES:
        (kept_in / name).unlink(missing_ok=True)
    with (kept_in / TRANSCRIPT).open("w", encoding="utf-8") as transcript:
        tee = _Tee(out, transcript)
        kept = asyncio.run(_play(language=language, out=tee, folder=kept_in, keep=True))  # type: ignore[arg-type]
    assert kept is not None
    for name, content in kept.items():
        (kept_in / name).write_bytes(content)


async def _keep_files(
    stack: LocalStack,
    settings: Settings,
    tr: Translator,
    folder: Path,
    *,
    desk: SimUser,
    now: datetime,
) -> dict[str, bytes]:
    """The chart the desk received, the county's XLSX for the day, and a config for `run`."""
    assert stack.db is not None
    chart = next(m for m in reversed(desk.messages()) if m.photo is not None)
    assert chart.photo is not None
    async with stack.db.read() as uow:
        county = (await uow.session.exec(select(Unit).where(Unit.code == "QC"))).one()
    assert county.id is not None
    tz = settings.bot.tz
    found = await figures(
        stack.db,
        unit_id=county.id,
        period=days_between(DEMO_DAY, DEMO_DAY, tz),
        now=now,
        deadline_severities=summary.deadline_severities(settings),
    )
    config = KEPT_CONFIG.format(
        language=settings.bot.language,
        url=f"sqlite+aiosqlite:///{folder / DATABASE}",
        port=SANDBOX_PORT,
    )
    return {
        CHART: chart.photo,
        WORKBOOK: workbook.summary_workbook(tr, found, tz),
        CONFIG: config.encode(),
    }


async def _play(*, language: str, out: TextIO, folder: Path, keep: bool) -> dict[str, bytes] | None:
    """Play the day in `folder`'s database; with `keep`, the files to keep there."""
    ops_port = free_port()
    async with DemoRobot() as robot:
        return await _play_with(
            language=language, out=out, folder=folder, keep=keep, robot=robot, ops_port=ops_port
        )


async def _play_with(
    *, language: str, out: TextIO, folder: Path, keep: bool, robot: DemoRobot, ops_port: int
) -> dict[str, bytes] | None:
    kept = None
    tr = translator(language)
    clock = MovableClock(DEMO_START)
    settings = settings_from_mapping(
        {
            "bot": {"language": language},
            # The digest in the evening: the demo's day ends with it.
            "digest": {"time": "20:00"},
            "database": {"url": f"sqlite+aiosqlite:///{folder / DATABASE}"},
            # The county's pages also go to its DingTalk group, with the acknowledge link.
            "web": {"public_url": f"http://127.0.0.1:{ops_port}"},
            "channels": [
                {"name": "county-dingtalk", "kind": "dingtalk", "url": robot.url, "units": ["QC"]}
            ],
        },
        environ={LINK_SECRET_ENV: secrets.token_urlsafe(32)},
    )
    tz = settings.bot.tz
    async with LocalStack(settings, clock, ops_port=ops_port) as stack:
        assert stack.db is not None
        summary = await roster.import_roster(
            stack.db,
            roster.sample_district_files(),
            tz=tz,
            default_language=language,
            now=clock.now(),
        )
        out.write(
            tr._("Zhiban demo: the real bot and a local Bot API emulator on loopback.") + "\n"
        )
        out.write(
            tr._("Sample district loaded:") + "\n" + roster.describe_summary(summary, tr) + "\n"
        )
        show = Transcript(stack.emulator, out, tz)
        emu = stack.emulator

        show.scene(tr._("{time} Someone without an invite tries the bot", time="07:50"))
        stranger = emu.user(7000, "路人甲", language_code="zh-hans")
        await stranger.send("/me")
        await stranger.wait_for()

        clock.advance(timedelta(minutes=1))
        show.scene(tr._("{time} The township's administrator links her account", time="07:51"))
        issued = await accounts.issue_invites(
            stack.db, staff_nos=["SB002"], now=clock.now(), valid_for=timedelta(days=7)
        )
        out.write(tr._("(zhiban invite SB002 printed her link)") + "\n")
        admin = emu.user(7001, "吴静", language_code="zh-hans")
        await admin.start(issued[0].code)
        await admin.wait_for()
        await admin.send("/invite SB01-04 SB01-05")
        links = await admin.wait_for()

        clock.advance(timedelta(minutes=2))
        show.scene(tr._("{time} Two teachers open the links she sent them", time="07:53"))
        codes = [line.split("start=")[1].split()[0] for line in links.text.splitlines()]
        teacher = emu.user(7002, "小红", language_code="zh-hans")
        await teacher.start(codes[0])
        await teacher.wait_for()
        colleague = emu.user(7003, "Ma Jun", language_code="en")
        await colleague.start(codes[1])
        await colleague.wait_for()
        await colleague.send("/help")
        await colleague.wait_for()

        clock.advance(timedelta(minutes=2))
        show.scene(tr._("{time} The officer checks a school in her area", time="07:55"))
        await admin.send("/unit SB01")
        await admin.wait_for()
        await admin.send("/unit MY01")
        await admin.wait_for()

        clock.advance(timedelta(minutes=1))
        show.scene(tr._("{time} Two school leaders link their accounts", time="07:56"))
        await admin.send("/invite SB01-01 SB02-01")
        leader_links = await admin.wait_for()
        codes = [line.split("start=")[1].split()[0] for line in leader_links.text.splitlines()]
        principal = emu.user(PRINCIPAL_ID, "杨光明", language_code="zh-hans")
        await principal.start(codes[0])
        await principal.wait_for()
        feng = emu.user(7005, "冯志刚", language_code="zh-hans")
        await feng.start(codes[1])
        await feng.wait_for()

        clock.advance(timedelta(minutes=2))
        show.scene(tr._("{time} The day shift clocks in at the school gate", time="07:58"))
        await colleague.send("/in")
        await colleague.wait_for()
        await colleague.send_location(32.4827, 105.1543, horizontal_accuracy=15)
        await colleague.wait_for()
        clock.advance(timedelta(minutes=2))
        await stack.settle()
        await principal.send("/in")
        await principal.wait_for()
        await principal.send_location(32.4823, 105.1538, horizontal_accuracy=20)
        await principal.wait_for()
        await feng.send("/in")
        await feng.wait_for()
        await feng.send_location(32.4611, 105.1320, horizontal_accuracy=25)
        await feng.wait_for()

        clock.set(DEMO_START + timedelta(minutes=25))
        show.scene(
            tr._(
                "{time} Nobody has clocked in at 石坝乡红岩小学: its leader is paged",
                time="08:15",
            )
        )
        await stack.settle()
        await feng.wait_for()
        page = next(m for m in feng.messages() if m.buttons and "13800000019" in m.text)
        clock.advance(timedelta(minutes=2))
        await feng.press(page.labels[0], message_id=page.message_id)
        await feng.wait_for_answer()
        await stack.settle()

        clock.advance(timedelta(minutes=3))
        show.scene(tr._("{time} The principal looks at the school's day", time="08:20"))
        await principal.send("/shifts")
        await principal.wait_for()

        clock.advance(timedelta(minutes=5))
        show.scene(
            tr._(
                "{time} A fire at 石坝小学, reported with three taps and one message",
                time="08:25",
            )
        )
        number = await _report_fire(colleague, tr._(FIRE_TEXT))
        await stack.settle()
        fire = next(m for m in principal.messages() if m.buttons and "🕒" in m.text)

        clock.advance(timedelta(minutes=2))
        show.scene(
            tr._(
                "{time} The principal acknowledges it at the school, but does not pass it up",
                time="08:27",
            )
        )
        await principal.press(fire.labels[0], message_id=fire.message_id)
        await principal.wait_for_answer()
        await stack.settle()

        # Meanwhile the morning's other missed shifts run their course; the county desk is
        # not linked yet, so none of their stand-in pages falls to her.
        clock.set(DEMO_START + timedelta(minutes=70))
        await _checkin_round(show, stack, tr, answering=(principal, feng))
        clock.set(DEMO_START + timedelta(minutes=80))
        show.scene(tr._("{time} The county's duty desk links her account", time="09:10"))
        issued = await accounts.issue_invites(
            stack.db, staff_nos=["QC002"], now=clock.now(), valid_for=timedelta(days=7)
        )
        out.write(tr._("(zhiban invite QC002 printed her link)") + "\n")
        desk = emu.user(7006, "李秀英", language_code="zh-hans")
        await desk.start(issued[0].code)
        await desk.wait_for()

        clock.set(DEMO_START + timedelta(minutes=85))
        show.scene(
            tr._(
                "{time} Ten minutes before the one-hour deadline, Zhiban passes it up to the "
                "township and the county itself, and records the school's report as late",
                time="09:15",
            )
        )
        await stack.settle()
        await admin.wait_for(lambda m: "🕒" in m.text)
        await desk.wait_for(lambda m: "🕒" in m.text)
        show.robot(robot.texts, tr._("DingTalk group of 青川县教育局"), "09:15", number)

        clock.advance(timedelta(minutes=1))
        show.scene(tr._("{time} The township's officer reads the timeline", time="09:16"))
        await admin.send(f"/incident {number}")
        await admin.wait_for()

        clock.advance(timedelta(minutes=1))
        show.scene(tr._("{time} The county's duty desk looks at the board", time="09:17"))
        await desk.send("/board")
        await desk.wait_for(lambda m: m.text.startswith("📋"))

        clock.advance(timedelta(minutes=1))
        show.scene(
            tr._(
                "{time} The county's duty desk acknowledges the fire; the pages below say so",
                time="09:18",
            )
        )
        fire_page = next(m for m in desk.messages() if _has_button(m, "pg:a:") and number in m.text)
        await desk.press(fire_page.labels[0], message_id=fire_page.message_id)
        await desk.wait_for_answer()
        await stack.settle()

        await _silent_checkin(show, stack, clock, tr, silent=colleague, leader=principal)
        await _follow_up_and_final(
            show, stack, clock, tr, number=number, reporter=colleague, leader=principal
        )
        await _daily_reports(
            stack, clock, show, tr, principal=principal, silent=feng, officer=admin, desk=desk
        )
        await _evening_digest(stack, clock, show, tr, desk=desk)
        await _handover(show, stack, clock, tr, leaving=colleague)
        show.flush()
        day = await demo_summary.compute(
            stack.db,
            settings,
            scope_code="QC",
            viewer_staff_no="QC002",
            start=DEMO_START,
            now=clock.now(),
        )
        lines = demo_summary.render(tr, tz, day)
        out.write("\n══ " + lines[0] + " ══\n" + "\n".join(lines[1:]) + "\n")
        if keep:
            kept = await _keep_files(stack, settings, tr, folder, desk=desk, now=clock.now())
        out.write("\n" + tr._("End of the demo.") + "\n")
    if keep:
        out.write(
            tr._(
                "Kept in {folder}: the database ({database}), the transcript ({transcript}), "
                "the digest's chart ({chart}), the county's summary of the day ({workbook}) "
                "and a config for the bot ({config}).",
                folder=folder,
                database=DATABASE,
                transcript=TRANSCRIPT,
                chart=CHART,
                workbook=WORKBOOK,
                config=CONFIG,
            )
            + "\n"
            + tr._(
                "To open the kept day with the bot, start the Bot API emulator in one terminal, "
                "as the principal 杨光明 (he is linked as Telegram user {user}):",
                user=PRINCIPAL_ID,
            )
            + f"\n    python -m bot.sandbox --port {SANDBOX_PORT} --user-id {PRINCIPAL_ID}"
            + " --user-name 杨光明\n"
            + tr._("and the bot in another (the emulator takes any token):")
            + f"\n    ZHIBAN_TELEGRAM_TOKEN=123456:demo zhiban --config {folder / CONFIG} run\n"
        )
    return kept
