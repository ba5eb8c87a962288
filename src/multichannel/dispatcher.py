"""The dispatcher: the only part that acts. It asks the strategy, calls adapters and records.

The loop is written once, as generators that yield each adapter call they need
made; `Dispatcher.send` drives them with blocking calls and `Dispatcher.asend`
with awaited ones, so the sync and async paths cannot drift apart.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
)
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, TypeVar

from multichannel._engine.batch import BatchResult, Prepared, run_batch, run_batch_async
from multichannel._engine.events import Effect, apply_event, find_attempt, find_dispatch
from multichannel._engine.retries import acall_with_retries, call_with_retries
from multichannel._engine.saving import change_until_saved, read_again, save_unless_stale
from multichannel._engine.send import After, Steps, send_on_point
from multichannel.adapters.base import Adapter, Registry
from multichannel.clock import Clock, SystemClock
from multichannel.consent import (
    STOPPABLE,
    consent_point,
    opt_out_point,
    stop_for_opt_out,
    withheld,
)
from multichannel.contacts import Contact, ContactPoint
from multichannel.dispatch import LIVE, DeliveryEvent, Dispatch, EventKind, Outcome, Status
from multichannel.errors import (
    IdempotencyConflict,
    UnknownDispatch,
)
from multichannel.messages import Message
from multichannel.store import MemoryStore, Store
from multichannel.store.base import create_many
from multichannel.strategy import Action, FallbackStrategy, RetryPolicy

__all__ = ["Dispatcher"]

logger = logging.getLogger("multichannel.dispatcher")
_T = TypeVar("_T")


class _Fresh(NamedTuple):
    """A dispatch not yet stored, its first decision and the opt-outs that decision read."""

    dispatch: Dispatch
    action: Action
    opted_out: frozenset[tuple[str, str]]


def _longest_waits(registry: Registry, retry: RetryPolicy) -> tuple[timedelta, str]:
    """The longest one send may take, and how that adds up, on its slowest channel.

    A send goes through every provider of its channel: on each, ``retry.tries``
    tries of up to the adapter's ``timeout`` and a wait between tries of at
    most the policy's ``maximum`` plus ``jitter`` (a longer Retry-After ends
    the tries instead). An adapter that declares no timeout adds only waits:
    its bound is unknown, and a guess would refuse in-memory and test adapters
    that answer at once.
    """

    def timeout(adapter: Adapter) -> float:
        seconds = getattr(adapter, "timeout", None)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            return 0.0
        return float(seconds)

    def tries(count: int) -> str:
        return f"{count} {'try' if count == 1 else 'tries'}"

    wait = retry.maximum + retry.jitter
    longest, how = timedelta(0), "nothing: there are no adapters"
    for channel in sorted(registry.channels):
        # By name: an adapter serving every channel is listed twice for "*".
        providers = {adapter.name: adapter for adapter in registry.for_channel(channel)}
        waits = (retry.tries - 1) * len(providers)
        took = wait * waits
        parts = []
        for name, adapter in providers.items():
            seconds = timeout(adapter)
            took += retry.tries * timedelta(seconds=seconds)
            parts.append(
                f"{tries(retry.tries)} of up to {seconds:g}s on {name}"
                if seconds
                else f"{tries(retry.tries)} on {name} (no timeout declared)"
            )
        if waits:
            parts[-1] += f" and {waits} wait{'s' * (waits > 1)} of up to {wait.total_seconds():g}s"
        if took > longest or not longest:
            where = "any channel" if channel == "*" else channel
            longest, how = took, f"{took} on {where}: {', '.join(parts)}"
    return longest, how


class Dispatcher:
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
        longest, how = _longest_waits(self.registry, self.strategy.retry)
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
        point = opt_out_point(event)
        return [] if point is None else self._record_opt_out(event, point)

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

    def _preparer(self, message: Message) -> Callable[[list[Contact]], list[Prepared]]:
        """How `send_many` prepares a chunk of contacts: every first decision at once.

        The chunk's opt-outs are read in one look-up, and the dispatches that
        wait or stop are stored in one `create_many`; the others are sends for
        the threads. Should storing them together fail, each is stored on its
        own, so that one bad dispatch fails only its contact.
        """

        def prepare(chunk: list[Contact]) -> list[Prepared]:
            opted_out = self.store.opted_out(
                (point.channel, point.address) for contact in chunk for point in contact.points
            )
            prepared: list[Prepared | _Fresh] = []
            for contact in chunk:
                try:
                    prepared.append(self._fresh(contact, message, opted_out))
                except Exception as error:
                    prepared.append(BatchResult(contact, None, error))
            later = [
                item for item in prepared if isinstance(item, _Fresh) and item.action.kind != "send"
            ]
            try:
                stored = (
                    dict(
                        zip(
                            (id(fresh.dispatch) for fresh in later),
                            create_many(self.store, [fresh.dispatch for fresh in later]),
                            strict=True,
                        )
                    )
                    if later
                    else {}
                )
            except Exception:
                logger.warning(
                    "storing %d dispatches together failed; storing each alone", len(later)
                )
                stored = {}
            return [
                self._prepared(
                    contact,
                    item,
                    stored.get(id(item.dispatch)) if isinstance(item, _Fresh) else None,
                )
                for contact, item in zip(chunk, prepared, strict=True)
            ]

        return prepare

    def _prepared(
        self, contact: Contact, item: Prepared | _Fresh, stored: Dispatch | None
    ) -> Prepared:
        if not isinstance(item, _Fresh):
            return item
        fresh = item
        if stored is None:
            return lambda: self._drive(self._created(fresh, self.store.create(fresh.dispatch)))
        try:
            return BatchResult(contact, self._drive(self._created(fresh, stored)), None)
        except Exception as error:
            return BatchResult(contact, None, error)

    # Drivers: the only places that call adapters.

    def _drive(self, steps: Steps[_T]) -> _T:
        try:
            call = next(steps)
            while True:
                try:
                    outcome = call_with_retries(call, self.strategy.retry, self.clock)
                except Exception as err:
                    # Not an adapter's failure (those come back as outcomes): the
                    # step is told, so it can tidy up, and the error goes on up.
                    call = steps.throw(err)
                    continue
                call = steps.send(outcome)
        except StopIteration as done:
            result: _T = done.value
            return result

    async def _adrive(self, steps: Steps[_T]) -> _T:
        try:
            call = next(steps)
            while True:
                try:
                    outcome = await acall_with_retries(call, self.strategy.retry, self.clock)
                except Exception as err:
                    call = steps.throw(err)
                    continue
                call = steps.send(outcome)
        except StopIteration as done:
            result: _T = done.value
            return result

    # The loop, written once.

    def _start(self, contact: Contact, message: Message) -> Steps[Dispatch]:
        fresh = self._fresh(contact, message, self._opted_out(contact))
        return (yield from self._created(fresh, self.store.create(fresh.dispatch)))

    def _fresh(
        self, contact: Contact, message: Message, opted_out: frozenset[tuple[str, str]]
    ) -> _Fresh:
        """A new dispatch and its first decision, made before it is stored.

        A first step that waits or stops is written with the dispatch, in one
        write; a send is made once the dispatch is stored (`_created`).
        """
        now = self.clock.now()
        fresh = Dispatch(
            id=uuid.uuid4().hex,
            contact_id=contact.id,
            contact=contact,
            message=message,
            created_at=now,
            updated_at=now,
            next_action_at=now,
            dry_run=self.registry.dry_run,
        )
        fresh.note(now, f"dispatch created for contact {contact.id}")
        action = self._decide(fresh, now, opted_out)
        if action.kind != "send":
            self._log(fresh, action)
            self._follow(fresh, action, now)
        return _Fresh(fresh, action, opted_out)

    def _created(self, fresh: _Fresh, stored: Dispatch) -> Steps[Dispatch]:
        """Go on with ``fresh`` as ``create`` answered: its own copy, or one keyed alike."""
        made = fresh.dispatch
        if stored.id != made.id:
            if stored.message.fingerprint() != made.message.fingerprint():
                raise IdempotencyConflict(
                    f"key {made.message.key!r} was already used for contact "
                    f"{made.contact_id!r} with a different message (dispatch {stored.id})"
                )
            return stored
        if fresh.action.kind != "send":
            return stored
        return (yield from self._advance(stored, decided=(fresh.action, fresh.opted_out)))

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

    def _opted_out(self, contact: Contact) -> frozenset[tuple[str, str]]:
        """Which of the contact's points the store knows to have opted out."""
        return self.store.opted_out((point.channel, point.address) for point in contact.points)

    def _decide(
        self, dispatch: Dispatch, now: datetime, opted_out: Collection[tuple[str, str]]
    ) -> Action:
        return self.strategy.decide(
            dispatch.contact,
            dispatch.message,
            now=now,
            attempts=dispatch.attempts,
            channels=self.registry.channels,
            opted_out=opted_out,
        )

    @staticmethod
    def _follow(dispatch: Dispatch, action: Action, now: datetime) -> None:
        """Put ``dispatch`` where a wait or a stop leaves it (not saved)."""
        dispatch.status = action.status
        dispatch.next_action_at = action.until if action.kind == "wait" else None
        dispatch.updated_at = now

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

    def _log(self, dispatch: Dispatch, action: Action) -> None:
        now = self.clock.now()
        known = {decision.reason for decision in dispatch.decisions}
        for note in action.notes:
            if note not in known:
                dispatch.note(now, note)
        dispatch.note(now, action.reason)

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
        action = self._decide(dispatch, now, opted_out)
        if action.kind == "send":
            return False
        self._log(dispatch, action)
        self._follow(dispatch, action, now)
        return True

    def _record(self, event: DeliveryEvent) -> Steps[Dispatch]:
        # A replayed reply must not undo what came after it (a START captured
        # before a STOP); a replayed opt-out is always applied again.
        inbound = (
            f"{event.kind.value}:{event.inbound_id}"
            if event.inbound_id is not None and event.kind is not EventKind.OPTED_OUT
            else None
        )
        if inbound is not None and self.store.seen_inbound(inbound):
            return find_dispatch(self.store, event)
        self.record_consent(event)
        opting_in = event.kind is EventKind.OPTED_IN
        if inbound is not None and opting_in:
            # Remembered before it takes effect: should anything after fail, the
            # provider's redelivery (perhaps after a STOP) must not lift an opt-out.
            self.store.remember_inbound(inbound, self.clock.now())
        named = (
            None
            if event.channel is None or event.address is None
            else (event.channel, event.address)
        )
        opted_in = False
        if opting_in and named is not None:
            # Lifted even when no dispatch matches, as an opt-out is recorded.
            opted_in = self._lift_opt_out(named)
        try:
            dispatch = find_dispatch(self.store, event)
        except UnknownDispatch:
            if inbound is not None:
                self.store.remember_inbound(inbound, self.clock.now())
            if not self._hold(event):
                raise
            # The send saved the id while the event was being kept: apply it now.
            assert event.provider_id is not None
            drained = yield from self._drain_held(event.provider_id)
            return drained or find_dispatch(self.store, event)
        attempt = find_attempt(dispatch, event)
        if named is None:
            # Without an address of its own, what the event says of consent is about
            # the point of the attempt it matched.
            matched = (attempt.channel, attempt.address)
            point = opt_out_point(event, matched)
            if point is not None:
                self._record_opt_out(event, point)
                dispatch = self._reload(dispatch)
            elif opting_in:
                opted_in = self._lift_opt_out(matched)
        while True:
            attempt = find_attempt(dispatch, event)
            now = self.clock.now()
            effect = apply_event(dispatch, attempt, event, now=now, opted_in=opted_in)
            if effect is not Effect.UNCHANGED:
                dispatch.updated_at = now
                if not self._saved(dispatch):
                    # Someone else saved first: apply the event to their copy.
                    dispatch = self._reload(dispatch)
                    continue
            if inbound is not None:
                self.store.remember_inbound(inbound, now)
            if effect is Effect.FALL_BACK:
                return (yield from self._advance(dispatch))
            return dispatch

    def _record_opt_out(self, event: DeliveryEvent, point: tuple[str, str]) -> list[Dispatch]:
        """Record the opt-out ``event`` carries for ``point``; the dispatches it stopped.

        An ``opted_out`` event stops every dispatch that tried the point; a
        failure blamed on an earlier opt-out only marks it.
        """
        if event.kind is EventKind.OPTED_OUT:
            received_at = event.at or self.clock.now()
            return self._opt_out(point, received_at=received_at, detail=event.detail)
        self.store.add_opt_out(*point)
        return []

    def _lift_opt_out(self, point: tuple[str, str]) -> bool:
        """Lift an opt-out of ``point`` that a reply asked to lift; True if one was in force."""
        if not self.store.opted_out([point]):
            return False
        self.store.remove_opt_out(*point)
        return True

    def _hold(self, event: DeliveryEvent) -> bool:
        """Keep a provider's report that came before its send saved the id it names.

        Returns True when the id turns out to be saved meanwhile, so that the
        caller takes the kept events back and applies them; the send that saved
        it does the same, and whichever takes them applies them, once.
        """
        if event.provider_id is None or event.dispatch_id is not None:
            return False
        now = self.clock.now()
        self.store.hold_event(event, now, forget_before=now - self.in_flight)
        if self.store.find_by_provider_id(event.provider_id) is not None:
            return True
        logger.info(
            "a %s event for provider id %s came before any send saved that id; kept until one does",
            event.kind.value,
            event.provider_id,
        )
        return False

    def _drain_held(self, provider_id: str | None) -> Steps[Dispatch | None]:
        """Apply the events kept for ``provider_id``; the dispatch after the last, if any.

        Each is forgotten only once applied, so none is lost to a failure on the
        way; applying one twice (the send and the late event both drain) changes
        nothing the second time.
        """
        latest = None
        if provider_id is not None:
            for held, event in self.store.held_events(provider_id):
                latest = yield from self._record(event)
                self.store.forget_held_events([held])
        return latest

    def _finish(self, dispatch: Dispatch, status: Status, reason: str) -> None:
        dispatch.settle(self.clock.now(), status, reason)

    def _saved(self, dispatch: Dispatch) -> bool:
        return save_unless_stale(self.store, dispatch)

    def _reload(self, dispatch: Dispatch) -> Dispatch:
        return read_again(self.store, dispatch)

    def _change(self, dispatch: Dispatch, change: Callable[[Dispatch], bool]) -> Dispatch:
        return change_until_saved(self.store, dispatch, change)

    def _opt_out(
        self, point: tuple[str, str], *, received_at: datetime, detail: str | None
    ) -> list[Dispatch]:
        """Record an opt-out and stop every dispatch that tried the point."""
        self.store.add_opt_out(*point)

        def stop(fresh: Dispatch) -> bool:
            return stop_for_opt_out(
                fresh, *point, received_at=received_at, now=self.clock.now(), detail=detail
            )

        stopped, failure = [], None
        for dispatch in self.store.dispatches_that_tried(*point, STOPPABLE):
            # One dispatch that cannot be saved must not leave the others running.
            try:
                settled = self._change(dispatch, stop)
            except Exception as err:
                failure = failure or err
                continue
            if settled.status is Status.CANCELLED:
                stopped.append(settled)
        if failure is not None:
            raise failure
        return stopped
