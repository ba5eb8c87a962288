"""What the dispatcher's parts share: its settings, and the moves every part of the loop makes.

`Dispatcher` is put together from `Loop`, `Starting` (new dispatches, alone
or a batch at a time) and `Recording` (provider events and opt-outs), with
the advancing loop and the public methods in `multichannel.dispatcher`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from multichannel._engine.retries import acall_with_retries, call_with_retries
from multichannel._engine.saving import change_until_saved, read_again, save_unless_stale
from multichannel._engine.send import Steps
from multichannel.adapters.base import Adapter, Registry
from multichannel.clock import Clock
from multichannel.contacts import Contact
from multichannel.dispatch import Dispatch, Status
from multichannel.store import Store
from multichannel.strategy import Action, FallbackStrategy, RetryPolicy

__all__ = ["Loop", "longest_waits"]

_T = TypeVar("_T")


class Loop:
    """The dispatcher's settings and the small moves its loop makes everywhere."""

    registry: Registry
    strategy: FallbackStrategy
    clock: Clock
    store: Store
    interrupted: Literal["review", "resend"]
    in_flight: timedelta

    def _advance(
        self,
        dispatch: Dispatch,
        decided: tuple[Action, frozenset[tuple[str, str]]] | None = None,
    ) -> Steps[Dispatch]:
        """Decide and act until the dispatch waits or stops (`Dispatcher` defines it)."""
        raise NotImplementedError

    def _drain_held(self, provider_id: str | None) -> Steps[Dispatch | None]:
        """Apply the events kept for ``provider_id`` (`Recording` defines it)."""
        raise NotImplementedError

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

    def _log(self, dispatch: Dispatch, action: Action) -> None:
        now = self.clock.now()
        known = {decision.reason for decision in dispatch.decisions}
        for note in action.notes:
            if note not in known:
                dispatch.note(now, note)
        dispatch.note(now, action.reason)

    def _finish(self, dispatch: Dispatch, status: Status, reason: str) -> None:
        dispatch.settle(self.clock.now(), status, reason)

    def _saved(self, dispatch: Dispatch) -> bool:
        return save_unless_stale(self.store, dispatch)

    def _reload(self, dispatch: Dispatch) -> Dispatch:
        return read_again(self.store, dispatch)

    def _change(self, dispatch: Dispatch, change: Callable[[Dispatch], bool]) -> Dispatch:
        return change_until_saved(self.store, dispatch, change)


def longest_waits(registry: Registry, retry: RetryPolicy) -> tuple[timedelta, str]:
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
