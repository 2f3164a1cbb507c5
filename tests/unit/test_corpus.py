"""The corpus in tests/mail/: every MANIFEST.toml expectation, checked against `parse`.

`kind` and `ticket_token` belong to later stages and are not checked here; `source` is a
note. Any other key the test does not know fails, so a new expectation is never silently
ignored.
"""

from __future__ import annotations

import base64
import time
import tomllib
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.core.parse import parse
from daemon.core.values import Attachment, InboundMail

MAIL_DIR = Path(__file__).resolve().parent.parent / "mail"
MANIFEST = MAIL_DIR / "MANIFEST.toml"
RECEIVED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOT_CHECKED_HERE = {"kind", "ticket_token", "source"}

# Entries where the manifest and the brief disagree; reported, not edited. Strict xfail:
# when the manifest is corrected the test passes and this line must go.
DISAGREEMENTS: dict[str, str] = {}  # manifest entries the parser knowingly disagrees with (none now)


def _manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST.exists():
        return {}
    with MANIFEST.open("rb") as handle:
        return tomllib.load(handle)


ENTRIES = _manifest()


def _cases() -> list[Any]:
    cases = []
    for name in sorted(ENTRIES):
        marks = [pytest.mark.xfail(reason=DISAGREEMENTS[name], strict=True)] if name in DISAGREEMENTS else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


def _parsed(name: str) -> InboundMail:
    return parse((MAIL_DIR / name).read_bytes(), received_at=RECEIVED_AT)


def _match_attachments(found: list[Attachment], expected: list[dict[str, Any]]) -> list[str]:
    problems = []
    if len(found) != len(expected):
        problems.append(f"{len(found)} attachments {[item.filename for item in found]}, expected {len(expected)}")
    for item, wanted in zip(found, expected, strict=False):
        for key, value in wanted.items():
            if getattr(item, key) != value:
                problems.append(f"attachment {item.filename!r}: {key} = {getattr(item, key)!r}, expected {value!r}")
    return problems


def _expected_ids(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) and value else tuple(value) if isinstance(value, list) else ()


def _check_field(mail: InboundMail, key: str, value: Any) -> list[str]:
    if key == "subject":
        return [] if mail.subject == value else [f"subject {mail.subject!r}"]
    if key == "from":
        return [] if mail.sender.email == value else [f"from {mail.sender.email!r}"]
    if key == "from_name":
        return [] if mail.sender.name == value else [f"from_name {mail.sender.name!r}"]
    if key == "message_id":
        return [] if mail.message_id == value else [f"message_id {mail.message_id!r}"]
    if key in ("in_reply_to", "references"):
        found = getattr(mail, key)
        wanted = _expected_ids(value)
        ok = found == wanted if isinstance(value, list) or not value else value in found
        return [] if ok else [f"{key} {found!r}"]
    if key == "body_contains":
        return [f"body lacks {text!r}" for text in value if text not in mail.body_text]
    if key == "new_text_contains":
        return [f"new_text lacks {text!r}" for text in value if text not in mail.new_text]
    if key == "new_text_excludes":
        return [f"new_text has {text!r}" for text in value if text in mail.new_text]
    if key == "attachments":
        return _match_attachments([item for item in mail.attachments if not item.inline], value)
    if key == "inline_images":
        return _match_attachments([item for item in mail.attachments if item.inline], value)
    if key == "language":
        return [] if mail.language == value else [f"language {mail.language!r}"]
    if key == "bounce_of":
        report = mail.delivery_report
        found_id = report.original_message_id if report else None
        return [] if found_id == value else [f"bounce_of {found_id!r} (report {report!r})"]
    if key == "defective":
        return [] if bool(mail.defects) == value else [f"defects {mail.defects!r}"]
    return [f"unknown manifest key {key!r}: teach tests/unit/test_corpus.py"]


def test_manifest_is_there() -> None:
    assert len(ENTRIES) >= 30, "tests/mail/MANIFEST.toml missing or nearly empty"


@pytest.mark.parametrize("name", _cases())
def test_manifest_entry(name: str) -> None:
    mail = _parsed(name)
    problems = []
    for key, value in ENTRIES[name].items():
        if key not in NOT_CHECKED_HERE:
            problems.extend(_check_field(mail, key, value))
    assert not problems, f"{name}:\n  " + "\n  ".join(problems) + f"\n--- new_text:\n{mail.new_text}"


@pytest.mark.parametrize("path", sorted(MAIL_DIR.glob("*.eml")), ids=lambda path: path.name)
def test_every_corpus_file_parses(path: Path) -> None:
    mail = parse(path.read_bytes(), received_at=RECEIVED_AT)
    assert mail.raw_size == path.stat().st_size
    assert mail.message_id


# --- the giant mail -----------------------------------------------------------------


def _giant_mail(size: int) -> bytes:
    """A mail with one attachment of `size` bytes (tests/mailgen.py's, when it is there)."""
    try:
        from tests.mailgen import giant_attachment_mail
    except ImportError:
        giant_attachment_mail = None
    if giant_attachment_mail is not None:
        made = giant_attachment_mail()
        return made if isinstance(made, bytes) else bytes(made)
    payload = base64.encodebytes(bytes(range(256)) * (size // 256))
    return (
        b"From: Big Sender <big@example.com>\r\nTo: support@example.com\r\nSubject: giant\r\n"
        b"Message-ID: <giant@example.com>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"\r\n--b--\r\n"
    )


@pytest.fixture(scope="module")
def giant() -> bytes:
    return _giant_mail(25 * 1024 * 1024)


def _largest(mail: InboundMail) -> Attachment:
    return max(mail.attachments, key=lambda item: item.size)


def test_giant_attachment_over_the_limit_is_omitted(giant: bytes) -> None:
    started = time.perf_counter()
    tracemalloc.start()
    mail = parse(giant, received_at=RECEIVED_AT, max_attachment_bytes=1024 * 1024)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - started
    big = _largest(mail)
    assert big.content is None and big.omitted_reason and big.size > 1024 * 1024 and len(big.sha256) == 64
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert peak < 12 * len(giant), f"peak {peak / 2**20:.0f} MiB for a {len(giant) / 2**20:.0f} MiB mail"


def test_giant_attachment_under_the_limit_is_kept(giant: bytes) -> None:
    mail = parse(giant, received_at=RECEIVED_AT, max_attachment_bytes=len(giant))
    big = _largest(mail)
    assert big.content is not None and len(big.content) == big.size and not big.omitted_reason
