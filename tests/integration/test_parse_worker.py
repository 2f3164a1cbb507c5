"""The parser worker process: batches are parsed there, and if it dies no mail is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from daemon.core.values import Verdict
from daemon.intake import Arrival, take_in_many
from daemon.parsing import Parser
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail


def batch(prefix: str, n: int = 20) -> list[Arrival]:
    return [Arrival(raw_mail(message_id=f"<{prefix}{i}@c.example>", subject=f"{prefix} {i}"), "local", NOW)
            for i in range(n)]


def test_a_batch_is_parsed_in_the_worker_and_a_killed_worker_costs_no_mail(tmp_path: Path, sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().app()
    app.parser.close()
    app.parser = Parser(1)
    try:
        results = take_in_many(app, batch("a"))
        assert [r.verdict for r in results] == [Verdict.STORED] * 20
        assert app.parser.pool is not None
        worker = next(iter(app.parser.pool._processes))  # the worker's pid
        os.kill(worker, signal.SIGKILL)
        results = take_in_many(app, batch("b"))
        assert [r.verdict for r in results] == [Verdict.STORED] * 20
        assert len({r.ticket_number for r in results}) == 20
        results = take_in_many(app, batch("c"))  # a new worker for the next batch
        assert [r.verdict for r in results] == [Verdict.STORED] * 20
    finally:
        app.close()
