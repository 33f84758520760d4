"""`python -m bot` is the `zhiban` command."""

from bot.cli import entry

entry()
