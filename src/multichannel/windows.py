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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cached_property
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
        reading = self.local(at)
        return any(window.contains(reading) for window in self.quiet)

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` is outside every quiet window and inside an available one."""
        reading = self.local(at)
        if any(window.contains(reading) for window in self.quiet):
            return False
        if self.available is None:
            return True
        return any(window.contains(reading) for window in self.available)

    def next_open(
        self, after: datetime, horizon: timedelta = timedelta(days=14)
    ) -> datetime | None:
        """The earliest open instant at or after ``after``, within ``horizon`` (inclusive).

        Returns None when nothing opens in time. Raises ValueError for a naive
        ``after`` or a negative horizon.
        """
        return next_open_all((self,), after, horizon)

    def _boundary_minutes(self) -> frozenset[int]:
        minutes = {0}
        for window in (*self.quiet, *(self.available or ())):
            minutes |= window.boundaries()
        return frozenset(minutes)

    def _candidates(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Instants in (start, end] at which this schedule's state can change."""
        yield from _offset_changes(self.tz, start, end)
        first = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date() + timedelta(days=1)
        minutes = sorted(self._boundary_minutes())
        day = first
        while day <= last:
            for minute in minutes:
                for instant in _instants_reading(self.tz, day, minute):
                    if start < instant <= end:
                        yield instant
            day += timedelta(days=1)


def next_open_all(
    schedules: Sequence[Schedule], after: datetime, horizon: timedelta = timedelta(days=14)
) -> datetime | None:
    """The earliest instant at or after ``after`` at which every schedule is open.

    Looks no further than ``after + horizon`` (inclusive) and returns None when
    nothing opens by then. Raises ValueError for a naive ``after`` or a negative
    horizon.
    """
    require_aware(after, "after")
    if horizon < timedelta(0):
        raise ValueError(f"horizon cannot be negative ({horizon})")
    start = after.astimezone(UTC)
    if all(schedule.is_open(start) for schedule in schedules):
        return after
    end = start + horizon
    # A day at a time, so that an opening soon after ``after`` (the usual case)
    # costs a day's candidates rather than the whole horizon's.
    low = start
    while low < end:
        high = min(low + _CHUNK, end)
        candidates: set[datetime] = set()
        for schedule in schedules:
            candidates.update(schedule._candidates(low, high))
        for instant in sorted(candidates):
            if all(schedule.is_open(instant) for schedule in schedules):
                return instant.astimezone(after.tzinfo)
        low = high
    return None


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
