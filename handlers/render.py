"""Small pure helpers that build message text for Telegram's HTML parse mode."""

from __future__ import annotations

import html

from bot.i18n import N_, Translator

ROLE_NAMES = {
    "staff": N_("duty staff (值班人员)"),
    "duty_leader": N_("duty leader (带班领导)"),
    "safety_officer": N_("safety officer (安全员)"),
    "principal": N_("principal (校长)"),
    "officer": N_("emergency officer (应急专干)"),
    "desk": N_("duty desk (值班室)"),
    "admin": N_("administrator (管理员)"),
}


def escape(text: str) -> str:
    """Escape user-supplied text for HTML parse mode."""
    return html.escape(text, quote=False)


def role_name(tr: Translator, role: str) -> str:
    """A role's name in the reader's language."""
    return tr._(ROLE_NAMES[role]) if role in ROLE_NAMES else role
