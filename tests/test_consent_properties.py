"""Random interleavings of sends, retries, failures, STOP/START, cancels and restarts.

Hypothesis draws a script of what happens, in order, and what each provider
call does (accept, fail for a moment, refuse, report an opt-out, crash the
process) and what arrives *during* a call (a STOP on the webhook, an
`opt_out()`, a cancel). A ledger written outside the library keeps the truth:
when each provider call began, and when each opt-out and cancel took effect.
Whatever the order, on every store:

- no provider call begins on a point that was opted out before it began;
- no provider call begins on a dispatch that was cancelled before it began;
- every opt-out (and opt-in) is what the store holds at the end;
- nothing is stranded: a dispatch cut short (a crash, a cancel mid-call) is
  due again or held for review, never left "sending" and never due.

A call already under way when a STOP arrives is the one window that remains:
the ledger counts such a call as begun before the STOP, as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _postgres import postgres_schema
from multichannel import (
    BaseAdapter,
    Contact,
    ContactPoint,
    Content,
    DeliveryEvent,
    Dispatcher,
    EventKind,
    FallbackStrategy,
    ManualClock,
    MemoryStore,
    Message,
    OptedOut,
    Outcome,
    PermanentError,
    Preferences,
    Receipt,
    RetryPolicy,
    SendContext,
    SQLStore,
    Status,
    Store,
    TransientError,
    UnknownDispatch,
    Worker,
)
from multichannel.dispatch import WAITING
from multichannel.webhooks import record_events

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
NUMBER = "+17345550100"
POINTS = {
    "sms": ContactPoint(channel="sms", address=NUMBER),
    "voice": ContactPoint(channel="voice", address=NUMBER),
    "email": ContactPoint(channel="email", address="alice@example.com"),
}
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=list(POINTS.values()),
    preferences=Preferences(channels=["sms", "voice", "email"]),
)
RETRY = RetryPolicy(tries=3, initial=timedelta(seconds=2), jitter=timedelta(0))

# What one top-level step or one in-call interruption does.
CONSENT_OPS = st.sampled_from(
    [
        ("stop_webhook", "sms"),
        ("start_webhook", "sms"),
        ("opt_out", "sms"),
        ("opt_out", "voice"),
        ("opt_out", "email"),
        ("opt_in", "sms"),
        ("opt_in", "voice"),
        ("opt_in", "email"),
        ("cancel", ""),
    ]
)
STEPS = st.one_of(
    CONSENT_OPS,
    st.sampled_from(
        [
            ("send", ""),
            ("send_question", ""),
            ("later", "minutes"),
            ("later", "hours"),
            ("restart", ""),
            ("bounce", ""),
            ("answer", ""),
        ]
    ),
)
CALLS = st.sampled_from(["ok", "ok", "transient", "permanent", "opted_out", "crash"])


@dataclass
class Ledger:
    """What really happened, in order, as the test saw it."""

    tick: Iterator[int] = field(default_factory=itertools.count)
    opted_out: dict[str, bool] = field(default_factory=dict)
    out_since: dict[str, int] = field(default_factory=dict)
    cancelled_at: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def call(self, channel: str, dispatch_id: str) -> None:
        now = next(self.tick)
        if self.opted_out.get(channel):
            self.violations.append(
                f"call {now} on {channel} after its opt-out at {self.out_since[channel]}"
            )
        if dispatch_id in self.cancelled_at:
            self.violations.append(
                f"call {now} on dispatch {dispatch_id} "
                f"cancelled at {self.cancelled_at[dispatch_id]}"
            )

    def consent(self, channel: str, out: bool) -> None:
        self.opted_out[channel] = out
        if out:
            self.out_since[channel] = next(self.tick)


class Crash(BaseException):
    """The process dies while a provider is being called."""


class World:
    """One store, a clock, a ledger and the adapters that consult the script."""

    def __init__(
        self,
        store: Store,
        calls: list[str],
        interrupts: list[tuple[str, str]],
        interrupted: Literal["review", "resend"],
    ) -> None:
        self.store = store
        self.interrupted: Literal["review", "resend"] = interrupted
        self.clock = ManualClock(START)
        self.ledger = Ledger()
        self.calls = calls
        self.interrupts = interrupts
        self.dispatch_ids: list[str] = []
        self.inbound = itertools.count()
        self.adapters = [_adapter(channel, self) for channel in POINTS]
        self.dispatcher = self.fresh_dispatcher()

    def fresh_dispatcher(self) -> Dispatcher:
        return Dispatcher(
            adapters=self.adapters,
            store=self.store,
            clock=self.clock,
            strategy=FallbackStrategy(retry=RETRY, depth=3),
            interrupted=self.interrupted,
        )

    def provider_call(self, channel: str, dispatch_id: str) -> Receipt:
        self.ledger.call(channel, dispatch_id)
        if dispatch_id not in self.dispatch_ids:
            self.dispatch_ids.append(dispatch_id)
        behaviour = self.calls.pop(0) if self.calls else "ok"
        if self.interrupts:
            # Something arrives while the request is on the wire.
            self.run(*self.interrupts.pop(0))
        if behaviour == "transient":
            raise TransientError("503", retry_after=timedelta(seconds=1))
        if behaviour == "permanent":
            raise PermanentError("no such address")
        if behaviour == "opted_out":
            self.ledger.consent(channel, True)
            raise OptedOut("the provider says this address opted out")
        if behaviour == "crash":
            raise Crash
        return Receipt(provider_id=f"{channel}-{next(self.ledger.tick)}")

    def run(self, action: str, arg: str) -> None:
        try:
            self._run(action, arg)
        except Crash:
            self.dispatcher = self.fresh_dispatcher()
        self.note_cancels()
        self.check_nothing_is_stranded()

    def check_nothing_is_stranded(self) -> None:
        """Whatever was cut short is due again or waits for a person; nothing is forgotten."""
        for dispatch in self.store.dispatches():
            current = dispatch.current
            if dispatch.status in WAITING and dispatch.next_action_at is None:
                self.ledger.violations.append(
                    f"{dispatch.id} is {dispatch.status} with nothing due"
                )
            if (
                current is not None
                and current.outcome is Outcome.SENDING
                and dispatch.status in (Status.ACCEPTED, Status.DELIVERED)
            ):
                self.ledger.violations.append(f"{dispatch.id} is sending but never due")

    def _run(self, action: str, arg: str) -> None:
        dispatcher = self.dispatcher
        if action in ("send", "send_question"):
            message = Message(
                body=f"message {len(self.dispatch_ids)}",
                expects_response=action == "send_question",
                response_wait=timedelta(hours=1),
            )
            sent = dispatcher.send(ALICE, message)
            if sent.id not in self.dispatch_ids:
                self.dispatch_ids.append(sent.id)
        elif action == "later":
            self.clock.advance(timedelta(minutes=11) if arg == "minutes" else timedelta(hours=2))
            # A worker, as a deployment runs one, each time a new one (a restart).
            Worker(dispatcher, lease=timedelta(minutes=15)).run_once()
        elif action == "restart":
            self.dispatcher = self.fresh_dispatcher()
        elif action == "stop_webhook":
            self.ledger.consent(arg, True)
            event = self._reply(EventKind.OPTED_OUT)
            record_events(dispatcher, [event])
        elif action == "start_webhook":
            self.ledger.consent(arg, False)
            record_events(dispatcher, [self._reply(EventKind.OPTED_IN)])
        elif action == "opt_out":
            self.ledger.consent(arg, True)
            dispatcher.opt_out(arg, POINTS[arg].address)
        elif action == "opt_in":
            self.ledger.consent(arg, False)
            dispatcher.opt_in(arg, POINTS[arg].address)
        elif action == "cancel" and self.dispatch_ids:
            dispatch = dispatcher.cancel(self.dispatch_ids[-1])
            if dispatch.status is Status.CANCELLED:
                self.ledger.cancelled_at.setdefault(dispatch.id, next(self.ledger.tick))
        elif action in ("bounce", "answer") and self.dispatch_ids:
            latest = dispatcher.get(self.dispatch_ids[-1]).current
            if latest is not None and latest.provider_id is not None:
                kind = EventKind.FAILED if action == "bounce" else EventKind.RESPONDED
                with suppress(UnknownDispatch):
                    dispatcher.record(DeliveryEvent(kind=kind, provider_id=latest.provider_id))

    def _reply(self, kind: EventKind) -> DeliveryEvent:
        return DeliveryEvent(
            kind=kind, channel="sms", address=NUMBER, inbound_id=f"SM{next(self.inbound)}"
        )

    def note_cancels(self) -> None:
        for dispatch_id in self.dispatch_ids:
            if dispatch_id in self.ledger.cancelled_at:
                continue
            stored = self.store.get(dispatch_id)
            if stored is not None and stored.status is Status.CANCELLED:
                self.ledger.cancelled_at[dispatch_id] = next(self.ledger.tick)


def _adapter(channel: str, world: World) -> BaseAdapter:
    class Provider(BaseAdapter):
        name = f"{channel}-provider"

        def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
            return world.provider_call(point.channel, ctx.dispatch_id)

    Provider.channel = channel  # type: ignore[misc]
    return Provider()


@contextmanager
def fresh_store(kind: str) -> Iterator[Store]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        with TemporaryDirectory() as folder:
            sql = SQLStore(f"sqlite:///{Path(folder) / 'store.db'}")
            try:
                yield sql
            finally:
                sql.close()
    else:
        with postgres_schema() as schema:
            yield schema.store()


EXAMPLES = {"memory": 150, "sqlite": 40, "postgres": 25}


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_no_try_begins_after_an_opt_out_or_a_cancel(kind: str) -> None:
    @settings(max_examples=EXAMPLES[kind])
    @given(
        steps=st.lists(STEPS, min_size=1, max_size=14),
        calls=st.lists(CALLS, max_size=20),
        interrupts=st.lists(st.one_of(st.none(), CONSENT_OPS), max_size=10),
        interrupted=st.sampled_from(["review", "resend"]),
    )
    def interleaving(
        steps: list[tuple[str, str]],
        calls: list[str],
        interrupts: list[tuple[str, str] | None],
        interrupted: Literal["review", "resend"],
    ) -> None:
        with fresh_store(kind) as store:
            world = World(store, calls, [op or ("none", "") for op in interrupts], interrupted)
            for step in steps:
                world.run(*step)
            world.clock.advance(timedelta(days=1))
            world.run("later", "hours")

            assert world.ledger.violations == []
            for channel, out in world.ledger.opted_out.items():
                point = (channel, POINTS[channel].address)
                assert (point in store.opted_out([point])) is out, channel

    interleaving()
