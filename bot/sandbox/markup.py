"""Validation of reply markups (inline keyboards, reply keyboards) by Telegram's rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bot.sandbox.errors import ApiError, bad_request

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_MAX_BUTTONS = 100


def validate_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Check a reply_markup object and return it, or raise the 400 Telegram would answer."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
    elif "keyboard" in markup:
        _validate_reply_keyboard(markup["keyboard"])
    elif markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        pass
    else:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def _rows(rows: Any, what: str) -> list[list[Any]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{what}" of the reply markup must be an Array of Arrays')
    if sum(len(row) for row in rows) > _MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return rows


def _validate_inline_keyboard(rows: Any) -> None:
    for row in _rows(rows, "inline_keyboard"):
        for button in row:
            _validate_inline_button(button)


def _validate_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    actions = [key for key in _INLINE_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if len(actions) > 1:
        raise bad_request(
            "can't parse inline keyboard button: exactly one of the optional fields must be used, "
            f"got {', '.join(actions)}"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        _validate_button_url(button["url"])


def _validate_button_url(url: Any) -> None:
    if not isinstance(url, str):
        raise bad_request('can\'t parse inline keyboard button: Field "url" must be of type String')
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tg" or (scheme in ("http", "https") and parts.netloc and "." in parts.netloc):
        return
    if scheme in ("http", "https") and parts.hostname in ("localhost", "127.0.0.1"):
        return
    raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _validate_reply_keyboard(rows: Any) -> None:
    for row in _rows(rows, "keyboard"):
        for button in row:
            text = button.get("text") if isinstance(button, dict) else button
            if not isinstance(text, str) or not text.strip():
                raise bad_request("keyboard button text must be non-empty")


def inline_rows(markup: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    """Return the inline keyboard rows of a markup, or an empty list."""
    if not markup or "inline_keyboard" not in markup:
        return []
    rows: list[list[dict[str, Any]]] = markup["inline_keyboard"]
    return rows


def reply_rows(markup: dict[str, Any] | None) -> list[list[str]]:
    """Return the reply keyboard button texts of a markup, or an empty list."""
    if not markup or "keyboard" not in markup:
        return []
    return [
        [b.get("text", "") if isinstance(b, dict) else str(b) for b in row]
        for row in markup["keyboard"]
    ]


def check_reply_markup_allowed(markup: dict[str, Any] | None, *, edit: bool) -> None:
    """Refuse reply keyboards where only inline keyboards are allowed (edits)."""
    if edit and markup is not None and "inline_keyboard" not in markup:
        raise ApiError(400, "Bad Request: inline keyboard expected")
