"""Window parsing and Schedule arithmetic, by worked examples around real zone rules."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from multichannel import Schedule, Window

DETROIT = ZoneInfo("America/Detroit")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
APIA = ZoneInfo("Pacific/Apia")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


# --- Window: parsing -------------------------------------------------------------------------


def test_window_reads_hh_mm_and_normalises_single_digit_hours() -> None:
    window = Window(start="7:05", end="18:30")
    assert (window.start, window.end) == ("07:05", "18:30")
    assert (window.start_minute, window.end_minute) == (7 * 60 + 5, 18 * 60 + 30)
    assert window.days is None
    assert not window.crosses_midnight


def test_window_accepts_datetime_time() -> None:
    window = Window(start=time(21, 0), end=time(8, 15))
    assert (window.start, window.end) == ("21:00", "08:15")
    assert window.crosses_midnight


def test_window_end_may_be_24_00() -> None:
    window = Window(start="18:00", end="24:00")
    assert window.end_minute == 24 * 60
    assert not window.crosses_midnight
    assert window.contains(datetime(2026, 3, 2, 23, 59))
    assert not window.contains(datetime(2026, 3, 3, 0, 0))


def test_whole_day_window_covers_every_minute_of_every_day() -> None:
    window = Window(start="00:00", end="24:00")
    start = datetime(2026, 3, 2)
    assert all(window.contains(start + timedelta(minutes=m)) for m in range(0, 7 * 1440, 7))


def test_start_equal_to_end_is_rejected_with_a_hint() -> None:
    with pytest.raises(
        ValidationError, match=r"10:00 to 10:00 is empty.*start='00:00', end='24:00'"
    ):
        Window(start="10:00", end="10:00")
    with pytest.raises(ValidationError, match="00:00 to 00:00"):
        Window(start="00:00", end="00:00")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("9am", "17:00", r"'9am' is not a time of day; write it as HH:MM"),
        ("25:00", "08:00", r"'25:00' is not a time of day between 00:00 and 23:59"),
        ("24:00", "08:00", r"'24:00' is not a time of day between 00:00 and 23:59"),
        ("10:60", "11:00", r"'10:60' is not a time of day"),
        ("10:00", "24:01", r"'24:01' is not a time of day between 00:00 and 24:00"),
        ("10:00", "1000", r"'1000' is not a time of day; write it as HH:MM"),
        ("", "10:00", r"'' is not a time of day"),
        ("10:0", "11:00", r"'10:0' is not a time of day"),
    ],
)
def test_bad_clock_strings_are_rejected_naming_the_value(
    start: str, end: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Window(start=start, end=end)


def test_time_with_seconds_is_rejected() -> None:
    with pytest.raises(ValidationError, match="21:00:30 has seconds; windows are whole minutes"):
        Window(start=time(21, 0, 30), end="08:00")


def test_a_clock_time_must_be_text_or_a_time() -> None:
    with pytest.raises(ValidationError, match="start") as caught:
        Window(start=2100, end="08:00")
    assert caught.value.errors()[0]["loc"] == ("start",)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="until"):
        Window(start="10:00", end="11:00", until="12:00")  # type: ignore[call-arg]


# --- Window: days ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (["mon", "tue"], ("mon", "tue")),
        (["tue", "mon", "tue"], ("mon", "tue")),
        ("mon-fri", ("mon", "tue", "wed", "thu", "fri")),
        ("sat,sun", ("sat", "sun")),
        ("sun, sat", ("sat", "sun")),
        ("fri-mon", ("mon", "fri", "sat", "sun")),
        ("sun-sun", ("sun",)),
        (["Monday", "WEDNESDAY", "friday"], ("mon", "wed", "fri")),
        ("Saturday-Sunday", ("sat", "sun")),
        ("tues,thurs", ("tue", "thu")),
        ("mon - wed", ("mon", "tue", "wed")),
        (("sat",), ("sat",)),
    ],
)
def test_days_are_read_into_week_order(days: str | list[str], expected: tuple[str, ...]) -> None:
    assert Window(start="09:00", end="17:00", days=days).days == expected


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("funday", r"unknown day 'funday'; use one of mon, tue, wed, thu, fri, sat, sun"),
        ("mon-xyz", r"unknown day 'xyz'"),
        ("mon-", r"unknown day ''"),
        ([], r"name at least one day, for example 'mon-fri'"),
        ("", r"name at least one day"),
        (["mon", 3], r"a day must be a name such as 'mon', not 3"),
        (5, r"days must be names such as 'mon-fri' or \['sat', 'sun'\], not 5"),
    ],
)
def test_bad_days_are_rejected_naming_the_value(days: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        Window(start="09:00", end="17:00", days=days)
    assert caught.value.errors()[0]["loc"] == ("days",)


# --- Window: contains ------------------------------------------------------------------------


def test_span_includes_start_and_excludes_end() -> None:
    window = Window(start="09:00", end="17:00")
    monday = datetime(2026, 3, 2)
    assert not window.contains(monday.replace(hour=8, minute=59))
    assert window.contains(monday.replace(hour=9))
    assert window.contains(monday.replace(hour=16, minute=59, second=59))
    assert not window.contains(monday.replace(hour=17))


def test_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = Window(start="21:00", end="08:00", days="fri")
    friday, saturday, sunday = (datetime(2026, 3, d) for d in (6, 7, 8))
    assert friday.weekday() == 4
    assert not friday_night.contains(friday.replace(hour=20, minute=59))
    assert friday_night.contains(friday.replace(hour=21))
    assert friday_night.contains(saturday.replace(hour=7, minute=59))
    assert not friday_night.contains(saturday.replace(hour=8))
    # Saturday night is not a Friday span, and neither is the Sunday morning after it.
    assert not friday_night.contains(saturday.replace(hour=22))
    assert not friday_night.contains(sunday.replace(hour=7, minute=59))
    # Thursday's span would cover Friday morning; Thursday is not chosen.
    assert not friday_night.contains(friday.replace(hour=7))


def test_sunday_span_wraps_into_monday() -> None:
    sunday_night = Window(start="22:00", end="06:00", days="sun")
    assert sunday_night.contains(datetime(2026, 3, 9, 5, 59))  # Monday
    assert not sunday_night.contains(datetime(2026, 3, 10, 5, 59))  # Tuesday


def test_window_ignores_the_tzinfo_of_a_local_reading() -> None:
    window = Window(start="09:00", end="10:00")
    assert window.contains(datetime(2026, 3, 2, 9, 30, tzinfo=DETROIT))
    assert window.contains(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))


def test_describe_and_boundaries() -> None:
    assert Window(start="21:00", end="08:00", days="sat,sun").describe() == (
        "21:00-08:00 on sat,sun"
    )
    assert Window(start="00:00", end="24:00").describe() == "00:00-24:00 every day"
    assert Window(start="00:00", end="24:00").boundaries() == {0}
    assert Window(start="21:00", end="08:00").boundaries() == {21 * 60, 8 * 60}


# --- Window: serialisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [
        Window(start="21:00", end="08:00"),
        Window(start="00:00", end="24:00", days="sat,sun"),
        Window(start=time(8), end="17:00", days="fri-mon"),
    ],
)
def test_window_json_round_trip(window: Window) -> None:
    dumped = window.model_dump(mode="json")
    assert isinstance(dumped["start"], str)
    assert dumped["days"] is None or isinstance(dumped["days"], list)
    again = Window.model_validate(dumped)
    assert again == window
    assert Window.model_validate_json(window.model_dump_json()) == window


def test_windows_are_frozen_and_hashable() -> None:
    window = Window(start="21:00", end="08:00")
    assert window.start_minute == 1260  # fills a cached property before comparing
    assert window == Window(start="21:00", end="08:00")
    assert len({window, Window(start="21:00", end="08:00")}) == 1
    with pytest.raises(ValidationError, match="frozen"):
        window.start = "22:00"  # type: ignore[misc]


# --- Schedule: basics ------------------------------------------------------------------------


def test_schedule_rejects_an_unknown_zone_helpfully() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown time zone 'Mars/Olympus'; use an IANA name"
    ):
        Schedule(timezone="Mars/Olympus")


def test_schedule_rejects_a_zone_folder_name() -> None:
    with pytest.raises(ValidationError, match=r"unknown time zone 'America'"):
        Schedule(timezone="America")


@pytest.mark.parametrize("method", ["is_open", "is_quiet", "next_open"])
def test_naive_instants_are_rejected(method: str) -> None:
    schedule = Schedule(timezone="America/Detroit")
    with pytest.raises(ValueError, match=r"2026-03-02T09:00:00 has no time zone; give an aware"):
        getattr(schedule, method)(datetime(2026, 3, 2, 9, 0))


def test_negative_horizon_is_rejected() -> None:
    schedule = Schedule(timezone="UTC")
    with pytest.raises(ValueError, match="horizon cannot be negative"):
        schedule.next_open(utc(2026, 3, 2), horizon=timedelta(minutes=-1))


def test_no_windows_is_always_open() -> None:
    schedule = Schedule(timezone="Asia/Kathmandu")
    at = utc(2026, 3, 2, 3, 17)
    assert schedule.is_open(at)
    assert not schedule.is_quiet(at)
    assert schedule.next_open(at) is at


def test_quiet_nights_read_in_the_zone() -> None:
    schedule = Schedule(timezone="America/Detroit", quiet=[Window(start="21:00", end="08:00")])
    # Monday 2 March 2026, EST (UTC-5).
    assert schedule.is_quiet(utc(2026, 3, 2, 12, 59))
    assert schedule.is_open(utc(2026, 3, 2, 13, 0))
    assert schedule.is_open(utc(2026, 3, 3, 1, 59))
    assert schedule.is_quiet(utc(2026, 3, 3, 2, 0))
    assert schedule.next_open(utc(2026, 3, 3, 2, 0)) == utc(2026, 3, 3, 13, 0)


def test_available_windows_limit_opening() -> None:
    office = Schedule(
        timezone="America/Detroit",
        available=[Window(start="08:00", end="17:00", days="mon-fri")],
    )
    friday_evening = utc(2026, 3, 6, 22, 0)  # 17:00 EST on Friday
    assert not office.is_open(friday_evening)
    assert not office.is_quiet(friday_evening)
    # The weekend is closed; Monday 9 March is after the spring change, so EDT (UTC-4).
    assert office.next_open(friday_evening) == utc(2026, 3, 9, 12, 0)


def test_quiet_beats_available() -> None:
    schedule = Schedule(
        timezone="UTC",
        quiet=[Window(start="12:00", end="13:00")],
        available=[Window(start="09:00", end="17:00")],
    )
    assert not schedule.is_open(utc(2026, 3, 2, 12, 30))
    assert schedule.next_open(utc(2026, 3, 2, 12, 30)) == utc(2026, 3, 2, 13, 0)


def test_empty_available_means_never_open() -> None:
    schedule = Schedule(timezone="UTC", available=[])
    assert not schedule.is_open(utc(2026, 3, 2, 12))
    assert schedule.next_open(utc(2026, 3, 2, 12)) is None


def test_horizon_is_inclusive() -> None:
    schedule = Schedule(timezone="UTC", quiet=[Window(start="21:00", end="08:00")])
    after = utc(2026, 3, 2, 7, 0)
    assert schedule.next_open(after, horizon=timedelta(hours=1)) == utc(2026, 3, 2, 8, 0)
    assert schedule.next_open(after, horizon=timedelta(minutes=59)) is None
    assert schedule.next_open(after, horizon=timedelta(0)) is None


def test_default_horizon_is_fourteen_days() -> None:
    fortnight_off = Window(start="00:00", end="24:00", days="mon-sat")
    schedule = Schedule(timezone="UTC", quiet=[fortnight_off])
    monday = utc(2026, 3, 2)
    assert schedule.next_open(monday) == utc(2026, 3, 8)
    sundays_too = Schedule(timezone="UTC", quiet=[Window(start="00:00", end="24:00")])
    assert sundays_too.next_open(monday) is None


def test_open_after_is_returned_as_is() -> None:
    schedule = Schedule(timezone="UTC", quiet=[Window(start="21:00", end="08:00")])
    after = datetime(2026, 3, 2, 9, 30, 15, 123, tzinfo=DETROIT)
    assert schedule.next_open(after) is after


def test_result_keeps_the_tzinfo_of_after() -> None:
    schedule = Schedule(timezone="Asia/Tokyo", quiet=[Window(start="21:00", end="08:00")])
    after = local(DETROIT, 2026, 3, 2, 9, 0)  # 23:00 in Tokyo
    found = schedule.next_open(after)
    assert found is not None
    assert found.tzinfo is DETROIT
    assert found == local(DETROIT, 2026, 3, 2, 18, 0)  # 08:00 Tuesday in Tokyo


def test_schedule_json_round_trip() -> None:
    schedule = Schedule(
        timezone="Europe/London",
        quiet=[Window(start="22:00", end="07:00", days="sun-thu")],
        available=[Window(start="00:00", end="24:00")],
    )
    again = Schedule.model_validate(schedule.model_dump(mode="json"))
    assert again == schedule
    assert again.tz == ZoneInfo("Europe/London")


# --- Schedule: zone rules --------------------------------------------------------------------


def test_us_spring_forward_gap() -> None:
    # 2026-03-08 in Detroit: 02:00 EST (07:00 UTC) becomes 03:00 EDT.
    late_night = Schedule(timezone="America/Detroit", quiet=[Window(start="01:00", end="02:30")])
    assert late_night.is_quiet(utc(2026, 3, 8, 6, 59))
    assert late_night.is_open(utc(2026, 3, 8, 7, 0))
    assert late_night.next_open(utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 8, 7, 0)
    # Readings that never happen are never quiet.
    lost_hour = Schedule(timezone="America/Detroit", quiet=[Window(start="02:00", end="03:00")])
    day = utc(2026, 3, 8, 0, 0)
    assert all(lost_hour.is_open(day + timedelta(minutes=m)) for m in range(0, 1440, 5))
    # Nor ever available: the next 02:00 is on Monday, in EDT.
    only_lost = Schedule(timezone="America/Detroit", available=[Window(start="02:00", end="03:00")])
    assert only_lost.next_open(day, horizon=timedelta(days=1)) is None
    assert only_lost.next_open(day, horizon=timedelta(days=2)) == utc(2026, 3, 9, 6, 0)


def test_nights_end_an_hour_earlier_in_utc_after_spring_forward() -> None:
    nights = Schedule(timezone="America/Detroit", quiet=[Window(start="21:00", end="08:00")])
    assert nights.next_open(utc(2026, 3, 7, 5, 0)) == utc(2026, 3, 7, 13, 0)
    assert nights.next_open(utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 12, 0)


def test_us_fall_back_repeated_hour_is_quiet_in_both_readings() -> None:
    # 2026-11-01 in Detroit: 02:00 EDT (06:00 UTC) becomes 01:00 EST.
    schedule = Schedule(timezone="America/Detroit", quiet=[Window(start="01:00", end="01:30")])
    assert schedule.is_quiet(local(DETROIT, 2026, 11, 1, 1, 10, fold=0))
    assert schedule.is_quiet(local(DETROIT, 2026, 11, 1, 1, 10, fold=1))
    assert schedule.is_quiet(utc(2026, 11, 1, 5, 10))
    assert schedule.is_open(utc(2026, 11, 1, 5, 30))
    assert schedule.is_quiet(utc(2026, 11, 1, 6, 0))
    assert schedule.is_open(utc(2026, 11, 1, 6, 30))
    assert schedule.next_open(utc(2026, 11, 1, 5, 0)) == utc(2026, 11, 1, 5, 30)
    assert schedule.next_open(utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 1, 6, 30)
    found = schedule.next_open(local(DETROIT, 2026, 11, 1, 1, 0, fold=1))
    assert found is not None
    assert found.astimezone(UTC) == utc(2026, 11, 1, 6, 30)
    assert found.tzinfo is DETROIT


def test_lord_howe_half_hour_spring_forward() -> None:
    # 2026-10-04 02:00 LHST (+10:30, 15:30 UTC on the 3rd) becomes 02:30 LHDT (+11).
    schedule = Schedule(timezone="Australia/Lord_Howe", quiet=[Window(start="01:00", end="02:15")])
    assert schedule.is_quiet(utc(2026, 10, 3, 15, 29))
    assert schedule.is_open(utc(2026, 10, 3, 15, 30))
    assert schedule.next_open(utc(2026, 10, 3, 14, 45)) == utc(2026, 10, 3, 15, 30)


def test_lord_howe_half_hour_fall_back() -> None:
    # 2026-04-05 02:00 LHDT (+11, 15:00 UTC on the 4th) becomes 01:30 LHST (+10:30).
    schedule = Schedule(timezone="Australia/Lord_Howe", quiet=[Window(start="01:30", end="01:45")])
    assert schedule.next_open(utc(2026, 4, 4, 14, 30)) == utc(2026, 4, 4, 14, 45)
    assert schedule.is_open(utc(2026, 4, 4, 14, 50))
    assert schedule.is_quiet(utc(2026, 4, 4, 15, 0))
    assert schedule.next_open(utc(2026, 4, 4, 15, 0)) == utc(2026, 4, 4, 15, 15)
    assert schedule.is_quiet(local(LORD_HOWE, 2026, 4, 5, 1, 40, fold=1))


def test_kathmandu_quarter_hour_offset() -> None:
    schedule = Schedule(timezone="Asia/Kathmandu", quiet=[Window(start="22:00", end="07:00")])
    # 00:00 UTC is 05:45 in Kathmandu; 07:00 there is 01:15 UTC.
    assert schedule.is_quiet(utc(2026, 6, 1, 1, 14))
    assert schedule.is_open(utc(2026, 6, 1, 1, 15))
    assert schedule.next_open(utc(2026, 6, 1, 0, 0)) == utc(2026, 6, 1, 1, 15)
    assert schedule.next_open(utc(2026, 6, 1, 16, 20)) == utc(2026, 6, 2, 1, 15)


def test_apia_skipped_friday_30_december_2011() -> None:
    # Apia went from Thursday 29 December 23:59 (UTC-10) straight to Saturday 31 (UTC+14).
    fridays = Schedule(
        timezone="Pacific/Apia", available=[Window(start="00:00", end="24:00", days="fri")]
    )
    thursday = local(APIA, 2011, 12, 29, 2, 0)
    found = fridays.next_open(thursday)
    assert found is not None
    assert found == local(APIA, 2012, 1, 6, 0, 0)
    assert found.astimezone(UTC) == utc(2012, 1, 5, 10, 0)
    thursday_evenings = Schedule(
        timezone="Pacific/Apia", quiet=[Window(start="20:00", end="24:00", days="thu")]
    )
    assert thursday_evenings.is_quiet(utc(2011, 12, 30, 9, 59))
    assert thursday_evenings.next_open(utc(2011, 12, 30, 7, 0)) == utc(2011, 12, 30, 10, 0)


def test_friday_nights_cover_saturday_morning_only() -> None:
    schedule = Schedule(
        timezone="America/Detroit", quiet=[Window(start="21:00", end="08:00", days="fri")]
    )
    assert schedule.is_quiet(local(DETROIT, 2026, 3, 7, 7, 59))
    assert schedule.is_open(local(DETROIT, 2026, 3, 8, 7, 59))
    assert schedule.next_open(local(DETROIT, 2026, 3, 6, 21, 0)) == local(DETROIT, 2026, 3, 7, 8)


def test_several_quiet_windows_chain() -> None:
    schedule = Schedule(
        timezone="UTC",
        quiet=[
            Window(start="22:00", end="07:00"),
            Window(start="07:00", end="09:00", days="sat,sun"),
            Window(start="00:00", end="24:00", days="sun"),
        ],
    )
    saturday_night = utc(2026, 3, 7, 23, 0)
    assert schedule.next_open(saturday_night) == utc(2026, 3, 9, 7, 0)
    assert schedule.next_open(utc(2026, 3, 7, 1, 0)) == utc(2026, 3, 7, 9, 0)
