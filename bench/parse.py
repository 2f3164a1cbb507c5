"""Mails per second: mail-parser alone vs Postdesk's `parse()`, on generated mail and the corpus.

    .venv/bin/python bench/parse.py [--count 2000] [--rounds 3] [--seed 7]

The generated set is deterministic: replies and new mails as Gmail, Outlook, Apple Mail and
Thunderbird send them (multipart/alternative with quoted-printable text and HTML, HTML-only
Outlook replies, base64 bodies in koi8-r or UTF-8, RFC 2047 subjects, a PDF or image
attachment in about one mail in six, a DSN now and then). Each timing is the best of
`--rounds` passes over the whole set; the stdlib compat32 parser is shown for scale.
"""

from __future__ import annotations

import argparse
import base64
import email
import logging
import quopri
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.header import Header
from pathlib import Path

import mailparser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.core.parse import parse

RECEIVED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NAMES = ["Olena Petrenko", "Иван Соколов", "Jürgen Müller", "Sofia Marino", "王磊", "Pieter de Vries", "Ana Ruiz"]
SUBJECTS = ["Printer prints nothing", "VPN drops every evening", "Не открывается 1С", "Rechnung fehlt",
            "Invoice cannot be opened", "客户端无法同步", "Password reset link expired"]  # fmt: skip
SENTENCES = [
    "Since this morning the printer on floor 2 prints nothing at all.",
    "I already restarted the router twice, but the connection drops again after an hour.",
    "Could you please check the attached log file and tell me what went wrong?",
    "Интернет пропадает каждый вечер примерно в 21:00, утром всё работает.",
    "Die Rechnung vom 20.11. ist bei uns leider nicht angekommen.",
    "The customer says the PDF only shows a grey page in Adobe Reader.",
]


def _paragraphs(rng: random.Random, count: int) -> str:
    return "\n\n".join(" ".join(rng.choices(SENTENCES, k=rng.randint(2, 5))) for _ in range(count))


def _quoted(rng: random.Random) -> str:
    old = _paragraphs(rng, rng.randint(1, 3))
    quote = "\n".join("> " + line for line in old.splitlines())
    return f"On Mon, Nov 23, 2026 at 09:15 Support Team <support@example.com> wrote:\n\n{quote}\n"


def _headers(rng: random.Random, number: int, content_type: str) -> str:
    name = rng.choice(NAMES)
    subject = Header(rng.choice(SUBJECTS), "utf-8").encode()
    display = Header(name, "utf-8").encode() if not name.isascii() else f'"{name}"'
    return (
        f"Return-Path: <user{number}@customer.example>\n"
        f"Received: from mail.customer.example (mail.customer.example [203.0.113.{number % 250}])\n"
        f"\tby mx.example.com (Postfix) with ESMTPS id 4Zx{number:05d}\n"
        f"\tfor <support@example.com>; Mon, 23 Nov 2026 09:{number % 60:02d}:00 +0000 (UTC)\n"
        f"From: {display} <user{number}@customer.example>\nTo: Support <support@example.com>\n"
        f"Subject: Re: [Support #{1000 + number}] {subject}\nDate: Mon, 23 Nov 2026 09:{number % 60:02d}:11 +0100\n"
        f"Message-ID: <bench{number}.{rng.getrandbits(40):x}@mail.customer.example>\n"
        f"In-Reply-To: <{1000 + number}.ticket@example.com>\nReferences: <{1000 + number}.ticket@example.com>\n"
        f"MIME-Version: 1.0\nContent-Language: en-US\nContent-Type: {content_type}\n"
    )


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def _alternative(rng: random.Random) -> tuple[str, str]:
    text = _paragraphs(rng, rng.randint(1, 4)) + "\n\n" + _quoted(rng)
    html = '<div dir="ltr">' + "".join(f"<p>{part}</p>" for part in text.split("\n\n")) + "</div>"
    body = (
        "--alt\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        f"{_qp(text)}\n--alt\nContent-Type: text/html; charset=UTF-8\n"
        f"Content-Transfer-Encoding: quoted-printable\n\n{_qp(html)}\n--alt--\n"
    )
    return 'multipart/alternative; boundary="alt"', body


