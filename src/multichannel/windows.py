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
from datetime import UTC, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from multichannel._fields import Items
from multichannel._weeks import (
    BLOCK,
    EPOCH,
    SAFE_FROM,
    SAFE_UNTIL,
    Key,
    Plan,
    block_start,
    instants_reading,
    offset_changes,
    plan_for,
    week_of,
)
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
        return not week_of(tuple(self.quiet), None).is_open(self.local(at))

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
    def _key(self) -> Key:
        # Read afresh, never kept on the instance: a copy made by
        # model_copy(update=...) shares the instance's dict but not its windows.
        # The zone is named by ``tz``, as `local` reads it, so both always agree.
        available = None if self.available is None else tuple(self.available)
        return self.tz.key, tuple(self.quiet), available


_PLANS_OF_OWNERS: dict[int, tuple[object, Plan]] = {}
_OWNERS_KEPT = 1024


def _plan_of(owner: object, schedules: Sequence[Schedule]) -> Plan:
    """The plan of ``schedules``, found by value, or by identity when ``owner`` was seen.

    ``owner`` is the tuple of schedules a caller passed, or the one schedule asked.
    It is remembered (and kept alive, so its id is never reused meanwhile) only
    when nothing in it can change: a tuple of schedules, or a schedule.
    """
    seen = _PLANS_OF_OWNERS.get(id(owner))
    if seen is not None and seen[0] is owner:
        return seen[1]
    plan = plan_for(tuple([schedule._key for schedule in schedules]))
    if type(owner) is Schedule or (
        type(owner) is tuple and all(type(schedule) is Schedule for schedule in schedules)
    ):
        if len(_PLANS_OF_OWNERS) >= _OWNERS_KEPT:
            _PLANS_OF_OWNERS.clear()
        _PLANS_OF_OWNERS[id(owner)] = (owner, plan)
    return plan


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
    if not SAFE_FROM <= start <= SAFE_UNTIL:
        return _next_open_by_scan(schedules, after, horizon)
    plan = _plan_of(owner, schedules)
    block = (start - EPOCH) // BLOCK
    starts, ends = plan.spans(block)
    index = bisect_right(starts, start) - 1
    if index >= 0 and start < ends[index]:
        return after
    end = start + horizon
    if end > SAFE_UNTIL:
        return _next_open_by_scan(schedules, after, horizon)
    if index + 1 < len(starts):
        found = starts[index + 1]
    elif plan.never:
        return None
    else:
        while True:
            block += 1
            low = block_start(block)
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
    yield from offset_changes(tz, start, end)
    minutes = {0}
    for window in (*schedule.quiet, *(schedule.available or ())):
        minutes |= window.boundaries()
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        for minute in sorted(minutes):
            for instant in instants_reading(tz, day, minute):
                if start < instant <= end:
                    yield instant
        day += timedelta(days=1)
