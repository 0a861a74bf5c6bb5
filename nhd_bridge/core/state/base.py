"""What every part of a state-store transaction builds on: running statements on the
transaction's connection (or autocommitting them), upserts, reading rows into dataclasses, and
the UTC times everything is stored in."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from sqlalchemy import Column, Select, Table, and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["TxBase", "chunks", "from_row", "load_json", "matching", "stored_utc", "utcnow"]

_NATIVE_UPSERT: dict[str, Any] = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}

RowT = TypeVar("RowT")


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def stored_utc(value: datetime) -> datetime: ...
@overload
def stored_utc(value: None) -> None: ...
def stored_utc(value: datetime | None) -> datetime | None:
    """A datetime read from the store, made aware: SQLite hands back naive ones, and everything
    stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def from_row(kind: type[RowT], row: Any) -> RowT:
    """A row dataclass filled from the row's columns of the same names, datetimes made aware."""
    values = row._mapping
    return kind(
        **{
            column.name: _aware(values[column.name])
            for column in fields(kind)  # type: ignore[arg-type]  # kind is a dataclass
            if column.name in values
        }
    )


def _aware(value: Any) -> Any:
    return stored_utc(value) if isinstance(value, datetime) else value


def matching(table: Table, **values: Any) -> ColumnElement[bool]:
    """The condition that each named column of ``table`` equals its value."""
    return and_(*(table.c[column] == value for column, value in values.items()))


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def chunks(values: list[str], size: int = 500) -> list[list[str]]:
    # Bounded IN lists: SQLite limits bound parameters per statement.
    return [values[start : start + size] for start in range(0, len(values), size)]


class TxBase:
    """Runs statements inside one transaction, or, without a connection, each on its own."""

    def __init__(self, connection: Connection | None, engine: Engine | None = None):
        self._connection = connection
        self._engine = engine

    def _execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._connection is not None:
            return self._connection.execute(statement, parameters)
        assert self._engine is not None
        with self._engine.begin() as connection:
            result = connection.execute(statement, parameters)
            return _Buffered(
                list(result.fetchall()) if result.returns_rows else [], result.rowcount
            )

    def _value(self, column: Column[Any], **key: Any) -> Any:
        """One column of the row whose key columns have these values; None without such a row."""
        row = self._execute(select(column).where(matching(column.table, **key))).first()
        return None if row is None else row[0]

    def _rows_in(self, query: Select[Any], column: Column[Any], values: list[str]) -> Iterator[Any]:
        """The rows of ``query`` whose ``column`` is one of ``values``, a chunk at a time."""
        for chunk in chunks(values):
            yield from self._execute(query.where(column.in_(chunk)))

    def _execute_many(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        if rows:  # no parameters at all would run the statement once, with none
            self._execute(statement, rows)

    def _upsert(
        self,
        table: Table,
        key: dict[str, Any],
        values: dict[str, Any],
        *,
        created: dict[str, Any] | None = None,
    ) -> None:
        """Insert the row, or update ``values`` where ``key`` already exists, in one statement
        (``ON CONFLICT`` on SQLite and PostgreSQL; update-then-insert elsewhere)."""
        dialect = self._dialect()
        if dialect in _NATIVE_UPSERT:
            statement = _native_upsert(dialect, table, tuple(key), tuple(values))
            self._execute(statement, {**key, **values, **(created or {})})
            return
        if not self._execute(update(table).where(matching(table, **key)).values(**values)).rowcount:
            self._execute(insert(table).values(**key, **values, **(created or {})))

    def _insert_absent(
        self, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """Insert the rows whose key is not there yet, in one statement that cannot fail on a row
        another transaction inserted meanwhile (``ON CONFLICT DO NOTHING``)."""
        if not rows:
            return
        dialect = self._dialect()
        if dialect in _NATIVE_UPSERT:
            statement = _NATIVE_UPSERT[dialect](table).on_conflict_do_nothing(
                index_elements=list(key)
            )
            self._execute_many(statement, rows)
            return
        for row in rows:
            condition = matching(table, **{column: row[column] for column in key})
            if self._execute(select(*(table.c[column] for column in key)).where(condition)).first():
                continue
            self._execute(insert(table).values(**row))

    def _dialect(self) -> str:
        bind = self._connection if self._connection is not None else self._engine
        assert bind is not None
        return bind.dialect.name


class _Buffered:
    """Rows of an autocommitted statement, kept after its connection went back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        return self._rows[0][0]


@functools.cache
def _native_upsert(
    dialect: str, table: Table, key: tuple[str, ...], updated: tuple[str, ...]
) -> Any:
    """An INSERT .. ON CONFLICT DO UPDATE built once per shape and run with parameters: building
    statements per call was a third of the bookkeeping time of a large first sync."""
    statement = _NATIVE_UPSERT[dialect](table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in updated}
    )
