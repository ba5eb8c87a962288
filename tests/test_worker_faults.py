"""Workers under faults: a store that drops away, a stop during a retry, sends that take long.

A worker whose database goes away (a restart, ``pg_terminate_backend``, a
failover) logs, waits a little longer each time on the dispatcher's clock, and
carries on once the store answers. Setting ``stop`` (SIGTERM for the command)
ends only the worker's wait between polls: a send already retrying still waits
as long as its provider asked. And ``in_flight`` must outlast what a send can
really take, its adapters' timeouts included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

from _postgres import PostgresSchema, postgres_schema
from multichannel import (
    BaseAdapter,
    Contact,
    ContactPoint,
    Content,
    Dispatch,
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
    TransientError,
    Window,
    Worker,
)

MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Monday 22:00 in Detroit: quiet
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # quiet hours end
NOTICE = Message(body="Your parcel arrives today.")
WAIT = 30.0  # seconds: the longest bounded wait on another thread or process


class RecordingClock(ManualClock):
    """A ManualClock that writes down every wait; ``during_sleep`` runs inside each one."""

    def __init__(self, start: datetime, during_sleep: Callable[[float], object] | None = None):
        super().__init__(start)
        self.sleeps: list[float] = []
        self.during_sleep = during_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.during_sleep is not None:
            self.during_sleep(seconds)
        super().sleep(seconds)


class Provider(BaseAdapter):
    """Serves every channel; busy (with a Retry-After) for the first ``busy`` tries.

    Writes down the clock's time of every try; ``during`` runs inside each.
    """

    name = "provider"
    channel = "*"

    def __init__(
        self,
        clock: ManualClock,
        *,
        busy: int = 0,
        retry_after: timedelta = timedelta(seconds=20),
        during: Callable[[SendContext], object] | None = None,
    ) -> None:
        self.clock = clock
        self.busy = busy
        self.retry_after = retry_after
        self.during = during
        self.tries: list[tuple[str, int, datetime]] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.tries.append((ctx.dispatch_id, ctx.try_number, self.clock.now()))
        if self.during is not None:
            self.during(ctx)
        if len(self.tries) <= self.busy:
            raise TransientError("busy", provider=self.name, retry_after=self.retry_after)
        return Receipt(provider_id=f"provider-{len(self.tries)}")

    def sends(self) -> Counter[str]:
        return Counter(dispatch_id for dispatch_id, _, _ in self.tries)


def person(number: int) -> Contact:
    return Contact(
        id=f"c{number}",
        timezone="America/Detroit",
        points=[ContactPoint(channel="sms", address=f"+1734555{number:04}")],
        preferences=Preferences(channels=["sms"], quiet_hours=[Window(start="21:00", end="08:00")]),
    )


def seed(dispatcher: Dispatcher, clock: ManualClock, count: int) -> list[str]:
    """``count`` sends made in quiet hours, all due at 08:00; the clock is left at 08:00."""
    clock.set(MON_2200)
    ids = [dispatcher.send(person(n), NOTICE).id for n in range(count)]
    clock.set(TUE_0800)
    return ids


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "multichannel.worker" and record.levelno == logging.WARNING
    ]


def reconnect_waits(sleeps: list[float]) -> None:
    """Each wait is between half and all of one that doubles from 1s, never above 30s."""
    for failure, seconds in enumerate(sleeps):
        ceiling = min(30.0, 2.0**failure)
        assert ceiling / 2 <= seconds <= ceiling, (failure, sleeps)


# A store that cannot be reached


def dropped(kind: str) -> Exception:
    """What SQLAlchemy raises when the database is gone, in its three shapes."""
    cause = psycopg.OperationalError("server closed the connection unexpectedly")
    if kind == "operational":
        return OperationalError("SELECT 1", {}, cause)
    if kind == "interface":
        return InterfaceError("SELECT 1", {}, psycopg.InterfaceError("the connection is closed"))
    return DBAPIError("SELECT 1", {}, cause, connection_invalidated=True)


class FlakyStore:
    """A MemoryStore whose calls fail with ``error`` while an outage lasts.

    ``fail(n, first=...)`` starts an outage of ``n`` calls at the next call to
    ``first`` (any method if None); every call in the outage fails.
    """

    def __init__(self, error: Callable[[], Exception] = lambda: dropped("operational")) -> None:
        self._inner = MemoryStore()
        self._error = error
        self._left = 0
        self._first: str | None = None
        self.failed: list[str] = []
        self.called = threading.Event()

    def fail(self, calls: int, *, first: str | None = None) -> None:
        self._left, self._first = calls, first

    def __getattr__(self, method: str) -> Any:
        real = getattr(self._inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.called.set()
            if self._left and self._first in (None, method):
                self._left -= 1
                self._first = None
                self.failed.append(method)
                raise self._error()
            return real(*args, **kwargs)

        return call


class TestStoreOutages:
    @pytest.mark.parametrize(
        ("kind", "why"),
        [
            ("operational", "server closed the connection unexpectedly"),
            ("interface", "the connection is closed"),
            ("invalidated", "server closed the connection unexpectedly"),
        ],
    )
    def test_claims_that_fail_twice_are_waited_out_and_the_due_step_performed(
        self, kind: str, why: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, "multichannel.worker")
        stop = threading.Event()
        clock = RecordingClock(MON_2200)
        provider = Provider(clock, during=lambda ctx: stop.set())
        store = FlakyStore(lambda: dropped(kind))
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        store.fail(2, first="claim_due")

        performed = Worker(dispatcher).run(stop=stop)

        assert performed == 1
        assert store.failed == ["claim_due", "claim_due"]
        assert provider.sends() == {dispatch_id: 1}
        assert dispatcher.get(dispatch_id).status is Status.ACCEPTED
        reconnect_waits(clock.sleeps)
        assert len(clock.sleeps) == 2
        first, second, back = warnings_of(caplog)
        assert first.startswith(f"the store cannot be reached ({why}); trying again in ")
        assert "SELECT" not in first + second, "the statement stays out of the log"
        assert "failure 2" in second
        assert back == "the store answers again after 2 failed tries"

    def test_waits_stop_growing_at_thirty_seconds(self) -> None:
        stop = threading.Event()
        clock = RecordingClock(MON_2200)
        dispatcher = Dispatcher(
            adapters=[Provider(clock, during=lambda ctx: stop.set())],
            clock=clock,
            store=FlakyStore(),
        )
        seed(dispatcher, clock, 1)
        dispatcher.store.fail(9, first="claim_due")  # type: ignore[attr-defined]

        assert Worker(dispatcher).run(stop=stop) == 1
        reconnect_waits(clock.sleeps)
        assert len(clock.sleeps) == 9
        assert all(15 <= seconds <= 30 for seconds in clock.sleeps[5:])

    def test_a_store_lost_in_the_middle_of_a_batch_leaves_its_steps_to_their_leases(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, "multichannel.worker")
        stop = threading.Event()
        clock = RecordingClock(MON_2200)
        provider = Provider(clock, during=lambda ctx: stop.set())
        store = FlakyStore()
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        # Gone between the claim and the read before acting, and for the
        # batch's release after it: nothing was sent, and the step stays leased.
        store.fail(3, first="get")

        performed = Worker(dispatcher, lease=timedelta(minutes=2)).run(stop=stop)

        assert performed == 1
        assert store.failed == ["get", "release_many", "claim_due"]
        assert provider.sends() == {dispatch_id: 1}
        (sent_at,) = [at for _, _, at in provider.tries]
        assert sent_at > TUE_0800 + timedelta(minutes=2), "taken again only after its lease"
        assert any("stay leased to" in line for line in warnings_of(caplog))

    @pytest.mark.parametrize(
        "error",
        [
            ProgrammingError("SELECT body FROM dispatches", {}, Exception("no such column")),
            RuntimeError("a bug in a store of one's own"),
        ],
        ids=["programming", "other"],
    )
    def test_an_error_that_is_not_an_outage_is_raised(self, error: Exception) -> None:
        clock = RecordingClock(MON_2200)
        store = FlakyStore(lambda: error)
        dispatcher = Dispatcher(adapters=[Provider(clock)], clock=clock, store=store)
        seed(dispatcher, clock, 1)
        store.fail(1, first="claim_due")

        with pytest.raises(type(error)):
            Worker(dispatcher).run(stop=threading.Event())
        assert clock.sleeps == []

    def test_run_once_leaves_the_outage_to_its_caller(self) -> None:
        clock = RecordingClock(MON_2200)
        store = FlakyStore()
        dispatcher = Dispatcher(adapters=[Provider(clock)], clock=clock, store=store)
        seed(dispatcher, clock, 1)
        store.fail(1, first="claim_due")

        with pytest.raises(OperationalError):
            Worker(dispatcher).run_once()
        assert Worker(dispatcher).run_once() == 1

    async def test_arun_waits_out_an_outage_too(self) -> None:
        clock = RecordingClock(MON_2200)
        provider = Provider(clock)
        store = FlakyStore(lambda: dropped("invalidated"))
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        store.fail(2, first="claim_due")

        performed = await Worker(dispatcher).arun(until_idle=True)

        assert performed == 1
        assert provider.sends() == {dispatch_id: 1}
        reconnect_waits(clock.sleeps)
        assert len(clock.sleeps) == 2

    def test_a_stop_ends_the_wait_for_a_store_that_is_down_on_the_system_clock(self) -> None:
        stop = threading.Event()
        store = FlakyStore()
        store.fail(1_000_000)
        dispatcher = Dispatcher(adapters=[Outbox()], store=store)
        worker = Worker(dispatcher)
        ended: list[int] = []
        thread = threading.Thread(target=lambda: ended.append(worker.run(stop=stop)), daemon=True)
        thread.start()
        try:
            assert store.called.wait(WAIT)
        finally:
            stop.set()
            thread.join(timeout=WAIT)

        assert not thread.is_alive()
        assert ended == [0]
        assert store.failed


# The same on PostgreSQL: its connections cut by pg_terminate_backend


@pytest.fixture
def pg() -> Iterator[PostgresSchema]:
    """An empty PostgreSQL schema of its own; the test is skipped without a server."""
    with postgres_schema() as schema:
        yield schema


@pytest.mark.parametrize(
    ("pool_pre_ping", "failures"),
    [(False, 3), (True, 2)],
    ids=["connection-lost-in-use", "pre-ping-reconnects"],
)
def test_a_worker_whose_postgres_connections_are_terminated_reconnects_and_goes_on(
    pg: PostgresSchema, caplog: pytest.LogCaptureFixture, pool_pre_ping: bool, failures: int
) -> None:
    caplog.set_level(logging.WARNING, "multichannel.worker")
    application = f"mc-worker-{uuid.uuid4().hex[:12]}"
    engine = create_engine(
        pg.server_url,
        connect_args={
            "options": f"-csearch_path={pg.name}",
            "application_name": application,
            "connect_timeout": 5,
        },
        pool_pre_ping=pool_pre_ping,
    )
    refusals = [0]

    @event.listens_for(engine, "do_connect")
    def server_restarting(*_: object) -> None:
        # The server is coming back up: new connections are refused for a while.
        if refusals[0]:
            refusals[0] -= 1
            raise psycopg.OperationalError("the database system is starting up")

    idling, resume = threading.Event(), threading.Event()

    def first_idle_waits_for_the_test(seconds: float) -> None:
        if not idling.is_set():
            idling.set()
            if not resume.wait(WAIT):
                raise AssertionError("the test never let the worker go on")

    stop = threading.Event()
    clock = RecordingClock(MON_2200, during_sleep=first_idle_waits_for_the_test)
    provider = Provider(clock, during=lambda ctx: stop.set())
    store = SQLStore(engine)
    admin = create_engine(pg.server_url, isolation_level="AUTOCOMMIT")
    try:
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=store)
        [dispatch_id] = seed(dispatcher, clock, 1)
        clock.set(TUE_0800 - timedelta(seconds=30))
        worker = Worker(dispatcher, idle=timedelta(seconds=30))
        ended: list[int] = []
        thread = threading.Thread(target=lambda: ended.append(worker.run(stop=stop)), daemon=True)
        thread.start()
        try:
            assert idling.wait(WAIT), "the worker never went idle"
            with admin.connect() as connection:
                terminated = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": application},
                ).all()
            refusals[0] = 2
        finally:
            resume.set()
            thread.join(timeout=WAIT)
            stop.set()
        assert not thread.is_alive()
        sent = dispatcher.get(dispatch_id)
    finally:
        store.close()
        admin.dispose()

    assert terminated, "the worker had no connection to terminate"
    assert all(ok for (ok,) in terminated)
    assert ended == [1]
    assert provider.sends() == {dispatch_id: 1}
    assert sent.status is Status.ACCEPTED
    idle, *waits = clock.sleeps
    assert idle == 30.0
    assert len(waits) == failures
    reconnect_waits(waits)
    *lost, back = warnings_of(caplog)
    assert len(lost) == failures
    assert all("the store cannot be reached" in line for line in lost)
    assert "the database system is starting up" in lost[-1]
    if not pool_pre_ping:
        assert "terminating connection due to administrator command" in lost[0]
    assert back == f"the store answers again after {failures} failed tries"


# Stopping while a send is retrying


class TestStopDuringRetries:
    def test_a_stop_during_a_retry_wait_still_waits_the_whole_retry_after(self) -> None:
        stop = threading.Event()
        clock = RecordingClock(MON_2200, during_sleep=lambda seconds: stop.set())
        provider = Provider(clock, busy=1, retry_after=timedelta(seconds=20))
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=MemoryStore())
        [dispatch_id] = seed(dispatcher, clock, 1)

        performed = Worker(dispatcher).run(stop=stop)
        sent = dispatcher.get(dispatch_id)

        assert stop.is_set()
        assert performed == 1
        # One wait, the provider's whole Retry-After, and no idle wait after the stop.
        assert clock.sleeps == [20.0]
        assert [(n, at) for _, n, at in provider.tries] == [
            (1, TUE_0800),
            (2, TUE_0800 + timedelta(seconds=20)),
        ]
        assert sent.status is Status.ACCEPTED
        assert sent.current is not None
        assert sent.current.tries == 2

    def test_a_stop_releases_the_steps_of_the_batch_not_yet_begun(self) -> None:
        stop = threading.Event()
        clock = RecordingClock(MON_2200)
        store = MemoryStore()
        provider = Provider(clock, during=lambda ctx: stop.set())
        dispatcher = Dispatcher(adapters=[provider], clock=clock, store=store)
        ids = seed(dispatcher, clock, 3)

        performed = Worker(dispatcher, batch=3, name="w1").run(stop=stop)
        free = store.claim_due(clock.now(), lease=timedelta(minutes=2), owner="w2")

        assert performed == 1
        assert sum(provider.sends().values()) == 1
        assert {dispatch.id for dispatch in free} == set(ids) - set(provider.sends())

    def test_a_stop_ends_the_idle_wait_on_the_system_clock_at_once(self) -> None:
        stop = threading.Event()
        store = FlakyStore()
        dispatcher = Dispatcher(adapters=[Outbox()], store=store)
        worker = Worker(dispatcher, idle=timedelta(hours=1))
        ended: list[int] = []
        thread = threading.Thread(target=lambda: ended.append(worker.run(stop=stop)), daemon=True)
        thread.start()
        try:
            assert store.called.wait(WAIT), "the worker never looked for due steps"
        finally:
            stop.set()
            thread.join(timeout=WAIT)

        assert not thread.is_alive()
        assert ended == [0]

    async def test_a_stop_ends_the_async_idle_wait_on_the_system_clock_at_once(self) -> None:
        stop = asyncio.Event()
        store = FlakyStore()
        dispatcher = Dispatcher(adapters=[Outbox()], store=store)
        worker = Worker(dispatcher, idle=timedelta(hours=1))
        running = asyncio.create_task(worker.arun(stop=stop))
        while not store.called.is_set():
            await asyncio.sleep(0)
        stop.set()

        assert await asyncio.wait_for(running, WAIT) == 0


FLAKY_PROVIDER = """
import json
import os
import time
from datetime import timedelta

