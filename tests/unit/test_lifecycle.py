"""The status machine and the thanks detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.core import lifecycle
from daemon.core.values import Address, Status, TicketView

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def ticket(status: Status) -> TicketView:
    return TicketView(number=1, subject="x", status=status, requester=Address("c@x.example"), created_at=T0,
                      status_changed_at=T0)


@pytest.mark.parametrize(("current", "wanted", "allowed"), [
    (Status.NEW, Status.OPEN, True), (Status.OPEN, Status.WAITING_CUSTOMER, True),
    (Status.WAITING_CUSTOMER, Status.OPEN, True), (Status.OPEN, Status.RESOLVED, True),
    (Status.RESOLVED, Status.OPEN, True), (Status.RESOLVED, Status.CLOSED, True), (Status.CLOSED, Status.OPEN, False),
    (Status.CANCELLED, Status.OPEN, False), (Status.OPEN, Status.NEW, False), (Status.RESOLVED, Status.WAITING_CUSTOMER,
                                                                                 False),
])
def test_transitions(current: Status, wanted: Status, allowed: bool) -> None:
    assert lifecycle.can_change(current, wanted) is allowed


def test_timestamps_follow_the_status() -> None:
    now = T0 + timedelta(hours=2)
    resolved = lifecycle.with_status(ticket(Status.OPEN), Status.RESOLVED, now)
    assert resolved.resolved_at == now and resolved.status_changed_at == now
    closed = lifecycle.with_status(resolved, Status.CLOSED, now + timedelta(days=1))
    assert closed.closed_at == now + timedelta(days=1) and closed.resolved_at == now
    reopened = lifecycle.with_status(resolved, Status.OPEN, now)
    assert reopened.resolved_at is None


def test_reopen_window() -> None:
    closed = lifecycle.with_status(ticket(Status.RESOLVED), Status.CLOSED, T0)
    assert lifecycle.reopen_closed_allowed(closed, 14, T0 + timedelta(days=13))
    assert not lifecycle.reopen_closed_allowed(closed, 14, T0 + timedelta(days=15))


@pytest.mark.parametrize("text", ["Thanks, that fixed it!", "Thank you very much.\n\nOlena", "Дякую, все працює",
                                  "Спасибо, всё работает", "Danke, funktioniert jetzt", "Merci, ça marche",
                                  "谢谢！", "ありがとうございます。", "Works now, you can close it. Cheers"])
def test_thanks(text: str) -> None:
    assert lifecycle.is_thanks(text) is not None


@pytest.mark.parametrize("text", ["Thanks, but it still does not print", "It broke again", "Дякую, але не працює",
                                  "Danke, aber es geht nicht", "Thanks. Could you also check the scanner?", "",
                                  "Thanks! " + "Here is a long description of a new problem. " * 5])
def test_not_thanks(text: str) -> None:
    assert lifecycle.is_thanks(text) is None


def test_extra_phrases() -> None:
    assert lifecycle.is_thanks("kiitos") is None
    assert lifecycle.is_thanks("kiitos", ("kiitos",)) == "kiitos"


def test_thanks_with_a_signature_that_has_no_delimiter() -> None:
    text = ("Thanks, that fixed it!\n\nBest regards,\nOlena Petrenko\nHead of Accounting\nCustomer Ltd.\n"
            "Phone +380 44 123 45 67\nhttps://customer.example\nThis e-mail is confidential.")
    assert lifecycle.is_thanks(text) is not None


def test_works_again_is_thanks() -> None:
    assert lifecycle.is_thanks("Thanks, it works again!") is not None
