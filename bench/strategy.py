"""How fast the time arithmetic, the strategy and the dispatcher are, and how much memory they use.

Run it with ``python bench/strategy.py`` (or ``make bench``). It prints:

1. ``Schedule.next_open`` calls per second for a few schedules, each asked from
   a closed instant so that the search has work to do;
2. ``FallbackStrategy.decide`` calls per second;
3. ``Dispatcher.send_many`` throughput over 10,000 generated contacts with an
   `Outbox` and a `ManualClock`;
4. the peak memory of ``send_many`` (tracemalloc) for a small and a five times
   larger generator of contacts, with nothing kept afterwards: it stays flat,
   because contacts are read lazily and results are streamed. A run with the
   default in-memory store and an outbox that keeps every message is shown for
   comparison; there memory grows with the number of contacts, by design.

Figures depend on the machine; compare runs on the same one. Finishes in well
under a minute.
"""

from __future__ import annotations

import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import multichannel
from multichannel import (
    Attempt,
    Contact,
    ContactPoint,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    ManualClock,
    Message,
    Outbox,
    Preferences,
    Schedule,
    Status,
    Store,
    Window,
)
from multichannel.windows import next_open_all

# Monday 2 March 2026, 15:00 UTC: 10:00 in Detroit, a working morning.
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NIGHTS = Window(start="21:00", end="08:00")
TIMED_SECONDS = 0.5  # how long each rate is measured for
CAMPAIGN = 10_000
MEMORY_SIZES = (500, 2_500)


def rate(call: Callable[[], object]) -> float:
    """Calls per second of ``call``, measured over about TIMED_SECONDS."""
    call()  # warm caches (zone data, cached properties) before timing
    calls, started = 0, time.perf_counter()
    deadline = started + TIMED_SECONDS
    while True:
        for _ in range(20):
            call()
        calls += 20
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def schedule_cases() -> list[tuple[str, Callable[[], object]]]:
    detroit, new_york = ZoneInfo("America/Detroit"), ZoneInfo("America/New_York")
    simple = Schedule(timezone="America/Detroit", quiet=[NIGHTS])
    multi = Schedule(
        timezone="America/Detroit",
        quiet=[
            NIGHTS,
            Window(start="12:00", end="13:00", days="mon-fri"),
            Window(start="00:00", end="24:00", days="sat,sun"),
        ],
        available=[Window(start="09:00", end="17:00", days="mon-fri")],
    )
    # Saturday evening before New York springs forward; Sunday is avoided, so
    # the answer is Monday morning, on the far side of the change.
    dst = Schedule(
        timezone="America/New_York",
        quiet=[NIGHTS, Window(start="00:00", end="24:00", days="sun")],
    )
    strategy = FallbackStrategy()
    traveller = Contact(
        id="traveller",
        points=[
            ContactPoint(channel="sms", address="+12125550123"),
            ContactPoint(channel="sms", address="+447911123456"),
        ],
        preferences=Preferences(channels=["sms"], quiet_hours=[NIGHTS]),
    )
    # The strategy reads a contact without a zone in every zone of their numbers
    # and asks next_open_all for the first instant open in all of them.
    zones = strategy.schedules(traveller, traveller.points[0], Message(body="x"))
    simple_at = datetime(2026, 3, 2, 22, 0, tzinfo=detroit)
    multi_at = datetime(2026, 3, 6, 18, 0, tzinfo=detroit)
    dst_at = datetime(2026, 3, 7, 22, 0, tzinfo=new_york)
    zones_at = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    return [
        ("simple: nights, Mon 22:00", lambda: simple.next_open(simple_at)),
        ("multi-window: Fri 18:00 to Mon 09:00", lambda: multi.next_open(multi_at)),
        ("DST-crossing: Sat 22:00 to Mon 08:00", lambda: dst.next_open(dst_at)),
        (
            f"multi-zone contact ({len(zones)} zones)",
            lambda: next_open_all(zones, zones_at),
        ),
    ]


def person(number: int) -> Contact:
    """A generated contact: a Detroit number and an email, quiet at night."""
    return Contact(
        id=f"person-{number}",
        timezone="America/Detroit",
        points=[
            ContactPoint(channel="sms", address=f"+1734555{number % 10_000:04d}"),
            ContactPoint(channel="email", address=f"person{number}@example.com"),
        ],
        preferences=Preferences(channels=["sms", "email"], quiet_hours=[NIGHTS]),
    )


def people(count: int) -> Iterator[Contact]:
    return (person(number) for number in range(count))


