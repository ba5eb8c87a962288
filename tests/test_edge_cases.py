"""Edges where a person could be contacted wrongly or a dispatch could end wrongly.

Each test pins one rule at a boundary: retries stop at quiet hours, consent is
matched however an address is written, an event during a send does not send
twice, a late STOP does not rewrite history, and stores cope with data they
did not expect.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    DeliveryEvent,
    Dispatcher,
    FallbackStrategy,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Outcome,
    Preferences,
    Receipt,
    RetryPolicy,
    SendContext,
    SQLStore,
    Status,
    Store,
    TransientError,
    Window,
)

# Monday 2 March 2026, 20:59:50 in Detroit (UTC-5): ten seconds before quiet hours.
BEFORE_QUIET = datetime(2026, 3, 3, 1, 59, 50, tzinfo=UTC)
QUIET_ENDS = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # Tuesday 08:00 in Detroit
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 in Detroit


def alice(*channels: str, email: str = "alice@example.com") -> Contact:
    """Alice in Detroit, quiet from 21:00 to 08:00, reachable on the channels named."""
    points = {
        "sms": ContactPoint(channel="sms", address="+17345550100"),
        "email": ContactPoint(channel="email", address=email),
    }
    return Contact(
        id="alice",
        timezone="America/Detroit",
        points=[points[channel] for channel in channels],
        preferences=Preferences(
            channels=list(channels), quiet_hours=[Window(start="21:00", end="08:00")]
        ),
    )


class TestRetriesRespectQuietHours:
    @pytest.mark.parametrize("hint", [20, None])
    def test_a_retry_that_would_land_in_quiet_hours_waits_for_morning(
        self, hint: float | None
    ) -> None:
        clock = ManualClock(BEFORE_QUIET)
        outbox = Outbox()
        outbox.reject("+17345550100", TransientError("busy", retry_after=hint), times=1)
        strategy = FallbackStrategy(retry=RetryPolicy(initial=timedelta(seconds=15)))
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, strategy=strategy)

        dispatch = dispatcher.send(alice("sms"), Message(body="Your order shipped."))

        assert outbox.sent == []
        assert dispatch.status is Status.SCHEDULED
        assert dispatch.next_action_at == QUIET_ENDS
        assert dispatch.attempts == []
        assert any("closes before the next try after 1 try" in line for line in dispatch.timeline())

        clock.set(QUIET_ENDS)
        [after] = dispatcher.run_due()
        assert [item.address for item in outbox.sent] == ["+17345550100"]
        assert after.attempts[0].at == QUIET_ENDS

    async def test_the_async_path_stops_at_quiet_hours_too(self) -> None:
        clock = ManualClock(BEFORE_QUIET)
        outbox = Outbox()
        outbox.reject("+17345550100", TransientError("busy", retry_after=20), times=1)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        dispatch = await dispatcher.asend(alice("sms"), Message(body="Your order shipped."))

        assert outbox.sent == []
        assert dispatch.next_action_at == QUIET_ENDS

    def test_a_retry_past_deliver_by_is_not_made_and_the_point_has_failed(self) -> None:
        clock = ManualClock(T0)
        outbox = Outbox()
        outbox.reject("+17345550100", TransientError("busy", retry_after=20), times=1)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        message = Message(body="Table ready", deliver_by=T0 + timedelta(seconds=10))

        dispatch = dispatcher.send(alice("sms"), message)

        assert outbox.sent == []
        assert dispatch.status is Status.FAILED
        assert [(a.channel, a.outcome, a.tries) for a in dispatch.attempts] == [
            ("sms", Outcome.FAILED, 1)
        ]


class TestConsentIsMatchedByPerson:
    @pytest.mark.parametrize(
        ("channel", "written"),
        [
            ("email", "ALICE@example.com"),
            ("email", " alice@EXAMPLE.com "),
            ("sms", "+1 734-555-0100"),
            ("sms", "+1 (734) 555 0100"),
        ],
    )
    def test_an_opt_out_holds_however_the_address_is_written(
        self, store: Store, channel: str, written: str
    ) -> None:
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0), store=store)
        dispatcher.opt_out(channel, written)

        dispatch = dispatcher.send(alice(channel, email="Alice@example.com"), Message(body="Hello"))

        assert outbox.sent == []
        assert dispatch.status is Status.SUPPRESSED

    def test_opting_back_in_lifts_it_whatever_the_spelling(self, store: Store) -> None:
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0), store=store)
        dispatcher.opt_out("email", "alice@example.com")
        dispatcher.opt_in("email", "ALICE@EXAMPLE.COM")

        dispatcher.send(alice("email"), Message(body="Hello"))

        assert [item.address for item in outbox.sent] == ["alice@example.com"]

    def test_a_reply_matches_the_dispatch_whatever_the_case(self, store: Store) -> None:
        dispatcher = Dispatcher(adapters=[Outbox()], clock=ManualClock(T0), store=store)
        question = Message(body="Coming on Thursday?", expects_response=True)
        dispatch = dispatcher.send(alice("email", email="Alice@example.com"), question)

        after = dispatcher.record(
            DeliveryEvent(kind="responded", channel="email", address="alice@example.com")
        )

        assert after.id == dispatch.id
        assert after.status is Status.RESPONDED


class Bounced:
    """An email adapter whose bounce report arrives while the send is still under way."""

    name = "slow-email"
    channel = "email"

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        assert self.dispatcher is not None
        self.dispatcher.record(
            DeliveryEvent(kind="failed", dispatch_id=ctx.dispatch_id, detail="550 unknown")
        )
        return Receipt(provider_id="email-1")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return self.send(point, content, ctx)


class TestEventsAgainstHistory:
    def test_a_bounce_during_the_send_falls_back_once_after_it(self) -> None:
        adapter = Bounced()
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[adapter, outbox], clock=ManualClock(T0))
        adapter.dispatcher = dispatcher

        dispatch = dispatcher.send(alice("email", "sms"), Message(body="Hello"))

        assert [(a.channel, a.outcome, a.error) for a in dispatch.attempts] == [
            ("email", Outcome.FAILED, "550 unknown"),
            ("sms", Outcome.ACCEPTED, None),
        ]
        assert dispatch.attempts[0].provider_id == "email-1"
        assert len(outbox.to("+17345550100")) == 1

    def test_a_stop_after_an_answer_keeps_the_answer(self) -> None:
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0))
        dispatch = dispatcher.send(alice("sms"), Message(body="Coming?", expects_response=True))
        sent = outbox.sent[0].provider_id
        dispatcher.record(DeliveryEvent(kind="responded", provider_id=sent))

        after = dispatcher.record(DeliveryEvent(kind="opted_out", provider_id=sent))

        assert after.status is Status.RESPONDED
        assert dispatcher.store.opted_out([("sms", "+17345550100")])
        assert dispatcher.get(dispatch.id).status is Status.RESPONDED

    def test_silence_until_deliver_by_is_unanswered_not_expired(self) -> None:
        clock = ManualClock(T0)
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock)
        message = Message(
            body="Coming?",
            expects_response=True,
            response_wait=timedelta(hours=4),
            deliver_by=T0 + timedelta(hours=2),
        )
        dispatcher.send(alice("sms", "email"), message)
        clock.advance(timedelta(hours=4))

        [after] = dispatcher.run_due()

        assert after.status is Status.UNANSWERED
        assert [(a.channel, a.outcome) for a in after.attempts] == [("sms", Outcome.UNANSWERED)]


class TestSettings:
    def test_in_flight_shorter_than_the_retries_is_refused(self) -> None:
        policy = RetryPolicy(tries=3, maximum=timedelta(minutes=6))
        with pytest.raises(ValueError, match="in_flight"):
            Dispatcher(adapters=[Outbox()], strategy=FallbackStrategy(retry=policy))

    def test_a_dispatch_in_review_can_be_cancelled(self) -> None:
        class Dies:
            name = "dies"
            channel = "*"

            def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
                raise KeyboardInterrupt

            async def asend(
                self, point: ContactPoint, content: Content, ctx: SendContext
            ) -> Receipt:
                raise KeyboardInterrupt

        clock = ManualClock(T0)
        store = MemoryStore()
        with pytest.raises(KeyboardInterrupt):
            Dispatcher(adapters=[Dies()], clock=clock, store=store).send(
                alice("sms"), Message(body="Hello")
            )
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock, store=store)
        clock.advance(timedelta(minutes=11))
        [held] = dispatcher.run_due()
        assert held.status is Status.REVIEW

        assert dispatcher.cancel(held.id).status is Status.CANCELLED

    def test_the_outbox_can_fail_like_a_misconfigured_adapter(self) -> None:
        outbox = Outbox()
        outbox.reject("+17345550100", ConfigurationError)
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0))

        with pytest.raises(ConfigurationError, match="outbox told to reject"):
            dispatcher.send(alice("sms"), Message(body="Hello"))


class TestStoresCopeWithTheirData:
    def test_a_long_address_on_a_channel_of_your_own_is_stored(self, store: Store) -> None:
        endpoint = "https://push.example.com/" + "x" * 600
        person = Contact(
            id="p",
            points=[ContactPoint(channel="push", address=endpoint)],
            preferences=Preferences(channels=["push"]),
        )
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0), store=store)

        dispatch = dispatcher.send(person, Message(body="Hello"))

        assert dispatch.status is Status.ACCEPTED
        assert dispatcher.get(dispatch.id).attempts[0].address == endpoint

    def test_a_stored_row_that_no_longer_validates_does_not_block_the_rest(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        url = f"sqlite:///{tmp_path / 'poison.db'}"
        clock = ManualClock(datetime(2026, 3, 3, 3, 0, tzinfo=UTC))  # 22:00 in Detroit
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock, store=SQLStore(url))
        people = [alice("sms"), alice("email").model_copy(update={"id": "bob"})]
        ids = [dispatcher.send(person, Message(body="Hi")).id for person in people]
        engine = create_engine(url)
        with engine.begin() as connection:
            body = json.loads(
                connection.execute(
                    text("SELECT body FROM multichannel_dispatches WHERE id = :id"), {"id": ids[0]}
                ).scalar_one()
            )
            body["contact"]["timezone"] = "Nowhere/Gone"
            connection.execute(
                text("UPDATE multichannel_dispatches SET body = :body WHERE id = :id"),
                {"body": json.dumps(body), "id": ids[0]},
            )
        engine.dispose()
        clock.set(QUIET_ENDS)

        with caplog.at_level(logging.ERROR, logger="multichannel.store"):
            performed = dispatcher.store.claim_due(
                clock.now(), lease=timedelta(minutes=2), owner="w"
            )

        assert [dispatch.id for dispatch in performed] == [ids[1]]
        assert any(ids[0] in record.getMessage() for record in caplog.records)
        assert dispatcher.store.claim_due(clock.now(), lease=timedelta(minutes=2), owner="x") == []

    def test_an_in_memory_sqlite_url_with_a_driver_is_shared_by_threads(self) -> None:
        store = SQLStore("sqlite+pysqlite:///:memory:")
        outbox = Outbox()
        dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(T0), store=store)

        results = list(dispatcher.send_many([alice("sms")], Message(body="Hi"), concurrency=2))

        assert [result.error for result in results] == [None]
        assert len(outbox.sent) == 1

    def test_an_unreachable_database_is_a_configuration_error(self) -> None:
        with pytest.raises(ConfigurationError, match="cannot reach the database"):
            SQLStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
