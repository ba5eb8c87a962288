"""How a provider's report or a person's opt-out is recorded on the dispatches it concerns.

Consent is recorded first and apart (an opt-out stops every dispatch that
tried the address); a report that came before its send saved the provider's
id is held until that send drains it; a replayed reply changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from multichannel._engine.events import Effect, apply_event, find_attempt, find_dispatch
from multichannel._engine.loop import Loop
from multichannel._engine.send import Steps
from multichannel.consent import STOPPABLE, opt_out_point, stop_for_opt_out
from multichannel.dispatch import DeliveryEvent, Dispatch, EventKind, Status
from multichannel.errors import UnknownDispatch

__all__ = ["Recording"]

logger = logging.getLogger("multichannel.dispatcher")


class Recording(Loop):
    """The dispatcher's part that records events and opt-outs."""

    def _record_consent(self, event: DeliveryEvent) -> list[Dispatch]:
        """Record the opt-out ``event`` carries, if any; the dispatches it stopped."""
        point = opt_out_point(event)
        return [] if point is None else self._record_opt_out(event, point)

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
        self._record_consent(event)
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
