"""The exceptions Postdesk raises on purpose. `cli.py` maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class PostdeskError(Exception):
    """Base of every error Postdesk raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a config, rule or template file, reported as `FILE:LINE: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(PostdeskError):
    """The configuration (or a rule file or template it names) has problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TemporaryError(PostdeskError):
    """Network, server or lock trouble: the same work may succeed later."""


class PermanentError(PostdeskError):
    """Work that will never succeed as it is."""


class SchemaNotReady(PostdeskError):
    """The database schema is missing or older than this version of Postdesk."""
