"""The command menu and /help, by role: each person sees the commands they may use."""

from __future__ import annotations

from collections.abc import Callable

from telegram import Bot, BotCommand, BotCommandScopeChat

from bot.authz import Action
from bot.i18n import N_, Translator
from bot.services.accounts import Me
from handlers.render import escape

# (command, description, who sees it): None means everyone linked.
COMMANDS: list[tuple[str, str, Callable[[Me], bool] | None]] = [
    ("help", N_("What this bot can do"), None),
    ("shifts", N_("My coming shifts (leaders: today at my unit)"), None),
    ("calendar", N_("My shifts as a calendar file (.ics)"), None),
    ("in", N_("Clock in (签到)"), None),
    ("out", N_("Clock out with the duty log (签退)"), None),
    ("swap", N_("Ask a colleague to take one of my shifts"), None),
    ("report", N_("Report an incident (报告突发事件)"), None),
    ("followup", N_("Add a follow-up to an incident (续报)"), None),
    (
        "final",
        N_("Close an incident with its final report (终报)"),
        lambda me: me.can_anywhere(Action.PAGE_RESOLVE),
    ),
    (
        "heard",
        N_("Record an incident a school did not report (漏报)"),
        lambda me: any(role.role in ("officer", "desk") for role in me.roles),
    ),
    (
        "board",
        N_("The duty board of my area now (值班看板)"),
        lambda me: me.can_anywhere(Action.BOARD_VIEW),
    ),
    ("incidents", N_("Open incidents in my area"), None),
    ("incident", N_("One incident's whole timeline"), None),
    ("cancel", N_("Cancel what I am writing (duty log, report, swap)"), None),
    ("me", N_("Who I am: unit, roles, language"), None),
    ("lang", N_("Switch language: 中文 / English"), None),
    (
        "unit",
        N_("People and contacts of a unit in my area"),
        lambda me: me.can_anywhere(Action.BOARD_VIEW),
    ),
    (
        "drill",
        N_("Start a drill (演练) at a unit in my area"),
        lambda me: me.can_anywhere(Action.DRILL_START),
    ),
    (
        "drills",
        N_("The drill log of my area"),
        lambda me: me.can_anywhere(Action.DRILL_START),
    ),
    (
        "summary",
        N_("Figures of my area: /summary week, month or term"),
        lambda me: me.can_anywhere(Action.SUMMARY_VIEW),
    ),
    (
        "invite",
        N_("Invite links for staff (admins)"),
        lambda me: me.can_anywhere(Action.INVITE_ISSUE),
    ),
    (
        "bindgroup",
        N_("Make this group the unit's duty group (admins)"),
        lambda me: me.can_anywhere(Action.ROSTER_MANAGE),
    ),
]

STRANGER_COMMANDS = [
    ("start", N_("Start, or open an invite link")),
    ("help", N_("What this bot can do")),
]


def commands_for(me: Me | None, tr: Translator) -> list[tuple[str, str]]:
    """The commands this person may use, with descriptions in their language."""
    if me is None:
        return [(name, tr._(text)) for name, text in STRANGER_COMMANDS]
    return [(name, tr._(text)) for name, text, who in COMMANDS if who is None or who(me)]


def help_text(me: Me | None, tr: Translator) -> str:
    """The list of commands, in the reader's language."""
    lines = [tr._("<b>What Zhiban can do</b>")]
    for command, description in commands_for(me, tr):
        lines.append(f"/{command} — {escape(description)}")
    return "\n".join(lines)


async def publish_menu(bot: Bot, *, chat_id: int, me: Me, tr: Translator) -> None:
    """Show this person's commands in their chat's menu."""
    commands = [BotCommand(name, text) for name, text in commands_for(me, tr)]
    await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
