"""Small pure helpers that build message text for Telegram's HTML parse mode."""

from __future__ import annotations

import html


def escape(text: str) -> str:
    """Escape user-supplied text for HTML parse mode."""
    return html.escape(text, quote=False)
