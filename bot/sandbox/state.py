"""The emulated world: users, chats, messages, files, pending updates and the transcript."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox.markup import inline_rows, reply_rows
from bot.sandbox.transcript import BOT_NAME, TranscriptEntry

#: Update types Telegram delivers when allowed_updates is empty or was never set.
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


def utc_now() -> datetime:
    """Return the current aware UTC time (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class UserProfile:
    """A Telegram user as the emulator knows them."""

    user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh"

    @property
    def display_name(self) -> str:
        """Return the name a chat app would show."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_json(self) -> dict[str, Any]:
        """Return the Bot API ``User`` object."""
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class StoredFile:
    """A file known to the emulator (uploaded by the bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    # A voice note's length in seconds, as its sender gave it.
    duration: int = 0


@dataclass
class StoredMessage:
    """A message in a chat, its current Bot API shape and how it was produced."""

    message_id: int
    chat_id: int
    from_bot: bool
    sender_id: int
    payload: dict[str, Any]
    plain: str = ""
    entities: tuple[dict[str, Any], ...] = ()
    source: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    file_id: str | None = None
    deleted: bool = False
    edited: bool = False


@dataclass
class ChatState:
    """A chat (private or group), its messages and the bot's standing in it."""

    chat_id: int
    kind: str
    title: str | None = None
    user: UserProfile | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    bot_member: bool = True
    started: bool = False
    blocked: bool = False
    outputs: list[int] = field(default_factory=list)
    mark: int = 0

    @property
    def is_group(self) -> bool:
        """Whether this is a group or supergroup."""
        return self.kind in ("group", "supergroup")

    @property
    def display_name(self) -> str:
        """Return the user's name (private chat) or the title (group)."""
        if self.user is not None:
            return self.user.display_name
        return self.title or str(self.chat_id)

    def to_json(self) -> dict[str, Any]:
        """Return the Bot API ``Chat`` object."""
        if self.user is not None:
            chat: dict[str, Any] = {"id": self.chat_id, "type": "private"}
            chat["first_name"] = self.user.first_name
            if self.user.last_name:
                chat["last_name"] = self.user.last_name
            if self.user.username:
                chat["username"] = self.user.username
            return chat
        return {"id": self.chat_id, "type": self.kind, "title": self.title or ""}


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot answered to a button press."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None


@dataclass
class SimCallbackQuery:
    """A button press made by a simulated user, and the bot's answer once given."""

    query_id: str
    chat_id: int
    message_id: int
    user_id: int
    data: str
    label: str
    created: datetime
    answer: CallbackAnswer | None = None


@dataclass(frozen=True)
class SentMessage:
    """Read model of a message as a user sees it now (edits applied)."""

    message_id: int
    chat_id: int
    from_bot: bool
    sender_id: int
    date: int
    text: str
    html: str | None
    parse_mode: str | None
    caption: str | None
    entities: tuple[dict[str, Any], ...]
    buttons: tuple[tuple[str, ...], ...]
    callback_data: tuple[tuple[str | None, ...], ...]
    keyboard: tuple[tuple[str, ...], ...]
    reply_markup: dict[str, Any] | None
    document_name: str | None
    document_bytes: bytes | None
    photo: bytes | None
    location: tuple[float, float] | None
    reply_to_message_id: int | None
    edited: bool
    deleted: bool
    raw: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        """Return all inline button labels, row by row."""
        return [label for row in self.buttons for label in row]

    def data_for(self, label: str) -> str | None:
        """Return the callback data of the inline button with this exact label."""
        for labels, data in zip(self.buttons, self.callback_data, strict=True):
            for one_label, one_data in zip(labels, data, strict=True):
                if one_label == label:
                    return one_data
        raise AssertionError(f"no button {label!r}; buttons: {self.labels}")


class World:
    """Everything the emulated Telegram knows; mutated by the Bot API and by simulated users."""

    def __init__(self, *, bot_username: str, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.bot_username = bot_username
        self.bot_id = 100000
        self.bot_first_name = "Zhiban"
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.callbacks: dict[str, SimCallbackQuery] = {}
        self.callback_timeout = timedelta(seconds=15)
        self.entries: list[TranscriptEntry] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.group_privacy = True
        self.changed = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(1)

    def bot_json(self) -> dict[str, Any]:
        """Return the bot's ``User`` object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self.clock()

    def timestamp(self) -> int:
        """Return the clock's time as Unix seconds, the ``date`` of messages."""
        return int(self.clock().timestamp())

    async def notify(self) -> None:
        """Wake everyone waiting for a change (long polls, webhook sender, test waits)."""
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait, without polling, until ``predicate`` holds."""
        async with self.changed:
            await self.changed.wait_for(predicate)

    async def enqueue(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update of ``kind`` unless allowed_updates excludes it; return its id."""
        if kind not in self.allowed_updates:
            return None
        update_id = next(self._update_ids)
        self.updates.append({"update_id": update_id, kind: payload})
        await self.notify()
        return update_id

    def new_query_id(self) -> str:
        """Return a fresh callback query id."""
        return f"{self.bot_id}{next(self._query_ids):08d}"

    def store_file(
        self, content: bytes, *, folder: str, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        """Keep file content and return its record with fresh ids and path."""
        number = next(self._file_ids)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        elif folder == "photos":
            suffix = ".jpg"
        stored = StoredFile(
            file_id=f"BQAC{number:06d}{folder[:3]}",
            file_unique_id=f"AgAD{number:06d}",
            content=content,
            file_path=f"{folder}/file_{number}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        """Find a file by its download path."""
        return next((f for f in self.files.values() if f.file_path == path), None)

    def photo_sizes(self, stored: StoredFile) -> list[dict[str, Any]]:
        """Return PhotoSize objects for a stored photo (one file id per size)."""
        sizes = []
        for width, height in ((90, 67), (320, 240), (1280, 960)):
            size_id = f"{stored.file_id}_{width}"
            self.files[size_id] = stored
            sizes.append(
                {
                    "file_id": size_id,
                    "file_unique_id": f"{stored.file_unique_id}{width}",
                    "width": width,
                    "height": height,
                    "file_size": len(stored.content),
                }
            )
        return sizes

    def add_message(
        self, chat: ChatState, *, from_bot: bool, sender: dict[str, Any], content: dict[str, Any]
    ) -> StoredMessage:
        """Store a new message in ``chat`` with the next message_id and the clock's date."""
        message_id = chat.next_message_id
        chat.next_message_id += 1
        payload = {
            "message_id": message_id,
            "from": sender,
            "chat": chat.to_json(),
            "date": self.timestamp(),
            **content,
        }
        stored = StoredMessage(
            message_id=message_id,
            chat_id=chat.chat_id,
            from_bot=from_bot,
            sender_id=int(sender["id"]),
            payload=payload,
        )
        chat.messages[message_id] = stored
        return stored

    def record(
        self,
        chat: ChatState,
        *,
        kind: str,
        text: str,
        from_bot: bool,
        sender: str | None = None,
        markup: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> None:
        """Append an event to the transcript."""
        labels = [[b.get("text", "") for b in row] for row in inline_rows(markup)]
        labels += reply_rows(markup)
        name = sender or chat.display_name
        self.entries.append(
            TranscriptEntry(
                at=self.now(),
                chat_id=chat.chat_id,
                kind=kind,
                sender=BOT_NAME if from_bot else name,
                recipient=chat.display_name if from_bot else BOT_NAME,
                text=text,
                buttons=tuple(tuple(row) for row in labels),
                message_id=message_id,
            )
        )

    def view(self, stored: StoredMessage) -> SentMessage:
        """Return the read model of a stored message."""
        payload = stored.payload
        rows = inline_rows(stored.reply_markup)
        document = payload.get("document")
        doc_file = self.files.get(document["file_id"]) if document else None
        photo_file = self.files.get(payload["photo"][-1]["file_id"]) if "photo" in payload else None
        location = payload.get("location")
        reply_to = payload.get("reply_to_message")
        return SentMessage(
            message_id=stored.message_id,
            chat_id=stored.chat_id,
            from_bot=stored.from_bot,
            sender_id=stored.sender_id,
            date=int(payload["date"]),
            text=stored.plain,
            html=stored.source,
            parse_mode=stored.parse_mode,
            caption=payload.get("caption"),
            entities=stored.entities,
            buttons=tuple(tuple(str(b.get("text", "")) for b in row) for row in rows),
            callback_data=tuple(tuple(b.get("callback_data") for b in row) for row in rows),
            keyboard=tuple(tuple(row) for row in reply_rows(stored.reply_markup)),
            reply_markup=stored.reply_markup,
            document_name=doc_file.file_name if doc_file else None,
            document_bytes=doc_file.content if doc_file else None,
            photo=photo_file.content if photo_file else None,
            location=(location["latitude"], location["longitude"]) if location else None,
            reply_to_message_id=reply_to["message_id"] if reply_to else None,
            edited=stored.edited,
            deleted=stored.deleted,
            raw=copy.deepcopy(payload),
        )
