"""Agent mail: who may run commands (signed references, trusted Authentication-Results), what an
unauthenticated mail does (nothing, and the agent is told), and `#new` tickets for customers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from daemon.core import agentmail, tokens
from daemon.core.decide import decide
from daemon.core.parse import parse
from daemon.core.values import Address, Facts, InboundMail, MailboxView, OutboundKind, Status, Verdict, Visibility
from tests.mailfactory import NOW, raw_mail
from tests.unit.test_commands import SETUP, agent_mail, kinds, notification_id, ticket, to_customer

TRUSTED_PASS = "mx.example.com; dkim=pass header.d=example.com header.s=sel; dmarc=pass header.from=example.com"


def forged(body: str, authentication_results: tuple[str, ...] = (), subject: str = "Re: [Support #7] Printer",
           to: str = "help@example.com", cc: str | None = None) -> InboundMail:
    """A mail From Alice with no token; its Authentication-Results headers top first, as a server adds them."""
    added = b"".join(f"Authentication-Results: {value}\r\n".encode() for value in authentication_results)
    raw = raw_mail(sender="Alice Smith <alice@example.com>", subject=subject, body=body, to=to, cc=cc,
                   message_id="<a2@example.com>")
    return parse(added + raw, received_at=NOW)


def decided(mail: InboundMail, facts: Facts | None = None):  # type: ignore[no-untyped-def]
    return decide(mail, facts if facts is not None else Facts(tickets=(ticket(),)), SETUP, "help", NOW)


# ----------------------------------------------------------------------------------------
# Who is let in

UNAUTHENTICATED = {
    "forged From, no token": forged("#close\n\nAll done."),
    "token of another agent": agent_mail("#close", token=False, headers={
        "In-Reply-To": f"<{notification_id(7, 'bob@example.com')}>"}),
    "token of another ticket": agent_mail("#close", headers={"References": f"<{notification_id(8)}>"}, token=False),
    "token with a forged signature": agent_mail("#close", headers={
        "In-Reply-To": "<" + notification_id(7).split("@")[0].rsplit(".", 1)[0] + ".aaaaaaaaaaaaaaaa@example.com>"},
        token=False),
    "token of another instance": agent_mail("#close", headers={"In-Reply-To": "<" + tokens.make_message_id(
        b"other-secret-0123456789", "example.com", 7, "seed", "alice@example.com") + ">"}, token=False),
    "Authentication-Results from an untrusted server": forged("#close", (
        "mx.attacker.example; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",)),
    "a trusted one lower than an untrusted one": forged("#close", (
        "mx.elsewhere.example; dkim=none", TRUSTED_PASS)),
    "a trusted one lower than the trusted server's own": forged("#close", (
        "mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com", TRUSTED_PASS)),
    "dkim=pass for another domain": forged("#close", (
        "mx.example.com; dkim=pass header.d=attacker.example; dmarc=fail header.from=example.com",)),
    "dmarc=pass for another domain": forged("#close", ("mx.example.com; dmarc=pass header.from=attacker.example",)),
    "spf=pass only": forged("#close", ("mx.example.com; spf=pass smtp.mailfrom=alice@example.com",)),
}


@pytest.mark.parametrize("mail", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
def test_unauthenticated_agent_mail_changes_nothing_and_reaches_no_customer(mail: InboundMail) -> None:
    decision = decided(mail)
    assert decision.verdict is Verdict.STORED
    assert decision.ticket == ticket() and decision.before == ticket() and decision.merge_into is None
    assert to_customer(decision) == [] and kinds(decision) == [OutboundKind.COMMAND_ERROR]
    notice = decision.drafts[0]
    assert notice.to == (Address("alice@example.com", "Alice Smith"),) and notice.agent == "alice@example.com"
    assert "nothing was run or sent to the customer" in dict(notice.variables)["error"]
    assert decision.message.visibility is Visibility.INTERNAL and decision.message.kind == "unauthenticated"
    assert [e.kind for e in decision.events] == ["unauthenticated"]


def test_an_unauthenticated_reply_is_not_relayed() -> None:
    decision = decided(forged("Dear customer, please send us your password."))
    assert to_customer(decision) == [] and decision.ticket == ticket()


def test_the_agent_is_told_what_was_missing() -> None:
    error = dict(decided(forged("#close", ("mx.attacker.example; dkim=pass header.d=example.com",))).drafts[0]
                 .variables)["error"]
    assert "mx.attacker.example, which is not a trusted server" in error


AUTHENTICATED = {
    "signed reference in In-Reply-To": agent_mail("#close"),
    "signed reference deep in References": agent_mail("#close", token=False, headers={
        "References": f"<x@y> <{notification_id(7)}> <z@y>"}),
    "trusted DKIM pass": forged("#close", ("mx.example.com; dkim=pass header.d=example.com",)),
    "trusted DMARC pass": forged("#close", (
        "MX.Example.com 1; dkim=fail; dmarc=pass (p=reject) header.from=example.com",)),
    "trusted header above an untrusted one": forged("#close", (TRUSTED_PASS, "mx.elsewhere.example; none")),
}


@pytest.mark.parametrize("mail", AUTHENTICATED.values(), ids=AUTHENTICATED.keys())
def test_authenticated_agent_mail_runs(mail: InboundMail) -> None:
    decision = decided(mail)
    assert decision.ticket.status is Status.CLOSED and OutboundKind.COMMAND_RESULT in kinds(decision)


def test_a_token_of_a_ticket_since_merged_still_counts() -> None:
    mail = agent_mail("#tag vip", number=5)
    decision = decided(mail, Facts(tickets=(ticket(),), merged=((5, 7),)))
    assert decision.ticket.number == 7 and decision.ticket.tags == ("vip",)


def test_a_dkim_signature_of_the_parent_domain_counts() -> None:
    setup = replace(SETUP, agents=(*SETUP.agents, replace(SETUP.agents[0], email="ann@eu.example.com", name="Ann")))
    mail = parse(b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n" + raw_mail(
        sender="ann@eu.example.com", subject="Re: [Support #7] x", body="#take\n"), received_at=NOW)
    decision = decide(mail, Facts(tickets=(ticket(),)), setup, "help", NOW)
    assert decision.ticket.owner == "ann@eu.example.com"


# ----------------------------------------------------------------------------------------
# #new: a ticket on a customer's behalf

PHONE_CALL = ("#new Kateryna Bondar <kateryna@customer.example>\n#priority high\n#assign bob\n\n"
              "Kateryna called: the VPN drops every five minutes.\n")


def test_new_opens_a_ticket_for_the_customer() -> None:
    mail = forged(PHONE_CALL, (TRUSTED_PASS,), subject="Phone call: VPN drops", cc="Petro <petro@customer.example>")
    decision = decided(mail, Facts())
    assert decision.verdict is Verdict.STORED and decision.creates_ticket and decision.before is None
    created = decision.ticket
    assert created.requester == Address("kateryna@customer.example", "Kateryna Bondar")
    assert created.subject == "Phone call: VPN drops" and created.status is Status.OPEN
    assert (created.owner, created.priority.value) == ("bob@example.com", "high")
    assert [a.email for a in created.cc] == ["petro@customer.example"] and created.mailbox == "help"
    assert sorted(k.value for k in kinds(decision)) == ["acknowledgement", "agent_assignment", "command_result"]
    ack = next(d for d in decision.drafts if d.kind is OutboundKind.ACKNOWLEDGEMENT)
    assert ack.to == (created.requester,)
    assert [d.kind for d in to_customer(decision)] == [OutboundKind.ACKNOWLEDGEMENT]  # the text is not relayed
    assert created.first_response_at is None
    assert any(e.kind == "created" and e.as_dict()["requester"] == "kateryna@customer.example"
               for e in decision.events)
    assert all(e.actor == "alice@example.com" for e in decision.events)


def test_new_tells_the_other_agents_when_nobody_is_assigned() -> None:
    decision = decided(forged("#new kateryna@customer.example\n\nCalled about the VPN.", (TRUSTED_PASS,),
                              subject="VPN"), Facts())
    told = sorted(d.to[0].email for d in decision.drafts if d.kind is OutboundKind.AGENT_NEW_TICKET)
    assert told == ["bob@example.com", "carol@example.com"]


def test_new_picks_the_mailbox_it_was_sent_to() -> None:
    setup = replace(SETUP, mailboxes=(MailboxView("help", "help@example.com"), MailboxView("it", "it@example.com")))
    mail = forged("#new kateryna@customer.example", (TRUSTED_PASS,), subject="VPN", to="it@example.com")
    assert decide(mail, Facts(), setup, "help", NOW).ticket.mailbox == "it"


@pytest.mark.parametrize(("body", "headers", "reason"), [
    (PHONE_CALL, (), "#new from agent alice@example.com is not authenticated: the mail carries no "
                     "Authentication-Results header"),
    (PHONE_CALL, ("mx.attacker.example; dkim=pass header.d=example.com",), "is not a trusted server"),
    ("#new kateryna\n\nCalled.", (TRUSTED_PASS,), "#new kateryna: #new needs the customer's address"),
    ("#new bob@example.com", (TRUSTED_PASS,), "bob@example.com is an agent"),
    ("#new help@example.com", (TRUSTED_PASS,), "help@example.com is our address"),
    ("#new a@customer.example\n#new b@customer.example", (TRUSTED_PASS,), "#new can open one ticket per mail"),
    ("#new a@customer.example\n#priority extreme", (TRUSTED_PASS,), "'extreme' is not a valid priority"),
    ("#priority high\n\nHello", (TRUSTED_PASS,), "names no ticket; to open one for a customer, write #new"),
    ("Hello, my own laptop is broken.", (TRUSTED_PASS,), "names no ticket"),
])
def test_a_new_ticket_mail_that_cannot_be_applied_is_quarantined(body: str, headers: tuple[str, ...],
                                                                  reason: str) -> None:
    decision = decided(forged(body, headers, subject="VPN"), Facts())
    assert decision.verdict is Verdict.QUARANTINED and decision.ticket is None
    assert reason in decision.reason


def test_mailbox_of_falls_back_to_the_first_mailbox() -> None:
    mail = forged("x", to="someone@elsewhere.example")
    assert agentmail.mailbox_of(mail, SETUP) == "help"
    assert agentmail.mailbox_of(mail, replace(SETUP, mailboxes=())) == ""


def test_the_first_version_signature_is_kept() -> None:
    """decide.py calls decide_agent_mail(mail, ticket, who, facts, setup, now)."""
    from daemon.core.classify import classify
    mail = agent_mail("#take")
    decision = agentmail.decide_agent_mail(mail, ticket(), classify(mail, SETUP), Facts(tickets=(ticket(),)),
                                           SETUP, NOW)
    assert decision.ticket.owner == "alice@example.com"
