"""When a set of windows is open, worked out once: the local week, a zone's changes, UTC spans.

The arithmetic behind `Schedule.next_open`, `is_open` and `next_open_all`
(`multichannel.windows`). It is pure, so what it finds is kept, keyed by value
(equal windows built separately share it): the local week of a set of windows
as runs of open and closed minutes; a zone's offset changes, a UTC week at a
time; and from both, the open spans in UTC of a (zone, windows) pair, or of
several pairs together, a UTC week at a time. Each store is bounded. Windows
are read only through ``contains`` and ``boundaries``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Protocol, TypeAlias
from zoneinfo import ZoneInfo

__all__ = [
    "BLOCK",
    "EPOCH",
    "SAFE_FROM",
    "SAFE_UNTIL",
    "Key",
    "Plan",
    "Span",
    "Spans",
    "Week",
    "block_start",
    "instants_reading",
    "offset_changes",
    "plan_for",
    "week_of",
]

_MINUTES_PER_DAY = 24 * 60
# Offset changes are found by stepping through UTC at this pace and bisecting;
# no zone changes its offset twice within an hour.
_SCAN_STEP = timedelta(hours=1)


class Span(Protocol):
    """What this module reads of a window (`multichannel.windows.Window` is one)."""

    def contains(self, local: datetime) -> bool:
        """True when the wall reading ``local`` falls inside."""
        ...

    def boundaries(self) -> frozenset[int]:
        """The minutes of the day at which it may begin or end."""
        ...


Key: TypeAlias = "tuple[str, tuple[Span, ...], tuple[Span, ...] | None]"
"""What a schedule's answers depend on, by value: its zone's name and its windows."""

_WEEK = 7 * _MINUTES_PER_DAY
_A_MONDAY = datetime(2024, 1, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Open spans are worked out and kept a UTC week at a time.
BLOCK = timedelta(days=7)
# Searches this close to the ends of the datetime range take the slow way, whose
# arithmetic never steps outside the range it is asked about.
SAFE_FROM = datetime(1, 2, 1, tzinfo=UTC)
SAFE_UNTIL = datetime(9999, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False, slots=True)
class Week:
    """When a set of windows is open, by minute of the local week (Monday 00:00 is minute 0).

    The week is cut into runs of one state: run ``i`` starts at ``starts[i]``
    (``starts[0]`` is 0) and is open when ``opens[i]``; neighbouring runs differ.
    """

    starts: tuple[int, ...]
    opens: tuple[bool, ...]

    def run(self, reading: datetime) -> tuple[int, int]:
        """The run holding the wall reading ``reading``, and its minute of the week."""
        minute = reading.weekday() * _MINUTES_PER_DAY + reading.hour * 60 + reading.minute
        return bisect_right(self.starts, minute) - 1, minute

    def is_open(self, reading: datetime) -> bool:
        """True when the wall reading ``reading`` (its tzinfo ignored) is open."""
        return self.opens[self.run(reading)[0]]


@lru_cache(maxsize=1024)
def week_of(quiet: tuple[Span, ...], available: tuple[Span, ...] | None) -> Week:
    """The local week of ``quiet`` and ``available``, worked out once per distinct pair.

    Each window's ``contains`` decides the state of each run: the state can change
    only at a window's start or end or at a midnight, so one reading per run is
    every reading.
    """
    minutes = {0}
    for window in (*quiet, *(available or ())):
        minutes |= window.boundaries()
    starts: list[int] = []
    opens: list[bool] = []
    for minute in sorted(day * _MINUTES_PER_DAY + m for day in range(7) for m in minutes):
        reading = _A_MONDAY + timedelta(minutes=minute)
        state = not any(window.contains(reading) for window in quiet) and (
            available is None or any(window.contains(reading) for window in available)
        )
        if not opens or opens[-1] != state:
            starts.append(minute)
            opens.append(state)
    return Week(tuple(starts), tuple(opens))


def block_start(block: int) -> datetime:
    return EPOCH + block * BLOCK


@lru_cache(maxsize=4096)
def offset_changes_in(timezone: str, block: int) -> tuple[datetime, ...]:
    """The instants inside UTC week ``block`` at which the offset of ``timezone`` changes."""
    low, high = block_start(block), block_start(block + 1)
    return tuple(at for at in offset_changes(ZoneInfo(timezone), low, high) if at < high)


Spans = tuple[tuple[datetime, ...], tuple[datetime, ...]]
"""Open spans: their starts and their ends, in order."""


def open_spans(keys: tuple[Key, ...], block: int) -> Spans:
    """The UTC spans [start, end) in UTC week ``block`` during which every schedule is open."""
    if len(keys) != 1:
        return overlap([plan_for((key,)).spans(block) for key in keys])
    ((timezone, quiet, available),) = keys
    week = week_of(quiet, available)
    low, high = block_start(block), block_start(block + 1)
    runs = len(week.starts)
    if runs == 1:
        return ((low,), (high,)) if week.opens[0] else ((), ())
    tz = ZoneInfo(timezone)
    starts: list[datetime] = []
    ends: list[datetime] = []
    opened: datetime | None = None
    edges = (low, *offset_changes_in(timezone, block), high)
    # Between two offset changes the wall reading is the instant plus one offset,
    # so each boundary of the week there is read at exactly one instant.
    for segment_start, segment_end in pairwise(edges):
        reading = segment_start.astimezone(tz)
        offset = reading.utcoffset() or timedelta(0)
        run, minute = week.run(reading)
        monday = reading.replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=minute)
        at = segment_start
        while at < segment_end:
            index = run % runs
            if week.opens[index] and opened is None:
                opened = at
            elif not week.opens[index] and opened is not None:
                starts.append(opened)
                ends.append(at)
                opened = None
            run += 1
            laps, index = divmod(run, runs)
            wall = monday + timedelta(minutes=week.starts[index] + laps * _WEEK)
            at = (wall - offset).replace(tzinfo=UTC)
    if opened is not None:
        starts.append(opened)
        ends.append(high)
    return tuple(starts), tuple(ends)


class Plan:
    """One set of schedules, by value, and their open spans a UTC week at a time.

    A week's spans are worked out the first time it is asked about and kept for
    every later call with equal schedules: a million contacts who share a few
    hundred schedules share a few hundred plans.
    """

    __slots__ = ("_spans", "keys", "never", "weeks")

    def __init__(self, keys: tuple[Key, ...]) -> None:
        self.keys = keys
        self.weeks = tuple(week_of(quiet, available) for _, quiet, available in keys)
        self.never = not all(any(week.opens) for week in self.weeks)
        self._spans: dict[int, Spans] = {}

    def spans(self, block: int) -> Spans:
        """The open spans within UTC week ``block``."""
        found = self._spans.get(block)
        if found is None:
            if len(self._spans) >= _WEEKS_KEPT:
                self._spans.clear()
            found = self._spans[block] = open_spans(self.keys, block)
        return found


@lru_cache(maxsize=1024)
def plan_for(keys: tuple[Key, ...]) -> Plan:
    return Plan(keys)


_WEEKS_KEPT = 8


def overlap(each: Sequence[Spans]) -> Spans:
    """The spans during which every one of ``each`` is open."""
    starts, ends = each[0]
    for other_starts, other_ends in each[1:]:
        both_starts: list[datetime] = []
        both_ends: list[datetime] = []
        mine = theirs = 0
        while mine < len(starts) and theirs < len(other_starts):
            start = max(starts[mine], other_starts[theirs])
            end = min(ends[mine], other_ends[theirs])
            if start < end:
                both_starts.append(start)
                both_ends.append(end)
            if ends[mine] < other_ends[theirs]:
                mine += 1
            else:
                theirs += 1
        starts, ends = tuple(both_starts), tuple(both_ends)
    return starts, ends


def instants_reading(tz: tzinfo, day: date, minute: int) -> Iterator[datetime]:
    """Every UTC instant whose wall reading in ``tz`` is ``day`` at ``minute``: none, one or two."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    seen: set[datetime] = set()
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant not in seen and instant.astimezone(tz).replace(tzinfo=None) == naive:
            seen.add(instant)
            yield instant


def offset_changes(tz: tzinfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Instants in (start, end] at which the UTC offset of ``tz`` changes."""
    low = start
    low_offset = low.astimezone(tz).utcoffset()
    while low < end:
        high = min(low + _SCAN_STEP, end)
        high_offset = high.astimezone(tz).utcoffset()
        if high_offset != low_offset:
            yield bisect_change(tz, low, high, low_offset)
        low, low_offset = high, high_offset


def bisect_change(
    tz: tzinfo, low: datetime, high: datetime, low_offset: timedelta | None
) -> datetime:
    """The first instant in (low, high] whose offset differs from ``low_offset``."""
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == low_offset:
            low = middle
        else:
            high = middle
    return high
