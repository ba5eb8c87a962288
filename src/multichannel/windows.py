"""Spans of local wall-clock time and the exact arithmetic of when a schedule is open.

A `Window` is a span of wall-clock time ("21:00" to "08:00") on chosen days. A
`Schedule` reads instants on the wall clock of one IANA zone: an instant is
*quiet* when its local reading falls in a quiet window, and *open* when it is
not quiet and (if ``available`` is given) falls in an available window.

`Schedule.next_open` is exact: openness can only change at an instant whose
local reading is a window boundary or a midnight, or at an instant where the
zone's UTC offset changes (a DST gap or fold, a skipped day). Between two such
instants the local reading moves forward continuously and crosses no boundary,
so the state is constant; the first candidate instant that is open is the
answer. DST gaps, repeated hours, 30- and 45-minute offsets and skipped days all
follow from that one definition.

What that arithmetic finds is pure, so it is worked out once and kept, keyed by
value (equal windows built separately share it): the local week of a set of
windows as runs of open and closed minutes; a zone's offset changes, a UTC week
at a time; and from both, the open spans in UTC of a (zone, windows) pair, or of
several pairs together, a UTC week at a time. Asking again, for any contact with
equal windows, is a look-up and a bisection. Each store is bounded.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from multichannel._fields import Items
from multichannel.clock import require_aware

__all__ = ["DAY_NAMES", "Schedule", "Window", "next_open_all", "parse_days", "zone"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    **{name: i for i, name in enumerate(DAY_NAMES)},
    **{
        full: i
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": 1,
    "wednes": 2,
    "thur": 3,
    "thurs": 3,
}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_MINUTES_PER_DAY = 24 * 60
# Offset changes are found by stepping through UTC at this pace and bisecting;
# no zone changes its offset twice within an hour.
_SCAN_STEP = timedelta(hours=1)
_CHUNK = timedelta(days=1)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError naming it if there is none."""
    try:
        return ZoneInfo(name)
    # A folder of the zone database ("America") fails as IsADirectoryError, an OSError.
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'America/Detroit'"
        ) from None


def _day_index(token: str) -> int:
    key = token.strip().lower()
    if key not in _DAY_ALIASES:
        raise ValueError(f"unknown day {token.strip()!r}; use one of {', '.join(DAY_NAMES)}")
    return _DAY_ALIASES[key]


def parse_days(value: str | Iterable[str]) -> tuple[str, ...]:
    """Read days as ``"mon-fri"``, ``"sat,sun"``, ``["mon", "tue"]`` into week order.

    A range may wrap round the week (``"fri-mon"``). Raises ValueError for an
    unknown day or an empty list.
    """
    if isinstance(value, str):
        tokens: list[str] = value.split(",")
    elif isinstance(value, Iterable):
        tokens = list(value)
    else:
        raise ValueError(f"days must be names such as 'mon-fri' or ['sat', 'sun'], not {value!r}")
    chosen: set[int] = set()
    for token in tokens:
        if not isinstance(token, str):
            raise ValueError(f"a day must be a name such as 'mon', not {token!r}")
        if "-" in token:
            first, _, last = token.partition("-")
            start, stop = _day_index(first), _day_index(last)
            span = (stop - start) % 7
            chosen.update((start + i) % 7 for i in range(span + 1))
        elif token.strip():
            chosen.add(_day_index(token))
    if not chosen:
        raise ValueError("name at least one day, for example 'mon-fri'")
    return tuple(DAY_NAMES[i] for i in sorted(chosen))


def _clock_minutes(value: str, *, allow_24: bool) -> int:
    match = _CLOCK.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, for example '21:00'")
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if minutes > 59 or total > _MINUTES_PER_DAY or (total == _MINUTES_PER_DAY and not allow_24):
        limit = "24:00" if allow_24 else "23:59"
        raise ValueError(f"{value!r} is not a time of day between 00:00 and {limit}")
    return total


def _clock_text(value: Any) -> Any:
    if isinstance(value, time):
        if value.second or value.microsecond:
            raise ValueError(f"{value.isoformat()} has seconds; windows are whole minutes")
        return value.strftime("%H:%M")
    return value


