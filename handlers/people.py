"""/me, /lang, /unit, /invite and /bindgroup: who I am, my language, my area, onboarding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.authz import Action
from bot.callbacks import Language, UnitPage
from bot.errors import ZhibanError
from bot.i18n import Translator, translator
from bot.invite_sheet import invite_link
from bot.message_parts import MESSAGE_LIMIT, split_html, visible_length
from bot.services import accounts, unit_listing
from bot.services.accounts import BoundGroup, IssuedInvite, Me, UnitView
from handlers.context import ZhibanContext
from handlers.menu import publish_menu
from handlers.render import escape, role_name
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press


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


def unit_pages(tr: Translator, view: UnitView) -> list[str]:
    """A unit's people, roles and phones, and the units below it, as pages of one message each.

    Every page starts with the unit's name; the rest is cut by the one splitter, at lines.
    """
    header = f"<b>{escape(view.name)}</b> ({escape(view.code)})"
    lines = []
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
    if not lines:
        return [header]
    room = MESSAGE_LIMIT - visible_length(header) - 1  # the header's line break
    return [f"{header}\n{part}" for part in split_html("\n".join(lines), room)]


def unit_page_buttons(unit_id: int, page: int, count: int) -> InlineKeyboardMarkup | None:
    """◀ and ▶ (round the end) with where the reader is, e.g. 2/5; none for a single page."""
    if count <= 1:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("◀", callback_data=UnitPage(unit_id, (page - 1) % count).data),
                InlineKeyboardButton(
                    f"{page + 1}/{count}", callback_data=UnitPage(unit_id, page).data
                ),
                InlineKeyboardButton("▶", callback_data=UnitPage(unit_id, (page + 1) % count).data),
            ]
        ]
    )


def invites_text(
    tr: Translator, invites: list[IssuedInvite], bot_username: str, ctx: ZhibanContext
) -> str:
    """Invite links, one line each (sent over as many messages as they need)."""
    tz = ctx.runtime.settings.bot.tz
    return "\n".join(
        tr._(
            "{name} ({staff_no}): {link} — valid until {time}",
            name=escape(i.name),
            staff_no=escape(i.staff_no),
            link=invite_link(bot_username, i.code),
            time=tr.datetime_text(i.expires_at, tz),
        )
        for i in invites
    )


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
    await reply(update.effective_message, me_text(context.tr_for(update), context.me, scope))


async def lang_command(update: Update, context: ZhibanContext) -> None:
    """Offer the two languages as buttons."""
    if update.effective_message is None:
        return
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("中文", callback_data=Language("zh").data),
                InlineKeyboardButton("English", callback_data=Language("en").data),
            ]
        ]
    )
    tr = context.tr_for(update)
    await reply(
        update.effective_message,
        tr._("Choose your language:"),
        parse_mode=None,
        reply_markup=keyboard,
    )


async def on_language_button(
    update: Update, context: ZhibanContext, press: Press[Language]
) -> None:
    """Switch the person's language and their command menu."""
    query = press.query
    if context.me is None or update.effective_chat is None:
        return
    language = press.button.language
    runtime = context.runtime
    try:
        context.me = await accounts.set_language(
            runtime.db, me=context.me, language=language, now=runtime.clock.now()
        )
    except ZhibanError as error:
        await press.answer(error.render(context.tr_for(update)), alert=True)
        return
    tr = translator(language)
    await press.answer()
    await publish_menu(context.bot, chat_id=update.effective_chat.id, me=context.me, tr=tr)
    await edit(query, tr._("Zhiban will talk to you in English from now on."), parse_mode=None)


async def unit_command(update: Update, context: ZhibanContext) -> None:
    """Show a unit's people and contacts, if it lies in my area."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    if len(context.args or []) != 1:
        await reply(
            message,
            tr._("Send /unit followed by a unit code, for example /unit SB01."),
            parse_mode=None,
        )
        return
    runtime = context.runtime
    try:
        listing = await unit_listing.by_code(
            runtime.db, me=context.me, code=(context.args or [""])[0], now=runtime.clock.now()
        )
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return
    pages = unit_pages(tr, listing.view)
    await reply(message, pages[0], reply_markup=unit_page_buttons(listing.unit_id, 0, len(pages)))


async def on_unit_page_button(
    update: Update, context: ZhibanContext, press: Press[UnitPage]
) -> None:
    """Turn a page of /unit, after checking again that the unit lies in the presser's area."""
    query = press.query
    if context.me is None:
        return
    tr = context.tr_for(update)
    unit_id, page = press.button.unit_id, press.button.page
    runtime = context.runtime
    try:
        listing = await unit_listing.by_id(
            runtime.db, me=context.me, unit_id=unit_id, now=runtime.clock.now()
        )
    except ZhibanError as error:
        await press.answer(error.render(tr), alert=True)
        return
    pages = unit_pages(tr, listing.view)
    page = min(page, len(pages) - 1)  # the unit may have lost people since the list was sent
    await press.answer()
    try:
        await edit(query, pages[page], reply_markup=unit_page_buttons(unit_id, page, len(pages)))
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            raise  # the page indicator was pressed: the reader is on that page already


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
        await reply(
            message,
            tr._(
                "Send /invite followed by staff numbers, or /invite unit CODE for everyone "
                "in a unit who has no account yet."
            ),
            parse_mode=None,
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
        await reply(message, error.render(tr), parse_mode=None)
        return
    if not invites:
        await reply(message, tr._("Everyone there already has an account."), parse_mode=None)
        return
    await reply(
        message,
        invites_text(tr, invites, context.bot.username, context),
        disable_web_page_preview=True,
    )


async def bindgroup_command(update: Update, context: ZhibanContext) -> None:
    """Make this group chat the duty group of a unit."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or context.me is None:
        return
    tr = context.tr_for(update)
    if chat.type == chat.PRIVATE:
        await reply(
            message, tr._("Send /bindgroup in the unit's duty group, not here."), parse_mode=None
        )
        return
    runtime = context.runtime
    code = context.args[0] if context.args else None
    try:
        bound = await accounts.bind_group(
            runtime.db, me=context.me, chat_id=chat.id, code=code, now=runtime.clock.now()
        )
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return
    await reply(message, bound_text(tr, bound))
