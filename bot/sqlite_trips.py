"""SQLite statements in one trip to aiosqlite's thread each, instead of four.

aiosqlite runs the sqlite3 connection in a thread of its own; every call crosses over to it and
back (a queue put, a wake-up of that thread, a future set from it, a wake-up of the event loop).
SQLAlchemy's aiosqlite cursor makes four crossings per statement: open a cursor, execute, fetch
the rows, close the cursor. A clock-in's dozen statements were 48 crossings, and in a profile of
240 clock-ins the queue puts alone took more time than any part of the bot's own code.

`OneTripCursor` makes one: a function run in aiosqlite's thread opens a sqlite3 cursor,
executes, fetches every row and closes it, and hands back the rows with the cursor's
description, rowcount and lastrowid. Rows were fetched in full before as well (SQLAlchemy's
adapter buffers them), so nothing else changes. `one_trip` switches a new connection over
(bot/db.py's connect hook). It leans on SQLAlchemy 2.1's adapter classes and aiosqlite's
`_execute`, both pinned in pyproject.toml and exercised by every test on SQLite.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]


def _run(aiosqlite_connection: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: execute, fetch everything, close; what the cursor said."""
    connection: sqlite3.Connection = aiosqlite_connection._conn
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's buffered aiosqlite cursor, each statement one trip to the thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor: each statement opens and closes its own sqlite3 cursor.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        """The last statement's columns (None for one that returns no rows)."""
        return self._description

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed (-1 for a query)."""
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        """The row id of the last row inserted."""
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        """How many rows fetchmany() gives by default (the DB-API's 1)."""
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor closed in the thread."""

    def close(self) -> None:
        """Drop what is left of the rows."""
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        """Nothing to do, as for sqlite3."""

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        """Run one statement in one trip."""
        try:
            return await_(self._trip(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        """Run one statement for each set of parameters, in one trip."""
        try:
            return await_(self._trip(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await self._connection._execute(
                _run, self._connection, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection, handing out `OneTripCursor`s."""

    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]


def one_trip(dbapi_connection: Any) -> None:
    """Switch a new aiosqlite connection of SQLAlchemy's over to one-trip cursors."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneTripConnection
