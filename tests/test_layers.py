"""The code's layers point one way: handlers and jobs → services → data; only the app joins."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imports(path)
        if name.split(".")[0] in forbidden or name.startswith(forbidden)
    ]


def test_services_know_nothing_of_telegram_handlers_or_jobs() -> None:
    assert offenders("bot/services", ("telegram", "handlers", "jobs", "bot.app")) == []


def test_handlers_do_not_reach_into_jobs_or_the_app() -> None:
    assert offenders("handlers", ("jobs", "bot.app", "bot.delivery")) == []


def test_jobs_do_not_reach_into_handlers_or_the_app() -> None:
    assert offenders("jobs", ("handlers", "bot.app")) == []
