"""The Python examples in README.md, docs/ and examples/: find them, type-check them, run them.

    python tools/docs_examples.py check   # mypy --strict over every example that is not a sketch
    python tools/docs_examples.py list    # every example found, and what is done with it

``check`` is the CI step (``make docs-examples``); ``tests/test_docs_examples.py``
runs the runnable examples. The rules, for authors, are in docs/testing.md
("The examples in these pages"):

- A fenced block whose language is ``python`` or ``py`` is an example.
- A marker on the last non-blank line before the fence changes what is done
  with it: ``<!-- example: sketch -->`` (not checked, not run: a fragment, a
  signature, code that needs a package the project does not install),
  ``<!-- example: no-run -->`` (type-checked but not run: it needs credentials,
  a provider, a database server, or runs until stopped), and
  ``<!-- example: continues -->`` (the block builds on the previous checked
  block of the same page and is checked and run together with it, as one
  module). Flags combine with commas; a reason may follow in parentheses:
  ``<!-- example: no-run (needs Twilio credentials) -->``.
- Every other block is its own module, type-checked with ``mypy --strict``
  (without the pydantic plugin: what users of the library see) and run.
- A block with ``title="name.py"`` is written under that name, so that other
  blocks of the same page can import it; ``title="test_*.py"`` is run with
  pytest, everything else as a script.
- A ``.py`` file under examples/ is a module of its own; a first-line comment
  ``# example: no-run`` or ``# example: sketch`` marks it.

Runnable examples run in a fresh folder, each in a process forked from one
interpreter that has imported the library (so thirty examples do not pay for
thirty imports), with no network (only this machine can be reached), no
sleeping longer than a second and no provider credentials in the environment:
examples use the ``Outbox`` and a ``ManualClock``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = frozenset({"python", "py"})
FLAGS = frozenset({"sketch", "no-run", "continues"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*)$")
_TITLE = re.compile(r"""title=(?:"([^"]*)"|'([^']*)'|(\S+))""")
_MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<flags>[^()]*?)\s*(?:\([^)]*\))?\s*-->\s*$")
_PY_MARKER = re.compile(r"^#\s*example:\s*(?P<flags>[^()]*?)\s*(?:\([^)]*\))?\s*$")
_MYPY_CONFIG = """\
# What a user's project has: strict, and no pydantic plugin.
[mypy]
strict = True
python_version = 3.11
"""
# Loaded into every example's interpreter (as sitecustomize): the example may reach only this
# machine and may not sleep, so one that would call a provider or wait for real fails at once.
_GUARD = '''\
"""Loaded into every docs example by tools/docs_examples.py: no network, no sleeping."""

import atexit
import ipaddress
import os
import socket
import sys
import time

refused = []
_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sleep = time.sleep


def _local(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(host):
    refused.append(str(host))
    raise OSError(f"a docs example may not reach {host!r}: only this machine is reachable")


def getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        _refuse(host)
    return _getaddrinfo(host, *args, **kwargs)


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(address[0])
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(address[0])
    return _connect_ex(self, address)


def sleep(seconds):
    if seconds > 1:
        raise RuntimeError(
            f"a docs example slept {seconds}s; give the dispatcher a ManualClock instead"
        )
    _sleep(seconds)


def verdict(status):
    """``status``, or 3 if the example tried the network, even if it handled the refusal."""
    if refused and not status:
        print(f"a docs example tried to reach {sorted(set(refused))}", file=sys.stderr)
        return 3
    return status


@atexit.register
def _at_exit():
    if verdict(0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
time.sleep = sleep
'''
# Runs the examples: imports the library once, then forks a child per example (a few at a
# time), so that thirty examples do not each pay for importing it.
_RUNNER = '''\
"""Runs docs examples for tools/docs_examples.py: python _runner.py JOBS TIMEOUT MODULE:KIND..."""

import os
import runpy
import signal
import subprocess
import sys
import time
import traceback

import sitecustomize as guard

import multichannel  # noqa: F401 (imported once, before the children fork)

sys.path.insert(0, os.getcwd())  # the examples import one another by their titles


def output(module):
    return os.path.join("_runs", module + ".out")


def perform(module, kind):
    if kind == "pytest":
        import pytest

        return int(pytest.main(["-q", "-p", "no:cacheprovider", module]))
    sys.argv = [module]
    runpy.run_path(module, run_name="__main__")
    return 0


def child(module, kind):
    handle = os.open(output(module), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    try:
        status = perform(module, kind)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else int(done.code is not None)
    except BaseException:
        traceback.print_exc()
        status = 1
    status = guard.verdict(status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def forked(examples, jobs, timeout):
    pending, running, results = list(examples), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            module, kind = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                child(module, kind)
            running[pid] = (module, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for waiting, (module, started) in running.items():
                if time.monotonic() - started > timeout:
                    os.kill(waiting, signal.SIGKILL)
            time.sleep(0.005)
            continue
        module, started = running.pop(pid)
        results[module] = os.waitstatus_to_exitcode(status)
    return results


def one_by_one(examples, timeout):  # no fork (Windows): an interpreter per example
    results = {}
    for module, kind in examples:
        command = [sys.executable, module]
        if kind == "pytest":
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module]
        with open(output(module), "w") as out:
            try:
                done = subprocess.run(
                    command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
                )
                results[module] = done.returncode
            except subprocess.TimeoutExpired:
                results[module] = -9
    return results


def main():
    jobs, timeout = int(sys.argv[1]), float(sys.argv[2])
    examples = [argument.split(":") for argument in sys.argv[3:]]
    os.makedirs("_runs", exist_ok=True)
    if hasattr(os, "fork"):
        results = forked(examples, jobs, timeout)
    else:
        results = one_by_one(examples, timeout)
    for module, status in results.items():
        print(f"{module}:{status}")


main()
'''
# Environment variables an example must not see: real credentials stay out of the docs' runs.
_SECRET_PREFIXES = ("TWILIO_", "SENDGRID_", "TELNYX_", "SMTP_", "ACME_", "MULTICHANNEL_")


