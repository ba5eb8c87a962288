"""Two writers on one dispatch: a save from an out-of-date copy is refused, and nothing is lost.

A worker may be sending while a webhook records an answer or a person cancels.
Every store refuses a save whose revision is stale (`StaleDispatch`), and the
dispatcher then reads the dispatch again and carries its change onto the
newer copy, so neither the provider's answer nor the other writer's is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from multichannel import (
    Contact,
    ContactPoint,
    Content,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    ManualClock,
    Message,
    Outcome,
    Preferences,
    Receipt,
    SendContext,
    StaleDispatch,
    Status,
    Store,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 in Detroit
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=[
        ContactPoint(channel="sms", address="+17345550100"),
        ContactPoint(channel="email", address="alice@example.com"),
    ],
    preferences=Preferences(channels=["sms", "email"]),
)
QUESTION = Message(
    body="Can you come on Thursday?", expects_response=True, response_wait=timedelta(hours=4)
)


class Meddling:
    """An adapter that, in the middle of its call, lets someone else change the dispatch."""

    name = "meddling"
    channel = "*"

    def __init__(self) -> None:
        self.during: dict[str, Callable[[SendContext], None]] = {}
        self.sent: list[str] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.sent.append(point.address)
        meddle = self.during.pop(point.address, None)
        if meddle is not None:
            meddle(ctx)
        return Receipt(provider_id=f"{point.channel}-{len(self.sent)}")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return self.send(point, content, ctx)


def test_a_save_from_a_stale_copy_is_refused_and_changes_nothing(store: Store) -> None:
    dispatcher = Dispatcher(adapters=[Meddling()], clock=ManualClock(T0), store=store)
    dispatch = dispatcher.send(ALICE, QUESTION)
    first, second = dispatcher.get(dispatch.id), dispatcher.get(dispatch.id)

    first.status = Status.CANCELLED
    store.save(first)
    second.status = Status.FAILED

    with pytest.raises(StaleDispatch, match=dispatch.id):
        store.save(second)
    assert dispatcher.get(dispatch.id).status is Status.CANCELLED
    assert dispatcher.get(dispatch.id).revision == first.revision


def test_every_save_moves_the_revision_on(store: Store) -> None:
    dispatcher = Dispatcher(adapters=[Meddling()], clock=ManualClock(T0), store=store)
    dispatch = dispatcher.send(ALICE, QUESTION)
    before = dispatcher.get(dispatch.id).revision

    dispatcher.cancel(dispatch.id)

    assert dispatcher.get(dispatch.id).revision > before


def test_an_answer_recorded_during_the_next_send_is_kept(store: Store) -> None:
    clock = ManualClock(T0)
    adapter = Meddling()
    dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
    dispatch = dispatcher.send(ALICE, QUESTION)
    sms_id = dispatch.attempts[0].provider_id
    # The wait runs out and the email goes out; while it is being sent, the
    # text's answer arrives through a webhook in another process.
    adapter.during["alice@example.com"] = lambda ctx: _answered(dispatcher, sms_id)
    clock.advance(timedelta(hours=4))

    [after] = dispatcher.run_due()

    stored = dispatcher.get(dispatch.id)
    assert stored.status is Status.RESPONDED
    assert after.status is Status.RESPONDED
    assert [(a.channel, a.outcome) for a in stored.attempts] == [
        ("sms", Outcome.RESPONDED),
        ("email", Outcome.ACCEPTED),
    ]
    assert stored.attempts[1].provider_id == "email-2"
    assert stored.next_action_at is None


def test_a_cancel_during_a_send_holds_and_the_send_is_still_recorded(store: Store) -> None:
    adapter = Meddling()
    dispatcher = Dispatcher(adapters=[adapter], clock=ManualClock(T0), store=store)
    adapter.during["+17345550100"] = lambda ctx: _cancelled(dispatcher, ctx.dispatch_id)

    dispatch = dispatcher.send(ALICE, QUESTION)

    stored = dispatcher.get(dispatch.id)
    assert dispatch.status is Status.CANCELLED
    assert stored.status is Status.CANCELLED
    assert [(a.channel, a.outcome) for a in stored.attempts] == [("sms", Outcome.ACCEPTED)]
    assert any("accepted the message" in line for line in stored.timeline())
    assert adapter.sent == ["+17345550100"]


def test_an_event_that_loses_a_race_is_applied_to_the_newer_copy(store: Store) -> None:
    clock = ManualClock(T0)
    adapter = Meddling()
    dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
    dispatch = dispatcher.send(ALICE, Message(body="Your order shipped."))
    stale = dispatcher.get(dispatch.id)
    dispatcher.record(DeliveryEvent(kind="delivered", provider_id="sms-1"))

    # A copy read before the delivery report cannot overwrite it.
    stale.status = Status.SCHEDULED
    with pytest.raises(StaleDispatch):
        store.save(stale)
    after = dispatcher.record(
        DeliveryEvent(kind="failed", provider_id="sms-1", detail="30003 unreachable")
    )

    assert [(a.channel, a.outcome) for a in after.attempts] == [
        ("sms", Outcome.FAILED),
        ("email", Outcome.ACCEPTED),
    ]
    assert dispatcher.get(dispatch.id).status is Status.ACCEPTED


def _answered(dispatcher: Dispatcher, provider_id: str | None) -> None:
    dispatcher.record(DeliveryEvent(kind="responded", provider_id=provider_id, detail="yes"))


def _cancelled(dispatcher: Dispatcher, dispatch_id: str) -> Dispatch:
    return dispatcher.cancel(dispatch_id, reason="the appointment was moved")
