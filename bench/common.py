"""What every part of the benchmark shares: its settings, a table row, timing and formatting."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"  # the only address the benchmark uses
ACCOUNT_SID = "AC" + "0" * 32  # the stand-in's Twilio account
TOKEN = "bench"  # the stand-ins' Twilio auth token and SendGrid API key
# The addresses and texts every send uses; the stand-ins accept everyone.
FROM_NUMBER = "+13125790015"
TO_NUMBER = "+17345550123"
FROM_EMAIL = "clinic@example.com"
TO_EMAIL = "person@example.com"
BODY = "Your order has shipped."
SUBJECT = "Your order"

SECONDS = {"http": 1.0, "cpu": 0.5}  # how long one round of a rate is timed, full run
ROUNDS = 3  # rounds of each rate in a full run; the best is shown
QUICK_CALLS = 5  # calls of each rate with --quick


@dataclass(frozen=True)
class Settings:
    """How the run was asked for on the command line."""

    quick: bool
    latency: float  # seconds the stand-in waits in the zero-latency rows (0 unless --latency)
    concurrent_latency: float  # seconds the stand-in waits in the concurrency rows
    plan_rows: int  # rows of the largest CSV given to `multichannel plan`


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, this run's figure, main's and the goal."""

    label: str
    value: str
    reference: str = "-"
    goal: str = "-"


def one_point_contact(channel: str, address: str, number: int = 0) -> Any:
    """A `Contact` reachable on one point, in Detroit, with no quiet hours."""
    from multichannel import Contact, ContactPoint, Preferences

    return Contact(
        id=f"person-{number}",
        timezone="America/Detroit",
        points=[ContactPoint(channel=channel, address=address)],
        preferences=Preferences(channels=[channel]),
    )


def rate(call: Callable[[], object], settings: Settings, kind: str) -> float:
    """Calls per second of ``call``: the best of ROUNDS timed rounds, or QUICK_CALLS calls."""
    call()  # warm: connections, caches, lazy imports
    if settings.quick:
        started = time.perf_counter()
        for _ in range(QUICK_CALLS):
            call()
        return QUICK_CALLS / (time.perf_counter() - started)
    best = 0.0
    for _ in range(ROUNDS):
        calls, started = 0, time.perf_counter()
        deadline = started + SECONDS[kind]
        while True:
            call()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - started))
    return best


def until(deadline: float | None, count: int | None, pool: Iterable[T]) -> Iterator[T]:
    """Items of ``pool``, over and over, until ``deadline`` (perf_counter) or ``count`` items.

    A full run measures for a fixed time, so that a slow library and a fast one
    are both timed long enough; ``--quick`` takes a fixed, tiny number instead.
    """
    given = 0
    while True:
        for item in pool:
            if count is not None and given >= count:
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            given += 1
            yield item


def expect(what: str, got: object, wanted: object) -> None:
    """Stop the bench when something did not go through: its rate would mean nothing."""
    if got != wanted:
        sys.exit(f"{what}: expected {wanted!r}, got {got!r}")


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """The largest resident size so far, in MiB, of this process (or its waited children)."""
    return rss_mib(resource.getrusage(who).ru_maxrss)


def rss_mib(maxrss: int) -> float:
    """``ru_maxrss`` in MiB: it is counted in bytes on macOS and in KiB elsewhere."""
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


# A child's maxrss starts at the RSS of the process that spawned it (Linux carries the
# high-water mark across fork and exec), so a child spawned by this large process
# would report at least this process's size. The launcher is a bare interpreter
# (no site, a few MiB) that spawns the command, waits for it and writes its wall
# time and its own rusage to a file.
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as file:
    json.dump({"seconds": time.perf_counter() - started,
               "exit": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss}, file)
"""


@dataclass(frozen=True)
class Measured:
    """How a child process went: its wall time, its own peak resident size, its exit status."""

    seconds: float
    peak_mib: float
    exit: int


def run_measured(command: list[str], *, stdout: IO[Any] | int, stderr: IO[Any] | int) -> Measured:
    """Run ``command`` (an absolute executable first) and measure it apart from this process."""
    with tempfile.TemporaryDirectory(prefix="multichannel-bench-") as folder:
        report = Path(folder) / "rusage.json"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *command]
        subprocess.run(launcher, stdout=stdout, stderr=stderr, check=True)
        found = json.loads(report.read_text())
    return Measured(found["seconds"], rss_mib(found["maxrss"]), found["exit"])


@contextmanager
def serving(argv: list[str], what: str) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """Run ``argv`` (a Python script of this folder) while the block runs; its ready line.

    The child prints one JSON line once it serves, which is handed over
    parsed, and stops when its stdin is closed; a child that does not stop
    within a minute is killed. What it prints after that stays readable from
    its stdout.
    """
    child = subprocess.Popen(
        [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline()
        if not ready:
            raise RuntimeError(f"{what} ended before serving (exit {child.wait()})")
        yield child, json.loads(ready)
    finally:
        assert child.stdin is not None
        child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def progress(text: str) -> None:
    """Say on stderr what runs now: a full run takes minutes, the table comes at the end."""
    print(f"  ... {text}", file=sys.stderr, flush=True)


NOTES: list[str] = []  # printed under the table: what a reader must know to read it


def note(text: str) -> None:
    """Keep ``text`` for under the table, and say it now."""
    NOTES.append(text)
    progress(text)


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def times(value: float) -> str:
    return f"{value:.1f}x"


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def table(rows: list[Row]) -> list[str]:
    """The rows as one Markdown table, figures right-aligned."""
    heads = ("measure", "this run", "main (ref)", "goal")
    cells = [(row.label, row.value, row.reference, row.goal) for row in rows]
    widths = [max(len(text) for text in column) for column in zip(heads, *cells, strict=False)]
    label_width, *figure_widths = widths

    def line(cells: tuple[str, ...]) -> str:
        label, *figures = cells
        shown = [f"{figure:>{width}}" for figure, width in zip(figures, figure_widths, strict=True)]
        return "| " + " | ".join([f"{label:<{label_width}}", *shown]) + " |"

    rule = "|" + "|".join(["-" * (label_width + 2)] + ["-" * (w + 1) + ":" for w in figure_widths])
    return [line(heads), rule + "|", *(line(row) for row in cells)]
