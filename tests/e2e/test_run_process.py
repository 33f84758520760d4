"""`zhiban run` as an operator starts it: a real process polling the emulator, ended by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.sandbox import BotApiEmulator

TOKEN = "654321:RUN-process-token-xyz"


async def test_run_polls_answers_logs_each_update_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with BotApiEmulator() as emu:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"\n'
            f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
        env |= {"ZHIBAN_TELEGRAM_TOKEN": TOKEN, "ZHIBAN_CONFIG": str(config)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            user = emu.user(4242, "张老师")
            await user.start()
            reply = await user.wait_for(timeout=60)
            assert reply.text.startswith("张老师，您好！")
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    log = err.decode()
    assert process.returncode == 0, log
    assert "update 1: message from user 4242" in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "stopping" in log
    assert (tmp_path / "run.db").exists()
