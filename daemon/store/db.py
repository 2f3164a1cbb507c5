"""Engines and transactions. SQLite: WAL, foreign keys on, writers serialised by BEGIN IMMEDIATE.

PostgreSQL: `postgresql://` URLs are taken as psycopg 3. Every write goes through `write()`,
one short transaction per mail or per outbox step.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from daemon.errors import PostdeskError, TemporaryError

log = logging.getLogger(__name__)
LOCK_WAIT = 30.0  # seconds a SQLite writer waits for another's lock before giving up (a TemporaryError)
LOCK_POLL = 0.002


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, base_dir: str | Path = ".") -> None:
        self.url = normalise_url(url, Path(base_dir))
        self.engine = _create_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self.sessions() as session:
            try:
                if self.is_sqlite:  # BEGIN IMMEDIATE: waiting for another writer's lock can time out here
                    session.connection(execution_options={"sqlite_immediate": True})
                yield session
                session.commit()
            except OperationalError as error:
                session.rollback()
                raise TemporaryError(f"database busy or unreachable: {_short(error)}") from error
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file now, without waiting for or
        blocking anyone (PASSIVE), so that closing the last connection has little left to
        copy. A process that is about to wait anyway (for its sending process) calls this."""
        if not self.is_sqlite:
            return
        with contextlib.suppress(DBAPIError), self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def normalise_url(url: str, base_dir: Path) -> str:
    """Relative SQLite paths are relative to the config's folder; postgresql:// means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise PostdeskError(f"database.url {url!r} is not a database URL: {error}") from None
    if parsed.drivername == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            path = (base_dir / path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(parsed.set(database=str(path)))
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def _create_engine(url: str) -> Engine:
    # JSON columns (event details, address lists, recipients; about ten values a mail) through
    # orjson: a fifth of the stdlib's time, which was a twentieth of storing a mail
    json = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": LOCK_WAIT}, **json)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **json)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # synchronous=FULL: a commit is on disk when it returns (with NORMAL, WAL mode may lose
        # the last commits to a power cut or a kernel crash, after their mails were already
        # moved on the IMAP server); intake commits a batch at a time, so that is one fsync a
        # batch and measured no slower. cache_size: 64 MB of pages, so the indexes intake
        # updates stay in memory; temp_store: the journal of each mail's SAVEPOINT in memory,
        # not in a temporary file (a write call per page a mail changes, two thirds of intake's
        # system calls)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL",
                       f"busy_timeout={int(LOCK_WAIT * 1000)}", "cache_size=-65536", "temp_store=MEMORY"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("sqlite_immediate"):
            _begin_immediate(connection)
        else:
            connection.exec_driver_sql("BEGIN")


def _begin_immediate(connection: Any) -> None:
    """BEGIN IMMEDIATE, tried again every 2 ms while another writer holds the lock, for up to
    LOCK_WAIT. SQLite's own busy handler sleeps longer and longer (100 ms a try after the first
    few), so a writer queued behind another process's long transactions kept missing the short
    gaps between them and fell far behind; trying often, it takes the next gap."""
    driver = connection.connection.driver_connection
    deadline = time.monotonic() + LOCK_WAIT
    driver.execute("PRAGMA busy_timeout=0")
    try:
        while time.monotonic() < deadline:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    break  # not a lock held by another writer: let the statement below report it
            time.sleep(LOCK_POLL)
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the last try: its error raised as SQLAlchemy's
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT * 1000)}")


def _short(error: DBAPIError) -> str:
    return str(error.orig).splitlines()[0] if error.orig else str(error)[:200]
