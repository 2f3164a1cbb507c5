"""The core does no IO: no database, network, asyncio, environment or clock (STYLE §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "daemon" / "core"
FORBIDDEN_MODULES = ("sqlalchemy", "imapclient", "aiosmtplib", "aiosmtpd", "asyncio", "socket", "subprocess",
                     "daemon.store", "daemon.adapters", "daemon.config", "daemon.intake", "daemon.app", "requests")
FORBIDDEN_CALLS = ("datetime.now", "datetime.utcnow", "date.today", "time.time", "time.monotonic", "os.environ",
                   "os.getenv", "random.", "open(", "Path.read_", ".read_text(", ".read_bytes(", "uuid.uuid")


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_io(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    bad = [n for n in imported_names(tree) if n.split(".")[0] in FORBIDDEN_MODULES or n in FORBIDDEN_MODULES
           or any(n.startswith(f + ".") for f in FORBIDDEN_MODULES)]
    assert not bad, f"{module.name} imports {bad}"


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_reads_no_clock_environment_or_files(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    found = [call for call in FORBIDDEN_CALLS if call in code]
    assert not found, f"{module.name} uses {found}"


def test_there_are_core_modules() -> None:
    assert len(core_modules()) > 10
