"""Outbound: N queued mails delivered to a real aiosmtpd on loopback; mails per second.

    .venv/bin/python bench/outbound.py [--count 2000] [--concurrency 4] [--db sqlite|postgresql]

The mails (acknowledgements of N new tickets) are queued first; only the outbox drain is
timed: claim, SMTP delivery over reused connections, and the row updates. Goal (issue 6):
at least 200 mails a second on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import customer_mail, peak_rss_mb

from daemon.intake import take_in
from daemon.sender import Sender
from tests.harness import Site
from tests.servers import make_certificate
from tests.servers.postgres import create_database, drop_database, find_server
from tests.servers.smtpd import SmtpServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="postdesk-bench-out-"))
    server = SmtpServer(cert=make_certificate(root / "tls")).start()
    pg = find_server() if args.db == "postgresql" else None
    url = create_database(pg) if pg else f"sqlite:///{root / 'bench.db'}"
    site = Site(root, url, agents="", extra="").maildir()
    site.smtp(server, helo="bench.example")
    site.outbound = site.outbound.replace("[outbound]\n", f"[outbound]\nconcurrency = {args.concurrency}\n")
    app = site.app()
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        for index in range(args.count):
            take_in(app, customer_mail(index), "local", now)
        queued_in = time.perf_counter() - started
        report, elapsed = asyncio.run(timed_drain(app))
        server.wait_for(args.count, timeout=60)
        print(f"outbound: {report.sent} mails delivered to aiosmtpd in {elapsed:.2f} s = "
              f"{report.sent / elapsed:,.0f} mails/s (concurrency {args.concurrency}, {args.db}); "
              f"server received {len(server.messages)}; retried {report.retried}, failed {report.failed}")
        print(f"(queueing {args.count} tickets with their acknowledgements took {queued_in:.2f} s; "
              f"peak memory {peak_rss_mb():.0f} MB)")
    finally:
        app.close()
        server.close()
        if pg:
            drop_database(pg, url)


async def timed_drain(app):  # type: ignore[no-untyped-def]
    sender = Sender(app)
    try:
        started = time.perf_counter()
        report = await sender.drain()
        return report, time.perf_counter() - started
    finally:
        await sender.close()


if __name__ == "__main__":
    main()
