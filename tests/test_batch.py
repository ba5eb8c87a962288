"""send_many and asend_many: bounded concurrency, streamed results, lazy input, isolated errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator

import pytest

from multichannel import (
    BatchResult,
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    Dispatch,
    Dispatcher,
    IdempotencyConflict,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Preferences,
    Receipt,
    SendContext,
    Status,
    Window,
)

NEWS = Message(body="Our opening hours change next week.")


def member(number: int) -> Contact:
    return Contact(
        id=f"member-{number}",
        timezone="America/Detroit",
        points=[ContactPoint(channel="email", address=f"member{number}@example.com")],
        preferences=Preferences(channels=["email"]),
    )


class Members:
    """A generator of contacts that remembers how far it has been read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pulled = 0

    def __iter__(self) -> Iterator[Contact]:
        for number in range(self.count):
            self.pulled += 1
            yield member(number)

    async def __aiter__(self) -> AsyncIterator[Contact]:
        for contact in self:
            yield contact


class Gauge:
    """An email adapter that measures how many sends are in flight at once.

    The first ``wave`` sends block until all of them are in flight together, so
    reaching the limit is certain rather than a matter of luck.
    """

    name = "gauge"
    channel = "email"

    def __init__(self, wave: int) -> None:
        self.wave = wave
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(wave, timeout=30)
        self._full = asyncio.Event()

    def _enter(self) -> bool:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self.calls <= self.wave

    def _leave(self) -> Receipt:
        with self._lock:
            self.in_flight -= 1
            return Receipt(provider_id=f"gauge-{self.calls}")

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if self._enter():
            self._barrier.wait()
        return self._leave()

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if self._enter():
            if self.calls == self.wave:
                self._full.set()
            await self._full.wait()
        return self._leave()


class RefusesOne:
    """An email adapter that is misconfigured for exactly one address."""

    name = "refuses-one"
    channel = "email"

    def __init__(self, address: str) -> None:
        self.address = address

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if point.address == self.address:
            raise ConfigurationError("no sender domain configured for this address")
        return Receipt(provider_id=f"ok-{point.address}")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return self.send(point, content, ctx)


class Stalls:
    """An email adapter whose first send is accepted and whose later sends never finish."""

    name = "stalls"
    channel = "email"

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = 0
        self._never = asyncio.Event()

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        raise NotImplementedError("only used asynchronously")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls += 1
        if self.calls > 1:
            try:
                await self._never.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return Receipt(provider_id=f"stalls-{self.calls}")


