"""Schedule.next_open checked against a brute-force minute scan over real zone rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from multichannel import Schedule, Window
from multichannel.windows import next_open_all

# DST zones of both hemispheres, 30- and 45-minute offsets (with and without DST), a zone
# whose DST moves by two hours, zones that change at local midnight, and one that skipped a day.
ZONES = (
    "UTC",
    "America/Detroit",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Pacific/Apia",
    "America/Santiago",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "America/St_Johns",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "America/Havana",
    "America/New_York",
)

# Instants (UTC) at which a zone's offset changes; examples start near them on purpose.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "America/Detroit": (
        "2011-03-13 07:00",
        "2019-11-03 06:00",
        "2026-03-08 07:00",
        "2026-11-01 06:00",
    ),
    "Europe/London": (
        "2016-03-27 01:00",
        "2022-10-30 01:00",
        "2026-03-29 01:00",
        "2027-10-31 01:00",
    ),
    "Australia/Lord_Howe": (
        "2011-10-01 15:30",
        "2019-04-06 15:00",
        "2026-04-04 15:00",
        "2026-10-03 15:30",
    ),
    "Australia/Adelaide": ("2016-04-02 16:30", "2026-10-03 16:30"),
    "Pacific/Chatham": ("2019-04-06 14:00", "2026-09-26 14:00"),
    "Pacific/Apia": (
        "2011-09-24 14:00",
        "2011-12-30 10:00",
        "2020-09-26 14:00",
        "2021-04-03 14:00",
    ),
    "America/Santiago": (
        "2016-05-15 03:00",
        "2022-09-11 04:00",
        "2026-04-05 03:00",
        "2026-09-06 04:00",
    ),
    "America/Sao_Paulo": ("2011-10-16 03:00", "2018-11-04 03:00", "2019-02-17 02:00"),
    "Asia/Tehran": ("2011-03-21 20:30", "2022-09-21 19:30"),
    "America/St_Johns": ("2011-03-13 03:31", "2026-03-08 05:30", "2026-11-01 04:30"),
    "Africa/Casablanca": ("2012-07-20 02:00", "2018-06-17 02:00", "2026-02-15 02:00"),
    "Antarctica/Troll": ("2019-03-31 01:00", "2027-10-31 01:00"),
    "America/Havana": ("2011-11-13 05:00", "2026-03-08 05:00"),
    "America/New_York": ("2011-11-06 06:00", "2026-03-08 07:00", "2026-11-01 06:00"),
}

FIRST = datetime(2011, 1, 1, tzinfo=UTC)
LAST = datetime(2027, 12, 31, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
day_sets = st.one_of(st.none(), st.sets(st.sampled_from(DAYS), min_size=1).map(sorted))


def boundary_minutes(near: tuple[int, ...]) -> st.SearchStrategy[int]:
    """Minutes of the day for window edges: quarter hours, anything, and close to ``near``."""
    choices = [st.integers(0, 96).map(lambda quarter: quarter * 15), st.integers(0, 1440)]
    if near:
        around = st.tuples(st.sampled_from(near), st.integers(-90, 90))
        choices.append(around.map(lambda pair: min(max(pair[0] + pair[1], 0), 1440)))
    return st.one_of(choices)


@st.composite
def windows(draw: st.DrawFn, near: tuple[int, ...]) -> Window:
    start = draw(boundary_minutes(near).filter(lambda m: m < 1440))
    end = draw(boundary_minutes(near).filter(lambda m: m != start))
    return Window(start=_clock(start), end=_clock(end), days=draw(day_sets))


def wall_minutes(tz: ZoneInfo, change: datetime) -> tuple[int, ...]:
    """The local minute of the day just before ``change`` and at it (either side of a jump)."""
    readings = ((change - MINUTE).astimezone(tz) + MINUTE, change.astimezone(tz))
    return tuple(reading.hour * 60 + reading.minute for reading in readings)


@st.composite
def cases(draw: st.DrawFn, *, at_changes: bool = False) -> tuple[Schedule, datetime, timedelta]:
    """A schedule, a whole-UTC-minute ``after`` (often near an offset change), a horizon.

    Near a change, window edges cluster round the wall readings either side of it, where
    gaps and repeated hours matter. With ``at_changes`` every case starts within 90
    minutes of a change, inside a quiet window.
    """
    zones = tuple(TRANSITIONS) if at_changes else ZONES
    timezone = draw(st.sampled_from(zones))
    known = TRANSITIONS.get(timezone, ())
    near: tuple[int, ...] = ()
    if known and (at_changes or draw(st.booleans())):
        change = datetime.fromisoformat(draw(st.sampled_from(known))).replace(tzinfo=UTC)
        near = wall_minutes(ZoneInfo(timezone), change)
        offsets = st.integers(-90, 90)
        if not at_changes:
            offsets |= st.integers(-2 * 1440, 4 * 60)
        after = change + draw(offsets) * MINUTE
    else:
        after = FIRST + draw(st.integers(0, (LAST - FIRST) // MINUTE)) * MINUTE
    quiet = draw(st.lists(windows(near), max_size=3))
    if at_changes or draw(st.booleans()):
        quiet.append(draw(windows_holding(after.astimezone(ZoneInfo(timezone)))))
    schedule = Schedule(
        timezone=timezone,
        quiet=quiet,
        available=draw(st.none() | st.lists(windows(near), max_size=2)),
    )
    return schedule, after, draw(st.integers(0, 2 * 1440)) * MINUTE


@st.composite
def windows_holding(draw: st.DrawFn, reading: datetime) -> Window:
    """A window round the wall reading ``reading``, so that ``after`` is often quiet."""
    minute = reading.hour * 60 + reading.minute
    start = (minute - draw(st.integers(0, 180))) % 1440
    end = minute + draw(st.integers(1, 180))
    # Never equal to start: the two offsets add up to far less than a day.
    end = end - 1440 if end > 1440 else end
    return Window(start=_clock(start), end=_clock(end))


def read_open(schedule: Schedule, at: datetime) -> bool:
    """Whether ``at`` is open, read from the windows themselves and nothing cached.

    The definition in the module docstring, written out: the local reading of the
    instant, then each window's ``contains``. The schedule's own answers come from
    week patterns and spans kept between calls; this is what they must agree with.
    """
    reading = at.astimezone(schedule.tz)
    if any(window.contains(reading) for window in schedule.quiet):
        return False
    return schedule.available is None or any(
        window.contains(reading) for window in schedule.available
    )


def first_open_minute(schedule: Schedule, after: datetime, horizon: timedelta) -> datetime | None:
    """The earliest open instant found by trying every minute; exact for whole-minute zones."""
    at, end = after.astimezone(UTC), after.astimezone(UTC) + horizon
    while at <= end:
        if read_open(schedule, at):
            return at
        at += MINUTE
    return None


def whole_minutes(after: datetime, until: datetime) -> list[datetime]:
    """Every whole UTC minute strictly after ``after`` and strictly before ``until``."""
    at = after.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    found = []
    while at < until:
        found.append(at)
        at += MINUTE
    return found


@settings(max_examples=300)
@given(cases())
def test_next_open_matches_a_minute_scan(case: tuple[Schedule, datetime, timedelta]) -> None:
    schedule, after, horizon = case
    expected = first_open_minute(schedule, after, horizon)
    found = schedule.next_open(after, horizon)
    assert found == expected, schedule.model_dump(mode="json")


@settings(max_examples=500)
@given(cases(at_changes=True))
def test_next_open_matches_a_minute_scan_at_offset_changes(
    case: tuple[Schedule, datetime, timedelta],
) -> None:
    schedule, after, horizon = case
    expected = first_open_minute(schedule, after, horizon)
    assert schedule.next_open(after, horizon) == expected, schedule.model_dump(mode="json")


@settings(max_examples=150)
@given(cases(), st.sampled_from(ZONES), st.integers(0, 59), st.integers(0, 999_999))
def test_next_open_is_open_in_range_and_earliest(
    case: tuple[Schedule, datetime, timedelta], shown_in: str, second: int, microsecond: int
) -> None:
    schedule, whole_minute, horizon = case
    moved = whole_minute + timedelta(seconds=second, microseconds=microsecond)
    after = moved.astimezone(ZoneInfo(shown_in))
    last = moved + horizon
    found = schedule.next_open(after, horizon)
    # Openness changes only on whole minutes, so ``after`` and the whole minutes after it
    # are every moment worth checking.
    if found is None:
        assert not schedule.is_open(after)
        assert not any(
            map(schedule.is_open, whole_minutes(after, last + timedelta(microseconds=1)))
        )
        return
    assert found.tzinfo is after.tzinfo
    assert schedule.is_open(found)
    assert moved <= found.astimezone(UTC) <= last
    if found is not after:
        assert not schedule.is_open(after)
        assert (found.second, found.microsecond) == (0, 0)
        assert not any(map(schedule.is_open, whole_minutes(after, found.astimezone(UTC))))


@settings(max_examples=100)
@given(cases())
def test_no_horizon_means_open_now_or_nothing(case: tuple[Schedule, datetime, timedelta]) -> None:
    schedule, after, _ = case
    found = schedule.next_open(after, timedelta(0))
    assert found == (after if schedule.is_open(after) else None)


@settings(max_examples=100)
@given(cases(), st.integers(1, 600))
def test_a_longer_horizon_never_finds_a_later_opening(
    case: tuple[Schedule, datetime, timedelta], extra_minutes: int
) -> None:
    schedule, after, horizon = case
    short = schedule.next_open(after, horizon)
    long = schedule.next_open(after, horizon + extra_minutes * MINUTE)
    if short is not None:
        assert long == short
    elif long is not None:
        assert long > after + horizon


# --- the cached path against the windows themselves ---------------------------------------
#
# Schedule answers come from a week pattern kept per distinct set of windows and from
# open spans kept per (zone, windows) and UTC week. These check them, minute by minute,
# against `read_open`, which reads each window afresh.

CACHE_ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Detroit",
    "Pacific/Chatham",
)


@st.composite
def week_windows(draw: st.DrawFn, near: tuple[int, ...]) -> list[Window]:
    """Quiet windows as people write them: nights across midnight, breaks, avoided days."""
    found = draw(st.lists(windows(near), max_size=2))
    if draw(st.booleans()):
        night_start = draw(st.integers(18 * 4, 23 * 4)) * 15
        night_end = draw(st.integers(4 * 4, 9 * 4)) * 15
        found.append(Window(start=_clock(night_start), end=_clock(night_end), days=draw(day_sets)))
    if draw(st.booleans()):
        # What Preferences.avoid_days adds: whole local days.
        avoided = draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=3).map(sorted))
        found.append(Window(start="00:00", end="24:00", days=avoided))
    return found


@st.composite
def shared_windows(
    draw: st.DrawFn,
) -> tuple[list[Window], list[Window] | None, datetime, timedelta, tuple[str, ...]]:
    """Windows, an ``after`` near some zone's offset change, a horizon and 1-4 zones."""
    zones = tuple(draw(st.lists(st.sampled_from(CACHE_ZONES), min_size=1, max_size=4, unique=True)))
    changing = draw(st.sampled_from(zones))
    change = datetime.fromisoformat(draw(st.sampled_from(TRANSITIONS[changing]))).replace(
        tzinfo=UTC
    )
    near = wall_minutes(ZoneInfo(changing), change)
    after = change + draw(st.integers(-3 * 1440, 90)) * MINUTE
    quiet = draw(week_windows(near))
    available = draw(st.none() | st.lists(windows(near), min_size=1, max_size=2))
    return quiet, available, after, draw(st.integers(0, 3 * 1440)) * MINUTE, zones


