"""The code's layers point one way: handlers and jobs → services → data; only the app joins."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imports(path)
        if name.split(".")[0] in forbidden or name.startswith(forbidden)
    ]


def test_services_know_nothing_of_telegram_handlers_or_jobs() -> None:
    assert offenders("bot/services", ("telegram", "handlers", "jobs", "bot.app")) == []


def test_handlers_do_not_reach_into_jobs_or_the_app() -> None:
    assert offenders("handlers", ("jobs", "bot.app", "bot.delivery")) == []


def test_jobs_do_not_reach_into_handlers_or_the_app() -> None:
    assert offenders("jobs", ("handlers", "bot.app")) == []


# Every message a handler sends goes through handlers/replies.py, which splits a long text or
# cuts an edit short (bot/message_parts.py); a direct call would let a long text fail at
# Telegram. Captions count too: send_photo with a caption and edit_message_caption write text.
MESSAGE_METHODS = frozenset(
    {"reply_text", "reply_html", "send_message", "edit_message_text", "edit_message_caption"}
)
# Where the caption of a photo sits when given by position: send_photo(chat_id, photo, caption)
# and Message.reply_photo(photo, caption).
CAPTION_POSITION = {"send_photo": 2, "reply_photo": 1}


def direct_messages(source: str) -> list[tuple[int, str]]:
    """(line, method) for each way `source` sends text around handlers/replies.py."""
    found = []
    for node in ast.walk(ast.parse(source)):
        # Any use of the attribute, called or not: `say = message.reply_text` is the same call.
        if isinstance(node, ast.Attribute) and node.attr in MESSAGE_METHODS:
            found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CAPTION_POSITION
        ):
            by_name = any(k.arg in ("caption", None) for k in node.keywords)  # None: **options
            by_position = len(node.args) > CAPTION_POSITION[node.func.attr]
            if by_name or by_position or any(isinstance(a, ast.Starred) for a in node.args):
                found.append((node.lineno, f"{node.func.attr} with a caption"))
    return sorted(found)


def test_handlers_send_every_message_through_the_reply_helpers() -> None:
    allowed = ROOT / "handlers" / "replies.py"
    found = [
        f"{path.relative_to(ROOT)}:{line} calls {method}"
        for path in sorted((ROOT / "handlers").rglob("*.py"))
        if path != allowed
        for line, method in direct_messages(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_message_rule_catches_what_it_forbids() -> None:
    source = """
async def handler(message, bot, query, options):
    await message.reply_text("a")
    await message.reply_html("b")
    await bot.send_message(1, "c")
    await query.edit_message_text("d")
    await query.edit_message_caption(caption="e")
    say = message.reply_text
    await bot.send_photo(1, "file", caption="f")
    await bot.send_photo(1, "file", "g")
    await bot.send_photo(1, "file", **options)
    await message.reply_photo("file", "h")
    await bot.send_photo(1, "file")
    await bot.send_media_group(1, [])
    await query.answer("i", show_alert=True)
    await bot.set_my_commands([])
"""
    assert direct_messages(source) == [
        (3, "reply_text"),
        (4, "reply_html"),
        (5, "send_message"),
        (6, "edit_message_text"),
        (7, "edit_message_caption"),
        (8, "reply_text"),
        (9, "send_photo with a caption"),
        (10, "send_photo with a caption"),
        (11, "send_photo with a caption"),
        (12, "reply_photo with a caption"),
    ]
