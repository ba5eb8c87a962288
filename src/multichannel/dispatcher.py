"""The dispatcher: the only part that acts. It asks the strategy, calls adapters and records.

The loop is written once, as generators that yield each adapter call they need
made; `Dispatcher.send` drives them with blocking calls and `Dispatcher.asend`
with awaited ones, so the sync and async paths cannot drift apart. Here are
the public methods and the advancing loop; how dispatches start
(`_engine.starting`), how events and opt-outs are recorded
(`_engine.recording`) and what every part shares (`_engine.loop`) live in
the engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Literal

from multichannel._engine.batch import BatchResult, run_batch, run_batch_async
from multichannel._engine.loop import longest_waits
from multichannel._engine.recording import Recording
from multichannel._engine.send import After, Steps, send_on_point
from multichannel._engine.starting import Starting
from multichannel.adapters.base import Adapter, Registry
from multichannel.clock import Clock, SystemClock
from multichannel.consent import STOPPABLE, consent_point, withheld
from multichannel.contacts import Contact, ContactPoint
from multichannel.dispatch import LIVE, DeliveryEvent, Dispatch, Outcome, Status
from multichannel.errors import UnknownDispatch
from multichannel.messages import Message
from multichannel.store import MemoryStore, Store
from multichannel.strategy import Action, FallbackStrategy

__all__ = ["Dispatcher"]

logger = logging.getLogger("multichannel.dispatcher")


class Dispatcher(Starting, Recording):
    """Delivers messages: asks the strategy what to do, does it, and remembers.

    ``adapters`` are tried in the order given within a channel. ``strategy``
    defaults to `FallbackStrategy()`, ``clock`` to the system clock and
    ``store`` to an in-memory store. A send cut short by a crash is found once
    ``in_flight`` has passed and, by ``interrupted``, held for review (the
    default) or sent again. Raises ConfigurationError for a bad adapter and
    ValueError for a bad setting.
    """

    def __init__(
        self,
        *,
        adapters: Iterable[Adapter] | Registry = (),
        strategy: FallbackStrategy | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        interrupted: Literal["review", "resend"] = "review",
        in_flight: timedelta = timedelta(minutes=10),
    ) -> None:
        if interrupted not in ("review", "resend"):
            raise ValueError(f"interrupted must be 'review' or 'resend', not {interrupted!r}")
        if in_flight <= timedelta(0):
            raise ValueError("in_flight must be longer than zero")
        self.interrupted = interrupted
        self.in_flight = in_flight
        self.registry = adapters if isinstance(adapters, Registry) else Registry(adapters)
        self.strategy = strategy or FallbackStrategy()
        longest, how = longest_waits(self.registry, self.strategy.retry)
        if in_flight <= longest:
            # A send still under way when in_flight ends would be judged crashed
            # by another worker and held for review (or sent twice).
            raise ValueError(
                f"in_flight ({in_flight}) must be longer than one send may take ({how}); "
                "raise in_flight, or lower the tries, the retry waits or the adapters' timeouts"
            )
        self.clock: Clock = clock or SystemClock()
        self.store: Store = store if store is not None else MemoryStore()
        # Dry-run adapters (Outbox(dry_run=True)) mark what they start; a real one never sends it.

    def __repr__(self) -> str:
        return f"Dispatcher(adapters={self.registry!r}, strategy={self.strategy!r})"

    # Public, sync and async twins.

    def send(self, contact: Contact, message: Message) -> Dispatch:
        """Start delivering ``message`` to ``contact`` and return the dispatch.

        Sends at once if the first allowed channel is open, else schedules the
        send. Raises IdempotencyConflict when ``message.key`` was already used
        for a different message, ConfigurationError when an adapter is set up
        wrongly.
        """
        return self._drive(self._start(contact, message))

    async def asend(self, contact: Contact, message: Message) -> Dispatch:
        """The async twin of `send`."""
        return await self._adrive(self._start(contact, message))

    def run_due(self, limit: int | None = None) -> list[Dispatch]:
        """Perform every step whose time has come (a step due at exactly now is due)."""
        due = self.store.due(self.clock.now(), limit)
        return [self.advance(dispatch) for dispatch in due]

    async def arun_due(self, limit: int | None = None) -> list[Dispatch]:
        """The async twin of `run_due`."""
        due = self.store.due(self.clock.now(), limit)
        return [await self.aadvance(dispatch) for dispatch in due]

    def advance(self, dispatch: Dispatch) -> Dispatch:
        """Perform the next step of ``dispatch`` now, e.g. one a worker has claimed.

        Raises ConfigurationError when an adapter is set up wrongly.
        """
        return self._drive(self._advance(dispatch))

    async def aadvance(self, dispatch: Dispatch) -> Dispatch:
        """The async twin of `advance`."""
        return await self._adrive(self._advance(dispatch))

    def record(self, event: DeliveryEvent) -> Dispatch:
        """Apply a provider's report; a failure falls back at once. Safe to repeat.

        Raises UnknownDispatch when the event matches no dispatch.
        """
        return self._drive(self._record(event))

    async def arecord(self, event: DeliveryEvent) -> Dispatch:
        """The async twin of `record`."""
        return await self._adrive(self._record(event))

    def resume(self, dispatch_id: str, *, sent: bool) -> Dispatch:
        """Settle a dispatch held for review: ``sent`` says whether the interrupted send went out.

        With ``sent=True`` the send counts as accepted and the dispatch goes on
        (waiting for an answer, if one is expected); with ``sent=False`` it is
        sent again. Raises UnknownDispatch, or ValueError if it is not in review.
        """
        return self._drive(self._resume(dispatch_id, sent))

    async def aresume(self, dispatch_id: str, *, sent: bool) -> Dispatch:
        """The async twin of `resume`."""
        return await self._adrive(self._resume(dispatch_id, sent))

    def get(self, dispatch_id: str) -> Dispatch:
        """The dispatch with this id; raises UnknownDispatch if there is none."""
        found = self.store.get(dispatch_id)
        if found is None:
            raise UnknownDispatch(f"no dispatch has the id {dispatch_id!r}")
        return found

    def opt_out(self, channel: str, address: str, *, region: str | None = None) -> list[Dispatch]:
        """Never contact ``address`` on ``channel`` again, in any dispatch, until `opt_in`.

        The address is normalised as a `ContactPoint` would be (``region`` reads
        a national phone number). Every dispatch that tried it and can still act
        is cancelled, not chased on another channel; those are returned. Raises
        ValueError when the address could never match a point.
        """
        point = consent_point(channel, address, region=region)
        return self._opt_out(point, received_at=self.clock.now(), detail="asked through opt_out()")

    def opt_in(self, channel: str, address: str, *, region: str | None = None) -> None:
        """Lift an opt-out: the person asked to be reached on ``address`` again.

        Raises ValueError when the address could never match a point.
        """
        self.store.remove_opt_out(*consent_point(channel, address, region=region))

    def record_consent(self, event: DeliveryEvent) -> list[Dispatch]:
        """Record the opt-out an event carries, before and apart from anything else it does.

        An ``opted_out`` event stops every dispatch that tried its address (they
        are returned); a failure blamed on an earlier opt-out only marks the
        address. `record` does this itself; call it first for each event of a
        batch so that no later failure can lose an opt-out.
        """
        return self._record_consent(event)

    def cancel(self, dispatch_id: str, reason: str = "cancelled by the sender") -> Dispatch:
        """Stop a dispatch: one still to send, or accepted and so open to a fallback.

        A dispatch in review may be cancelled too, closing it without saying
        whether its interrupted send went out. A send under way is not tried
        again, nor on its next provider. One already answered, failed,
        expired, suppressed or cancelled is returned unchanged. Raises
        UnknownDispatch.
        """

        def cancelled(dispatch: Dispatch) -> bool:
            if dispatch.status not in STOPPABLE:
                return False
            self._finish(dispatch, Status.CANCELLED, reason)
            return True

        return self._change(self.get(dispatch_id), cancelled)

    def send_many(
        self,
        contacts: Iterable[Contact],
        message: Message,
        *,
        concurrency: int = 32,
        progress: Callable[[BatchResult], None] | None = None,
    ) -> Iterator[BatchResult]:
        """Send ``message`` to each contact, ``concurrency`` at a time, yielding as each ends.

        Contacts are read lazily, so memory stays flat however many there are.
        One contact's failure is reported in its result and never stops the rest.
        Dispatches whose first step is for later (quiet hours) or none are
        stored together, in one write where the store can (`BatchStore`).
        When neither the store nor any adapter waits on I/O (each declares
        ``blocking = False``, as `MemoryStore` and `Outbox` do) the sends are
        made one after another in the caller's thread, where threads would
        only take turns.
        """
        threads = self.registry.blocking or getattr(self.store, "blocking", True)
        prepare = self._preparer(message)
        return run_batch(prepare, contacts, concurrency, progress, threads=bool(threads))

    def asend_many(
        self,
        contacts: Iterable[Contact] | AsyncIterable[Contact],
        message: Message,
        *,
        concurrency: int = 32,
        progress: Callable[[BatchResult], None] | None = None,
    ) -> AsyncIterator[BatchResult]:
        """The async twin of `send_many`; contacts may come from an async iterable."""
        return run_batch_async(self.asend, contacts, message, concurrency, progress)

    # Drivers: the only places that call adapters.

    # The loop, written once.

    def _resume(self, dispatch_id: str, sent: bool) -> Steps[Dispatch]:
        while True:
            dispatch = self.get(dispatch_id)
            current = dispatch.current
            if dispatch.status is not Status.REVIEW or current is None:
                raise ValueError(
                    f"dispatch {dispatch_id} is {dispatch.status.value}, not in review"
                )
            now = self.clock.now()
            where = f"{current.channel} {current.address}"
            if sent:
                current.outcome = Outcome.ACCEPTED
                current.accepted_at = now
                dispatch.note(now, f"reviewed: the interrupted send on {where} went out")
            else:
                dispatch.attempts.pop()
                dispatch.note(now, f"reviewed: the interrupted send on {where} did not go out")
            dispatch.status = Status.SCHEDULED
            dispatch.updated_at = now
            if self._saved(dispatch):
                return (yield from self._advance(dispatch))

    def _advance(
        self,
        dispatch: Dispatch,
        decided: tuple[Action, frozenset[tuple[str, str]]] | None = None,
    ) -> Steps[Dispatch]:
        """Decide and act until the dispatch waits or stops; re-decide whenever a save loses.

        ``decided`` is the first decision when it was made already (for a new
        dispatch, before it was stored), with the opt-outs it read.
        """
        while True:
            # A dry run stays dry: a dispatcher with a real adapter never sends a
            # dispatch created as a dry run, but cancels it, since nobody meant it to go out.
            if dispatch.dry_run and dispatch.status in LIVE and self.registry.sends_for_real:
                self._finish(
                    dispatch,
                    Status.CANCELLED,
                    "cancelled without sending: it was created as a dry run, and a dry run "
                    "is never sent through real providers",
                )
                if self._saved(dispatch):
                    return dispatch
                dispatch = self._reload(dispatch)
                continue
            if dispatch.status not in LIVE:
                # Settled by someone else meanwhile (an answer, a cancel, a review).
                return dispatch
            now = self.clock.now()
            current = dispatch.current
            if current is not None and current.outcome is Outcome.SENDING:
                if dispatch.next_action_at is not None and now < dispatch.next_action_at:
                    # Another call is still within its in_flight time: it is not ours to judge.
                    return dispatch
                where = f"{current.channel} {current.address}"
                if self.interrupted == "review":
                    self._finish(
                        dispatch,
                        Status.REVIEW,
                        f"the send on {where} was interrupted while the provider was being "
                        "called; it may or may not have gone out, so it is held for review",
                    )
                    if self._saved(dispatch):
                        return dispatch
                    dispatch = self._reload(dispatch)
                    continue
                dispatch.attempts.pop()
                dispatch.note(now, f"the send on {where} was interrupted; sending it again")
            elif self._wait_is_over(dispatch, now):
                assert current is not None
                current.outcome = Outcome.UNANSWERED
                dispatch.note(now, f"no answer on {current.channel} {current.address} in time")
            if decided is None:
                opted_out = self._opted_out(dispatch.contact)
                action = self._decide(dispatch, now, opted_out)
            else:
                (action, opted_out), decided = decided, None
            self._log(dispatch, action)
            if action.kind == "send" and action.point is not None:
                dispatch, after = yield from self._send_on(dispatch, action.point, opted_out)
                if after == "reopens":
                    return dispatch
                current = dispatch.current
                # A report may have come before this send saved the provider's id.
                drained = yield from self._drain_held(
                    None if current is None else current.provider_id
                )
                if drained is not None:
                    dispatch = drained
                elif after == "settled":
                    return dispatch
                continue
            self._follow(dispatch, action, now)
            if self._saved(dispatch):
                return dispatch
            dispatch = self._reload(dispatch)

    def _wait_is_over(self, dispatch: Dispatch, now: datetime) -> bool:
        """True when the latest send expected an answer and its wait has run out."""
        current = dispatch.current
        if (
            current is None
            or not dispatch.message.expects_response
            or current.outcome not in (Outcome.ACCEPTED, Outcome.DELIVERED)
        ):
            return False
        return self.strategy.answer_due(dispatch.contact, dispatch.message, current) <= now

    def _send_on(
        self, dispatch: Dispatch, point: ContactPoint, opted_out: frozenset[tuple[str, str]]
    ) -> Steps[tuple[Dispatch, After]]:
        """Send on ``point``; ``opted_out`` is what the decision to send read from the store."""
        contact, message = dispatch.contact, dispatch.message

        def settle(sent: Dispatch) -> bool:
            return self._settle_after_send(sent, opted_out)

        def open_at(at: datetime) -> bool:
            return self.strategy.may_send_at(contact, point, message, at)

        def reopens(at: datetime) -> datetime | None:
            return self.strategy.next_send_at(contact, point, message, at)

        def withheld_now() -> str | None:
            # Read from the store at the last moment, never from the copy in hand.
            stored = self.store.get(dispatch.id)
            return withheld(stored, point, self.store.opted_out([(point.channel, point.address)]))

        return send_on_point(
            dispatch,
            point,
            registry=self.registry,
            store=self.store,
            clock=self.clock,
            in_flight=self.in_flight,
            open_at=open_at,
            reopens=reopens,
            withheld=withheld_now,
            then=settle,
        )

    def _settle_after_send(self, dispatch: Dispatch, opted_out: frozenset[tuple[str, str]]) -> bool:
        """Decide the step after an accepted send, to be saved with it; False if it is a send.

        What the loop would decide next, decided before the save rather than
        after it, so an accepted send costs one save fewer. Once the latest
        attempt is accepted the decision is waiting for an answer or done,
        which no opt-out changes (an opt-out of this point meanwhile cancels
        the dispatch, and this save then loses to it), so the opt-outs read
        for the send serve again.
        """
        now = self.clock.now()
        try:
            action = self._decide(dispatch, now, opted_out)
        except Exception:
            # The accepted send is saved whatever happens here; the loop decides again.
            logger.exception("dispatch %s: deciding after the send failed", dispatch.id)
            return False
        if action.kind == "send":
            return False
        self._log(dispatch, action)
        self._follow(dispatch, action, now)
        return True
