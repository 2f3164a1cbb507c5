"""Agents' inline commands through `decide()`: every command's success and its error message,
all or nothing, what reaches the customer, and who may run commands at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from daemon.core import thread, tokens
from daemon.core.commands import REGISTRY, CommandError, Context, Outcome, command, help_text
from daemon.core.commands.parse import split_commands
from daemon.core.decide import decide
from daemon.core.priority import priority_for
from daemon.core.values import (
    Address,
    AgentView,
    Decision,
    Facts,
    InboundMail,
    Level,
    LinkRef,
    MailboxView,
    OutboundDraft,
    OutboundKind,
    Priority,
    Setup,
    Status,
    TicketView,
    Verdict,
    Visibility,
)
from tests.mailfactory import NOW, inbound

SECRET = b"s" * 20
ALICE = AgentView("alice@example.com", "Alice Smith", ("l1",))
BOB = AgentView("bob@example.com", "Bob Builder", ("l2",))
CAROL = AgentView("carol@example.com", "Carol", ("l1",))
SETUP = Setup(secret=SECRET, domain="example.com", subject_prefix="Support",
              mailboxes=(MailboxView("help", "help@example.com"),), agents=(ALICE, BOB, CAROL),
              trusted_authserv_ids=("mx.example.com",))
OLENA = Address("olena@customer.example", "Olena Petrenko")
PETRO = Address("petro@customer.example", "Petro")


def ticket(status: Status = Status.OPEN, number: int = 7, **fields: Any) -> TicketView:
    base = TicketView(number=number, subject="Printer", status=status, requester=OLENA,
                      created_at=NOW - timedelta(days=3), status_changed_at=NOW - timedelta(days=1))
    return replace(base, **fields)


def notification_id(number: int = 7, agent: str = "alice@example.com") -> str:
    """The Message-ID of a notification Postdesk sent to `agent` about ticket `number`."""
    return tokens.make_message_id(SECRET, "example.com", number, "seed", agent)


def agent_mail(body: str, number: int = 7, sender: str = "Alice Smith <alice@example.com>", token: bool = True,
               headers: dict[str, str] | None = None, **kwargs: Any) -> InboundMail:
    extra = dict(headers or {})
    if token:
        extra["In-Reply-To"] = f"<{notification_id(number)}>"
        extra["References"] = f"<{notification_id(number)}>"
    return inbound(sender=sender, subject=f"Re: [Support #{number}] Printer", body=body,
                   message_id="<a1@example.com>", headers=extra, **kwargs)


def run(body: str, current: TicketView | None = None, others: tuple[TicketView, ...] = (), setup: Setup = SETUP,
        **kwargs: Any) -> Decision:
    current = current or ticket()
    mail = agent_mail(body, number=current.number, **kwargs)
    return decide(mail, Facts(tickets=(current, *others)), setup, "help", NOW)


CUSTOMERS = {OLENA.email, PETRO.email, "kateryna@customer.example"}


def to_customer(decision: Decision) -> list[OutboundDraft]:
    """Drafts that reach a customer (by address: `OutboundKind.to_agents` counts AGENT_REPLY as an agent kind)."""
    return [d for d in decision.drafts if {a.email for a in (*d.to, *d.cc)} & CUSTOMERS]


def kinds(decision: Decision) -> list[OutboundKind]:
    return [d.kind for d in decision.drafts]


def variable(decision: Decision, kind: OutboundKind, name: str) -> str:
    draft = next(d for d in decision.drafts if d.kind is kind)
    return dict(draft.variables)[name]


def results(decision: Decision) -> str:
    return variable(decision, OutboundKind.COMMAND_RESULT, "results")


def error(decision: Decision) -> str:
    return variable(decision, OutboundKind.COMMAND_ERROR, "error")


# ----------------------------------------------------------------------------------------
# Every command: success

Check = Callable[[Decision], bool]
T8 = ticket(number=8, subject="Same printer")
CLOSED_YESTERDAY = ticket(Status.CLOSED, closed_at=NOW - timedelta(days=1))


def drafted(kind: OutboundKind, to: str) -> Check:
    return lambda d: any(x.kind is kind and to in {a.email for a in x.to} for x in d.drafts)


SUCCESS: list[tuple[str, str, TicketView, tuple[TicketView, ...], Check]] = [
    ("resolve", "#resolve\n\nRestart the spooler.", ticket(), (),
     lambda d: d.ticket.status is Status.RESOLVED and variable(d, OutboundKind.RESOLUTION, "text")
     == "Restart the spooler." and d.ticket.resolved_at == NOW),
    ("resolve-code", "#resolve workaround\n\nUse tray 2.", ticket(), (),
     lambda d: d.ticket.resolution_code == "workaround"),
    ("close", "#close", ticket(), (), lambda d: d.ticket.status is Status.CLOSED and d.ticket.closed_at == NOW),
    ("reopen-resolved", "#reopen", ticket(Status.RESOLVED, resolved_at=NOW), (),
     lambda d: d.ticket.status is Status.OPEN and d.ticket.resolved_at is None),
    ("reopen-closed-recently", "#reopen", CLOSED_YESTERDAY, (), lambda d: d.ticket.status is Status.OPEN),
    ("cancel", "#CANCEL", ticket(), (), lambda d: d.ticket.status is Status.CANCELLED),
    ("assign-address", "#assign bob@example.com", ticket(), (),
     lambda d: d.ticket.owner == "bob@example.com" and drafted(OutboundKind.AGENT_ASSIGNMENT, "bob@example.com")(d)),
    ("assign-name", "#assign Bob Builder", ticket(), (), lambda d: d.ticket.owner == "bob@example.com"),
    ("assign-local-part", "#assign bob", ticket(), (), lambda d: d.ticket.owner == "bob@example.com"),
    ("assign-self-not-told", "#assign alice", ticket(), (),
     lambda d: d.ticket.owner == "alice@example.com" and OutboundKind.AGENT_ASSIGNMENT not in kinds(d)),
    ("assign-group", "#assign L2", ticket(owner="alice@example.com"), (),
     lambda d: d.ticket.group == "l2" and d.ticket.owner is None
     and drafted(OutboundKind.AGENT_ASSIGNMENT, "bob@example.com")(d)),
    ("take", "#take", ticket(owner="bob@example.com"), (), lambda d: d.ticket.owner == "alice@example.com"),
    ("priority", "#priority High", ticket(), (),
     lambda d: d.ticket.priority is Priority.HIGH and d.ticket.priority_locked),
    ("priority-auto", "#priority auto", ticket(priority=Priority.LOW, priority_locked=True, impact=Level.HIGH), (),
     lambda d: d.ticket.priority is Priority.HIGH and not d.ticket.priority_locked),
    ("impact", "#impact high", ticket(), (),
     lambda d: d.ticket.impact is Level.HIGH and d.ticket.priority is Priority.HIGH),
    ("impact-locked", "#impact high", ticket(priority=Priority.LOW, priority_locked=True), (),
     lambda d: d.ticket.impact is Level.HIGH and d.ticket.priority is Priority.LOW),
    ("urgency", "#urgency low", ticket(), (),
     lambda d: d.ticket.urgency is Level.LOW and d.ticket.priority is Priority.LOW),
    ("type", "#type question", ticket(), (), lambda d: d.ticket.type == "question"),
    ("type-hyphen", "#type feature-request", ticket(), (), lambda d: d.ticket.type == "feature_request"),
    ("category", "#category Printers / floor 2", ticket(), (), lambda d: d.ticket.category == "Printers / floor 2"),
    ("tag", "#tag VIP, printer", ticket(tags=("old",)), (), lambda d: d.ticket.tags == ("old", "vip", "printer")),
    ("untag", "#untag vip", ticket(tags=("vip", "printer")), (), lambda d: d.ticket.tags == ("printer",)),
    ("wait", "#wait\n\nWhich model is it?", ticket(), (),
     lambda d: d.ticket.status is Status.WAITING_CUSTOMER
     and variable(d, OutboundKind.INFO_REQUEST, "text") == "Which model is it?"),
    ("third-party-name", "#third-party Acme Printers", ticket(), (),
     lambda d: d.ticket.status is Status.WAITING_THIRD_PARTY and d.ticket.third_party == "Acme Printers"
     and not to_customer(d) and OutboundKind.THIRD_PARTY not in kinds(d)),
    ("third-party-address", "#third_party Acme <support@acme.example>\n\nFirmware 2.1 crashes.", ticket(), (),
     lambda d: drafted(OutboundKind.THIRD_PARTY, "support@acme.example")(d) and not to_customer(d)
     and variable(d, OutboundKind.THIRD_PARTY, "text") == "Firmware 2.1 crashes."),
    ("received", "#received", ticket(Status.WAITING_THIRD_PARTY, third_party="Acme"), (),
     lambda d: d.ticket.status is Status.OPEN
     and any(dict(e.detail).get("why") == "received from third party (Acme)" for e in d.events)),
    ("note", "#note\n\nCustomer sounds angry.", ticket(), (),
     lambda d: not to_customer(d) and d.message.kind == "note" and d.message.visibility is Visibility.INTERNAL),
    ("cc", "#cc petro@customer.example", ticket(), (), lambda d: [a.email for a in d.ticket.cc] == [PETRO.email]),
    ("uncc", "#uncc <PETRO@customer.example>", ticket(cc=(PETRO,)), (), lambda d: d.ticket.cc == ()),
    ("merge", "#merge #8", ticket(), (T8,),
     lambda d: d.merge_into == 8 and d.ticket.merged_into == 8 and d.ticket.status is Status.CLOSED),
    ("escalate", "#escalate customer is a hospital", ticket(group="l1"), (),
     lambda d: "escalated" in d.ticket.tags and drafted(OutboundKind.ESCALATION, "carol@example.com")(d)
     and not drafted(OutboundKind.ESCALATION, "alice@example.com")(d)
     and variable(d, OutboundKind.ESCALATION, "reason") == "customer is a hospital"),
    ("link-ticket", "#link ticket 8", ticket(), (T8,), lambda d: d.ticket.links == (LinkRef("ticket", "8"),)),
    ("link-hash", "#link #8", ticket(), (T8,), lambda d: d.ticket.links == (LinkRef("ticket", "8"),)),
    ("link-change", "#link CR-1234", ticket(), (), lambda d: d.ticket.links == (LinkRef("change", "CR-1234"),)),
    ("link-change-word", "#link change CHG0042", ticket(), (),
     lambda d: d.ticket.links == (LinkRef("change", "CHG0042"),)),
    ("link-defect", "#link defect DR-77", ticket(), (), lambda d: d.ticket.links == (LinkRef("defect", "DR-77"),)),
    ("status", "#status", ticket(owner="bob@example.com", tags=("vip",)), (),
     lambda d: "owner:" in results(d) and "bob@example.com" in results(d) and "status:" in results(d)),
    ("help", "#help", ticket(), (), lambda d: all(f"#{name}" in results(d) for name in REGISTRY)),
]


@pytest.mark.parametrize(("body", "current", "others", "check"), [case[1:] for case in SUCCESS],
                         ids=[case[0] for case in SUCCESS])
def test_command_succeeds(body: str, current: TicketView, others: tuple[TicketView, ...], check: Check) -> None:
    setup = replace(SETUP, resolution_codes=("fixed", "workaround")) if "code" in body else SETUP
    decision = run(body, current, others, setup)
    assert decision.verdict is Verdict.STORED
    assert OutboundKind.COMMAND_ERROR not in kinds(decision), error(decision)
    assert OutboundKind.COMMAND_RESULT in kinds(decision)
    assert check(decision)
    assert all(e.actor == "alice@example.com" for e in decision.events)


def test_every_registered_command_has_a_success_and_an_error_case() -> None:
    succeeded = {case[1].split()[0].lstrip("#").lower().replace("_", "-") for case in SUCCESS} | {"new"}
    failed = {case[1].split()[0].lstrip("#").lower() for case in ERRORS} | {"new"}
    assert succeeded >= set(REGISTRY) and failed >= set(REGISTRY)


# ----------------------------------------------------------------------------------------
# Every command: its error message

ERRORS: list[tuple[str, str, TicketView, tuple[TicketView, ...], str]] = [
    ("resolve-no-text", "#resolve", ticket(), (), "#resolve needs the resolution"),
    ("resolve-bad-code", "#resolve fixd\n\nDone.", ticket(), (),
     "'fixd' is not a valid resolution code; use one of: fixed, workaround"),
    ("resolve-resolved", "#resolve\n\nDone.", ticket(Status.RESOLVED), (), "ticket #7 is already resolved"),
    ("close-arguments", "#close now", ticket(), (), "#close takes no arguments (got 'now')"),
    ("close-closed", "#close", ticket(Status.CLOSED, closed_at=NOW), (),
     "ticket #7 is closed and can no longer be changed"),
    ("reopen-open", "#reopen", ticket(), (), "ticket #7 is open; only a resolved or closed ticket can be reopened"),
    ("reopen-closed-long-ago", "#reopen", ticket(Status.CLOSED, closed_at=NOW - timedelta(days=30)), (),
     "more than 14 days ago"),
    ("reopen-cancelled", "#reopen", ticket(Status.CANCELLED, closed_at=NOW), (), "ticket #7 is cancelled; only a"),
    ("cancel-cancelled", "#cancel", ticket(Status.CANCELLED, closed_at=NOW), (), "can no longer be changed"),
    ("assign-unknown", "#assign dave", ticket(), (),
     "no agent or group 'dave'; agents: alice@example.com, bob@example.com, carol@example.com; groups: l1, l2"),
    ("assign-nothing", "#assign", ticket(), (), "#assign needs an agent or a group"),
    ("take-arguments", "#take bob", ticket(), (), "#take takes no arguments"),
    ("priority-bad", "#priority extreme", ticket(), (),
     "'extreme' is not a valid priority; use one of: urgent, high, medium, low, auto"),
    ("impact-bad", "#impact huge", ticket(), (), "'huge' is not a valid impact; use one of: high, medium, low"),
    ("urgency-missing", "#urgency", ticket(), (), "'nothing' is not a valid urgency"),
    ("type-bad", "#type complaint", ticket(), (), "'complaint' is not a valid ticket type; use one of: incident"),
    ("category-empty", "#category", ticket(), (), "#category needs a category"),
    ("tag-empty", "#tag", ticket(), (), "#tag needs at least one tag"),
    ("tag-bad", "#tag <script>", ticket(), (), "'<script>' is not a tag"),
    ("untag-missing", "#untag vip", ticket(tags=("printer",)), (), "ticket #7 has no tag vip (its tags: printer)"),
    ("wait-no-text", "#wait", ticket(), (), "#wait needs the question for the customer"),
    ("wait-resolved", "#wait\n\nWhich model?", ticket(Status.RESOLVED), (),
     "ticket #7 is resolved; it cannot become waiting_customer"),
    ("third-party-nothing", "#third-party", ticket(), (), "#third-party needs the third party"),
    ("third-party-address-no-text", "#third-party support@acme.example", ticket(), (),
     "write the message for support@acme.example below the command lines"),
    ("received-open", "#received", ticket(), (), "ticket #7 is open, not waiting for a third party"),
    ("note-empty", "#note", ticket(), (), "#note needs the note"),
    ("cc-bad", "#cc petro", ticket(), (), "'petro' is not an email address"),
    ("cc-requester", "#cc olena@customer.example", ticket(), (), "olena@customer.example is the requester"),
    ("cc-agent", "#cc bob@example.com", ticket(), (), "bob@example.com is an agent"),
    ("uncc-absent", "#uncc petro@customer.example", ticket(), (), "petro@customer.example is not in copy"),
    ("merge-nothing", "#merge", ticket(), (), "#merge needs the number of the ticket"),
    ("merge-self", "#merge 7", ticket(), (), "a ticket cannot be merged into itself (#7)"),
    ("merge-missing", "#merge 99", ticket(), (), "there is no ticket #99"),
    ("merge-closed", "#merge 8", ticket(), (replace(T8, status=Status.CLOSED),),
     "ticket #8 is closed; merge into an active ticket"),
    ("escalate-closed", "#escalate", ticket(Status.CLOSED, closed_at=NOW), (), "can no longer be changed"),
    ("link-unclear", "#link something", ticket(), (), "cannot tell what 'something' is"),
    ("link-missing", "#link #99", ticket(), (), "there is no ticket #99"),
    ("link-self", "#link #7", ticket(), (), "a ticket cannot be linked to itself"),
    ("status-arguments", "#status please", ticket(), (), "#status takes no arguments"),
    ("help-arguments", "#help me", ticket(), (), "#help takes no arguments"),
    ("new-in-a-reply", "#new petro@customer.example", ticket(), (),
     "#new opens a ticket: send it in a new mail to the support address, not in a reply to ticket #7"),
    ("unknown", "#reslove\n\nFixed.", ticket(), (), "unknown command #reslove; did you mean #resolve?"),
    ("unknown-no-guess", "#frobnicate", ticket(), (), "unknown command #frobnicate; #help lists the commands"),
]


@pytest.mark.parametrize(("body", "current", "others", "message"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_command_error_changes_nothing_and_says_why(body: str, current: TicketView, others: tuple[TicketView, ...],
                                                    message: str) -> None:
    setup = replace(SETUP, resolution_codes=("fixed", "workaround"))
    decision = run(body, current, others, setup)
    assert decision.verdict is Verdict.STORED
    assert message in error(decision)
    assert decision.ticket == current and decision.merge_into is None
    assert kinds(decision) == [OutboundKind.COMMAND_ERROR]
    draft = decision.drafts[0]
    assert draft.to == (Address("alice@example.com", "Alice Smith"),) and draft.visibility is Visibility.INTERNAL
    assert variable(decision, OutboundKind.COMMAND_ERROR, "line") == body.splitlines()[0]
    assert decision.events[0].kind == "command_error" and decision.events[0].actor == "alice@example.com"


def test_the_error_mail_lists_the_valid_forms() -> None:
    decision = run("#priority extreme")
    forms = variable(decision, OutboundKind.COMMAND_ERROR, "commands")
    assert "#priority urgent|high|medium|low|auto" in forms and "#resolve" not in forms
    unknown = variable(run("#reslove"), OutboundKind.COMMAND_ERROR, "commands")
    assert unknown == help_text(REGISTRY) and "#third-party NAME|ADDRESS" in unknown


# ----------------------------------------------------------------------------------------
# The mail as a whole


def test_all_or_nothing() -> None:
    decision = run("#assign bob\n#priority extreme\n#tag vip\n\nWe are on it.")
    assert decision.ticket == ticket() and kinds(decision) == [OutboundKind.COMMAND_ERROR]
    assert "'extreme' is not a valid priority" in error(decision)


def test_every_bad_line_is_named() -> None:
    text = error(run("#priority extreme\n#assign dave\n#close"))
    assert text.startswith("'extreme' is not a valid priority") and "#assign dave: no agent or group" in text


def test_the_customer_receives_only_the_resolution() -> None:
    decision = run("#assign bob\n#priority high\n#resolve\n\nThe toner was empty; we replaced it.")
    after = decision.ticket
    assert (after.owner, after.priority, after.status) == ("bob@example.com", Priority.HIGH, Status.RESOLVED)
    customer = to_customer(decision)
    assert [d.kind for d in customer] == [OutboundKind.RESOLUTION]
    resolution = customer[0]
    assert resolution.to == (OLENA,) and not resolution.auto and resolution.sender_name == "Alice Smith"
    assert dict(resolution.variables)["text"] == "The toner was empty; we replaced it."
    assert sorted(k.value for k in kinds(decision)) == ["agent_assignment", "command_result", "resolution"]
    lines = results(decision).splitlines()
    assert lines[0] == "owner: - → bob@example.com" and lines[1].startswith("priority: medium → high")
    assert after.first_response_at == NOW


def test_commands_only_send_nothing_to_the_customer() -> None:
    decision = run("#priority high\n#tag vip")
    assert to_customer(decision) == [] and kinds(decision) == [OutboundKind.COMMAND_RESULT]
    assert decision.message.visibility is Visibility.INTERNAL and decision.message.kind == "command"


def test_text_with_commands_is_relayed_once() -> None:
    decision = run("#priority high\n\nWe are looking at it.", current=ticket(cc=(PETRO,)))
    customer = to_customer(decision)
    assert [d.kind for d in customer] == [OutboundKind.AGENT_REPLY]
    assert customer[0].to == (OLENA,) and customer[0].cc == (PETRO,)
    assert "your message was sent to olena@customer.example, petro@customer.example" in results(decision)


def test_text_without_commands_is_a_public_reply() -> None:
    decision = run("Hello Olena,\n\nplease restart the printer.\n", current=ticket(Status.NEW, cc=(PETRO,)))
    assert kinds(decision) == [OutboundKind.AGENT_REPLY]
    reply = decision.drafts[0]
    assert reply.to == (OLENA,) and reply.cc == (PETRO,) and not reply.auto
    assert reply.sender_name == "Alice Smith" and reply.visibility is Visibility.PUBLIC
    assert dict(reply.variables)["text"].startswith("Hello Olena,")
    assert decision.ticket.status is Status.OPEN and decision.ticket.first_response_at == NOW
    assert [e.kind for e in decision.events] == ["reply", "status"]


def test_attachments_are_carried_over() -> None:
    raw_body = "See the attached manual."
    mail = agent_mail(raw_body)
    from daemon.core.values import Attachment
    manual = Attachment("manual.pdf", "application/pdf", 3, "0" * 64, b"pdf")
    decision = decide(replace(mail, attachments=(manual,)), Facts(tickets=(ticket(),)), SETUP, "help", NOW)
    assert decision.drafts[0].attachments == (manual,)


def test_note_keeps_everything_internal() -> None:
    decision = run("#note\n#assign bob\n\nThe customer is the CEO; careful.")
    assert to_customer(decision) == [] and decision.ticket.owner == "bob@example.com"
    assert decision.message.kind == "note"
    assert any(e.kind == "note" for e in decision.events)


def test_note_with_a_command_that_mails_the_customer_is_an_error() -> None:
    decision = run("#note\n#resolve\n\nFixed.")
    assert "#note keeps the text internal, but #resolve sends it to the customer" in error(decision)
    assert decision.ticket == ticket()


def test_the_text_goes_out_with_one_command_only() -> None:
    decision = run("#third-party support@acme.example\n#wait\n\nWhich firmware?")
    assert "the text below can go out with one command only" in error(decision)


def test_command_names_are_case_insensitive_and_blank_lines_are_allowed() -> None:
    decision = run("\n#Priority HIGH\n\n#TAG vip\n\n")
    assert decision.ticket.priority is Priority.HIGH and decision.ticket.tags == ("vip",)


def test_hash_lines_further_down_are_text() -> None:
    decision = run("#tag vip\n\nThe fix:\n#close the valve first\n")
    assert decision.ticket.status is Status.OPEN and decision.ticket.tags == ("vip",)
    assert variable(decision, OutboundKind.AGENT_REPLY, "text") == "The fix:\n#close the valve first"


def test_split_commands() -> None:
    written = split_commands("  #assign bob  \n\n#Third_Party Acme\nHello\n#close\n\n")
    assert [(c.name, c.args) for c in written.commands] == [("assign", "bob"), ("third-party", "Acme")]
    assert written.message == "Hello\n#close"
    assert split_commands("#12 is related\n#close").commands == ()
    assert split_commands("").commands == () and split_commands("").message == ""


def test_first_agent_action_opens_a_new_ticket() -> None:
    assert run("#tag vip", current=ticket(Status.NEW)).ticket.status is Status.OPEN
    status_only = run("#status", current=ticket(Status.NEW))
    assert status_only.ticket.status is Status.NEW
    resolved = run("#resolve\n\nDone.", current=ticket(Status.NEW))
    assert resolved.ticket.status is Status.RESOLVED and resolved.ticket.first_response_at == NOW


def test_first_response_is_kept_once_set() -> None:
    earlier = NOW - timedelta(hours=5)
    assert run("Hello again.", current=ticket(first_response_at=earlier)).ticket.first_response_at == earlier
    assert run("#note\n\nInternal.").ticket.first_response_at is None


def test_closed_ticket_still_answers_status_help_and_note() -> None:
    closed = ticket(Status.CLOSED, closed_at=NOW - timedelta(days=40))
    for body in ("#status", "#help", "#note\n\nFor the record."):
        decision = run(body, current=closed)
        assert OutboundKind.COMMAND_RESULT in kinds(decision) and decision.ticket == closed
    refused = run("#status\n#tag vip", current=closed)
    assert "only #help, #note, #reopen, #status work" in error(refused)


def test_events_say_who_what_and_why() -> None:
    decision = run("#priority high")
    summary, change = decision.events
    assert summary.kind == "commands" and summary.as_dict()["lines"] == "#priority high"
    assert summary.as_dict()["authenticated"].startswith("signed reference")
    assert change.actor == "alice@example.com" and change.kind == "priority"
    assert change.as_dict() | {"why": ""} == {"from": "medium", "to": "high", "locked": "yes", "why": "",
                                              "command": "#priority high"}


def test_a_customer_writing_commands_is_just_text() -> None:
    mail = inbound(subject="Re: [Support #7] Printer", body="#close\n#priority urgent\n")
    decision = decide(mail, Facts(tickets=(ticket(),)), SETUP, "help", NOW)
    assert decision.ticket.status is Status.OPEN and decision.ticket.priority is Priority.MEDIUM
    assert OutboundKind.COMMAND_RESULT not in kinds(decision) and OutboundKind.COMMAND_ERROR not in kinds(decision)
    assert decision.message.kind == "customer"


def test_merge_and_link_numbers_are_looked_up_for_agents_only() -> None:
    assert thread.keys(agent_mail("#merge 8\n#link ticket 9\n#link CR-1"), SETUP).extra_numbers == (8, 9)
    customer = inbound(subject="Re: [Support #7] Printer", body="#merge 8\n")
    assert thread.keys(customer, SETUP).extra_numbers == ()


# ----------------------------------------------------------------------------------------
# The registry


def test_a_test_can_bring_its_own_registry() -> None:
    mine: dict[str, Any] = {}

    @command("ping", "#ping", "answer pong", registry=mine)
    def ping(context: Context, args: str) -> Outcome | CommandError:
        return Outcome(context.ticket, "pong")

    from daemon.core import agentmail
    from daemon.core.classify import classify
    mail = agent_mail("#ping")
    decision = agentmail.decide_agent_mail(mail, ticket(), classify(mail, SETUP), Facts(tickets=(ticket(),)),
                                           SETUP, NOW, registry=mine)
    assert results(decision) == "pong"
    assert "unknown command #close" in error(agentmail.decide_agent_mail(
        agent_mail("#close"), ticket(), classify(mail, SETUP), Facts(), SETUP, NOW, registry=mine))
    with pytest.raises(ValueError, match="registered twice"):
        command("ping", "#ping", "again", registry=mine)(ping)


def test_help_lines_come_from_the_registry() -> None:
    text = help_text(REGISTRY)
    assert len(text.splitlines()) == len(REGISTRY)
    assert all(REGISTRY[name].syntax in text and REGISTRY[name].help in text for name in REGISTRY)


def test_priority_matrix_default_and_override() -> None:
    H, M, L = Level.HIGH, Level.MEDIUM, Level.LOW
    expected = {(H, H): "urgent", (H, M): "high", (M, H): "high", (H, L): "medium", (L, H): "medium",
                (M, M): "medium", (M, L): "low", (L, M): "low", (L, L): "low"}
    assert {k: priority_for(*k, SETUP).value for k in expected} == expected
    custom = replace(SETUP, priority_matrix=(("low", "low", "medium"), ("bogus", "low", "high")))
    assert priority_for(L, L, custom) is Priority.MEDIUM and priority_for(H, H, custom) is Priority.URGENT
    assert run("#urgency low", current=ticket(urgency=Level.MEDIUM, impact=Level.LOW),
               setup=custom).ticket.priority is Priority.MEDIUM
