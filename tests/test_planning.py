"""plan_many: one plan per contact, in input order, from any iterable, in one process or several.

The pool's worth is measured by a benchmark, never here: these tests hold what
it must keep: the order, the same plans as one process makes, and a generator
read no further ahead than a few chunks.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multichannel import Contact, FallbackStrategy, Message
from multichannel.planning import CHUNK_SIZE, Plan, map_chunks, plan_many

# Monday 2 March 2026 14:00 UTC: 09:00 in Detroit, 23:00 in Tokyo.
AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
MESSAGE = Message(body="Your appointment is on Monday at 10:00.")
ZONES = ("America/Detroit", "Asia/Tokyo", "Australia/Sydney", None)


def person(number: int) -> Contact:
    """A contact whose plan depends on its number: zone, quiet hours and channels vary."""
    return Contact.model_validate(
        {
            "id": f"p{number}",
            "timezone": ZONES[number % len(ZONES)],
            "points": [
                {"channel": "email", "address": f"p{number}@example.com"},
                {"channel": "sms", "address": f"+1734555{number % 10_000:04}"},
            ],
            "preferences": {
                "channels": ["sms", "email"] if number % 3 else ["email", "sms"],
                "quiet_hours": [{"start": "22:00", "end": "07:00"}] if number % 2 else [],
            },
        }
    )


class Counted:
    """A generator of contacts that counts how many it has handed out."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.taken = 0

    def __iter__(self) -> Iterator[Contact]:
        for number in range(self.total):
            self.taken += 1
            yield person(number)


def test_a_plan_says_what_the_strategy_would_do_first() -> None:
    kenji = Contact.model_validate(
        {
            "id": "kenji",
            "timezone": "Asia/Tokyo",
            "points": [{"channel": "email", "address": "kenji@example.jp"}],
            "preferences": {"quiet_hours": [{"start": "22:00", "end": "07:00"}]},
        }
    )

    [plan] = plan_many([kenji], MESSAGE, at=AT)

    assert plan.contact_id == "kenji"
    assert plan.status == "scheduled"
    assert (plan.channel, plan.address) == ("email", "kenji@example.jp")
    assert plan.at == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
    assert plan.zone == "Asia/Tokyo"
    assert plan.reasons[0] == "time zone Asia/Tokyo (the contact's own)"
    assert plan.as_json() == {
        "contact_id": "kenji",
        "status": "scheduled",
        "channel": "email",
        "address": "kenji@example.jp",
        "at": "2026-03-02T22:00:00+00:00",
        "local_at": "2026-03-03T07:00:00+09:00",
        "reasons": list(plan.reasons),
    }


def test_a_contact_with_nothing_to_send_on_has_no_point_and_no_instant() -> None:
    nobody = Contact.model_validate(
        {"id": "nobody", "points": [{"channel": "fax", "address": "+17345550199", "opted_out": 1}]}
    )

    [plan] = plan_many([nobody], MESSAGE, at=AT)

    assert (plan.status, plan.channel, plan.address, plan.at) == ("suppressed", None, None, None)
    assert plan.as_json()["local_at"] is None


def test_the_strategy_given_is_the_one_used() -> None:
    [plan] = plan_many(
        [person(1)], MESSAGE, at=AT, strategy=FallbackStrategy(depth=1, default_timezone="UTC")
    )

    assert plan == Plan.of(person(1), MESSAGE, at=AT, strategy=FallbackStrategy(depth=1))


def test_plans_come_in_input_order_one_per_contact() -> None:
    contacts = [person(number) for number in range(40)]

    plans = list(plan_many(iter(contacts), MESSAGE, at=AT, chunk_size=7))

    assert [plan.contact_id for plan in plans] == [contact.id for contact in contacts]
    assert plans == [Plan.of(contact, MESSAGE, at=AT) for contact in contacts]
    assert {plan.status for plan in plans} >= {"send_now", "scheduled"}


def test_worker_processes_make_the_same_plans_in_the_same_order() -> None:
    one = list(plan_many(Counted(50), MESSAGE, at=AT, jobs=1, chunk_size=4))
    two = list(plan_many(Counted(50), MESSAGE, at=AT, jobs=2, chunk_size=4))

    assert two == one
    assert [plan.contact_id for plan in two] == [f"p{number}" for number in range(50)]