class ExampleError(ValueError):
    """A page breaks the example rules: an unknown marker, a title used twice."""


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a page (or one .py file under examples/)."""

    page: str
    line: int  # of the first line of code
    code: str
    title: str | None = None
    flags: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass
class Example:
    """One module made of one block, or of a block and the blocks that continue it."""

    module: str  # file name, e.g. "docs_getting_started_31.py" or "shifts.py"
    blocks: list[Block] = field(default_factory=list)

    @property
    def page(self) -> str:
        return self.blocks[0].page

    @property
    def where(self) -> str:
        return self.blocks[0].where

    @property
    def runnable(self) -> bool:
        return not any("no-run" in block.flags for block in self.blocks)

    @property
    def runner(self) -> str:
        """``pytest`` for a test module, else ``script``."""
        return "pytest" if self.module.startswith("test_") else "script"

    @property
    def code(self) -> str:
        return "".join(block.code for block in self.blocks)

    def source_line(self, line: int) -> str:
        """``page:line`` of line ``line`` (1-based) of the module."""
        for block in self.blocks:
            count = block.code.count("\n")
            if line <= count:
                return f"{block.page}:{block.line + line - 1}"
            line -= count
        return f"{self.page}:?"


@dataclass
class Collection:
    """Everything found: the modules to check and the sketches skipped."""

    examples: list[Example]
    sketches: list[Block]

    @property
    def runnable(self) -> list[Example]:
        return [example for example in self.examples if example.runnable]

    def summary(self) -> str:
        blocks = sum(len(example.blocks) for example in self.examples)
        return (
            f"{len(self.examples)} modules ({blocks} blocks) type-checked, "
            f"{len(self.runnable)} of them run by tests/test_docs_examples.py, "
            f"{len(self.sketches)} sketch{'' if len(self.sketches) == 1 else 'es'} skipped"
        )


def _flags(text: str, where: str) -> frozenset[str]:
    flags = frozenset(part for part in re.split(r"[\s,]+", text) if part)
    unknown = sorted(flags - FLAGS)
    if unknown:
        raise ExampleError(
            f"{where}: unknown example marker {unknown[0]!r}; use {', '.join(sorted(FLAGS))}"
        )
    if "sketch" in flags and len(flags) > 1:
        raise ExampleError(f"{where}: a sketch is neither checked nor run; mark it sketch alone")
    return flags


def _marker(previous: str | None, where: str) -> frozenset[str]:
    if previous is None:
        return frozenset()
    match = _MARKER.match(previous)
    if match is None:
        if re.match(r"^\s*<!--\s*example\b", previous):
            raise ExampleError(f"{where}: malformed marker {previous.strip()!r}")
        return frozenset()
    return _flags(match["flags"], where)


def blocks_in_markdown(text: str, page: str) -> Iterator[Block]:
    """The Python blocks of one Markdown page, in order."""
    lines = text.splitlines(keepends=True)
    previous: str | None = None  # last non-blank line outside a fence
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index].rstrip("\n"))
        if opening is None:
            if lines[index].strip():
                previous = lines[index]
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        body: list[str] = []
        index += 1
        start = index + 1
        while index < len(lines):
            closing = _FENCE.match(lines[index].rstrip("\n"))
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        language = info.split()[0].lower() if info.split() else ""
        if language in LANGUAGES:
            where = f"{page}:{start}"
            title = _TITLE.search(info)
            yield Block(
                page=page,
                line=start,
                code="".join(body),
                title=next((group for group in title.groups() if group), None) if title else None,
                flags=_marker(previous, where),
            )
        previous = None


def blocks_in_script(text: str, page: str) -> Block:
    """A .py file under examples/ as one block; its first line may carry a marker."""
    first = text.splitlines()[0] if text else ""
    match = _PY_MARKER.match(first)
    flags = _flags(match["flags"], f"{page}:1") if match else frozenset()
    if "continues" in flags:
        raise ExampleError(f"{page}:1: a file under examples/ is a module of its own")
    return Block(page=page, line=1, code=text, title=Path(page).name, flags=flags)


def _module_name(block: Block) -> str:
    if block.title is not None:
        name = Path(block.title).name
        if not re.fullmatch(r"[A-Za-z_]\w*\.py", name):
            raise ExampleError(f"{block.where}: title {block.title!r} is not a Python module name")
        return name
    stem = re.sub(r"\W+", "_", Path(block.page).with_suffix("").as_posix()).strip("_").lower()
    return f"{stem}_{block.line}.py"


def assemble(blocks: Iterable[Block]) -> Collection:
    """Group blocks into modules: ``continues`` joins the previous checked block of its page."""
    examples: list[Example] = []
    sketches: list[Block] = []
    last_on_page: dict[str, Example] = {}
    names: dict[str, str] = {}
    for block in blocks:
        if "sketch" in block.flags:
            sketches.append(block)
            continue
        if "continues" in block.flags:
            if block.page not in last_on_page:
                raise ExampleError(
                    f"{block.where}: marked 'continues' but no checked block comes before it"
                )
            if block.title is not None:
                raise ExampleError(f"{block.where}: a block that continues another has no title")
            last_on_page[block.page].blocks.append(block)
            continue
        example = Example(module=_module_name(block), blocks=[block])
        if example.module in names:
            raise ExampleError(
                f"{block.where}: module {example.module} is also written by {names[example.module]}"
            )
        names[example.module] = block.where
        examples.append(example)
        last_on_page[block.page] = example
    return Collection(examples=examples, sketches=sketches)


def pages(root: Path = ROOT) -> list[Path]:
    """README.md, then the Markdown under docs/ and examples/, in name order."""
    found = [root / "README.md"]
    for folder in ("docs", "examples"):
        found += sorted((root / folder).rglob("*.md"))
    return [page for page in found if page.is_file()]


def collect(root: Path = ROOT) -> Collection:
    """Every example of the project, grouped into modules."""
    blocks: list[Block] = []
    for page in pages(root):
        relative = page.relative_to(root).as_posix()
        blocks += blocks_in_markdown(page.read_text(encoding="utf-8"), relative)
    for script in sorted((root / "examples").rglob("*.py")):
        relative = script.relative_to(root).as_posix()
        blocks.append(blocks_in_script(script.read_text(encoding="utf-8"), relative))
    return assemble(blocks)


def write(examples: Sequence[Example], folder: Path) -> None:
    """Write each example as a module in ``folder``, and the guard every run loads."""
    for example in examples:
        (folder / example.module).write_text(example.code, encoding="utf-8")
    guard = folder / "_guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(_GUARD, encoding="utf-8")
    (folder / "_runner.py").write_text(_RUNNER, encoding="utf-8")
    (folder / "mypy.ini").write_text(_MYPY_CONFIG, encoding="utf-8")


def typecheck(examples: Sequence[Example], folder: Path, cache_dir: Path | None = None) -> str:
    """Run ``mypy --strict`` over the modules in ``folder``; its findings at the pages' lines."""
    command = [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-error-summary"]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    command += [example.module for example in examples]
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        command, cwd=folder, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"mypy could not run:\n{done.stdout}{done.stderr}")
    return relocate(done.stdout, examples)


