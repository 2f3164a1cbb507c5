"""`postdesk check-config`: the config, then the rule files and templates it names, every
problem as FILE:LINE: what is wrong, what is expected."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from daemon.config import load_config
from daemon.errors import ConfigError, Problem
from daemon.rulefiles import check_rule_files
from daemon.templates import check_templates


def check_all(path: Path, environ: Mapping[str, str]) -> list[Problem]:
    try:
        config = load_config(path, environ)
    except ConfigError as error:
        return error.problems
    problems = check_templates(config.paths.templates)
    problems += check_database_url(config.database.url, str(path))
    problems += check_rule_files(config)
    return problems


def check_database_url(url: str, file: str) -> list[Problem]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return [Problem(file, 1, f"database.url {url!r} is not a database URL; expected sqlite:///PATH or "
                        "postgresql://USER@HOST/DB")]
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return [Problem(file, 1, f"database.url uses {parsed.get_backend_name()!r}; expected sqlite or postgresql")]
    return []