def test_a_generator_is_read_a_chunk_at_a_time_in_one_process() -> None:
    contacts = Counted(10_000)

    plans = plan_many(contacts, MESSAGE, at=AT, chunk_size=5)
    assert contacts.taken == 0  # nothing is read before the first plan is asked for
    first = next(plans)

    assert first.contact_id == "p0"
    assert contacts.taken == 5
    for _ in range(5):
        next(plans)
    assert contacts.taken == 10


def test_worker_processes_read_a_generator_only_a_few_chunks_ahead() -> None:
    contacts = Counted(10_000)

    plans = plan_many(contacts, MESSAGE, at=AT, jobs=2, chunk_size=3)
    taken = [next(plans).contact_id for _ in range(4)]
    read_then = contacts.taken
    plans.close()  # stops the workers; nothing more is read

    assert taken == ["p0", "p1", "p2", "p3"]
    # The first chunk, whose plans were all handed out, and at most 2 * jobs + 1 more.
    assert read_then <= 3 * (1 + 2 * 2 + 1)
    assert contacts.taken == read_then


def test_a_short_input_is_planned_without_starting_workers() -> None:
    contacts = [person(number) for number in range(30)]

    # 3 chunks: too little work for workers to be worth starting.
    plans = list(plan_many(contacts, MESSAGE, at=AT, jobs=8, chunk_size=10))

    assert [plan.contact_id for plan in plans] == [f"p{number}" for number in range(30)]


def test_nothing_in_is_nothing_out() -> None:
    assert list(plan_many([], MESSAGE, at=AT, jobs=2)) == []


@given(
    length=st.integers(min_value=0, max_value=60),
    chunk_size=st.integers(min_value=1, max_value=70),
)
def test_every_item_comes_out_once_in_input_order_whatever_the_chunk_size(
    length: int, chunk_size: int
) -> None:
    items = list(range(length))
    chunks: list[int] = []

    def work(chunk: list[int]) -> list[int]:
        chunks.append(len(chunk))
        return [item * 2 for item in chunk]

    assert list(map_chunks(work, iter(items), chunk_size=chunk_size)) == [i * 2 for i in items]
    assert all(size <= chunk_size for size in chunks)
    assert sum(chunks) == length


@pytest.mark.parametrize("chunk_size", [1, 6, CHUNK_SIZE])
def test_worker_processes_keep_the_input_order_whatever_the_chunk_size(chunk_size: int) -> None:
    items = [f"item {number}" for number in range(97)]

    # `list` is the work: each chunk comes back as it went, so only the order is at stake.
    assert list(map_chunks(list, iter(items), jobs=2, chunk_size=chunk_size)) == items


def test_what_the_work_raises_reaches_the_caller_at_its_chunk() -> None:
    def work(chunk: list[int]) -> list[float]:
        return [1 / item for item in chunk]

    results = map_chunks(work, [1, 2, 0, 4], chunk_size=2)

    assert [next(results), next(results)] == [1.0, 0.5]
    with pytest.raises(ZeroDivisionError):
        next(results)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"jobs": 0}, "jobs must be at least 1; got 0"),
        ({"chunk_size": 0}, "chunk_size must be at least 1; got 0"),
        ({"at": datetime(2026, 3, 2, 14, 0)}, "at 2026-03-02T14:00:00 has no time zone"),
    ],
)
def test_bad_arguments_are_refused_at_the_call(options: dict[str, object], expected: str) -> None:
    arguments: dict[str, object] = {"at": AT, **options}

    with pytest.raises(ValueError, match=expected):
        plan_many(Counted(1), MESSAGE, **arguments)  # type: ignore[arg-type]


def test_a_plan_pickles_and_is_a_value() -> None:
    plan = Plan.of(person(2), MESSAGE, at=AT)

    assert pickle.loads(pickle.dumps(plan)) == plan
    with pytest.raises(AttributeError):
        plan.status = "expired"  # type: ignore[misc]


def test_an_instant_plans_the_same_whatever_zone_it_is_written_in() -> None:
    [in_detroit] = plan_many([person(5)], MESSAGE, at=AT.astimezone(ZoneInfo("America/Detroit")))
    [in_utc] = plan_many([person(5)], MESSAGE, at=AT)

    # The reasons write instants as they were given; the decision is the same.
    assert in_detroit.at == in_utc.at
    assert {**in_detroit.as_json(), "reasons": []} == {**in_utc.as_json(), "reasons": []}
