"""Authentication-Results (RFC 8601) as real servers write them, and which of them Postdesk believes."""

from __future__ import annotations

import pytest

from daemon.core.authresults import explain, parse_header, trusted_results, verdict, vouches_for
from daemon.core.parse import parse
from tests.mailfactory import NOW, raw_mail

GMAIL = """mx.google.com;
       dkim=pass header.i=@example.com header.s=20230601 header.b=Ab1Cd2Ef;
       arc=pass (i=1 spf=pass spfdomain=example.com dkim=pass dkdomain=example.com dmarc=pass fromdomain=example.com);
       spf=pass (google.com: domain of alice@example.com designates 209.85.220.41 as permitted sender) \
smtp.mailfrom=alice@example.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com"""
M365 = """spf=pass (sender IP is 209.85.219.172)
 smtp.mailfrom=example.com; dkim=pass (signature was verified)
 header.d=example.com;dmarc=pass action=none
 header.from=example.com;compauth=pass reason=100"""
M365_WITH_DOMAIN = ("spf=pass (sender IP is 209.85.219.172) smtp.mailfrom=example.com; support.example.net; "
                    "dkim=pass (signature was verified) header.d=example.com;support.example.net; dmarc=pass "
                    "action=none header.from=example.com;compauth=pass reason=100")
OPENDKIM = """mail.example.net;
\tdkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 \
header.s=mail header.b="AbCdEfGh";
\tdkim-atps=neutral"""
OPENDMARC = "mail.example.net; dmarc=pass (p=none dis=none) header.from=example.com"
RSPAMD = """mx.example.net;
\tdkim=pass header.d=example.com header.s=dkim header.b=Xy12AbCd;
\tdmarc=pass (policy=reject) header.from=example.com;
\tspf=pass (mx.example.net: domain of "alice@example.com" designates 192.0.2.10 as permitted sender) \
smtp.mailfrom=alice@example.com"""


@pytest.mark.parametrize(("value", "authserv_id", "methods"), [
    (GMAIL, "mx.google.com", ["dkim", "arc", "spf", "dmarc"]),
    (M365, "", ["spf", "dkim", "dmarc", "compauth"]),
    (M365_WITH_DOMAIN, "support.example.net", ["spf", "dkim", "dmarc", "compauth"]),
    (OPENDKIM, "mail.example.net", ["dkim", "dkim-atps"]),
    (OPENDMARC, "mail.example.net", ["dmarc"]),
    (RSPAMD, "mx.example.net", ["dkim", "dmarc", "spf"]),
    ("mx.example.net 1; none", "mx.example.net", []),
    ('"quoted.example.net"; dkim = pass header.d = example.com', "quoted.example.net", ["dkim"]),
], ids=["gmail", "m365", "m365-with-domain", "opendkim", "opendmarc", "rspamd", "none", "spaces-and-quotes"])
def test_real_shapes_parse(value: str, authserv_id: str, methods: list[str]) -> None:
    parsed = parse_header(value)
    assert parsed.authserv_id == authserv_id
    assert [r.method for r in parsed.results] == methods
    assert all(r.result == "pass" for r in parsed.results if r.method in ("dkim", "dmarc"))


def test_properties_survive_comments_with_semicolons_and_quotes() -> None:
    dkim = parse_header(OPENDKIM).results[0]
    assert (dkim.get("header.d"), dkim.get("header.b"), dkim.get("header.s")) == ("example.com", "abcdefgh", "mail")
    spf = parse_header(RSPAMD).results[2]
    assert spf.get("smtp.mailfrom") == "alice@example.com"


@pytest.mark.parametrize(("value", "address", "vouched"), [
    (GMAIL, "alice@example.com", True),  # dkim header.i=@example.com
    (M365_WITH_DOMAIN, "alice@example.com", True),
    (OPENDKIM, "alice@example.com", True),
    (OPENDMARC, "alice@example.com", True),
    (RSPAMD, "alice@example.com", True),
    (OPENDKIM, "alice@eu.example.com", True),  # a signature of the parent domain
    (OPENDMARC, "alice@eu.example.com", False),  # DMARC is about the From domain itself
    (OPENDKIM, "alice@example.org", False),
    (OPENDKIM, "alice@notexample.com", False),
    ("mx.example.net; dkim=fail header.d=example.com; dmarc=fail header.from=example.com", "a@example.com", False),
    ("mx.example.net; dkim=pass header.d=com", "alice@example.com", False),  # a top-level domain vouches for no one
    ("mx.example.net; spf=pass smtp.mailfrom=alice@example.com", "alice@example.com", False),  # SPF alone: no
])
def test_what_vouches_for_an_address(value: str, address: str, vouched: bool) -> None:
    assert bool(vouches_for(parse_header(value), address)) is vouched


def test_only_the_topmost_header_counts_and_only_from_a_trusted_server() -> None:
    trusted = ("mail.example.net",)
    assert verdict((OPENDMARC,), "alice@example.com", trusted).startswith("DMARC pass for example.com")
    assert verdict((OPENDMARC,), "alice@example.com", ("other.example.net",)) == ""
    forged_below = ("mail.example.net; dkim=fail header.d=example.com", OPENDKIM)
    assert verdict(forged_below, "alice@example.com", trusted) == ""
    under_an_untrusted_one = ("mx.elsewhere.example; dkim=none", OPENDKIM)
    assert verdict(under_an_untrusted_one, "alice@example.com", trusted) == ""
    assert trusted_results((), trusted) is None
    assert verdict((M365,), "alice@example.com", ("",)) == ""  # no authserv-id is never trusted
    assert verdict((M365_WITH_DOMAIN,), "alice@example.com", ("support.example.net",))


def test_explanations_say_what_was_missing() -> None:
    assert "no Authentication-Results" in explain((), ("mx.example.net",))
    assert "not a trusted server" in explain((GMAIL,), ("mx.example.net",))
    assert "no DKIM or DMARC pass" in explain(("mx.example.net; dkim=fail header.d=x.com",), ("mx.example.net",))


def test_header_order_from_a_parsed_mail_is_top_first() -> None:
    """What a receiving server adds goes on top: the parser must keep that order."""
    added = (b"Authentication-Results: top.example.net; dkim=fail header.d=example.com\r\n"
             b"Authentication-Results: top.example.net;\r\n dkim=pass header.d=example.com\r\n")
    mail = parse(added + raw_mail(), received_at=NOW)
    values = mail.header_values("authentication-results")
    assert [parse_header(v).results[0].result for v in values] == ["fail", "pass"]
    assert verdict(values, "alice@example.com", ("top.example.net",)) == ""


@pytest.mark.parametrize("value", ["", ";", "=", "(unclosed comment", '"unclosed quote; dkim=pass', ";;;===;;",
                                   "mx; dkim=", "mx; =pass", "\\", "mx; dkim=pass header.d"])
def test_garbage_never_raises(value: str) -> None:
    parsed = parse_header(value)
    assert vouches_for(parsed, "alice@example.com") == ""
