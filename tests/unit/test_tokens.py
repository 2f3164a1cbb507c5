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


def test_message_ids_keep_the_form_of_mails_already_sent() -> None:
    """Replies to mails sent by earlier versions must still be read: the same inputs give the
    same Message-ID (nonce and signature, lower-case base32) as they always did."""
    assert tokens.make_message_id(b"secret-0123456789", "example.com", 1234, "seed#0", "alice@example.com") == \
        "pd.1234.52ega4heyl3ll234puil.ff8d9819fc0e.kewflwafd5f35ssl@example.com"
    assert tokens.make_message_id(b"secret-0123456789", "example.com", 7, "seed#1") == \
        "pd.7.6g26wl2akpkexxqsiwce.-.xclegcl6k6u2r2cr@example.com"
