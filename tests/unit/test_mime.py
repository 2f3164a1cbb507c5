"""The hand-written MIME writer: whatever goes in comes back exactly from a standard parser."""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core import mime
from daemon.core.values import Address, Attachment

printable = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=300)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def mail(headers: str, body: tuple[str, bytes]) -> bytes:
    return (headers + "MIME-Version: 1.0\r\n" + body[0]).encode("ascii") + b"\r\n" + body[1]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(printable)
def test_any_subject_round_trips(subject: str) -> None:
    header = mime.unstructured("Subject", subject)
    assert header.isascii() and all(len(line) <= 998 for line in header.split("\r\n"))
    message = parsed(mail(header, mime.text_part("x", "plain")))
    assert str(message["Subject"]) == " ".join(mime.clean(subject).split(" ")).strip() or \
        str(message["Subject"]) == mime.clean(subject)


def test_the_space_between_two_encoded_words_is_kept() -> None:
    subject = "[Support #2] Не працює вхід до системи " * 3
    assert str(parsed(mail(mime.unstructured("Subject", subject), mime.text_part("x", "plain")))["Subject"]) == \
        subject.strip()


def test_encoded_words_are_short_and_split_between_characters() -> None:
    for word in mime.encoded_words("Ж" * 200 + "😀" * 50):
        assert len(word) <= 75
    assert "".join(email.header.decode_header(w)[0][0].decode() for w in mime.encoded_words("Ж😀" * 40)) == \
        "Ж😀" * 40


@settings(max_examples=200, deadline=None, derandomize=True)
@given(printable, st.sampled_from(["a@example.com", "olena.petrenko@customer.example"]))
def test_any_display_name_round_trips(name: str, address: str) -> None:
    header = mime.address_list("From", [Address(address, name)])
    message = parsed(mail(header, mime.text_part("x", "plain")))
    assert message["From"].addresses[0].addr_spec == address
    # RFC 2047 readers join adjacent encoded-words without a space; the stdlib's address
    # parser adds one, so the display name is decoded the RFC way here
    raw_phrase = header.split(":", 1)[1].rsplit("<", 1)[0].strip() if mime.clean(name) else ""
    decoded = str(email.header.make_header(email.header.decode_header(raw_phrase))) if raw_phrase else ""
    if decoded.startswith('"'):
        decoded = decoded[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    assert decoded == mime.clean(name)


def test_header_injection_is_impossible() -> None:
    header = mime.unstructured("Subject", "Hello\r\nBcc: victim@evil.example\r\n\r\nbody")
    assert header.count("\r\n") == 1 and "Bcc:" not in header.split(":", 1)[0]
    message = parsed(mail(header, mime.text_part("x", "plain")))
    assert message["Bcc"] is None


def test_long_references_are_folded_under_78_characters() -> None:
    ids = [f"<pd.{n}.abcdefghijklmnop.-.qrstuvwxyz234567@support.example.com>" for n in range(12)]
    header = mime.fold("References", ids)
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    assert parsed(mail(header, mime.text_part("x", "plain")))["References"].split() == ids


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=2000), st.one_of(st.none(), st.text(max_size=500)))
def test_bodies_round_trip(text: str, html: str | None) -> None:
    text = text.replace("\r", "")
    head, payload = mime.body(text, html, (), "seed")
    message = parsed(mail("Subject: x\r\n", (head, payload)))
    assert not any(part.defects for part in message.walk())
    plain = message.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    if html is not None:
        found = message.get_body(("html",))
        assert found is not None
        assert found.get_content().replace("\r\n", "\n") == html.replace("\r\n", "\n").replace("\r", "\n")


def test_attachments_with_unicode_names_round_trip() -> None:
    data = bytes(range(256)) * 40
    attachment = Attachment("звіт 2026.pdf", "application/pdf", len(data), hashlib.sha256(data).hexdigest(), data)
    head, payload = mime.body("see attached", None, (attachment,), "seed")
    message = parsed(mail("Subject: x\r\n", (head, payload)))
    found = next(message.iter_attachments())
    assert found.get_filename() == "звіт 2026.pdf" and found.get_content() == data


@pytest.mark.parametrize(("written", "sent"), [
    ("olena@customer.example", "olena@customer.example"),
    ("jan@bücher.example", "jan@xn--bcher-kva.example"),  # IDNA: any server takes it
    ("jdöe@mächine.example", "jdöe@xn--mchine-bua.example"),  # the local part needs SMTPUTF8
    ("тест@пример.рф", "тест@xn--e1afmkfd.xn--p1ai"),
    ("x@" + "ä" * 70 + ".example", "x@" + "ä" * 70 + ".example"),  # no valid IDN label: as written
    ("no-at-sign-ü", "no-at-sign-ü"),
])
def test_addresses_go_out_in_ascii_where_they_can(written: str, sent: str) -> None:
    assert mime.mailbox(written) == sent


def test_a_mail_needs_smtputf8_only_for_utf8_in_its_envelope_or_header() -> None:
    assert not mime.needs_smtputf8("help@example.com", ["jan@xn--bcher-kva.example"], b"To: x\r\n\r\nbody \xc3\xa4")
    assert mime.needs_smtputf8("help@example.com", ["jdöe@xn--mchine-bua.example"], b"To: x\r\n\r\nbody")
    assert mime.needs_smtputf8("help@example.com", ["a@b.example"], "To: jdöe@x\r\n\r\nbody".encode())
