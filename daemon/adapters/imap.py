"""IMAP with imapclient: connect (TLS, STARTTLS or plain on loopback; LOGIN or XOAUTH2),
find waiting mail, fetch it with BODY.PEEK[] (nothing is marked read before it is stored),
and mark it done only when told to: MOVE (or COPY + \\Deleted + EXPUNGE) or a keyword.

Everything here blocks; each mailbox's reader runs it in its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from daemon.config import ImapConfig, MailboxConfig
from daemon.errors import TemporaryError

log = logging.getLogger(__name__)
FIRST_BATCH = 25
NETWORK_ERRORS = (OSError, socket.error, ssl.SSLError, IMAPClientError, imapclient.IMAPClient.AbortError,
                  TimeoutError, EOFError)


@dataclass(frozen=True, slots=True)
class FetchedMail:
    uid: int
    raw: bytes


def oauth_token(config: ImapConfig) -> str:
    """An OAuth2 access token, from a file or a command (so Gmail and Microsoft 365 work).
    Raises TemporaryError when there is none: a token helper may well have one later."""
    if config.oauth_token_file:
        try:
            token = Path(config.oauth_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise TemporaryError(f"cannot read oauth_token_file {config.oauth_token_file}: {error}") from error
        source = f"oauth_token_file {config.oauth_token_file}"
    else:
        try:
            result = subprocess.run(shlex.split(config.oauth_token_command), capture_output=True, text=True,
                                    timeout=60, check=False)
        except (OSError, ValueError, subprocess.TimeoutExpired) as error:  # ValueError: shlex, bad quotes
            raise TemporaryError(f"oauth_token_command {config.oauth_token_command!r} failed: {error}") from error
        if result.returncode != 0:
            raise TemporaryError(f"oauth_token_command exited {result.returncode}: {result.stderr.strip()[:200]}")
        token, source = result.stdout.strip(), "oauth_token_command"
    if not token:
        raise TemporaryError(f"{source} gave an empty access token")
    return token


def quiet_imaplib(client: imapclient.IMAPClient) -> None:
    """imapclient sets imaplib's debug level to 5 and sends its messages to the logger
    "imapclient.imaplib"; imaplib then formats every response it reads, each fetched mail
    as a repr (and each batch's once more), even when nobody logs at DEBUG: about three
    quarters of the CPU a FETCH costs. Off unless that logger wants them (postdesk -v)."""
    imap = getattr(client, "_imap", None)
    if imap is not None and not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        imap.debug = 0


class ImapMailbox:
    """One logged-in IMAP session on one folder."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.client: imapclient.IMAPClient | None = None
        self.capabilities: frozenset[bytes] = frozenset()
        self.uidvalidity = 0

    # ---- connection

    def connect(self) -> None:
        """Connect, log in and select the folder; on any failure the connection is closed."""
        config = self.config
        token = oauth_token(config) if config.auth == "xoauth2" else ""  # no token, no connection
        context = ssl.create_default_context(cafile=config.ca_file or None)
        self.client = client = imapclient.IMAPClient(config.host, port=config.port, ssl=config.security == "tls",
                                                     ssl_context=context, timeout=config.timeout.total_seconds())
        quiet_imaplib(client)
        try:
            if config.security == "starttls":
                client.starttls(context)
            try:
                if config.auth == "xoauth2":
                    client.oauth2_login(config.username, token)
                else:
                    client.login(config.username, config.password)
            except LoginError as error:
                how = "XOAUTH2 (is the access token valid?)" if config.auth == "xoauth2" else "LOGIN"
                raise TemporaryError(f"{config.host}:{config.port} refused login as {config.username!r} with "
                                     f"{how}: {error}") from error
            self.capabilities = frozenset(client.capabilities())
            folder = client.select_folder(config.folder)
            self.uidvalidity = int(folder.get(b"UIDVALIDITY", 0))
            for target in self._target_folders():
                self.ensure_folder(target)
        except BaseException:
            self.close()
            raise

    def _target_folders(self) -> tuple[str, ...]:
        folders = [self.config.quarantine_folder]
        if self.config.done == "move":
            folders.append(self.config.processed_folder)
        return tuple(folders)

    def ensure_folder(self, name: str) -> None:
        client = self._client()
        if not client.folder_exists(name):
            try:
                client.create_folder(name)
            except IMAPClientError as error:
                if not client.folder_exists(name):
                    raise TemporaryError(f"cannot create IMAP folder {name!r}: {error}") from error

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except NETWORK_ERRORS:
            with contextlib.suppress(*NETWORK_ERRORS):
                client.shutdown()

    def _client(self) -> imapclient.IMAPClient:
        if self.client is None:
            raise TemporaryError("not connected")
        return self.client

    @property
    def has_idle(self) -> bool:
        return b"IDLE" in self.capabilities

    # ---- reading

    def waiting_uids(self) -> list[int]:
        criteria: list[str | bytes] = ["NOT", "DELETED"]
        if self.config.done == "keyword":
            criteria = ["NOT", "KEYWORD", self.config.done_keyword, "NOT", "DELETED"]
        return sorted(int(uid) for uid in self._client().search(criteria))

    def fetch(self, uids: list[int]) -> Iterator[FetchedMail]:
        """The raw bytes of these mails in UID order; mails that vanished meanwhile are skipped."""
        if not uids:
            return
        response = self._client().fetch(uids, [b"BODY.PEEK[]"])
        for uid in sorted(response):
            raw = response[uid].get(b"BODY[]")
            if raw is not None:
                yield FetchedMail(int(uid), bytes(raw))

    # ---- marking done

    def mark_done(self, uids: list[int]) -> None:
        if not uids:
            return
        if self.config.done == "keyword":
            self._client().add_flags(uids, [self.config.done_keyword.encode()], silent=True)
        else:
            self.move(uids, self.config.processed_folder)

    def move_to_quarantine(self, uids: list[int]) -> None:
        if uids:
            self.move(uids, self.config.quarantine_folder)

    def move(self, uids: list[int], folder: str) -> None:
        client = self._client()
        if b"MOVE" in self.capabilities:
            client.move(uids, folder)
            return
        client.copy(uids, folder)
        client.add_flags(uids, [imapclient.DELETED], silent=True)
        if b"UIDPLUS" in self.capabilities:
            client.uid_expunge(uids)
        else:
            client.expunge()

    # ---- waiting for new mail

    def idle_until(self, renew_after: float, stop: threading.Event) -> bool:
        """IDLE until the server announces new mail (True), `stop` is set, or it is time to
        renew the IDLE (RFC 2177: servers may drop it after 30 minutes)."""
        client = self._client()
        client.idle()
        try:
            deadline = time.monotonic() + renew_after
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                responses = client.idle_check(timeout=min(0.5, remaining))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return True
            return False
        finally:
            client.idle_done()

    def noop(self) -> None:
        self._client().noop()


def connect_imap(mailbox: MailboxConfig) -> ImapMailbox:
    assert mailbox.imap is not None
    imap = ImapMailbox(mailbox.imap)
    try:
        imap.connect()
    except NETWORK_ERRORS as error:
        imap.close()
        raise TemporaryError(f"mailbox {mailbox.name}: cannot reach {mailbox.imap.host}:{mailbox.imap.port}: "
                             f"{type(error).__name__}: {error}") from error
    return imap


def connection_lost(mailbox: MailboxConfig, error: BaseException) -> TemporaryError:
    """What a pass over `mailbox` says when its connection fails in the middle."""
    return TemporaryError(f"mailbox {mailbox.name}: connection lost: {type(error).__name__}: {error}")


def ramped_batches(uids: list[int], size: int) -> list[list[int]]:
    """`uids` in batches of `size`, the first ones smaller (25, 50, 100...): storing starts as
    soon as a few mails are parsed, while the next, larger batch is fetched and parsed."""
    batches, start, step = [], 0, min(size, FIRST_BATCH)
    while start < len(uids):
        batches.append(uids[start:start + step])
        start, step = start + step, min(size, step * 2)
    return batches


def tapered_batches(total: int, size: int) -> list[int]:
    """Batch sizes for `total` mails stored as they come: `size` each, the last ones halving
    down to FIRST_BATCH (... 100, 50, 25). The sending process delivers what a commit queued
    after it, so a small last commit means a short wait for it at the end of `run --once`."""
    if total <= size:
        return [total] if total else []
    tail = [step for step in (FIRST_BATCH * 2**k for k in range(16)) if step < size][::-1]
    while sum(tail) >= size:
        tail.pop(0)
    head = total - sum(tail)
    return [size] * (head // size) + ([head % size] if head % size else []) + tail
