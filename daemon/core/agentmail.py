"""Mail from a configured agent: authenticated, then its commands and/or a public reply.

    no ticket → `#new ADDRESS` first? a new ticket for that customer : quarantined
    not authenticated → kept as an internal message, the agent told why; nothing runs or goes out
    the `#` lines at the top run in turn on the ticket; any bad line → nothing applied, COMMAND_ERROR
    the text below them → relayed to the requester and CCs (AGENT_REPLY), unless a command sent
        it (#resolve, #wait, #third-party ADDRESS, #new) or #note keeps it internal
    → the ticket after, events, drafts, and a COMMAND_RESULT to the agent when there were commands

Authentication: the mail answers a notification Postdesk sent to this agent about this ticket
(a signed Message-ID token in In-Reply-To/References), or the topmost Authentication-Results
header is a trusted server's and shows DKIM or DMARC pass for the sender's domain
(`authresults.py`). A new ticket (`#new`) has no token to answer, so only the second counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from daemon.core import authresults, lifecycle, notify, tokens
from daemon.core.classify import Classification
from daemon.core.commands import REGISTRY, Command, CommandError, Context, Outcome, help_text, unknown_command
from daemon.core.commands.parse import AgentText, CommandLine, split_commands
from daemon.core.tickets import new_ticket_view
from daemon.core.values import (
    AgentView,
    Decision,
    EventDraft,
    Facts,
    InboundMail,
    OutboundDraft,
    OutboundKind,
    Setup,
    Status,
    StoredMessage,
    TicketView,
    Verdict,
    Visibility,
)

CUSTOMER_ANSWERS = frozenset({OutboundKind.AGENT_REPLY, OutboundKind.RESOLUTION, OutboundKind.INFO_REQUEST})


@dataclass(frozen=True, slots=True)
class AgentMail:
    """One agent's mail with everything its commands are decided with."""

    mail: InboundMail
    agent: AgentView
    written: AgentText
    facts: Facts
    setup: Setup
    now: datetime
    registry: Mapping[str, Command]
    how: str = ""  # how the agent was authenticated


@dataclass(frozen=True, slots=True)
class Run:
    """The mail's commands carried out in turn: the ticket after, what each did, what failed."""

    ticket: TicketView
    done: tuple[tuple[CommandLine, Outcome], ...]
    failed: tuple[tuple[CommandLine, str], ...]


def decide_agent_mail(mail: InboundMail, ticket: TicketView | None, who: Classification, facts: Facts,
                      setup: Setup, now: datetime, registry: Mapping[str, Command] = REGISTRY) -> Decision:
    assert who.agent is not None
    job = AgentMail(mail, who.agent, split_commands(mail.new_text), facts, setup, now, registry)
    if ticket is None:
        return on_new_ticket(job)
    how = authentication(mail, who.agent, ticket, facts, setup)
    if not how:
        return unauthenticated(job, ticket)
    return decide_commands(replace(job, how=how), ticket, ticket)


# ----------------------------------------------------------------------------------------
# Who sent it


def authentication(mail: InboundMail, agent: AgentView, ticket: TicketView | None, facts: Facts,
                   setup: Setup) -> str:
    """How the agent is known to be the sender ("" when not)."""
    if ticket is not None and signed_reference(mail, agent, ticket, facts, setup):
        return "signed reference (a reply to a notification sent to this agent)"
    return authresults.verdict(mail.header_values("authentication-results"), mail.sender.email,
                               setup.trusted_authserv_ids)


def signed_reference(mail: InboundMail, agent: AgentView, ticket: TicketView, facts: Facts, setup: Setup) -> bool:
    """In-Reply-To/References carry a token this instance signed for this agent and this ticket
    (or a ticket since merged into it)."""
    domains = frozenset({setup.domain.lower()})
    wanted = {tokens.agent_hash(a) for a in agent.addresses}
    for message_id in (*mail.in_reply_to, *mail.references):
        token = tokens.read_token(setup.secret, message_id, domains)
        if token is None or token.agent_hash not in wanted:
            continue
        named = facts.ticket(token.number)
        if token.number == ticket.number or (named is not None and named.number == ticket.number):
            return True
    return False


def unauthenticated(job: AgentMail, ticket: TicketView) -> Decision:
    headers = job.mail.header_values("authentication-results")
    why = ("the mail does not answer a notification Postdesk sent to you about this ticket, and no trusted "
           f"server vouches for its sender ({authresults.explain(headers, job.setup.trusted_authserv_ids)}); "
           "nothing was run or sent to the customer")
    notice = notify.to_agents(OutboundKind.COMMAND_ERROR, (job.agent,), job.mail, job.setup,
                              (("error", why), ("line", "")))
    return Decision(Verdict.STORED, "agent mail not authenticated", ticket=ticket, before=ticket,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind="unauthenticated"),
                    events=(EventDraft(job.mail.sender.email, "unauthenticated", (
                        ("why", why), ("message_id", job.mail.message_id))),),
                    drafts=notice)


