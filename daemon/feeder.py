"""`run --once`: the IMAP mailboxes' mail fetched and parsed by a process of its own, the
feeder, while this process stores what it hands over.

The feeder is started first thing, before this process has imported the store and loaded
the rules and templates (about half a second of one CPU), so the first mails are parsed and
waiting when intake begins; after that it stays ahead. It only reads (BODY.PEEK[]): this
process marks each mail done over its own connection, after the commit, as a pass of the
daemon does. If the feeder fails, this process does the rest of the pass itself; nothing
was marked that was not committed, and what was stored is recognised and not doubled.

Messages on the pipe, per IMAP mailbox in the config's order:
("selected", mailbox, uidvalidity, count), then ("mails", mailbox, [(uid, raw, parsed), ...]) as
they are parsed, then ("done", mailbox) or ("failed", mailbox, why).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from daemon.config import Config, MailboxConfig
from daemon.processes import end_with_parent, name_this_process, start_method, yield_to_intake

if TYPE_CHECKING:  # the fetching process is started before the core is loaded; it loads it itself
    from daemon.core.values import InboundMail

log = logging.getLogger(__name__)
CHUNK = 8  # mails a message on the pipe carries: fewer hand-overs, yet the first ones come early
AHEAD = 32 * 1024 * 1024  # bytes of fetched mail the feeder may hold that this process has not taken yet

Fed = tuple[int, bytes, "InboundMail | str"]  # uid, raw bytes, the parsed mail or why it could not be parsed


class FeedFailed(Exception):
    """The feeder could not go on with a mailbox (its reason), or is gone."""


@dataclass
class Feeder:
    """This process's end: the feeder process and the pipe it writes to."""

    process: BaseProcess
    pipe: Connection
    mailboxes: tuple[str, ...]  # what it reads, in order
    gone: bool = False
    abandoned: set[str] = field(default_factory=set)  # mailboxes whose mail is no longer wanted

    @classmethod
    def start(cls, config: Config, fixed_now: datetime | None = None) -> Feeder | None:
        """The feeder for the config's IMAP mailboxes, or None where there is nothing for it
        (no IMAP mailbox, parsing inline by config, a single CPU)."""
        mailboxes = tuple(m.name for m in config.mailboxes if m.imap is not None)
        if not mailboxes or config.intake.parse_workers == 0 or (os.cpu_count() or 1) < 2:
            return None
        context = get_context("fork") if start_method() == "fork" else get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        _widen(send)
        process = context.Process(target=feed, args=(config, fixed_now, send, os.getpid()), name="postdesk-fetch",
                                  daemon=True)
        try:
            process.start()
        except OSError as error:
            log.warning("cannot start the fetching process (%s); fetching in this one", error)
            receive.close()
            return None
        finally:
            send.close()
        return cls(process, receive, mailboxes)

    def serves(self, mailbox: str) -> bool:
        return not self.gone and mailbox in self.mailboxes and mailbox not in self.abandoned

    def abandon(self, mailbox: str) -> None:
        """The pass over this mailbox ended early: what else the feeder sends of it is skipped."""
        self.abandoned.add(mailbox)

    def selected(self, mailbox: str) -> tuple[int, int]:
        """The folder's UIDVALIDITY as the feeder found it when it selected the folder, and how
        many mails it found waiting."""
        message = self._next(mailbox)
        if message[0] != "selected":
            raise FeedFailed(f"the fetching process sent {message[0]!r} before selecting the folder")
        return int(message[2]), int(message[3])

    def batches(self, mailbox: str, sizes: Sequence[int]) -> Iterator[list[Fed]]:
        """The mailbox's mails in batches of these sizes (the last size again if more come;
        whatever is left at the end). The feeder is normally ahead, so a batch is there by the
        time the one before is done."""
        wanted = iter(sizes)
        size = next(wanted, 1)
        batch: list[Fed] = []
        while True:
            message = self._next(mailbox)
            if message[0] == "done":
                break
            batch.extend(message[2])
            while len(batch) >= size:
                yield batch[:size]
                batch, size = batch[size:], next(wanted, size)
        if batch:
            yield batch

    def _next(self, mailbox: str) -> tuple[Any, ...]:
        message = self._receive()
        while message[1] in self.abandoned:
            message = self._receive()
        if message[1] != mailbox:
            self.gone = True
            raise FeedFailed(f"the fetching process sent mail of {message[1]!r} while {mailbox!r} was expected")
        if message[0] == "failed":
            raise FeedFailed(message[2])
        return tuple(message)

    def _receive(self) -> tuple[Any, ...]:
        try:
            return tuple(self.pipe.recv())
        except (EOFError, OSError, pickle.UnpicklingError) as error:  # gone, perhaps in the middle of a message
            self.gone = True
            self.process.join(timeout=1)
            raise FeedFailed(f"the fetching process ended unexpectedly (exit {self.process.exitcode})") from error

    def close(self) -> None:
        """Stop the feeder (what it fetched and nobody took stays unmarked on the server)."""
        self.pipe.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = 1031  # Linux