def read_quiet(schedule: Schedule, at: datetime) -> bool:
    reading = at.astimezone(schedule.tz)
    return any(window.contains(reading) for window in schedule.quiet)


@settings(max_examples=150)
@given(shared_windows(), st.integers(0, 59))
def test_is_open_and_is_quiet_agree_with_the_windows_every_minute(
    case: tuple[list[Window], list[Window] | None, datetime, timedelta, tuple[str, ...]],
    second: int,
) -> None:
    quiet, available, after, _, zones = case
    schedule = Schedule(timezone=zones[0], quiet=quiet, available=available)
    at = after + timedelta(seconds=second)
    for _ in range(0, 2 * 1440, 7):
        assert schedule.is_open(at) == read_open(schedule, at), (at, schedule)
        assert schedule.is_quiet(at) == read_quiet(schedule, at), (at, schedule)
        at += 7 * MINUTE


@settings(max_examples=200)
@given(shared_windows())
def test_next_open_in_one_zone_matches_a_minute_scan_of_the_windows(
    case: tuple[list[Window], list[Window] | None, datetime, timedelta, tuple[str, ...]],
) -> None:
    quiet, available, after, horizon, zones = case
    schedule = Schedule(timezone=zones[0], quiet=quiet, available=available)
    expected = first_open_minute(schedule, after, horizon)
    assert schedule.next_open(after, horizon) == expected, schedule.model_dump(mode="json")
    # Asked again, and through a rebuilt equal schedule: the kept answer is the same.
    rebuilt = Schedule.model_validate(schedule.model_dump())
    assert rebuilt is not schedule
    assert rebuilt.next_open(after, horizon) == expected
    assert schedule.next_open(after, horizon) == expected


@settings(max_examples=200)
@given(shared_windows())
def test_next_open_all_over_several_zones_matches_a_minute_scan(
    case: tuple[list[Window], list[Window] | None, datetime, timedelta, tuple[str, ...]],
) -> None:
    quiet, available, after, horizon, zones = case
    schedules = tuple(Schedule(timezone=name, quiet=quiet, available=available) for name in zones)
    at, end = after, after + horizon
    expected = None
    while at <= end:
        if all(read_open(schedule, at) for schedule in schedules):
            expected = at
            break
        at += MINUTE
    assert next_open_all(schedules, after, horizon) == expected
    # A list of equal schedules, built again, shares the answer kept for the tuple.
    rebuilt = [Schedule.model_validate(schedule.model_dump()) for schedule in schedules]
    assert next_open_all(rebuilt, after, horizon) == expected
