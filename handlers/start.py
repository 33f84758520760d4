"""/start (with or without an invite code) and /help."""

from __future__ import annotations

from telegram import Update

from bot.errors import ZhibanError
from bot.i18n import LANGUAGES, Translator, translator
from bot.services import accounts
from bot.services.accounts import Me
from handlers.context import ZhibanContext
from handlers.menu import help_text, publish_menu
from handlers.render import escape, role_name
from handlers.replies import reply


def stranger_text(first: Translator, name: str) -> str:
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


def welcome_text(tr: Translator, me: Me) -> str:
    """The greeting after linking: name, unit and roles."""
    roles = tr.list_text(
        [f"{role_name(tr, r.role)} @ {escape(r.unit_name)}" for r in me.roles]
    ) or tr._("no role yet")
    return "\n".join(
        [
            tr._("<b>Welcome, {name}!</b> Your account is now linked.", name=escape(me.name)),
            tr._("Unit: {unit}", unit=escape(me.unit_name)),
            tr._("Roles: {roles}", roles=roles),
            tr._("Send /help to see what you can do."),
        ]
    )


async def start(update: Update, context: ZhibanContext) -> None:
    """Link an account from an invite code, or greet."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None:
        return
    runtime = context.runtime
    code = context.args[0] if context.args else None
    if code is None:
        if context.me is None:
            await reply(message, stranger_text(context.tr_for(update), user.full_name))
        else:
            await reply(message, help_text(context.me, context.tr_for(update)))
        return
    try:
        me = await accounts.redeem(
            runtime.db,
            code=code,
            external_id=user.id,
            chat_id=update.effective_chat.id,
            username=user.username,
            now=runtime.clock.now(),
        )
    except ZhibanError as error:
        tr = context.tr_for(update)
        other = translator(next(c for c in LANGUAGES if c != tr.language))
        await reply(message, error.render(tr) + "\n" + error.render(other), parse_mode=None)
        return
    context.me = me
    runtime.wake()
    tr = context.tr_for(update)
    await publish_menu(context.bot, chat_id=update.effective_chat.id, me=me, tr=tr)
    await reply(message, welcome_text(tr, me))


async def help_command(update: Update, context: ZhibanContext) -> None:
    """List the commands this person may use."""
    if update.effective_message is None:
        return
    await reply(update.effective_message, help_text(context.me, context.tr_for(update)))