def relocate(output: str, examples: Sequence[Example]) -> str:
    """mypy's ``module.py:12: error`` lines, rewritten as ``docs/page.md:40: error``."""
    by_module = {example.module: example for example in examples}
    lines = []
    for line in output.splitlines():
        match = re.match(r"^(?P<file>[^:]+\.py):(?P<line>\d+):(?P<rest>.*)$", line)
        if match and match["file"] in by_module:
            example = by_module[match["file"]]
            line = f"{example.source_line(int(match['line']))}:{match['rest']}"
        lines.append(line)
    return "\n".join(sorted(lines, key=_by_place))


def _by_place(line: str) -> tuple[str, int]:
    """Sort key of a finding: page, then line; a note stays after its error (the sort is stable)."""
    match = re.match(r"^(?P<file>[^:]+):(?P<line>\d+):", line)
    return (match["file"], int(match["line"])) if match else ("~", 0)


def environment(folder: Path) -> dict[str, str]:
    """The environment an example runs in: the guard loaded, no credentials, no coverage."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SECRET_PREFIXES)
        and not name.startswith(("COV_CORE_", "COVERAGE_", "PYTEST_"))
    }
    env["PYTHONPATH"] = str(folder / "_guard")
    # The examples' tests need no pytest plugin, and start three times faster without them.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class Outcome:
    """How one example's run ended: its exit status and everything it printed."""

    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def run_all(
    examples: Sequence[Example], folder: Path, *, jobs: int | None = None, timeout: float = 120
) -> dict[str, Outcome]:
    """Run ``examples``, written to ``folder``, a few at a time; each one's outcome by module.

    One interpreter imports the library, then forks a child per example, which
    runs it as a script (or a test module under pytest) in ``folder`` with the
    guard loaded. An example still running after ``timeout`` seconds is killed.
    """
    jobs = jobs or os.cpu_count() or 2
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "_runner.py",
            str(jobs),
            str(timeout),
            *(f"{example.module}:{example.runner}" for example in examples),
        ],
        cwd=folder,
        env=environment(folder),
        capture_output=True,
        text=True,
        check=False,
    )
    statuses = dict(line.rsplit(":", 1) for line in done.stdout.splitlines() if ":" in line)
    outcomes = {}
    for example in examples:
        if example.module not in statuses:
            raise RuntimeError(f"the examples' runner failed:\n{done.stdout}{done.stderr}")
        status = int(statuses[example.module])
        output = (folder / "_runs" / f"{example.module}.out").read_text(encoding="utf-8")
        if status == -9:
            output += f"\n(killed after {timeout} s)"
        outcomes[example.module] = Outcome(status=status, output=output)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "list"])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project's folder")
    arguments = parser.parse_args(argv)
    root: Path = arguments.root.resolve()
    try:
        found = collect(root)
    except ExampleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if arguments.action == "list":
        for example in found.examples:
            what = f"run ({example.runner})" if example.runnable else "checked, not run"
            lines = ", ".join(str(block.line) for block in example.blocks)
            print(f"{example.page}: lines {lines} -> {example.module}: {what}")
        for block in found.sketches:
            print(f"{block.where}: sketch, skipped")
        print(found.summary())
        return 0
    with tempfile.TemporaryDirectory(prefix="docs-examples-") as folder:
        write(found.examples, Path(folder))
        findings = typecheck(found.examples, Path(folder), root / ".mypy_cache" / "docs-examples")
    if findings:
        print(findings)
        print(f"docs examples: mypy --strict found problems; {found.summary()}")
        return 1
    print(f"docs examples: {found.summary()}; mypy --strict found no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
