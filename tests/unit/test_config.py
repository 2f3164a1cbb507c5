"""Config: typed values, FILE:LINE for every problem, secrets from files and the environment."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config import default_config_path, load_config
from daemon.configschema import parse_duration, parse_size
from daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = """[database]
url = "sqlite:///var/x.db"

[instance]
secret = "a-very-long-secret-0123456789"
subject_prefix = "Support"

[[mailboxes]]
name = "local"
address = "help@example.com"
  [mailboxes.maildir]
  path = "mail"

[outbound]
transport = "maildir"
maildir = "outbox"

[[agents]]
email = "alice@example.com"
name = "Alice"
groups = ["l1"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postdesk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ or {})
    return [str(p) for p in caught.value.problems]


def test_example_config_loads_as_is() -> None:
    config = load_config(ROOT / "config.example.toml", {})
    assert config.outbound.transport == "maildir"
    assert config.mailboxes[0].maildir is not None
    assert config.database.url.startswith("sqlite")


def test_good_config_gives_typed_values_and_resolves_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), {})
    assert config.instance.subject_prefix == "Support"
    assert config.mailboxes[0].maildir.path == str(tmp_path / "mail")
    assert config.outbound.maildir == str(tmp_path / "outbox")
    assert config.agents[0].groups == ("l1",)
    assert config.lifecycle.close_resolved_after == timedelta(days=5)
    assert config.domain == "example.com"


@pytest.mark.parametrize(("edit", "line", "words"), [
    (('subject_prefix = "Support"', "subject_prefix = 42"), 6, ["instance.subject_prefix", "expected a string"]),
    (('subject_prefix = "Support"', 'subject_prefix = "Support"\ncolour = "blue"'), 7,
     ["unknown key 'instance.colour'", "expected one of"]),
    (('  path = "mail"', '  path = "mail"\n  bogus = 1'), 13, ["mailboxes[0].maildir.bogus"]),
    (('transport = "maildir"', 'transport = "pigeon"'), 15, ["'pigeon'", "expected 'smtp' or 'maildir'"]),
    (('groups = ["l1"]', 'groups = "l1"'), 21, ["agents[0].groups must be a list"]),
    (('address = "help@example.com"', 'address = "not-an-address"'), 10, ["not an email address"]),
])
def test_each_problem_names_file_line_and_what_is_expected(tmp_path: Path, edit: tuple[str, str], line: int,
                                                           words: list[str]) -> None:
    problems = problems_of(tmp_path, GOOD.replace(*edit))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'postdesk.toml'}:{line}: ")
    for word in words:
        assert word in problems[0]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace('subject_prefix = "Support"', 'subject_prefix = "Support'))
    assert len(problems) == 1
    assert re.match(rf"{re.escape(str(tmp_path / 'postdesk.toml'))}:6: TOML syntax error", problems[0])


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    text = GOOD.replace("subject_prefix = \"Support\"", "subject_prefix = 42\ncolour = 1")
    text = text.replace('  path = "mail"', '  path = 7').replace('name = "Alice"', "name = true")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 4, problems
    assert [int(p.split(":")[1]) for p in problems] == sorted(int(p.split(":")[1]) for p in problems)


def test_secret_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret-from-a-file-0123456789\n")
    config = load_config(write(tmp_path, GOOD.replace('secret = "a-very-long-secret-0123456789"',
                                                      'secret_file = "secret.txt"')), {})
    assert config.instance.secret == "secret-from-a-file-0123456789"
    config = load_config(write(tmp_path, GOOD.replace('secret = "a-very-long-secret-0123456789"',
                                                      'secret_env = "PD_SECRET"')), {"PD_SECRET": "x" * 20})
    assert config.instance.secret == "x" * 20


def test_missing_secret_sources_are_problems(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace('secret = "a-very-long-secret-0123456789"',
                                                  'secret_file = "nope.txt"'))
    assert "cannot read instance.secret_file" in problems[0] and ":5:" in problems[0]
    problems = problems_of(tmp_path, GOOD.replace('secret = "a-very-long-secret-0123456789"', 'secret_env = "NOPE"'))
    assert "environment variable 'NOPE' is not set" in problems[0]


def test_smtp_transport_needs_smtp_section(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace('transport = "maildir"', 'transport = "smtp"'))
    assert ":15:" in problems[0] and "[smtp]" in problems[0]


def test_imap_plain_only_on_loopback(tmp_path: Path) -> None:
    text = GOOD.replace('  [mailboxes.maildir]\n  path = "mail"',
                        '  [mailboxes.imap]\n  host = "imap.example.com"\n  security = "none"')
    problems = problems_of(tmp_path, text)
    assert "loopback" in problems[0]


def test_imap_burst_recheck_is_a_short_duration(tmp_path: Path) -> None:
    imap = '  [mailboxes.imap]\n  host = "imap.example.com"\n  burst_recheck = '
    text = GOOD.replace('  [mailboxes.maildir]\n  path = "mail"', imap + '0.25')
    imap_config = load_config(write(tmp_path, text), {}).mailboxes[0].imap
    assert imap_config is not None and imap_config.burst_recheck == timedelta(seconds=0.25)
    problems = problems_of(tmp_path, GOOD.replace('  [mailboxes.maildir]\n  path = "mail"', imap + '"5m"'))
    assert len(problems) == 1 and "burst_recheck must be at most 60 seconds" in problems[0]


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", {})
    assert "no such config file" in str(caught.value)


def test_default_path_prefers_environment() -> None:
    assert default_config_path({"POSTDESK_CONFIG": "/etc/pd.toml"}) == Path("/etc/pd.toml")
    assert default_config_path({}) == Path("postdesk.toml")


@pytest.mark.parametrize(("text", "seconds"), [(90, 90), ("90s", 90), ("15m", 900), ("4h", 14400), ("5d", 432000),
                                               ("1h30m", 5400), (0.5, 0.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "-5", -1, True, "5x"])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None


def test_sizes() -> None:
    assert parse_size("25MB") == 25 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size(100) == 100
    assert parse_size("lots") is None
