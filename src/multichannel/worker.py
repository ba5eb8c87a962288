"""The worker: claims due steps from the store under a lease and performs them.

Several workers, in one process or many, may share one store: a claimed step is
leased to one worker until the lease runs out, so no two perform it. A worker
killed mid-step leaves its lease to expire, and the next worker takes over; a
send that was under way when it died is found by the dispatcher and handled by
its ``interrupted`` policy instead of being sent blindly again.

A batch is claimed in one call (`Store.claim_due` with ``limit``) and its leases
are given up together when the batch ends, in one call where the store has
``release_many`` (see `multichannel.store.base.BatchStore`) and one step at a
time where it has not.

A store that cannot be reached (a database restart, a dropped connection, a
failover) does not end `Worker.run`: it logs, waits a little longer each time,
and tries again until the store answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from multichannel.clock import Clock, SystemClock

if TYPE_CHECKING:
    import asyncio
from multichannel.dispatch import Dispatch
from multichannel.dispatcher import Dispatcher
from multichannel.errors import ConfigurationError
from multichannel.store.base import release_many

__all__ = ["Worker"]

logger = logging.getLogger("multichannel.worker")

# Waits between tries to reach a store that is down: doubling from the first,
# never above the last, each drawn between half and all of that so that the
# workers a failover cut off together do not all come back at the same instant.
_RECONNECT_FIRST = 1.0
_RECONNECT_MOST = 30.0


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the store cannot be reached now, rather than that a call is wrong.

    That is SQLAlchemy's OperationalError (refused or lost connections, a server
    shutting down, a locked SQLite file, lock and statement timeouts),
    InterfaceError (a connection already closed), a pool that handed out no
    connection in time, and any driver error SQLAlchemy took for a disconnect.
    An integrity or programming error is a fault to report, not an outage.
    """
    if "sqlalchemy.exc" not in sys.modules:
        # Only a SQL store raises SQLAlchemy's errors, and it has imported them by then.
        return False
    from sqlalchemy import exc

    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError)


def _why(error: BaseException) -> str:
    # The driver's own first line says what happened; SQLAlchemy's text adds the
    # statement and its parameters, which may hold addresses.
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


class _Outage:
    """How long to wait before trying an unreachable store again, and what to log."""

    def __init__(self) -> None:
        self.failures = 0

    def wait(self, error: BaseException) -> float:
        """Count a failure and return the jittered wait before the next try."""
        self.failures += 1
        ceiling = min(_RECONNECT_MOST, _RECONNECT_FIRST * 2 ** (self.failures - 1))
        seconds = random.uniform(ceiling / 2, ceiling)
        logger.warning(
            "the store cannot be reached (%s); trying again in %.1fs (failure %d)",
            _why(error),
            seconds,
            self.failures,
        )
        return seconds

    def over(self) -> None:
        """The store answered: log the end of an outage and start counting afresh."""
        if self.failures:
            # As loud as the failures, so that whoever saw the outage begin sees it end.
            logger.warning("the store answers again after %d failed tries", self.failures)
            self.failures = 0


def _real_time(clock: Clock, method: str) -> bool:
    # Only a wait the system clock would spend in real time can be spent on the
    # stop event instead; a clock of one's own (a ManualClock) waits its own way.
    return getattr(type(clock), method, None) is getattr(SystemClock, method)


