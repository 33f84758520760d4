"""Reaching Telegram: through an HTTP or SOCKS5 proxy, and waiting out a Bot API that is down."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from factories import build_district
from proxies import HttpProxy, Socks5Proxy
from test_run_process import process_env

from bot.clock import MovableClock
from bot.config import EscalationStep, settings_from_mapping
from bot.sandbox.stack import LocalStack, free_port
from bot.services import escalation
from bot.services.page_text import PageSubject

PASSWORD = "s3cret-proxy-pw"


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
        assert greeting.text
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
    for method in emulated:
        assert len(stack.emulator.calls_of(method)) == seen[method], (method, seen)


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
