"""How long ``import multichannel`` takes, and that it loads no heavy dependency.

Run it with ``python bench/import_time.py [runs]`` (or ``make bench``). Each run
is a fresh interpreter. It prints:

1. the cumulative figure of the ``multichannel`` line of
   ``python -X importtime -c "import multichannel"`` (median and best of the
   runs), against the 150 ms target;
2. the wall and CPU time of ``python -c "import multichannel"`` next to
   ``python -c pass`` and next to ``from pydantic import BaseModel``, the floor
   set by the one dependency the core cannot do without (CPU time moves less
   than wall time when other processes share the machine);
3. what the import time is spent on: the direct imports of ``multichannel``
   and the largest modules by their own time (medians);
4. which heavy dependencies the import loaded; there should be none, since the
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
LOADED = (
    f"import sys\n{IMPORT}\n"
    f"print(' '.join(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))))"
)


class Timing:
    """One ``-X importtime`` report: each module's own and cumulative microseconds."""

    def __init__(self, report: str) -> None:
        self.own: dict[str, int] = {}
        self.cumulative: dict[str, int] = {}
        self.children: list[str] = []  # what multichannel imports directly, in order
        pending: list[tuple[int, str]] = []
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
            pending.append((depth, module))
            if depth == 0:  # a report lists a module after everything it imported
                if module == "multichannel":
                    self.children = [child for level, child in pending if level == 1]
                pending.clear()


def run(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env, timeout=60
    )


def importtime(env: Mapping[str, str]) -> Timing:
    return Timing(run(env, "-X", "importtime", "-c", IMPORT).stderr)


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
    with tempfile.TemporaryDirectory(prefix="multichannel-pyc-") as cache:
        cached = {**shell, "PYTHONPYCACHEPREFIX": cache}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        run(cached, "-c", IMPORT)  # fills the cache
        timings: list[Timing] = []
        uncached: list[int] = []
        walls: defaultdict[str, list[float]] = defaultdict(list)
        cpus: defaultdict[str, list[float]] = defaultdict(list)
        codes = ("pass", "from pydantic import BaseModel", IMPORT)
        for _ in range(runs):  # interleaved, so a busy moment weighs on all alike
            timings.append(importtime(cached))
            if shell.get("PYTHONDONTWRITEBYTECODE"):
                uncached.append(importtime(shell).cumulative["multichannel"])
            for code in codes:
                taken, cpu = timed(cached, code)
                walls[code].append(taken)
                cpus[code].append(cpu)
        heavy = run(cached, "-c", LOADED).stdout.split()

    totals = [timing.cumulative["multichannel"] for timing in timings]
    median = median_ms(totals)
    verdict = "met" if median < TARGET_MS else "NOT met"
    print(f"{IMPORT}, Python {sys.version.split()[0]}, {runs} fresh interpreters each")
    print(
        f"  -X importtime, cumulative          median {median:6.1f} ms, best "
        f"{min(totals) / 1000:6.1f} ms (target < {TARGET_MS:.0f} ms: {verdict})"
    )
    if uncached:
        print(
            f"  the same without a bytecode cache  median {median_ms(uncached):6.1f} ms, best "
            f"{min(uncached) / 1000:6.1f} ms (PYTHONDONTWRITEBYTECODE is set here)"
        )
    print(f"  {'python -c':<45} {'wall':>8} {'CPU':>8}  (medians; + is over 'pass')")
    bare_wall, bare_cpu = statistics.median(walls["pass"]), statistics.median(cpus["pass"])
    for code in codes:
        taken, cpu = statistics.median(walls[code]), statistics.median(cpus[code])
        extra = f"  +{taken - bare_wall:.0f} / +{cpu - bare_cpu:.0f} ms" if code != "pass" else ""
        print(f"  {code!r:<45} {taken:5.0f} ms {cpu:5.0f} ms{extra}")

    own: defaultdict[str, list[int]] = defaultdict(list)
    cumulative: defaultdict[str, list[int]] = defaultdict(list)
    for timing in timings:
        for module, value in timing.own.items():
            own[module].append(value)
        for module, value in timing.cumulative.items():
            cumulative[module].append(value)
    print("\nWhat multichannel imports directly, cumulative (median)")
    for module in sorted(timings[0].children, key=lambda m: -median_ms(cumulative[m])):
        print(f"  {module:<42} {median_ms(cumulative[module]):6.1f} ms")
    print(f"\nLargest modules by their own time (median), of {len(own)} imported")
    for module in sorted(own, key=lambda m: -median_ms(own[m]))[:SHOWN]:
        print(f"  {module:<42} {median_ms(own[module]):6.1f} ms")
    print(f"\nHeavy dependencies imported: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