def _outlook_html(rng: random.Random) -> tuple[str, str]:
    paragraphs = "".join(f"<p class=MsoNormal>{part}</p>" for part in _paragraphs(rng, 3).split("\n\n"))
    quoted = "<b>From:</b> Support Team &lt;support@example.com&gt;<br><b>Sent:</b> Monday<br><b>To:</b> x<br>"
    html = f"<html><head><style>p{{margin:0}}</style></head><body>{paragraphs}<hr>{quoted}<b>Subject:</b> y<br>"
    html += f"<p>{_paragraphs(rng, 2)}</p></body></html>"
    return "text/html; charset=utf-8", base64.encodebytes(html.encode()).decode("ascii")


def _koi8(rng: random.Random) -> tuple[str, str]:
    text = "Здравствуйте!\n\nИнтернет пропадает каждый вечер.\n\n" + _quoted(rng)
    return "text/plain; charset=koi8-r", base64.encodebytes(text.encode("koi8-r")).decode("ascii")


def _with_attachment(rng: random.Random) -> tuple[str, str]:
    kind, body = _alternative(rng)
    blob = base64.encodebytes(rng.randbytes(rng.choice([8_000, 40_000, 120_000]))).decode("ascii")
    return 'multipart/mixed; boundary="mix"', (
        f'--mix\nContent-Type: {kind}\n\n{body}\n--mix\nContent-Type: application/pdf; name="report.pdf"\n'
        f'Content-Disposition: attachment; filename="report.pdf"\nContent-Transfer-Encoding: base64\n\n{blob}--mix--\n'
    )


def _bounce(rng: random.Random) -> tuple[str, str]:
    return 'multipart/report; report-type=delivery-status; boundary="rep"', (
        "--rep\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n<gone@customer.example>: host said: 550 5.1.1 unknown\n"
        "--rep\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.example\n\n"
        "Final-Recipient: rfc822; gone@customer.example\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 unknown user\n\n--rep\nContent-Type: text/rfc822-headers\n\n"
        f"Message-ID: <{rng.getrandbits(32)}.ticket@example.com>\nSubject: Re: ticket\n\n--rep--\n"
    )


MAKERS: list[tuple[Callable[[random.Random], tuple[str, str]], int]] = [
    (_alternative, 55), (_outlook_html, 15), (_koi8, 8), (_with_attachment, 17), (_bounce, 5),
]  # fmt: skip


def generate(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    makers = [maker for maker, weight in MAKERS for _ in range(weight)]
    mails = []
    for number in range(count):
        content_type, body = rng.choice(makers)(rng)
        mails.append((_headers(rng, number, content_type) + "\n" + body).replace("\n", "\r\n").encode("utf-8"))
    return mails


def best_rate(function: Callable[[bytes], object], mails: Sequence[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in mails:
            function(raw)
        best = min(best, time.perf_counter() - started)
    return len(mails) / best


def report(title: str, mails: Sequence[bytes], rounds: int) -> None:
    size = sum(len(raw) for raw in mails) / max(len(mails), 1) / 1024
    library = best_rate(mailparser.parse_from_bytes, mails, rounds)
    stdlib = best_rate(email.message_from_bytes, mails, rounds)
    ours = best_rate(lambda raw: parse(raw, received_at=RECEIVED_AT), mails, rounds)
    print(f"{title}: {len(mails)} mails, {size:.1f} KiB on average")
    print(f"  stdlib email compat32 alone     {stdlib:8.0f} mails/s   (for scale)")
    print(f"  mailparser.parse_from_bytes     {library:8.0f} mails/s")
    print(f"  postdesk parse()                {ours:8.0f} mails/s   ({ours / library:.0%} of mail-parser alone)")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--count", type=int, default=2000)
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--seed", type=int, default=7)
    arguments = options.parse_args()
    logging.getLogger("mailparser").setLevel(logging.ERROR)  # it warns on every report part
    report("generated", generate(arguments.count, arguments.seed), arguments.rounds)
    corpus_dir = Path(__file__).resolve().parent.parent / "tests" / "mail"
    corpus = [path.read_bytes() for path in sorted(corpus_dir.glob("*.eml"))]
    small = [raw for raw in corpus if len(raw) < 1024 * 1024]
    if small:
        report("corpus (tests/mail, files under 1 MiB)", small, arguments.rounds)


if __name__ == "__main__":
    main()
