"""What an incident's photos and voice notes are: a file id with its kind, kept as one string.

An entry's `attachments` column holds strings. A follow-up stores each as `photo:<file_id>` or
`voice:<file_id>`, so that it can be forwarded by the right Bot API method (sendPhoto,
sendVoice); Telegram's file ids never contain a colon, so the prefix cannot be mistaken for
part of one. A bare file id (as /report stores them) is an attachment of unknown kind: it is
counted, never forwarded as media.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class MediaKind(StrEnum):
    """The kinds of file a follow-up carries, each forwarded by its own Bot API method."""

    PHOTO = "photo"
    VOICE = "voice"


# The Bot API method that sends each kind again by its file id.
SEND_METHOD = {MediaKind.PHOTO: "sendPhoto", MediaKind.VOICE: "sendVoice"}


@dataclass(frozen=True)
class Attachment:
    """One attached file: its kind (None when unknown) and its Telegram file id."""

    kind: MediaKind | None
    file_id: str

    @property
    def stored(self) -> str:
        """The string kept in an entry's `attachments`."""
        return self.file_id if self.kind is None else f"{self.kind.value}:{self.file_id}"


def parse(stored: str) -> Attachment:
    """Read one stored attachment string back."""
    prefix, colon, rest = stored.partition(":")
    if colon and prefix in MediaKind.__members__.values() and rest:
        return Attachment(MediaKind(prefix), rest)
    return Attachment(None, stored)


@dataclass(frozen=True)
class AttachmentCounts:
    """How many photos, voice notes and other files an entry carries."""

    photos: int = 0
    voices: int = 0
    others: int = 0

    @property
    def total(self) -> int:
        """All of them."""
        return self.photos + self.voices + self.others


def count(stored: Iterable[str]) -> AttachmentCounts:
    """Count an entry's attachments by kind."""
    kinds = [parse(item).kind for item in stored]
    return AttachmentCounts(
        photos=kinds.count(MediaKind.PHOTO),
        voices=kinds.count(MediaKind.VOICE),
        others=kinds.count(None),
    )
