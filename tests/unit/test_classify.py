"""Classification and RFC 3834: never answer automatic mail."""

from __future__ import annotations

import pytest

from daemon.core.classify import classify
from daemon.core.values import AgentView, MailboxView, Nature, Role, Setup
from tests.mailfactory import inbound

SETUP = Setup(secret=b"s" * 20, domain="example.com", mailboxes=(MailboxView("help", "help@example.com"),),
              agents=(AgentView("alice@example.com", "Alice", aliases=("a.smith@example.com",)),))


@pytest.mark.parametrize(("headers", "sender", "nature", "reason"), [
    ({"Auto-Submitted": "auto-replied"}, "olena@customer.example", Nature.AUTO_REPLY, "Auto-Submitted: auto-replied"),
    ({"Auto-Submitted": "auto-generated"}, "monitor@customer.example", Nature.MACHINE, "Auto-Submitted"),
    ({"Precedence": "bulk"}, "news@vendor.example", Nature.BULK, "Precedence: bulk"),
    ({"Precedence": "junk"}, "news@vendor.example", Nature.BULK, "Precedence: junk"),
    ({"List-Id": "<users.lists.example>"}, "someone@lists.example", Nature.LIST, "List-Id header"),
    ({"List-Unsubscribe": "<mailto:x@vendor.example>"}, "news@vendor.example", Nature.BULK, "List-Unsubscribe"),
    ({"X-Auto-Response-Suppress": "All"}, "olena@customer.example", Nature.NORMAL, "X-Auto-Response-Suppress"),
    ({"Return-Path": "<>"}, "olena@customer.example", Nature.NORMAL, "empty Return-Path"),
    ({}, "noreply@shop.example", Nature.MACHINE, "machine sender"),
    ({}, "MAILER-DAEMON@mx.example", Nature.MACHINE, "machine sender"),
    ({"X-Autoreply": "yes"}, "olena@customer.example", Nature.AUTO_REPLY, ""),
])
def test_automatic_mail_is_never_answered(headers: dict[str, str], sender: str, nature: Nature, reason: str) -> None:
    who = classify(inbound(sender=sender, headers=headers), SETUP)
    assert who.nature is nature
    assert who.no_auto_answer, "an automatic mail must never be answered"
    assert any(reason in r for r in who.no_auto_answer)


def test_ordinary_customer_mail_may_be_answered() -> None:
    who = classify(inbound(), SETUP)
    assert (who.role, who.nature, who.no_auto_answer) == (Role.CUSTOMER, Nature.NORMAL, ())


def test_auto_submitted_no_is_a_person() -> None:
    assert classify(inbound(headers={"Auto-Submitted": "no"}), SETUP).no_auto_answer == ()


def test_agents_by_address_and_alias() -> None:
    assert classify(inbound(sender="Alice <ALICE@example.com>"), SETUP).role is Role.AGENT
    assert classify(inbound(sender="a.smith@example.com"), SETUP).agent.email == "alice@example.com"


def test_own_mail_and_own_loop_header_are_loops() -> None:
    assert classify(inbound(sender="help@example.com"), SETUP).role is Role.SELF
    who = classify(inbound(headers={"X-Postdesk-Loop": "example.com"}), SETUP)
    assert who.role is Role.SELF and "X-Postdesk-Loop" in who.loop
    assert classify(inbound(headers={"X-Postdesk-Loop": "other.example"}), SETUP).role is Role.CUSTOMER


def test_exchange_out_of_office_by_subject_and_suppress_header() -> None:
    mail = inbound(subject="Automatic reply: Printer", headers={"X-Auto-Response-Suppress": "All"})
    assert classify(mail, SETUP).nature is Nature.AUTO_REPLY


def test_a_customer_subject_mentioning_automatic_reply_is_not_an_auto_reply() -> None:
    assert classify(inbound(subject="Automatic reply feature broken"), SETUP).nature is Nature.NORMAL
