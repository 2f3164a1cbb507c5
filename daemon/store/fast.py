"""Prepared statements for the hot paths (intake and the sender): a SQLAlchemy Core statement
compiled once per dialect, then run on the driver's own cursor.

Going through `Connection.execute` costs 60-100 us a statement in SQLAlchemy itself (cache
key, execution context, result proxy); a mail takes in about seventeen, which made that
overhead a third of intake. Here the SQL text, the parameter order and SQLAlchemy's own
type processors (so values are stored and read exactly as the ORM stores and reads them:
UTC datetimes, JSON, booleans) are worked out once; a call only converts the values and
runs the driver. Driver errors come back as SQLAlchemy's exceptions (IntegrityError,
OperationalError, ...), so callers handle them as before. Everything runs inside the
caller's transaction and SAVEPOINTs.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Executable, Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None
Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a prepared statement: where its value comes from and how it is converted."""

    name: str
    convert: Processor  # SQLAlchemy's bind processor for its type, if it has one
    fallback: Callable[[], Any] | None  # when the caller leaves it out: a literal, a column default, or NULL


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement, ready for one dialect's driver."""

    sql: str
    positional: bool
    parameters: tuple[Parameter, ...]  # in the order a positional driver wants them
    results: tuple[Processor, ...]  # per selected column
    row: Callable[..., tuple[Any, ...]] | None  # a named row type for selects


class Rows:
    """The result of one call: rows already converted, as named tuples."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return self.rows

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


def compile_for(statement: Executable, dialect: Dialect) -> Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=_insert_keys(statement))  # type: ignore[attr-defined]
    if "POSTCOMPILE" in compiled.string:
        raise TypeError(f"an expanding IN cannot be prepared (use in_list): {compiled.string}")
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(dict.fromkeys(compiled.binds))
    fallbacks = _defaults(statement)
    for name, bind in compiled.binds.items():
        if not bind.required:  # a value written in the statement itself (`status == "queued"`)
            fallbacks[name] = _constant(bind.effective_value)
    parameters = tuple(Parameter(name, _converter(compiled.binds[name].type, dialect), fallbacks.get(name))
                       for name in names)
    selected = getattr(statement, "selected_columns", None)
    returning = getattr(statement, "_returning", ())
    columns: Sequence[ColumnElement[Any]] = list(selected) if selected is not None else list(returning)
    results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    keys = [_key(column, i) for i, column in enumerate(columns)]
    keys = [key if keys.index(key) == i else f"c{i}" for i, key in enumerate(keys)]
    row = namedtuple("Row", keys) if columns else None
    return Compiled(compiled.string, positional, parameters, results, row)


def _converter(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """SQLAlchemy's bind processor for this type; for timestamps, one that remembers its last
    results: a mail's statements pass the same `now` a dozen times, and converting it (to UTC,
    then to SQLite's text form) is the dearest part of running them."""
    convert = type_._cached_bind_processor(dialect)
    if convert is None or not isinstance(getattr(type_, "impl_instance", type_), DateTime):
        return convert
    return _remembering(_REMEMBERED.setdefault((type(type_), dialect.name), {}), convert)


_REMEMBERED: dict[tuple[type, str], dict[Any, Any]] = {}  # per type and dialect: value -> stored form
REMEMBER = 256


