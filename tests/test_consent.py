"""Consent under concurrency: every opt-out and cancel honoured before every try, on every dispatch.

Each test reproduces one way the promise broke before (a STOP during a retry,
a STOP with two live dispatches, a STOP on a send held for review, a batch
whose fallback failed, a replayed START, a report that came before its id was
saved) through the public API, on every store the library ships.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from twilio.request_validator import RequestValidator

from multichannel import (
    BaseAdapter,
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    FallbackStrategy,
    ManualClock,
    MemoryStore,
    Message,
    Outcome,
    Preferences,
    Receipt,
    RetryPolicy,
    SendContext,
    Status,
    Store,
    TransientError,
    UnknownDispatch,
)
from multichannel.webhooks import arecord_events, create_app, record_events

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 and warns when its test client falls back on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

MON_0900 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in Detroit
SMS = ContactPoint(channel="sms", address="+17345550100")
VOICE = ContactPoint(channel="voice", address="+17345550100")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=[SMS, VOICE, EMAIL],
    preferences=Preferences(channels=["sms", "voice", "email"]),
)
QUESTION = Message(
    body="Can you confirm tomorrow's 10:00 appointment?",
    expects_response=True,
    response_wait=timedelta(hours=2),
)
NOTICE = Message(body="Your parcel arrives today.")

Step = BaseException | Callable[[], BaseException | None] | None


class Scripted(BaseAdapter):
    """Answers each call with the next step: an error to raise, or a hook to run first."""

    name = "primary-sms"
    channel = "sms"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[str, str]] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls.append((point.address, ctx.dispatch_id))
        step = self.steps.pop(0) if self.steps else None
        outcome = step() if callable(step) else step
        if isinstance(outcome, BaseException):
            raise outcome
        return Receipt(provider_id=f"{self.name}-{len(self.calls)}")


class BackupSMS(Scripted):
    name = "backup-sms"


class VoiceDrop(Scripted):
    name = "voice-drop"
    channel = "voice"


class Email(Scripted):
    name = "email"
    channel = "email"


def transient() -> TransientError:
    return TransientError("503 from the provider", retry_after=timedelta(seconds=5))


def dispatcher_for(store: Store, clock: ManualClock, *adapters: BaseAdapter) -> Dispatcher:
    retry = RetryPolicy(tries=3, initial=timedelta(seconds=1), jitter=timedelta(0))
    return Dispatcher(
        adapters=adapters,
        store=store,
        clock=clock,
        strategy=FallbackStrategy(retry=retry),
    )


def held_for_review(dispatcher: Dispatcher) -> Dispatch:
    """A dispatch whose first send was cut short by a crash, now held for review."""
    assert isinstance(dispatcher.clock, ManualClock)
    crashed = Dispatcher(
        adapters=[Scripted(KeyboardInterrupt())], store=dispatcher.store, clock=dispatcher.clock
    )
    with pytest.raises(KeyboardInterrupt):
        crashed.send(ALICE, QUESTION)
    [held] = list(dispatcher.store.dispatches())
    dispatcher.clock.advance(timedelta(minutes=11))
    held = dispatcher.advance(held)
    assert held.status is Status.REVIEW
    return held


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MON_0900)


class TestDuringASend:
    def test_an_opt_out_during_a_backoff_wait_stops_the_retry(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher: Dispatcher
        sms = Scripted(lambda: (dispatcher.opt_out("sms", SMS.address), transient())[1])
        email = Email()
        dispatcher = dispatcher_for(store, clock, sms, email)

        dispatch = dispatcher.send(ALICE, NOTICE)

        assert len(sms.calls) == 1
        assert dispatch.status is Status.CANCELLED
        assert not email.calls
        reasons = [decision.reason for decision in dispatch.decisions]
        assert f"not sent on {SMS.describe()}: the dispatch is cancelled" in reasons
        assert (
            f"the person opted out on sms {SMS.address}: asked through opt_out() "
            f"(received {MON_0900.isoformat()})"
        ) in reasons
        assert "opted out: not contacted on any other channel" in reasons

    def test_an_opt_out_between_two_providers_stops_the_second(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher: Dispatcher
        primary = Scripted(
            lambda: (dispatcher.opt_out("sms", SMS.address), transient())[1],
            transient(),
            transient(),
        )
        backup = BackupSMS()
        dispatcher = dispatcher_for(store, clock, primary, backup)

        dispatcher.send(ALICE, NOTICE)

        assert len(primary.calls) == 1
        assert backup.calls == []

    def test_a_cancel_during_a_retry_stops_it_and_the_next_provider(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher: Dispatcher

        def cancel_then_fail() -> Exception:
            dispatcher.cancel(primary.calls[0][1])
            return transient()

        primary = Scripted(cancel_then_fail, transient(), transient())
        backup = BackupSMS()
        voice = VoiceDrop()
        dispatcher = dispatcher_for(store, clock, primary, backup, voice)

        dispatch = dispatcher.send(ALICE, NOTICE)

        assert (len(primary.calls), backup.calls, voice.calls) == (1, [], [])
        assert dispatch.status is Status.CANCELLED
        assert "not sent on sms" in " ".join(dispatch.timeline())


class TestOneStopStopsThePerson:
    def test_a_stop_cancels_every_live_dispatch_that_used_the_number(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, voice = Scripted(), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        first = dispatcher.send(ALICE, QUESTION)
        second = dispatcher.send(ALICE, QUESTION.model_copy(update={"body": "And Friday?"}))
        assert len(sms.calls) == 2

        received = clock.advance(timedelta(minutes=5))
        record_events(
            dispatcher,
            [DeliveryEvent(kind=EventKind.OPTED_OUT, channel="sms", address=SMS.address)],
        )
        clock.advance(timedelta(hours=3))
        dispatcher.run_due()

        assert voice.calls == []
        for dispatch_id in (first.id, second.id):
            stopped = dispatcher.get(dispatch_id)
            assert stopped.status is Status.CANCELLED
            reasons = [decision.reason for decision in stopped.decisions]
            assert (
                f"the person opted out on sms {SMS.address} (received {received.isoformat()})"
                in reasons
            )

    def test_a_dispatch_that_never_used_the_number_passes_over_it(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, email = Scripted(), Email()
        dispatcher = dispatcher_for(store, clock, sms, email)
        dispatcher.opt_out("sms", SMS.address)
        contact = ALICE.model_copy(update={"preferences": Preferences(channels=["sms", "email"])})

        dispatch = dispatcher.send(contact, NOTICE)

        assert sms.calls == []
        assert [address for address, _ in email.calls] == [EMAIL.address]
        assert dispatch.status is Status.ACCEPTED

    def test_a_stop_on_a_send_held_for_review_closes_it_and_resume_sends_nothing(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, voice = Scripted(), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        held = held_for_review(dispatcher)

        stopped = dispatcher.opt_out("sms", "(734) 555-0100", region="US")

        assert [dispatch.id for dispatch in stopped] == [held.id]
        assert dispatcher.get(held.id).status is Status.CANCELLED
        for sent in (True, False):
            with pytest.raises(ValueError, match="cancelled, not in review"):
                dispatcher.resume(held.id, sent=sent)
        clock.advance(timedelta(hours=3))
        dispatcher.run_due()
        assert (sms.calls, voice.calls) == ([], [])

    def test_resume_never_sends_to_an_opted_out_point(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, voice = Scripted(), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        held = held_for_review(dispatcher)
        # Opted out of voice, which the dispatch never used: the review resends
        # on sms, and the escalation passes over voice.
        dispatcher.opt_out("voice", VOICE.address)

        dispatcher.resume(held.id, sent=False)
        clock.advance(timedelta(hours=3))
        dispatcher.run_due()

        assert len(sms.calls) == 1
        assert voice.calls == []


class TestEveryOptOutSource:
    def test_an_opt_out_in_a_batch_survives_a_fallback_that_cannot_run(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms = Scripted(ConfigurationError("the sms adapter has no sender number"))
        email = Email()
        dispatcher = dispatcher_for(store, clock, email, sms)
        contact = ALICE.model_copy(update={"preferences": Preferences(channels=["email", "sms"])})
        bounced = dispatcher.send(contact, NOTICE)
        provider_id = bounced.attempts[-1].provider_id
        other = "bob@example.com"
        batch = [
            DeliveryEvent(kind=EventKind.FAILED, provider_id=provider_id, detail="bounce"),
            DeliveryEvent(kind=EventKind.OPTED_OUT, channel="email", address=other),
            DeliveryEvent(kind=EventKind.OPTED_OUT, channel="email", address=EMAIL.address),
        ]

        record_events(dispatcher, batch)
        record_events(dispatcher, batch)  # a redelivery changes nothing and fails nothing

        assert store.opted_out([("email", other), ("email", EMAIL.address)]) == {
            ("email", other),
            ("email", EMAIL.address),
        }
        settled = dispatcher.get(bounced.id)
        assert settled.status is Status.CANCELLED

    def test_a_fallback_that_cannot_run_leaves_its_dispatch_due(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms = Scripted(ConfigurationError("the sms adapter has no sender number"))
        email = Email()
        dispatcher = dispatcher_for(store, clock, email, sms)
        contact = ALICE.model_copy(update={"preferences": Preferences(channels=["email", "sms"])})
        bounced = dispatcher.send(contact, NOTICE)
        provider_id = bounced.attempts[-1].provider_id

        record_events(dispatcher, [DeliveryEvent(kind=EventKind.FAILED, provider_id=provider_id)])

        [due] = store.due(clock.now())
        assert due.id == bounced.id
        assert due.status is Status.SCHEDULED
        dispatcher.run_due()
        assert [address for address, _ in sms.calls] == [SMS.address, SMS.address]

    @pytest.mark.parametrize(
        ("channel", "address", "region", "stored"),
        [
            (" SMS ", "(734) 555-0100", "US", ("sms", "+17345550100")),
            ("sms", "tel:+1-734-555-0100", None, ("sms", "+17345550100")),
            ("Voice", "734.555.0100", "US", ("voice", "+17345550100")),
            ("email", "mailto:Alice@Example.com", None, ("email", "alice@example.com")),
            ("EMAIL", " ALICE@example.COM ", None, ("email", "alice@example.com")),
        ],
    )
    def test_opt_out_reads_addresses_as_points_do(
        self,
        store: Store,
        clock: ManualClock,
        channel: str,
        address: str,
        region: str | None,
        stored: tuple[str, str],
    ) -> None:
        dispatcher = dispatcher_for(store, clock, Scripted(), VoiceDrop(), Email())

        dispatcher.opt_out(channel, address, region=region)

        assert store.opted_out([stored]) == {stored}
        dispatcher.opt_in(channel, address, region=region)
        assert store.opted_out([stored]) == set()

    @pytest.mark.parametrize(
        ("channel", "address", "why"),
        [
            ("sms", "734 555 0100", "no country code"),
            ("sms", "+1 555", "not a valid phone number"),
            ("email", "alice at example", "not an email address"),
            ("s m s", "+17345550100", "not a channel name"),
        ],
    )
    def test_an_opt_out_that_could_never_match_is_refused(
        self, store: Store, clock: ManualClock, channel: str, address: str, why: str
    ) -> None:
        dispatcher = dispatcher_for(store, clock, Scripted())

        with pytest.raises(ValueError, match=why):
            dispatcher.opt_out(channel, address)

    def test_a_replayed_start_does_not_undo_a_later_stop(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms = Scripted()
        dispatcher = dispatcher_for(store, clock, sms, Email())
        dispatcher.send(ALICE, QUESTION)

        def reply(kind: EventKind, message_id: str) -> DeliveryEvent:
            return DeliveryEvent(
                kind=kind, channel="sms", address=SMS.address, inbound_id=message_id
            )

        record_events(dispatcher, [reply(EventKind.OPTED_OUT, "SM1")])
        record_events(dispatcher, [reply(EventKind.OPTED_IN, "SM2")])
        record_events(dispatcher, [reply(EventKind.OPTED_OUT, "SM3")])
        record_events(dispatcher, [reply(EventKind.OPTED_IN, "SM2")])  # captured and replayed

        assert store.opted_out([("sms", SMS.address)]) == {("sms", SMS.address)}


class TestEarlyAndLateEvents:
    def test_a_failure_reported_before_the_id_is_saved_still_falls_back(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher: Dispatcher
        early: list[str] = []

        def report_before_returning() -> None:
            # The provider's callback races our own write of its id.
            failure = DeliveryEvent(
                kind=EventKind.FAILED,
                provider_id="primary-sms-1",
                channel="sms",
                address=SMS.address,
                detail="undelivered, Twilio error 30003",
            )
            with pytest.raises(UnknownDispatch):
                dispatcher.record(failure)
            early.append("recorded")
            return

        sms, voice = Scripted(report_before_returning), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)

        dispatch = dispatcher.send(ALICE, NOTICE)

        assert early == ["recorded"]
        assert [attempt.outcome for attempt in dispatch.attempts] == [
            Outcome.FAILED,
            Outcome.ACCEPTED,
        ]
        assert [address for address, _ in voice.calls] == [VOICE.address]

    def test_a_failure_reported_twice_falls_back_once(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, voice = Scripted(), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        dispatch = dispatcher.send(ALICE, NOTICE)
        failure = DeliveryEvent(kind=EventKind.FAILED, provider_id="primary-sms-1")

        dispatcher.record(failure)
        dispatcher.record(failure)

        assert len(voice.calls) == 1
        assert dispatcher.get(dispatch.id).attempts[0].outcome is Outcome.FAILED


class TestThroughTheWebhookApp:
    """The same promises through signed Twilio callbacks, as a provider delivers them."""

    TOKEN = "twilio-auth-token-for-consent-tests"

    def post(self, client: TestClient, path: str, form: dict[str, str]) -> int:
        signature = RequestValidator(self.TOKEN).compute_signature(f"http://testserver{path}", form)
        response = client.post(
            path,
            content=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
        return response.status_code

    def test_a_stop_reply_cancels_both_live_dispatches_and_neither_escalates(
        self, store: Store, clock: ManualClock
    ) -> None:
        sms, voice = Scripted(), VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        client = TestClient(create_app(dispatcher, twilio_auth_token=self.TOKEN))
        first = dispatcher.send(ALICE, QUESTION)
        second = dispatcher.send(ALICE, QUESTION.model_copy(update={"body": "And Friday?"}))

        stop = {"MessageSid": "SM1", "From": SMS.address, "To": "+15005550006", "Body": "Stop."}
        assert self.post(client, "/twilio/inbound", stop) == 200
        clock.advance(timedelta(hours=3))
        dispatcher.run_due()

        assert voice.calls == []
        assert {dispatcher.get(d.id).status for d in (first, second)} == {Status.CANCELLED}

    def test_a_replayed_start_from_before_a_stop_changes_nothing(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher = dispatcher_for(store, clock, Scripted())
        client = TestClient(create_app(dispatcher, twilio_auth_token=self.TOKEN))
        start = {"MessageSid": "SM1", "From": SMS.address, "To": "+15005550006", "Body": "START"}
        stop = {"MessageSid": "SM2", "From": SMS.address, "To": "+15005550006", "Body": "STOP"}

        for form in (start, stop, start):
            assert self.post(client, "/twilio/inbound", form) == 200

        assert store.opted_out([("sms", SMS.address)]) == {("sms", SMS.address)}

    def test_a_status_callback_before_the_id_is_saved_falls_back(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher: Dispatcher
        client: TestClient
        undelivered = {
            "MessageSid": "primary-sms-1",
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
            "To": SMS.address,
        }
        sms = Scripted(lambda: (self.post(client, "/twilio/status", undelivered), None)[1])
        voice = VoiceDrop()
        dispatcher = dispatcher_for(store, clock, sms, voice)
        client = TestClient(create_app(dispatcher, twilio_auth_token=self.TOKEN))

        dispatch = dispatcher.send(ALICE, NOTICE)

        assert [a.outcome for a in dispatch.attempts] == [Outcome.FAILED, Outcome.ACCEPTED]
        assert [address for address, _ in voice.calls] == [VOICE.address]


async def test_the_async_path_checks_consent_before_every_try_too(
    store: Store, clock: ManualClock
) -> None:
    dispatcher: Dispatcher
    primary = Scripted(lambda: (dispatcher.opt_out("sms", SMS.address), transient())[1])
    backup = BackupSMS()
    dispatcher = dispatcher_for(store, clock, primary, backup)

    dispatch = await dispatcher.asend(ALICE, NOTICE)

    assert (len(primary.calls), backup.calls) == (1, [])
    assert dispatch.status is Status.CANCELLED


class _StoreDownForConsent(MemoryStore):
    """A store whose opt-out registry cannot be read once the send is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        if self.down:
            raise ConnectionError("the database went away")
        return super().opted_out(points)

    def save(self, dispatch: Dispatch) -> None:
        super().save(dispatch)
        # The attempt is written as "sending" before the provider is called.
        self.down = any(attempt.outcome is Outcome.SENDING for attempt in dispatch.attempts)


