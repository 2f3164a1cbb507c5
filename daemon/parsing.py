"""Parsing off the main process: reading the MIME tree and decoding each part is a large
share of intake, so a batch's mails are parsed in a worker process while this one stores
the mails parsed before (a pipeline over the batch). One mail, or a machine with one
CPU, is parsed inline. The core's `parse` is the same function either way."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing import get_context

from daemon.config import IntakeConfig
from daemon.core.identity import fingerprint
from daemon.core.values import InboundMail
from daemon.processes import end_with_parent, name_this_process, start_method

log = logging.getLogger(__name__)
MIN_BATCH = 8  # fewer mails than this are parsed inline (the hand-over costs more)


@dataclass(frozen=True, slots=True)
class ParseJob:
    raw: bytes
    received_at: datetime
    max_attachment_bytes: int
    reply_languages: tuple[str, ...]


def job_for(raw: bytes, received_at: datetime, limits: IntakeConfig) -> ParseJob:
    """What the parser gets for one raw mail; over `max_mail_size`, nothing (intake quarantines
    such a mail unparsed)."""
    return ParseJob(raw if len(raw) <= int(limits.max_mail_size) else b"", received_at,
                    int(limits.max_attachment_size), limits.reply_languages)


def parse_job(job: ParseJob) -> InboundMail | str:
    """Runs in the worker: the parsed mail with its fingerprint, or the error as text (the
    parser promises never to raise; if it does, the mail is quarantined with this reason)."""
    from daemon.core.parse import parse  # here: a process that only stores (fed by another) never loads the parser

    try:
        mail = parse(job.raw, received_at=job.received_at, max_attachment_bytes=job.max_attachment_bytes,
                     reply_languages=job.reply_languages)
        return replace(mail, fingerprint=fingerprint(job.raw, mail))  # here, off the storing process
    except Exception as error:
        return f"the parser failed: {type(error).__name__}: {error}"


def _worker_started(parent: int) -> None:
    """In the worker, first: its name for `ps`, and an end with the process that started it."""
    name_this_process("postdesk-parse")
    end_with_parent(parent)
    import daemon.core.parse  # noqa: F401  # loaded now, not with the first batch


class Parser:
    """Parses jobs in order, in a worker process when there are enough of them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    @staticmethod
    def workers_for(setting: int) -> int:
        """-1 ("auto"): one worker where there are two CPUs or more."""
        return setting if setting >= 0 else (1 if (os.cpu_count() or 1) >= 2 else 0)

    def parse_all(self, jobs: Sequence[ParseJob]) -> Iterator[InboundMail | str]:
        """The results in order. Pooled work is handed to the worker now (so a caller can start
        the next batch's parsing before storing this one); inline parsing happens as the
        results are read."""
        if self.workers == 0 or len(jobs) < MIN_BATCH:
            return (parse_job(job) for job in jobs)
        try:
            results = self._worker_pool().map(parse_job, jobs, chunksize=16)
        except (BrokenProcessPool, OSError, RuntimeError) as error:
            self._broken(error)
            return (parse_job(job) for job in jobs)
        return self._pooled(results, jobs)

    def start(self, fork: bool = False) -> None:
        """Start the worker ahead of the first batch. `fork`: as a copy of this process (at once,
        the code already loaded) if it has no other thread yet; otherwise, and for any worker
        started later, a fresh interpreter that imports the parser (a moment's work)."""
        if self.workers and self.pool is None:
            with contextlib.suppress(BrokenProcessPool, OSError, RuntimeError):
                self._worker_pool(start_method() if fork else "spawn").submit(int)

    def _worker_pool(self, method: str = "spawn") -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context(method),
                                            initializer=_worker_started, initargs=(os.getpid(),))
        return self.pool

    def _pooled(self, results: Iterator[InboundMail | str], jobs: Sequence[ParseJob]) -> Iterator[InboundMail | str]:
        """From the worker; if it dies (killed, out of memory), the rest inline and a new worker
        for the next batch: a broken pool never costs a mail."""
        done = 0
        try:
            for parsed in results:
                yield parsed
                done += 1
        except (BrokenProcessPool, OSError, RuntimeError) as error:
            self._broken(error)
            yield from (parse_job(job) for job in jobs[done:])

    def _broken(self, error: BaseException) -> None:
        log.warning("the parser worker failed (%s); parsing inline", error)
        self.close(wait=False)

    def close(self, wait: bool = True) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None