# ----------------------------------------------------------------------------------------
# A ticket on a customer's behalf: `#new ADDRESS`


def on_new_ticket(job: AgentMail) -> Decision:
    commands = job.written.commands
    if not commands or commands[0].name != "new":
        return Decision(Verdict.QUARANTINED, f"mail from agent {job.agent.email} names no ticket; to open one for "
                        "a customer, write #new customer@example.com as its first line")
    headers = job.mail.header_values("authentication-results")
    how = authresults.verdict(headers, job.mail.sender.email, job.setup.trusted_authserv_ids)
    if not how:
        return Decision(Verdict.QUARANTINED, f"#new from agent {job.agent.email} is not authenticated: "
                        f"{authresults.explain(headers, job.setup.trusted_authserv_ids)}; a new ticket needs "
                        "a DKIM or DMARC pass reported by a trusted server (security.trusted_authserv_ids)")
    start = new_ticket_view(job.mail, job.facts, job.setup, mailbox_of(job.mail, job.setup), job.now)
    return decide_commands(replace(job, how=how), None, start)


def mailbox_of(mail: InboundMail, setup: Setup) -> str:
    """The mailbox the mail was addressed to (else the first one)."""
    recipients = {a.email for a in mail.recipients} | {
        v.strip().strip("<>").lower() for v in mail.header_values("delivered-to")}
    found = next((m for m in setup.mailboxes if recipients & {m.address, *m.aliases}), None)
    if found is None:
        return setup.mailboxes[0].name if setup.mailboxes else ""
    return found.name


# ----------------------------------------------------------------------------------------
# Commands, all or nothing


def decide_commands(job: AgentMail, before: TicketView | None, start: TicketView) -> Decision:
    run = run_commands(job, start)
    if run.failed:
        return refused(job, before, run)
    return applied(job, before, start, run)


def run_commands(job: AgentMail, start: TicketView) -> Run:
    ticket = start
    done: list[tuple[CommandLine, Outcome]] = []
    failed: list[tuple[CommandLine, str]] = []
    for line in job.written.commands:
        outcome = run_one(job, line, ticket)
        if isinstance(outcome, CommandError):
            failed.append((line, outcome.message))
        else:
            done.append((line, outcome))
            ticket = outcome.ticket
    return Run(ticket, tuple(done), (*failed, *conflicts(done)))


def run_one(job: AgentMail, line: CommandLine, ticket: TicketView) -> Outcome | CommandError:
    spec = job.registry.get(line.name)
    if spec is None:
        return CommandError(unknown_command(line.name, job.registry))
    if ticket.status.is_final and not spec.on_final:
        still = ", ".join(f"#{c.name}" for c in sorted(job.registry.values(), key=lambda c: c.name) if c.on_final)
        return CommandError(f"ticket #{ticket.number} is {ticket.status.value} and can no longer be changed "
                            f"(on it only {still} work)")
    context = Context(ticket=ticket, agent=job.agent, line=line.line, text=job.written.message, mail=job.mail,
                      facts=job.facts, setup=job.setup, now=job.now, registry=job.registry)
    return spec.run(context, line.args)


def conflicts(done: list[tuple[CommandLine, Outcome]]) -> list[tuple[CommandLine, str]]:
    """Lines that are fine alone but not together: the text can go out with one command only,
    and #note keeps it from the customer."""
    carriers = [line for line, outcome in done if any(_carries_text(d) for d in outcome.drafts)]
    found = [(line, f"the text below can go out with one command only, and {carriers[0].line} already sends it")
             for line in carriers[1:]]
    to_customer = [line for line, outcome in done
                   if any(_carries_text(d) and d.kind in CUSTOMER_ANSWERS for d in outcome.drafts)]
    if to_customer:
        found += [(line, f"#note keeps the text internal, but {to_customer[0].line} sends it to the customer; "
                   "use one of them") for line, outcome in done if outcome.keeps_internal]
    return found


def _carries_text(draft: OutboundDraft) -> bool:
    return any(name == "text" for name, _ in draft.variables)


