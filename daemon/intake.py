"""One mail: parse, gather from the store, let the core decide, compose, apply — one transaction.

`take_in` is what the IMAP and Maildir readers, `postdesk ingest` and `run --once` all
call. It never raises for a bad mail (that becomes a quarantine record); it raises
`TemporaryError` when the database is busy or gone, so the caller keeps the mail and
tries again later.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from daemon.app import App
from daemon.core import thread
from daemon.core.commands import REGISTRY, help_entries
from daemon.core.compose import compose
from daemon.core.decide import decide
from daemon.core.identity import fingerprint
from daemon.core.rules.engine import alert_key
from daemon.core.tickets import new_ticket_view
from daemon.core.values import Decision, Facts, InboundMail, OutboundMail, ThreadKeys, Verdict
from daemon.errors import TemporaryError
from daemon.parsing import job_for
from daemon.store.apply import Intake, allocate_number, apply_decision, store_blob, write_quarantine
from daemon.store.fast import savepoint
from daemon.store.gather import gather
from daemon.store.models import IntakeRecord, Quarantine

log = logging.getLogger(__name__)
ATTEMPTS = 4
COMMAND_HELP = help_entries(REGISTRY)  # the command list agent mails show


@dataclass(frozen=True, slots=True)
class IntakeResult:
    verdict: Verdict
    reason: str
    ticket_number: int | None = None
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Arrival:
    """A raw mail as it arrived, and where."""

    raw: bytes
    mailbox: str
    now: datetime


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed mail, ready for its transaction."""

    intake: Intake
    keys: ThreadKeys
    now: datetime


def take_in(app: App, raw: bytes, mailbox: str, now: datetime | None = None) -> IntakeResult:
    """Take one raw mail in; the result says what happened to it."""
    return take_in_many(app, [Arrival(raw, mailbox, now or datetime.now(UTC))])[0]


def take_in_many(app: App, arrivals: list[Arrival], parsed: Parsing | None = None) -> list[IntakeResult]:
    """Take a batch in: one transaction, a SAVEPOINT per mail. A mail that fails is rolled
    back alone and retried or quarantined after the commit; the others are unaffected.
    Mails are parsed ahead (in a worker process for a batch) while earlier ones are stored;
    `parsed` is what `start_parsing` began for these arrivals, if the caller began it earlier.
    Raises TemporaryError (nothing committed) when the database is busy or gone."""
    results: list[IntakeResult | None] = [None] * len(arrivals)
    prepared: dict[int, Prepared] = {}
    unreadable: dict[int, tuple[str, InboundMail | None]] = {}
    again: dict[int, BaseException] = {}
    with app.db.write() as session:  # a database that is busy or gone: TemporaryError
        connection = session.connection()
        for index, found in enumerate(_prepare_all(app, arrivals, parsed or start_parsing(app, arrivals))):
            if isinstance(found, tuple):
                unreadable[index] = found
                continue
            prepared[index] = found
            outcome = _in_savepoint(app, connection, found)
            if isinstance(outcome, IntakeResult):
                results[index] = outcome
            else:
                again[index] = outcome
    for index, result in enumerate(results):
        if result is not None:
            _logged(result, arrivals[index].mailbox)
    for index, (reason, mail) in unreadable.items():
        arrival = arrivals[index]
        results[index] = quarantine_raw(app, arrival.raw, arrival.mailbox, reason, arrival.now, mail)
    for index, failure in again.items():
        results[index] = _alone(app, prepared[index], failure)
    return [r for r in results if r is not None]


@dataclass(frozen=True, slots=True)
class Parsing:
    """Parsing under way for a batch of arrivals (see `start_parsing`)."""

    results: Iterator[InboundMail | str]


def start_parsing(app: App, arrivals: list[Arrival]) -> Parsing:
    """Hand a batch to the parser now; `take_in_many` reads the results. Readers start the
    next batch's parsing before storing the current one, so the worker never waits."""
    return Parsing(app.parser.parse_all([job_for(a.raw, a.now, app.config.intake) for a in arrivals]))


def _prepare_all(app: App, arrivals: list[Arrival],
                 parsing: Parsing) -> Iterator[Prepared | tuple[str, InboundMail | None]]:
    """Each arrival parsed and keyed, or (why it cannot be taken in, what was parsed)."""
    limit = int(app.config.intake.max_mail_size)
    for arrival, parsed in zip(arrivals, parsing.results, strict=True):
        if len(arrival.raw) > limit:
            yield (f"the mail is {len(arrival.raw):,} bytes, over intake.max_mail_size ({limit:,} bytes)", None)
        elif isinstance(parsed, str):
            log.error("parser failed mailbox=%s: %s", arrival.mailbox, parsed)
            yield (parsed, None)
        else:
            yield _prepared(app, arrival, parsed)


def _prepared(app: App, arrival: Arrival, mail: InboundMail) -> Prepared:
    keys = replace(thread.keys(mail, app.setup), alert_key=alert_key(app.rules, mail, arrival.mailbox))
    return Prepared(Intake(mail, arrival.raw, fingerprint(arrival.raw, mail), arrival.mailbox), keys, arrival.now)


