"""Threading: which ticket a mail belongs to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.core import thread
from daemon.core.values import Address, Facts, MailboxView, Setup, Status, ThreadKeys, TicketView
from tests.mailfactory import inbound

SETUP = Setup(secret=b"s" * 20, domain="example.com", subject_prefix="Support",
              mailboxes=(MailboxView("help", "help@example.com", ("support@example.com",)),))
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def ticket(number: int) -> TicketView:
    return TicketView(number=number, subject="x", status=Status.OPEN, requester=Address("olena@customer.example"),
                      created_at=T0, status_changed_at=T0)


@pytest.mark.parametrize(("subject", "number"), [
    ("Re: [Support #1234] Printer", 1234), ("AW: [Support #1234] Drucker", 1234), ("SV: Re: [support #7]", 7),
    ("[Support#1234] no space", 1234), ("(Support #1234) parentheses", 1234), ("Support #1234 no brackets", 1234),
    ("Ответ: [Support # 55] пробел", 55), ("Re: ［Support ＃88］ full width", 88), ("Printer on floor 2", None),
    ("[Other #1234] another desk", None), ("#1234 alone", None),
])
def test_subject_token_is_tolerant(subject: str, number: int | None) -> None:
    assert thread.subject_number(subject, "Support") == number


def test_prefix_with_spaces_and_regex_characters() -> None:
    assert thread.subject_number("Re: [IT Help+ #12]", "IT Help+") == 12


def test_plus_address_names_a_ticket() -> None:
    mail = inbound(to="support+1234@example.com")
    assert thread.address_number(mail, SETUP) == 1234
    assert thread.address_number(inbound(to="other+1234@example.com"), SETUP) is None
    assert thread.address_number(inbound(to="help+77-x@example.com"), SETUP) == 77


def test_referenced_ids_in_reply_to_first_then_references_newest_first() -> None:
    mail = inbound(headers={"In-Reply-To": "<c@x>", "References": "<a@x> <b@x> <c@x>"})
    assert thread.referenced_ids(mail) == ("c@x", "b@x", "a@x")


def test_match_prefers_references_then_subject_then_address() -> None:
    keys = ThreadKeys(message_ids=("m1@x",), subject_number=2, address_number=3)
    facts = Facts(ticket_by_message_id=(("m1@x", 1),), tickets=(ticket(1), ticket(2), ticket(3)))
    assert thread.match(keys, facts).number == 1
    facts = Facts(tickets=(ticket(2), ticket(3)))
    assert thread.match(keys, facts).how == "subject"
    assert thread.match(ThreadKeys((), None, 3), facts).how == "address"


def test_token_of_a_missing_ticket_starts_a_new_one_with_a_note() -> None:
    found = thread.match(ThreadKeys((), 999, None), Facts())
    assert found.number is None
    assert "#999, which does not exist" in found.note


def test_merged_ticket_is_followed() -> None:
    facts = Facts(tickets=(ticket(5),), merged=((4, 5),))
    assert thread.match(ThreadKeys((), 4, None), facts).number == 5
