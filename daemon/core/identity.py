"""A mail's identity for idempotence: the same mail taken in twice (a re-scan after a
UIDVALIDITY change, a crash before it was marked done, two aliases of one mailbox) has
the same fingerprint, whatever trace headers the servers on its way added."""

from __future__ import annotations

import hashlib
import re

from daemon.core.values import InboundMail

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def fingerprint(raw: bytes, mail: InboundMail) -> str:
    """sha256 over the Message-ID, the author's headers and the body bytes; the one the mail
    carries if whoever parsed it from these bytes worked it out already (the parse worker)."""
    if mail.fingerprint:
        return mail.fingerprint
    match = _HEADER_END.search(raw)
    body = raw[match.end():] if match else raw
    digest = hashlib.sha256()
    for part in (
        "" if mail.message_id_generated else mail.message_id,
        mail.sender.email,
        mail.subject,
        "" if mail.date_generated else mail.date.isoformat(),
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()
