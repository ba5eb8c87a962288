"""The worker: claiming under a lease, taking over from a dead worker, interrupted sends."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import pytest

from multichannel import (
    BaseAdapter,
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    Dispatcher,
    ManualClock,
    MemoryStore,
    Message,
    Outcome,
    Preferences,
    Receipt,
    SendContext,
    SQLStore,
    Status,
    Store,
    UnknownDispatch,
    Window,
    Worker,
)

MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Monday 22:00 in Detroit: quiet
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # quiet hours end
LEASE = timedelta(minutes=2)
IN_FLIGHT = timedelta(minutes=10)
NOTICE = Message(body="Your parcel arrives today.")
QUESTION = Message(
    body="Can you confirm tomorrow's 10:00 appointment?",
    expects_response=True,
    response_wait=timedelta(hours=2),
)


class ProcessDied(BaseException):
    """Stands for the process ending in the middle of a provider call."""


class Counting(BaseAdapter):
    """Accepts on every channel and counts sends per dispatch; ``during`` runs inside a send."""

    name = "counting"
    channel = "*"

    def __init__(self, during: Callable[[SendContext], object] | None = None) -> None:
        self.sends: Counter[str] = Counter()
        self.during = during
        self._lock = threading.Lock()

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if self.during is not None:
            self.during(ctx)
        with self._lock:
            self.sends[ctx.dispatch_id] += 1
            return Receipt(provider_id=f"counting-{sum(self.sends.values())}")


def dying_once() -> Callable[[SendContext], None]:
    """A ``during`` hook that kills the first send and lets the rest through."""
    calls = Counter[str]()

    def during(ctx: SendContext) -> None:
        calls["sends"] += 1
        if calls["sends"] == 1:
            raise ProcessDied

    return during


def person(number: int) -> Contact:
    return Contact(
        id=f"c{number}",
        timezone="America/Detroit",
        points=[
            ContactPoint(channel="sms", address=f"+1734555{number:04}"),
            ContactPoint(channel="email", address=f"c{number}@example.com"),
        ],
        preferences=Preferences(
            channels=["sms", "email"], quiet_hours=[Window(start="21:00", end="08:00")]
        ),
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        sql = SQLStore(f"sqlite:///{tmp_path / 'worker.db'}")
        yield sql
        sql.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MON_2200)


def seed(
    dispatcher: Dispatcher, clock: ManualClock, count: int, message: Message = NOTICE
) -> list[str]:
    """``count`` sends made in quiet hours, all due at 08:00; the clock is left at 08:00."""
    clock.set(MON_2200)
    ids = [dispatcher.send(person(n), message).id for n in range(count)]
    clock.set(TUE_0800)
    return ids


def statuses(store: Store) -> Counter[Status]:
    return Counter(dispatch.status for dispatch in store.dispatches())


class TestRunOnce:
    def test_run_once_performs_the_due_steps_and_returns_how_many(
        self, store: Store, clock: ManualClock
    ) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids = seed(dispatcher, clock, 3)

        performed = Worker(dispatcher).run_once()

        assert performed == 3
        assert adapter.sends == dict.fromkeys(ids, 1)
        assert statuses(store) == {Status.ACCEPTED: 3}
        assert Worker(dispatcher).run_once() == 0

    def test_nothing_due_is_zero(self, store: Store, clock: ManualClock) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        worker = Worker(dispatcher)
        assert worker.run_once() == 0

        dispatcher.send(person(1), NOTICE)  # quiet hours: due at 08:00, not now

        assert worker.run_once() == 0
        assert adapter.sends == {}

    def test_batch_bounds_one_run(self, store: Store, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[Counting()], clock=clock, store=store)
        seed(dispatcher, clock, 5)
        worker = Worker(dispatcher, batch=2)

        assert [worker.run_once() for _ in range(4)] == [2, 2, 1, 0]

    def test_a_step_settled_while_its_batch_ran_is_not_performed(
        self, store: Store, clock: ManualClock
    ) -> None:
        ids: list[str] = []

        def cancel_the_other(ctx: SendContext) -> None:
            # A person cancels the other dispatch while this send is under way.
            [other] = [dispatch_id for dispatch_id in ids if dispatch_id != ctx.dispatch_id]
            dispatcher.cancel(other, "the appointment was called off")

        adapter = Counting(during=cancel_the_other)
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids += seed(dispatcher, clock, 2)

        performed = Worker(dispatcher, batch=2).run_once()

        assert performed == 1
        assert sum(adapter.sends.values()) == 1
        assert statuses(store) == {Status.ACCEPTED: 1, Status.CANCELLED: 1}

    def test_a_step_whose_lease_ran_out_mid_batch_is_left_for_the_next_claim(
        self, store: Store, clock: ManualClock
    ) -> None:
        adapter = Counting(during=lambda ctx: clock.advance(LEASE))
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        seed(dispatcher, clock, 2)
        worker = Worker(dispatcher, lease=LEASE, batch=2)

        first = worker.run_once()
        left = [dispatch.id for dispatch in store.due(clock.now())]
        second = worker.run_once()

        assert (first, second) == (1, 1)
        assert len(left) == 1
        assert adapter.sends == dict.fromkeys(adapter.sends, 1)
        assert statuses(store) == {Status.ACCEPTED: 2}

    def test_a_step_that_raises_releases_the_rest_of_its_batch(
        self, store: Store, clock: ManualClock
    ) -> None:
        calls = Counter[str]()

        def misconfigured_once(ctx: SendContext) -> None:
            calls["sends"] += 1
            if calls["sends"] == 1:
                raise ConfigurationError("the API key is missing")

        dispatcher = Dispatcher(
            adapters=[Counting(during=misconfigured_once)], clock=clock, store=store
        )
        ids = seed(dispatcher, clock, 3)

        with pytest.raises(ConfigurationError, match="API key"):
            Worker(dispatcher, batch=3, name="w1").run_once()
        free = store.claim_due(clock.now(), lease=LEASE, owner="w2")

        # The two steps not reached are released, and the misconfigured one is
        # due again too: nothing was sent, so it must not be skipped.
        assert {dispatch.id for dispatch in free} == set(ids)


class TestTwoWorkers:
    def test_two_workers_on_one_store_never_perform_the_same_step(
        self, store: Store, clock: ManualClock
    ) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids = seed(dispatcher, clock, 60)
        workers = [Worker(dispatcher, batch=3, name=f"w{n}") for n in (1, 2)]
        start = threading.Barrier(2)
        performed: dict[str, int] = {}

        def run(worker: Worker) -> None:
            start.wait()
            performed[worker.name] = worker.run(until_idle=True)

        threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert sorted(performed) == ["w1", "w2"]
        assert sum(performed.values()) == 60
        assert adapter.sends == dict.fromkeys(ids, 1)
        assert statuses(store) == {Status.ACCEPTED: 60}

    def test_a_step_left_claimed_by_a_dead_worker_is_taken_over_when_its_lease_ends(
        self, store: Store, clock: ManualClock
    ) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        store.claim_due(clock.now(), lease=LEASE, owner="dead-worker")
        worker = Worker(dispatcher, lease=LEASE)

        while_held = worker.run_once()
        clock.advance(LEASE)
        at_the_last_instant = worker.run_once()
        clock.advance(timedelta(microseconds=1))
        after = worker.run_once()

        assert (while_held, at_the_last_instant, after) == (0, 0, 1)
        assert adapter.sends == {dispatch_id: 1}
        assert dispatcher.get(dispatch_id).status is Status.ACCEPTED


def die_mid_send(
    store: Store,
    clock: ManualClock,
    message: Message = NOTICE,
    interrupted: Literal["review", "resend"] = "review",
) -> tuple[Dispatcher, Counting, str]:
    """A dispatch whose send was cut off by the process dying during the provider call."""
    adapter = Counting(during=dying_once())
    dispatcher = Dispatcher(
        adapters=[adapter], clock=clock, store=store, in_flight=IN_FLIGHT, interrupted=interrupted
    )
    [dispatch_id] = seed(dispatcher, clock, 1, message)
    with pytest.raises(ProcessDied):
        Worker(dispatcher, lease=LEASE).run_once()
    return dispatcher, adapter, dispatch_id


class TestInterruptedSends:
    def test_the_send_is_recorded_as_sending_before_the_provider_is_called(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock)
        worker = Worker(dispatcher, lease=LEASE)

        left = dispatcher.get(dispatch_id)
        before_in_flight = worker.run_once()

        assert left.status is Status.SCHEDULED
        assert left.current is not None
        assert left.current.outcome is Outcome.SENDING
        assert left.next_action_at == TUE_0800 + IN_FLIGHT
        assert before_in_flight == 0
        assert adapter.sends == {}

    def test_review_is_the_default_and_holds_the_dispatch_without_sending(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock)
        worker = Worker(dispatcher, lease=LEASE)

        clock.advance(IN_FLIGHT)
        performed = worker.run_once()
        held = dispatcher.get(dispatch_id)
        clock.advance(timedelta(days=1))

        assert Dispatcher().interrupted == "review"
        assert performed == 1
        assert held.status is Status.REVIEW
        assert held.next_action_at is None
        assert held.current is not None
        assert held.current.outcome is Outcome.SENDING
        assert "held for review" in held.decisions[-1].reason
        assert worker.run_once() == 0
        assert adapter.sends == {}
        assert [d.id for d in store.dispatches(Status.REVIEW)] == [dispatch_id]

    def test_resend_drops_the_interrupted_attempt_and_sends_again(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock, interrupted="resend")

        clock.advance(IN_FLIGHT)
        performed = Worker(dispatcher, lease=LEASE).run_once()
        sent = dispatcher.get(dispatch_id)

        assert performed == 1
        assert sent.status is Status.ACCEPTED
        assert [(a.channel, a.outcome) for a in sent.attempts] == [("sms", Outcome.ACCEPTED)]
        assert any("interrupted; sending it again" in d.reason for d in sent.decisions)
        assert adapter.sends == {dispatch_id: 1}

    def test_resume_sent_counts_the_interrupted_send_as_accepted(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock)
        clock.advance(IN_FLIGHT)
        Worker(dispatcher).run_once()

        settled = dispatcher.resume(dispatch_id, sent=True)

        assert settled.status is Status.ACCEPTED
        assert settled.current is not None
        assert settled.current.outcome is Outcome.ACCEPTED
        assert settled.current.accepted_at == clock.now()
        assert adapter.sends == {}
        assert dispatcher.get(dispatch_id) == settled

    def test_resume_sent_on_a_question_waits_for_the_answer(
        self, store: Store, clock: ManualClock
    ) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock, QUESTION)
        clock.advance(IN_FLIGHT)
        Worker(dispatcher).run_once()

        settled = dispatcher.resume(dispatch_id, sent=True)

        assert settled.status is Status.AWAITING_RESPONSE
        assert settled.next_action_at == clock.now() + timedelta(hours=2)
        assert adapter.sends == {}

    def test_resume_not_sent_sends_it_again(self, store: Store, clock: ManualClock) -> None:
        dispatcher, adapter, dispatch_id = die_mid_send(store, clock)
        clock.advance(IN_FLIGHT)
        Worker(dispatcher).run_once()

        settled = dispatcher.resume(dispatch_id, sent=False)

        assert settled.status is Status.ACCEPTED
        assert [(a.channel, a.outcome) for a in settled.attempts] == [("sms", Outcome.ACCEPTED)]
        assert any("did not go out" in decision.reason for decision in settled.decisions)
        assert adapter.sends == {dispatch_id: 1}

    async def test_an_interrupted_escalation_is_held_and_aresume_goes_on(
        self, store: Store, clock: ManualClock
    ) -> None:
        calls = Counter[str]()

        def die_on_the_second_send(ctx: SendContext) -> None:
            calls["sends"] += 1
            if calls["sends"] == 2:
                raise ProcessDied

        adapter = Counting(during=die_on_the_second_send)
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store, in_flight=IN_FLIGHT)
        [dispatch_id] = seed(dispatcher, clock, 1, QUESTION)
        worker = Worker(dispatcher)
        assert await worker.arun_once() == 1
        clock.advance(timedelta(hours=2))
        with pytest.raises(ProcessDied):
            await worker.arun_once()
        clock.advance(IN_FLIGHT)
        assert await worker.arun_once() == 1
        held = dispatcher.get(dispatch_id)

        settled = await dispatcher.aresume(dispatch_id, sent=False)

        assert held.status is Status.REVIEW
        assert [(a.channel, a.outcome) for a in held.attempts] == [
            ("sms", Outcome.UNANSWERED),
            ("email", Outcome.SENDING),
        ]
        assert settled.status is Status.AWAITING_RESPONSE
        assert [(a.channel, a.outcome) for a in settled.attempts] == [
            ("sms", Outcome.UNANSWERED),
            ("email", Outcome.ACCEPTED),
        ]
        assert adapter.sends == {dispatch_id: 2}

    def test_resume_needs_a_dispatch_in_review(self, store: Store, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[Counting()], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)

        with pytest.raises(ValueError, match="is scheduled, not in review"):
            dispatcher.resume(dispatch_id, sent=True)
        with pytest.raises(UnknownDispatch):
            dispatcher.resume("nobody", sent=False)


class TestRun:
    def test_run_until_idle_performs_everything_due(self, store: Store, clock: ManualClock) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids = seed(dispatcher, clock, 5)

        performed = Worker(dispatcher, batch=2).run(until_idle=True)

        assert performed == 5
        assert adapter.sends == dict.fromkeys(ids, 1)
        assert clock.now() == TUE_0800

    async def test_arun_until_idle_performs_everything_due(
        self, store: Store, clock: ManualClock
    ) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids = seed(dispatcher, clock, 5)

        performed = await Worker(dispatcher, batch=2).arun(until_idle=True)

        assert performed == 5
        assert adapter.sends == dict.fromkeys(ids, 1)

    async def test_arun_once_performs_the_due_steps(self, store: Store, clock: ManualClock) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        ids = seed(dispatcher, clock, 2)
        worker = Worker(dispatcher)

        assert await worker.arun_once() == 2
        assert await worker.arun_once() == 0
        assert adapter.sends == dict.fromkeys(ids, 1)
        assert statuses(store) == {Status.ACCEPTED: 2}

    def test_run_waits_on_the_clock_until_a_step_is_due_and_stops_when_told(
        self, store: Store, clock: ManualClock
    ) -> None:
        stop = threading.Event()
        adapter = Counting(during=lambda ctx: stop.set())
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        clock.set(TUE_0800 - timedelta(seconds=5))

        performed = Worker(dispatcher, idle=timedelta(seconds=1)).run(stop=stop)

        assert performed == 1
        assert clock.now() == TUE_0800
        assert adapter.sends == {dispatch_id: 1}

    async def test_arun_waits_on_the_clock_until_a_step_is_due_and_stops_when_told(
        self, store: Store, clock: ManualClock
    ) -> None:
        stop = asyncio.Event()
        adapter = Counting(during=lambda ctx: stop.set())
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        clock.set(TUE_0800 - timedelta(seconds=5))

        performed = await Worker(dispatcher, idle=timedelta(seconds=1)).arun(stop=stop)

        assert performed == 1
        assert clock.now() == TUE_0800
        assert adapter.sends == {dispatch_id: 1}

    def test_a_stopped_worker_performs_nothing(self, store: Store, clock: ManualClock) -> None:
        adapter = Counting()
        dispatcher = Dispatcher(adapters=[adapter], clock=clock, store=store)
        seed(dispatcher, clock, 2)
        stop = threading.Event()
        stop.set()

        assert Worker(dispatcher).run(stop=stop) == 0
        assert adapter.sends == {}


class TestSettings:
    @pytest.mark.parametrize(
        ("setting", "value", "message"),
        [
            ("lease", timedelta(0), "lease must be longer than zero"),
            ("lease", timedelta(seconds=-1), "lease must be longer than zero"),
            ("batch", 0, "batch must be at least 1, not 0"),
            ("idle", timedelta(seconds=-1), "idle cannot be negative"),
        ],
    )
    def test_a_bad_setting_raises(self, setting: str, value: object, message: str) -> None:
        dispatcher = Dispatcher()

        with pytest.raises(ValueError, match=message):
            Worker(dispatcher, **{setting: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("setting", "value", "message"),
        [
            ("interrupted", "maybe", "interrupted must be 'review' or 'resend'"),
            ("in_flight", timedelta(0), "in_flight must be longer than zero"),
        ],
    )
    def test_a_bad_interrupted_policy_raises(
        self, setting: str, value: object, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            Dispatcher(**{setting: value})  # type: ignore[arg-type]

    def test_a_store_that_cannot_lease_is_a_configuration_error(self) -> None:
        unleased = SimpleNamespace(release=lambda dispatch_id, owner: None)
        dispatcher = Dispatcher(store=unleased)

        with pytest.raises(ConfigurationError, match=r"cannot lease steps .*claim_due"):
            Worker(dispatcher)

    def test_the_default_name_says_which_process_it_is_and_repr_shows_it(self) -> None:
        worker = Worker(Dispatcher(), lease=LEASE, batch=4)
        named = Worker(Dispatcher(), name="billing-1")

        assert f":{os.getpid()}:" in worker.name
        assert Worker(Dispatcher()).name != worker.name
        assert named.name == "billing-1"
        assert repr(named) == (
            "Worker(name='billing-1', lease=datetime.timedelta(seconds=120), batch=10)"
        )
