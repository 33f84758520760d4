"""`zhiban run` as a child process of a test: its environment, its log, its end.

The process tests (tests/e2e/test_run_process.py) and the reliability drills start the product
as an operator does, `python -m bot run` with its own system clock, and read its log (stderr)
as it comes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import bot
from bot.sandbox.bytecode import compile_packages

SOURCE = Path(bot.__file__).resolve().parent.parent
TAKING_UPDATES = "Zhiban is taking updates"


def process_env(config: Path, token: str) -> dict[str, str]:
    """The environment of a `zhiban run` process with this configuration and token.

    It runs the code under test (this checkout), not whichever copy is installed, and none of
    the test process's own ZHIBAN_ settings.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
    env |= {"ZHIBAN_TELEGRAM_TOKEN": token, "ZHIBAN_CONFIG": str(config)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    return env


class BotProcess:
    """A `zhiban run` process whose log (stderr) is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[str] = []
        self.taking_updates = asyncio.Event()
        self.spawned = time.monotonic()
        self.started_in: float | None = None  # seconds from spawn to taking updates
        self.taking_updates_at = 0.0  # the event loop's time when it said so
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, name: str = "run") -> BotProcess:
        """Start `python -m bot run` in `cwd` with `env`."""
        compile_packages()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
        )
        return cls(process, name)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        loop = asyncio.get_running_loop()
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if TAKING_UPDATES in line and not self.taking_updates.is_set():
                self.started_in = time.monotonic() - self.spawned
                self.taking_updates_at = loop.time()
                self.taking_updates.set()

    @property
    def running(self) -> bool:
        """Whether the process has not ended yet."""
        return self.process.returncode is None

    async def until_taking_updates(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Wait until the log says it takes updates; fail with the whole log if it does not."""
        try:
            await asyncio.wait_for(self.taking_updates.wait(), timeout=timeout)
        except TimeoutError:
            raise AssertionError("".join(self.lines)) from None

    async def end(self, sig: signal.Signals) -> int:
        """Send `sig` and wait for the process to end; its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout=60)
        await self._reader
        return code
