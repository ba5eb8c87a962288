"""How a provider's report changes a dispatch: matching it, then applying it once.

Providers deliver callbacks at least once, so applying the same event again
must change nothing; every rule below is written to be a no-op the second time.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from multichannel.dispatch import LIVE, Attempt, DeliveryEvent, Dispatch, EventKind, Outcome, Status
from multichannel.errors import UnknownDispatch
from multichannel.store import Store

__all__ = ["Effect", "apply_event", "find_attempt", "find_dispatch"]


class Effect(Enum):
    """What an event did: nothing (a repeat), a change to save, or a failure to fall back from."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    FALL_BACK = "fall_back"


def find_dispatch(store: Store, event: DeliveryEvent) -> Dispatch:
    """The dispatch an event is about; UnknownDispatch when none matches."""
    if event.dispatch_id is not None:
        found = store.get(event.dispatch_id)
        if found is None:
            raise UnknownDispatch(f"no dispatch has the id {event.dispatch_id!r}")
        return found
    if event.provider_id is not None:
        found = store.find_by_provider_id(event.provider_id)
        if found is None:
            raise UnknownDispatch(f"no dispatch has a message with id {event.provider_id!r}")
        return found
    if event.channel is not None and event.address is not None:
        found = store.find_by_address(event.channel, event.address)
        if found is None:
            raise UnknownDispatch(f"no dispatch was sent on {event.channel} to that address")
        return found
    raise UnknownDispatch("the event names no dispatch_id, provider_id, or channel and address")


def find_attempt(dispatch: Dispatch, event: DeliveryEvent) -> Attempt:
    """The attempt an event is about; UnknownDispatch when the dispatch has none matching."""
    if event.provider_id is not None:
        attempt = dispatch.attempt_for_provider_id(event.provider_id)
    elif event.channel is not None and event.address is not None:
        attempt = dispatch.attempt_for_address(event.channel, event.address)
    else:
        attempt = dispatch.current
    if attempt is None:
        raise UnknownDispatch(f"dispatch {dispatch.id} has no attempt matching {event!r}")
    return attempt


def apply_event(
    dispatch: Dispatch, attempt: Attempt, event: DeliveryEvent, *, now: datetime, opted_in: bool
) -> Effect:
    """Apply ``event`` to ``attempt`` of ``dispatch``.

    Consent itself (the registry, and the other dispatches an opt-out stops) is
    recorded by the dispatcher before this runs; ``opted_in`` says whether an
    opt-in event lifted an opt-out that was in force.
    """
    detail = f": {event.detail}" if event.detail else ""
    if event.at is not None and event.at != now:
        # The log is kept in the order things were learnt; the provider's time goes in words.
        detail += f" (at {event.at.isoformat()} by the provider's clock)"
    where = f"{attempt.channel} {attempt.address}"
    noted = len(dispatch.decisions)
    if event.kind is EventKind.DELIVERED:
        if attempt.outcome is Outcome.ACCEPTED:
            attempt.outcome = Outcome.DELIVERED
            if dispatch.status is Status.ACCEPTED:
                dispatch.status = Status.DELIVERED
            dispatch.note(now, f"delivered on {where}{detail}")
    elif event.kind is EventKind.RESPONDED:
        if attempt.outcome is not Outcome.RESPONDED:
            attempt.outcome = Outcome.RESPONDED
            dispatch.note(now, f"answered on {where}{detail}")
            if dispatch.status is not Status.CANCELLED:
                dispatch.settle(now, Status.RESPONDED, "the person answered")
    elif event.kind is EventKind.OPTED_IN:
        if opted_in:
            dispatch.note(now, f"the person opted back in on {where}{detail}")
    elif event.kind is EventKind.OPTED_OUT:
        # Settled already by the opt-out's own rule (every dispatch that tried the point).
        pass
    elif attempt.outcome in (Outcome.ACCEPTED, Outcome.DELIVERED, Outcome.SENDING):
        # While the call that sent it is still under way, that call falls back
        # when it returns; falling back here would send twice at once.
        in_flight = attempt.outcome is Outcome.SENDING
        attempt.outcome = Outcome.FAILED
        attempt.error = event.detail or "the provider reported a failure"
        dispatch.note(now, f"failed after acceptance on {where}{detail}")
        if attempt is dispatch.current and dispatch.status in LIVE and not in_flight:
            # Due at once in the same save: if the fallback made right after it is
            # cut short, a worker finishes it (a redelivered event would change nothing).
            dispatch.status = Status.SCHEDULED
            dispatch.next_action_at = now
            return Effect.FALL_BACK
    return Effect.UNCHANGED if len(dispatch.decisions) == noted else Effect.CHANGED
