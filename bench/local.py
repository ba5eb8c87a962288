"""No network at all: send_many to an Outbox, the strategy's decide and Schedule.next_open.

``send_many`` with an `Outbox` and the default `MemoryStore` is the
dispatcher's own cost per dispatch. ``decide`` and ``next_open`` reuse the
cases of ``bench/strategy.py``; "seen" means the same schedule is asked again
and again, as in a campaign.
"""

from __future__ import annotations

from common import Row, Settings, expect, per_second, progress, rate
from strategy import campaign, decide_cases, schedule_cases

CAMPAIGN = {"full": 3_000, "quick": 20}  # contacts given to send_many


def rows(settings: Settings) -> list[Row]:
    progress("send_many to an Outbox, decide, next_open")
    count = CAMPAIGN["quick" if settings.quick else "full"]
    campaign(min(count, 20), keep=True)  # warm
    made, seconds = campaign(count, keep=True)
    expect("send_many dispatches", made, count)
    decide = decide_cases()
    schedules = schedule_cases()
    goal = ">= 50,000/s"
    return [
        Row(
            "send_many, Outbox + MemoryStore, no network",
            per_second(made / seconds),
            "355-900/s",
            ">= 20,000/s",
        ),
        Row(
            "FallbackStrategy.decide, first choice open",
            per_second(rate(decide[0][1], settings, "cpu")),
            "36,000/s",
            goal,
        ),
        Row(
            "FallbackStrategy.decide, inside quiet hours",
            per_second(rate(decide[2][1], settings, "cpu")),
            "4,000-6,000/s",
            goal,
        ),
        Row(
            "Schedule.next_open, seen, nights",
            per_second(rate(schedules[0][1], settings, "cpu")),
            "740-4,500/s",
            goal,
        ),
        Row(
            "Schedule.next_open, seen, multi-window",
            per_second(rate(schedules[1][1], settings, "cpu")),
            "740-4,500/s",
            goal,
        ),
    ]
