"""One adapter call, with retries for transient errors paced by tenacity and the clock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from multichannel._redact import mask_address
from multichannel.adapters.base import Adapter, Receipt, SendContext
from multichannel.clock import Clock
from multichannel.contacts import ContactPoint
from multichannel.errors import TransientError
from multichannel.messages import Content
from multichannel.strategy import RetryPolicy

if TYPE_CHECKING:
    # Only for annotations: tenacity, which imports asyncio, is imported where a
    # call is made, so that `import multichannel` does not pay for it.
    from tenacity import RetryCallState

__all__ = ["Call", "CallResult", "Withheld", "acall_with_retries", "call_with_retries"]

logger = logging.getLogger("multichannel.dispatcher")


@dataclass(frozen=True)
class Call:
    """One send the dispatcher wants made, on one adapter."""

    adapter: Adapter
    point: ContactPoint
    content: Content
    ctx: SendContext
    open_at: Callable[[datetime], bool] = field(default=lambda _: True)
    """Whether the point may still be contacted at an instant: no retry lands outside."""
    withheld: Callable[[], str | None] = field(default=lambda: None)
    """Why no try may begin now (an opt-out, a cancel), read afresh before each one."""


class Withheld(Exception):
    """A try was not made: consent or the dispatch's status forbade it at the last moment."""


class _Unchecked(Exception):
    """The last-moment check itself failed (the store is down): the step ends, no try is made."""


def _check(call: Call) -> None:
    """Raise Withheld when no try may begin now; a failing store is never blamed on the adapter."""
    try:
        reason = call.withheld()
    except Exception as err:
        raise _Unchecked from err
    if reason is not None:
        raise Withheld(reason)


@dataclass(frozen=True)
class CallResult:
    """A receipt or the last error, how many tries it took, and whether closing time ended it."""

    receipt: Receipt | None
    error: BaseException | None
    tries: int
    closed_at: datetime | None = None
    """When the next try would have been, had the point not been closed by then."""


class _WaitRetryAfter:
    """Back off exponentially with jitter, or as long as the provider's Retry-After asks."""

    def __init__(self, policy: RetryPolicy) -> None:
        from tenacity import wait_exponential, wait_random

        # Composed from the primitives tenacity has kept stable since 8.2;
        # wait_exponential_jitter renamed its arguments and warns on the old ones.
        self._backoff = wait_exponential(
            multiplier=policy.initial.total_seconds(), max=policy.maximum.total_seconds()
        ) + wait_random(0, policy.jitter.total_seconds())

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return error.retry_after.total_seconds()
        return float(self._backoff(state))


class _Stop:
    """Stop after the policy's tries, on a too-long Retry-After, or before a closed instant."""

    def __init__(self, policy: RetryPolicy, call: Call, clock: Clock) -> None:
        self._policy = policy
        self._call = call
        self._clock = clock
        self.closed_at: datetime | None = None

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._policy.tries:
            return True
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after if isinstance(error, TransientError) else None
        # A provider that asks for a longer pause than the policy allows is not
        # waited for here: the next provider or channel is tried instead.
        if hint is not None and hint > self._policy.maximum:
            return True
        # Waiting must not carry a retry into quiet hours or past deliver_by.
        retry_at = self._clock.now() + timedelta(seconds=state.upcoming_sleep)
        if self._call.open_at(retry_at):
            return False
        self.closed_at = retry_at
        return True


def _cause(unchecked: _Unchecked) -> BaseException:
    cause = unchecked.__cause__
    assert cause is not None
    return cause


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    logger.info("transient failure (%s); try %d again in %.1fs", error, state.attempt_number, sleep)


def _settings(policy: RetryPolicy, stop: _Stop) -> dict[str, Any]:
    from tenacity import retry_if_exception_type

    return {
        "stop": stop,
        "wait": _WaitRetryAfter(policy),
        "retry": retry_if_exception_type(TransientError),
        "before_sleep": _log_retry,
        "reraise": True,
    }


def call_with_retries(call: Call, policy: RetryPolicy, clock: Clock) -> CallResult:
    """Make ``call``, retrying transient errors as ``policy`` says; never raises."""
    from tenacity import Retrying

    tries = 0

    def once() -> Receipt:
        nonlocal tries
        _check(call)
        tries += 1
        ctx = call.ctx.model_copy(update={"try_number": tries})
        return call.adapter.send(call.point, call.content, ctx)

    logger.debug("sending on %s to %s", call.adapter.name, mask_address(call.point.address))
    # Built outside the try: a fault here is the library's, never the adapter's.
    stop = _Stop(policy, call, clock)
    retrying = Retrying(sleep=clock.sleep, **_settings(policy, stop))
    try:
        receipt: Receipt = retrying(once)
    except _Unchecked as unchecked:
        raise _cause(unchecked) from None
    except Exception as error:
        return CallResult(None, error, tries, closed_at=stop.closed_at)
    return CallResult(receipt, None, tries)


async def acall_with_retries(call: Call, policy: RetryPolicy, clock: Clock) -> CallResult:
    """The async twin of `call_with_retries`; sleeps through ``clock.asleep``."""
    from tenacity import AsyncRetrying

    tries = 0

    async def once() -> Receipt:
        nonlocal tries
        _check(call)
        tries += 1
        ctx = call.ctx.model_copy(update={"try_number": tries})
        return await call.adapter.asend(call.point, call.content, ctx)

    logger.debug("sending on %s to %s", call.adapter.name, mask_address(call.point.address))
    stop = _Stop(policy, call, clock)
    retrying = AsyncRetrying(sleep=clock.asleep, **_settings(policy, stop))
    try:
        receipt: Receipt = await retrying(once)
    except _Unchecked as unchecked:
        raise _cause(unchecked) from None
    except Exception as error:
        return CallResult(None, error, tries, closed_at=stop.closed_at)
    return CallResult(receipt, None, tries)
