"""What the schedule caches promise: equal inputs share answers, and no kept answer goes stale."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from multichannel import (
    Contact,
    ContactPoint,
    FallbackStrategy,
    Message,
    Preferences,
    Schedule,
    Window,
    _weeks,
)
from multichannel.windows import next_open_all

MINUTE = timedelta(minutes=1)
# Monday 2 March 2026, 15:00 UTC: 10:00 in Detroit and New York.
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NIGHT = MONDAY + timedelta(hours=12)


def fresh_windows(seed: int) -> list[Window]:
    """Quiet windows no other test uses, so that the first call here has to work them out."""
    return [
        Window(start="21:00", end=f"07:{seed % 60:02d}"),
        Window(start="00:00", end="24:00", days="sun"),
    ]


def read_open(schedule: Schedule, at: datetime) -> bool:
    """Open or not, read from the windows themselves (the definition, uncached)."""
    reading = at.astimezone(schedule.tz)
    if any(window.contains(reading) for window in schedule.quiet):
        return False
    return schedule.available is None or any(
        window.contains(reading) for window in schedule.available
    )


def scan(schedule: Schedule, after: datetime, horizon: timedelta) -> datetime | None:
    at = after
    while at <= after + horizon:
        if read_open(schedule, at):
            return at
        at += MINUTE
    return None


@pytest.fixture
def worked_out(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many UTC weeks of open spans have been worked out since the test began."""
    count = 0
    compute = _weeks.open_spans

    def counting(keys: Any, block: int) -> Any:
        nonlocal count
        count += 1
        return compute(keys, block)

    monkeypatch.setattr(_weeks, "open_spans", counting)
    return lambda: count


def test_an_equal_but_distinct_schedule_reuses_what_the_first_worked_out(
    worked_out: Callable[[], int],
) -> None:
    first = Schedule(timezone="America/New_York", quiet=fresh_windows(11))
    again = Schedule(timezone="America/New_York", quiet=fresh_windows(11))
    assert again == first
    assert again is not first
    assert again.quiet[0] is not first.quiet[0]

    opens = first.next_open(NIGHT)
    assert opens == datetime(2026, 3, 3, 12, 11, tzinfo=UTC)
    assert worked_out() > 0
    before = worked_out()
    assert again.next_open(NIGHT) == opens
    assert again.next_open(NIGHT + 30 * MINUTE) == opens
    assert worked_out() == before


def test_a_list_of_equal_schedules_shares_the_answers_of_a_tuple(
    worked_out: Callable[[], int],
) -> None:
    zones = ("America/New_York", "Europe/London")
    shared = tuple(Schedule(timezone=name, quiet=fresh_windows(12)) for name in zones)
    answer = next_open_all(shared, NIGHT)
    before = worked_out()
    rebuilt = [Schedule(timezone=name, quiet=fresh_windows(12)) for name in zones]
    assert next_open_all(rebuilt, NIGHT) == answer
    assert worked_out() == before


def test_a_list_changed_between_calls_is_read_again() -> None:
    closed_now = Schedule(timezone="America/New_York", quiet=fresh_windows(13))
    always = Schedule(timezone="America/New_York")
    asked = [always]
    assert next_open_all(asked, NIGHT) is NIGHT
    asked.append(closed_now)
    assert next_open_all(asked, NIGHT) == closed_now.next_open(NIGHT) != NIGHT


def test_a_copy_with_other_windows_answers_by_its_own_windows() -> None:
    nights = Schedule(timezone="America/New_York", quiet=fresh_windows(14))
    assert not nights.is_open(NIGHT)
    assert nights.next_open(NIGHT) != NIGHT
    # model_copy(update=...) keeps the instance's dict: nothing stale may answer for it.
    never_quiet = nights.model_copy(update={"quiet": ()})
    assert never_quiet.is_open(NIGHT)
    assert never_quiet.next_open(NIGHT) is NIGHT
    assert not nights.is_open(NIGHT)