def _widen(pipe: Connection) -> None:
    """A 1 MB pipe instead of 64 KB (Linux; unprivileged processes may go up to
    /proc/sys/fs/pipe-max-size, 1 MB by default): a batch of mails crosses in a few writes
    instead of dozens, each of which had to wait for the other process to be scheduled."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)


# ----------------------------------------------------------------------------------------
# The feeder process


def feed(config: Config, fixed_now: datetime | None, pipe: Connection, parent: int) -> None:
    """Fetch and parse every waiting mail of each IMAP mailbox, in order, into `pipe`, up to
    AHEAD bytes ahead of the reader; once the reader is gone, the process ends."""
    name_this_process("postdesk-fetch")
    yield_to_intake()
    end_with_parent(parent)
    # The writer thread needs the interpreter lock to hand each message to the pipe; with the
    # default 5 ms before the parsing thread yields it, this process fed in fits and starts.
    sys.setswitchinterval(0.0005)
    out = Ahead(pipe, AHEAD)
    with contextlib.suppress(BrokenPipeError, EOFError, OSError):
        for mailbox in config.mailboxes:
            if mailbox.imap is not None:
                _feed_mailbox(config, mailbox, fixed_now, out)
        out.finish()
    pipe.close()


class Ahead:
    """Messages for the pipe, written by a thread of their own, so that fetching and parsing
    go on while the reader is busy; at most `budget` bytes of mail wait to be written (a
    larger message waits alone). A failed write (the reader is gone) is raised by the next
    `send`."""

    def __init__(self, pipe: Connection, budget: int) -> None:
        self.pipe, self.budget = pipe, budget
        self.waiting: deque[tuple[tuple[Any, ...], int]] = deque()
        self.size = 0
        self.done = False
        self.failure: BaseException | None = None
        self.changed = threading.Condition()
        self.writer = threading.Thread(target=self._write_all, name="feed-write", daemon=True)
        self.writer.start()

    def send(self, message: tuple[Any, ...], size: int = 0) -> None:
        with self.changed:
            while self.size and self.size + size > self.budget and self.failure is None:
                self.changed.wait()
            if self.failure is not None:
                raise self.failure
            self.waiting.append((message, size))
            self.size += size
            self.changed.notify_all()

    def finish(self) -> None:
        """Wait until everything is written."""
        with self.changed:
            self.done = True
            self.changed.notify_all()
        self.writer.join()
        if self.failure is not None:
            raise self.failure

    def _write_all(self) -> None:
        while True:
            with self.changed:
                while not self.waiting and not self.done:
                    self.changed.wait()
                if not self.waiting:
                    return
                message, size = self.waiting[0]
            try:
                self.pipe.send(message)
            except Exception as error:  # the reader gone, or a message that cannot be sent: said, never hung
                with self.changed:
                    self.failure = error
                    self.changed.notify_all()
                return
            with self.changed:
                self.waiting.popleft()
                self.size -= size
                self.changed.notify_all()


def _feed_mailbox(config: Config, mailbox: MailboxConfig, fixed_now: datetime | None, out: Ahead) -> None:
    from daemon.adapters.imap import NETWORK_ERRORS, connect_imap, connection_lost, ramped_batches
    from daemon.errors import TemporaryError
    from daemon.parsing import job_for, parse_job

    assert mailbox.imap is not None
    try:
        imap = connect_imap(mailbox)
    except TemporaryError as error:
        out.send(("failed", mailbox.name, str(error)))
        return
    try:
        waiting = imap.waiting_uids()
        out.send(("selected", mailbox.name, imap.uidvalidity, len(waiting)))
        for uids in ramped_batches(waiting, mailbox.imap.batch_size):
            fetched = list(imap.fetch(uids))
            for start in range(0, len(fetched), CHUNK):
                now = fixed_now or datetime.now(UTC)
                chunk = fetched[start:start + CHUNK]
                out.send(("mails", mailbox.name, [(f.uid, f.raw, parse_job(job_for(f.raw, now, config.intake)))
                                                  for f in chunk]), sum(len(f.raw) for f in chunk))
        out.send(("done", mailbox.name))
    except (TemporaryError, *NETWORK_ERRORS) as error:
        out.send(("failed", mailbox.name, str(connection_lost(mailbox, error))))
    finally:
        imap.close()
