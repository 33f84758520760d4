"""Reaching Telegram: through an HTTP or SOCKS5 proxy, and waiting out a Bot API that is down."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from asyncio.subprocess import PIPE
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from factories import build_district
from proxies import HttpProxy, Socks5Proxy
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from test_run_process import process_env

from bot.clock import MovableClock
from bot.config import EscalationStep, settings_from_mapping
from bot.models import OutboxMessage, OutboxStatus
from bot.sandbox import BotApiEmulator
from bot.sandbox.stack import LocalStack, free_port
from bot.services import escalation
from bot.services.page_text import PageSubject

PASSWORD = "s3cret-proxy-pw"


async def outbox_rows(session: AsyncSession) -> list[OutboxMessage]:
    return list((await session.exec(select(OutboxMessage))).all())


async def _round_trip_through(
    proxy: HttpProxy | Socks5Proxy, database_url: str, clock: MovableClock
) -> LocalStack:
    """Run the bot behind `proxy`: a /start answered, then a page sent by the outbox sender."""
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "telegram": {"proxy": proxy.url}}, environ={}
    )
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        district = await build_district(stack.db)
        principal = stack.emulator.user(district.chats["principal"], "王校长")
        await principal.start()
        greeting = await principal.wait_for(timeout=10)
        assert greeting.text.startswith("值班机器人可以做什么"), greeting.text  # /start, answered
        async with stack.db.uow() as uow:
            await escalation.start(
                uow.session,
                policy="test",
                steps=[EscalationStep(after=timedelta(0), roles=["principal"])],
                subject_type="test",
                subject_id=1,
                unit_id=district.units["S"],
                now=clock.now(),
                subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
            )
            await uow.commit()
        await stack.settle()
        page = await principal.wait_for(timeout=10)
        assert page.text.startswith("🚨 Post unmanned"), page.text
    return stack


async def test_a_bot_behind_an_http_proxy_reaches_the_emulator_with_every_call(
    database_url: str, clock: MovableClock
) -> None:
    async with HttpProxy() as proxy:
        stack = await _round_trip_through(proxy, database_url, clock)
    seen = proxy.methods
    # Both of the Application's clients and the outbox sender's own Bot went through it: the
    # sender checks its token with a getMe of its own, and sent the page.
    assert seen["getMe"] >= 2, seen
    assert seen["getUpdates"] >= 1 and seen["setMyCommands"] >= 1, seen
    assert seen["sendMessage"] >= 2, seen  # the greeting (a reply) and the page (the outbox)
    # Not one call reached the Bot API around the proxy.
    emulated = {call.method for call in stack.emulator.calls}
    for method in emulated - {"getUpdates"}:
        assert len(stack.emulator.calls_of(method)) == seen[method], (method, seen)
    # A long poll cut short by the stop reached the proxy, but the emulator never answered it.
    assert len(stack.emulator.calls_of("getUpdates")) <= seen["getUpdates"], seen


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_bot_behind_a_socks5_proxy_with_a_password_reaches_the_emulator(
    database_url: str, clock: MovableClock
) -> None:
    async with Socks5Proxy(user="zhiban", password=PASSWORD) as proxy:
        await _round_trip_through(proxy, database_url, clock)
    assert proxy.connections >= 3  # the bot's, getUpdates', and the sender's clients
    assert {"getMe", "getUpdates", "sendMessage"} <= set(proxy.methods), proxy.methods


async def test_run_without_a_route_to_telegram_retries_in_one_line_each_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    closed = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"\n'
        f'[telegram]\napi_base_url = "http://127.0.0.1:{closed}/bot"\n'
        f'api_file_url = "http://127.0.0.1:{closed}/file/bot"\n'
        f'proxy = "http://zhiban:{PASSWORD}@127.0.0.1:{closed}"\n',
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=process_env(config),
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        # Two tries (waits of 1 s, then 2 s) are enough to see the backoff.
        while sum("retrying in" in line for line in lines) < 2:
            raw = await asyncio.wait_for(process.stderr.readline(), timeout=30)
            assert raw, "".join(lines)
            lines.append(raw.decode())
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
        await process.wait()
    log = "".join(lines) + rest.decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log, log
    retries = [line for line in log.splitlines() if "Telegram not reachable" in line]
    assert retries[0].endswith("retrying in 1 s"), retries
    assert retries[1].endswith("retrying in 2 s"), retries
    assert "(getMe: " in retries[0]
    assert PASSWORD not in log
    assert "stopping" in log.splitlines()[-1]


async def test_when_the_proxy_goes_down_pages_wait_in_the_outbox_and_everything_resumes(
    database_url: str, clock: MovableClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with HttpProxy() as proxy:
        settings = settings.model_copy(
            update={"telegram": settings.telegram.model_copy(update={"proxy": proxy.url})}
        )
        async with LocalStack(settings, clock) as stack:
            assert stack.db is not None
            district = await build_district(stack.db)
            principal = stack.emulator.user(district.chats["principal"], "王校长")
            await principal.start()
            await principal.wait_for(timeout=10)
            await proxy.pause()
            outage = len(caplog.records)
            async with stack.db.uow() as uow:
                await escalation.start(
                    uow.session,
                    policy="test",
                    steps=[EscalationStep(after=timedelta(0), roles=["principal"])],
                    subject_type="test",
                    subject_id=1,
                    unit_id=district.units["S"],
                    now=clock.now(),
                    subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
                )
                await uow.commit()
            # Longer than every retry the outbox would allow a 5xx (max_retries is 5).
            for _ in range(8):
                await stack.settle()
                clock.advance(timedelta(seconds=61))
            async with stack.db.read() as uow:
                [row] = await outbox_rows(uow.session)
            assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0), row
            assert "ConnectError" in (row.last_error or "")
            await _until(lambda: any("getUpdates" in r.getMessage() for r in caplog.records))
            during = caplog.records[outage:]
            await proxy.resume()
            clock.advance(timedelta(seconds=61))
            await stack.settle()
            page = await principal.wait_for(timeout=10)
            assert page.text.startswith("🚨 Post unmanned"), page.text
            await principal.send("/help")  # polling took up again
            assert await principal.wait_for(timeout=40)
    lines = [r.getMessage() for r in during]
    outbox_lines = [line for line in lines if line.startswith("outbox: Telegram not reachable")]
    assert len(outbox_lines) == 1, lines
    assert any(line.startswith("Telegram not reachable (getUpdates: ") for line in lines), lines
    assert not [r for r in during if r.exc_info], [r.getMessage() for r in during if r.exc_info]
    assert any(
        r.getMessage() == "outbox: Telegram reachable again; sending what waited"
        for r in caplog.records
    )


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(400):  # 20 s
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_run_with_a_token_telegram_refuses_is_one_line_and_exit_1(tmp_path: Path) -> None:
    async with BotApiEmulator() as emu:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"\n'
            f'[telegram]\napi_base_url = "{emu.base_url}"\n',
            encoding="utf-8",
        )
        env = process_env(config) | {"ZHIBAN_TELEGRAM_TOKEN": "not-a-token"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path, stderr=PIPE
        )
        _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    log = err.decode()
    assert process.returncode == 1, log
    assert "Traceback" not in log, log
    assert log.splitlines()[-1] == (
        "zhiban: Telegram refused the token in ZHIBAN_TELEGRAM_TOKEN: check it with @BotFather"
    )
