"""Message catalogs (Chinese and English, gettext through Babel) and local time formatting.

Source strings in the code are English; `bot/locales/<lang>.po` holds every one of them for
each language, so a missing translation is a failing test rather than a silent fallback. The bot
reads each catalog compiled, `bot/locales/<lang>.mo`, which `python -m bot.catalog` writes next
to the .po (tests/test_catalog.py fails when one is stale): parsing both .po files took a tenth
of a second of every start.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from functools import cache
from importlib import resources
from typing import Any

from babel.dates import format_datetime as _babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_BABEL_LOCALE = {"zh": "zh_Hans_CN", "en": "en_GB"}


def N_(message: str) -> str:
    """Mark a string for the catalog without translating it yet."""
    return message


class Translator:
    """The catalog of one language, with formatting of times in the configured zone."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self._translations = translations

    def _(self, message: str, /, **params: Any) -> str:
        """Translate a message and fill in its `{named}` parameters."""
        text = self._translations.gettext(message)
        return text.format(**params) if params else text

    def n_(self, singular: str, plural: str, count: int, /, **params: Any) -> str:
        """Translate a message that depends on a number (`{count}` is filled in)."""
        return self._translations.ngettext(singular, plural, count).format(count=count, **params)

    def datetime_text(self, moment: datetime, tz: tzinfo, fmt: str = "yyyy-MM-dd HH:mm") -> str:
        """Show a UTC moment in local time."""
        return _babel_datetime(moment, fmt, tzinfo=tz, locale=_BABEL_LOCALE[self.language])

    def time_text(self, moment: datetime, tz: tzinfo) -> str:
        """Show the local time of day of a moment."""
        return self.datetime_text(moment, tz, "HH:mm")

    def list_text(self, items: list[str]) -> str:
        """Join items the way the language does ("a、b" in Chinese, "a, b" in English)."""
        return ("、" if self.language == "zh" else ", ").join(items)

    def duration_text(self, value: timedelta) -> str:
        """Show a duration in hours and minutes."""
        minutes = int(value.total_seconds() // 60)
        hours, minutes = divmod(minutes, 60)
        if hours and minutes:
            return self._("{hours} h {minutes} min", hours=hours, minutes=minutes)
        if hours:
            return self._("{hours} h", hours=hours)
        return self._("{minutes} min", minutes=minutes)


def normalise_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map a person's or a Telegram client's language code to one we have ("zh-hans" → "zh")."""
    if not code:
        return default
    base = code.lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else default


def compiled_catalog(language: str) -> bytes:
    """A language's .po compiled to the .mo bytes gettext reads (the same each time)."""
    source = resources.files("bot") / "locales" / f"{language}.po"
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=_BABEL_LOCALE[language])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


@cache
def _load(language: str) -> gettext.NullTranslations:
    compiled = resources.files("bot") / "locales" / f"{language}.mo"
    try:
        data = compiled.read_bytes()
    except FileNotFoundError:  # a tree where `python -m bot.catalog` has not run yet
        data = compiled_catalog(language)
    return gettext.GNUTranslations(io.BytesIO(data))


def translator(language: str | None, default: str = DEFAULT_LANGUAGE) -> Translator:
    """The translator for a language code, falling back to the default language."""
    code = normalise_language(language, default)
    return Translator(code, _load(code))


def catalog_messages(language: str) -> Mapping[str, str]:
    """Every message id of a language's catalog with its translation (for tests and checks)."""
    source = resources.files("bot") / "locales" / f"{language}.po"
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=_BABEL_LOCALE[language])
    result: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else str(message.id[0])
        strings: Any = message.string
        value = strings if isinstance(strings, str) else str(strings[0])
        result[key] = value
    return result
