"""Prepared statements (store/fast.py) on both databases: values written on the driver's cursor
read back through the ORM exactly as the ORM writes them, driver errors arrive as SQLAlchemy's,
and statements that cannot be prepared are refused when compiled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.exc import IntegrityError

from daemon.store.apply import EVENTS, INSERT_EVENTS, INSERT_INTAKE, INTAKE
from daemon.store.db import Database
from daemon.store.fast import compile_for, execute, savepoint
from daemon.store.migrate import upgrade
from daemon.store.models import Event, IntakeRecord

AT = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database)
    yield database
    database.dispose()


def test_rows_written_prepared_read_back_through_the_orm(db: Database) -> None:
    with db.write() as session:
        execute(session, INSERT_EVENTS, [{"ticket_id": None, "at": AT, "actor": "postdesk", "kind": "note",
                                          "detail": {"why": "Привіт", "n": 3}}])
    with db.read() as session:
        event = session.scalars(select(Event)).one()
        assert (event.at, event.detail, event.actor) == (AT, {"why": "Привіт", "n": 3}, "postdesk")
        row = execute(session, select(EVENTS.c.at, EVENTS.c.detail).where(EVENTS.c.kind == "note")).one()
        assert (row.at, row.detail) == (AT, {"why": "Привіт", "n": 3})
        later = execute(session, select(EVENTS.c.id).where(EVENTS.c.at > bindparam("t", type_=EVENTS.c.at.type)),
                        {"t": AT - timedelta(microseconds=1)}).scalars()
        assert later == [event.id]


def test_a_driver_error_is_sqlalchemys_and_the_savepoint_keeps_the_rest(db: Database) -> None:
    record = {"fingerprint": "f" * 64, "message_id": "m@x", "raw_sha256": "0" * 64, "mailbox": "local",
              "verdict": "stored", "reason": "", "ticket_id": None, "at": AT}
    with db.write() as session:
        connection = session.connection()
        execute(connection, INSERT_INTAKE, record)
        with pytest.raises(IntegrityError), savepoint(connection):
            execute(connection, INSERT_INTAKE, record)
        execute(connection, INSERT_INTAKE, {**record, "fingerprint": "e" * 64})
    with db.read() as session:
        assert sorted(session.scalars(select(IntakeRecord.fingerprint))) == ["e" * 64, "f" * 64]
        assert len(execute(session, select(INTAKE.c.id)).all()) == 2


def test_statements_that_cannot_be_prepared_are_refused_when_compiled(db: Database) -> None:
    dialect = db.engine.dialect
    with pytest.raises(TypeError, match="expanding IN"):
        compile_for(select(EVENTS.c.id).where(EVENTS.c.kind.in_(["a", "b"])), dialect)
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(10), server_default=text("'x'")))
    with pytest.raises(TypeError, match="server-side default"):
        compile_for(table.insert(), dialect)


def test_timestamps_converted_once_are_stored_alike_and_a_naive_one_is_still_refused(db: Database) -> None:
    """Timestamp conversions are remembered (a mail passes the same `now` many times): the same
    instant written in another zone, again and again, reads back as that instant."""
    kyiv = timezone(timedelta(hours=2))
    rows = [{"ticket_id": None, "at": at, "actor": "postdesk", "kind": "note", "detail": {}}
            for at in (AT, AT.astimezone(kyiv), AT, AT + timedelta(seconds=1), AT.astimezone(kyiv))]
    with db.write() as session:
        execute(session, INSERT_EVENTS, rows)
        execute(session, INSERT_EVENTS, rows[:1])
    with db.read() as session:
        stored = sorted(session.scalars(select(Event.at)))
    assert stored == [AT] * 5 + [AT + timedelta(seconds=1)]
    with pytest.raises(ValueError, match="naive datetime"), db.write() as session:
        execute(session, INSERT_EVENTS, [{**rows[0], "at": AT.replace(tzinfo=None)}])
