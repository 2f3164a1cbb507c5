"""Reading Authentication-Results (RFC 8601): did a server we trust verify the sender's domain?

    Authentication-Results: mx.example.net 1; dkim=pass (2048-bit key) header.d=example.com
        header.s=mail header.b="AbC"; dmarc=pass (p=none dis=none) header.from=example.com

The sender can write any header it likes, so only what a trusted server added counts. Each
server that checks a mail puts its header on top of the ones already there; so the topmost
Authentication-Results header is the last server's, and anything below it may have come with
the mail. Postdesk reads the topmost header only, and only if its authserv-id is trusted: a
trusted-looking header below an untrusted one (or below the trusted server's own) came from
outside and is ignored (RFC 8601 §5, §7.1).

Real shapes differ from the grammar: comments hold semicolons and quotes ("(2048-bit key;
unprotected)", rspamd's `domain of "a@b"`), and Microsoft 365 writes no authserv-id at all,
only `method=result` parts, sometimes with bare domain tokens between them (its accepted
domain: `...smtp.mailfrom=example.org; alum.mit.edu; dkim=pass...`). Such a header's id is
that first bare token, or "" when there is none (never trusted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r'(?:[^\s"]+|"(?:[^"\\]|\\.)*")+')
_EQUALS = re.compile(r"\s*=\s*")


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One `method=result` with its properties, names and values lower-case ("header.d")."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str:
        return next((value for key, value in self.properties if key == name), "")


@dataclass(frozen=True, slots=True)
class AuthResults:
    authserv_id: str  # lower-case; "" when the header names none
    results: tuple[MethodResult, ...]


def parse_header(value: str) -> AuthResults:
    """One header value → its authserv-id and results; whatever cannot be read is left out."""
    parts = [part.strip() for part in _split_semicolons(_without_comments(value))]
    authserv_id = ""
    if parts and "=" not in parts[0]:
        words = parts.pop(0).split()
        authserv_id = _unquote(words[0]).lower() if words else ""
    results: list[MethodResult] = []
    for part in parts:
        if "=" in part:
            result = _method_result(part)
            if result is not None:
                results.append(result)
        elif not authserv_id and results and part:
            authserv_id = part.split()[0].lower()  # Microsoft 365: the bare accepted-domain token
    return AuthResults(authserv_id=authserv_id, results=tuple(results))


def trusted_results(values: tuple[str, ...], trusted: tuple[str, ...]) -> AuthResults | None:
    """The topmost Authentication-Results header (values in header order, top first), if a
    trusted server added it; None otherwise."""
    if not values:
        return None
    topmost = parse_header(values[0])
    wanted = {t.strip().lower() for t in trusted if t.strip()}
    return topmost if topmost.authserv_id and topmost.authserv_id in wanted else None


def vouches_for(results: AuthResults, address: str) -> str:
    """How these results show that `address`'s domain sent the mail ("" when they do not):
    `dkim=pass` with header.d (or the domain of header.i) = that domain or a parent of it, or
    `dmarc=pass` with header.from = that domain."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain:
        return ""
    for result in results.results:
        if result.result != "pass":
            continue
        if result.method == "dkim":
            signer = _signing_domain(result)
            if signer and _is_same_or_parent(signer, domain):
                return f"DKIM signature of {signer} verified by {results.authserv_id}"
        if result.method == "dmarc" and result.get("header.from").rstrip(".") == domain:
            return f"DMARC pass for {domain} reported by {results.authserv_id}"
    return ""


def verdict(values: tuple[str, ...], address: str, trusted: tuple[str, ...]) -> str:
    """"" unless the topmost header is a trusted server's and vouches for `address`."""
    results = trusted_results(values, trusted)
    return vouches_for(results, address) if results is not None else ""


def explain(values: tuple[str, ...], trusted: tuple[str, ...]) -> str:
    """Why the headers did not authenticate the sender, for the agent's error mail."""
    if not values:
        return "the mail carries no Authentication-Results header"
    topmost = parse_header(values[0]).authserv_id or "(no authserv-id)"
    if trusted_results(values, trusted) is None:
        return f"the topmost Authentication-Results header is from {topmost}, which is not a trusted server"
    return f"the Authentication-Results of {topmost} show no DKIM or DMARC pass for the sender's domain"


# ----------------------------------------------------------------------------------------
# Lexing


def _without_comments(value: str) -> str:
    """Comments (nested, with quoted-pairs) become one space; quoted strings are kept."""
    out: list[str] = []
    depth = 0
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
        elif char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif depth == 0 and char == '"':
            quoted = not quoted
            out.append(char)
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and depth and char == ")":
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_semicolons(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _method_result(part: str) -> MethodResult | None:
    words = _WORD.findall(_EQUALS.sub("=", part))
    if not words or "=" not in words[0]:
        return None
    method, _, result = words[0].partition("=")
    properties = []
    for word in words[1:]:
        name, equals, value = word.partition("=")
        if equals:
            properties.append((name.lower(), _unquote(value).lower()))
    return MethodResult(method.partition("/")[0].lower(), _unquote(result).lower(), tuple(properties))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _signing_domain(result: MethodResult) -> str:
    signer = result.get("header.d") or result.get("header.i").rpartition("@")[2]
    return signer.strip().rstrip(".")


def _is_same_or_parent(signer: str, domain: str) -> bool:
    """example.com signs for example.com and mail.example.com; a bare top-level domain never does."""
    if "." not in signer:
        return False
    return domain == signer or domain.endswith("." + signer)
