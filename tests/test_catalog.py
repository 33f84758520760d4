"""Every sentence the code shows is in the Chinese and the English catalog."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.catalog import extract_messages, missing_translations, stale_compiled
from bot.i18n import catalog_messages, normalise_language, translator

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_every_message_in_the_code_is_translated_in_both_languages() -> None:
    assert missing_translations() == []


def test_the_compiled_catalogs_the_bot_reads_are_those_of_the_po_files() -> None:
    # The bot reads bot/locales/*.mo; a .po edited without `python -m bot.catalog` fails here.
    assert stale_compiled() == []


def test_translations_keep_the_placeholders_of_the_source() -> None:
    used = {m if isinstance(m, str) else m[0] for m in extract_messages()}
    for language in ("zh", "en"):
        for source, text in catalog_messages(language).items():
            if source in used:
                assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(source)), (
                    f"{language}: {source!r}"
                )


def test_chinese_is_the_default_and_english_is_chosen_by_code() -> None:
    assert translator(None)._("{minutes} min", minutes=5) == "5分钟"
    assert translator("en")._("{minutes} min", minutes=5) == "5 min"
    assert translator("en-GB").language == "en"
    assert normalise_language("zh-hans") == "zh"
    assert normalise_language("fr", default="en") == "en"


def test_times_are_shown_in_the_configured_zone() -> None:
    moment = datetime(2026, 11, 28, 16, 5, tzinfo=UTC)
    tr = translator("zh")
    assert tr.datetime_text(moment, ZoneInfo("Asia/Shanghai")) == "2026-11-29 00:05"
    assert tr.time_text(moment, ZoneInfo("Asia/Shanghai")) == "00:05"
    assert translator("en").duration_text(timedelta(minutes=75)) == "1 h 15 min"


def test_every_error_class_of_the_project_is_an_extraction_keyword() -> None:
    import importlib
    import pkgutil

    import bot.services
    from bot.catalog import KEYWORDS
    from bot.errors import RosterError, RosterRejected, ZhibanError

    for module in pkgutil.iter_modules(bot.services.__path__):
        importlib.import_module(f"bot.services.{module.name}")
    pending = [ZhibanError]
    classes = set()
    while pending:
        cls = pending.pop()
        classes.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    # RosterError wraps another error and marks its own sentences with N_(); RosterRejected
    # lists RosterErrors under a heading of its own (a tr._() call).
    assert classes - {RosterError.__name__, RosterRejected.__name__} <= set(KEYWORDS)
