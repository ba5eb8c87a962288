"""Transient errors: bounded, jittered retries paced by the clock, and Retry-After honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from multichannel import (
    Contact,
    ContactPoint,
    Content,
    Dispatcher,
    FallbackStrategy,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    Preferences,
    Receipt,
    RetryPolicy,
    SendContext,
    Status,
    TransientError,
)

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SMS = ContactPoint(channel="sms", address="+17345550100")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=[SMS, EMAIL],
    preferences=Preferences(channels=["sms", "email"]),
)
PING = Message(body="Ping")


class TryRecorder(Outbox):
    """An outbox that also notes the try number and the clock reading of every call."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.calls: list[tuple[int, datetime]] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls.append((ctx.try_number, self.clock.now()))
        return super().send(point, content, ctx)


def elapsed(clock: ManualClock) -> timedelta:
    return clock.now() - START


def test_a_transient_error_is_retried_and_the_clock_carries_the_backoff(
    clock: ManualClock,
) -> None:
    outbox = TryRecorder(clock)
    outbox.reject(SMS.address, TransientError("rate limited"), times=2)

    dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, PING)

    [attempt] = dispatch.attempts
    assert attempt.outcome is Outcome.ACCEPTED
    assert attempt.tries == 3
    assert [number for number, _ in outbox.calls] == [1, 2, 3]
    # Waits of 1 s then 2 s, each with up to 1 s of jitter: only the clock moved.
    assert timedelta(seconds=3) <= elapsed(clock) <= timedelta(seconds=5)
    first_wait = outbox.calls[1][1] - outbox.calls[0][1]
    second_wait = outbox.calls[2][1] - outbox.calls[1][1]
    assert timedelta(seconds=1) <= first_wait <= timedelta(seconds=2)
    assert timedelta(seconds=2) <= second_wait <= timedelta(seconds=3)


def test_exhausted_retries_move_on_to_the_next_candidate(clock: ManualClock) -> None:
    outbox = Outbox()
    outbox.reject(SMS.address, TransientError("timeout"))

    dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, PING)

    first, second = dispatch.attempts
    assert (first.outcome, first.tries) == (Outcome.FAILED, 3)
    assert first.error == "TransientError: timeout"
    assert (second.channel, second.outcome) == ("email", Outcome.ACCEPTED)
    assert dispatch.status is Status.ACCEPTED
    assert any("still failing after 3 tries" in decision.reason for decision in dispatch.decisions)


def test_a_retry_after_hint_sets_the_wait(clock: ManualClock) -> None:
    outbox = TryRecorder(clock)
    outbox.reject(SMS.address, TransientError("slow down", retry_after=7), times=2)

    dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, PING)

    assert dispatch.attempts[0].tries == 3
    assert elapsed(clock) == timedelta(seconds=14)
    assert [at - START for _, at in outbox.calls] == [
        timedelta(0),
        timedelta(seconds=7),
        timedelta(seconds=14),
    ]


def test_a_retry_after_longer_than_the_maximum_ends_the_tries(clock: ManualClock) -> None:
    outbox = Outbox()
    outbox.reject(SMS.address, TransientError("come back later", retry_after=timedelta(minutes=5)))

    dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, PING)

    first, second = dispatch.attempts
    assert (first.outcome, first.tries) == (Outcome.FAILED, 1)
    assert second.outcome is Outcome.ACCEPTED
    assert clock.now() == START


def test_the_retry_policy_bounds_the_tries_and_the_waits(clock: ManualClock) -> None:
    policy = RetryPolicy(
        tries=5,
        initial=timedelta(seconds=2),
        maximum=timedelta(seconds=5),
        jitter=timedelta(0),
    )
    outbox = Outbox()
    outbox.reject(SMS.address, TransientError("busy"), times=4)
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, strategy=FallbackStrategy(retry=policy))

    dispatch = dispatcher.send(ALICE, PING)

    assert dispatch.attempts[0].tries == 5
    assert dispatch.attempts[0].outcome is Outcome.ACCEPTED
    # 2 + 4 + 5 (capped) + 5 (capped), no jitter.
    assert elapsed(clock) == timedelta(seconds=16)


def test_one_try_means_no_retry(clock: ManualClock) -> None:
    outbox = Outbox()
    outbox.reject(SMS.address, TransientError("busy"), times=1)
    strategy = FallbackStrategy(retry=RetryPolicy(tries=1))

    dispatch = Dispatcher(adapters=[outbox], clock=clock, strategy=strategy).send(ALICE, PING)

    assert [attempt.tries for attempt in dispatch.attempts] == [1, 1]
    assert dispatch.attempts[1].channel == "email"


async def test_async_retries_honour_retry_after_through_the_clock(clock: ManualClock) -> None:
    outbox = TryRecorder(clock)
    outbox.reject(SMS.address, TransientError("slow down", retry_after=3), times=2)

    dispatch = await Dispatcher(adapters=[outbox], clock=clock).asend(ALICE, PING)

    assert dispatch.attempts[0].tries == 3
    assert dispatch.status is Status.ACCEPTED
    assert elapsed(clock) == timedelta(seconds=6)


async def test_async_exhausted_retries_move_on(clock: ManualClock) -> None:
    outbox = Outbox()
    outbox.reject(SMS.address, TransientError("timeout"))

    dispatch = await Dispatcher(adapters=[outbox], clock=clock).asend(ALICE, PING)

    assert [attempt.tries for attempt in dispatch.attempts] == [3, 1]
    assert timedelta(seconds=3) <= elapsed(clock) <= timedelta(seconds=5)


def test_retry_after_accepts_seconds_or_a_timedelta_but_not_a_negative() -> None:
    assert TransientError("x", retry_after=2.5).retry_after == timedelta(seconds=2.5)
    assert TransientError("x", retry_after=timedelta(seconds=3)).retry_after == timedelta(seconds=3)
    assert TransientError("x").retry_after is None
    with pytest.raises(ValueError, match="cannot be negative"):
        TransientError("x", retry_after=-1)
