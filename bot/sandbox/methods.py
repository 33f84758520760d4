"""The emulated Bot API methods for chats, messages, buttons, files and commands."""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bot.sandbox.errors import ApiError, bad_request, forbidden
from bot.sandbox.html import EntityParseError, FormattedText, parse_formatted, utf16_len
from bot.sandbox.limits import FloodLimiter
from bot.sandbox.markup import check_reply_markup_allowed, validate_reply_markup
from bot.sandbox.params import Params, UploadedFile
from bot.sandbox.state import CallbackAnswer, ChatState, StoredFile, StoredMessage, World

Method = Callable[[Params], Awaitable[Any]]

MAX_TEXT = 4096
MAX_CAPTION = 1024
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_SCOPES_WITH_CHAT = ("chat", "chat_administrators", "chat_member")
_SCOPES = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


class BotApi:
    """Implements the Bot API methods over the :class:`World`, as strictly as Telegram."""

    def __init__(self, world: World, limiter: FloodLimiter) -> None:
        self.world = world
        self.limiter = limiter
        self.enforce_flood_limits = False

    def methods(self) -> dict[str, Method]:
        """Return the implemented methods by lower-cased name."""
        table: dict[str, Method] = {
            "getme": self.get_me,
            "sendmessage": self.send_message,
            "editmessagetext": self.edit_message_text,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "editmessagecaption": self.edit_message_caption,
            "deletemessage": self.delete_message,
            "answercallbackquery": self.answer_callback_query,
            "sendphoto": self.send_photo,
            "sendvoice": self.send_voice,
            "senddocument": self.send_document,
            "sendmediagroup": self.send_media_group,
            "sendlocation": self.send_location,
            "sendchataction": self.send_chat_action,
            "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands,
            "deletemycommands": self.delete_my_commands,
            "getchat": self.get_chat,
            "getfile": self.get_file,
            "setchatmenubutton": self.set_chat_menu_button,
            "getchatmenubutton": self.get_chat_menu_button,
            "close": self.close,
            "logout": self.close,
        }
        return table

    # -- chats and access ---------------------------------------------------------------

    def _find_chat(self, p: Params) -> ChatState:
        chat_id = p.chat_id()
        chat = self.world.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, p: Params) -> ChatState:
        chat = self._find_chat(p)
        if chat.is_group:
            if not chat.bot_member:
                raise forbidden(f"bot is not a member of the {chat.kind} chat")
        elif chat.blocked:
            raise forbidden("bot was blocked by the user")
        elif not chat.started:
            raise forbidden("bot can't initiate conversation with a user")
        return chat

    def _flood(self, chat: ChatState) -> None:
        if not self.enforce_flood_limits:
            return
        wait = self.limiter.acquire(chat.chat_id, is_group=chat.is_group)
        if wait is not None:
            raise ApiError(429, retry_after=wait)

    # -- text -----------------------------------------------------------------------------

    def _format(
        self, p: Params, field: str, *, limit: int, required: bool
    ) -> tuple[FormattedText, str | None, str | None]:
        source = p.get_str(field)
        parse_mode = p.get_str("parse_mode") or None
        if source is None or not source.strip():
            if required:
                raise bad_request("message text is empty")
            return FormattedText(""), None, parse_mode
        explicit = p.get_json(f"{field}_entities" if field == "caption" else "entities")
        if explicit:
            if not isinstance(explicit, list):
                raise bad_request("can't parse entities JSON object")
            formatted = FormattedText(source, tuple(explicit))
            parse_mode = None
        else:
            try:
                formatted = parse_formatted(source, parse_mode)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        if not formatted.text.strip():
            raise bad_request("message text is empty" if required else "message caption is empty")
        if utf16_len(formatted.text) > limit:
            raise bad_request(
                "message is too long" if field == "text" else "message caption is too long"
            )
        return formatted, source, parse_mode

    def _markup(self, p: Params, *, edit: bool = False) -> dict[str, Any] | None:
        markup = validate_reply_markup(p.get_json("reply_markup", "reply keyboard markup"))
        check_reply_markup_allowed(markup, edit=edit)
        return markup

    def _reply_target(self, p: Params, chat: ChatState) -> StoredMessage | None:
        params = p.get_json("reply_parameters")
        if isinstance(params, dict) and params.get("message_id") is not None:
            message_id = int(params["message_id"])
            lenient = bool(params.get("allow_sending_without_reply"))
        else:
            reply_id = p.get_int("reply_to_message_id")
            if reply_id is None:
                return None
            message_id = reply_id
            lenient = p.get_bool("allow_sending_without_reply")
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            if lenient:
                return None
            raise bad_request("message to be replied not found")
        return target

    async def _send(
        self,
        p: Params,
        chat: ChatState,
        *,
        content: dict[str, Any],
        formatted: FormattedText,
        source: str | None,
        parse_mode: str | None,
        markup: dict[str, Any] | None,
        kind: str,
        file_id: str | None = None,
    ) -> dict[str, Any]:
        reply_to = self._reply_target(p, chat)
        self._flood(chat)
        body = dict(content)
        text_field = "text" if kind == "message" else "caption"
        if formatted.text:
            body[text_field] = formatted.text
            if formatted.entities:
                entities_field = "entities" if kind == "message" else "caption_entities"
                body[entities_field] = list(formatted.entities)
        if markup is not None and "inline_keyboard" in markup:
            body["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        if reply_to is not None:
            quoted = copy.deepcopy(reply_to.payload)
            quoted.pop("reply_to_message", None)
            body["reply_to_message"] = quoted
        if kind == "message" and p.has("link_preview_options"):
            body["link_preview_options"] = p.get_json("link_preview_options")
        stored = self.world.add_message(
            chat, from_bot=True, sender=self.world.bot_json(), content=body
        )
        stored.plain, stored.entities = formatted.text, formatted.entities
        stored.source, stored.parse_mode = source, parse_mode
        stored.reply_markup, stored.file_id = markup, file_id
        chat.outputs.append(stored.message_id)
        label = formatted.text if kind in ("message", "photo", "document") else ""
        if kind == "document":
            label = f"{content['document'].get('file_name', 'file')} {label}".strip()
        if kind == "location":
            label = f"{content['location']['latitude']}, {content['location']['longitude']}"
        self.world.record(
            chat, kind=kind, text=label, from_bot=True, markup=markup, message_id=stored.message_id
        )
        await self.world.notify()
        return copy.deepcopy(stored.payload)

    # -- methods --------------------------------------------------------------------------

    async def get_me(self, p: Params) -> dict[str, Any]:
        """Answer getMe."""
        return {
            **self.world.bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.world.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def send_message(self, p: Params) -> dict[str, Any]:
        """Answer sendMessage."""
        chat = self._writable_chat(p)
        formatted, source, parse_mode = self._format(p, "text", limit=MAX_TEXT, required=True)
        markup = self._markup(p)
        return await self._send(
            p,
            chat,
            content={},
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
            kind="message",
        )

    def _input_file(
        self, p: Params, field: str, *, folder: str, missing: str
    ) -> tuple[StoredFile, bool]:
        given = p.get_file(field)
        if given is None:
            raise bad_request(missing)
        if isinstance(given, UploadedFile):
            if not given.content:
                raise bad_request("file must be non-empty")
            stored = self.world.store_file(
                given.content, folder=folder, file_name=given.filename, mime_type=given.content_type
            )
            return stored, True
        known = self.world.files.get(given)
        if known is not None:
            return known, False
        if re.match(r"https?://[^/\s]+\.[^/\s]+", given):
            name = given.rstrip("/").rsplit("/", 1)[-1] or "file"
            return self.world.store_file(
                b"downloaded:" + given.encode(), folder=folder, file_name=name, mime_type=None
            ), True
        raise bad_request("wrong file identifier/HTTP URL specified")

    async def send_photo(self, p: Params) -> dict[str, Any]:
        """Answer sendPhoto (upload, file_id or URL)."""
        chat = self._writable_chat(p)
        formatted, source, parse_mode = self._format(
            p, "caption", limit=MAX_CAPTION, required=False
        )
        markup = self._markup(p)
        stored, uploaded = self._input_file(
            p, "photo", folder="photos", missing="there is no photo in the request"
        )
        if not uploaded and stored.file_path.startswith("voice/"):
            raise bad_request("type of file mismatch")
        content = {"photo": self.world.photo_sizes(stored)}
        return await self._send(
            p,
            chat,
            content=content,
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
            kind="photo",
            file_id=stored.file_id,
        )

    async def send_voice(self, p: Params) -> dict[str, Any]:
        """Answer sendVoice (upload, or the file_id of a voice note the emulator has seen).

        As Telegram: an unknown file id is "wrong file identifier/HTTP URL specified", and the
        file id of a photo or document is "type of file mismatch".
        """
        chat = self._writable_chat(p)
        formatted, source, parse_mode = self._format(
            p, "caption", limit=MAX_CAPTION, required=False
        )
        markup = self._markup(p)
        stored, uploaded = self._input_file(
            p, "voice", folder="voice", missing="there is no voice in the request"
        )
        if not uploaded and not stored.file_path.startswith("voice/"):
            raise bad_request("type of file mismatch")
        duration = p.get_int("duration")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": stored.duration if duration is None else duration,
            "mime_type": stored.mime_type or "audio/ogg",
            "file_size": len(stored.content),
        }
        return await self._send(
            p,
            chat,
            content={"voice": voice},
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
            kind="voice",
            file_id=stored.file_id,
        )

    async def send_document(self, p: Params) -> dict[str, Any]:
        """Answer sendDocument (upload, file_id or URL)."""
        chat = self._writable_chat(p)
        formatted, source, parse_mode = self._format(
            p, "caption", limit=MAX_CAPTION, required=False
        )
        markup = self._markup(p)
        stored, _ = self._input_file(
            p, "document", folder="documents", missing="there is no document in the request"
        )
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return await self._send(
            p,
            chat,
            content={"document": document},
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
            kind="document",
            file_id=stored.file_id,
        )

    async def send_media_group(self, p: Params) -> list[dict[str, Any]]:
        """Answer sendMediaGroup (2-10 photos or documents, files by ``attach://``)."""
        chat = self._writable_chat(p)
        media = p.get_json("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media specified; must be between 2 and 10")
        kinds = {item.get("type") if isinstance(item, dict) else None for item in media}
        if not kinds <= {"photo", "video"} and kinds != {"document"} and kinds != {"audio"}:
            raise bad_request("MEDIA_INVALID")
        group_id = f"{chat.chat_id}{chat.next_message_id}"
        sent = []
        for item in media:
            kind = str(item["type"])
            if kind not in ("photo", "document"):
                raise bad_request(f"{kind} media are not supported by the emulator")
            files = p.files_for(item.get("media"), kind)
            values = {k: v for k, v in item.items() if k not in ("media", "type")}
            values["chat_id"] = chat.chat_id
            if not files:
                values[kind] = item.get("media")
            one = Params(values, files)
            result = await (self.send_photo(one) if kind == "photo" else self.send_document(one))
            stored = chat.messages[result["message_id"]]
            stored.payload["media_group_id"] = group_id
            sent.append(copy.deepcopy(stored.payload))
        return sent

    async def send_location(self, p: Params) -> dict[str, Any]:
        """Answer sendLocation."""
        chat = self._writable_chat(p)
        latitude, longitude = p.get_float("latitude"), p.get_float("longitude")
        if latitude is None or longitude is None:
            raise bad_request("wrong latitude/longitude specified")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong latitude/longitude specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        for name in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            value = p.get_float(name)
            if value is not None:
                location[name] = value
        markup = self._markup(p)
        return await self._send(
            p,
            chat,
            content={"location": location},
            formatted=FormattedText(""),
            source=None,
            parse_mode=None,
            markup=markup,
            kind="location",
        )

    async def send_chat_action(self, p: Params) -> bool:
        """Answer sendChatAction."""
        self._writable_chat(p)
        if p.get_str("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _message_to_edit(self, p: Params) -> tuple[ChatState, StoredMessage]:
        if p.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._writable_chat(p)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return chat, stored

    async def _apply_edit(
        self,
        chat: ChatState,
        stored: StoredMessage,
        *,
        text_field: str,
        formatted: FormattedText,
        source: str | None,
        parse_mode: str | None,
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        same_text = formatted.text == stored.plain and formatted.entities == stored.entities
        current = stored.reply_markup
        if current is not None and "inline_keyboard" not in current:
            current = None
        if same_text and markup == current:
            raise bad_request(_NOT_MODIFIED)
        self._flood(chat)
        entities_field = "entities" if text_field == "text" else "caption_entities"
        payload = stored.payload
        payload.pop(entities_field, None)
        payload.pop("reply_markup", None)
        if formatted.text or text_field == "text":
            payload[text_field] = formatted.text
        else:
            payload.pop(text_field, None)
        if formatted.entities:
            payload[entities_field] = list(formatted.entities)
        if markup is not None:
            payload["reply_markup"] = markup
        payload["edit_date"] = self.world.timestamp()
        stored.plain, stored.entities = formatted.text, formatted.entities
        stored.source, stored.parse_mode = source, parse_mode
        stored.reply_markup, stored.edited = markup, True
        chat.outputs.append(stored.message_id)
        self.world.record(
            chat,
            kind="edit",
            text=formatted.text,
            from_bot=True,
            markup=markup,
            message_id=stored.message_id,
        )
        await self.world.notify()
        return copy.deepcopy(payload)

    async def edit_message_text(self, p: Params) -> dict[str, Any]:
        """Answer editMessageText; an edit without reply_markup removes the inline keyboard."""
        chat, stored = self._message_to_edit(p)
        if "text" not in stored.payload:
            raise bad_request("there is no text in the message to edit")
        formatted, source, parse_mode = self._format(p, "text", limit=MAX_TEXT, required=True)
        markup = self._markup(p, edit=True)
        return await self._apply_edit(
            chat,
            stored,
            text_field="text",
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
        )

    async def edit_message_caption(self, p: Params) -> dict[str, Any]:
        """Answer editMessageCaption."""
        chat, stored = self._message_to_edit(p)
        if "text" in stored.payload or "location" in stored.payload:
            raise bad_request("there is no caption in the message to edit")
        formatted, source, parse_mode = self._format(
            p, "caption", limit=MAX_CAPTION, required=False
        )
        markup = self._markup(p, edit=True)
        return await self._apply_edit(
            chat,
            stored,
            text_field="caption",
            formatted=formatted,
            source=source,
            parse_mode=parse_mode,
            markup=markup,
        )

    async def edit_message_reply_markup(self, p: Params) -> dict[str, Any]:
        """Answer editMessageReplyMarkup."""
        chat, stored = self._message_to_edit(p)
        markup = self._markup(p, edit=True)
        text_field = "text" if "text" in stored.payload else "caption"
        return await self._apply_edit(
            chat,
            stored,
            text_field=text_field,
            formatted=FormattedText(stored.plain, stored.entities),
            source=stored.source,
            parse_mode=stored.parse_mode,
            markup=markup,
        )

    async def delete_message(self, p: Params) -> bool:
        """Answer deleteMessage."""
        chat = self._find_chat(p)
        message_id = p.get_int("message_id")
        stored = chat.messages.get(message_id) if message_id is not None else None
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if chat.is_group and not stored.from_bot:
            raise bad_request("message can't be deleted")
        stored.deleted = True
        self.world.record(
            chat, kind="delete", text=stored.plain, from_bot=True, message_id=stored.message_id
        )
        await self.world.notify()
        return True

    async def answer_callback_query(self, p: Params) -> bool:
        """Answer answerCallbackQuery; unknown, repeated or late answers are refused."""
        query_id = p.get_str("callback_query_id") or ""
        query = self.world.callbacks.get(query_id)
        expired = (
            query is None
            or query.answer is not None
            or self.world.now() - query.created > self.world.callback_timeout
        )
        if query is None or expired:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = p.get_str("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answer = CallbackAnswer(
            query_id=query_id,
            text=text,
            show_alert=p.get_bool("show_alert"),
            url=p.get_str("url"),
        )
        chat = self.world.chats[query.chat_id]
        shown = ("(alert) " if query.answer.show_alert else "") + (text or "✓")
        self.world.record(chat, kind="answer", text=shown, from_bot=True)
        await self.world.notify()
        return True

    def _scope_key(self, p: Params) -> tuple[str, str]:
        scope = p.get_json("scope") or {"type": "default"}
        language = p.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        if not isinstance(scope, dict):
            raise bad_request("can't parse BotCommandScope JSON object")
        kind = scope.get("type")
        if kind in _SCOPES:
            return str(kind), language
        if kind in _SCOPES_WITH_CHAT:
            chat_id = scope.get("chat_id")
            if not isinstance(chat_id, int) or chat_id not in self.world.chats:
                raise bad_request("chat not found")
            key = f"{kind}:{chat_id}"
            if kind == "chat_member":
                key += f":{scope.get('user_id')}"
            return key, language
        raise bad_request("wrong BotCommandScope type specified")

    async def set_my_commands(self, p: Params) -> bool:
        """Answer setMyCommands, storing the list per scope and language."""
        commands = p.get_json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned: list[dict[str, str]] = []
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not _COMMAND_NAME_RE.fullmatch(name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        self.world.commands[self._scope_key(p)] = cleaned
        return True

    async def get_my_commands(self, p: Params) -> list[dict[str, str]]:
        """Answer getMyCommands."""
        return list(self.world.commands.get(self._scope_key(p), []))

    async def delete_my_commands(self, p: Params) -> bool:
        """Answer deleteMyCommands."""
        self.world.commands.pop(self._scope_key(p), None)
        return True

    async def get_chat(self, p: Params) -> dict[str, Any]:
        """Answer getChat with a ChatFullInfo object."""
        chat = self._find_chat(p)
        if chat.user is not None and not chat.started:
            raise bad_request("chat not found")
        return {
            **chat.to_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def get_file(self, p: Params) -> dict[str, Any]:
        """Answer getFile."""
        stored = self.world.files.get(p.get_str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": p.get_str("file_id"),
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def set_chat_menu_button(self, p: Params) -> bool:
        """Answer setChatMenuButton."""
        chat_id = p.get_int("chat_id")
        if chat_id is not None and chat_id not in self.world.chats:
            raise bad_request("chat not found")
        button = p.get_json("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise bad_request("can't parse menu button JSON object")
        self.world.menu_buttons[chat_id] = button
        return True

    async def get_chat_menu_button(self, p: Params) -> dict[str, Any]:
        """Answer getChatMenuButton."""
        chat_id = p.get_int("chat_id")
        button = self.world.menu_buttons.get(chat_id) or self.world.menu_buttons.get(None)
        if button is None or button.get("type") == "default":
            return {"type": "commands"}
        return button

    async def close(self, p: Params) -> bool:
        """Answer close / logOut."""
        return True
