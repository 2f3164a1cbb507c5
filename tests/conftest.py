"""Fixtures on real servers (the classes are in tests/servers/): Dovecot, SMTP, PostgreSQL,
and an OAuth2 token introspection endpoint for Dovecot's XOAUTH2.

Servers are started once per run and stopped at its end, even when tests fail.
Nothing is skipped: a missing server is a failure, and ./scripts/test provides them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.servers import TestCertificate, make_certificate
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.oauth import IntrospectionServer
from tests.servers.postgres import (
    PgServer,
    PostgresUnavailable,
    create_database,
    drop_database,
    drop_stale_databases,
    find_server,
)
from tests.servers.smtpd import SmtpServer


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TestCertificate:
    """One CA for every test server: ``SSL_CERT_FILE=<ca_path>`` makes a subprocess trust them."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def make_dovecot(tls_certificate: TestCertificate) -> Iterator[Callable[..., Dovecot]]:
    """Start an extra Dovecot (``Dovecot(**kwargs)``); all are closed at session end."""
    with ExitStack() as stack:  # closes every one, even if one fails to

        def make(**kwargs: Any) -> Dovecot:
            kwargs.setdefault("cert", tls_certificate)
            server = Dovecot(**kwargs)
            stack.callback(server.close)
            return server.start()

        yield make


@pytest.fixture(scope="session")
def dovecot(make_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """The run's Dovecot, with every capability (MOVE, IDLE, UIDPLUS, ...)."""
    return make_dovecot()


@pytest.fixture(scope="session")
def dovecot_without_move_idle(make_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """A Dovecot that advertises neither MOVE nor IDLE, for the fallback paths."""
    return make_dovecot(drop_capabilities=("MOVE", "IDLE"))


@pytest.fixture(scope="session")
def oauth_introspection() -> Iterator[IntrospectionServer]:
    """The run's OAuth2 token introspection endpoint: ``issue(user)`` a token, ``revoke`` it."""
    with IntrospectionServer() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_oauth(make_dovecot: Callable[..., Dovecot], oauth_introspection: IntrospectionServer) -> Dovecot:
    """A Dovecot that also takes XOAUTH2 and OAUTHBEARER logins, checking each access token
    at ``oauth_introspection`` (passwords still work for PLAIN/LOGIN, e.g. for ``append``)."""
    return make_dovecot(oauth2_introspection_url=oauth_introspection.url)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> MailUser:
    """A new user with an empty mailbox on the run's Dovecot (restarted if a test stopped it)."""
    dovecot.start()
    return dovecot.new_user()


@pytest.fixture(scope="session")
def make_smtp_server(tls_certificate: TestCertificate) -> Iterator[Callable[..., SmtpServer]]:
    """Start an extra SMTP server (``SmtpServer(**kwargs)``, e.g. security="starttls",
    auth=("user", "pw")); all are stopped at session end."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> SmtpServer:
            kwargs.setdefault("cert", tls_certificate)
            server = SmtpServer(**kwargs)
            stack.callback(server.close)
            return server.start()

        yield make


@pytest.fixture(scope="session")
def smtp_server(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """The run's recording SMTP server: plain, no AUTH. Shared: see ``smtp`` for a clean one."""
    return make_smtp_server()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    """The run's SMTP server, running, with nothing recorded and no failure armed."""
    smtp_server.start()
    smtp_server.reset()
    yield smtp_server
    smtp_server.start()
    smtp_server.reset()


@pytest.fixture(scope="session")
def pg_admin() -> PgServer:
    """The PostgreSQL server the tests use; fails (never skips) when there is none."""
    try:
        server = find_server()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    drop_stale_databases(server)  # left by killed runs
    return server


@pytest.fixture(scope="session")
def fresh_pg_url(pg_admin: PgServer) -> Iterator[Callable[[], str]]:
    """Call it for the SQLAlchemy URL of a new empty database; all are dropped at session end."""
    with ExitStack() as stack:

        def make() -> str:
            url = create_database(pg_admin)
            stack.callback(drop_database, pg_admin, url)
            return url

        yield make


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The SQLAlchemy URL of a new SQLite file in the test's tmp_path."""
    return f"sqlite:///{tmp_path / 'postdesk.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database of each kind (test ids [sqlite], [postgresql]); the
    PostgreSQL one is dropped after the test. Dispose your engines before it ends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'postdesk.db'}"
        return
    admin: PgServer = request.getfixturevalue("pg_admin")
    url = create_database(admin)
    try:
        yield url
    finally:
        drop_database(admin, url)
