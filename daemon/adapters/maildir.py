"""Local Maildirs: the intake mailbox an MTA delivers to, and the outbox folder the
embedded default writes each outgoing mail into.

Intake: a file in `new/` is taken in, and only after its ticket is committed is it moved
to `cur/` (flag S) or to the processed folder. Outbox: each mail is written to `tmp/`,
then renamed into `new/` under a name made from its outbox row, so writing it again
after a crash replaces the same file instead of adding a second one.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
SUBDIRS = ("tmp", "new", "cur")


def ensure_maildir(path: Path) -> None:
    for sub in SUBDIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True, slots=True)
class MaildirMail:
    path: Path
    raw: bytes


class MaildirBox:
    """An intake Maildir (`[mailboxes.maildir]`)."""

    def __init__(self, path: str | Path, done: str = "cur", processed_folder: str = ".Processed",
                 quarantine_folder: str = ".Quarantine") -> None:
        self.path = Path(path)
        self.done = done
        self.processed = self.path / processed_folder
        self.quarantine = self.path / quarantine_folder
        ensure_maildir(self.path)

    def waiting(self) -> list[Path]:
        """Files in new/, oldest first (by delivery time, then name)."""
        try:
            entries = [e for e in os.scandir(self.path / "new") if e.is_file() and not e.name.startswith(".")]
        except FileNotFoundError:
            ensure_maildir(self.path)
            return []
        entries.sort(key=lambda e: (e.stat().st_mtime, e.name))
        return [Path(e.path) for e in entries]

    def read(self, path: Path) -> MaildirMail | None:
        try:
            return MaildirMail(path, path.read_bytes())
        except FileNotFoundError:  # another instance took it meanwhile
            return None

    def mark_done(self, path: Path) -> None:
        target_dir = self.processed if self.done == "folder" else self.path
        self._move(path, target_dir, "S")

    def mark_quarantined(self, path: Path) -> None:
        self._move(path, self.quarantine, "")

    def _move(self, path: Path, folder: Path, flags: str) -> None:
        ensure_maildir(folder)
        base = path.name.split(":", 1)[0]
        try:
            os.replace(path, folder / "cur" / f"{base}:2,{flags}")
        except FileNotFoundError:
            log.info("maildir file %s already moved", path.name)


class MaildirOutbox:
    """The embedded default's outbound transport: one file per mail, in a Maildir."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        ensure_maildir(self.path)

    def file_name(self, message_id: str) -> str:
        return "postdesk." + re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:200]

    def delivered(self, name: str) -> bool:
        return (self.path / "new" / name).exists() or any((self.path / "cur").glob(f"{name}:*")) or \
            (self.path / "cur" / name).exists()

    def write(self, message_id: str, raw: bytes) -> Path:
        """Write one mail; a second write of the same Message-ID changes nothing."""
        name = self.file_name(message_id)
        target = self.path / "new" / name
        if self.delivered(name):
            return target
        temporary = self.path / "tmp" / f"{name}.{os.getpid()}.{socket.gethostname()}.{time.monotonic_ns()}"
        with open(temporary, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def files(self) -> Iterator[Path]:
        for sub in ("new", "cur"):
            yield from sorted((self.path / sub).glob("*"))
