"""e2e: the `postdesk` command as a subprocess, as an operator runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., subprocess.CompletedProcess[bytes]]


def postdesk_command() -> list[str]:
    return [sys.executable, "-m", "daemon"]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding an unchanged copy of config.example.toml (relative paths land here)."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "postdesk.toml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules", dirs_exist_ok=True)
    return tmp_path


@pytest.fixture
def postdesk(site: Path) -> Run:
    def run(*args: str, input: bytes | None = None, config: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*postdesk_command(), "-c", str(config or site / "postdesk.toml"), *args],
                              input=input, capture_output=True, timeout=timeout, cwd=site)
    return run
