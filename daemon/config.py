"""The configuration: one TOML file read once into frozen dataclasses and passed down.

`load_config(path)` returns a `Config` or raises `ConfigError` listing every problem as
`FILE:LINE: what is wrong, what is expected`. No other module reads the config file or
the environment; `config.example.toml` documents every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from daemon.configschema import BuildContext, ByteSize, KeyLines, KeyPath, build
from daemon.errors import ConfigError, Problem

Security = Literal["tls", "starttls", "none"]
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


def _is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///var/postdesk.db"
    auto_migrate: bool = True


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    secret: str = field(metadata={"secret": True, "doc": "a long random string that signs reply tokens"})
    subject_prefix: str = "Support"
    name: str = "Support"
    domain: str = ""  # for Message-IDs; default: the domain of the first mailbox address
    default_language: str = "en"
    languages: tuple[str, ...] = ("en", "uk")
    timezone: str = "UTC"

    def validate(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        if len(self.secret) < 16:
            problems.append((("secret",), "instance.secret is too short; expected at least 16 characters"))
        if not re.fullmatch(r"[\w .-]{1,40}", self.subject_prefix):
            problems.append((("subject_prefix",), "instance.subject_prefix must be 1-40 letters, digits, "
                             "spaces, dots or dashes"))
        return problems


@dataclass(frozen=True, slots=True)
class ImapConfig:
    host: str
    port: int = 993
    security: Security = "tls"
    username: str = ""
    password: str = field(default="", metadata={"secret": True})
    auth: Literal["login", "xoauth2"] = "login"
    oauth_token_file: str = field(default="", metadata={"path": True})
    oauth_token_command: str = ""
    folder: str = "INBOX"
    done: Literal["move", "keyword"] = "move"
    processed_folder: str = "Postdesk/Processed"
    done_keyword: str = "$PostdeskDone"
    quarantine_folder: str = "Postdesk/Quarantine"
    idle: bool = True
    poll_interval: timedelta = timedelta(seconds=30)
    idle_renew: timedelta = timedelta(minutes=25)
    # While mail keeps arriving, look again this long after each pass rather than wait for IDLE
    # (Dovecot, for one, announces new mail over IDLE half a second after it comes); 0: off.
    burst_recheck: timedelta = timedelta(seconds=0.1)
    batch_size: int = 200
    timeout: timedelta = timedelta(seconds=60)
    ca_file: str = field(default="", metadata={"path": True})

    def validate(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        if not 0 < self.port < 65536:
            problems.append((("port",), f"port {self.port} is out of range; expected 1-65535"))
        if self.security == "none" and self.host not in ("127.0.0.1", "::1", "localhost"):
            problems.append((("security",), 'security = "none" sends the password in clear; it is allowed '
                             'only for a loopback host (127.0.0.1, ::1, localhost); expected "tls" or "starttls"'))
        if self.auth == "xoauth2" and not (self.oauth_token_file or self.oauth_token_command):
            problems.append((("auth",), 'auth = "xoauth2" needs oauth_token_file or oauth_token_command'))
        if self.idle_renew > timedelta(minutes=29):
            problems.append((("idle_renew",), "idle_renew must be under 29 minutes (RFC 2177)"))
        if not 1 <= self.batch_size <= 5000:
            problems.append((("batch_size",), "batch_size must be between 1 and 5000"))
        if self.burst_recheck > timedelta(seconds=60):
            problems.append((("burst_recheck",), "burst_recheck must be at most 60 seconds (0 turns it off)"))
        return problems


@dataclass(frozen=True, slots=True)
class MaildirConfig:
    path: str = field(metadata={"path": True, "doc": "the Maildir an MTA delivers to"})
    done: Literal["cur", "folder"] = "cur"
    processed_folder: str = ".Processed"
    quarantine_folder: str = ".Quarantine"
    poll_interval: timedelta = timedelta(seconds=0.5)


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    imap: ImapConfig | None = None
    maildir: MaildirConfig | None = None
    unknown_sender: Literal["open", "hold"] = "open"
    language: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        if (self.imap is None) == (self.maildir is None):
            problems.append(((), f"mailbox {self.name!r} needs exactly one of [mailboxes.imap] or "
                             "[mailboxes.maildir]"))
        for key, address in [("address", self.address), *[("aliases", a) for a in self.aliases]]:
            if not _is_email(address):
                problems.append(((key,), f"{address!r} is not an email address; expected name@domain"))
        return problems

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a.lower() for a in (self.address, *self.aliases))


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    transport: Literal["smtp", "maildir"] = "smtp"
    maildir: str = field(default="var/outbox", metadata={"path": True})
    concurrency: int = 4
    retry_for: timedelta = timedelta(days=2)
    max_backoff: timedelta = timedelta(minutes=30)

    def validate(self) -> list[tuple[KeyPath, str]]:
        if not 1 <= self.concurrency <= 64:
            return [(("concurrency",), "concurrency must be between 1 and 64")]
        return []


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    password: str = field(default="", metadata={"secret": True})
    timeout: timedelta = timedelta(seconds=60)
    ca_file: str = field(default="", metadata={"path": True})
    helo: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        if not 0 < self.port < 65536:
            return [(("port",), f"port {self.port} is out of range; expected 1-65535")]
        return []


@dataclass(frozen=True, slots=True)
class AgentConfig:
    email: str
    name: str = ""
    groups: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    language: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        bad = [a for a in (self.email, *self.aliases) if not _is_email(a)]
        return [(("email",), f"{a!r} is not an email address; expected name@domain") for a in bad]


@dataclass(frozen=True, slots=True)
class PathsConfig:
    rules: str = field(default="rules", metadata={"path": True})
    templates: str = field(default="templates", metadata={"path": True})
    contacts: str = field(default="", metadata={"path": True})


_MB_25, _MB_60 = ByteSize(25 * 1024 * 1024), ByteSize(60 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    max_attachment_size: ByteSize = _MB_25
    max_mail_size: ByteSize = _MB_60
    reply_languages: tuple[str, ...] = ()
    parse_workers: int = -1  # processes parsing a batch while it is stored; -1: one if there are 2+ CPUs


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    closed_followup: Literal["reopen", "new", "reply"] = "new"
    reopen_within: timedelta = timedelta(days=14)
    stranger: Literal["new", "hold", "append"] = "new"
    thanks_closes: bool = True
    thanks_phrases: tuple[str, ...] = ()
    close_resolved_after: timedelta = timedelta(days=5)
    close_waiting_after: timedelta = timedelta(days=25)
    warn_before_close: timedelta = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class LoopConfig:
    auto_replies_per_hour: int = 5
    auto_replies_per_day: int = 20
    loop_header: str = "X-Postdesk-Loop"


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    trusted_authserv_ids: tuple[str, ...] = ()  # your MX's authserv-id in Authentication-Results


@dataclass(frozen=True, slots=True)
class TicketsConfig:
    types: tuple[str, ...] = ("incident", "question", "feature_request", "service_request")
    low_priority_types: tuple[str, ...] = ("question", "feature_request")
    resolution_codes: tuple[str, ...] = ()
    notify_agents_on_new: bool = True
    # impact x urgency -> priority: keys "IMPACT.URGENCY" (high/medium/low), values urgent/high/medium/low
    priority_matrix: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        levels, priorities = ("high", "medium", "low"), ("urgent", "high", "medium", "low")
        for key, value in self.priority_matrix.items():
            impact, _, urgency = key.partition(".")
            if impact not in levels or urgency not in levels:
                problems.append((("priority_matrix", key), f"priority_matrix key {key!r} must be IMPACT.URGENCY "
                                 "with each of high, medium, low (e.g. \"high.medium\")"))
            if value not in priorities:
                problems.append((("priority_matrix", key), f"priority {value!r} must be one of: "
                                 + ", ".join(priorities)))
        return problems


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True, slots=True)
class Config:
    instance: InstanceConfig
    database: DatabaseConfig = DatabaseConfig()
    mailboxes: tuple[MailboxConfig, ...] = ()
    outbound: OutboundConfig = OutboundConfig()
    smtp: SmtpConfig | None = None
    agents: tuple[AgentConfig, ...] = ()
    paths: PathsConfig = PathsConfig()
    intake: IntakeConfig = IntakeConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    loop: LoopConfig = LoopConfig()
    security: SecurityConfig = SecurityConfig()
    tickets: TicketsConfig = TicketsConfig()
    logging: LoggingConfig = LoggingConfig()
    file: str = ""  # set by load_config: the file this came from
    base_dir: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        if not self.mailboxes:
            problems.append(((), "no [[mailboxes]]; expected at least one mailbox (imap or maildir)"))
        problems += _duplicates("mailboxes", [m.name for m in self.mailboxes], "mailbox name")
        problems += _duplicates("agents", [a.email.lower() for a in self.agents], "agent email")
        if self.outbound.transport == "smtp" and self.smtp is None:
            problems.append((("outbound", "transport"), 'outbound.transport = "smtp" needs an [smtp] section; '
                             'expected [smtp] with host = ... or transport = "maildir"'))
        return problems

    @property
    def domain(self) -> str:
        if self.instance.domain:
            return self.instance.domain
        return self.mailboxes[0].address.rsplit("@", 1)[-1] if self.mailboxes else "localhost"

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(a for m in self.mailboxes for a in m.addresses)

    def mailbox(self, name: str) -> MailboxConfig | None:
        return next((m for m in self.mailboxes if m.name == name), None)


def _duplicates(section: str, values: list[str], what: str) -> list[tuple[KeyPath, str]]:
    seen: set[str] = set()
    problems: list[tuple[KeyPath, str]] = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(((section, index), f"duplicate {what} {value!r}; each must be unique"))
        seen.add(value)
    return problems


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Without -c: $POSTDESK_CONFIG, then ./postdesk.toml."""
    return Path(environ.get("POSTDESK_CONFIG") or "postdesk.toml")


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file; raise ConfigError with every problem found."""
    file = Path(path)
    shown = str(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(shown, 0, "no such config file; give one with -c FILE or "
                                   "$POSTDESK_CONFIG, or create ./postdesk.toml")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([Problem(shown, 0, f"cannot read the config file: {error}")]) from None
    table = _parse_toml(text, shown)
    ctx = BuildContext(shown, file.resolve().parent, KeyLines(text), environ if environ is not None else os.environ)
    config = build(Config, table, (), ctx)
    if ctx.problems or config is None:
        raise ConfigError(sorted(ctx.problems, key=lambda p: p.line))
    return _with_origin(config, file)


def _with_origin(config: Config, file: Path) -> Config:
    from dataclasses import replace

    return replace(config, file=str(file), base_dir=str(file.resolve().parent))


def _parse_toml(text: str, shown: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else max(1, text.count("\n"))
        what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise ConfigError([Problem(shown, line, f"TOML syntax error: {what}; expected valid TOML "
                                   "(see config.example.toml)")]) from None
