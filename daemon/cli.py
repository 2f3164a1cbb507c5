"""`postdesk`: argparse → one function per command. The only place for exit codes and print.

Exit codes: 0 ok; 1 failure; 64 usage; 75 temporary failure (EX_TEMPFAIL, the MTA retries);
78 configuration problems (EX_CONFIG).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.errors import ConfigError, PostdeskError, Problem, SchemaNotReady, TemporaryError
from daemon.logs import configure_logging

EX_OK, EX_FAIL, EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 64, 75, 78
log = logging.getLogger("postdesk")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EX_USAGE
    setup_logging(args)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EX_CONFIG
    except TemporaryError as error:
        print(f"postdesk: temporary failure: {error}", file=sys.stderr)
        return EX_TEMPFAIL
    except SchemaNotReady as error:
        print(f"postdesk: {error}", file=sys.stderr)
        return EX_FAIL
    except PostdeskError as error:
        print(f"postdesk: {error}", file=sys.stderr)
        return EX_FAIL
    except KeyboardInterrupt:
        return 130


def command_line() -> int:
    """The `postdesk` command: `main`, then a quick exit. What the command built lives until
    the process ends, so Python's last garbage collection is told not to walk it (gc.freeze):
    with the store and the templates loaded that walk took ~70 ms, paid by every `postdesk
    ingest` an MTA runs and at the end of each `run --once`."""
    code = main()
    gc.freeze()
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postdesk", description="An email-driven help desk.")
    parser.add_argument("--version", action="version", version=f"postdesk {__version__}")
    parser.add_argument("-c", "--config", metavar="FILE",
                        help="the config file (default: $POSTDESK_CONFIG, then ./postdesk.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command("check-config", cmd_check_config, "validate the config, rule files and templates")
    command("migrate", cmd_migrate, "create or upgrade the database schema")
    run = command("run", cmd_run, "run the daemon in the foreground")
    run.add_argument("--once", action="store_true", help="one complete pass, then exit")
    run.add_argument("--now", metavar="ISO-8601", type=parse_now, help="the time the pass runs at (with --once)")
    ingest = command("ingest", cmd_ingest, "take in one raw mail from a file or stdin")
    ingest.add_argument("--mailbox", metavar="NAME", help="the mailbox it arrived at (default: the first)")
    ingest.add_argument("file", nargs="?", default="-", metavar="FILE.eml|-")
    ingest.add_argument("--now", metavar="ISO-8601", type=parse_now, help=argparse.SUPPRESS)
    _tickets_parser(sub)
    _quarantine_parser(sub)
    rules = sub.add_parser("rules", help="rule tools").add_subparsers(metavar="ACTION")
    rules_test = rules.add_parser("test", help="dry run of the rules on a mail; nothing stored or sent")
    rules_test.add_argument("file", metavar="FILE.eml")
    rules_test.add_argument("--json", action="store_true")
    rules_test.add_argument("--mailbox", metavar="NAME")
    rules_test.add_argument("--now", metavar="ISO-8601", type=parse_now, help="the time to evaluate at (default: now)")
    rules_test.set_defaults(handler=cmd_rules_test)
    report = command("report", cmd_report, "the ticket report")
    report.add_argument("--from", dest="date_from", metavar="DATE")
    report.add_argument("--to", dest="date_to", metavar="DATE")
    report.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    report.add_argument("-o", "--output", metavar="FILE")
    demo = command("demo", cmd_demo, "a self-contained demonstration on the embedded default")
    demo.add_argument("--dir", metavar="DIR", help="keep the demo's files here (default: a temporary folder)")
    return parser


def _tickets_parser(sub: Any) -> None:
    tickets = sub.add_parser("tickets", help="list and show tickets").add_subparsers(metavar="ACTION")
    listing = tickets.add_parser("list", help="list tickets")
    listing.add_argument("--status", metavar="S")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_tickets_list)
    show = tickets.add_parser("show", help="one ticket with its messages and events")
    show.add_argument("number", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_tickets_show)


def _quarantine_parser(sub: Any) -> None:
    quarantine = sub.add_parser("quarantine", help="mail that could not be processed").add_subparsers(
        metavar="ACTION")
    listing = quarantine.add_parser("list", help="list quarantined mail")
    listing.add_argument("--all", action="store_true", help="also released and discarded ones")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_quarantine_list)
    release = quarantine.add_parser("reprocess", help="take a quarantined mail in again")
    release.add_argument("id", type=int)
    release.set_defaults(handler=cmd_quarantine_reprocess)
    discard = quarantine.add_parser("discard", help="mark a quarantined mail as dealt with")
    discard.add_argument("id", type=int)
    discard.set_defaults(handler=cmd_quarantine_discard)


def parse_now(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time such as 2026-11-24T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.INFO
    if args.handler in (cmd_tickets_list, cmd_tickets_show, cmd_check_config, cmd_quarantine_list, cmd_demo):
        level = logging.DEBUG if args.verbose else logging.WARNING
    configure_logging(level)


# ----------------------------------------------------------------------------------------
# Loading


def config_path(args: argparse.Namespace) -> Path:
    from daemon.config import default_config_path

    return Path(args.config) if args.config else default_config_path(os.environ)


def load(args: argparse.Namespace) -> Any:
    from daemon.config import load_config

    config = load_config(config_path(args))
    if not args.verbose and args.handler in (cmd_run, cmd_ingest, cmd_migrate, cmd_quarantine_reprocess):
        logging.getLogger().setLevel(logging.getLevelName(config.logging.level))  # [logging] level decides
    return config


def open_app(args: argparse.Namespace, migrate: bool = True, rules: bool = True) -> Any:
    from daemon.app import App

    return App.from_config(load(args), migrate=migrate, rules=rules)


# ----------------------------------------------------------------------------------------
# Commands


def cmd_check_config(args: argparse.Namespace) -> int:
    from daemon.checks import check_all

    path = config_path(args)
    problems: list[Problem] = check_all(path, os.environ)
    for problem in problems:
        print(problem)
    if problems:
        return EX_CONFIG
    print(f"{path}: ok")
    return EX_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from daemon.store.db import Database
    from daemon.store.migrate import upgrade

    config = load(args)
    db = Database(config.database.url, config.base_dir)
    try:
        before, after = upgrade(db)
    except OperationalError as error:
        raise TemporaryError(f"cannot reach the database: {str(error.orig or error).splitlines()[0]}") from error
    finally:
        db.dispose()
    print(f"database schema at {after}" + (f" (was {before or 'empty'})" if before != after else " (up to date)"))
    return EX_OK


def cmd_run(args: argparse.Namespace) -> int:
    if args.now and not args.once:
        print("postdesk: --now works only with --once", file=sys.stderr)
        return EX_USAGE
    if args.once:
        return _run_once(args)
    import asyncio  # here: `run --once` starts its fetching process before loading asyncio (30 ms)

    from daemon.runtime import Daemon

    app = open_app(args)
    try:
        return asyncio.run(Daemon(app, os.environ.get("NOTIFY_SOCKET")).run())
    finally:
        app.close()


def _run_once(args: argparse.Namespace) -> int:
    from daemon.feeder import Feeder

    config = load(args)
    fixed = args.now
    # First thing, before the imports and loading below: the IMAP mail is fetched and parsed
    # meanwhile by a process of its own.
    feeder = Feeder.start(config, fixed)
    try:
        from daemon.app import App
        from daemon.runtime import run_once

        app = App.from_config(config)
        try:
            intake, sent = run_once(app, (lambda: fixed) if fixed else _utcnow, sender_process=True,
                                    fixed_now=fixed, feeder=feeder)
        finally:
            app.close()
    finally:
        if feeder is not None:
            feeder.close()
    print(f"taken in: {intake.taken}, quarantined: {intake.quarantined}, already taken: "
          f"{intake.duplicates}; sent: {sent.sent}, to retry: {sent.retried}, failed: {sent.failed}", file=sys.stderr)
    for error in intake.errors + sent.errors:
        print(f"error: {error}", file=sys.stderr)
    return EX_FAIL if intake.errors or sent.failed else EX_OK


def _utcnow() -> datetime:
    return datetime.now(UTC)


def cmd_ingest(args: argparse.Namespace) -> int:
    from daemon.intake import take_in

    raw = sys.stdin.buffer.read() if args.file == "-" else _read_file(args.file)
    if raw is None:
        return EX_FAIL
    try:
        app = open_app(args)
    except ConfigError as error:  # the MTA keeps the mail and retries once the files are fixed
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print("postdesk: the mail is not taken in until the configuration is fixed; exit 75 so the MTA retries",
              file=sys.stderr)
        return EX_TEMPFAIL
    try:
        mailbox = args.mailbox or app.config.mailboxes[0].name
        if app.config.mailbox(mailbox) is None:
            names = ", ".join(m.name for m in app.config.mailboxes)
            print(f"postdesk: no mailbox named {mailbox!r}; expected one of: {names}", file=sys.stderr)
            return EX_USAGE
        take_in(app, raw, mailbox, args.now)  # logs what it did; a bad mail is quarantined, not an error
        return EX_OK
    finally:
        app.close()


def _read_file(name: str) -> bytes | None:
    try:
        return Path(name).read_bytes()
    except OSError as error:
        print(f"postdesk: cannot read {name}: {error.strerror or error}", file=sys.stderr)
        return None


def cmd_tickets_list(args: argparse.Namespace) -> int:
    from daemon.store.queries import list_tickets

    app = open_app(args, rules=False)
    try:
        with app.db.read() as session:
            tickets = list_tickets(session, args.status)
    finally:
        app.close()
    if args.json:
        print(json.dumps(tickets, ensure_ascii=False, indent=2))
        return EX_OK
    for t in tickets:
        print(f"#{t['number']:<6} {t['status']:<20} {t['priority']:<7} {(t['owner'] or '-'):<24} "
              f"{t['requester']:<30} {t['subject'][:60]}")
    return EX_OK


def cmd_tickets_show(args: argparse.Namespace) -> int:
    from daemon.store.queries import show_ticket

    app = open_app(args, rules=False)
    try:
        with app.db.read() as session:
            ticket = show_ticket(session, args.number)
    finally:
        app.close()
    if ticket is None:
        print(f"postdesk: no ticket #{args.number}", file=sys.stderr)
        return EX_FAIL
    if args.json:
        print(json.dumps(ticket, ensure_ascii=False, indent=2))
    else:
        print_ticket(ticket)
    return EX_OK


def print_ticket(ticket: dict[str, Any]) -> None:
    print(f"#{ticket['number']} {ticket['subject']}")
    for key in ("status", "type", "priority", "impact", "urgency", "owner", "group", "requester", "cc", "tags",
                "created_at", "first_response_at", "resolved_at", "closed_at"):
        print(f"  {key + ':':<19}{ticket[key]}")
    for message in ticket["messages"]:
        flags = f"{message['direction']}/{message['visibility']}" + ("/auto" if message["auto"] else "")
        print(f"\n  --- {message['date']} {flags} from {message['from']}: {message['subject']}")
        for line in (message["new_text"] or message["body_text"]).strip().splitlines()[:20]:
            print(f"  | {line}")
    print("\n  events:")
    for event in ticket["events"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items())
        print(f"  {event['at']} {event['actor']} {event['kind']}: {detail}")


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from daemon.store.queries import list_quarantine

    app = open_app(args, rules=False)
    try:
        with app.db.read() as session:
            rows = list_quarantine(session, None if args.all else "held")
    finally:
        app.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EX_OK
    for row in rows:
        print(f"{row['id']:<5} {row['at']} {row['mailbox']:<10} {row['sender'][:30]:<30} {row['reason'][:80]}")
    return EX_OK


def cmd_quarantine_reprocess(args: argparse.Namespace) -> int:
    from daemon.quarantine import reprocess

    app = open_app(args)
    try:
        result = reprocess(app, args.id)
    finally:
        app.close()
    if result is None:
        print(f"postdesk: no held quarantine entry {args.id}", file=sys.stderr)
        return EX_FAIL
    print(f"{result.verdict.value}: {result.reason}")
    return EX_OK


def cmd_quarantine_discard(args: argparse.Namespace) -> int:
    from daemon.quarantine import discard

    app = open_app(args, rules=False)
    try:
        found = discard(app, args.id)
    finally:
        app.close()
    if not found:
        print(f"postdesk: no held quarantine entry {args.id}", file=sys.stderr)
        return EX_FAIL
    return EX_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from daemon.rulestest import format_report, rules_test

    raw = _read_file(args.file)
    if raw is None:
        return EX_FAIL
    config = load(args)
    mailbox = args.mailbox or config.mailboxes[0].name
    if config.mailbox(mailbox) is None:
        print(f"postdesk: no mailbox named {mailbox!r}; expected one of: "
              + ", ".join(m.name for m in config.mailboxes), file=sys.stderr)
        return EX_USAGE
    report = rules_test(config, raw, mailbox, args.now or _utcnow())  # ConfigError: exit 78 with FILE:LINE
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_report(report, config.base_dir))
    return EX_OK


def cmd_report(args: argparse.Namespace) -> int:
    print("postdesk report: reports are not built yet", file=sys.stderr)
    return EX_FAIL


def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return run_demo(args.dir)
