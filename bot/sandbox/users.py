"""Simulated Telegram users and groups: the test-side API that talks to the bot."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from bot.sandbox.html import command_entities
from bot.sandbox.markup import inline_rows
from bot.sandbox.state import (
    CallbackAnswer,
    ChatState,
    SentMessage,
    SimCallbackQuery,
    StoredMessage,
    UserProfile,
    World,
)
from bot.sandbox.transcript import render_transcript

Predicate = Callable[[SentMessage], bool]
_FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64) + b"\xff\xd9"


def _bot_messages(world: World, chat: ChatState) -> list[SentMessage]:
    ordered = sorted(chat.messages.values(), key=lambda m: m.message_id)
    return [world.view(m) for m in ordered if m.from_bot and not m.deleted]


async def _wait_outputs(
    world: World,
    chat: ChatState,
    predicate: Predicate | None,
    count: int,
    timeout: float,  # noqa: ASYNC109 - a plain bound is the simplest API for test code
) -> list[SentMessage]:
    """Wait until the bot sent or edited ``count`` messages (or one matching) since the mark."""

    def matching() -> list[int]:
        fresh = chat.outputs[chat.mark :]
        if predicate is None:
            return list(range(chat.mark, chat.mark + count)) if len(fresh) >= count else []
        for index, message_id in enumerate(fresh, start=chat.mark):
            if predicate(world.view(chat.messages[message_id])):
                return [index]
        return []

    try:
        await asyncio.wait_for(world.wait_until(lambda: bool(matching())), timeout)
    except TimeoutError:
        tail = render_transcript(world.entries[-12:])
        seen = len(chat.outputs) - chat.mark
        wanted = "a matching message" if predicate else f"{count} message(s)"
        raise AssertionError(
            f"timed out after {timeout}s waiting for {wanted} from the bot in "
            f"{chat.display_name!r} ({seen} new); transcript tail:\n{tail}"
        ) from None
    indexes = matching()
    chat.mark = indexes[-1] + 1
    return [world.view(chat.messages[chat.outputs[i]]) for i in indexes]


class _ChatReader:
    """Reading helpers shared by users (private chat) and groups."""

    _world: World
    _chat: ChatState

    def messages(self) -> list[SentMessage]:
        """Return the bot's messages in this chat, edits applied, deleted ones left out."""
        return _bot_messages(self._world, self._chat)

    def last(self) -> SentMessage:
        """Return the bot's newest message in this chat."""
        found = self.messages()
        if not found:
            raise AssertionError(f"the bot has sent nothing to {self._chat.display_name!r}")
        return found[-1]

    async def wait_for(
        self,
        predicate: Predicate | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """Wait for the bot's ``count``-th new output (or one matching) and return it."""
        found = await _wait_outputs(self._world, self._chat, predicate, count, timeout)
        return found[-1]

    async def wait_for_many(
        self,
        count: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait for the bot's next ``count`` outputs (sends and edits) and return them all."""
        return await _wait_outputs(self._world, self._chat, None, count, timeout)


class SimUser(_ChatReader):
    """A Telegram user in a private chat with the bot."""

    def __init__(self, world: World, profile: UserProfile) -> None:
        self._world = world
        self.profile = profile
        chat = world.chats.get(profile.user_id)
        if chat is None:
            chat = ChatState(chat_id=profile.user_id, kind="private", user=profile)
            world.chats[profile.user_id] = chat
        self._chat = chat
        self._queries: list[SimCallbackQuery] = []

    @property
    def user_id(self) -> int:
        """Return the Telegram user id (also the private chat id)."""
        return self.profile.user_id

    @property
    def name(self) -> str:
        """Return the display name."""
        return self.profile.display_name

    async def _post(
        self, content: dict[str, Any], *, kind: str, text: str, chat: ChatState | None = None
    ) -> SentMessage:
        target = chat or self._chat
        if target is self._chat:
            if self._chat.blocked:
                raise AssertionError(f"{self.name} blocked the bot; call unblock() first")
            self._chat.started = True
        stored = self._world.add_message(
            target, from_bot=False, sender=self.profile.to_json(), content=content
        )
        stored.plain = text
        target.mark = len(target.outputs)
        self._world.record(target, kind=kind, text=text, from_bot=False, sender=self.name)
        if _delivered(self._world, target, stored):
            await self._world.enqueue("message", stored.payload)
        else:
            await self._world.notify()
        return self._world.view(stored)

    async def send(self, text: str) -> SentMessage:
        """Send a text message (commands get ``bot_command`` entities)."""
        return await self._post(_text_content(text), kind="message", text=text)

    async def start(self, payload: str | None = None) -> SentMessage:
        """Press Start, as a deep link ``t.me/<bot>?start=<payload>`` does."""
        return await self.send(f"/start {payload}" if payload else "/start")

    async def send_location(
        self,
        lat: float,
        lon: float,
        *,
        horizontal_accuracy: float | None = None,
        live_period: int | None = None,
    ) -> SentMessage:
        """Share a location (a live one when ``live_period`` is given)."""
        location: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        if live_period is not None:
            location["live_period"] = live_period
        return await self._post({"location": location}, kind="location", text=f"{lat}, {lon}")

    async def send_photo(
        self,
        caption: str | None = None,
        *,
        file_size: int | None = None,
        media_group_id: str | None = None,
    ) -> SentMessage:
        """Send a photo (generated content; getFile and download work on it).

        ``file_size`` is what the update claims (a phone's 30 MB picture without storing 30 MB
        here); ``media_group_id`` marks it as one photo of an album, as Telegram delivers an
        album: one message per photo, sharing the id.
        """
        stored = self._world.store_file(
            _FAKE_JPEG + secrets.token_bytes(8), folder="photos", file_name=None, mime_type=None
        )
        sizes = self._world.photo_sizes(stored)
        if file_size is not None:
            sizes = [{**size, "file_size": file_size} for size in sizes]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return await self._post(content, kind="photo", text=caption or "")

    async def send_album(self, count: int, caption: str | None = None) -> list[SentMessage]:
        """Send `count` photos at once as one album (Telegram's are at most 10; apps send more)."""
        group = f"album{secrets.randbelow(10**9)}"
        sent = [await self.send_photo(caption, media_group_id=group)]
        mark = self._chat.mark  # the bot's answers are read from the album's first photo on
        sent += [await self.send_photo(media_group_id=group) for _ in range(count - 1)]
        self._chat.mark = mark
        return sent

    async def send_voice(self, duration: int = 3, *, file_size: int | None = None) -> SentMessage:
        """Send a voice message of ``duration`` seconds (``file_size``: what the update claims)."""
        stored = self._world.store_file(
            b"OggS" + bytes(32 * min(duration, 60)),
            folder="voice",
            file_name=None,
            mime_type="audio/ogg",
        )
        stored.duration = duration
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.content) if file_size is None else file_size,
        }
        return await self._post({"voice": voice}, kind="voice", text=f"{duration}s")

    async def send_video(self, duration: int = 5) -> SentMessage:
        """Send a short video."""
        stored = self._world.store_file(
            b"\x00\x00\x00\x18ftypmp42" + bytes(64),
            folder="videos",
            file_name=None,
            mime_type="video/mp4",
        )
        video = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 640,
            "height": 360,
            "duration": duration,
            "mime_type": "video/mp4",
            "file_size": len(stored.content),
        }
        return await self._post({"video": video}, kind="video", text=f"video {duration}s")

    async def send_sticker(self) -> SentMessage:
        """Send a sticker."""
        stored = self._world.store_file(
            b"RIFF" + bytes(16), folder="stickers", file_name=None, mime_type="image/webp"
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return await self._post({"sticker": sticker}, kind="sticker", text="👍")

    async def send_document(self, filename: str, content: bytes) -> SentMessage:
        """Send a file."""
        stored = self._world.store_file(
            content, folder="documents", file_name=filename, mime_type="application/octet-stream"
        )
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": filename,
            "mime_type": "application/octet-stream",
            "file_size": len(content),
        }
        return await self._post({"document": document}, kind="document", text=filename)

    async def send_contact(self, phone: str) -> SentMessage:
        """Share the user's own contact card."""
        contact = {
            "phone_number": phone,
            "first_name": self.profile.first_name,
            "user_id": self.user_id,
        }
        if self.profile.last_name:
            contact["last_name"] = self.profile.last_name
        return await self._post({"contact": contact}, kind="contact", text=phone)

    def _find_button(self, label: str, message_id: int | None) -> tuple[StoredMessage, str, str]:
        candidates = [
            m
            for m in sorted(self._chat.messages.values(), key=lambda m: -m.message_id)
            if m.from_bot and not m.deleted and (message_id is None or m.message_id == message_id)
        ]
        for exact in (True, False):
            for stored in candidates:
                for row in inline_rows(stored.reply_markup):
                    for button in row:
                        text = str(button.get("text", ""))
                        if (text == label) if exact else (label in text):
                            if "callback_data" not in button:
                                raise AssertionError(f"button {text!r} is not a callback button")
                            return stored, text, str(button["callback_data"])
        visible = [
            [str(b.get("text")) for row in inline_rows(m.reply_markup) for b in row]
            for m in candidates
        ]
        raise AssertionError(
            f"{self.name}: no inline button {label!r}; visible labels (newest first): "
            f"{[labels for labels in visible if labels]}"
        )

    async def press(self, label: str, *, message_id: int | None = None) -> SimCallbackQuery:
        """Press the inline button labelled ``label`` on the newest bot message showing it."""
        stored, text, data = self._find_button(label, message_id)
        return await self._callback(stored, data, text)

    async def press_data(self, message_id: int, data: str) -> SimCallbackQuery:
        """Send a callback query with arbitrary (possibly forged) data for a message."""
        stored = self._chat.messages.get(message_id)
        if stored is None:
            raise AssertionError(f"no message {message_id} in the chat of {self.name}")
        return await self._callback(stored, data, data)

    async def _callback(
        self, stored: StoredMessage, data: str, label: str, chat: ChatState | None = None
    ) -> SimCallbackQuery:
        target = chat or self._chat
        query = SimCallbackQuery(
            query_id=self._world.new_query_id(),
            chat_id=target.chat_id,
            message_id=stored.message_id,
            user_id=self.user_id,
            data=data,
            label=label,
            created=self._world.now(),
        )
        self._world.callbacks[query.query_id] = query
        self._queries.append(query)
        target.mark = len(target.outputs)
        self._world.record(target, kind="press", text=label, from_bot=False, sender=self.name)
        payload = {
            "id": query.query_id,
            "from": self.profile.to_json(),
            "message": stored.payload,
            "chat_instance": str(-abs(hash((self._world.bot_id, target.chat_id)))),
            "data": data,
        }
        await self._world.enqueue("callback_query", payload)
        return query

    def callback_answers(self) -> list[CallbackAnswer]:
        """Return the bot's answers to this user's button presses, in order."""
        return [q.answer for q in self._queries if q.answer is not None]

    async def wait_for_answer(
        self,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallbackAnswer:
        """Wait until the bot answers this user's latest button press."""
        if not self._queries:
            raise AssertionError(f"{self.name} has pressed no button")
        query = self._queries[-1]
        try:
            await asyncio.wait_for(
                self._world.wait_until(lambda: query.answer is not None), timeout
            )
        except TimeoutError:
            tail = render_transcript(self._world.entries[-12:])
            raise AssertionError(
                f"the bot did not answer the press of {query.label!r} within {timeout}s; "
                f"transcript tail:\n{tail}"
            ) from None
        assert query.answer is not None
        return query.answer

    async def block(self) -> None:
        """Block the bot (the bot gets a my_chat_member update with status "kicked")."""
        self._chat.blocked = True
        self._world.record(self._chat, kind="block", text="blocked the bot", from_bot=False)
        await self._member_update("member", "kicked")

    async def unblock(self) -> None:
        """Unblock the bot."""
        self._chat.blocked = False
        self._world.record(self._chat, kind="unblock", text="unblocked the bot", from_bot=False)
        await self._member_update("kicked", "member")

    async def _member_update(self, old: str, new: str) -> None:
        await self._world.enqueue(
            "my_chat_member",
            _member_change(self._world, self._chat, self.profile, old, new),
        )


class SimGroup(_ChatReader):
    """A group chat where simulated users talk and the bot may be a member."""

    def __init__(self, world: World, chat: ChatState) -> None:
        self._world = world
        self._chat = chat

    @property
    def chat_id(self) -> int:
        """Return the group's chat id."""
        return self._chat.chat_id

    async def send(self, user: SimUser, text: str) -> SentMessage:
        """Post ``text`` in the group as ``user`` (privacy mode decides if the bot sees it)."""
        return await user._post(_text_content(text), kind="message", text=text, chat=self._chat)

    async def press_data(self, user: SimUser, message_id: int, data: str) -> SimCallbackQuery:
        """Send ``user``'s callback query with arbitrary (possibly forged) data for a message here.

        The answer is read with ``user.wait_for_answer()``.
        """
        stored = self._chat.messages.get(message_id)
        if stored is None:
            raise AssertionError(f"no message {message_id} in {self._chat.display_name!r}")
        return await user._callback(stored, data, data, chat=self._chat)

    async def add_bot(self, *, by: SimUser) -> None:
        """Add the bot to the group (the bot gets a my_chat_member update)."""
        self._chat.bot_member = True
        self._world.record(
            self._chat, kind="join", text="added the bot", from_bot=False, sender=by.name
        )
        await self._world.enqueue(
            "my_chat_member", _member_change(self._world, self._chat, by.profile, "left", "member")
        )

    async def remove_bot(self, *, by: SimUser) -> None:
        """Remove the bot from the group."""
        self._chat.bot_member = False
        self._world.record(
            self._chat, kind="leave", text="removed the bot", from_bot=False, sender=by.name
        )
        await self._world.enqueue(
            "my_chat_member", _member_change(self._world, self._chat, by.profile, "member", "left")
        )


def _text_content(text: str) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    entities = command_entities(text)
    if entities:
        content["entities"] = list(entities)
    return content


def _delivered(world: World, chat: ChatState, stored: StoredMessage) -> bool:
    """Apply group privacy mode: in groups the bot sees commands and mentions only."""
    if not chat.is_group:
        return True
    if not chat.bot_member:
        return False
    if not world.group_privacy:
        return True
    text = stored.plain
    mention = f"@{world.bot_username}".lower()
    if mention in text.lower():
        return True
    for entity in stored.payload.get("entities", []):
        if entity["type"] == "bot_command":
            units = text.encode("utf-16-le")
            start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
            command = units[start:end].decode("utf-16-le")
            target = command.partition("@")[2].lower()
            if not target or target == world.bot_username.lower():
                return True
    return False


def _member_change(
    world: World, chat: ChatState, actor: UserProfile, old: str, new: str
) -> dict[str, Any]:
    def member(status: str) -> dict[str, Any]:
        body: dict[str, Any] = {"user": world.bot_json(), "status": status}
        if status == "kicked":
            body["until_date"] = 0
        return body

    return {
        "chat": chat.to_json(),
        "from": actor.to_json(),
        "date": world.timestamp(),
        "old_chat_member": member(old),
        "new_chat_member": member(new),
    }