def test_a_store_that_cannot_say_whether_the_person_opted_out_stops_the_send(
    clock: ManualClock,
) -> None:
    store = _StoreDownForConsent()
    sms, backup = Scripted(), BackupSMS()
    dispatcher = dispatcher_for(store, clock, sms, backup)

    with pytest.raises(ConnectionError, match="went away"):
        dispatcher.send(ALICE, NOTICE)

    assert (sms.calls, backup.calls) == ([], [])
    # Nothing was sent, so nothing waits for a person: the step is simply due again.
    [stored] = list(store.dispatches())
    assert (stored.status, stored.attempts) == (Status.SCHEDULED, [])
    assert stored.next_action_at == clock.now()


def test_an_opt_out_learnt_from_a_provider_during_a_retry_stops_it_and_moves_on(
    store: Store, clock: ManualClock
) -> None:
    dispatcher: Dispatcher
    # Another send found the number opted out at the provider (Twilio's 21610):
    # that marks the point, and this dispatch, which never heard a STOP, moves on.
    blamed = DeliveryEvent(
        kind=EventKind.FAILED, channel="sms", address=SMS.address, point_opted_out=True
    )
    sms = Scripted(lambda: (dispatcher.record_consent(blamed), transient())[1])
    voice = VoiceDrop()
    dispatcher = dispatcher_for(store, clock, sms, voice)

    dispatch = dispatcher.send(ALICE, NOTICE)

    assert len(sms.calls) == 1
    assert [address for address, _ in voice.calls] == [VOICE.address]
    assert [attempt.outcome for attempt in dispatch.attempts] == [
        Outcome.FAILED,
        Outcome.ACCEPTED,
    ]
    assert dispatch.attempts[0].error == (
        f"withheld after 1 tries: sms {SMS.address} has opted out"
    )


