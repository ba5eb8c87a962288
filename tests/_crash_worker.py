"""A worker process for the crash and two-worker tests; run it with ``sys.executable``.

It performs every due step of the store at ``--url`` and stops when nothing is
due. Its adapter stands for a provider: it takes ``--delay`` seconds per send,
then appends the dispatch id to ``--journal`` as one line and forces it to disk
before answering, so the journal shows every send the "provider" received, even
from a process killed a moment later. Its clock starts at ``--start`` and runs
at real speed from there, so what is due (and whether a contact's quiet hours
are on) never depends on when the tests run; a later ``--start`` stands for a
worker started after a killed one's leases and in-flight sends have run out.
With ``--ready`` and ``--go`` it announces that it is connected and waits for
the signal, so that two workers start together. With ``--hang-at N`` the Nth
send never answers: the dispatch id goes to ``--hanging`` and the process waits
to be killed, ``--hang-when before`` the provider received the message (no
journal line) or ``after`` it (a journal line).
It prints ``{"performed": N}`` when it ends.

The tests import `seed_due` and `journal_lines` from here as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from multichannel import (
    BaseAdapter,
    Contact,
    ContactPoint,
    Content,
    Dispatcher,
    ManualClock,
    Message,
    Outbox,
    Preferences,
    Receipt,
    SendContext,
    SQLStore,
    Status,
    Store,
    Window,
    Worker,
)

GO_TIMEOUT = 30.0
MONDAY_EVENING = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 22:00 in Detroit: quiet
TUESDAY_MORNING = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in Detroit: open until 21:00
REMINDER = Message(body="Your appointment is tomorrow at 10:00.")


def seed_due(store: Store, count: int) -> list[str]:
    """Make ``count`` dispatches deferred by quiet hours, all due at TUESDAY_MORNING; their ids."""
    dispatcher = Dispatcher(adapters=[Outbox()], clock=ManualClock(MONDAY_EVENING), store=store)
    ids = []
    for number in range(count):
        contact = Contact(
            id=f"patient-{number}",
            timezone="America/Detroit",
            points=[ContactPoint(channel="sms", address=f"+1734555{number:04}")],
            preferences=Preferences(
                channels=["sms"], quiet_hours=[Window(start="21:00", end="08:00")]
            ),
        )
        dispatch = dispatcher.send(contact, REMINDER)
        if dispatch.status is not Status.SCHEDULED:
            raise AssertionError(f"seeding sent at once: {dispatch.status}")
        ids.append(dispatch.id)
    return ids


def journal_lines(path: Path) -> list[str]:
    """The complete lines of a journal; a line cut off by a kill is left out."""
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").split("\n")[:-1]


class RunningClock:
    """A clock that reads ``start`` when made and then runs at real speed."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._started)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Journal(BaseAdapter):
    """A provider that writes down, durably, every message it receives."""

    name = "journal"
    channel = "*"

    def __init__(self, journal: TextIO, delay: float, hang: Hang | None = None) -> None:
        self.journal = journal
        self.delay = delay
        self.hang = hang
        self.calls = 0

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls += 1
        hang = self.hang if self.hang is not None and self.hang.at == self.calls else None
        time.sleep(self.delay)
        if hang is not None and hang.when == "before":
            hang.wait(ctx.dispatch_id)
        self.journal.write(f"{ctx.dispatch_id}\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())
        if hang is not None:
            hang.wait(ctx.dispatch_id)
        return Receipt(provider_id=f"journal-{ctx.dispatch_id}-{ctx.try_number}")


@dataclass(frozen=True)
class Hang:
    """Which send never answers, whether before or after the provider got it, and who is told."""

    at: int
    when: str
    marker: Path

    def wait(self, dispatch_id: str) -> None:
        self.marker.write_text(dispatch_id, encoding="utf-8")
        time.sleep(GO_TIMEOUT)
        raise SystemExit("nobody killed the hanging worker")


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + GO_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no signal at {path} within {GO_TIMEOUT}s")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per send")
    parser.add_argument("--start", type=datetime.fromisoformat, default=TUESDAY_MORNING)
    parser.add_argument("--lease", type=float, default=120.0, help="seconds")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--hang-at", type=int)
    parser.add_argument("--hang-when", choices=["before", "after"], default="before")
    parser.add_argument("--hanging", type=Path)
    args = parser.parse_args()
    hang = None
    if args.hang_at is not None:
        hang = Hang(at=args.hang_at, when=args.hang_when, marker=args.hanging)

    store = SQLStore(args.url)
    with args.journal.open("a", encoding="utf-8") as journal:
        dispatcher = Dispatcher(
            adapters=[Journal(journal, args.delay, hang)],
            clock=RunningClock(args.start),
            store=store,
        )
        worker = Worker(dispatcher, lease=timedelta(seconds=args.lease), batch=args.batch)
        if args.ready is not None:
            args.ready.touch()
        if args.go is not None:
            wait_for(args.go)
        performed = worker.run(until_idle=True)
    store.close()
    print(json.dumps({"performed": performed}), flush=True)


if __name__ == "__main__":
    main()