def test_answers_in_weeks_asked_out_of_order_match_the_windows() -> None:
    schedule = Schedule(
        timezone="Australia/Lord_Howe",
        quiet=fresh_windows(15),
        available=[Window(start="09:00", end="17:00", days="mon-fri")],
    )
    # Later weeks first, then earlier ones: each week is kept on its own.
    starts = [
        MONDAY + timedelta(days=days, hours=hours) for days in (60, 3, 214, 0) for hours in (0, 13)
    ]
    for after in starts:
        assert schedule.next_open(after, timedelta(days=4)) == scan(
            schedule, after, timedelta(days=4)
        )


@pytest.mark.parametrize(
    "after",
    [
        datetime(9999, 12, 20, 22, 0, tzinfo=UTC),
        datetime(9999, 10, 31, 22, 0, tzinfo=UTC),
        datetime(1, 1, 2, 22, 0, tzinfo=UTC),
        datetime(1, 2, 1, 22, 0, tzinfo=UTC),
    ],
)
def test_next_open_near_the_ends_of_the_calendar(after: datetime) -> None:
    schedule = Schedule(timezone="UTC", quiet=[Window(start="21:00", end="08:00")])
    horizon = timedelta(hours=20)
    assert schedule.next_open(after, horizon) == scan(schedule, after, horizon)


def test_a_schedule_that_never_opens_answers_none_without_walking_the_horizon() -> None:
    closed = Schedule(timezone="America/New_York", available=[])
    assert closed.next_open(MONDAY, timedelta(days=3650)) is None
    assert next_open_all([closed, Schedule(timezone="UTC")], MONDAY, timedelta(days=3650)) is None


# --- the strategy: schedules built once per distinct contact shape --------------------------


def person(number: int, **preferences: Any) -> Contact:
    return Contact(
        id=f"person-{number}",
        timezone="America/New_York",
        points=[
            ContactPoint(channel="sms", address=f"+1212555{number:04d}"),
            ContactPoint(channel="email", address=f"person{number}@example.com"),
        ],
        preferences=Preferences(
            channels=["sms", "email"],
            quiet_hours=[Window(start="21:00", end="08:00")],
            **preferences,
        ),
    )


def test_contacts_with_equal_preferences_share_their_schedules(
    worked_out: Callable[[], int],
) -> None:
    strategy = FallbackStrategy()
    message = Message(body="Your order has shipped.")
    first = person(1, avoid_days="sat")
    wait = strategy.decide(first, message, now=NIGHT)
    assert wait.kind == "wait"
    before = worked_out()
    second = person(2, avoid_days="sat")
    again = strategy.decide(second, message, now=NIGHT)
    assert worked_out() == before
    assert again.until == wait.until
    assert again.reason == wait.reason.replace(first.points[0].address, second.points[0].address)
    assert again.notes == wait.notes


def test_schedules_read_the_quiet_windows_the_preferences_define() -> None:
    strategy = FallbackStrategy()
    contact = person(3, avoid_days=["sun", "sat"])
    point = contact.points[0]
    (schedule,) = strategy.schedules(contact, point, Message(body="hi"))
    assert schedule == Schedule(
        timezone="America/New_York",
        quiet=contact.preferences.quiet_windows,
        available=point.available,
    )
    assert strategy.schedules(contact, point, Message(body="hi")) == (schedule,)
    (urgent,) = strategy.schedules(contact, point, Message(body="hi", urgent=True))
    assert urgent == Schedule(timezone="America/New_York", available=point.available)


def test_zones_inferred_from_phone_numbers_are_the_contacts_own() -> None:
    strategy = FallbackStrategy()
    traveller = Contact(
        id="traveller",
        points=[
            ContactPoint(channel="sms", address="+12125550123"),
            ContactPoint(channel="sms", address="+447911123456"),
        ],
    )
    zones, note = strategy.zones(traveller)
    assert zones == traveller.phone_zones()
    assert "inferred from phone numbers" in note
    twin = Contact.model_validate(traveller.model_dump())
    assert strategy.zones(twin) == (zones, note)
