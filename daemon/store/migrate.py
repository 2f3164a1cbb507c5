"""Alembic, driven from code: `upgrade(db)` and `current_revision(db)`; no alembic.ini needed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from daemon.errors import SchemaNotReady, TemporaryError
from daemon.store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
SCHEMA_HEAD = "0001"  # the newest migration; a unit test checks it against alembic's head
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK = 7_302_119_455  # advisory lock id: one migrating instance at a time


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # alembic is imported only to migrate

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The schema's revision, read with plain SQL (importing alembic costs 0.2 s per command)."""
    with db.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = _alembic_config()
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    after = SCHEMA_HEAD
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)
    return before, after


def ensure_schema(db: Database, auto_migrate: bool) -> None:
    """Upgrade when allowed; otherwise refuse to work on an old or empty schema."""
    try:
        _ensure_schema(db, auto_migrate)
    except OperationalError as error:
        raise TemporaryError(f"cannot reach the database: {str(error.orig or error).splitlines()[0]}") from error


def _ensure_schema(db: Database, auto_migrate: bool) -> None:
    if current_revision(db) == SCHEMA_HEAD:
        return
    if auto_migrate:
        upgrade(db)
        return
    raise SchemaNotReady("the database schema is not up to date; run `postdesk migrate` "
                         "(or set database.auto_migrate = true)")
