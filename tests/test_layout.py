"""The import rules of docs/code-layout.md, read from the source: arrows point down only.

Every `import` and `from ... import` in the package is read with `ast`,
including those inside functions and under `TYPE_CHECKING`, so a rule cannot
be slipped past by importing late.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import multichannel

PACKAGE = Path(multichannel.__file__).parent

CORE = {
    "multichannel.errors",
    "multichannel.clock",
    "multichannel.windows",
    "multichannel._weeks",
    "multichannel.contacts",
    "multichannel.messages",
    "multichannel.dispatch",
    "multichannel.strategy",
    "multichannel.consent",
    "multichannel._redact",
    "multichannel._fields",
}
# What the core may use outside the standard library: validation and data, no I/O.
CORE_THIRD_PARTY = {"pydantic", "pydantic_core", "phonenumbers", "email_validator"}
# Standard-library modules that reach the network, the disk or other processes.
IO_STDLIB = {
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "smtplib",
    "sqlite3",
    "subprocess",
    "multiprocessing",
    "shutil",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield module_name(path), path


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            # `from multichannel.cli import demo` imports a module too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def breaches(rule: str) -> list[str]:
    found = []
    for name, path in modules():
        for target in sorted(imports(path)):
            if RULES[rule](name, target):
                found.append(f"{name} imports {target}")
    return found


def core_reaches_out(name: str, target: str) -> bool:
    if name not in CORE:
        return False
    if under(target, "multichannel"):
        return target not in CORE and not any(target.startswith(core + ".") for core in CORE)
    top = target.split(".")[0]
    if under(target, *IO_STDLIB):
        return True
    return top not in CORE_THIRD_PARTY and not _stdlib(top)


def adapter_reaches_up(name: str, target: str) -> bool:
    return under(name, "multichannel.adapters") and under(
        target,
        "multichannel.store",
        "multichannel.worker",
        "multichannel.dispatcher",
        "multichannel._engine",
        "multichannel.webhooks",
        "multichannel.cli",
    )


def store_reaches_up(name: str, target: str) -> bool:
    return under(name, "multichannel.store") and under(
        target,
        "multichannel.adapters",
        "multichannel.worker",
        "multichannel.dispatcher",
        "multichannel._engine",
        "multichannel.webhooks",
        "multichannel.cli",
    )


def into_the_face(name: str, target: str) -> bool:
    face = under(name, "multichannel.cli") or name == "multichannel.__main__"
    return not face and under(target, "multichannel.cli")


def into_the_engine(name: str, target: str) -> bool:
    allowed = under(name, "multichannel._engine") or name in (
        "multichannel.dispatcher",
        "multichannel",  # re-exports BatchResult
    )
    return not allowed and under(target, "multichannel._engine")


def _stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top == "__future__"


RULES = {
    "the core imports nothing with I/O, nor anything above it": core_reaches_out,
    "adapters import no store, worker, dispatcher, webhooks or CLI": adapter_reaches_up,
    "stores import no adapter, worker, dispatcher, webhooks or CLI": store_reaches_up,
    "nothing imports the CLI": into_the_face,
    "only the dispatcher imports its engine": into_the_engine,
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_imports_point_down(rule: str) -> None:
    assert breaches(rule) == []


def test_the_rules_read_every_module_of_the_package() -> None:
    names = {name for name, _ in modules()}
    assert names >= CORE
    assert {"multichannel.cli", "multichannel._engine.send", "multichannel.adapters.base"} <= names


def test_a_breach_would_be_seen() -> None:
    assert core_reaches_out("multichannel.strategy", "multichannel.store")
    assert core_reaches_out("multichannel.contacts", "sqlalchemy")
    assert core_reaches_out("multichannel.clock", "socket")
    assert not core_reaches_out("multichannel.contacts", "phonenumbers")
    assert adapter_reaches_up("multichannel.adapters.smtp", "multichannel.store.sql")
    assert into_the_face("multichannel.worker", "multichannel.cli.common")
    assert not into_the_face("multichannel.cli.ops", "multichannel.cli.common")
    assert into_the_engine("multichannel.worker", "multichannel._engine.send")
