"""A real PostgreSQL server for the tests: find one, make fresh databases, drop them.

The server is ``$POSTDESK_TEST_PG`` (a libpq URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``), else 127.0.0.1:5432 with trust
auth as user ``postgres`` or ``root`` (or the current user). ``./scripts/test`` makes
sure one answers. Each test database is ``postdesk_test_<hex>``, created empty from
template0 and dropped (its connections terminated first) when done.

    server = find_server()                   # raises PostgresUnavailable, saying why
    url = create_database(server)            # "postgresql+psycopg://postgres@127.0.0.1:5432/postdesk_test_..."
    drop_database(server, url)
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import URL, make_url

from tests.servers import process_alive

__all__ = [
    "PgServer", "PostgresUnavailable", "create_database", "drop_database", "drop_stale_databases",
    "find_server",
]  # fmt: skip

ENV_VAR = "POSTDESK_TEST_PG"
DB_PREFIX = "postdesk_test_"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server to test against; the message says what was tried."""


@dataclass(frozen=True)
class PgServer:
    """A server we can create databases on. ``conninfo`` reaches its admin database."""

    conninfo: str
    version: str
    user: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(conninfo_to_dict(self.conninfo))

    def connect(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        """An autocommit connection to the admin database (or ``dbname``)."""
        extra = {"dbname": dbname} if dbname else {}
        return psycopg.connect(make_conninfo(self.conninfo, **extra), autocommit=True, connect_timeout=5)

    def sqlalchemy_url(self, dbname: str) -> str:
        """``postgresql+psycopg://...`` for ``dbname`` on this server."""
        p = self.params
        query: dict[str, str] = {}
        host = p.pop("host", None)
        if host and host.startswith("/"):  # a unix socket directory goes in the query
            query["host"] = host
            host = None
        for key in ("sslmode", "sslrootcert", "application_name", "options"):
            if key in p:
                query[key] = str(p[key])
        url = URL.create(
            "postgresql+psycopg",
            username=p.get("user"),
            password=p.get("password"),
            host=host,
            port=int(p["port"]) if p.get("port") else None,
            database=dbname,
            query=query,
        )
        return url.render_as_string(hide_password=False)


def _candidates() -> list[str]:
    url = os.environ.get(ENV_VAR)
    if url:
        return [url]
    users = ["postgres", "root"]
    me = getpass.getuser()
    if me not in users:
        users.append(me)
    return [
        make_conninfo(host="127.0.0.1", port=5432, user=user, dbname=dbname)
        for user in users
        for dbname in ("test", "postgres", "template1")
    ]


def find_server() -> PgServer:
    """The first candidate we can log in to and create databases on."""
    tried = []
    for conninfo in _candidates():
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_user, "
                    "(SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user)"
                ).fetchone()
        except psycopg.Error as exc:
            tried.append(f"  {_redact(conninfo)}: {str(exc).strip().splitlines()[0]}")
            continue
        assert row is not None
        version, user, can_create = row
        if not can_create:
            tried.append(f"  {_redact(conninfo)}: user {user} may not create databases")
            continue
        return PgServer(conninfo=conninfo, version=str(version), user=str(user))
    where = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else f"127.0.0.1:5432 (set ${ENV_VAR} for another)"
    raise PostgresUnavailable(
        f"no PostgreSQL server to test against at {where}; tried:\n"
        + "\n".join(tried)
        + "\nRun the tests with ./scripts/test: it starts (or installs) PostgreSQL."
    )


def create_database(server: PgServer) -> str:
    """A new empty database ``postdesk_test_<hex>``; returns its SQLAlchemy URL.

    Its comment names the test process (``host=... pid=...``), so that a later run can
    drop it if that process was killed before it could (``drop_stale_databases``)."""
    name = DB_PREFIX + secrets.token_hex(6)
    with server.connect() as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(_owner())))
    return server.sqlalchemy_url(name)


def drop_stale_databases(server: PgServer) -> list[str]:
    """Drop the test databases that test processes of this host left behind when they
    were killed (their pid is gone); returns their names."""
    mine = re.compile(rf"postdesk tests: host={re.escape(socket.gethostname())} pid=(\d+)$")
    with server.connect() as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE 'postdesk\\_test\\_%'"
        ).fetchall()
    stale = []
    for name, comment in rows:
        match = mine.match(comment or "")
        if match and not process_alive(int(match.group(1))):
            drop_database(server, name)
            stale.append(name)
    return stale


def drop_database(server: PgServer, url_or_name: str) -> None:
    """Terminate the database's connections and drop it (no error if it is gone)."""
    name = make_url(url_or_name).database if "://" in url_or_name else url_or_name
    if not name or not name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a test database ({DB_PREFIX}...)")
    with server.connect() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)


def _owner() -> str:
    return f"postdesk tests: host={socket.gethostname()} pid={os.getpid()}"


def _redact(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**{k: str(v) for k, v in params.items()})