class TestSendMany:
    def test_a_thousand_contacts_from_a_generator_give_a_thousand_results(
        self, clock: ManualClock
    ) -> None:
        gauge = Gauge(wave=8)
        members = Members(1000)
        dispatcher = Dispatcher(adapters=[gauge], clock=clock)
        progress: list[BatchResult] = []
        backlog: list[int] = []

        results: list[BatchResult] = []
        for result in dispatcher.send_many(members, NEWS, concurrency=8, progress=progress.append):
            backlog.append(members.pulled - len(results))
            results.append(result)

        assert len(results) == 1000
        assert all(result.ok and result.error is None for result in results)
        assert {result.contact.id for result in results} == {f"member-{n}" for n in range(1000)}
        assert all(
            result.dispatch is not None and result.dispatch.status is Status.ACCEPTED
            for result in results
        )
        assert gauge.calls == 1000
        assert gauge.peak == 8
        assert progress == results
        # Never more contacts read than sends in flight plus the one being handed over.
        assert backlog[0] <= 8
        assert max(backlog) <= 8

    def test_the_contacts_are_read_lazily(self, clock: ManualClock, outbox: Outbox) -> None:
        members = Members(500)
        results = Dispatcher(adapters=[outbox], clock=clock).send_many(members, NEWS, concurrency=4)

        assert members.pulled == 0
        next(results)
        assert members.pulled <= 4
        assert sum(1 for _ in results) == 499
        assert members.pulled == 500

    def test_the_contacts_are_read_in_the_callers_thread_only(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        readers: set[str] = set()

        def contacts() -> Iterator[Contact]:
            for number in range(50):
                readers.add(threading.current_thread().name)
                yield member(number)

        results = Dispatcher(adapters=[outbox], clock=clock).send_many(contacts(), NEWS)

        assert sum(result.ok for result in results) == 50
        assert readers == {threading.current_thread().name}

    def test_closing_the_results_early_lets_the_sends_in_hand_end_and_starts_no_more(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        members = Members(100)
        results = Dispatcher(adapters=[outbox], clock=clock).send_many(members, NEWS, concurrency=4)
        next(results)

        results.close()

        assert members.pulled <= 5
        assert len(outbox.sent) == members.pulled
        names = {thread.name for thread in threading.enumerate() if thread.is_alive()}
        assert "multichannel-send" not in names

    def test_one_contacts_failure_does_not_stop_the_rest(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)
        keyed = NEWS.model_copy(update={"key": "news-week-10"})
        dispatcher.send(member(3), keyed.model_copy(update={"body": "An older text"}))

        results = list(dispatcher.send_many(Members(20), keyed, concurrency=4))

        failed = [result for result in results if not result.ok]
        assert [result.contact.id for result in failed] == ["member-3"]
        assert isinstance(failed[0].error, IdempotencyConflict)
        assert failed[0].dispatch is None
        assert sum(result.ok for result in results) == 19

    def test_a_configuration_error_for_one_address_is_reported_in_its_result(
        self, clock: ManualClock
    ) -> None:
        adapter = RefusesOne("member7@example.com")
        dispatcher = Dispatcher(adapters=[adapter], clock=clock)
        seen: list[BatchResult] = []

        results = list(dispatcher.send_many(Members(12), NEWS, concurrency=3, progress=seen.append))

        assert len(results) == 12
        [failed] = [result for result in results if result.error is not None]
        assert failed.contact.id == "member-7"
        assert isinstance(failed.error, ConfigurationError)
        assert len(seen) == 12

    def test_concurrency_below_one_is_rejected_at_once(self, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock)

        with pytest.raises(ValueError, match="concurrency must be at least 1"):
            dispatcher.send_many(Members(1), NEWS, concurrency=0)

    def test_no_contacts_give_no_results(self, clock: ManualClock, outbox: Outbox) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        assert list(dispatcher.send_many([], NEWS)) == []


class CountingStore(MemoryStore):
    """A memory store that counts how it was asked to create dispatches."""

    def __init__(self, *, batches_fail: bool = False) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.singles = 0
        self.batches_fail = batches_fail

    def create_many(self, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
        chosen = list(dispatches)
        self.batches.append(len(chosen))
        if self.batches_fail:
            raise RuntimeError("the batch could not be written")
        self._in_batch = True
        try:
            return super().create_many(chosen)
        finally:
            self._in_batch = False

    def create(self, dispatch: Dispatch) -> Dispatch:
        if not getattr(self, "_in_batch", False):
            self.singles += 1
        return super().create(dispatch)


def night_member(number: int) -> Contact:
    """A member whose only channel is quiet at the clock's hour (10:00 in Detroit)."""
    return member(number).model_copy(
        update={
            "preferences": Preferences(
                channels=["email"], quiet_hours=[Window(start="08:00", end="20:00")]
            )
        }
    )


class TestSendManyForLater:
    def test_steps_for_later_are_stored_together_and_sends_one_by_one(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        store = CountingStore()
        contacts = [night_member(n) if n % 2 else member(n) for n in range(20)]
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)

        results = list(dispatcher.send_many(contacts, NEWS, concurrency=8))

        statuses = {
            result.contact.id: result.dispatch.status for result in results if result.dispatch
        }
        assert all(result.ok for result in results)
        assert {statuses[f"member-{n}"] for n in range(1, 20, 2)} == {Status.SCHEDULED}
        assert {statuses[f"member-{n}"] for n in range(0, 20, 2)} == {Status.ACCEPTED}
        assert sum(store.batches) == 10
        assert len(store.batches) < 10
        assert store.singles == 10
        assert len(outbox.sent) == 10
        stored = store.get(results[0].dispatch.id) if results[0].dispatch else None
        assert stored is not None

    def test_a_step_for_later_reads_as_if_sent_alone(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        alone = Dispatcher(adapters=[outbox], clock=clock).send(night_member(1), NEWS)
        batch = Dispatcher(adapters=[outbox], clock=clock, store=CountingStore())
        [result] = list(batch.send_many([night_member(1)], NEWS))

        assert result.dispatch is not None
        assert result.dispatch.timeline() == alone.timeline()
        assert result.dispatch.next_action_at == alone.next_action_at
        assert batch.get(result.dispatch.id).timeline() == alone.timeline()

    def test_a_key_used_twice_in_one_chunk_gives_one_dispatch(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        keyed = NEWS.model_copy(update={"key": "news-week-10"})
        store = CountingStore()
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)

        results = list(dispatcher.send_many([night_member(1), night_member(1)], keyed))

        ids = {result.dispatch.id for result in results if result.dispatch}
        assert len(ids) == 1
        assert len(list(store.dispatches())) == 1

    def test_a_key_reused_for_another_message_fails_only_that_contact(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        keyed = NEWS.model_copy(update={"key": "news-week-10"})
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=CountingStore())
        dispatcher.send(night_member(3), keyed.model_copy(update={"body": "An older text"}))

        results = list(dispatcher.send_many([night_member(n) for n in range(6)], keyed))

        failed = [result for result in results if not result.ok]
        assert [result.contact.id for result in failed] == ["member-3"]
        assert isinstance(failed[0].error, IdempotencyConflict)

    def test_when_storing_together_fails_each_is_stored_alone(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        store = CountingStore(batches_fail=True)
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)

        results = list(dispatcher.send_many([night_member(n) for n in range(5)], NEWS))

        assert all(result.ok for result in results)
        assert store.singles == 5
        assert len(list(store.dispatches())) == 5


class ThreadNoting(Outbox):
    """An outbox that notes the thread each send ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.threads.add(threading.current_thread().name)
        return super().send(point, content, ctx)


class WaitingStore(MemoryStore):
    """A memory store that says it waits on I/O, as a database would."""

    blocking = True


class TestWhereSendsRun:
    def test_with_nothing_waiting_on_io_sends_run_in_the_callers_thread(
        self, clock: ManualClock
    ) -> None:
        outbox = ThreadNoting()
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        results = list(dispatcher.send_many(Members(40), NEWS, concurrency=8))

        assert all(result.ok for result in results)
        assert [result.contact.id for result in results] == [f"member-{n}" for n in range(40)]
        assert outbox.threads == {threading.current_thread().name}

    async def test_an_adapter_that_never_waits_sends_on_the_event_loop_itself(
        self, clock: ManualClock
    ) -> None:
        outbox = ThreadNoting()
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        results = [result async for result in dispatcher.asend_many(Members(20), NEWS)]

        assert all(result.ok for result in results)
        assert outbox.threads == {threading.current_thread().name}

    def test_a_store_that_waits_on_io_gets_threads(self, clock: ManualClock) -> None:
        outbox = ThreadNoting()
        dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=WaitingStore())

        results = list(dispatcher.send_many(Members(40), NEWS, concurrency=8))

        assert all(result.ok for result in results)
        assert outbox.threads == {"multichannel-send"}

    def test_an_adapter_that_may_wait_on_io_gets_threads(self, clock: ManualClock) -> None:
        outbox = ThreadNoting()
        gauge = Gauge(wave=1)
        dispatcher = Dispatcher(adapters=[outbox, gauge], clock=clock)

        results = list(dispatcher.send_many(Members(10), NEWS, concurrency=4))

        assert all(result.ok for result in results)
        assert dispatcher.registry.blocking
        assert not Dispatcher(adapters=[outbox]).registry.blocking


class TestAsendMany:
    async def test_an_async_generator_is_sent_with_bounded_concurrency(
        self, clock: ManualClock
    ) -> None:
        gauge = Gauge(wave=8)
        members = Members(300)
        dispatcher = Dispatcher(adapters=[gauge], clock=clock)
        progress: list[BatchResult] = []
        backlog: list[int] = []

        results: list[BatchResult] = []
        async for result in dispatcher.asend_many(
            members, NEWS, concurrency=8, progress=progress.append
        ):
            backlog.append(members.pulled - len(results))
            results.append(result)

        assert len(results) == 300
        assert all(result.ok for result in results)
        assert gauge.peak == 8
        assert progress == results
        assert max(backlog) <= 8

    async def test_a_plain_iterable_is_accepted_too(
        self, clock: ManualClock, outbox: Outbox
    ) -> None:
        dispatcher = Dispatcher(adapters=[outbox], clock=clock)

        results = [result async for result in dispatcher.asend_many(iter(Members(10)), NEWS)]

        assert sorted(result.contact.id for result in results) == sorted(
            f"member-{n}" for n in range(10)
        )
        assert len(outbox.sent) == 10

    async def test_one_failure_does_not_stop_the_rest(self, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[RefusesOne("member2@example.com")], clock=clock)

        results = [
            result async for result in dispatcher.asend_many(Members(6), NEWS, concurrency=2)
        ]

        assert len(results) == 6
        [failed] = [result for result in results if not result.ok]
        assert failed.contact.id == "member-2"
        assert isinstance(failed.error, ConfigurationError)

    async def test_concurrency_below_one_is_rejected_at_once(self, clock: ManualClock) -> None:
        dispatcher = Dispatcher(adapters=[Outbox()], clock=clock)

        with pytest.raises(ValueError, match="concurrency must be at least 1"):
            dispatcher.asend_many(Members(1), NEWS, concurrency=0)

    async def test_closing_the_results_early_cancels_the_sends_in_flight(
        self, clock: ManualClock
    ) -> None:
        stalls = Stalls()
        members = Members(100)
        results = Dispatcher(adapters=[stalls], clock=clock).asend_many(
            members, NEWS, concurrency=4
        )
        assert isinstance(results, AsyncGenerator)

        first = await anext(results)
        await results.aclose()

        assert first.ok
        assert members.pulled == 4
        assert stalls.cancelled == 3
