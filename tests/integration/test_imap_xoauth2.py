"""XOAUTH2 login (Gmail, Microsoft 365) against a real Dovecot whose oauth2 passdb checks
every access token at a real introspection endpoint (tests/servers/oauth.py).

The mailbox user has no password in the Postdesk config: only the token can log it in.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.runtime import run_once
from daemon.store.models import Ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.oauth import IntrospectionServer


def tickets(app) -> int:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def takes_in_the_one_mail(app, dovecot: Dovecot, user: MailUser) -> None:  # type: ignore[no-untyped-def]
    """A pass logs in, takes the mail in as a ticket and moves it out of INBOX."""
    intake, _ = run_once(app, lambda: NOW)
    assert (intake.taken, intake.errors) == (1, [])
    assert tickets(app) == 1
    assert dovecot.folder_uids(user.name, "INBOX") == []


def mailbox_with_one_mail(dovecot: Dovecot, tag: str) -> tuple[MailUser, int]:
    """A new user with one customer mail in INBOX; the user as the config sees it (no password)."""
    user = dovecot.new_user("oauth")
    uid = dovecot.append(user.name, raw_mail(sender="Customer <c@customer.example>", subject=f"Help with {tag}",
                                             message_id=f"<{tag}-{user.name}@customer.example>"))
    return MailUser(user.name, ""), uid


def test_token_from_file_logs_in_and_mail_is_taken_in(tmp_path: Path, dovecot_oauth: Dovecot,
                                                       oauth_introspection: IntrospectionServer,
                                                       sqlite_url: str) -> None:
    user, _uid = mailbox_with_one_mail(dovecot_oauth, "file")
    token = oauth_introspection.issue(user.name)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")  # as token helpers write it: the newline is stripped
    app = Site(tmp_path, sqlite_url).imap(dovecot_oauth, user, auth="xoauth2",
                                          oauth_token_file=str(token_file)).app()
    try:
        takes_in_the_one_mail(app, dovecot_oauth, user)
        assert token in oauth_introspection.tokens_seen
        assert len(dovecot_oauth.folder_uids(user.name, "Postdesk/Processed")) == 1
    finally:
        app.close()


def test_token_from_command_logs_in_and_mail_is_taken_in(tmp_path: Path, dovecot_oauth: Dovecot,
                                                          oauth_introspection: IntrospectionServer,
                                                          sqlite_url: str) -> None:
    user, _uid = mailbox_with_one_mail(dovecot_oauth, "command")
    token = oauth_introspection.issue(user.name)
    # A token helper as in real life: a program printing a fresh access token (and a newline).
    helper = tmp_path / "token-helper.py"
    helper.write_text(f"import sys\nsys.stderr.write('refreshing\\n')\nprint({token!r})\n")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(helper))}"
    app = Site(tmp_path, sqlite_url).imap(dovecot_oauth, user, auth="xoauth2", oauth_token_command=command).app()
    try:
        before = oauth_introspection.request_count
        takes_in_the_one_mail(app, dovecot_oauth, user)
        assert oauth_introspection.tokens_seen[before:] == [token]
    finally:
        app.close()


def test_rejected_token_keeps_the_mail_until_a_valid_token_comes(tmp_path: Path, dovecot_oauth: Dovecot,
                                                                  oauth_introspection: IntrospectionServer,
                                                                  sqlite_url: str) -> None:
    user, uid = mailbox_with_one_mail(dovecot_oauth, "expired")
    expired = oauth_introspection.issue(user.name)
    oauth_introspection.revoke(expired)  # the introspection endpoint now says {"active": false}
    token_file = tmp_path / "token"
    token_file.write_text(expired)
    app = Site(tmp_path, sqlite_url).imap(dovecot_oauth, user, auth="xoauth2",
                                          oauth_token_file=str(token_file)).app()
    try:
        intake, _ = run_once(app, lambda: NOW)
        assert intake.taken == 0
        assert len(intake.errors) == 1, intake.errors
        error = intake.errors[0]
        assert "mailbox support" in error and "XOAUTH2" in error and user.name in error, error
        assert "AUTHENTICATIONFAILED" in error, error
        assert oauth_introspection.tokens_seen[-1] == expired
        assert dovecot_oauth.folder_uids(user.name, "INBOX") == [uid], "nothing may be lost"
        assert tickets(app) == 0

        token_file.write_text(oauth_introspection.issue(user.name))  # the token helper refreshed it
        takes_in_the_one_mail(app, dovecot_oauth, user)
    finally:
        app.close()


def test_failing_token_command_names_its_exit_status_and_keeps_the_mail(
        tmp_path: Path, dovecot_oauth: Dovecot, oauth_introspection: IntrospectionServer, sqlite_url: str) -> None:
    user, uid = mailbox_with_one_mail(dovecot_oauth, "command-fails")
    command = "sh -c 'echo \"invalid_grant: refresh token expired\" >&2; exit 1'"
    app = Site(tmp_path, sqlite_url).imap(dovecot_oauth, user, auth="xoauth2", oauth_token_command=command).app()
    try:
        before = oauth_introspection.request_count
        intake, _ = run_once(app, lambda: NOW)
        assert intake.taken == 0
        assert len(intake.errors) == 1, intake.errors
        error = intake.errors[0]
        assert "mailbox support" in error and "oauth_token_command exited 1" in error, error
        assert "invalid_grant: refresh token expired" in error, error
        assert oauth_introspection.request_count == before, "no login may be tried without a token"
        assert dovecot_oauth.folder_uids(user.name, "INBOX") == [uid]
        assert tickets(app) == 0
    finally:
        app.close()


@pytest.mark.parametrize(("source", "expected"), [
    ({"oauth_token_file": "missing-token"}, "cannot read oauth_token_file"),
    ({"oauth_token_file": "empty-token"}, "gave an empty access token"),
    ({"oauth_token_command": "true"}, "oauth_token_command gave an empty access token"),
    ({"oauth_token_command": "/nonexistent/token-helper --refresh"}, "oauth_token_command '/nonexistent/"),
], ids=["file-missing", "file-empty", "command-prints-nothing", "command-not-found"])
def test_no_token_at_all_is_a_clear_error_and_no_login(
        source: dict[str, str], expected: str, tmp_path: Path, dovecot_oauth: Dovecot,
        oauth_introspection: IntrospectionServer, sqlite_url: str) -> None:
    user, uid = mailbox_with_one_mail(dovecot_oauth, "no-token")
    (tmp_path / "empty-token").write_text("\n")
    options = {key: str(tmp_path / value) if key == "oauth_token_file" else value for key, value in source.items()}
    app = Site(tmp_path, sqlite_url).imap(dovecot_oauth, user, auth="xoauth2", **options).app()
    try:
        before = oauth_introspection.request_count
        intake, _ = run_once(app, lambda: NOW)
        assert intake.taken == 0 and len(intake.errors) == 1 and expected in intake.errors[0], intake.errors
        assert oauth_introspection.request_count == before
        assert dovecot_oauth.folder_uids(user.name, "INBOX") == [uid]
    finally:
        app.close()
