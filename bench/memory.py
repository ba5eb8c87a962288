"""Memory of a large campaign: send_many over a generator, and what MemoryStore keeps.

Run in a process of its own (``python bench/memory.py --contacts N --seconds S``)
so that its peak resident size is its own. It sends to a generator of N
generated contacts (``bench/strategy.py``'s) through ``send_many`` to an
`Outbox` that is emptied as each result comes, with ``strategy.KeepNothing``,
a store that forgets every finished dispatch: nothing should grow. Today's
dispatcher is too slow to reach a million in reasonable time, so the run stops
taking contacts after S seconds and reports how many it did; the peak is read
at a quarter of the run and at its end, which a flat run keeps equal.

Then it measures the cost the default `MemoryStore` keeps per dispatch: the
memory still allocated (tracemalloc) after ``send_many`` to a few thousand
contacts, the Outbox emptied, divided by their number.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from common import Row, Settings, expect, peak_rss_mib, progress, run_measured
from strategy import MONDAY, KeepNothing, person

from multichannel import (
    Contact,
    Dispatcher,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
)

CONTACTS = 1_000_000
SECONDS = {"full": 20.0, "quick": 1.0}  # how long contacts are taken at most
KEPT = {"full": 1_000, "quick": 20}  # dispatches whose MemoryStore cost is traced
MESSAGE = Message(body="The service is back.")


def flat_run(contacts: int, seconds: float) -> dict[str, float]:
    """send_many over a generator, nothing kept, for at most ``seconds``; peaks in MiB."""
    outbox = Outbox()
    dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(MONDAY), store=KeepNothing())
    started = time.perf_counter()
    quarter: dict[str, float] = {}

    def people() -> Iterator[Contact]:
        for number in range(contacts):
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return
            if not quarter and elapsed >= seconds / 4:
                quarter.update(contacts=number, peak=peak_rss_mib())
            yield person(number)

    done = 0
    for result in dispatcher.send_many(people(), MESSAGE, progress=lambda _: outbox.clear()):
        if result.error is not None:
            sys.exit(f"send_many with a store that keeps nothing: {result.error!r}")
        done += 1
    took = time.perf_counter() - started
    return {
        "done": done,
        "seconds": took,
        "quarter_contacts": quarter.get("contacts", done),
        "quarter_peak": quarter.get("peak", peak_rss_mib()),
        "peak": peak_rss_mib(),
    }


def kept_per_dispatch(count: int) -> float:
    """KiB that the default MemoryStore keeps per dispatch, Outbox emptied as it goes."""
    outbox = Outbox()
    dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(MONDAY), store=MemoryStore())
    contacts = [person(number) for number in range(count)]
    for _ in dispatcher.send_many(contacts[:10], MESSAGE):  # warm: imports, caches, the pool
        outbox.clear()
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for _ in dispatcher.send_many(contacts, MESSAGE, progress=lambda _: outbox.clear()):
        pass
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (after - before) / count / 1024


def rows(settings: Settings) -> list[Row]:
    which = "quick" if settings.quick else "full"
    seconds, kept = SECONDS[which], KEPT[which]
    progress(f"send_many over a {CONTACTS:,}-contact generator, at most {seconds:g} s")
    command = [sys.executable, str(Path(__file__).resolve()), "--seconds", str(seconds)]
    with tempfile.TemporaryFile("w+") as output:
        # Through the launcher: a child of this process would count this one's memory too.
        measured = run_measured([*command, "--kept", str(kept)], stdout=output, stderr=None)
        expect("exit status of the memory run", measured.exit, 0)
        output.seek(0)
        found = json.loads(output.read())
    done, took = found["done"], found["seconds"]
    where = f"memory: send_many, {CONTACTS:,}-contact generator, nothing kept"
    return [
        Row(
            f"{where}: contacts done in {seconds:g} s",
            f"{done:,.0f} ({done / took:,.0f}/s)",
            "~250/s",
        ),
        Row(
            f"{where}: peak RSS after {found['quarter_contacts']:,.0f} contacts",
            f"{found['quarter_peak']:,.0f} MiB",
        ),
        Row(f"{where}: peak RSS at the end", f"{found['peak']:,.0f} MiB", goal="< 100 MB, flat"),
        Row(
            f"memory: MemoryStore keeps per dispatch (tracemalloc, {kept:,})",
            f"{found['kept_kib']:,.1f} KiB",
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="send_many's memory, in a process of its own.")
    parser.add_argument("--contacts", type=int, default=CONTACTS)
    parser.add_argument("--seconds", type=float, default=SECONDS["full"])
    parser.add_argument("--kept", type=int, default=KEPT["full"])
    arguments = parser.parse_args()
    figures = flat_run(arguments.contacts, arguments.seconds)
    figures["kept_kib"] = kept_per_dispatch(arguments.kept)
    print(json.dumps(figures))
