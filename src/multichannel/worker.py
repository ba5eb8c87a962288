"""The worker: claims due steps from the store under a lease and performs them.

Several workers, in one process or many, may share one store: a claimed step is
leased to one worker until the lease runs out, so no two perform it. A worker
killed mid-step leaves its lease to expire, and the next worker takes over; a
send that was under way when it died is found by the dispatcher and handled by
its ``interrupted`` policy instead of being sent blindly again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from multichannel.dispatch import Dispatch
from multichannel.dispatcher import Dispatcher
from multichannel.errors import ConfigurationError

__all__ = ["Worker"]

logger = logging.getLogger("multichannel.worker")


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
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

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
    def _held(self, claimed: list[Dispatch]) -> Iterator[Callable[[Dispatch], None]]:
        """Hand out a release for each step; release whatever is left if a step raises."""
        held = {dispatch.id for dispatch in claimed}

        def release(dispatch: Dispatch) -> None:
            held.discard(dispatch.id)
            self.dispatcher.store.release(dispatch.id, self.name)

        try:
            yield release
        finally:
            for dispatch_id in sorted(held):
                self.dispatcher.store.release(dispatch_id, self.name)

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

        Raises ConfigurationError from an adapter that is set up wrongly.
        """
        claimed, lease_left = self._claim()
        performed = 0
        with self._held(claimed) as release:
            for step in claimed:
                dispatch = self._still_due(step, lease_left)
                if dispatch is not None:
                    self.dispatcher.advance(dispatch)
                    performed += 1
                release(step)
        return performed

    async def arun_once(self) -> int:
        """The async twin of `run_once`."""
        claimed, lease_left = self._claim()
        performed = 0
        with self._held(claimed) as release:
            for step in claimed:
                dispatch = self._still_due(step, lease_left)
                if dispatch is not None:
                    await self.dispatcher.aadvance(dispatch)
                    performed += 1
                release(step)
        return performed

    def run(self, *, stop: threading.Event | None = None, until_idle: bool = False) -> int:
        """Perform due steps until ``stop`` is set (or, with ``until_idle``, nothing is due).

        Returns the number of steps performed.
        """
        total = 0
        while stop is None or not stop.is_set():
            performed = self.run_once()
            total += performed
            if performed == 0:
                if until_idle:
                    break
                self.dispatcher.clock.sleep(self.idle.total_seconds())
        logger.info("worker %s stopped after %d steps", self.name, total)
        return total

    async def arun(self, *, stop: asyncio.Event | None = None, until_idle: bool = False) -> int:
        """The async twin of `run`."""
        total = 0
        while stop is None or not stop.is_set():
            performed = await self.arun_once()
            total += performed
            if performed == 0:
                if until_idle:
                    break
                await self.dispatcher.clock.asleep(self.idle.total_seconds())
        logger.info("worker %s stopped after %d steps", self.name, total)
        return total