async def test_arecord_events_also_records_every_opt_out_first(
    store: Store, clock: ManualClock
) -> None:
    sms = Scripted(ConfigurationError("the sms adapter has no sender number"))
    dispatcher = dispatcher_for(store, clock, Email(), sms)
    contact = ALICE.model_copy(update={"preferences": Preferences(channels=["email", "sms"])})
    bounced = await dispatcher.asend(contact, NOTICE)
    batch = [
        DeliveryEvent(kind=EventKind.FAILED, provider_id=bounced.attempts[-1].provider_id),
        DeliveryEvent(kind=EventKind.OPTED_OUT, channel="email", address="bob@example.com"),
    ]

    matched = await arecord_events(dispatcher, batch)

    assert matched == []  # the bounce's fallback could not run; it is logged, not returned
    assert store.opted_out([("email", "bob@example.com")]) == {("email", "bob@example.com")}
    assert [dispatch.id for dispatch in store.due(clock.now())] == [bounced.id]


def test_an_opt_in_without_an_address_lifts_the_opt_out_of_the_point_it_matched(
    store: Store, clock: ManualClock
) -> None:
    dispatcher = dispatcher_for(store, clock, Scripted())
    dispatch = dispatcher.send(ALICE, NOTICE)
    dispatcher.opt_out("sms", SMS.address)

    settled = dispatcher.record(DeliveryEvent(kind=EventKind.OPTED_IN, dispatch_id=dispatch.id))

    assert store.opted_out([("sms", SMS.address)]) == set()
    assert settled.decisions[-1].reason == f"the person opted back in on sms {SMS.address}"


