"""Every figure of the speed work next to its reference and goal, in one run and one table.

Run it with ``python bench/sends.py`` (or ``make bench``). Nothing reaches the
internet: the providers are stand-ins on 127.0.0.1 (`standin.py`), the
databases are a SQLite file in a temporary directory and a schema of its own
in the local PostgreSQL server (skipped, with a note, when none answers). The
table has one row per figure, grouped by what is measured, each part in a
module of its own:

1. `sequential.py`: Twilio SMS and SendGrid one message after another, no
   added latency: bare HTTP, the raw SDK, ``Dispatcher.send``, and their ratios;
2. `concurrency.py`: 64 at once with 50 ms of provider latency: ``send_many``
   and ``asend_many`` next to a bare aiohttp client (the ceiling) and to the raw
   SDK in a sequential loop;
3. `local.py`: ``send_many`` to an Outbox, ``FallbackStrategy.decide`` and
   ``Schedule.next_open``, no network;
4. `store.py`: `SQLStore` on SQLite and PostgreSQL, enqueueing scheduled
   dispatches and a `Worker` draining them to an Outbox;
5. `webhooks.py`: signed Twilio status callbacks through the webhook app under
   uvicorn, next to the same app's health route;
6. `plan.py`: ``multichannel plan`` on a generated CSV next to merely
   validating the same rows' addresses, and its peak memory at two sizes;
7. `memory.py`: ``send_many`` over a generator of a million contacts with a
   store that keeps nothing (peak memory, capped in time), and what the
   default `MemoryStore` keeps per dispatch;
8. the peak memory of this process.

Each figure stands next to main's before the speed work and the goal. A ratio
divides the library's rate by the other one: 1.0 means the library adds
nothing. Figures depend on the machine and on what else runs on it; compare
runs on the same quiet one. A full run takes two and a half minutes on a quiet
2-core machine (and up to eight on a busy one), a third of it ``multichannel
plan`` on ``--plan-rows`` rows: 100,000 by default, the size of the issue's
reference; ``--plan-rows 1000000`` plans a million (several minutes more).

``--quick`` runs each measure a tiny, fixed number of times (whole run in well
under a minute): it checks that the bench still runs, its figures mean nothing.
``--latency MS`` makes the stand-in wait before each answer in the
one-after-another rows (their references are for zero latency);
``--concurrent-latency MS`` sets the wait of the concurrency rows (50 ms).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import concurrency
import local
import memory
import plan
import sequential
import store
import webhooks
from common import NOTES, Row, Settings, mib, peak_rss_mib, progress, table
from standin import serve

import multichannel

PLAN_ROWS = {"full": 100_000, "quick": 200}


def one_at_a_time(settings: Settings) -> list[Row]:
    with serve(settings.latency) as origins:
        return sequential.rows(origins, settings)


PARTS = {
    "one at a time": one_at_a_time,
    "concurrency": concurrency.rows,
    "local": local.rows,
    "store": store.rows,
    "webhooks": webhooks.rows,
    "plan": plan.rows,
    "memory": memory.rows,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few calls each: does it run?")
    parser.add_argument("--latency", type=float, default=0.0, help="stand-in delay, ms")
    parser.add_argument(
        "--concurrent-latency",
        type=float,
        default=50.0,
        help="stand-in delay in the concurrency rows, ms (default 50)",
    )
    parser.add_argument(
        "--plan-rows",
        type=int,
        default=None,
        help=f"CSV rows given to multichannel plan (default {PLAN_ROWS['full']:,})",
    )
    args = parser.parse_args(argv)
    if args.plan_rows is not None and args.plan_rows < 10:
        parser.error("--plan-rows must be at least 10")
    quick = args.quick
    settings = Settings(
        quick=quick,
        latency=args.latency / 1000,
        concurrent_latency=args.concurrent_latency / 1000,
        plan_rows=args.plan_rows or PLAN_ROWS["quick" if quick else "full"],
    )
    began = time.perf_counter()
    print(
        f"multichannel {multichannel.__version__}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.platform()}; stand-in latency {args.latency:g} ms one at a time, "
        f"{args.concurrent_latency:g} ms 64 at once"
        + ("; --quick: figures mean nothing" if quick else ""),
        flush=True,
    )
    rows: list[Row] = []
    took: list[str] = []
    for name, part in PARTS.items():
        started = time.perf_counter()
        rows += part(settings)
        took.append(f"{name} {time.perf_counter() - started:.0f} s")
        progress(f"{name}: done in {time.perf_counter() - started:.1f} s")
    rows.append(Row("peak memory of this process (maxrss)", mib(peak_rss_mib()), goal="flat"))
    print()
    print("\n".join(table(rows)))
    print()
    for text in NOTES:
        print(f"note: {text}")
    print(f"done in {time.perf_counter() - began:.1f} s ({', '.join(took)})")


if __name__ == "__main__":
    main()
