"""How long `import multichannel` and its first use take; that neither loads a heavy dependency.

Run it with ``python bench/import_time.py [runs]`` (or ``make bench``). Each run
is a fresh interpreter. ``import multichannel`` loads each public name on first
use, so two statements are timed: the import itself, and the first use that
every program makes, ``from multichannel import Contact, Dispatcher, Message``.
It prints:

1. for each, the import time that ``python -X importtime -c`` reports (the
   cumulative figures of its top-level lines, median and best of the runs);
   the import is held against the 150 ms target;
2. the wall and CPU time of ``python -c`` running each, next to
   ``python -c pass`` and next to ``from pydantic import BaseModel``, the floor
   set by the one dependency the models cannot do without (CPU time moves less
   than wall time when other processes share the machine);
3. what the first use spends its time on: the largest modules by their own
   time (medians);
4. which heavy dependencies each loaded; there should be none, since the
   database layer, the command line, the web server, provider SDKs and the
   address checkers are imported where they are used.

Bytecode is cached (in a temporary directory, so the checkout stays clean), as
it is after ``pip install``. When ``PYTHONDONTWRITEBYTECODE`` is set, the figure
without a cache, which is what ``-X importtime`` shows in that shell, is
printed as well. Figures depend on the machine and on what else it is doing;
compare runs on the same, quiet one. Finishes in well under a minute.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping

RUNS = 15
TARGET_MS = 150.0
SHOWN = 12
IMPORT = "import multichannel"
FIRST_USE = "from multichannel import Contact, Dispatcher, Message"
# Imported where they are used, never by `import multichannel` (DESIGN.md).
HEAVY = (
    "aiosmtpd",
    "cryptography",
    "email_validator",
    "phonenumbers",
    "pydantic_settings",
    "requests",
    "rich",
    "sendgrid",
    "sqlalchemy",
    "starlette",
    "tenacity",
    "twilio",
    "typer",
    "uvicorn",
    "yaml",
)


def loaded(statement: str) -> str:
    """A program that runs ``statement``, then prints the heavy dependencies it loaded."""
    return (
        f"import sys\n{statement}\n"
        f"print(' '.join(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))))"
    )


class Timing:
    """One ``-X importtime`` report: each module's own and cumulative microseconds."""

    def __init__(self, report: str) -> None:
        self.own: dict[str, int] = {}
        self.cumulative: dict[str, int] = {}
        self.total = 0  # microseconds of the whole statement: its top-level lines
        for line in report.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            own, cumulative, name = line.removeprefix("import time:").split("|")
            if not own.strip().isdigit():
                continue  # the header line
            module = name.strip()
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            self.own[module] = int(own)
            self.cumulative[module] = int(cumulative)
            if depth == 0:
                self.total += int(cumulative)


def run(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env, timeout=60
    )


def importtime(env: Mapping[str, str], statement: str) -> Timing:
    return Timing(run(env, "-X", "importtime", "-c", statement).stderr)


def timed(env: Mapping[str, str], code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds for a fresh interpreter to run ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run(env, "-c", code)
    taken = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return taken * 1000, cpu * 1000


def median_ms(values: list[int]) -> float:
    return statistics.median(values) / 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    shell = dict(os.environ)
    statements = (IMPORT, FIRST_USE)
    with tempfile.TemporaryDirectory(prefix="multichannel-pyc-") as cache:
        cached = {**shell, "PYTHONPYCACHEPREFIX": cache}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        run(cached, "-c", FIRST_USE)  # fills the cache
        timings: defaultdict[str, list[Timing]] = defaultdict(list)
        uncached: defaultdict[str, list[int]] = defaultdict(list)
        walls: defaultdict[str, list[float]] = defaultdict(list)
        cpus: defaultdict[str, list[float]] = defaultdict(list)
        codes = ("pass", "from pydantic import BaseModel", *statements)
        for _ in range(runs):  # interleaved, so a busy moment weighs on all alike
            for statement in statements:
                timings[statement].append(importtime(cached, statement))
                if shell.get("PYTHONDONTWRITEBYTECODE"):
                    uncached[statement].append(importtime(shell, statement).total)
            for code in codes:
                taken, cpu = timed(cached, code)
                walls[code].append(taken)
                cpus[code].append(cpu)
        heavy = {
            statement: run(cached, "-c", loaded(statement)).stdout.split()
            for statement in statements
        }

    print(f"Python {sys.version.split()[0]}, {runs} fresh interpreters each")
    print("  -X importtime, the statement's import time (median, best)")
    for statement in statements:
        totals = [timing.total for timing in timings[statement]]
        median = median_ms(totals)
        target = ""
        if statement == IMPORT:
            verdict = "met" if median < TARGET_MS else "NOT met"
            target = f"  (target < {TARGET_MS:.0f} ms: {verdict})"
        print(f"  {statement!r:<56} {median:6.1f} ms, {min(totals) / 1000:6.1f} ms{target}")
        if uncached[statement]:
            print(
                f"  {'  the same without a bytecode cache':<56} "
                f"{median_ms(uncached[statement]):6.1f} ms, "
                f"{min(uncached[statement]) / 1000:6.1f} ms (PYTHONDONTWRITEBYTECODE is set here)"
            )
    print(f"\n  {'python -c':<56} {'wall':>8} {'CPU':>8}  (medians; + is over 'pass')")
    bare_wall, bare_cpu = statistics.median(walls["pass"]), statistics.median(cpus["pass"])
    for code in codes:
        taken, cpu = statistics.median(walls[code]), statistics.median(cpus[code])
        extra = f"  +{taken - bare_wall:.0f} / +{cpu - bare_cpu:.0f} ms" if code != "pass" else ""
        print(f"  {code!r:<56} {taken:5.0f} ms {cpu:5.0f} ms{extra}")

    own: defaultdict[str, list[int]] = defaultdict(list)
    for timing in timings[FIRST_USE]:
        for module, value in timing.own.items():
            own[module].append(value)
    print(f"\nLargest modules of the first use by their own time (median), of {len(own)} imported")
    for module in sorted(own, key=lambda m: -median_ms(own[m]))[:SHOWN]:
        print(f"  {module:<42} {median_ms(own[module]):6.1f} ms")
    for statement in statements:
        print(
            f"\nHeavy dependencies loaded by {statement!r}: {', '.join(heavy[statement]) or 'none'}"
        )


if __name__ == "__main__":
    main()
