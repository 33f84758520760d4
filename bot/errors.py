"""The project's own errors; each carries a catalog message that a handler or the CLI renders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.i18n import N_, Translator


class ZhibanError(Exception):
    """A rule refused an action; `message` is a catalog id with `{named}` parameters."""

    def __init__(self, message: str, /, **params: Any) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params

    def render(self, tr: Translator, tz: tzinfo | None = None) -> str:
        """The sentence for the user, in their language (moments shown in `tz`)."""
        params = {key: self._param(tr, value, tz) for key, value in self.params.items()}
        return tr._(self.message, **params)

    @staticmethod
    def _param(tr: Translator, value: Any, tz: tzinfo | None) -> Any:
        if isinstance(value, ZhibanError):
            return value.render(tr, tz)
        if isinstance(value, datetime):
            return tr.datetime_text(value, tz or UTC, "MM-dd HH:mm")
        return value


class NotFound(ZhibanError):
    """What was asked for does not exist (or is outside the asker's scope)."""


class NotAllowed(ZhibanError):
    """The person's roles do not cover this action at this unit."""


class InvalidInput(ZhibanError):
    """The input is malformed; nothing was changed."""


class DraftGone(ZhibanError):
    """The conversation's draft was finished, cancelled or timed out meanwhile; nothing changed."""


class RosterError(ZhibanError):
    """A roster file has a bad row; the whole import is refused."""

    def __init__(
        self, file: str, row: int | None, column: str | None, problem: ZhibanError
    ) -> None:
        if row is None:
            super().__init__(N_("{file}: {problem}"), file=file, problem=problem)
        elif column is None:
            super().__init__(N_("{file} row {row}: {problem}"), file=file, row=row, problem=problem)
        else:
            super().__init__(
                N_("{file} row {row}, column {column}: {problem}"),
                file=file,
                row=row,
                column=column,
                problem=problem,
            )
        self.file = file
        self.row = row
        self.column = column
        self.problem = problem

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file} row {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.problem}"


class RosterRejected(RosterError):
    """An import refused for all its problems; it reads as the first one when it is alone."""

    SHOWN = 50

    def __init__(self, problems: Sequence[RosterError]) -> None:
        first = problems[0]
        super().__init__(first.file, first.row, first.column, first.problem)
        self.problems = tuple(problems)

    def render(self, tr: Translator, tz: tzinfo | None = None) -> str:
        """One line per problem (the first 50, then how many more), under a heading."""
        if len(self.problems) == 1:
            return self.problems[0].render(tr, tz)
        lines = [
            tr._(
                "The roster was not imported and nothing changed; {count} problems:",
                count=len(self.problems),
            )
        ]
        lines += ["  " + problem.render(tr, tz) for problem in self.problems[: self.SHOWN]]
        if len(self.problems) > self.SHOWN:
            lines.append("  " + tr._("and {count} more", count=len(self.problems) - self.SHOWN))
        return "\n".join(lines)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += ["  " + str(problem) for problem in self.problems[: self.SHOWN]]
        if len(self.problems) > self.SHOWN:
            lines.append(f"  and {len(self.problems) - self.SHOWN} more")
        return "\n".join(lines)
