"""Signed Message-IDs."""

from __future__ import annotations

from daemon.core import tokens

SECRET = b"secret-0123456789abcdef"
DOMAINS = frozenset({"example.com"})


def test_round_trip_with_and_without_agent() -> None:
    plain = tokens.make_message_id(SECRET, "example.com", 1234, "seed")
    assert tokens.read_token(SECRET, plain, DOMAINS) == tokens.Token(1234, None)
    agent = tokens.make_message_id(SECRET, "example.com", 7, "seed", "Alice@Example.com")
    assert tokens.read_token(SECRET, f"<{agent}>", DOMAINS) == tokens.Token(7, tokens.agent_hash("alice@example.com"))


def test_unique_per_seed_and_deterministic() -> None:
    one = tokens.make_message_id(SECRET, "example.com", 1, "a")
    assert one == tokens.make_message_id(SECRET, "example.com", 1, "a")
    assert one != tokens.make_message_id(SECRET, "example.com", 1, "b")


def test_forgeries_name_nothing() -> None:
    real = tokens.make_message_id(SECRET, "example.com", 12, "seed", "alice@example.com")
    number_changed = real.replace("pd.12.", "pd.13.", 1)
    assert tokens.read_token(SECRET, number_changed, DOMAINS) is None
    assert tokens.read_token(b"another-secret-012345", real, DOMAINS) is None
    assert tokens.read_token(SECRET, real.replace("@example.com", "@evil.example"), DOMAINS) is None
    assert tokens.read_token(SECRET, "CAF=abc@mail.gmail.com", DOMAINS) is None
