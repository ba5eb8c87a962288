"""Dispatcher.record: delivery reports, bounces, silence, answers and opt-outs feeding the loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from multichannel import (
    Contact,
    ContactPoint,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    FallbackStrategy,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    Preferences,
    Status,
    UnknownDispatch,
    Window,
)

MON_0900 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Detroit is UTC-5 until 8 March
MON_2000 = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)

SMS = ContactPoint(channel="sms", address="+17345550100")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
SMS_ONLY = Contact(
    id="alice", timezone="America/Detroit", points=[SMS], preferences=Preferences(channels=["sms"])
)


def alice(response_wait: timedelta | None = None) -> Contact:
    return Contact(
        id="alice",
        timezone="America/Detroit",
        points=[SMS, EMAIL],
        preferences=Preferences(
            channels=["sms", "email"],
            quiet_hours=[Window(start="21:00", end="08:00")],
            response_wait=response_wait,
        ),
    )


NOTICE = Message(body="Your parcel arrives today.")
QUESTION = Message(
    body="Can you confirm tomorrow's 10:00 appointment?",
    expects_response=True,
    response_wait=timedelta(hours=2),
)


def event(kind: str, dispatch: Dispatch, detail: str | None = None) -> DeliveryEvent:
    """An event naming the provider id of the dispatch's latest attempt."""
    assert dispatch.current is not None
    return DeliveryEvent(
        kind=EventKind(kind), provider_id=dispatch.current.provider_id, detail=detail
    )


@pytest.fixture
def dispatcher(clock: ManualClock, outbox: Outbox) -> Dispatcher:
    return Dispatcher(adapters=[outbox], clock=clock)


class TestDelivery:
    def test_delivered_marks_the_dispatch_delivered(self, dispatcher: Dispatcher) -> None:
        sent = dispatcher.send(alice(), NOTICE)

        done = dispatcher.record(event("delivered", sent, "handset reached"))

        assert done.status is Status.DELIVERED
        assert done.attempts[0].outcome is Outcome.DELIVERED
        assert done.decisions[-1].reason == f"delivered on sms {SMS.address}: handset reached"
        assert dispatcher.get(sent.id).status is Status.DELIVERED

    def test_an_event_is_matched_by_dispatch_id(self, dispatcher: Dispatcher) -> None:
        sent = dispatcher.send(alice(), NOTICE)

        done = dispatcher.record(DeliveryEvent(kind=EventKind.DELIVERED, dispatch_id=sent.id))

        assert done.id == sent.id
        assert done.status is Status.DELIVERED

    def test_delivered_while_awaiting_an_answer_keeps_waiting(self, dispatcher: Dispatcher) -> None:
        sent = dispatcher.send(alice(), QUESTION)

        done = dispatcher.record(event("delivered", sent))

        assert done.status is Status.AWAITING_RESPONSE
        assert done.attempts[0].outcome is Outcome.DELIVERED
        assert done.next_action_at == sent.next_action_at