def _in_savepoint(app: App, connection: Connection, item: Prepared) -> IntakeResult | BaseException:
    try:
        with savepoint(connection):
            return _decide_and_apply(app, connection, item)
    except (IntegrityError, StaleDataError, TemporaryError, OperationalError) as error:
        return error
    except Exception as error:
        log.error("mail=%s mailbox=%s failed: %s", item.intake.mail.message_id, item.intake.mailbox,
                  traceback.format_exc())
        return error


def _alone(app: App, item: Prepared, first_error: BaseException) -> IntakeResult:
    """A mail that failed inside the batch: again in its own transaction (a concurrent change
    is retried), and quarantined with the reason if it fails for any other cause."""
    mail, mailbox = item.intake.mail, item.intake.mailbox
    error: BaseException = first_error
    for attempt in range(1, ATTEMPTS + 1):
        if not isinstance(error, IntegrityError | StaleDataError):
            break
        log.warning("mail=%s retry %d after a concurrent change: %s", mail.message_id, attempt,
                    str(error).splitlines()[0])
        try:
            with app.db.write() as session:
                return _logged(_decide_and_apply(app, session.connection(), item), mailbox)
        except (IntegrityError, StaleDataError) as failure:
            error = failure
        except TemporaryError:
            raise
        except Exception as failure:
            error = failure
    if isinstance(error, IntegrityError | StaleDataError):
        raise TemporaryError(f"mail {mail.message_id} kept conflicting with concurrent changes")
    if isinstance(error, OperationalError | TemporaryError):
        raise TemporaryError(f"database unavailable: {str(error).splitlines()[0]}") from error
    return quarantine_raw(app, item.intake.raw, mailbox, f"processing failed: {type(error).__name__}: {error}",
                          item.now, mail)


def _decide_and_apply(app: App, connection: Connection, item: Prepared) -> IntakeResult:
    intake, now = item.intake, item.now
    mail, mailbox = intake.mail, intake.mailbox
    facts = gather(connection, mail, item.keys, intake.fingerprint, now, round_robin=app.rules.round_robin)
    decision = decide(mail, facts, app.setup, mailbox, now, app.rules, item.keys)
    if decision.verdict is Verdict.DUPLICATE:
        return IntakeResult(decision.verdict, decision.reason, None, mail.message_id)
    decision, number = _numbered(connection, decision)
    outbound: tuple[OutboundMail, ...] = ()
    if decision.drafts:  # mail about a mail that made no ticket (a refused #new) names none
        about = decision.ticket or new_ticket_view(mail, Facts(), app.setup, mailbox, now)
        outbound = compose(decision.drafts, about, app.setup, app.renderer, app.envelope(mailbox),
                           intake.fingerprint, now, {"mail": mail_summary(mail), "commands": COMMAND_HELP})
    apply_decision(connection, intake, decision, outbound, number, now)
    return IntakeResult(decision.verdict, decision.reason, number, mail.message_id)


def _numbered(connection: Connection, decision: Decision) -> tuple[Decision, int | None]:
    if decision.ticket is None:
        return decision, None
    if not decision.creates_ticket:
        return decision, decision.ticket.number
    number = allocate_number(connection)
    return replace(decision, ticket=replace(decision.ticket, number=number)), number


def mail_summary(mail: InboundMail) -> dict[str, str]:
    return {"from": mail.sender.email, "name": mail.sender.name, "subject": mail.subject, "text": mail.new_text}


def _logged(result: IntakeResult, mailbox: str) -> IntakeResult:
    level = logging.ERROR if result.verdict is Verdict.QUARANTINED else logging.INFO
    log.log(level, "mail=<%s> ticket=%s mailbox=%s %s: %s", result.message_id, result.ticket_number or "-",
            mailbox, result.verdict.value, result.reason)
    return result


def quarantine_raw(app: App, raw: bytes, mailbox: str, reason: str, now: datetime,
                   mail: InboundMail | None = None) -> IntakeResult:
    """Keep a mail that could not be processed, with the reason; never lose it."""
    digest = hashlib.sha256(raw).hexdigest()
    print_id = fingerprint(raw, mail) if mail is not None else digest
    with app.db.write() as session:
        existing = session.query(IntakeRecord.id).filter(IntakeRecord.fingerprint == print_id).first()
        if existing is None:
            store_blob(session, raw)
            if mail is not None:
                write_quarantine(session, Intake(mail, raw, print_id, mailbox), reason, now)
            else:
                session.add(Quarantine(mailbox=mailbox, raw_sha256=digest, reason=reason, at=now))
            session.add(IntakeRecord(fingerprint=print_id, message_id=mail.message_id if mail else "",
                                     raw_sha256=digest, mailbox=mailbox, verdict=Verdict.QUARANTINED.value,
                                     reason=reason[:2000], at=now))
    message_id = mail.message_id if mail else ""
    return _logged(IntakeResult(Verdict.QUARANTINED, reason, None, message_id), mailbox)
