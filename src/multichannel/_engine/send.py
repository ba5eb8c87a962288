"""Sending on one point: every provider of its channel in turn, and saving what happened.

State is written before a provider is called (the attempt as "sending") and
after it answers. When someone else saved the dispatch meanwhile (a webhook, a
cancel), the answer is carried onto their newer copy rather than lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from multichannel._engine.retries import Call, CallResult, Withheld
from multichannel._engine.saving import read_again, save_unless_stale
from multichannel._redact import mask_address
from multichannel.adapters.base import Registry, SendContext
from multichannel.clock import Clock
from multichannel.contacts import ContactPoint
from multichannel.dispatch import LIVE, Attempt, Dispatch, Outcome, Status
from multichannel.errors import (
    ConfigurationError,
    OptedOut,
    PermanentError,
    ProviderError,
    TransientError,
)
from multichannel.store import Store

__all__ = ["After", "Steps", "send_on_point"]

logger = logging.getLogger("multichannel.dispatcher")
_T = TypeVar("_T")
Steps = Generator[Call, CallResult, _T]


After = Literal["decide", "reopens", "settled"]
"""What the dispatch needs once a send on a point is saved: a new decision, to wait for the
point to reopen, or nothing (``then`` settled its next step in the same save)."""


def send_on_point(
    dispatch: Dispatch,
    point: ContactPoint,
    *,
    registry: Registry,
    store: Store,
    clock: Clock,
    in_flight: timedelta,
    open_at: Callable[[datetime], bool],
    reopens: Callable[[datetime], datetime | None],
    withheld: Callable[[], str | None],
    then: Callable[[Dispatch], bool] = lambda _: False,
) -> Steps[tuple[Dispatch, After]]:
    """Try each adapter of the point's channel until one accepts or the address is refused.

    ``open_at`` tells whether the point may still be contacted at an instant,
    and ``reopens`` when it next may be (None: not in time). When quiet hours
    or ``deliver_by`` would cut into the retries, the attempt is withdrawn and
    the dispatch waits for the reopening, or, with none in time, the point has
    failed. ``withheld`` is asked before every try of every provider and says
    why none may begin (an opt-out, a cancel): then no more tries are made,
    and an attempt that made none is withdrawn. Once a provider accepts,
    ``then`` may settle the dispatch's next step (True when it did), which is
    saved with the attempt; it is not applied to a newer copy someone else
    saved meanwhile. Returns the dispatch as saved (a newer copy when someone
    else saved it meanwhile) and what it needs next.
    """
    now = clock.now()
    attempt = Attempt(channel=point.channel, address=point.address, label=point.label, at=now)
    dispatch.attempts.append(attempt)
    dispatch.updated_at = now
    # Written before any provider is called, and due again only once the
    # call must have ended: a worker that then finds it still "sending"
    # knows the process died mid-call. A fallback starts from "accepted" or
    # "delivered", which no store hands out as due, so the status goes back to
    # scheduled with it.
    dispatch.next_action_at = now + in_flight
    if dispatch.status in LIVE:
        dispatch.status = Status.SCHEDULED
    if not save_unless_stale(store, dispatch):
        return read_again(store, dispatch), "decide"  # changed meanwhile: decide again first
    since = len(dispatch.decisions)
    content = dispatch.message.content_for(point.channel)
    ctx = SendContext(
        dispatch_id=dispatch.id,
        contact_id=dispatch.contact_id,
        message_key=dispatch.message.key,
        sensitive=dispatch.message.sensitive,
        metadata=dispatch.message.metadata,
    )
    for adapter in registry.for_channel(point.channel):
        if not open_at(clock.now()):
            return _closed(dispatch, attempt, since, reopens(clock.now()), store=store, clock=clock)
        try:
            result = yield Call(adapter, point, content, ctx, open_at, withheld)
        except Exception:
            # The step itself failed (the store could not say whether a try may
            # begin): an attempt that called nobody is taken out again, so the
            # dispatch is due on the same step instead of held for review.
            if attempt.tries == 0:
                _withdraw_quietly(dispatch, attempt, since, store=store, clock=clock)
            raise
        attempt.tries += result.tries
        if result.tries:
            attempt.provider = adapter.name
        now = clock.now()
        if isinstance(result.error, Withheld):
            dispatch.note(now, f"not sent on {point.describe()}: {result.error}")
            if attempt.tries == 0:
                return _commit_attempt(
                    dispatch, attempt, since, store=store, clock=clock, withdraw=True
                )
            attempt.error = f"withheld after {attempt.tries} tries: {result.error}"
            break
        if result.receipt is not None:
            delivered = result.receipt.status == "delivered"
            attempt.outcome = Outcome.DELIVERED if delivered else Outcome.ACCEPTED
            attempt.provider_id = result.receipt.provider_id
            attempt.accepted_at = now
            attempt.error = None
            dispatch.note(now, f"{adapter.name} accepted the message for {point.describe()}")
            return _commit_attempt(dispatch, attempt, since, store=store, clock=clock, then=then)
        error = result.error
        attempt.error = f"{type(error).__name__}: {error}"
        if isinstance(error, ConfigurationError):
            # Nothing went out and the point is not to blame: the dispatch
            # stays due on this point, so it fails loudly again until fixed.
            dispatch.note(now, f"{adapter.name} is misconfigured, nothing was sent: {error}")
            _commit_attempt(dispatch, attempt, since, store=store, clock=clock, withdraw=True)
            raise error
        if isinstance(error, OptedOut):
            store.add_opt_out(point.channel, point.address)
            dispatch.note(now, f"{adapter.name}: {point.describe()} has opted out ({error})")
            break
        if isinstance(error, PermanentError):
            dispatch.note(now, f"{adapter.name} refused {point.describe()}: {error}")
            break
        if result.closed_at is not None:
            reopening = reopens(result.closed_at)
            return _closed(dispatch, attempt, since, reopening, store=store, clock=clock)
        if isinstance(error, TransientError):
            why = f"still failing after {result.tries} tries: {error}"
        elif isinstance(error, ProviderError):
            why = f"failed as a provider, not because of the address: {error}"
        else:
            logger.error(
                "adapter %s raised an unexpected error for %s",
                adapter.name,
                mask_address(point.address),
                exc_info=error,
            )
            why = f"failed unexpectedly ({type(error).__name__}: {error})"
        dispatch.note(now, f"{adapter.name} {why}; trying the next provider if there is one")
    attempt.outcome = Outcome.FAILED
    return _commit_attempt(dispatch, attempt, since, store=store, clock=clock)


def _withdraw_quietly(
    dispatch: Dispatch, attempt: Attempt, since: int, *, store: Store, clock: Clock
) -> None:
    """Take out an attempt that called nobody; if the store fails again, review will find it."""
    try:
        _commit_attempt(dispatch, attempt, since, store=store, clock=clock, withdraw=True)
    except Exception as err:
        logger.warning(
            "dispatch %s: could not take back an unsent attempt (%s); it goes to review "
            "once in_flight has passed",
            dispatch.id,
            type(err).__name__,
        )


def _closed(
    dispatch: Dispatch,
    attempt: Attempt,
    since: int,
    reopening: datetime | None,
    *,
    store: Store,
    clock: Clock,
) -> tuple[Dispatch, After]:
    """Settle an attempt cut short because the point closed (quiet hours, deliver_by).

    With a reopening in time the attempt is withdrawn and the dispatch waits
    for it; without one the point has failed, and the next candidate follows.
    """
    tries = f"{attempt.tries} {'try' if attempt.tries == 1 else 'tries'}"
    why = attempt.error or "no answer yet"
    now = clock.now()
    if reopening is None:
        attempt.outcome = Outcome.FAILED
        dispatch.note(
            now, f"{attempt.channel} {attempt.address} closed for good after {tries} ({why})"
        )
        return _commit_attempt(dispatch, attempt, since, store=store, clock=clock)
    dispatch.note(
        now,
        f"{attempt.channel} {attempt.address} closes before the next try after {tries} ({why}); "
        f"trying again when it opens at {reopening.isoformat()}",
    )
    dispatch.status = Status.SCHEDULED
    settled, _ = _commit_attempt(
        dispatch, attempt, since, store=store, clock=clock, withdraw=True, due=reopening
    )
    return settled, "reopens"


def _commit_attempt(
    dispatch: Dispatch,
    attempt: Attempt,
    since: int,
    *,
    store: Store,
    clock: Clock,
    withdraw: bool = False,
    due: datetime | None = None,
    then: Callable[[Dispatch], bool] = lambda _: False,
) -> tuple[Dispatch, After]:
    """Save what a send did; if someone saved first, carry it onto their copy.

    A provider's answer must never be lost to a race: the attempt and the
    notes written since ``since`` are applied to the newest copy until a
    save holds. ``withdraw`` takes the attempt out instead (nothing was sent).
    ``then`` settles the next step on this copy only, saved with the attempt:
    on a newer copy the next step is decided afresh.
    """
    notes = dispatch.decisions[since:]
    now = clock.now()
    after: After = "settled" if not withdraw and then(dispatch) else "decide"
    while True:
        if withdraw and dispatch.status in LIVE:
            withdrawn = dispatch.same_attempt(attempt)
            dispatch.attempts = [mine for mine in dispatch.attempts if mine is not withdrawn]
            # Due again on the same step: a dispatch left "accepted" would never be due.
            dispatch.status = Status.SCHEDULED
            dispatch.next_action_at = due or now
        elif withdraw:
            # Settled meanwhile (cancelled, held for review): only take the unsent attempt out.
            withdrawn = dispatch.same_attempt(attempt)
            if withdrawn is not None and withdrawn.outcome is Outcome.SENDING:
                dispatch.attempts.remove(withdrawn)
        if after == "decide":
            dispatch.updated_at = now
        if save_unless_stale(store, dispatch):
            return dispatch, after
        after = "decide"
        fresh = read_again(store, dispatch)
        mine = fresh.same_attempt(attempt)
        if withdraw:
            pass  # taken out of the fresh copy at the top of the loop
        elif mine is None:
            fresh.attempts.append(attempt)
        elif mine.outcome is not Outcome.SENDING:
            # An event settled it during the call (a bounce): that verdict stands,
            # and the provider's id and tries are added to it.
            mine.provider, mine.provider_id = attempt.provider, attempt.provider_id
            mine.tries, mine.accepted_at = attempt.tries, attempt.accepted_at
        else:
            fresh.attempts[fresh.attempts.index(mine)] = attempt
        fresh.decisions.extend(notes)
        dispatch = fresh