def decide_cases() -> list[tuple[str, Callable[[], object]]]:
    strategy = FallbackStrategy()
    contact = person(1)
    message = Message(body="Your order has shipped.")
    failed = Attempt(
        channel="sms", address=contact.points[0].address, at=MONDAY, outcome="failed", tries=3
    )
    night = MONDAY + timedelta(hours=12)  # 22:00 in Detroit
    return [
        ("first choice, open now: send", lambda: strategy.decide(contact, message, now=MONDAY)),
        (
            "second choice after a failure: send",
            lambda: strategy.decide(contact, message, now=MONDAY, attempts=[failed]),
        ),
        ("first choice, quiet hours: wait", lambda: strategy.decide(contact, message, now=night)),
    ]


class KeepNothing:
    """A store that forgets finished dispatches, so only the batch itself uses memory."""

    def __init__(self) -> None:
        self._live: dict[str, Dispatch] = {}

    def create(self, dispatch: Dispatch) -> Dispatch:
        self._live[dispatch.id] = dispatch
        return dispatch

    def save(self, dispatch: Dispatch) -> None:
        if dispatch.status.is_final:
            self._live.pop(dispatch.id, None)
        else:
            self._live[dispatch.id] = dispatch

    def get(self, dispatch_id: str) -> Dispatch | None:
        return self._live.get(dispatch_id)

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        return None

    def find_by_address(self, channel: str, address: str) -> Dispatch | None:
        return None

    def due(self, now: datetime, limit: int | None = None) -> list[Dispatch]:
        return []

    def claim_due(
        self, now: datetime, *, lease: timedelta, owner: str, limit: int | None = None
    ) -> list[Dispatch]:
        return []

    def release(self, dispatch_id: str, owner: str) -> None:
        pass

    def dispatches(self, status: Status | None = None) -> Iterator[Dispatch]:
        return iter(list(self._live.values()))

    def add_opt_out(self, channel: str, address: str) -> None:
        pass

    def remove_opt_out(self, channel: str, address: str) -> None:
        pass

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        return frozenset()

    def dispatches_that_tried(
        self, channel: str, address: str, statuses: Collection[Status] | None = None
    ) -> list[Dispatch]:
        return []

    def hold_event(self, event: DeliveryEvent, at: datetime, *, forget_before: datetime) -> None:
        pass

    def held_events(self, provider_id: str) -> list[tuple[int, DeliveryEvent]]:
        return []

    def forget_held_events(self, keys: Iterable[int]) -> None:
        pass

    def seen_inbound(self, key: str) -> bool:
        return False

    def remember_inbound(self, key: str, at: datetime) -> None:
        pass


def campaign(count: int, *, keep: bool) -> tuple[int, float]:
    """Send to ``count`` generated contacts; (dispatches made, seconds taken)."""
    outbox = Outbox()
    store: Store | None = None if keep else KeepNothing()
    dispatcher = Dispatcher(
        adapters=[outbox],
        clock=ManualClock(MONDAY),
        store=store,
    )
    forget = None if keep else (lambda _result: outbox.clear())
    message = Message(body="The service is back.")
    started = time.perf_counter()
    made, failure = 0, None
    for result in dispatcher.send_many(people(count), message, progress=forget):
        made += result.ok
        failure = failure or result.error
    taken = time.perf_counter() - started
    if failure is not None:
        # A figure for sends that failed would measure nothing: say why instead.
        raise SystemExit(f"{count - made} of {count} sends failed, the first with {failure!r}")
    return made, taken


def peak_memory(count: int, *, keep: bool) -> float:
    """Peak traced memory in MiB while sending to ``count`` contacts."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    campaign(count, keep=keep)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    began = time.perf_counter()
    print(
        f"multichannel {multichannel.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()} {sys.platform}"
    )

    print("\nSchedule.next_open, asked from a closed instant")
    for label, call in schedule_cases():
        print(f"  {label:<42} {rate(call):>10,.0f} calls/s")

    print("\nFallbackStrategy.decide, a contact with sms and email and quiet nights")
    for label, call in decide_cases():
        print(f"  {label:<42} {rate(call):>10,.0f} calls/s")

    print(f"\nDispatcher.send_many over {CAMPAIGN:,} generated contacts (Outbox, ManualClock)")
    made, seconds = campaign(CAMPAIGN, keep=True)
    print(f"  {made:,} dispatches in {seconds:.1f} s: {made / seconds:,.0f} contacts/s")

    print("\nPeak memory of send_many with a generator of contacts (tracemalloc)")
    for count in MEMORY_SIZES:
        label = f"{count:,} contacts, nothing kept"
        print(f"  {label:<42} {peak_memory(count, keep=False):>10.2f} MiB")
    count = MEMORY_SIZES[0]
    peak = peak_memory(count, keep=True)
    label = f"{count:,} contacts, store and outbox keep all"
    print(f"  {label:<42} {peak:>10.2f} MiB ({peak * 1024 / count:.1f} KiB a contact)")
    print(f"\ndone in {timedelta(seconds=round(time.perf_counter() - began))}")


if __name__ == "__main__":
    main()
