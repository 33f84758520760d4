"""The ops port: /metrics moves with the work, /healthz tracks the database, /readyz the role."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import at, linked, local
from prometheus_client.parser import text_string_to_metric_families

import bot
from bot.clock import MovableClock
from bot.config import DatabaseSettings, OpsSettings
from bot.db import create_engine
from bot.leadership import Leadership, Role
from bot.metrics import Metrics
from bot.ops import OpsServer
from bot.sandbox import BotApiEmulator
from bot.sandbox.stack import LocalStack, free_port
from bot.uow import Database

SOURCE = str(Path(bot.__file__).resolve().parent.parent)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 5))


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape(base: str) -> dict[str, float]:
    """The samples of /metrics by name and labels, e.g. 'zhiban_pages{status=active}'."""
    status, text = await get(f"{base}/metrics")
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_show_updates_pages_and_429s_moving_and_readyz_follows_the_role(
    day: LocalStack, clock: MovableClock
) -> None:
    base = day.ops_url
    before = await scrape(base)
    assert before["zhiban_updates_handled_total{kind=message}"] == 0
    assert before["zhiban_pages{status=active}"] == 0
    assert before["zhiban_leader"] == 1
    assert before["zhiban_database_up"] == 1
    assert before["zhiban_engine_lag_seconds"] == 0
    assert before["zhiban_outbox_pending"] == 0
    assert any(name.startswith("zhiban_build_info{") for name in before)

    await at(day, clock, local(2, 6))
    await linked(day, clock, "SB01-03", 9110, "郑强")  # day shift 12-02 08:00, will miss it
    he = await linked(day, clock, "SB01-02", 9111, "何丽")  # leader of the day
    # Telegram answers the next message (郑强's reminder at 07:00) with a flood wait.
    day.emulator.inject_failure("sendMessage", 429, retry_after=3)
    await at(day, clock, local(2, 7))
    await at(day, clock, local(2, 8, 15))  # 郑强 has not clocked in: 何丽 is paged
    assert he.last().text.startswith("🚨 岗位无人：值班室，郑强")
    paged = await scrape(base)
    assert paged["zhiban_updates_handled_total{kind=message}"] == 2  # the two /start
    assert paged["zhiban_telegram_429_total{source=outbox}"] == 1
    assert paged["zhiban_pages{status=active}"] >= 1
    assert paged["zhiban_outbox_pending"] == 0  # settled: everything due went out

    # The bot's direct answer to the press meets a flood wait too; its rate limiter retries.
    day.emulator.inject_failure("answerCallbackQuery", 429, retry_after=1)
    await he.press("✅ 接报")
    assert (await he.wait_for_answer()).text == "已接报。呼叫已停止。"
    await day.settle()
    acknowledged = await scrape(base)
    assert acknowledged["zhiban_updates_handled_total{kind=callback}"] == 1
    assert acknowledged["zhiban_telegram_429_total{source=replies}"] == 1
    assert acknowledged["zhiban_pages{status=closed}"] >= 1
    assert acknowledged["zhiban_pages{status=active}"] < paged["zhiban_pages{status=active}"]

    assert await get(f"{base}/healthz") == (200, "ok\n")
    assert await get(f"{base}/readyz") == (200, "leader\n")
    assert day.runtime is not None
    day.runtime.leadership.set(Role.STANDBY)
    assert await get(f"{base}/readyz") == (503, "standby\n")
    assert (await scrape(base))["zhiban_leader"] == 0
    day.runtime.leadership.set(Role.LEADER)
    assert await get(f"{base}/readyz") == (200, "leader\n")


async def test_healthz_is_503_in_one_line_when_the_database_is_gone(tmp_path: Path) -> None:
    gone = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/zhiban.db",
        "postgresql": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/zhiban",
    }
    for url in gone.values():
        db = Database(create_engine(DatabaseSettings(url=url)))
        metrics = Metrics()
        metrics.update_handled("message")
        port = free_port()
        server = OpsServer(
            OpsSettings(port=port),
            db=db,
            clock=MovableClock(local(1, 5)),
            leadership=Leadership(),
            metrics=metrics,
        )
        await server.start()
        try:
            status, text = await get(f"http://127.0.0.1:{port}/healthz")
            assert status == 503 and text.startswith("database: ") and text.count("\n") == 1
            # The counters still scrape; the database's gauges say it did not answer.
            samples = await scrape(f"http://127.0.0.1:{port}")
            assert samples["zhiban_database_up"] == 0
            assert samples["zhiban_updates_handled_total{kind=message}"] == 1
            assert "zhiban_pages{status=active}" not in samples
        finally:
            await server.stop()
            await db.dispose()


async def test_a_taken_ops_port_is_one_log_line_and_serving_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    blocker = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", port)
    db = Database(create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/z.db")))
    server = OpsServer(
        OpsSettings(port=port),
        db=db,
        clock=MovableClock(local(1, 5)),
        leadership=Leadership(),
        metrics=Metrics(),
    )
    try:
        await server.start()  # returns: the bot goes on without its ops port
        await server.stop()
    finally:
        blocker.close()
        await blocker.wait_closed()
        await db.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.ops"]
    assert lines == [
        f"ops port 127.0.0.1:{port} not served (Address already in use); "
        "/healthz, /readyz and /metrics are off"
    ]


async def start_zhiban_run(config: Path, cwd: Path) -> asyncio.subprocess.Process:
    """`zhiban run` of the code under test, returned once it takes updates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
    env |= {"ZHIBAN_TELEGRAM_TOKEN": "654321:OPS-process-token", "ZHIBAN_CONFIG": str(config)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE, env.get("PYTHONPATH")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log = []
    async with asyncio.timeout(60):
        async for raw in process.stderr:
            log.append(raw.decode(errors="replace"))
            if "Zhiban is taking updates" in log[-1]:
                return process
    raise AssertionError("".join(log))


async def test_zhiban_run_serves_the_ops_port(tmp_path: Path) -> None:
    port = free_port()
    async with BotApiEmulator() as emu:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"\n'
            f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n'
            f'[ops]\nlisten = "127.0.0.1"\nport = {port}\n',
            encoding="utf-8",
        )
        process = await start_zhiban_run(config, tmp_path)
        try:
            user = emu.user(4343, "张老师")
            await user.start()
            await user.wait_for(timeout=30)
            assert await get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            assert await get(f"http://127.0.0.1:{port}/readyz") == (200, "leader\n")
            samples = await scrape(f"http://127.0.0.1:{port}")
            assert samples["zhiban_updates_handled_total{kind=message}"] == 1
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
