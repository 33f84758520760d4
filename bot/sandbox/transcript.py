"""The conversation transcript: every event in either direction, rendered as readable lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

BOT_NAME = "bot"

_ARROWS = {
    "message": "→",
    "edit": "✎",
    "delete": "✗",
    "press": "☞",
    "answer": "⇢",
}


@dataclass(frozen=True)
class TranscriptEntry:
    """One event of the conversation: who did what, where and when."""

    at: datetime
    chat_id: int
    kind: str
    sender: str
    recipient: str
    text: str
    buttons: tuple[tuple[str, ...], ...] = ()
    message_id: int | None = None

    @property
    def from_bot(self) -> bool:
        """Whether the bot caused this event."""
        return self.sender == BOT_NAME

    def render(self, tz: tzinfo | None = None) -> str:
        """Render the event as one readable line (continuation lines are indented)."""
        stamp = (self.at.astimezone(tz) if tz else self.at).strftime("%H:%M")
        arrow = _ARROWS.get(self.kind, "→")
        if self.kind == "press":
            head = f"[{stamp}] {self.sender} {arrow} [{self.text}]"
            return head
        label = "" if self.kind in ("message", "edit", "answer", "delete") else f"({self.kind}) "
        body = f"{label}{self.text}".replace("\n", "\n        ")
        line = f"[{stamp}] {self.sender} {arrow} {self.recipient}: {body}"
        labels = " ".join(f"[{label}]" for row in self.buttons for label in row)
        return f"{line}  {labels}" if labels else line


def render_transcript(entries: Iterable[TranscriptEntry], tz: tzinfo | None = None) -> str:
    """Render transcript entries as text, one event per line, times in ``tz``."""
    return "\n".join(entry.render(tz) for entry in entries)
