"""A local, strict Telegram Bot API emulator for end-to-end tests and the demo."""

from bot.sandbox.errors import ApiError
from bot.sandbox.server import ApiCall, BotApiEmulator
from bot.sandbox.state import CallbackAnswer, SentMessage, SimCallbackQuery
from bot.sandbox.transcript import TranscriptEntry, render_transcript
from bot.sandbox.users import SimGroup, SimUser

__all__ = [
    "ApiCall",
    "ApiError",
    "BotApiEmulator",
    "CallbackAnswer",
    "SentMessage",
    "SimCallbackQuery",
    "SimGroup",
    "SimUser",
    "TranscriptEntry",
    "render_transcript",
]