def _default_name() -> str:
    """host:pid:random, so that an operator can tell workers apart in the store's leases."""
    import socket  # asyncio would bring it; a sync worker loads it here, once

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Performs the steps that are due, under a lease, for one dispatcher and its store.

    ``lease`` must be longer than a step takes (a send with its retries);
    ``batch`` is how many steps are claimed at once; ``idle`` is how long `run`
    waits, on the dispatcher's clock, when nothing is due. Raises ValueError for
    a bad setting and ConfigurationError when the store cannot lease.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 10,
        idle: timedelta = timedelta(seconds=1),
        name: str | None = None,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("lease must be longer than zero")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        if idle < timedelta(0):
            raise ValueError("idle cannot be negative")
        for method in ("claim_due", "release"):
            if not callable(getattr(dispatcher.store, method, None)):
                raise ConfigurationError(
                    f"{type(dispatcher.store).__name__} cannot lease steps (it has no {method})"
                )
        self.dispatcher = dispatcher
        self.lease = lease
        self.batch = batch
        self.idle = idle
        self.name = name or _default_name()

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, lease={self.lease!r}, batch={self.batch})"

    def _claim(self) -> tuple[list[Dispatch], Callable[[], bool]]:
        clock = self.dispatcher.clock
        claimed_at = clock.now()
        claimed: list[Dispatch] = self.dispatcher.store.claim_due(
            claimed_at, lease=self.lease, owner=self.name, limit=self.batch
        )

        def lease_left() -> bool:
            return clock.now() < claimed_at + self.lease

        return claimed, lease_left

    @contextmanager
    def _held(self, claimed: list[Dispatch]) -> Iterator[None]:
        """Give up the batch's leases when it ends, performed or not, in one call.

        A step performed early in a batch stays leased until the batch ends;
        should it be due again before then, this worker's next claim takes it.
        """
        try:
            yield
        finally:
            held = sorted(dispatch.id for dispatch in claimed)
            try:
                if held:
                    release_many(self.dispatcher.store, held, self.name)
            except Exception as error:
                if not _unreachable(error):
                    raise
                # Nothing is lost: the leases run out by themselves, and
                # whichever worker claims the steps next performs them.
                logger.warning(
                    "%d step(s) stay leased to %s until the lease ends: %s",
                    len(held),
                    self.name,
                    _why(error),
                )

    def _still_due(self, claimed: Dispatch, lease_left: Callable[[], bool]) -> Dispatch | None:
        """The stored dispatch if it is ours and still due, read again just before acting."""
        # A step whose lease ran out may already belong to another worker.
        if not lease_left():
            return None
        # The claim is a snapshot; an event (an answer, an opt-out) or a cancel
        # may have settled the dispatch while earlier steps of the batch ran.
        dispatch = self.dispatcher.store.get(claimed.id)
        now = self.dispatcher.clock.now()
        if (
            dispatch is None
            or dispatch.status.is_final
            or dispatch.next_action_at is None
            or dispatch.next_action_at > now
        ):
            return None
        return dispatch

    def run_once(self) -> int:
        """Claim and perform the steps due now; return how many were performed.

        Raises ConfigurationError from an adapter that is set up wrongly, and
        the store's own error when it cannot be reached (`run` waits and tries
        again instead).
        """
        return self._run_batch(None)

    async def arun_once(self) -> int:
        """The async twin of `run_once`."""
        return await self._arun_batch(None)

    def _run_batch(self, stop: threading.Event | None) -> int:
        claimed, lease_left = self._claim()
        performed = 0
        with self._held(claimed):
            for step in claimed:
                if stop is not None and stop.is_set():
                    break  # the steps not begun are released for another worker
                dispatch = self._still_due(step, lease_left)
                if dispatch is not None:
                    self.dispatcher.advance(dispatch)
                    performed += 1
        return performed

    async def _arun_batch(self, stop: asyncio.Event | None) -> int:
        claimed, lease_left = self._claim()
        performed = 0
        with self._held(claimed):
            for step in claimed:
                if stop is not None and stop.is_set():
                    break
                dispatch = self._still_due(step, lease_left)
                if dispatch is not None:
                    await self.dispatcher.aadvance(dispatch)
                    performed += 1
        return performed

    def run(self, *, stop: threading.Event | None = None, until_idle: bool = False) -> int:
        """Perform due steps until ``stop`` is set (or, with ``until_idle``, nothing is due).

        Setting ``stop`` ends the wait between polls at once; a step under way
        is finished first, its retries waiting as long as they must, and the
        rest of its batch is released. While the store cannot be reached the
        worker logs and tries again, waiting longer each time (up to 30
        seconds, jittered). Returns the number of steps performed; raises
        ConfigurationError from an adapter set up wrongly.
        """
        total = 0
        outage = _Outage()
        while stop is None or not stop.is_set():
            try:
                performed = self._run_batch(stop)
            except Exception as error:
                if not _unreachable(error):
                    raise
                self._rest(outage.wait(error), stop)
                continue
            outage.over()
            total += performed
            if performed == 0:
                if until_idle:
                    break
                self._rest(self.idle.total_seconds(), stop)
        logger.info("worker %s stopped after %d steps", self.name, total)
        return total

    async def arun(self, *, stop: asyncio.Event | None = None, until_idle: bool = False) -> int:
        """The async twin of `run`."""
        total = 0
        outage = _Outage()
        while stop is None or not stop.is_set():
            try:
                performed = await self._arun_batch(stop)
            except Exception as error:
                if not _unreachable(error):
                    raise
                await self._arest(outage.wait(error), stop)
                continue
            outage.over()
            total += performed
            if performed == 0:
                if until_idle:
                    break
                await self._arest(self.idle.total_seconds(), stop)
        logger.info("worker %s stopped after %d steps", self.name, total)
        return total

    def _rest(self, seconds: float, stop: threading.Event | None) -> None:
        """Wait between polls on the dispatcher's clock, or until ``stop`` is set.

        Only this wait is cut short: the dispatcher's retry waits go through
        the clock untouched, so a send under way never fires its tries at once.
        """
        clock = self.dispatcher.clock
        if stop is not None and _real_time(clock, "sleep"):
            stop.wait(max(0.0, seconds))
        else:
            clock.sleep(seconds)

    async def _arest(self, seconds: float, stop: asyncio.Event | None) -> None:
        """The async twin of `_rest`."""
        import asyncio  # already loaded: this runs in an event loop

        clock = self.dispatcher.clock
        if stop is not None and _real_time(clock, "asleep"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        else:
            await clock.asleep(seconds)
