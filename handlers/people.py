"""/me, /lang, /unit, /invite and /bindgroup: who I am, my language, my area, onboarding."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.authz import Action
from bot.errors import ZhibanError
from bot.i18n import Translator, translator
from bot.invite_sheet import invite_link
from bot.services import accounts
from bot.services.accounts import BoundGroup, IssuedInvite, Me, UnitView
from handlers.context import ZhibanContext
from handlers.menu import publish_menu
from handlers.render import escape, role_name

MAX_TEXT = 4000  # below Telegram's 4,096 characters, leaving room for a header


def me_text(tr: Translator, me: Me, scope: list[tuple[str, str, int]]) -> str:
    """Who I am: name, staff number, unit, roles, language and the units I cover."""
    lines = [
        f"<b>{escape(me.name)}</b> ({escape(me.staff_no)})",
        tr._("Unit: {unit}", unit=escape(me.unit_name)),
        tr._(
            "Roles: {roles}",
            roles=tr.list_text(
                [f"{role_name(tr, r.role)} @ {escape(r.unit_name)}" for r in me.roles]
            )
            or tr._("no role yet"),
        ),
        tr._("Language: {language}", language="中文" if tr.language == "zh" else "English"),
    ]
    covered = [(code, name, depth) for code, name, depth in scope if depth > 0]
    if covered:
        lines.append(tr._("Units in my area:"))
        lines += [
            f"{'  ' * depth}• {escape(name)} ({escape(code)})" for code, name, depth in covered
        ]
    return "\n".join(lines)


def unit_text(tr: Translator, view: UnitView) -> str:
    """A unit's people, roles and phones, and the units below it."""
    lines = [f"<b>{escape(view.name)}</b> ({escape(view.code)})"]
    for member in view.members:
        roles = tr.list_text([role_name(tr, role) for role in member.roles])
        phone = f" ☎ {escape(member.phone)}" if member.phone else ""
        linked = "" if member.linked else " " + tr._("(no account linked)")
        lines.append(f"• {escape(member.name)} — {roles}{phone}{linked}")
    if view.children:
        lines.append(
            tr._(
                "Below: {units}",
                units=tr.list_text(
                    [f"{escape(name)} ({escape(code)})" for code, name in view.children]
                ),
            )
        )
    return "\n".join(lines)


def invites_text(
    tr: Translator, invites: list[IssuedInvite], bot_username: str, ctx: ZhibanContext
) -> list[str]:
    """Invite links, one line each, split into messages under Telegram's length limit."""
    tz = ctx.runtime.settings.bot.tz
    lines = [
        tr._(
            "{name} ({staff_no}): {link} — valid until {time}",
            name=escape(i.name),
            staff_no=escape(i.staff_no),
            link=invite_link(bot_username, i.code),
            time=tr.datetime_text(i.expires_at, tz),
        )
        for i in invites
    ]
    chunks, current = [], ""
    for line in lines:
        if len(current) + len(line) + 1 > MAX_TEXT:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return [*chunks, current] if current else chunks


def bound_text(tr: Translator, bound: BoundGroup) -> str:
    """The answer to /bindgroup, saying so when the group moved from another unit."""
    if bound.moved_from is None:
        return tr._("This group is now the duty group of {unit}.", unit=escape(bound.unit_name))
    return tr._(
        "This group is now the duty group of {unit}, no longer of {previous}.",
        unit=escape(bound.unit_name),
        previous=escape(bound.moved_from),
    )


async def me_command(update: Update, context: ZhibanContext) -> None:
    """Show who I am."""
    if update.effective_message is None or context.me is None:
        return
    scope = await accounts.scope_units(context.runtime.db, me=context.me)
    await update.effective_message.reply_text(
        me_text(context.tr_for(update), context.me, scope), parse_mode=ParseMode.HTML
    )


async def lang_command(update: Update, context: ZhibanContext) -> None:
    """Offer the two languages as buttons."""
    if update.effective_message is None:
        return
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("中文", callback_data="lang:zh"),
                InlineKeyboardButton("English", callback_data="lang:en"),
            ]
        ]
    )
    tr = context.tr_for(update)
    await update.effective_message.reply_text(tr._("Choose your language:"), reply_markup=keyboard)


async def on_language_button(update: Update, context: ZhibanContext) -> None:
    """Switch the person's language and their command menu."""
    query = update.callback_query
    if query is None or context.me is None or update.effective_chat is None:
        return
    language = (query.data or "").removeprefix("lang:")
    runtime = context.runtime
    try:
        context.me = await accounts.set_language(
            runtime.db, me=context.me, language=language, now=runtime.clock.now()
        )
    except ZhibanError as error:
        await query.answer(error.render(context.tr_for(update)), show_alert=True)
        return
    tr = translator(language)
    await query.answer()
    await publish_menu(context.bot, chat_id=update.effective_chat.id, me=context.me, tr=tr)
    await query.edit_message_text(tr._("Zhiban will talk to you in English from now on."))


async def unit_command(update: Update, context: ZhibanContext) -> None:
    """Show a unit's people and contacts, if it lies in my area."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    if len(context.args or []) != 1:
        await message.reply_text(
            tr._("Send /unit followed by a unit code, for example /unit SB01.")
        )
        return
    runtime = context.runtime
    try:
        view = await accounts.view_unit(
            runtime.db, me=context.me, code=(context.args or [""])[0], now=runtime.clock.now()
        )
    except ZhibanError as error:
        await message.reply_text(error.render(tr))
        return
    await message.reply_text(unit_text(tr, view), parse_mode=ParseMode.HTML)


async def invite_command(update: Update, context: ZhibanContext) -> None:
    """Issue invite links for staff numbers (or `unit CODE`) in the admin's area."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    args = context.args or []
    by_unit = bool(args) and args[0].lower() == "unit"
    unit_code = args[1] if by_unit and len(args) == 2 else None
    staff_nos = [] if by_unit else args
    # Anyone but an admin goes straight to the service's refusal, whatever they typed.
    if not staff_nos and unit_code is None and context.me.can_anywhere(Action.INVITE_ISSUE):
        await message.reply_text(
            tr._(
                "Send /invite followed by staff numbers, or /invite unit CODE for everyone "
                "in a unit who has no account yet."
            )
        )
        return
    runtime = context.runtime
    settings = runtime.settings
    try:
        invites = await accounts.issue_invites(
            runtime.db,
            staff_nos=staff_nos,
            unit_code=unit_code,
            now=runtime.clock.now(),
            valid_for=settings.invites.valid_for,
            issued_by=context.me,
            limits=settings.invites,
        )
    except ZhibanError as error:
        await message.reply_text(error.render(tr))
        return
    if not invites:
        await message.reply_text(tr._("Everyone there already has an account."))
        return
    for chunk in invites_text(tr, invites, context.bot.username, context):
        await message.reply_text(chunk, parse_mode=ParseMode.HTML, disable_web_page_preview=True)


async def bindgroup_command(update: Update, context: ZhibanContext) -> None:
    """Make this group chat the duty group of a unit."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or context.me is None:
        return
    tr = context.tr_for(update)
    if chat.type == chat.PRIVATE:
        await message.reply_text(tr._("Send /bindgroup in the unit's duty group, not here."))
        return
    runtime = context.runtime
    code = context.args[0] if context.args else None
    try:
        bound = await accounts.bind_group(
            runtime.db, me=context.me, chat_id=chat.id, code=code, now=runtime.clock.now()
        )
    except ZhibanError as error:
        await message.reply_text(error.render(tr))
        return
    await message.reply_text(bound_text(tr, bound), parse_mode=ParseMode.HTML)
