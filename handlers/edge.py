"""The edge: hostile input cleaned or refused before any handler or service reads it.

Two rules, each in one place for every update:
- Characters no database of ours stores (U+0000, which PostgreSQL text refuses, and lone
  surrogates, which no UTF-8 column takes) are removed from every string of the update: text,
  captions, command arguments, deep-link payloads, callback data, names. `clean` runs first of
  all handlers; when it removed anything it hands a cleaned copy of the update to the
  Application and stops the original, so every handler sees clean text and the entities
  (commands, mentions) still point at the right characters. Removing rather than refusing keeps
  a duty log or a deep link working when a keyboard slipped in an invisible NUL.
- A location that no phone sends (NaN or infinite coordinates, latitude outside −90..90,
  longitude outside −180..180, negative or non-finite accuracy) is refused with one sentence
  in the person's language by `refuse_location`, registered ahead of the clock-in handler, so
  no service sees it. The attendance service checks again (bot/plausible.py).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from typing import Any

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop, filters

from bot import plausible
from bot.services.attendance import IMPLAUSIBLE_LOCATION
from handlers.attendance import location_keyboard
from handlers.context import ZhibanContext
from handlers.replies import reply

log = logging.getLogger(__name__)

# Fields whose text carries entities measured in UTF-16 code units.
_TEXT_WITH_ENTITIES = (("text", "entities"), ("caption", "caption_entities"))


def _utf16_length(character: str) -> int:
    return 2 if ord(character) > 0xFFFF else 1


def clean_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The text without refused characters, its entities moved to where their text now is."""
    removed: list[int] = []  # UTF-16 offsets of the characters taken out
    kept: list[str] = []
    offset = 0
    for character in text:
        if plausible.REFUSED_CHARACTERS.match(character):
            removed.append(offset)
        else:
            kept.append(character)
        offset += _utf16_length(character)

    def moved(position: int) -> int:
        return position - bisect_left(removed, position)

    shifted = []
    for entity in entities:
        start = moved(entity["offset"])
        end = moved(entity["offset"] + entity["length"])
        if end > start:
            shifted.append({**entity, "offset": start, "length": end - start})
    return "".join(kept), shifted


def _clean(value: Any) -> Any:
    """A copy of a decoded JSON value with the refused characters removed from every string."""
    if isinstance(value, str):
        return plausible.storable(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {key: _clean(item) for key, item in value.items()}
    for text_key, entities_key in _TEXT_WITH_ENTITIES:
        text = value.get(text_key)
        if isinstance(text, str) and isinstance(value.get(entities_key), list):
            cleaned[text_key], cleaned[entities_key] = clean_text(text, value[entities_key])
    return cleaned


def _has_refused(value: Any) -> bool:
    if isinstance(value, str):
        return plausible.REFUSED_CHARACTERS.search(value) is not None
    if isinstance(value, list):
        return any(_has_refused(item) for item in value)
    if isinstance(value, dict):
        return any(_has_refused(item) for item in value.values())
    return False


async def clean(update: Update, context: ZhibanContext) -> None:
    """Hand on a copy of the update without unstorable characters, and drop the original."""
    raw = update.to_dict()
    if not _has_refused(raw):
        return
    log.info("update %s: removed characters no database stores", update.update_id)
    cleaned = Update.de_json(_clean(raw), context.bot)
    await context.application.process_update(cleaned)
    raise ApplicationHandlerStop


class _ImplausibleLocation(filters.MessageFilter):
    """Messages with a location no phone could have sent."""

    def filter(self, message: Message) -> bool:
        """Whether the message's location is off the globe or its accuracy is nonsense."""
        shared = message.location
        return shared is not None and not plausible.location(
            shared.latitude, shared.longitude, shared.horizontal_accuracy
        )


IMPLAUSIBLE_LOCATION_FILTER = _ImplausibleLocation(name="implausible location")


async def refuse_location(update: Update, context: ZhibanContext) -> None:
    """Refuse an impossible location with one sentence; nothing is clocked in."""
    message = update.effective_message
    if message is None:
        return
    log.info("update %s: refused an implausible location", update.update_id)
    tr = context.tr_for(update)
    await reply(
        message, tr._(IMPLAUSIBLE_LOCATION), parse_mode=None, reply_markup=location_keyboard(tr)
    )
