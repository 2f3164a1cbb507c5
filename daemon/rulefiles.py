"""The IO side of the rules: read the rule files and the contacts file named in the config.

`load_ruleset(config)` reads `paths.rules/*.toml` and hands the texts to the pure
`core.rules.load.load_rules` with the config's agents, groups, ticket types and the
template kinds that exist; `load_contacts(path)` reads the contacts file (TOML or CSV)
into `ContactView`s. Both return their problems as FILE:LINE instead of raising, so
`check-config` lists them all and a reload can keep the old rules.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import tomllib
from pathlib import Path

from daemon.config import Config
from daemon.core.rules.load import load_rules
from daemon.core.rules.model import RuleSet
from daemon.core.values import ContactView, OutboundKind
from daemon.errors import ConfigError, Problem
from daemon.templates import load_sources

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_KNOWN = ("email", "name", "organisation", "language")


def read_rule_files(folder: str | Path, base_dir: str | Path | None = None) -> dict[str, str]:
    """Every `*.toml` in the folder: file name → text. Names are relative to `base_dir` (the
    config's folder) when the files lie below it ("rules/10-classify.toml"), as traces and
    events show them. A missing folder means no rules; an unreadable file raises ConfigError."""
    path = Path(folder)
    if not path.is_dir():
        log.warning("no rules folder %s: running without rules", path)
        return {}
    files: dict[str, str] = {}
    problems: list[Problem] = []
    for file in sorted(path.glob("*.toml")):
        name = _shown(file, base_dir)
        try:
            files[name] = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(name, 0, f"cannot read the rule file: {error}; expected UTF-8 TOML"))
    if problems:
        raise ConfigError(problems)
    return files


def _shown(file: Path, base_dir: str | Path | None) -> str:
    if base_dir:
        try:
            return str(file.resolve().relative_to(Path(base_dir).resolve()))
        except ValueError:
            pass
    return str(file)


def template_kinds(templates_dir: str | Path | None) -> frozenset[str]:
    """The customer-facing template kinds that have a template (what rules may answer with)."""
    names = {name.split("/", 1)[-1].split(".", 1)[0] for name in load_sources(templates_dir)[0]}
    return frozenset(kind.value for kind in OutboundKind if kind.value in names and not kind.to_agents)


def load_ruleset(config: Config) -> tuple[RuleSet, list[Problem]]:
    """The compiled rules of `paths.rules`, and every problem in them."""
    try:
        files = read_rule_files(config.paths.rules, config.base_dir)
    except ConfigError as error:
        return RuleSet(), error.problems
    return load_rules(
        files,
        agents=[agent.email for agent in config.agents],
        groups=sorted({group for agent in config.agents for group in agent.groups}),
        template_kinds=template_kinds(config.paths.templates),
        ticket_types=config.tickets.types,
    )


def check_rule_files(config: Config) -> list[Problem]:
    """For `postdesk check-config`: the problems of the rule files and of the contacts file."""
    return load_ruleset(config)[1] + load_contacts(config.paths.contacts)[1]


# ----------------------------------------------------------------------------------------
# Contacts


def load_contacts(path: str | Path) -> tuple[tuple[ContactView, ...], list[Problem]]:
    """The contacts file: TOML `[[contact]]` tables or a CSV with a header row. Columns or keys
    email (required), name, organisation, language; any other is a free attribute (contract)."""
    if not str(path):
        return (), []
    shown = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return (), [Problem(shown, 0, f"cannot read the contacts file: {error}; expected a UTF-8 TOML or CSV file")]
    if shown.lower().endswith(".toml"):
        rows = _toml_rows(text, shown)
    elif shown.lower().endswith(".csv"):
        rows = _csv_rows(text)
    else:
        return (), [Problem(shown, 0, "unknown contacts file type; expected a .toml or a .csv file")]
    if isinstance(rows, Problem):
        return (), [rows]
    return _contacts(rows, shown)


Row = tuple[int, dict[str, object]]


def _toml_rows(text: str, shown: str) -> list[Row] | Problem:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"at line (\d+)", str(error))
        return Problem(shown, int(found.group(1)) if found else 1, f"TOML syntax error: {error}")
    unknown = [key for key in table if key != "contact"]
    entries = table.get("contact", [])
    if unknown or not isinstance(entries, list):
        return Problem(shown, 1, "a contacts file holds [[contact]] tables only; expected [[contact]] with "
                       "email = \"...\", name, organisation, language and attributes such as contract = \"expired\"")
    starts = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"^\s*\[\[\s*contact\s*\]\]", line)]
    return [(starts[i] if i < len(starts) else 1, entry) for i, entry in enumerate(entries) if isinstance(entry, dict)]


def _csv_rows(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    rows: list[Row] = []
    for row in reader:
        clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        rows.append((reader.line_num, {k: v for k, v in clean.items() if v}))
    return rows


def _contacts(rows: list[Row], shown: str) -> tuple[tuple[ContactView, ...], list[Problem]]:
    found: dict[str, ContactView] = {}
    problems: list[Problem] = []
    for line, row in rows:
        contact = _contact(row)
        if isinstance(contact, str):
            problems.append(Problem(shown, line, contact))
        elif contact.email in found:
            problems.append(Problem(shown, line, f"contact {contact.email} is listed twice; expected each address "
                                    "once"))
        else:
            found[contact.email] = contact
    return tuple(found.values()), problems


def _contact(row: dict[str, object]) -> ContactView | str:
    """A contact, or what is wrong with the row."""
    values: dict[str, str] = {}
    for key, value in row.items():
        if isinstance(value, dict | list):
            return f"{key} must be a single value such as \"expired\", not a table or list"
        text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
        values["organisation" if key == "organization" else key.lower()] = text
    email = values.get("email", "").lower()
    if not _EMAIL.match(email):
        return f"{email!r} is not an email address; expected email = \"name@domain\" in every contact"
    attributes = tuple((key, value) for key, value in values.items() if key not in _KNOWN and value)
    return ContactView(email=email, name=values.get("name", ""), organisation=values.get("organisation", ""),
                       language=values.get("language", "").lower(), attributes=attributes)
