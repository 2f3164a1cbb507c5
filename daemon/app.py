"""The wiring: one config → the database, the core's Setup and the template renderer.

Built once by `cli.py` and handed to intake, the sender and the timers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from daemon.config import Config
from daemon.core.compose import Envelope, Renderer
from daemon.core.rules.model import RuleSet
from daemon.core.values import AgentView, ContactView, LifecyclePolicy, MailboxView, Setup
from daemon.errors import ConfigError
from daemon.parsing import Parser
from daemon.rulefiles import load_contacts, load_ruleset
from daemon.store.contacts import store_contacts
from daemon.store.db import Database
from daemon.store.migrate import ensure_schema
from daemon.templates import load_renderer

log = logging.getLogger(__name__)


def load_rules_or_fail(config: Config) -> RuleSet:
    """The rule set, or a ConfigError with every problem."""
    rules, problems = load_ruleset(config)
    if problems:
        raise ConfigError(problems)
    return rules


def load_contacts_or_fail(config: Config) -> tuple[ContactView, ...]:
    contacts, problems = load_contacts(config.paths.contacts)
    if problems:
        raise ConfigError(problems)
    return contacts


def core_setup(config: Config) -> Setup:
    """What the pure core needs of the configuration, as plain values."""
    life = config.lifecycle
    return Setup(
        secret=config.instance.secret.encode("utf-8"),
        domain=config.domain,
        subject_prefix=config.instance.subject_prefix,
        instance_name=config.instance.name,
        default_language=config.instance.default_language,
        languages=config.instance.languages,
        mailboxes=tuple(MailboxView(name=m.name, address=m.address.lower(), aliases=tuple(a.lower() for a in m.aliases),
                                    unknown_sender=m.unknown_sender, language=m.language) for m in config.mailboxes),
        agents=tuple(AgentView(email=a.email.lower(), name=a.name, groups=a.groups,
                               aliases=tuple(x.lower() for x in a.aliases), language=a.language)
                     for a in config.agents),
        lifecycle=LifecyclePolicy(
            closed_followup=life.closed_followup, reopen_within=life.reopen_within, stranger=life.stranger,
            thanks_closes=life.thanks_closes, thanks_phrases=life.thanks_phrases,
            close_resolved_after=life.close_resolved_after, close_waiting_after=life.close_waiting_after,
            warn_before_close=life.warn_before_close),
        auto_replies_per_hour=config.loop.auto_replies_per_hour,
        auto_replies_per_day=config.loop.auto_replies_per_day,
        loop_header=config.loop.loop_header,
        reply_languages=config.intake.reply_languages,
        max_attachment_bytes=int(config.intake.max_attachment_size),
        trusted_authserv_ids=tuple(a.lower() for a in config.security.trusted_authserv_ids),
        ticket_types=config.tickets.types,
        low_priority_types=config.tickets.low_priority_types,
        priority_matrix=tuple((k.partition(".")[0], k.partition(".")[2], v)
                              for k, v in sorted(config.tickets.priority_matrix.items())),
        resolution_codes=config.tickets.resolution_codes,
        notify_agents_on_new=config.tickets.notify_agents_on_new,
        timezone=config.instance.timezone,
    )


@dataclass
class App:
    config: Config
    db: Database
    setup: Setup
    renderer: Renderer
    rules: RuleSet = field(default_factory=RuleSet)
    parser: Parser = field(default_factory=lambda: Parser(0))

    @classmethod
    def from_config(cls, config: Config, migrate: bool = True, rules: bool = True) -> App:
        """Everything one running Postdesk needs; broken rule or contacts files are a ConfigError.
        `rules=False`: for commands that only read tickets, which broken rule files must not stop."""
        ruleset = load_rules_or_fail(config) if rules else RuleSet()
        contacts = load_contacts_or_fail(config) if rules else ()
        db = Database(config.database.url, config.base_dir)
        if migrate:
            ensure_schema(db, config.database.auto_migrate)
            if contacts:
                store_contacts(db, contacts)
        return cls(config=config, db=db, setup=core_setup(config), renderer=load_renderer(config.paths.templates),
                   rules=ruleset,
                   parser=Parser(Parser.workers_for(config.intake.parse_workers)))

    def reload_rules(self) -> bool:
        """SIGHUP: the new rule files, or the old ones kept (and why logged) if they are broken."""
        try:
            self.rules = load_rules_or_fail(self.config)
        except ConfigError as error:
            log.error("rule files not reloaded; the old rules stay in force:\n%s", error)
            return False
        log.info("rule files reloaded: %d rules", len(self.rules.rules))
        return True

    def envelope(self, mailbox: str) -> Envelope:
        return Envelope(address=self.setup.mailbox(mailbox).address, name=self.setup.instance_name)

    def close(self) -> None:
        self.parser.close()
        self.db.dispose()
