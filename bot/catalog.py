"""Keep the message catalogs in step with the code: `python -m bot.catalog [--check]`.

Extracts every `_()`, `n_()`, `N_()` and error-message string from bot/, handlers/ and jobs/,
adds new ones to `bot/locales/*.po` (English filled with the source text, Chinese left empty
for a translator) and drops ones the code no longer uses, then compiles each to the
`bot/locales/*.mo` the bot reads. `--check` changes nothing and lists what is missing or stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import compiled_catalog

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "handlers", "jobs")
# The project's errors carry catalog ids as their first argument.
KEYWORDS = {
    "_": None,
    "n_": (1, 2),
    "N_": None,
    "ZhibanError": None,
    "NotFound": None,
    "NotAllowed": None,
    "InvalidInput": None,
    "NeedLocation": None,
    "InvalidButton": None,
    "EmptyDutyLog": None,
    "LinkRefused": None,
    "DraftGone": None,
}
LOCALES = ROOT / "bot" / "locales"
_BABEL_LOCALE = {"zh": "zh_Hans_CN", "en": "en_GB"}

MessageId = str | tuple[str, str]
# Fixed header dates keep the .po files' diffs to real changes.
_STABLE_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def extract_messages() -> dict[MessageId, list[str]]:
    """Every catalog string used in the code, with where it is used."""
    found: dict[MessageId, list[str]] = {}
    for folder in SOURCES:
        extracted: Iterator[tuple[str, int, Any, list[str], str | None]] = extract_from_dir(
            ROOT / folder,
            method_map=[("**/sandbox/**.py", "ignore"), ("**.py", "python")],
            keywords=KEYWORDS,
        )
        for filename, line, message, _comments, _context in extracted:
            found.setdefault(message, []).append(f"{folder}/{filename}:{line}")
    return found


def load_catalog(language: str) -> Catalog:
    """Read one language's .po file."""
    with (LOCALES / f"{language}.po").open("rb") as handle:
        return read_po(handle, locale=_BABEL_LOCALE[language])


def missing_translations() -> list[str]:
    """One line per message that a catalog lacks or leaves untranslated."""
    problems = []
    used = extract_messages()
    for language in _BABEL_LOCALE:
        catalog = load_catalog(language)
        for message, places in sorted(used.items(), key=lambda item: str(item[0])):
            key = message if isinstance(message, str) else message[0]
            entry = catalog.get(key)
            raw: Any = None if entry is None else entry.string
            strings = [raw] if isinstance(raw, str) else list(raw or [])
            if entry is None or not all(strings):
                problems.append(f"{language}: {key!r} (used at {places[0]}) is not translated")
    return problems


def update() -> None:
    """Merge the code's strings into both catalogs."""
    used = extract_messages()
    for language in _BABEL_LOCALE:
        path = LOCALES / f"{language}.po"
        old = load_catalog(language) if path.exists() else Catalog(locale=_BABEL_LOCALE[language])
        new = Catalog(
            locale=_BABEL_LOCALE[language],
            project="zhiban",
            fuzzy=False,
            creation_date=_STABLE_DATE,
            revision_date=_STABLE_DATE,
        )
        for message, places in used.items():
            key = message if isinstance(message, str) else message[0]
            previous = old.get(key)
            if previous is not None and previous.string:
                string = previous.string
            elif language == "en":
                string = message
            else:
                string = "" if isinstance(message, str) else ("",)
            locations = [
                (place.rsplit(":", 1)[0], int(place.rsplit(":", 1)[1])) for place in places
            ]
            new.add(message, string, locations=locations)
        with path.open("wb") as handle:
            write_po(handle, new, width=100, omit_header=False, sort_output=True)
        compile_catalogs()


def compile_catalogs() -> None:
    """Write each language's .mo from its .po (what the bot reads; bot/i18n.py)."""
    for language in _BABEL_LOCALE:
        (LOCALES / f"{language}.mo").write_bytes(compiled_catalog(language))


def stale_compiled() -> list[str]:
    """One line per .mo that is missing or differs from what its .po compiles to."""
    problems = []
    for language in _BABEL_LOCALE:
        path = LOCALES / f"{language}.mo"
        if not path.exists() or path.read_bytes() != compiled_catalog(language):
            problems.append(
                f"{language}: bot/locales/{language}.mo is not the compiled {language}.po; "
                "run python -m bot.catalog"
            )
    return problems


def main(argv: list[str]) -> int:
    """Update and compile the catalogs, or with --check only report what is missing or stale."""
    if "--check" in argv:
        problems = missing_translations() + stale_compiled()
        for line in problems:
            print(line)
        return 1 if problems else 0
    update()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
