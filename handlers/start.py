"""/start and /help: the greeting and what the bot can do."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot.i18n import LANGUAGES, Translator, translator
from handlers.context import ZhibanContext
from handlers.render import escape


def greeting_text(first: Translator, name: str) -> str:
    """The welcome for someone without a linked account, in their language and then the other."""
    parts = []
    for tr in (first, *(translator(code) for code in LANGUAGES if code != first.language)):
        parts.append(
            tr._(
                "<b>Hello, {name}. This is Zhiban (值班), "
                "the duty bot of the school district.</b>\n"
                "To use it you need an invite link from your school's administrator. "
                "Open the link on this phone and your account will be linked.",
                name=escape(name),
            )
        )
    return "\n\n".join(parts)


def help_text(tr: Translator) -> str:
    """The list of commands, in the reader's language."""
    lines = [tr._("<b>What Zhiban can do</b>")]
    for command, description in command_menu(tr):
        lines.append(f"/{command} — {escape(description)}")
    return "\n".join(lines)


def command_menu(tr: Translator) -> list[tuple[str, str]]:
    """The commands shown in the platform's menu."""
    return [
        ("start", tr._("Start, or open an invite link")),
        ("help", tr._("What this bot can do")),
    ]


async def start(update: Update, context: ZhibanContext) -> None:
    """Greet the person and say how to join."""
    if update.effective_message is None or update.effective_user is None:
        return
    tr = context.tr_for(update)
    await update.effective_message.reply_text(
        greeting_text(tr, update.effective_user.full_name), parse_mode=ParseMode.HTML
    )


async def help_command(update: Update, context: ZhibanContext) -> None:
    """List the commands."""
    if update.effective_message is None:
        return
    await update.effective_message.reply_text(
        help_text(context.tr_for(update)), parse_mode=ParseMode.HTML
    )
