"""Postdesk set up against the test servers: a config file written for them, and the App."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daemon.app import App
from daemon.config import load_config
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.smtpd import SmtpServer

SECRET = "harness-secret-0123456789abcdef"


@dataclass
class Site:
    """What to write into the test's postdesk.toml."""

    root: Path
    db_url: str
    mailboxes: list[str] = field(default_factory=list)
    outbound: str = ""
    agents: str = ('[[agents]]\nemail = "alice@example.com"\nname = "Alice"\ngroups = ["l1"]\n\n'
                   '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\ngroups = ["l2"]\n')
    extra: str = ""

    def imap(self, dovecot: Dovecot, user: MailUser, *, name: str = "support", address: str = "support@example.com",
             security: str = "none", **options: object) -> Site:
        lines = ['host = "127.0.0.1"', f"port = {dovecot.port_for(security)}", f'security = "{security}"',  # type: ignore[arg-type]
                 f'username = "{user.name}"', f'password = "{user.password}"', f'ca_file = "{dovecot.ca_path}"']
        lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
        self.mailboxes.append(f'[[mailboxes]]\nname = "{name}"\naddress = "{address}"\n  [mailboxes.imap]\n  '
                              + "\n  ".join(lines) + "\n")
        return self

    def maildir(self, *, name: str = "local", address: str = "help@example.com", **options: object) -> Site:
        lines = [f'path = "{self.root / "mail" / name}"'] + [f"{k} = {_toml(v)}" for k, v in options.items()]
        self.mailboxes.append(f'[[mailboxes]]\nname = "{name}"\naddress = "{address}"\n  [mailboxes.maildir]\n  '
                              + "\n  ".join(lines) + "\n")
        return self

    def smtp(self, server: SmtpServer, **options: object) -> Site:
        lines = ['host = "127.0.0.1"', f"port = {server.port}", f'security = "{server.security}"',
                 f'ca_file = "{server.cert.ca_path if server.cert else ""}"', 'timeout = 10']
        if server.auth:
            lines += [f'username = "{server.auth[0]}"', f'password = "{server.auth[1]}"']
        lines += [f"{k} = {_toml(v)}" for k, v in options.items()]
        self.outbound = '[outbound]\ntransport = "smtp"\nretry_for = "1h"\n\n[smtp]\n' + "\n".join(lines) + "\n"
        return self

    def outbox_maildir(self) -> Site:
        self.outbound = f'[outbound]\ntransport = "maildir"\nmaildir = "{self.root / "outbox"}"\n'
        return self

    def write(self) -> Path:
        text = (f'[database]\nurl = "{self.db_url}"\n\n[instance]\nsecret = "{SECRET}"\nsubject_prefix = "Support"\n'
                f'name = "Example Support"\ndomain = "example.com"\n\n'
                + "\n".join(self.mailboxes) + "\n" + (self.outbound or self.outbox_maildir().outbound) + "\n"
                + self.agents + "\n" + self.extra)
        path = self.root / "postdesk.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def app(self) -> App:
        return App.from_config(load_config(self.write(), {}))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