def _remembering(seen: dict[Any, Any], convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert`, remembering up to REMEMBER results. Equal timestamps (the same instant) are
    stored alike, so the value alone is the key; a naive one never equals an aware one."""

    def converted(value: Any) -> Any:
        found = seen.get(value, _MISSING)
        if found is _MISSING:
            if len(seen) >= REMEMBER:
                seen.clear()
            found = seen[value] = convert(value)
        return found

    return converted


def _key(column: ColumnElement[Any], index: int) -> str:
    key = getattr(column, "key", None) or getattr(column, "name", None)
    return key if isinstance(key, str) and key.isidentifier() and not key.startswith("_") else f"c{index}"


def _inserted_columns(statement: Executable) -> list[Column[Any]]:
    """An INSERT given no values of its own takes every column but the autoincrement key."""
    if not isinstance(statement, Insert) or statement._values or statement._multi_values:
        return []
    table = statement.table
    if not isinstance(table, Table):
        raise TypeError("prepared INSERTs are for tables")
    return [column for column in table.columns if column is not table.autoincrement_column]


def _insert_keys(statement: Executable) -> list[str] | None:
    return [column.key for column in _inserted_columns(statement)] or None


def _defaults(statement: Executable) -> dict[str, Callable[[], Any]]:
    """What an omitted column gets, as SQLAlchemy would give it: its Python-side default, else NULL."""
    found: dict[str, Callable[[], Any]] = {}
    for column in _inserted_columns(statement):
        default = column.default
        if column.server_default is not None:
            raise TypeError(f"{column}: a server-side default cannot be prepared; pass the value")
        if default is None:
            found[column.key] = _null
        elif isinstance(default, ScalarElementColumnDefault):
            found[column.key] = _constant(default.arg)
        elif isinstance(default, CallableColumnDefault):
            found[column.key] = _called(default.arg)
        else:
            raise TypeError(f"{column}: a SQL expression default cannot be prepared; pass the value")
    return found


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _called(function: Callable[[Any], Any]) -> Callable[[], Any]:
    return lambda: function(None)


def _null() -> None:
    return None


class Statements:
    """The compiled forms, per dialect; statements are the module-level constants of the store."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, int], Compiled] = {}
        self.keep: list[Executable] = []  # the statements themselves stay alive, so their ids stay theirs

    def get(self, statement: Executable, dialect: Dialect) -> Compiled:
        key = (dialect.name, id(statement))
        compiled = self.cache.get(key)
        if compiled is None:
            compiled = self.cache[key] = compile_for(statement, dialect)
            self.keep.append(statement)
        return compiled


STATEMENTS = Statements()


def execute(connection: Connection | Session, statement: Executable,
            params: Params | Sequence[Params] | None = None) -> Rows:
    """Run a prepared statement: one parameter set, or several (executemany, no rows back)."""
    if isinstance(connection, Session):
        connection = connection.connection()
    dialect = connection.dialect
    compiled = STATEMENTS.get(statement, dialect)
    cursor = _cursor(connection)
    try:
        if params is not None and not isinstance(params, Mapping):
            batch = [_values(compiled, p) for p in params]
            if not batch:
                return Rows([], 0)
            cursor.executemany(compiled.sql, batch)
            return Rows([], cursor.rowcount)
        cursor.execute(compiled.sql, _values(compiled, params or {}))
        rows = cursor.fetchall() if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as error:
        _raise(connection, cursor, compiled.sql, params, error)
    if compiled.row is not None and rows:
        rows = [compiled.row(*_converted(compiled.results, row)) for row in rows]
    return Rows(rows, cursor.rowcount)


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A SAVEPOINT around one mail's writes, straight on the driver (SQLAlchemy's nested
    transaction object costs more than the SAVEPOINT itself): rolled back to on any
    exception, which then goes on. Not nested within itself."""
    _run_sql(connection, "SAVEPOINT postdesk_mail")
    try:
        yield
    except BaseException:
        _run_sql(connection, "ROLLBACK TO SAVEPOINT postdesk_mail")
        _run_sql(connection, "RELEASE SAVEPOINT postdesk_mail")
        raise
    _run_sql(connection, "RELEASE SAVEPOINT postdesk_mail")


def _run_sql(connection: Connection, sql: str) -> None:
    dialect = connection.dialect
    cursor = _cursor(connection)
    try:
        cursor.execute(sql)
    except dialect.loaded_dbapi.Error as error:
        _raise(connection, cursor, sql, {}, error)


def _raise(connection: Connection, cursor: Any, sql: str, params: Any, error: Any) -> None:
    """The driver's error as SQLAlchemy's (IntegrityError, OperationalError, ...); a lost
    connection is invalidated so the pool does not hand it out again."""
    dialect = connection.dialect
    if dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor):
        connection.invalidate(error)
    raise DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error, dialect=dialect) from error


def _cursor(connection: Connection) -> Any:
    """One driver cursor per pooled connection, kept with it."""
    info = connection.info
    cursor = info.get("postdesk_cursor")
    raw = connection.connection.driver_connection
    if cursor is None or info.get("postdesk_cursor_of") is not raw:
        cursor = raw.cursor()  # type: ignore[union-attr]
        info["postdesk_cursor"], info["postdesk_cursor_of"] = cursor, raw
    return cursor


_MISSING = object()


def _values(compiled: Compiled, params: Params) -> Any:
    values = []
    for parameter in compiled.parameters:
        value = params.get(parameter.name, _MISSING)
        if value is _MISSING:
            if parameter.fallback is None:
                raise KeyError(f"no value for the parameter {parameter.name!r} of {compiled.sql!r}")
            value = parameter.fallback()
        values.append(value if parameter.convert is None else parameter.convert(value))
    if compiled.positional:
        return values
    return {parameter.name: value for parameter, value in zip(compiled.parameters, values, strict=True)}


def _converted(processors: tuple[Processor, ...], row: Sequence[Any]) -> Iterator[Any]:
    for process, value in zip(processors, row, strict=True):
        yield process(value) if process is not None else value


_SHAPES: dict[Hashable, Executable] = {}


def shaped(key: Hashable, build: Callable[[], Executable]) -> Executable:
    """A statement whose form depends on the call (an IN list's length, the columns an UPDATE
    sets), built once per form and kept: `STATEMENTS` then compiles it once per dialect."""
    statement = _SHAPES.get(key)
    if statement is None:
        statement = _SHAPES[key] = build()
    return statement


def in_list(name: str, count: int) -> list[Any]:
    """`count` numbered bind parameters for an IN list (one prepared form per length)."""
    return [bindparam(f"{name}_{i}") for i in range(count)]
