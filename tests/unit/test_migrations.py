"""The schema constant matches alembic's newest migration."""

from daemon.store.migrate import SCHEMA_HEAD, head_revision


def test_schema_head_is_alembics_head() -> None:
    assert head_revision() == SCHEMA_HEAD