class TestBounce:
    def test_a_failure_after_acceptance_falls_back_at_once(
        self, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = dispatcher.send(alice(), NOTICE)

        done = dispatcher.record(event("failed", sent, "30005 unknown handset"))

        first, second = done.attempts
        assert first.outcome is Outcome.FAILED
        assert first.error == "30005 unknown handset"
        assert (second.channel, second.outcome) == ("email", Outcome.ACCEPTED)
        assert done.status is Status.ACCEPTED
        assert [item.address for item in outbox.sent] == [SMS.address, EMAIL.address]

    def test_a_failure_in_quiet_hours_waits_for_the_next_open_instant(
        self, clock: ManualClock, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        clock.set(MON_2000)
        sent = dispatcher.send(alice(), NOTICE)
        clock.set(MON_2200)

        bounced = dispatcher.record(event("failed", sent))

        assert bounced.status is Status.SCHEDULED
        assert bounced.next_action_at == TUE_0800
        assert len(outbox.sent) == 1
        clock.set(TUE_0800)
        [done] = dispatcher.run_due()
        assert done.status is Status.ACCEPTED
        assert outbox.sent[-1].address == EMAIL.address

    def test_a_bounce_on_the_last_candidate_is_failed(self, dispatcher: Dispatcher) -> None:
        sent = dispatcher.send(alice(), NOTICE)
        moved_on = dispatcher.record(event("failed", sent))

        done = dispatcher.record(event("failed", moved_on))

        assert done.status is Status.FAILED

    def test_a_failure_on_an_earlier_attempt_does_not_send_again(
        self, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = dispatcher.send(alice(), NOTICE)
        moved_on = dispatcher.record(event("failed", sent))

        again = dispatcher.record(event("failed", sent))

        assert again.attempts == moved_on.attempts
        assert again.status is Status.ACCEPTED
        assert len(outbox.sent) == 2


class TestAnswers:
    def test_a_question_awaits_an_answer_from_acceptance(
        self, clock: ManualClock, dispatcher: Dispatcher
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)

        assert sent.status is Status.AWAITING_RESPONSE
        assert sent.next_action_at == MON_0900 + timedelta(hours=2)

    @pytest.mark.parametrize(
        ("message_wait", "contact_wait", "expected"),
        [
            (timedelta(minutes=45), timedelta(hours=3), timedelta(minutes=45)),
            (None, timedelta(hours=3), timedelta(hours=3)),
            (None, None, timedelta(hours=5)),
        ],
    )
    def test_the_wait_is_the_messages_else_the_contacts_else_the_default(
        self,
        clock: ManualClock,
        outbox: Outbox,
        message_wait: timedelta | None,
        contact_wait: timedelta | None,
        expected: timedelta,
    ) -> None:
        strategy = FallbackStrategy(default_response_wait=timedelta(hours=5))
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, strategy=strategy)
        question = QUESTION.model_copy(update={"response_wait": message_wait})

        sent = dispatcher.send(alice(contact_wait), question)
        clock.advance(expected - timedelta(microseconds=1))
        assert dispatcher.run_due() == []
        clock.advance(timedelta(microseconds=1))
        [escalated] = dispatcher.run_due()

        assert sent.next_action_at == MON_0900 + expected
        assert [attempt.channel for attempt in escalated.attempts] == ["sms", "email"]

    def test_silence_escalates_at_the_next_open_instant_not_in_quiet_hours(
        self, clock: ManualClock, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        clock.set(MON_2000)
        sent = dispatcher.send(alice(), QUESTION)
        assert sent.next_action_at == MON_2200

        clock.set(MON_2200)
        [waiting] = dispatcher.run_due()
        assert waiting.status is Status.SCHEDULED
        assert waiting.attempts[0].outcome is Outcome.UNANSWERED
        assert waiting.next_action_at == TUE_0800
        assert len(outbox.sent) == 1

        clock.set(TUE_0800)
        [escalated] = dispatcher.run_due()
        assert escalated.status is Status.AWAITING_RESPONSE
        assert escalated.attempts[1].channel == "email"
        assert escalated.attempts[1].at == TUE_0800
        assert any(
            decision.reason == f"no answer on sms {SMS.address} in time"
            for decision in escalated.decisions
        )

    def test_an_answer_ends_the_dispatch(
        self, clock: ManualClock, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)

        done = dispatcher.record(event("responded", sent, "YES"))
        clock.advance(timedelta(days=1))

        assert done.status is Status.RESPONDED
        assert done.next_action_at is None
        assert done.attempts[0].outcome is Outcome.RESPONDED
        assert dispatcher.run_due() == []
        assert len(outbox.sent) == 1

    def test_a_late_reply_after_unanswered_still_counts(
        self, clock: ManualClock, dispatcher: Dispatcher
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)
        first_provider_id = sent.attempts[0].provider_id
        for _ in range(2):
            clock.advance(timedelta(hours=2))
            dispatcher.run_due()
        assert dispatcher.get(sent.id).status is Status.UNANSWERED

        done = dispatcher.record(
            DeliveryEvent(kind=EventKind.RESPONDED, provider_id=first_provider_id)
        )

        assert done.status is Status.RESPONDED
        assert done.attempts[0].outcome is Outcome.RESPONDED

    def test_a_reply_while_the_next_channel_is_scheduled_stops_it(
        self, clock: ManualClock, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        clock.set(MON_2000)
        sent = dispatcher.send(alice(), QUESTION)
        clock.set(MON_2200)
        dispatcher.run_due()

        done = dispatcher.record(event("responded", sent))
        clock.set(TUE_0800)

        assert done.status is Status.RESPONDED
        assert dispatcher.run_due() == []
        assert len(outbox.sent) == 1


class TestOptOut:
    def test_opted_out_cancels_and_later_dispatches_skip_the_point(
        self, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)

        done = dispatcher.record(event("opted_out", sent, "STOP"))
        later = dispatcher.send(alice(), NOTICE)

        assert done.status is Status.CANCELLED
        assert done.next_action_at is None
        assert "opted out" in done.decisions[-1].reason
        assert [attempt.channel for attempt in later.attempts] == ["email"]
        assert len(outbox.to(SMS.address)) == 1


class TestCancel:
    def test_a_bounce_after_cancelling_an_accepted_dispatch_does_not_fall_back(
        self, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = dispatcher.send(alice(), NOTICE)

        cancelled = dispatcher.cancel(sent.id)
        bounced = dispatcher.record(event("failed", sent))

        assert cancelled.status is Status.CANCELLED
        assert bounced.status is Status.CANCELLED
        assert bounced.attempts[0].outcome is Outcome.FAILED
        assert len(outbox.sent) == 1

    def test_an_answer_after_cancelling_is_recorded_but_stays_cancelled(
        self, dispatcher: Dispatcher
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)
        dispatcher.cancel(sent.id, "the appointment was called off")

        done = dispatcher.record(event("responded", sent, "ok"))

        assert done.status is Status.CANCELLED
        assert done.attempts[0].outcome is Outcome.RESPONDED
        assert done.decisions[-1].reason == f"answered on sms {SMS.address}: ok"


class TestInboundReplies:
    def test_a_reply_is_matched_by_channel_and_address_to_the_latest_dispatch(
        self, dispatcher: Dispatcher
    ) -> None:
        older = dispatcher.send(alice(), QUESTION)
        newer = dispatcher.send(alice(), QUESTION.model_copy(update={"body": "And Friday?"}))

        done = dispatcher.record(
            DeliveryEvent(kind=EventKind.RESPONDED, channel="sms", address=SMS.address)
        )

        assert done.id == newer.id
        assert done.status is Status.RESPONDED
        assert dispatcher.get(older.id).status is Status.AWAITING_RESPONSE

    def test_a_reply_from_an_address_never_sent_to_raises(self, dispatcher: Dispatcher) -> None:
        dispatcher.send(alice(), QUESTION)

        with pytest.raises(UnknownDispatch, match="no dispatch was sent on sms"):
            dispatcher.record(
                DeliveryEvent(kind=EventKind.RESPONDED, channel="sms", address="+17345550199")
            )

    def test_opting_back_in_lifts_the_opt_out(self, dispatcher: Dispatcher, outbox: Outbox) -> None:
        sent = dispatcher.send(alice(), NOTICE)
        dispatcher.record(event("opted_out", sent, "STOP"))

        opt_in = DeliveryEvent(kind=EventKind.OPTED_IN, channel="sms", address=SMS.address)

        back = dispatcher.record(opt_in)
        again = dispatcher.record(opt_in)
        later = dispatcher.send(alice(), NOTICE)

        assert back.decisions[-1].reason == f"the person opted back in on sms {SMS.address}"
        assert again == back
        assert later.attempts[0].channel == "sms"
        assert len(outbox.to(SMS.address)) == 2

    def test_opt_out_and_opt_in_by_hand(self, dispatcher: Dispatcher) -> None:
        dispatcher.opt_out("sms", SMS.address)
        skipped = dispatcher.send(alice(), NOTICE)
        dispatcher.opt_in("sms", SMS.address)
        reached = dispatcher.send(alice(), NOTICE)

        assert [attempt.channel for attempt in skipped.attempts] == ["email"]
        assert [attempt.channel for attempt in reached.attempts] == ["sms"]


class TestRepeats:
    @pytest.mark.parametrize("kind", ["delivered", "failed", "responded", "opted_out"])
    def test_recording_the_same_event_twice_changes_nothing_the_second_time(
        self, clock: ManualClock, dispatcher: Dispatcher, outbox: Outbox, kind: str
    ) -> None:
        sent = dispatcher.send(alice(), QUESTION)
        report = event(kind, sent, "provider words")

        once = dispatcher.record(report)
        sent_after_once = len(outbox.sent)
        clock.advance(timedelta(minutes=1))  # providers retry callbacks a little later
        twice = dispatcher.record(report)

        assert twice == once
        assert dispatcher.get(sent.id) == once
        assert len(outbox.sent) == sent_after_once


class TestUnknown:
    def test_an_unknown_provider_id_raises(self, dispatcher: Dispatcher) -> None:
        dispatcher.send(alice(), NOTICE)

        with pytest.raises(UnknownDispatch, match="'nobody-1'"):
            dispatcher.record(DeliveryEvent(kind=EventKind.DELIVERED, provider_id="nobody-1"))

    def test_an_unknown_dispatch_id_raises(self, dispatcher: Dispatcher) -> None:
        with pytest.raises(UnknownDispatch):
            dispatcher.record(DeliveryEvent(kind=EventKind.DELIVERED, dispatch_id="nope"))

    def test_an_event_naming_nothing_raises(self, dispatcher: Dispatcher) -> None:
        with pytest.raises(UnknownDispatch, match="names no dispatch_id"):
            dispatcher.record(DeliveryEvent(kind=EventKind.DELIVERED))

    def test_a_provider_id_from_another_dispatch_raises(self, dispatcher: Dispatcher) -> None:
        first = dispatcher.send(alice(), NOTICE)
        second = dispatcher.send(alice(), NOTICE)
        assert first.current is not None

        with pytest.raises(UnknownDispatch):
            dispatcher.record(
                DeliveryEvent(
                    kind=EventKind.DELIVERED,
                    dispatch_id=second.id,
                    provider_id=first.current.provider_id,
                )
            )

    def test_an_address_the_named_dispatch_never_tried_raises(self, dispatcher: Dispatcher) -> None:
        sent = dispatcher.send(alice(), NOTICE)

        with pytest.raises(UnknownDispatch, match="has no attempt matching"):
            dispatcher.record(
                DeliveryEvent(
                    kind=EventKind.RESPONDED,
                    dispatch_id=sent.id,
                    channel="email",
                    address=EMAIL.address,
                )
            )

    def test_unknown_dispatch_is_a_lookup_error(self, dispatcher: Dispatcher) -> None:
        with pytest.raises(LookupError):
            dispatcher.get("missing")


class TestAsync:
    async def test_arecord_behaves_like_record(
        self, dispatcher: Dispatcher, outbox: Outbox
    ) -> None:
        sent = await dispatcher.asend(alice(), NOTICE)

        done = await dispatcher.arecord(event("failed", sent, "bounced"))

        assert [attempt.outcome for attempt in done.attempts] == [
            Outcome.FAILED,
            Outcome.ACCEPTED,
        ]
        assert outbox.sent[-1].address == EMAIL.address

    async def test_arecord_raises_for_an_unknown_event(self, dispatcher: Dispatcher) -> None:
        with pytest.raises(UnknownDispatch):
            await dispatcher.arecord(DeliveryEvent(kind=EventKind.FAILED, provider_id="x"))


def test_the_providers_time_of_an_event_is_kept_in_the_log(
    clock: ManualClock, outbox: Outbox
) -> None:
    dispatcher = Dispatcher(adapters=[outbox], clock=clock)
    dispatcher.send(SMS_ONLY, Message(body="Your order shipped."))
    reported = clock.now() - timedelta(minutes=3)

    after = dispatcher.record(
        DeliveryEvent(kind="delivered", provider_id=outbox.sent[0].provider_id, at=reported)
    )

    assert after.status is Status.DELIVERED
    assert after.decisions[-1].at == clock.now()
    assert f"at {reported.isoformat()} by the provider's clock" in after.decisions[-1].reason
