"""The fast MIME reader against the stdlib's: wherever `read_tree` answers, its tree is the
one `email.message_from_bytes` builds (headers, payloads, preambles, epilogues, defects);
where the mail is damaged or unusual it declines, and the stdlib reads it."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.core.mimetree import read_tree
from daemon.core.parse import read_message
from tests.unit.test_parse_properties import SETTINGS, header_lines, mails

CORPUS = sorted(path for path in (Path(__file__).parent.parent / "mail").rglob("*") if path.is_file())


def shape(message: Message) -> tuple[Any, ...]:
    """Everything the parser reads of a tree, recursively."""
    payload = message._payload  # the payload as stored, not decoded
    return (
        tuple(message._headers),
        message.get_unixfrom(), message.preamble, message.epilogue, message.get_default_type(),
        tuple(type(defect).__name__ for defect in message.defects),
        tuple(shape(part) for part in payload) if isinstance(payload, list) else payload,
    )  # fmt: skip


def assert_same_or_declined(raw: bytes) -> bool:
    fast = read_tree(raw)
    if fast is not None:
        assert shape(fast) == shape(email.message_from_bytes(raw))
    return fast is not None


def with_line_breaks(raw: bytes, line_break: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", line_break)


@pytest.mark.parametrize("line_break", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_every_corpus_mail_reads_the_same_and_most_take_the_fast_way(line_break: bytes) -> None:
    answered = [assert_same_or_declined(with_line_breaks(path.read_bytes(), line_break)) for path in CORPUS]
    assert len(CORPUS) >= 100
    assert sum(answered) >= 0.8 * len(CORPUS)  # attached mails, reports and damaged ones go the other way


def test_the_fast_way_covers_plain_alternative_and_mixed_mail() -> None:
    trees = [read_tree(path.read_bytes()) for path in CORPUS]
    kinds = {tree.get_content_type() for tree in trees if tree is not None}
    assert {"text/plain", "text/html", "multipart/alternative", "multipart/mixed"} <= kinds


# --- generated well-formed trees: each must be read the fast way, and the same ------------------

line_breaks = st.sampled_from([b"\r\n", b"\n"])
blanks = st.sampled_from([b"", b" ", b"\t", b"  \t"])
free_text = st.sampled_from([b"", b"This is a multi-part message in MIME format.", b"line one\r\nline two",
                             b"--not a boundary", b"\r\n", b"trailing text\r\n\r\n"])  # fmt: skip
bodies = st.one_of(
    st.sampled_from([b"", b"Hello", b"Hello\r\n", b"\r\n\r\n", b"--b1 inside a line", b"x --b1\r\n", b"--b1x\r\n",
                     b"=E2=80=94 quoted-printable=\r\n soft break", b"SGVsbG8gd29ybGQ=\r\nSGVsbG8=",
                     b"caf\xc3\xa9 \xff"]),
    st.binary(max_size=60).map(lambda data: data.replace(b"\r", b"").replace(b"\n-", b"\n")),
)  # fmt: skip


@st.composite
def well_formed_leaves(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(st.sampled_from([
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html", b"Content-Type: image/png; name=a.png",
        b"Content-Transfer-Encoding: base64", b"Content-Disposition: attachment;\r\n filename=\"a b.pdf\"",
        b"Content-ID: <x@y>", b"X-Folded: one\r\n\ttwo\r\n  three", b"X-Empty:", b"X-Spaces:    padded  ",
    ]), max_size=4))  # fmt: skip
    return b"".join(field + b"\r\n" for field in fields) + b"\r\n" + draw(bodies)


def render(subtype: str, boundary: bytes, children: list[bytes], preamble: bytes, epilogue: bytes,
           blank: bytes) -> bytes:
    head = b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + boundary + b'"\r\n\r\n'
    opening = preamble + b"\r\n" if preamble else b""
    parts = b"".join(b"--" + boundary + blank + b"\r\n" + child + b"\r\n" for child in children)
    return head + opening + parts + b"--" + boundary + b"--" + blank + (b"\r\n" + epilogue if epilogue else b"")


well_formed_trees = st.recursive(
    well_formed_leaves(),
    lambda children: st.builds(
        render,
        st.sampled_from(["mixed", "alternative", "related", "signed"]),
        st.sampled_from([b"b1", b"b2", b"=_x", b"b1-longer", b"a'(+),./:=? b"]),
        st.lists(children, min_size=1, max_size=3),
        free_text, free_text, blanks,
    ),
    max_leaves=6,
)


@SETTINGS
@given(st.lists(header_lines, max_size=6), well_formed_trees, line_breaks)
def test_well_formed_trees_take_the_fast_way_and_read_the_same(fields: list[bytes], tree: bytes,
                                                                 line_break: bytes) -> None:
    fields = [field for field in fields if not field.lower().startswith(b"content-type")]  # the tree's own rules
    fields = [field.replace(b"\r", b" ").replace(b"\n", b" ") for field in fields]
    raw = with_line_breaks(b"".join(field + b"\r\n" for field in fields) + b"MIME-Version: 1.0\r\n" + tree, line_break)
    boundaries = [piece.split(b'"', 1)[0] for piece in raw.split(b'boundary="')[1:]]
    nested_in_its_own_boundary = len(set(boundaries)) < len(boundaries)
    assert assert_same_or_declined(raw) or nested_in_its_own_boundary


@SETTINGS
@given(mails())
def test_damaged_and_truncated_mail_reads_the_same_or_goes_to_the_stdlib(raw: bytes) -> None:
    assert_same_or_declined(raw)


@pytest.mark.parametrize("raw", [
    b"From someone Mon Jan  1 00:00:00 2026\nSubject: mbox\n\nbody\n",
    b"Subject: bare CR\r\rbody",
    b"Subject: no blank line\r\nthis line is not a field\r\n\r\nbody",
    b" folded first line\r\nSubject: x\r\n\r\nbody",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno close boundary\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno start boundary\r\n--b--\r\n",
    b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nno boundary parameter\r\n--b--\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\ntwo boundary lines\r\n--b--\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n",
    b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: inner\r\n\r\nx\r\n--b--\r\n",
    b"Subject: only headers, no line break at the end",
    b"",
], ids=["mbox-from", "bare-cr", "no-blank-line", "continuation-first", "no-close", "no-start", "no-boundary",
        "double-boundary", "encoded-multipart", "message-rfc822", "digest", "headers-only", "empty"])  # fmt: skip
def test_unusual_mail_is_left_to_the_stdlib(raw: bytes) -> None:
    assert read_tree(raw) is None
    assert read_message(raw).message is not None  # and the parser still reads it


def test_deep_nesting_is_left_to_the_stdlib() -> None:
    raw = b"Subject: deep\r\n"
    for level in range(60):
        raw += b"Content-Type: multipart/mixed; boundary=b" + str(level).encode() + b"\r\n\r\n--b" + \
            str(level).encode() + b"\r\n"
    assert read_tree(raw + b"\r\nleaf\r\n") is None