from multichannel import BaseAdapter, Receipt, TransientError


class Flaky(BaseAdapter):
    # Busy on the first try, asking for a pause; writes down when each try came.
    name = "flaky-sms"
    channel = "sms"

    def send(self, point, content, ctx):
        with open(os.environ["FLAKY_JOURNAL"], "a") as journal:
            journal.write(json.dumps({"try": ctx.try_number, "at": time.monotonic()}) + "\\n")
        if ctx.try_number == 1:
            pause = timedelta(seconds=float(os.environ["FLAKY_RETRY_AFTER"]))
            raise TransientError("busy", provider=self.name, retry_after=pause)
        return Receipt(provider_id="flaky-1")
"""


def test_sigterm_during_a_retry_wait_lets_the_send_wait_out_its_retry_after(
    tmp_path: Path,
) -> None:
    # The adapter is published the way a plugin is: an entry point on the path.
    plugins = tmp_path / "plugins"
    info = plugins / "flaky_provider-1.0.dist-info"
    info.mkdir(parents=True)
    (plugins / "flaky_provider.py").write_text(FLAKY_PROVIDER, encoding="utf-8")
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: flaky-provider\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[multichannel.adapters]\nflaky-sms = flaky_provider:Flaky\n", encoding="utf-8"
    )
    url = f"sqlite:///{tmp_path / 'dispatch.db'}"
    long_ago = datetime(2001, 1, 8, 12, 0, tzinfo=UTC)
    ann = Contact(id="ann", points=[ContactPoint(channel="sms", address="+17345550100")])
    store = SQLStore(url)
    store.create(
        Dispatch(
            id="d-due",
            contact_id=ann.id,
            contact=ann,
            message=NOTICE,
            created_at=long_ago,
            updated_at=long_ago,
            next_action_at=long_ago,
        )
    )
    store.close()
    journal = tmp_path / "tries.jsonl"
    retry_after = 1.0
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL"))
    }
    env |= {
        "PYTHONPATH": os.pathsep.join([str(plugins), env.get("PYTHONPATH", "")]),
        "FLAKY_JOURNAL": str(journal),
        "FLAKY_RETRY_AFTER": str(retry_after),
    }

    worker = subprocess.Popen(
        [sys.executable, "-m", "multichannel", "worker", "--store", url, "--idle", "1h"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not journal.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # The first try has failed: the worker is in (or entering) its retry wait.
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=WAIT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    tries = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert worker.returncode == 0, err
    assert "stopping after the step under way" in err
    assert out == "performed 1 step\n"
    assert [entry["try"] for entry in tries] == [1, 2]
    assert tries[1]["at"] - tries[0]["at"] >= retry_after, "the retry came before its wait"
    store = SQLStore(url)
    try:
        sent = store.get("d-due")
    finally:
        store.close()
    assert sent is not None
    assert sent.status is Status.ACCEPTED
    assert sent.current is not None
    assert (sent.current.outcome, sent.current.tries) == (Outcome.ACCEPTED, 2)


# in_flight covers the adapters' timeouts


class Slow(BaseAdapter):
    """An adapter whose requests may each take ``timeout`` seconds."""

    channel = "sms"

    def __init__(self, name: str, timeout: float | None) -> None:
        self.name = name  # type: ignore[misc]
        if timeout is not None:
            self.timeout = timeout

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return Receipt(provider_id=None)


class TestInFlightCoversTimeouts:
    def test_a_300s_timeout_with_3_tries_does_not_fit_in_10_minutes(self) -> None:
        policy = RetryPolicy(tries=3)  # waits of up to 30s + 1s of jitter

        with pytest.raises(ValueError, match="in_flight") as refused:
            Dispatcher(
                adapters=[Slow("slow-sms", 300)],
                strategy=FallbackStrategy(retry=policy),
                in_flight=timedelta(minutes=10),
            )

        # 3 x 300s of tries and 2 x 31s of waits: 16 minutes 2 seconds.
        assert str(refused.value).startswith(
            "in_flight (0:10:00) must be longer than one send may take "
            "(0:16:02 on sms: 3 tries of up to 300s on slow-sms and 2 waits of up to 31s)"
        )
        assert Dispatcher(adapters=[Slow("slow-sms", 300)], in_flight=timedelta(minutes=17))

    def test_every_provider_of_a_channel_counts(self) -> None:
        one = [Slow("first", 100)]
        both = [Slow("first", 100), Slow("second", 100)]

        Dispatcher(adapters=one, in_flight=timedelta(minutes=10))
        with pytest.raises(ValueError, match=r"0:12:04 on sms: .* on first, .* on second and 4 w"):
            Dispatcher(adapters=both, in_flight=timedelta(minutes=10))

    def test_an_adapter_without_a_timeout_adds_only_the_waits(self) -> None:
        # 2 waits of up to 31s: no try is counted, as its length is unknown.
        Dispatcher(adapters=[Slow("quick", None)], in_flight=timedelta(seconds=63))
        with pytest.raises(ValueError, match=r"3 tries on quick \(no timeout declared\)"):
            Dispatcher(adapters=[Slow("quick", None)], in_flight=timedelta(seconds=62))

    def test_an_adapter_for_every_channel_is_counted_once(self) -> None:
        # Outbox serves "*": one provider, 2 waits of up to 31s.
        Dispatcher(adapters=[Outbox()], in_flight=timedelta(seconds=63))
        with pytest.raises(ValueError, match=r"0:01:02 on any channel"):
            Dispatcher(adapters=[Outbox()], in_flight=timedelta(seconds=62))

    def test_the_shipped_adapters_say_how_long_a_request_may_take(self) -> None:
        from multichannel.adapters.sendgrid import SendGridEmail
        from multichannel.adapters.smtp import SMTPEmail
        from multichannel.adapters.telnyx import TelnyxFax
        from multichannel.adapters.twilio_sms import TwilioSMS
        from multichannel.adapters.twilio_voice import TwilioVoiceDrop

        sid, number = "AC" + "0" * 32, "+17345550100"
        adapters: list[TwilioSMS | TwilioVoiceDrop | SendGridEmail | SMTPEmail | TelnyxFax] = [
            TwilioSMS(account_sid=sid, auth_token="t", from_number=number, timeout=9),
            TwilioVoiceDrop(account_sid=sid, auth_token="t", from_number=number, timeout=8),
            SendGridEmail(api_key="k", from_email="a@example.com", timeout=7),
            SMTPEmail(host="mail.example.com", from_email="a@example.com", timeout=6),
            TelnyxFax(api_key="k", connection_id="c", from_number=number, timeout=5),
        ]

        assert [adapter.timeout for adapter in adapters] == [9.0, 8.0, 7.0, 6.0, 5.0]
        for adapter in adapters:
            with pytest.raises(AttributeError):
                adapter.timeout = 1  # type: ignore[misc]
        with pytest.raises(ValueError, match=r"0:16:02 on fax: 3 tries of up to 300s on telnyx"):
            Dispatcher(
                adapters=[
                    TelnyxFax(api_key="k", connection_id="c", from_number=number, timeout=300)
                ]
            )
