"""`zhiban doctor`: one line per check, OK against the emulator, the fix when something is wrong."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from proxies import HttpProxy

from bot.cli import main
from bot.config import settings_from_mapping
from bot.doctor import Status, examine, failed
from bot.sandbox import BotApiEmulator
from bot.sandbox.stack import SANDBOX_TOKEN, free_port


async def test_doctor_is_all_ok_against_the_emulator_through_a_proxy(
    database_url: str, tmp_path: Path
) -> None:
    async with BotApiEmulator() as emu, HttpProxy() as proxy:
        settings = settings_from_mapping(
            {
                "bot": {"language": "en"},
                "database": {"url": database_url},
                "telegram": {
                    "api_base_url": emu.base_url,
                    "api_file_url": emu.base_file_url,
                    "proxy": proxy.url,
                    "bot_username": "@zhiban_demo_bot",
                },
            },
            environ={},
        )
        findings = await examine(settings, tmp_path / "config.toml", token=SANDBOX_TOKEN)
    lines = [finding.line() for finding in findings]
    assert not failed(findings), lines
    assert [f.status for f in findings[:-1]] == [Status.OK] * 5, lines  # the font may be a NOTE
    assert lines[0] == f"OK    Configuration {tmp_path / 'config.toml'}: valid."
    assert lines[1].endswith(": reachable.")
    assert lines[2].startswith("OK    Database schema: up to date (")
    assert lines[3] == (
        f"OK    Bot API {emu.base_url}: reachable through the proxy {proxy.url}; "
        "the bot is @zhiban_demo_bot."
    )
    assert lines[4] == "OK    [telegram] bot_username matches the token (@zhiban_demo_bot)."
    assert lines[5].startswith(("OK    Chart font: ", "NOTE  Chart font: "))
    assert proxy.methods["getMe"] == 1
    assert SANDBOX_TOKEN not in "".join(lines)


async def test_doctor_names_the_fix_for_each_thing_wrong(tmp_path: Path) -> None:
    closed = free_port()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database no `zhiban db upgrade` has run on
    async with BotApiEmulator() as emu:
        base = {
            "bot": {"language": "en"},
            "telegram": {"api_base_url": emu.base_url, "bot_username": "someone_else_bot"},
        }
        wrong_name = settings_from_mapping(
            {**base, "database": {"url": f"sqlite+aiosqlite:///{empty}"}}, environ={}
        )
        first = [f.line() for f in await examine(wrong_name, tmp_path, token=SANDBOX_TOKEN)]
    assert first[2].startswith("FAIL  Database schema: at -, this version needs "), first
    assert first[2].endswith(". Run: zhiban db upgrade"), first
    assert first[4] == (
        "FAIL  [telegram] bot_username is someone_else_bot, but the token is @zhiban_demo_bot's: "
        "correct one of them (invite links use bot_username)."
    )

    unreachable = settings_from_mapping(
        {
            "bot": {"language": "en"},
            "database": {"url": f"postgresql+asyncpg://zhiban:pw-db@127.0.0.1:{closed}/zhiban"},
            "telegram": {
                "api_base_url": f"http://127.0.0.1:{closed}/bot",
                "proxy": f"socks5h://zhiban:pw-proxy@127.0.0.1:{closed}",
            },
        },
        environ={},
    )
    findings = await examine(unreachable, tmp_path, token=SANDBOX_TOKEN)
    lines = [f.line() for f in findings]
    assert failed(findings)
    assert lines[1].startswith(
        f"FAIL  Database postgresql+asyncpg://zhiban:***@127.0.0.1:{closed}/zhiban: "
        "cannot connect ("
    ), lines
    assert lines[1].endswith("Check [database] url and that the database server is running.")
    assert lines[2].startswith(
        f"FAIL  Bot API http://127.0.0.1:{closed}/bot: not reachable through the proxy "
        f"socks5h://zhiban:***@127.0.0.1:{closed} ("
    ), lines
    assert lines[2].endswith("Check [telegram] proxy and that the proxy is running.")
    assert "pw-db" not in "".join(lines) and "pw-proxy" not in "".join(lines)

    no_token = [f.line() for f in await examine(unreachable, tmp_path, token=None)]
    assert no_token[2] == (
        "FAIL  Bot API: ZHIBAN_TELEGRAM_TOKEN is not set. Get a token from @BotFather, then: "
        "export ZHIBAN_TELEGRAM_TOKEN=123456:ABC…"
    )


def test_doctor_with_a_bad_config_prints_each_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[telegram]\nproxy = "socks5://u:secret@127.0.0.1"\n', encoding="utf-8")
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "FAIL  配置：telegram.proxy: the port is missing (e.g. :1080 or :8080)"
    ], out
    assert "secret" not in out
