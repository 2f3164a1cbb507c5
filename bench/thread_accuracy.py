"""Threading: a synthetic conversation set through `take_in`; the share of mails filed right.

    .venv/bin/python bench/thread_accuracy.py [--threads 1000] [--seed 1] [--db sqlite|postgresql]

The conversations come from `tests/threadgen.py`, played as a simulation: customers write
(Gmail, Outlook, Apple Mail, Thunderbird), Postdesk answers into its Maildir outbox, and the
customers, their colleagues, their out-of-office responders, their mail servers (bounces)
and the agents react to what it sent, in simulated time over several days. Every mail is
labelled with the conversation it belongs to (or "new ticket", or "no ticket" for noise).
The shipped rules are in force. Goals (issue 5): at least 99.5% of mails in the right
ticket, and no mail of one customer in another customer's ticket. Exit status 1 when a
goal is missed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import peak_rss_mb  # bench/ is on the path (common puts the repository there too)

from tests.harness import Site
from tests.servers.postgres import create_database, drop_database, find_server
from tests.threadgen import CLIENTS, Simulation, play

RULES = Path(__file__).resolve().parent.parent / "rules"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--show", type=int, default=100, help="list at most this many misfiled mails")
    parser.add_argument("--detail", action="store_true", help="count each client and corpus shape apart")
    args = parser.parse_args()
    logging.getLogger("mailparser").setLevel(logging.ERROR)  # "Email content 'rfc822-headers' not handled"
    root = Path(tempfile.mkdtemp(prefix="postdesk-bench-threading-"))
    pg = find_server() if args.db == "postgresql" else None
    url = create_database(pg) if pg else f"sqlite:///{root / 'bench.db'}"
    site = Site(root, url).maildir()
    site.extra = f'[paths]\nrules = "{RULES}"\n'
    app = site.app()
    try:
        simulation = Simulation(threads=args.threads, seed=args.seed, support="help@example.com")
        started = time.perf_counter()
        score = play(app, simulation, "local")
        elapsed = time.perf_counter() - started
    finally:
        app.close()
        if pg:
            drop_database(pg, url)
    strangers = sum(1 for key in simulation.conversations if "-" in key)
    print(f"threading: {args.threads} conversations (+{strangers} started by colleagues who got a forward or by "
          f"mail after a closure), seed {args.seed}, {args.db}, shipped rules")
    print(f"mails {score.mails} (opening a ticket {score.expected['new']}, joining one {score.expected['join']}, "
          f"opening none {score.expected['none']}), tickets {len(score.owner)}")
    print(f"accuracy {score.accuracy:.2%} of mails in the right ticket (goal >= 99.5%); "
          f"{score.mails - score.right} misfiled")
    print(f"mails of one customer in another customer's ticket: {score.cross} (goal 0)")
    print(f"{elapsed:.1f} s, {score.mails / elapsed:.0f} mails/s through take_in and the outbox; "
          f"peak memory {peak_rss_mb():.0f} MB")
    print("\nmails by kind (Gmail, Outlook, Apple Mail, Thunderbird together; --detail: each shape):")
    totals, wrong = grouped(score.shapes, args.detail), grouped(score.wrong, args.detail)
    for shape, count in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:5d}  {shape}" + (f"  ({wrong[shape]} misfiled)" if wrong[shape] else ""))
    if score.misfiled:
        print("\nmisfiled:")
        for line in score.misfiled[: args.show]:
            print(f"  {line}")
    return 0 if score.accuracy >= 0.995 and score.cross == 0 else 1


def grouped(counts: Counter[str], detail: bool) -> Counter[str]:
    """"outlook reply, lost headers" and "gmail reply, lost headers" as "reply, lost headers";
    "bounce (exim-dsn-mailbox-full)" as "bounce"."""
    if detail:
        return counts
    found: Counter[str] = Counter()
    for shape, count in counts.items():
        words = shape.split(" ", 1)
        shape = words[1] if words[0] in CLIENTS and len(words) == 2 else shape
        found[re.sub(r" \([a-z0-9-]+\)", "", shape)] += count
    return found


if __name__ == "__main__":
    sys.exit(main())
