"""Dispatcher: sending, deferring, falling back, idempotency and the final statuses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    IdempotencyConflict,
    ManualClock,
    Message,
    OptedOut,
    Outbox,
    Outcome,
    PermanentError,
    Preferences,
    ProviderError,
    Receipt,
    SendContext,
    Status,
    UnknownDispatch,
    Window,
)

MON_0900 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 in Detroit
MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)

SMS = ContactPoint(channel="sms", address="+17345550100", label="mobile")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=[SMS, EMAIL],
    preferences=Preferences(
        channels=["sms", "email"], quiet_hours=[Window(start="21:00", end="08:00")]
    ),
)
BOB = ALICE.model_copy(update={"id": "bob"})
REMINDER = Message(body="Your appointment is tomorrow at 10:00.", variants={"sms": "Appt 10:00"})


class Scripted:
    """An adapter for one channel that raises the scripted errors in turn, then accepts."""

    def __init__(self, name: str, channel: str, *failures: BaseException) -> None:
        self.name = name
        self.channel = channel
        self.failures = list(failures)
        self.calls: list[str] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls.append(point.address)
        if self.failures:
            raise self.failures.pop(0)
        return Receipt(provider_id=f"{self.name}-{len(self.calls)}")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return self.send(point, content, ctx)


class TestSend:
    def test_send_returns_an_accepted_dispatch_with_its_attempt_and_reasons(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        dispatch = dispatcher.send(ALICE, REMINDER)

        assert dispatch.status is Status.ACCEPTED
        assert dispatch.contact_id == "alice"
        assert dispatch.next_action_at is None
        [attempt] = dispatch.attempts
        assert (attempt.channel, attempt.address, attempt.label) == ("sms", SMS.address, "mobile")
        assert attempt.outcome is Outcome.ACCEPTED
        assert attempt.tries == 1
        assert attempt.at == MON_0900
        assert attempt.provider == "outbox"
        assert attempt.provider_id == outbox.sent[0].provider_id
        reasons = [decision.reason for decision in dispatch.decisions]
        assert reasons[0] == "dispatch created for contact alice"
        assert f"send on sms {SMS.address} (mobile) (1st choice): it is open now" in reasons
        assert f"outbox accepted the message for sms {SMS.address} (mobile)" in reasons
        assert all(decision.at == MON_0900 for decision in dispatch.decisions)

    def test_the_channel_variant_is_what_is_sent(self, clock: ManualClock, outbox: Outbox) -> None:
        Dispatcher(adapters=[outbox], clock=clock).send(ALICE, REMINDER)

        [sent] = outbox.sent
        assert sent.message.body == "Appt 10:00"
        assert sent.context.contact_id == "alice"

    def test_the_timeline_reads_the_decisions_in_order(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, REMINDER)

        lines = dispatch.timeline()

        assert lines[0] == "2026-03-02T14:00:00+00:00  dispatch created for contact alice"
        assert len(lines) == len(dispatch.decisions)

    def test_a_dispatch_must_name_its_own_contact(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, REMINDER)

        with pytest.raises(ValidationError, match="differs from the contact's id"):
            Dispatch.model_validate({**dispatch.model_dump(), "contact_id": "bob"})

    def test_reprs_name_the_parts(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatcher.send(ALICE, REMINDER)

        assert repr(dispatcher).startswith("Dispatcher(adapters=Registry(['outbox'])")
        assert repr(dispatcher.store) == "MemoryStore(dispatches=1)"

    def test_get_returns_the_stored_dispatch(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = dispatcher.send(ALICE, REMINDER)

        assert dispatcher.get(dispatch.id) == dispatch

    def test_get_of_an_unknown_id_raises_unknown_dispatch(self, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock)

        with pytest.raises(UnknownDispatch, match="no dispatch has the id 'nope'"):
            dispatcher.get("nope")

    def test_a_non_adapter_is_a_configuration_error(self) -> None:
        with pytest.raises(ConfigurationError, match="is not an adapter"):
            Dispatcher(adapters=[object()])  # type: ignore[list-item]

    def test_a_channel_with_no_adapter_is_skipped(self, clock: ManualClock) -> None:
        email_only = Scripted("mailer", "email")
        dispatch = Dispatcher(adapters=[email_only], clock=clock).send(ALICE, REMINDER)

        assert [attempt.channel for attempt in dispatch.attempts] == ["email"]
        assert any(
            "no adapter is registered for sms" in decision.reason for decision in dispatch.decisions
        )


class TestDeferred:
    def test_a_send_in_quiet_hours_runs_at_exactly_its_due_instant(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        dispatch = dispatcher.send(ALICE, REMINDER)
        assert dispatch.status is Status.SCHEDULED
        assert dispatch.next_action_at == TUE_0800
        assert outbox.sent == []

        clock.set(TUE_0800 - timedelta(microseconds=1))
        assert dispatcher.run_due() == []
        assert outbox.sent == []

        clock.set(TUE_0800)
        [done] = dispatcher.run_due()
        assert done.id == dispatch.id
        assert done.status is Status.ACCEPTED
        assert done.attempts[0].at == TUE_0800
        assert len(outbox.sent) == 1

        assert dispatcher.run_due() == []
        assert len(outbox.sent) == 1

    def test_run_due_performs_at_most_limit_steps_oldest_first(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        scheduled = [dispatcher.send(ALICE, REMINDER) for _ in range(3)]
        clock.set(TUE_0800)

        first = dispatcher.run_due(limit=2)
        rest = dispatcher.run_due(limit=2)

        assert [dispatch.id for dispatch in first + rest] == [item.id for item in scheduled]
        assert len(outbox.sent) == 3

    def test_advance_performs_a_claimed_step_only_when_its_time_has_come(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = dispatcher.send(ALICE, REMINDER)

        early = dispatcher.advance(dispatcher.get(dispatch.id))
        clock.set(TUE_0800)
        on_time = dispatcher.advance(dispatcher.get(dispatch.id))

        assert early.status is Status.SCHEDULED
        assert early.next_action_at == TUE_0800
        assert on_time.status is Status.ACCEPTED
        assert len(outbox.sent) == 1

    async def test_aadvance_is_the_async_twin(self, clock: ManualClock, outbox: Outbox) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = await dispatcher.asend(ALICE, REMINDER)
        clock.set(TUE_0800)

        done = await dispatcher.aadvance(dispatcher.get(dispatch.id))

        assert done.status is Status.ACCEPTED

    def test_a_late_worker_still_respects_deliver_by(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        message = REMINDER.model_copy(update={"deliver_by": TUE_0800 + timedelta(minutes=30)})
        dispatcher.send(ALICE, message)

        clock.set(TUE_0800 + timedelta(hours=1))
        [done] = dispatcher.run_due()

        assert done.status is Status.EXPIRED
        assert outbox.sent == []

    def test_cancel_stops_a_scheduled_dispatch(self, clock: ManualClock, outbox: Outbox) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = dispatcher.send(ALICE, REMINDER)

        cancelled = dispatcher.cancel(dispatch.id, "the appointment moved")
        clock.set(TUE_0800)

        assert cancelled.status is Status.CANCELLED
        assert cancelled.decisions[-1].reason == "the appointment moved"
        assert dispatcher.run_due() == []
        assert outbox.sent == []
        assert dispatcher.get(dispatch.id).status is Status.CANCELLED

    def test_cancel_leaves_a_finished_dispatch_alone(self, clock: ManualClock) -> None:
        outbox = Outbox()
        outbox.reject(SMS.address, PermanentError)
        outbox.reject(EMAIL.address, PermanentError)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = dispatcher.send(ALICE, REMINDER)

        assert dispatcher.cancel(dispatch.id) == dispatch
        assert dispatcher.get(dispatch.id).status is Status.FAILED


class TestFallback:
    def test_a_permanent_error_falls_back_to_the_second_choice_in_the_same_send(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        outbox.reject(SMS.address, PermanentError("number disconnected"))

        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, REMINDER)

        assert dispatch.status is Status.ACCEPTED
        first, second = dispatch.attempts
        assert (first.channel, first.outcome, first.tries) == ("sms", Outcome.FAILED, 1)
        assert first.error == "PermanentError: number disconnected"
        assert (second.channel, second.outcome) == ("email", Outcome.ACCEPTED)
        assert [sent.address for sent in outbox.sent] == [EMAIL.address]
        assert any("refused" in decision.reason for decision in dispatch.decisions)

    def test_every_candidate_failing_is_failed(self, clock: ManualClock, outbox: Outbox) -> None:
        outbox.reject(SMS.address, PermanentError)
        outbox.reject(EMAIL.address, PermanentError)

        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, REMINDER)

        assert dispatch.status is Status.FAILED
        assert [attempt.outcome for attempt in dispatch.attempts] == [Outcome.FAILED] * 2

    def test_opted_out_from_the_provider_is_remembered_for_later_dispatches(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        outbox.reject(SMS.address, OptedOut("STOP received"), times=1)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        first = dispatcher.send(ALICE, REMINDER)
        second = dispatcher.send(ALICE, REMINDER.model_copy(update={"body": "Next week too"}))

        assert [attempt.channel for attempt in first.attempts] == ["sms", "email"]
        assert [attempt.channel for attempt in second.attempts] == ["email"]
        assert any("opted out" in decision.reason for decision in second.decisions)
        assert outbox.to(SMS.address) == []

    def test_a_provider_error_tries_the_next_adapter_of_the_same_channel(
        self, clock: ManualClock
    ) -> None:
        down = Scripted("sms-a", "sms", ProviderError("account suspended"))
        backup = Scripted("sms-b", "sms")

        dispatch = Dispatcher(adapters=[down, backup], clock=clock).send(ALICE, REMINDER)

        [attempt] = dispatch.attempts
        assert attempt.outcome is Outcome.ACCEPTED
        assert attempt.address == SMS.address
        assert attempt.provider == "sms-b"
        assert attempt.provider_id == "sms-b-1"
        assert attempt.tries == 2
        assert attempt.error is None
        assert (down.calls, backup.calls) == ([SMS.address], [SMS.address])
        assert any(
            "sms-a failed as a provider, not because of the address" in decision.reason
            for decision in dispatch.decisions
        )

    def test_a_provider_error_does_not_blame_the_address(self, clock: ManualClock) -> None:
        down = Scripted("sms-a", "sms", ProviderError("outage"))
        mailer = Scripted("mailer", "email")
        dispatcher = Dispatcher(adapters=[down, mailer], clock=clock)

        first = dispatcher.send(ALICE, REMINDER)
        second = dispatcher.send(ALICE, REMINDER.model_copy(update={"body": "Again"}))

        assert [attempt.channel for attempt in first.attempts] == ["sms", "email"]
        assert second.attempts[0].address == SMS.address
        assert second.attempts[0].outcome is Outcome.ACCEPTED

    def test_a_permanent_error_does_not_try_another_adapter_for_that_address(
        self, clock: ManualClock
    ) -> None:
        refusing = Scripted("sms-a", "sms", PermanentError("no such number"))
        backup = Scripted("sms-b", "sms")
        mailer = Scripted("mailer", "email")

        dispatch = Dispatcher(adapters=[refusing, backup, mailer], clock=clock).send(
            ALICE, REMINDER
        )

        assert backup.calls == []
        assert [attempt.channel for attempt in dispatch.attempts] == ["sms", "email"]

    def test_wildcard_adapters_come_after_the_channels_own(self, clock: ManualClock) -> None:
        outbox = Outbox()
        own = Scripted("sms-a", "sms", ProviderError("outage"))

        dispatch = Dispatcher(adapters=[outbox, own], clock=clock).send(ALICE, REMINDER)

        assert own.calls == [SMS.address]
        assert dispatch.attempts[0].provider == "outbox"

    def test_an_unexpected_exception_is_logged_with_its_traceback_and_the_next_adapter_tried(
        self, clock: ManualClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        broken = Scripted("sms-a", "sms", RuntimeError("socket exploded"))
        backup = Scripted("sms-b", "sms")

        with caplog.at_level(logging.ERROR, logger="multichannel"):
            dispatch = Dispatcher(adapters=[broken, backup], clock=clock).send(ALICE, REMINDER)

        assert dispatch.attempts[0].provider == "sms-b"
        assert dispatch.status is Status.ACCEPTED
        [record] = caplog.records
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert record.exc_info[0] is RuntimeError
        assert "sms-a" in record.getMessage()
        assert SMS.address not in record.getMessage()
        assert any(
            "failed unexpectedly (RuntimeError: socket exploded)" in decision.reason
            for decision in dispatch.decisions
        )

    def test_an_unexpected_exception_is_recorded_on_the_attempt(self, clock: ManualClock) -> None:
        broken = Scripted("sms-a", "sms", RuntimeError("socket exploded"))
        mailer = Scripted("mailer", "email")

        dispatch = Dispatcher(adapters=[broken, mailer], clock=clock).send(ALICE, REMINDER)

        first, second = dispatch.attempts
        assert first.outcome is Outcome.FAILED
        assert first.error == "RuntimeError: socket exploded"
        assert second.outcome is Outcome.ACCEPTED

    def test_a_configuration_error_reaches_the_caller(self, clock: ManualClock) -> None:
        unset = ConfigurationError("SMS_TOKEN is not set")
        misconfigured = Scripted("sms-a", "sms", unset, unset)
        mailer = Scripted("mailer", "email")
        dispatcher = Dispatcher(adapters=[misconfigured, mailer], clock=clock)

        with pytest.raises(ConfigurationError, match="SMS_TOKEN is not set"):
            dispatcher.send(ALICE, REMINDER)

        assert mailer.calls == []
        [stored] = dispatcher.store.dispatches()
        assert stored.attempts == []
        assert stored.status is Status.SCHEDULED
        assert stored.next_action_at == clock.now()
        assert any("SMS_TOKEN is not set" in line for line in stored.timeline())

        # Still due on the same point: it fails loudly again rather than
        # falling back as if the person could not be reached.
        with pytest.raises(ConfigurationError, match="SMS_TOKEN is not set"):
            dispatcher.run_due()
        assert mailer.calls == []

        # Once the setting is fixed, the same point is used.
        [fixed] = dispatcher.run_due()
        assert [(a.channel, a.outcome) for a in fixed.attempts] == [("sms", Outcome.ACCEPTED)]
        assert mailer.calls == []


class TestIdempotency:
    def test_the_same_key_returns_the_same_dispatch_and_sends_once(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        keyed = REMINDER.model_copy(update={"key": "appt-42"})

        first = dispatcher.send(ALICE, keyed)
        clock.advance(timedelta(minutes=5))
        again = dispatcher.send(ALICE, keyed)

        assert again.id == first.id
        assert again == first
        assert len(outbox.sent) == 1

    def test_the_same_key_with_another_message_is_a_conflict(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatcher.send(ALICE, REMINDER.model_copy(update={"key": "appt-42"}))

        changed = REMINDER.model_copy(update={"key": "appt-42", "body": "Moved to 11:00"})
        with pytest.raises(IdempotencyConflict, match="'appt-42'"):
            dispatcher.send(ALICE, changed)
        assert len(outbox.sent) == 1

    def test_the_same_key_for_another_contact_is_a_new_dispatch(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        keyed = REMINDER.model_copy(update={"key": "appt-42"})

        first = dispatcher.send(ALICE, keyed)
        other = dispatcher.send(BOB, keyed)

        assert other.id != first.id
        assert other.contact_id == "bob"
        assert len(outbox.sent) == 2

    def test_without_a_key_every_send_is_new(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        assert dispatcher.send(ALICE, REMINDER).id != dispatcher.send(ALICE, REMINDER).id
        assert len(outbox.sent) == 2


class TestStatuses:
    def test_nothing_allowed_is_suppressed_and_nothing_sent(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        secret = REMINDER.model_copy(update={"sensitive": True})

        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, secret)

        assert dispatch.status is Status.SUPPRESSED
        assert dispatch.attempts == []
        assert outbox.sent == []

    def test_deliver_by_already_passed_is_expired(self, clock: ManualClock, outbox: Outbox) -> None:
        stale = REMINDER.model_copy(update={"deliver_by": MON_0900 - timedelta(hours=1)})

        dispatch = Dispatcher(adapters=[outbox], clock=clock).send(ALICE, stale)

        assert dispatch.status is Status.EXPIRED
        assert outbox.sent == []

    def test_no_answer_anywhere_is_unanswered(self, clock: ManualClock, outbox: Outbox) -> None:
        question = REMINDER.model_copy(
            update={"expects_response": True, "response_wait": timedelta(hours=1)}
        )
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        dispatch = dispatcher.send(ALICE, question)
        assert dispatch.status is Status.AWAITING_RESPONSE
        clock.advance(timedelta(hours=1))
        [dispatch] = dispatcher.run_due()
        assert dispatch.status is Status.AWAITING_RESPONSE
        assert dispatch.attempts[-1].channel == "email"
        clock.advance(timedelta(hours=1))
        [dispatch] = dispatcher.run_due()

        assert dispatch.status is Status.UNANSWERED
        assert [attempt.outcome for attempt in dispatch.attempts] == [Outcome.UNANSWERED] * 2

    def test_the_strategy_is_the_one_given(self, clock: ManualClock, outbox: Outbox) -> None:
        voice = ContactPoint(channel="voice", address="+17345550122")
        contact = ALICE.model_copy(
            update={
                "points": (voice, *ALICE.points),
                "preferences": Preferences(channels=["voice", "sms", "email"]),
            }
        )
        outbox.reject(voice.address, PermanentError)
        outbox.reject(SMS.address, PermanentError)

        shallow = Dispatcher(adapters=[outbox], clock=clock).send(contact, REMINDER)
        deep = Dispatcher(
            adapters=[outbox], clock=clock, strategy=FallbackStrategy(depth=None)
        ).send(contact, REMINDER)

        assert shallow.status is Status.FAILED
        assert deep.status is Status.ACCEPTED
        assert deep.attempts[-1].channel == "email"


class TestAsync:
    async def test_asend_behaves_like_send(self, clock: ManualClock, outbox: Outbox) -> None:
        outbox.reject(SMS.address, PermanentError)

        dispatch = await Dispatcher(adapters=[outbox], clock=clock).asend(ALICE, REMINDER)

        assert dispatch.status is Status.ACCEPTED
        assert [attempt.outcome for attempt in dispatch.attempts] == [
            Outcome.FAILED,
            Outcome.ACCEPTED,
        ]
        assert [sent.address for sent in outbox.sent] == [EMAIL.address]

    async def test_arun_due_performs_what_is_due(self, clock: ManualClock, outbox: Outbox) -> None:
        clock.set(MON_2200)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        dispatch = await dispatcher.asend(ALICE, REMINDER)

        clock.set(TUE_0800 - timedelta(microseconds=1))
        assert await dispatcher.arun_due() == []
        clock.set(TUE_0800)
        [done] = await dispatcher.arun_due()

        assert done.id == dispatch.id
        assert done.status is Status.ACCEPTED
        assert len(outbox.sent) == 1

    async def test_asend_raises_configuration_errors(self, clock: ManualClock) -> None:
        misconfigured = Scripted("sms-a", "sms", ConfigurationError("no token"))

        with pytest.raises(ConfigurationError):
            await Dispatcher(adapters=[misconfigured], clock=clock).asend(ALICE, REMINDER)

    async def test_asend_honours_idempotency(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        keyed = REMINDER.model_copy(update={"key": "k"})

        first = await dispatcher.asend(ALICE, keyed)
        again = await dispatcher.asend(ALICE, keyed)

        assert again.id == first.id
        assert len(outbox.sent) == 1
        with pytest.raises(IdempotencyConflict):
            await dispatcher.asend(ALICE, keyed.model_copy(update={"body": "other"}))
