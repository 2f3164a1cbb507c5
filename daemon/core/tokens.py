"""Signed Message-IDs: every mail Postdesk sends names its ticket (and, for mail to an
agent, the agent) in a token that only this instance's secret can make.

    <pd.1234.<nonce>.<agent>.<signature>@support.example.com>

`agent` is "-" or the first hex digits of the sha256 of the agent's address; the
signature is an HMAC-SHA256 over the rest, so a forged reference names nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^pd\.(\d{1,12})\.([a-z2-7]{8,26})\.(-|[0-9a-f]{12})\.([a-z2-7]{16})@(.+)$")


@dataclass(frozen=True, slots=True)
class Token:
    number: int
    agent_hash: str | None


def agent_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:12]


def make_message_id(secret: bytes, domain: str, number: int, seed: str, agent: str | None = None) -> str:
    """A Message-ID (without <>) for a mail about ticket `number`; `seed` makes it unique."""
    nonce = _b32(hashlib.sha256(f"{seed}|{number}|{agent or ''}".encode()).digest(), 20)
    who = agent_hash(agent) if agent else "-"
    return f"pd.{number}.{nonce}.{who}.{_sign(secret, number, nonce, who)}@{domain}"


def read_token(secret: bytes, message_id: str, domains: frozenset[str]) -> Token | None:
    """The ticket (and agent) a Message-ID names, if this instance signed it."""
    match = _TOKEN.match(message_id.strip().strip("<>").lower())
    if not match or match.group(5) not in domains:
        return None
    number, nonce, who, signature = int(match.group(1)), match.group(2), match.group(3), match.group(4)
    if not hmac.compare_digest(signature, _sign(secret, number, nonce, who)):
        return None
    return Token(number=number, agent_hash=None if who == "-" else who)


def _sign(secret: bytes, number: int, nonce: str, who: str) -> str:
    digest = hmac.new(secret, f"{number}.{nonce}.{who}".encode(), hashlib.sha256).digest()
    return _b32(digest, 16)


def _b32(data: bytes, length: int) -> str:
    """The first `length` characters of `data` in lower-case base32. Each 5 bytes become 8
    characters of their own, so only the bytes those characters need are encoded (the
    stdlib's encoder is pure Python: three calls a mail were a noticeable share of intake)."""
    return base64.b32encode(data[: -(-length // 8) * 5]).decode("ascii").lower()[:length]