def refused(job: AgentMail, before: TicketView | None, run: Run) -> Decision:
    """A bad line: nothing of the mail is applied; the agent gets the reasons and the valid forms."""
    line, error = run.failed[0]
    if len(run.failed) > 1:
        error += "\n\nAlso:\n" + "\n".join(f"  {bad.line}: {why}" for bad, why in run.failed[1:])
    names = tuple(bad.name for bad, _ in run.failed)
    forms = help_text(job.registry, () if any(n not in job.registry for n in names) else names)
    event = EventDraft(job.agent.email, "command_error", (
        ("authenticated", job.how), ("line", line.line), ("error", error),
        ("why", "a bad command line: nothing of the mail was applied or sent"), ("message_id", job.mail.message_id)))
    notice = notify.to_agents(OutboundKind.COMMAND_ERROR, (job.agent,), job.mail, job.setup,
                              (("error", error), ("line", line.line), ("commands", forms)))
    if before is None:  # the mail is kept in quarantine; the agent still hears what was wrong
        return Decision(Verdict.QUARANTINED, f"#new mail from agent {job.agent.email} not applied: {line.line}: "
                        f"{error}", events=(event,), drafts=notice)
    return Decision(Verdict.STORED, f"agent commands refused on #{before.number}: {line.line}", ticket=before,
                    before=before, message=StoredMessage(Visibility.INTERNAL, auto=False, kind="command"),
                    events=(event,), drafts=notice)


def applied(job: AgentMail, before: TicketView | None, start: TicketView, run: Run) -> Decision:
    outcomes = [outcome for _, outcome in run.done]
    drafts = [d for o in outcomes for d in o.drafts]
    events = [e for o in outcomes for e in o.events]
    results = [o.result for o in outcomes]
    relay = relayed(job, run.ticket, outcomes)
    if relay is not None:
        drafts.append(relay)
        results.append(f"your message was sent to {', '.join(a.email for a in (*relay.to, *relay.cc))}")
        events.append(EventDraft(job.agent.email, "reply", (("authenticated", job.how),
                                                            ("message_id", job.mail.message_id))))
    after, opened = settled(job, start, run, drafts, relay is not None)
    events += opened
    if before is None:
        drafts += new_ticket_notices(job, after, drafts)
    if run.done:
        events.insert(0, EventDraft(job.agent.email, "commands", (
            ("authenticated", job.how), ("lines", "\n".join(line.line for line, _ in run.done)),
            ("message_id", job.mail.message_id))))
        drafts += notify.to_agents(OutboundKind.COMMAND_RESULT, (job.agent,), job.mail, job.setup,
                                   (("results", "\n".join(results)),))
    elif relay is None:
        events.append(EventDraft(job.agent.email, "agent_mail", (("why", "no commands and no text: nothing sent"),)))
    kind = "note" if any(o.keeps_internal for o in outcomes) else ("command" if run.done else "agent")
    return Decision(Verdict.STORED, _reason(after, run, relay is not None), ticket=after, before=before,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind=kind),
                    events=tuple(events), drafts=tuple(drafts),
                    merge_into=next((o.merge_into for o in outcomes if o.merge_into is not None), None))


def settled(job: AgentMail, start: TicketView, run: Run, drafts: list[OutboundDraft],
            relayed: bool) -> tuple[TicketView, list[EventDraft]]:
    """The first agent action opens a new ticket; the first answer to the customer is the first response."""
    after, events = run.ticket, []
    acted = relayed or any(job.registry[line.name].acts for line, _ in run.done)
    if acted and after.status is Status.NEW:
        opened = lifecycle.with_status(after, Status.OPEN, job.now)
        events.append(lifecycle.status_event(start, opened, job.agent.email, "first agent action"))
        after = opened
    if not after.status.is_final and after.first_response_at is None and \
            any(d.kind in CUSTOMER_ANSWERS for d in drafts):
        after = replace(after, first_response_at=job.now)
    return after, events


def relayed(job: AgentMail, ticket: TicketView, outcomes: list[Outcome]) -> OutboundDraft | None:
    """The agent's text as a public reply, unless a command sent it or #note keeps it in."""
    if not job.written.message.strip() or any(o.sends_text or o.keeps_internal for o in outcomes):
        return None
    return notify.agent_answer(OutboundKind.AGENT_REPLY, ticket, job.agent, job.written.message, job.setup,
                               job.mail.attachments)


def new_ticket_notices(job: AgentMail, ticket: TicketView, drafts: list[OutboundDraft]) -> tuple[OutboundDraft, ...]:
    """The other agents hear of a ticket an agent opened (not the opener; not who is assigned anyway)."""
    if not job.setup.notify_agents_on_new:
        return ()
    told = {d.agent for d in drafts if d.kind is OutboundKind.AGENT_ASSIGNMENT}
    agents = tuple(a for a in notify.agents_for(ticket, job.setup) if a.email != job.agent.email
                   and a.email not in told)
    return notify.to_agents(OutboundKind.AGENT_NEW_TICKET, agents, job.mail, job.setup)


def _reason(ticket: TicketView, run: Run, relayed: bool) -> str:
    where = f"#{ticket.number}" if ticket.number else "a new ticket"
    names = " ".join(f"#{line.name}" for line, _ in run.done)
    if names:
        return f"agent commands on {where}: {names}" + ("; text relayed" if relayed else "")
    return f"agent reply on {where}" if relayed else f"agent mail on {where}: nothing to do"
