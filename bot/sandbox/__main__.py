"""Run the Bot API emulator standalone: ``python -m bot.sandbox --port 8081``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from bot.sandbox.server import BotApiEmulator
from bot.sandbox.users import SimUser

_HELP = "type a message to send it as the user; '!press LABEL' presses a button; Ctrl+D quits"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--username", default="zhiban_demo_bot", help="the bot's username")
    parser.add_argument("--user-id", type=int, default=10001, help="the console user's id")
    parser.add_argument("--user-name", default="值班员", help="the console user's first name")
    parser.add_argument(
        "--flood-limits", action="store_true", help="answer 429 beyond Telegram's rate limits"
    )
    return parser.parse_args(argv)


async def _echo_transcript(emulator: BotApiEmulator) -> None:
    shown = 0

    def more() -> bool:
        return len(emulator.world.entries) > shown

    while True:
        await emulator.world.wait_until(more)
        for entry in emulator.world.entries[shown:]:
            if entry.from_bot:
                print(entry.render(), flush=True)
        shown = len(emulator.world.entries)


async def _console(user: SimUser) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        text = line.rstrip("\n")
        try:
            if text.startswith("!press "):
                await user.press(text.removeprefix("!press ").strip())
            elif text:
                await user.send(text)
        except AssertionError as exc:
            print(exc, flush=True)


async def _serve(args: argparse.Namespace) -> None:
    emulator = BotApiEmulator(bot_username=args.username)
    emulator.enforce_flood_limits = args.flood_limits
    await emulator.start(args.host, args.port)
    user = emulator.user(args.user_id, args.user_name)
    print(f"base_url={emulator.base_url}", flush=True)
    print(f"base_file_url={emulator.base_file_url}", flush=True)
    print(f"console user {user.name} (id {user.user_id}): {_HELP}", flush=True)
    echo = asyncio.create_task(_echo_transcript(emulator))
    try:
        await _console(user)
    finally:
        echo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await echo
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes or Ctrl+C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
