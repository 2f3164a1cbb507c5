"""The whole corpus through the real intake: each mail stored, ignored or quarantined with a
reason, never a crash; a classification each, and the 25 MB attachment through `postdesk ingest`."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.core.values import Verdict
from daemon.intake import Arrival, take_in_many
from daemon.store.models import Message, Ticket
from daemon.store.queries import attachment_content
from tests.harness import Site
from tests.mailfactory import NOW
from tests.mailgen import giant_attachment_mail, giant_attachment_sha256

MAIL_DIR = Path(__file__).resolve().parents[1] / "mail"
MANIFEST = tomllib.loads((MAIL_DIR / "MANIFEST.toml").read_text(encoding="utf-8"))


def test_every_corpus_mail_is_stored_ignored_or_quarantined_with_a_reason(tmp_path: Path, db_url: str) -> None:
    # the corpus's agent replies come from alice@example.com: here they are customers like any other
    app = Site(tmp_path, db_url, agents='[[agents]]\nemail = "agent@postdesk.example"\n').maildir().app()
    names = sorted(MANIFEST)
    try:
        results = take_in_many(app, [Arrival((MAIL_DIR / n).read_bytes(), "local", NOW) for n in names])
        verdicts = dict(zip(names, results, strict=True))
        assert len(verdicts) == len(names) >= 100
        for name, result in verdicts.items():
            assert result.verdict in (Verdict.STORED, Verdict.IGNORED, Verdict.QUARANTINED), name
            assert result.reason, name
        for name, entry in MANIFEST.items():
            kind, verdict = entry.get("kind"), verdicts[name].verdict
            if kind == "bounce":  # bounces never open a ticket
                assert verdict is not Verdict.STORED or verdicts[name].ticket_number is None, name
            if kind == "normal" and entry.get("from"):
                assert verdict is Verdict.STORED, (name, verdicts[name].reason)
        with app.db.read() as session:
            stored = {m.message_id: m for m in session.scalars(select(Message).where(Message.direction == "in"))}
        checked = 0
        for name, entry in MANIFEST.items():
            message = stored.get(entry.get("message_id", ""))
            if message is None or "subject" not in entry:
                continue
            assert message.subject == entry["subject"], name
            assert message.from_addr == entry.get("from", message.from_addr), name
            for piece in entry.get("new_text_contains", []):
                assert piece in message.new_text, (name, piece)
            checked += 1
        assert checked >= 60
    finally:
        app.close()


def test_a_25_mb_attachment_goes_through_postdesk_ingest(tmp_path: Path, sqlite_url: str) -> None:
    config = Site(tmp_path, sqlite_url).maildir().write()
    raw = giant_attachment_mail()
    result = subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), "ingest", "-"], input=raw,
                            capture_output=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), "tickets", "show", "1", "--json"],
                           capture_output=True, timeout=120, check=True)
    message = json.loads(shown.stdout)["messages"][0]
    big = max(message["attachments"], key=lambda a: a["size"])
    assert big["size"] == 25 * 1024 * 1024 and big["sha256"] == giant_attachment_sha256()
    assert big["omitted"] is False


@pytest.mark.parametrize("limit", ["1MB"])
def test_an_attachment_over_the_limit_is_replaced_by_a_note_and_the_mail_kept(tmp_path: Path, sqlite_url: str,
                                                                             limit: str) -> None:
    site = Site(tmp_path, sqlite_url, extra=f'[intake]\nmax_attachment_size = "{limit}"\n').maildir()
    app = site.app()
    try:
        result = take_in_many(app, [Arrival(giant_attachment_mail(3 * 1024 * 1024), "local", NOW)])[0]
        assert result.verdict is Verdict.STORED
        with app.db.read() as session:
            assert session.scalar(select(Ticket.number)) == 1
            message = session.scalar(select(Message).where(Message.direction == "in"))
            attachment = max(message.attachments, key=lambda a: a.size)
            assert attachment.blob_sha256 is None and "limit" in attachment.omitted_reason
            assert attachment_content(session, attachment) is None
    finally:
        app.close()
