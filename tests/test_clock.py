"""The clocks: a hand-moved one for tests and the real one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from multichannel import Clock, ManualClock, SystemClock, testing

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_manual_clock_reads_its_start() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.now() == START


def test_manual_clock_is_the_one_in_testing() -> None:
    assert testing.ManualClock is ManualClock


def test_fixture_clock_starts_on_monday_morning_in_detroit(clock: ManualClock) -> None:
    local = clock.now().astimezone(ZoneInfo("America/Detroit"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"ManualClock start 2026-03-02T14:00:00 has no time zone"):
        ManualClock(datetime(2026, 3, 2, 14, 0))


def test_advance_moves_forward_and_returns_the_new_instant() -> None:
    clock = ManualClock(START)
    assert clock.advance(timedelta(hours=1, seconds=30)) == START + timedelta(hours=1, seconds=30)
    assert clock.now() == START + timedelta(hours=1, seconds=30)
    assert clock.advance(timedelta(0)) == START + timedelta(hours=1, seconds=30)


def test_negative_advance_is_rejected_and_changes_nothing() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match=r"cannot advance a clock by a negative amount"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == START


def test_set_jumps_either_way() -> None:
    clock = ManualClock(START)
    later = START + timedelta(days=3)
    assert clock.set(later) == later
    assert clock.now() == later
    earlier = START - timedelta(days=1)
    assert clock.set(earlier) == earlier
    assert clock.now() == earlier


def test_set_to_a_naive_instant_is_rejected() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match=r"ManualClock.set .* has no time zone"):
        clock.set(datetime(2026, 3, 5))
    assert clock.now() == START


def test_sleep_advances_at_once() -> None:
    clock = ManualClock(START)
    clock.sleep(90.5)
    assert clock.now() == START + timedelta(seconds=90.5)
    clock.sleep(0)
    assert clock.now() == START + timedelta(seconds=90.5)


def test_sleeping_a_negative_time_does_not_move_the_clock() -> None:
    clock = ManualClock(START)
    clock.sleep(-5)
    assert clock.now() == START


async def test_asleep_advances_at_once() -> None:
    clock = ManualClock(START)
    await clock.asleep(60)
    assert clock.now() == START + timedelta(minutes=1)
    await clock.asleep(-1)
    assert clock.now() == START + timedelta(minutes=1)


def test_advances_from_many_threads_all_count() -> None:
    clock = ManualClock(START)

    def tick() -> None:
        for _ in range(500):
            clock.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == START + timedelta(seconds=2000)


def test_manual_clock_keeps_the_start_zone_and_has_a_readable_repr() -> None:
    detroit = ZoneInfo("America/Detroit")
    clock = ManualClock(START.astimezone(detroit))
    assert clock.now().tzinfo is detroit
    assert repr(clock) == "ManualClock('2026-03-02T09:00:00-05:00')"


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)
    assert repr(SystemClock()) == "SystemClock()"


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(START), Clock)
    assert not isinstance(object(), Clock)
