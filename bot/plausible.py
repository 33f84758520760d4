"""What input the bot can take at all: text a database can store, a location a phone can send.

A leaf module: the handlers' edge cleans every update with it, and the services use it again
as a second line, so a value that slipped past the edge still fails politely.
"""

from __future__ import annotations

import math
import re

# PostgreSQL text refuses U+0000, and a lone surrogate (JSON's "\ud800" decodes to one) cannot
# be encoded as UTF-8 for either database; Telegram itself never sends them.
REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """The text without the characters no database of ours can store."""
    return REFUSED_CHARACTERS.sub("", text)


def location(latitude: float, longitude: float, accuracy_m: float | None = None) -> bool:
    """Whether a shared location could have come from a phone on Earth.

    JSON carries NaN and Infinity, and both pass every `<` comparison a geofence makes.
    """
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return False
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return False
    return accuracy_m is None or (math.isfinite(accuracy_m) and accuracy_m >= 0.0)