def _days_input(value: Any) -> Any:
    return None if value is None else parse_days(value)


ClockTime = Annotated[str, BeforeValidator(_clock_text)]
# "mon-fri" is a Sequence[str] too, so a type checker takes it as well as ["sat", "sun"].
Days = Annotated[Items[str] | None, BeforeValidator(_days_input)]


class Window(BaseModel):
    """A span of local wall-clock time on chosen days.

    ``start`` and ``end`` are ``"HH:MM"``; ``end`` may be ``"24:00"``. A ``start``
    later than ``end`` crosses midnight. ``days`` names the local days on which
    the span *starts* (``"mon-fri"``, ``["sat", "sun"]``); None means every day.
    The span includes ``start`` and excludes ``end``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: ClockTime = Field(description="local time the span starts, HH:MM")
    end: ClockTime = Field(description="local time the span ends, HH:MM or 24:00")
    days: Days = Field(default=None, description="days the span starts on; None is every day")

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        return _as_text(_clock_minutes(value, allow_24=False))

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str) -> str:
        return _as_text(_clock_minutes(value, allow_24=True))

    @model_validator(mode="after")
    def _check_span(self) -> Window:
        if self.start_minute == self.end_minute:
            raise ValueError(
                f"a window from {self.start} to {self.end} is empty or ambiguous; "
                "for a whole day write start='00:00', end='24:00'"
            )
        return self

    @cached_property
    def start_minute(self) -> int:
        """Minutes after local midnight at which the span starts."""
        return _clock_minutes(self.start, allow_24=False)

    @cached_property
    def end_minute(self) -> int:
        """Minutes after local midnight at which the span ends (1440 for 24:00)."""
        return _clock_minutes(self.end, allow_24=True)

    @cached_property
    def _weekdays(self) -> frozenset[int]:
        if self.days is None:
            return frozenset(range(7))
        return frozenset(DAY_NAMES.index(day) for day in self.days)

    @property
    def crosses_midnight(self) -> bool:
        """True when the span runs past local midnight into the next day."""
        return self.start_minute > self.end_minute

    def contains(self, local: datetime) -> bool:
        """True when the local wall reading ``local`` (its tzinfo ignored) is in the span."""
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        if not self.crosses_midnight:
            return weekday in self._weekdays and self.start_minute <= minute < self.end_minute
        if weekday in self._weekdays and minute >= self.start_minute:
            return True
        return (weekday - 1) % 7 in self._weekdays and minute < self.end_minute

    def boundaries(self) -> frozenset[int]:
        """The minutes of the day at which this window can open or close."""
        return frozenset({self.start_minute, self.end_minute % _MINUTES_PER_DAY})

    def describe(self) -> str:
        """The window in words: ``21:00-08:00 on mon-fri``."""
        days = "every day" if self.days is None else "on " + ",".join(self.days)
        return f"{self.start}-{self.end} {days}"


def _as_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Schedule(BaseModel):
    """Quiet and available windows read on the wall clock of one IANA zone.

    Raises pydantic's ValidationError for an unknown zone or a bad window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field(description="IANA time zone name, e.g. 'America/Detroit'")
    quiet: Items[Window] = Field(default=(), description="never open inside these")
    available: Items[Window] | None = Field(
        default=None, description="if given, open only inside one of these"
    )

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        zone(value)
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        """The zone as a tzinfo."""
        return zone(self.timezone)

    def local(self, at: datetime) -> datetime:
        """The wall-clock reading of the instant ``at`` in this zone."""
        return require_aware(at, "instant").astimezone(self.tz)

    def is_quiet(self, at: datetime) -> bool:
        """True when ``at`` reads inside a quiet window."""
        return not _week(tuple(self.quiet), None).is_open(self.local(at))

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` is outside every quiet window and inside an available one."""
        return _plan_of(self, (self,)).weeks[0].is_open(self.local(at))

    def next_open(
        self, after: datetime, horizon: timedelta = timedelta(days=14)
    ) -> datetime | None:
        """The earliest open instant at or after ``after``, within ``horizon`` (inclusive).

        Returns None when nothing opens in time. Raises ValueError for a naive
        ``after`` or a negative horizon.
        """
        return _next_open(self, (self,), after, horizon)

    @property
    def _key(self) -> _Key:
        # Read afresh, never kept on the instance: a copy made by
        # model_copy(update=...) shares the instance's dict but not its windows.
        # The zone is named by ``tz``, as `local` reads it, so both always agree.
        available = None if self.available is None else tuple(self.available)
        return self.tz.key, tuple(self.quiet), available


_Key = tuple[str, tuple[Window, ...], tuple[Window, ...] | None]
"""What a schedule's answers depend on, by value: its zone's name and its windows."""

_WEEK = 7 * _MINUTES_PER_DAY
_A_MONDAY = datetime(2024, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Open spans are worked out and kept a UTC week at a time.
_BLOCK = timedelta(days=7)
# Searches this close to the ends of the datetime range take the slow way, whose
# arithmetic never steps outside the range it is asked about.
_SAFE_FROM = datetime(1, 2, 1, tzinfo=UTC)
_SAFE_UNTIL = datetime(9999, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False, slots=True)
class _Week:
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
def _week(quiet: tuple[Window, ...], available: tuple[Window, ...] | None) -> _Week:
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
    return _Week(tuple(starts), tuple(opens))


def _block_start(block: int) -> datetime:
    return _EPOCH + block * _BLOCK


@lru_cache(maxsize=4096)
def _offset_changes_in(timezone: str, block: int) -> tuple[datetime, ...]:
    """The instants inside UTC week ``block`` at which the offset of ``timezone`` changes."""
    low, high = _block_start(block), _block_start(block + 1)
    return tuple(at for at in _offset_changes(zone(timezone), low, high) if at < high)


_Spans = tuple[tuple[datetime, ...], tuple[datetime, ...]]
"""Open spans: their starts and their ends, in order."""


def _open_spans(keys: tuple[_Key, ...], block: int) -> _Spans:
    """The UTC spans [start, end) in UTC week ``block`` during which every schedule is open."""
    if len(keys) != 1:
        return _overlap([_plan_for((key,)).spans(block) for key in keys])
    ((timezone, quiet, available),) = keys
    week = _week(quiet, available)
    low, high = _block_start(block), _block_start(block + 1)
    runs = len(week.starts)
    if runs == 1:
        return ((low,), (high,)) if week.opens[0] else ((), ())
    tz = zone(timezone)
    starts: list[datetime] = []
    ends: list[datetime] = []
    opened: datetime | None = None
    edges = (low, *_offset_changes_in(timezone, block), high)
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


class _Plan:
    """One set of schedules, by value, and their open spans a UTC week at a time.

    A week's spans are worked out the first time it is asked about and kept for
    every later call with equal schedules: a million contacts who share a few
    hundred schedules share a few hundred plans.
    """

    __slots__ = ("_spans", "keys", "never", "weeks")

    def __init__(self, keys: tuple[_Key, ...]) -> None:
        self.keys = keys
        self.weeks = tuple(_week(quiet, available) for _, quiet, available in keys)
        self.never = not all(any(week.opens) for week in self.weeks)
        self._spans: dict[int, _Spans] = {}

    def spans(self, block: int) -> _Spans:
        """The open spans within UTC week ``block``."""
        found = self._spans.get(block)
        if found is None:
            if len(self._spans) >= _WEEKS_KEPT:
                self._spans.clear()
            found = self._spans[block] = _open_spans(self.keys, block)
        return found


@lru_cache(maxsize=1024)
def _plan_for(keys: tuple[_Key, ...]) -> _Plan:
    return _Plan(keys)


_WEEKS_KEPT = 8
_PLANS_OF_OWNERS: dict[int, tuple[object, _Plan]] = {}
_OWNERS_KEPT = 1024


def _plan_of(owner: object, schedules: Sequence[Schedule]) -> _Plan:
    """The plan of ``schedules``, found by value, or by identity when ``owner`` was seen.

    ``owner`` is the tuple of schedules a caller passed, or the one schedule asked.
    It is remembered (and kept alive, so its id is never reused meanwhile) only
    when nothing in it can change: a tuple of schedules, or a schedule.
    """
    seen = _PLANS_OF_OWNERS.get(id(owner))
    if seen is not None and seen[0] is owner:
        return seen[1]
    plan = _plan_for(tuple([schedule._key for schedule in schedules]))
    if type(owner) is Schedule or (
        type(owner) is tuple and all(type(schedule) is Schedule for schedule in schedules)
    ):
        if len(_PLANS_OF_OWNERS) >= _OWNERS_KEPT:
            _PLANS_OF_OWNERS.clear()
        _PLANS_OF_OWNERS[id(owner)] = (owner, plan)
    return plan


def _overlap(each: Sequence[_Spans]) -> _Spans:
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


def next_open_all(
    schedules: Sequence[Schedule], after: datetime, horizon: timedelta = timedelta(days=14)
) -> datetime | None:
    """The earliest instant at or after ``after`` at which every schedule is open.

    Looks no further than ``after + horizon`` (inclusive) and returns None when
    nothing opens by then. Raises ValueError for a naive ``after`` or a negative
    horizon.
    """
    return _next_open(schedules, schedules, after, horizon)


def _next_open(
    owner: object, schedules: Sequence[Schedule], after: datetime, horizon: timedelta
) -> datetime | None:
    require_aware(after, "after")
    if horizon < timedelta(0):
        raise ValueError(f"horizon cannot be negative ({horizon})")
    if not schedules:
        return after
    start = after.astimezone(UTC)
    if not _SAFE_FROM <= start <= _SAFE_UNTIL:
        return _next_open_by_scan(schedules, after, horizon)
    plan = _plan_of(owner, schedules)
    block = (start - _EPOCH) // _BLOCK
    starts, ends = plan.spans(block)
    index = bisect_right(starts, start) - 1
    if index >= 0 and start < ends[index]:
        return after
    end = start + horizon
    if end > _SAFE_UNTIL:
        return _next_open_by_scan(schedules, after, horizon)
    if index + 1 < len(starts):
        found = starts[index + 1]
    elif plan.never:
        return None
    else:
        while True:
            block += 1
            low = _block_start(block)
            if low > end:
                return None
            starts = plan.spans(block)[0]
            if starts:
                found = starts[0]
                break
    return found.astimezone(after.tzinfo) if found <= end else None


def _next_open_by_scan(
    schedules: Sequence[Schedule], after: datetime, horizon: timedelta
) -> datetime | None:
    """`next_open_all` by trying every instant at which some schedule can change state.

    Slower than the cached week spans, but it never steps past the range asked
    about, so it answers near the ends of the datetime range.
    """
    start = after.astimezone(UTC)
    if all(schedule.is_open(start) for schedule in schedules):
        return after
    end = start + horizon
    low = start
    while low < end:
        high = min(low + _CHUNK, end)
        candidates: set[datetime] = set()
        for schedule in schedules:
            candidates.update(_candidates(schedule, low, high))
        for instant in sorted(candidates):
            if all(schedule.is_open(instant) for schedule in schedules):
                return instant.astimezone(after.tzinfo)
        low = high
    return None


def _candidates(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """Instants in (start, end] at which the state of ``schedule`` can change."""
    tz = schedule.tz
    yield from _offset_changes(tz, start, end)
    minutes = {0}
    for window in (*schedule.quiet, *(schedule.available or ())):
        minutes |= window.boundaries()
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        for minute in sorted(minutes):
            for instant in _instants_reading(tz, day, minute):
                if start < instant <= end:
                    yield instant
        day += timedelta(days=1)


def _instants_reading(tz: tzinfo, day: date, minute: int) -> Iterator[datetime]:
    """Every UTC instant whose wall reading in ``tz`` is ``day`` at ``minute``: none, one or two."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    seen: set[datetime] = set()
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant not in seen and instant.astimezone(tz).replace(tzinfo=None) == naive:
            seen.add(instant)
            yield instant


def _offset_changes(tz: tzinfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Instants in (start, end] at which the UTC offset of ``tz`` changes."""
    low = start
    low_offset = low.astimezone(tz).utcoffset()
    while low < end:
        high = min(low + _SCAN_STEP, end)
        high_offset = high.astimezone(tz).utcoffset()
        if high_offset != low_offset:
            yield _bisect_change(tz, low, high, low_offset)
        low, low_offset = high, high_offset


def _bisect_change(
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
