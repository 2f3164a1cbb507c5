"""A mail's fingerprint: the same mail re-delivered with other trace headers is recognised,
and the fingerprint the parse worker works out is the one intake uses."""

from __future__ import annotations

from dataclasses import replace

from daemon.config import IntakeConfig
from daemon.core.identity import fingerprint
from daemon.core.parse import parse
from daemon.parsing import job_for, parse_job
from tests.mailfactory import NOW, raw_mail


def test_trace_headers_added_on_the_way_leave_the_fingerprint_alone() -> None:
    raw = raw_mail(message_id="<same@customer.example>")
    relayed = b"Received: from mx2.example.com by mx1.example.com; Mon, 23 Nov 2026 09:00:01 +0000\r\n" + raw
    assert fingerprint(raw, parse(raw, received_at=NOW)) == fingerprint(relayed, parse(relayed, received_at=NOW))
    other = raw_mail(message_id="<other@customer.example>")
    assert fingerprint(other, parse(other, received_at=NOW)) != fingerprint(raw, parse(raw, received_at=NOW))


def test_the_parse_worker_s_fingerprint_is_the_one_intake_works_out_and_then_reuses() -> None:
    raw = raw_mail()
    mail = parse_job(job_for(raw, NOW, IntakeConfig()))
    assert not isinstance(mail, str)
    assert mail.fingerprint == fingerprint(raw, parse(raw, received_at=NOW))
    assert fingerprint(raw, mail) == mail.fingerprint
    assert fingerprint(raw, replace(mail, fingerprint="carried")) == "carried"  # not worked out again
