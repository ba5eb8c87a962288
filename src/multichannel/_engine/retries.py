"""One adapter call, with retries for transient errors paced by the policy and the clock."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from multichannel._redact import mask_address
from multichannel.adapters.base import Adapter, Receipt, SendContext
from multichannel.clock import Clock
from multichannel.contacts import ContactPoint
from multichannel.errors import TransientError
from multichannel.messages import Content
from multichannel.strategy import RetryPolicy

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


def _next_wait(
    policy: RetryPolicy, call: Call, clock: Clock, error: Exception, tries: int
) -> tuple[float | None, datetime | None]:
    """Seconds to wait before the next try, or None when the tries end here.

    Only a TransientError is tried again. Waits grow from ``policy.initial``
    by doubling up to ``policy.maximum``, plus up to ``policy.jitter`` at
    random; a provider's Retry-After replaces that wait, and one longer than
    the maximum ends the tries (the next provider or channel is tried
    instead). The second value is the instant the next try would have been
    when quiet hours or ``deliver_by`` closed the point by then.
    """
    if not isinstance(error, TransientError) or tries >= policy.tries:
        return None, None
    hint = error.retry_after
    if hint is not None and hint > policy.maximum:
        return None, None
    if hint is not None:
        wait = hint.total_seconds()
    else:
        backoff = policy.initial.total_seconds() * 2 ** (tries - 1)
        wait = min(backoff, policy.maximum.total_seconds())
        wait += random.uniform(0, policy.jitter.total_seconds())
    # Waiting must not carry a retry into quiet hours or past deliver_by.
    retry_at = clock.now() + timedelta(seconds=wait)
    if not call.open_at(retry_at):
        return None, retry_at
    logger.info("transient failure (%s); try %d again in %.1fs", error, tries, wait)
    return wait, None


def _cause(unchecked: _Unchecked) -> BaseException:
    cause = unchecked.__cause__
    assert cause is not None
    return cause


def call_with_retries(call: Call, policy: RetryPolicy, clock: Clock) -> CallResult:
    """Make ``call``, retrying transient errors as ``policy`` says; never raises."""
    logger.debug("sending on %s to %s", call.adapter.name, mask_address(call.point.address))
    tries = 0
    while True:
        try:
            _check(call)
            tries += 1
            return CallResult(
                call.adapter.send(call.point, call.content, _numbered(call, tries)), None, tries
            )
        except _Unchecked as unchecked:
            raise _cause(unchecked) from None
        except Exception as error:
            wait, closed_at = _next_wait(policy, call, clock, error, tries)
            if wait is None:
                return CallResult(None, error, tries, closed_at=closed_at)
        clock.sleep(wait)


async def acall_with_retries(call: Call, policy: RetryPolicy, clock: Clock) -> CallResult:
    """The async twin of `call_with_retries`; sleeps through ``clock.asleep``."""
    logger.debug("sending on %s to %s", call.adapter.name, mask_address(call.point.address))
    tries = 0
    while True:
        try:
            _check(call)
            tries += 1
            receipt = await call.adapter.asend(call.point, call.content, _numbered(call, tries))
            return CallResult(receipt, None, tries)
        except _Unchecked as unchecked:
            raise _cause(unchecked) from None
        except Exception as error:
            wait, closed_at = _next_wait(policy, call, clock, error, tries)
            if wait is None:
                return CallResult(None, error, tries, closed_at=closed_at)
        await clock.asleep(wait)


def _numbered(call: Call, tries: int) -> SendContext:
    """The call's context for its ``tries``-th try."""
    return call.ctx if tries == 1 else call.ctx.model_copy(update={"try_number": tries})
