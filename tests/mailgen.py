"""Builders for test mails that are too large to keep in tests/mail/.

Everything here is deterministic: the same arguments always give the same bytes,
so tests can compare sizes and hashes without storing the mail.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import random

GIANT_FILENAME = "Scan_Bauplan_Gesamt_2026-11-23.pdf"
GIANT_MESSAGE_ID = "DB9PR04MB92110C3F5A1E7B24D6A8C9E1F0B2D4A6@DB9PR04MB9211.eurprd04.prod.outlook.com"
GIANT_SUBJECT = "[Support #1324] Plan file for the print shop"
GIANT_FROM = "k.baumann@customer.example"

_BOUNDARY_MIXED = "_004_DB9PR04MB92110C3F5A1E7B24D6A8C9E1F0B2D4A6DB9PR04MB9211eurp_"
_BOUNDARY_ALT = "_000_DB9PR04MB92110C3F5A1E7B24D6A8C9E1F0B2D4A6DB9PR04MB9211eurp_"


def giant_attachment_payload(size: int = 25 * 1024 * 1024) -> bytes:
    """The decoded attachment: a PDF-looking file of exactly ``size`` bytes."""
    head = (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"3 0 obj\n<< /Length 0 /Filter /DCTDecode >>\nstream\n"
    )
    tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    if size < len(head) + len(tail):
        # too small for the PDF frame: still exactly `size` bytes
        return (head + tail)[:size]
    filler = random.Random(20261123).randbytes(size - len(head) - len(tail))
    return head + filler + tail


def giant_attachment_sha256(size: int = 25 * 1024 * 1024) -> str:
    return hashlib.sha256(giant_attachment_payload(size)).hexdigest()


def _qp(text: str) -> str:
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("ascii")).decode("ascii")
    return encoded.replace("\n", "\r\n")


def giant_attachment_mail(size: int = 25 * 1024 * 1024) -> bytes:
    """An Outlook / Exchange Online mail carrying one PDF attachment of ``size`` decoded bytes.

    Shaped like what Exchange Online sends: multipart/mixed with a
    multipart/alternative text part, base64 in 76-character lines, CRLF line ends.
    """
    payload = giant_attachment_payload(size)
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    text = (
        "Hello,\r\n\r\n"
        "attached is the full plan file for the print shop. It is large, sorry -\r\n"
        "the upload portal rejects it, so I am trying by mail.\r\n\r\n"
        "Best regards\r\nKarin Baumann\r\n"
    )
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=us-ascii"></head>\r\n'
        '<body lang="EN-GB"><div class="WordSection1"><p class="MsoNormal">Hello,</p>\r\n'
        '<p class="MsoNormal">attached is the full plan file for the print shop. It is large, sorry - '
        "the upload portal rejects it, so I am trying by mail.</p>\r\n"
        '<p class="MsoNormal">Best regards<br>Karin Baumann</p></div></body></html>\r\n'
    )
    head = (
        "Return-Path: <k.baumann@customer.example>\r\n"
        "Delivered-To: support@example.com\r\n"
        "Received: from EUR04-DB3-obe.outbound.protection.outlook.com "
        "(mail-db3eur04on2071.outbound.protection.outlook.com [203.0.113.71])\r\n"
        "\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\r\n"
        "\t(No client certificate requested)\r\n"
        "\tby mx.example.com (Postfix) with ESMTPS id 4DsP2z6Eb4z3eVw\r\n"
        "\tfor <support@example.com>; Mon, 23 Nov 2026 15:02:40 +0100 (CET)\r\n"
        "From: Karin Baumann <k.baumann@customer.example>\r\n"
        "To: Support Team <support@example.com>\r\n"
        f"Subject: {GIANT_SUBJECT}\r\n"
        f"Thread-Topic: {GIANT_SUBJECT}\r\n"
        "Thread-Index: AdtdqP3kR2mN8xVbS0uQ1cYzKfE4Lg==\r\n"
        "Date: Mon, 23 Nov 2026 14:02:11 +0000\r\n"
        f"Message-ID: <{GIANT_MESSAGE_ID}>\r\n"
        "Accept-Language: en-GB, en-US\r\n"
        "Content-Language: en-GB\r\n"
        "X-MS-Has-Attach: yes\r\n"
        "X-MS-TNEF-Correlator:\r\n"
        f'Content-Type: multipart/mixed;\r\n\tboundary="{_BOUNDARY_MIXED}"\r\n'
        "MIME-Version: 1.0\r\n"
        "\r\n"
        f"--{_BOUNDARY_MIXED}\r\n"
        f'Content-Type: multipart/alternative;\r\n\tboundary="{_BOUNDARY_ALT}"\r\n'
        "\r\n"
        f"--{_BOUNDARY_ALT}\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        f"{text}\r\n"
        f"--{_BOUNDARY_ALT}\r\n"
        'Content-Type: text/html; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        f"{_qp(html)}\r\n"
        f"--{_BOUNDARY_ALT}--\r\n"
        "\r\n"
        f"--{_BOUNDARY_MIXED}\r\n"
        f'Content-Type: application/pdf; name="{GIANT_FILENAME}"\r\n'
        f"Content-Description: {GIANT_FILENAME}\r\n"
        f'Content-Disposition: attachment; filename="{GIANT_FILENAME}"; size={size};\r\n'
        '\tcreation-date="Mon, 23 Nov 2026 13:58:40 GMT";\r\n'
        '\tmodification-date="Mon, 23 Nov 2026 14:02:11 GMT"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    )
    return head.encode("ascii") + b64 + f"\r\n--{_BOUNDARY_MIXED}--\r\n".encode("ascii")
