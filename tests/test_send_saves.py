"""What an accepted send writes: the attempt and the step after it together, and never less."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import pytest

from multichannel import (
    Action,
    Attempt,
    Contact,
    ContactPoint,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Outcome,
    Status,
)

ADA = Contact(
    id="ada",
    timezone="America/Detroit",
    points=[ContactPoint(channel="email", address="ada@example.com")],
)
NEWS = Message(body="Our opening hours change next week.")


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.saves = 0
        self.creates = 0

    def create(self, dispatch: Dispatch) -> Dispatch:
        self.creates += 1
        return super().create(dispatch)

    def save(self, dispatch: Dispatch) -> None:
        self.saves += 1
        super().save(dispatch)


class FailsAfterSending(FallbackStrategy):
    """Decides normally until a send was accepted, then fails."""

    def decide(
        self,
        contact: Contact,
        message: Message,
        *,
        now: datetime,
        attempts: Sequence[Attempt] = (),
        channels: Collection[str] = ("*",),
        opted_out: Collection[tuple[str, str]] = (),
    ) -> Action:
        if any(attempt.outcome is Outcome.ACCEPTED for attempt in attempts):
            raise RuntimeError("the strategy broke")
        return super().decide(
            contact, message, now=now, attempts=attempts, channels=channels, opted_out=opted_out
        )


def test_a_send_that_goes_out_at_once_is_one_create_and_two_saves(clock: ManualClock) -> None:
    store = CountingStore()
    dispatch = Dispatcher(adapters=[Outbox()], clock=clock, store=store).send(ADA, NEWS)

    assert dispatch.status is Status.ACCEPTED
    assert (store.creates, store.saves) == (1, 2)
    assert dispatch.timeline()[-1].endswith("accepted on email ada@example.com")


def test_an_accepted_send_is_saved_even_when_deciding_after_it_fails(
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    dispatcher = Dispatcher(
        adapters=[Outbox()], clock=clock, store=store, strategy=FailsAfterSending()
    )

    with pytest.raises(RuntimeError, match="the strategy broke"):
        dispatcher.send(ADA, NEWS)

    [stored] = list(store.dispatches())
    assert stored.current is not None
    assert stored.current.outcome is Outcome.ACCEPTED
    assert stored.current.provider_id is not None