class _SavedMeanwhile(MemoryStore):
    """The send saves the provider's id between the event's first look-up and its keeping."""

    def __init__(self) -> None:
        super().__init__()
        self.first_look = True

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        if self.first_look:
            self.first_look = False
            return None
        return super().find_by_provider_id(provider_id)


def test_an_event_kept_while_its_id_was_being_saved_is_applied_at_once() -> None:
    store, clock = _SavedMeanwhile(), ManualClock(MON_0900)
    sms, voice = Scripted(), VoiceDrop()
    dispatcher = dispatcher_for(store, clock, sms, voice)
    dispatch = dispatcher.send(ALICE, NOTICE)
    failure = DeliveryEvent(kind=EventKind.FAILED, provider_id="primary-sms-1")

    settled = dispatcher.record(failure)

    assert settled.id == dispatch.id
    assert [address for address, _ in voice.calls] == [VOICE.address]
    assert store.held_events("primary-sms-1") == []


class _FailingSaves(MemoryStore):
    """One save fails after ``fail_after`` more succeed, as a store mid-restart would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after: int | None = None
        self.failing_opt_outs: set[str] = set()

    def save(self, dispatch: Dispatch) -> None:
        if self.fail_after == 0:
            self.fail_after = None
            raise ConnectionError("the database went away")
        if self.fail_after is not None:
            self.fail_after -= 1
        super().save(dispatch)

    def add_opt_out(self, channel: str, address: str) -> None:
        if address in self.failing_opt_outs:
            raise ConnectionError("the database went away")
        super().add_opt_out(channel, address)


class TestCutShort:
    """What a crash or a store failure in the middle leaves behind is always due or in review."""

    def test_a_fallback_that_dies_mid_call_is_found_again(self, clock: ManualClock) -> None:
        store = MemoryStore()
        sms = Scripted()
        dispatcher = dispatcher_for(store, clock, sms, VoiceDrop(KeyboardInterrupt()))
        sent = dispatcher.send(ALICE, NOTICE)
        assert sent.status is Status.ACCEPTED

        with pytest.raises(KeyboardInterrupt):
            dispatcher.record(DeliveryEvent(kind=EventKind.FAILED, provider_id="primary-sms-1"))
        clock.advance(timedelta(minutes=11))

        [due] = store.due(clock.now())
        assert dispatcher.advance(due).status is Status.REVIEW

    def test_a_fallback_cut_short_by_the_store_is_finished_by_a_worker(
        self, clock: ManualClock
    ) -> None:
        store = _FailingSaves()
        voice = VoiceDrop()
        dispatcher = dispatcher_for(store, clock, Scripted(), voice)
        sent = dispatcher.send(ALICE, NOTICE)
        failure = DeliveryEvent(kind=EventKind.FAILED, provider_id="primary-sms-1")

        store.fail_after = 1  # the failure is saved; the fallback's first save fails
        with pytest.raises(ConnectionError):
            dispatcher.record(failure)
        dispatcher.record(failure)  # the provider's redelivery changes nothing

        assert voice.calls == []
        assert [dispatch.id for dispatch in dispatcher.run_due()] == [sent.id]
        assert [address for address, _ in voice.calls] == [VOICE.address]

    def test_a_start_redelivered_after_a_failure_does_not_undo_a_later_stop(
        self, clock: ManualClock
    ) -> None:
        store = _FailingSaves()
        dispatcher = dispatcher_for(store, clock, Scripted())
        dispatcher.send(ALICE, QUESTION)
        start = DeliveryEvent(
            kind=EventKind.OPTED_IN, channel="sms", address=SMS.address, inbound_id="SM1"
        )
        dispatcher.opt_out("sms", SMS.address)

        store.fail_after = 0
        with pytest.raises(ConnectionError):
            record_events(dispatcher, [start])  # answered 503: Twilio may send it again
        record_events(
            dispatcher,
            [
                DeliveryEvent(
                    kind=EventKind.OPTED_OUT, channel="sms", address=SMS.address, inbound_id="SM2"
                )
            ],
        )
        record_events(dispatcher, [start])

        assert store.opted_out([("sms", SMS.address)]) == {("sms", SMS.address)}

    def test_every_opt_out_of_a_batch_is_tried_when_one_cannot_be_written(
        self, clock: ManualClock
    ) -> None:
        store = _FailingSaves()
        store.failing_opt_outs = {"bob@example.com"}
        dispatcher = dispatcher_for(store, clock, Scripted(), Email())
        batch = [
            DeliveryEvent(kind=EventKind.OPTED_OUT, channel="email", address=address)
            for address in ("bob@example.com", "carol@example.com", "dan@example.com")
        ]

        with pytest.raises(ConnectionError):
            record_events(dispatcher, batch)

        asked = [("email", "carol@example.com"), ("email", "dan@example.com")]
        assert store.opted_out(asked) == set(asked)
