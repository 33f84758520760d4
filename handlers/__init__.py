"""Telegram-facing handlers: parse an update, call one service, render the answer."""
