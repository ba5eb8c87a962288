"""Sending one message to many contacts with bounded concurrency, results in completion order."""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multichannel.contacts import Contact
from multichannel.dispatch import Dispatch
from multichannel.messages import Message

if TYPE_CHECKING:
    import asyncio

__all__ = ["BatchResult", "run_batch", "run_batch_async"]


@dataclass(frozen=True)
class BatchResult:
    """What became of one contact in a batch: its dispatch, or the error that stopped it."""

    contact: Contact
    dispatch: Dispatch | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        """True when a dispatch was created (whatever its status)."""
        return self.error is None


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")


def run_batch(
    send: Callable[[Contact, Message], Dispatch],
    contacts: Iterable[Contact],
    message: Message,
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
) -> Iterator[BatchResult]:
    """Call ``send`` for each contact on up to ``concurrency`` threads, yielding as each ends.

    Contacts are read in the caller's thread, one ahead of a free thread, so a
    generator is never read from two threads and never drained ahead of the
    sends. Raises ValueError at once (not on first iteration) for a
    concurrency below 1.
    """
    _check_concurrency(concurrency)

    def one(contact: Contact) -> BatchResult:
        try:
            return BatchResult(contact, send(contact, message), None)
        except Exception as error:
            return BatchResult(contact, None, error)

    return _results(one, iter(contacts), concurrency, progress)


def _results(
    one: Callable[[Contact], BatchResult],
    source: Iterator[Contact],
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
) -> Iterator[BatchResult]:
    # Long-lived threads fed through a queue: a send costs two queue hand-overs,
    # not a future and a wait on every pending one.
    import queue
    import threading

    work: queue.SimpleQueue[Contact | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[BatchResult] = queue.SimpleQueue()

    def serve() -> None:
        while (contact := work.get()) is not None:
            done.put(one(contact))

    threads: list[threading.Thread] = []
    in_flight = 0
    exhausted = False
    try:
        while True:
            while not exhausted and in_flight < concurrency:
                contact = next(source, None)
                if contact is None:
                    exhausted = True
                    break
                work.put(contact)
                in_flight += 1
                if len(threads) < in_flight:
                    thread = threading.Thread(target=serve, name="multichannel-send", daemon=True)
                    thread.start()
                    threads.append(thread)
            if not in_flight:
                return
            result = done.get()
            in_flight -= 1
            if progress is not None:
                progress(result)
            yield result
    finally:
        # Finished, failed or closed early: each thread ends once its send in hand has.
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()


async def _aiter(contacts: Iterable[Contact] | AsyncIterable[Contact]) -> AsyncIterator[Contact]:
    if isinstance(contacts, AsyncIterable):
        async for contact in contacts:
            yield contact
    else:
        for contact in contacts:
            yield contact


def run_batch_async(
    send: Callable[[Contact, Message], Awaitable[Dispatch]],
    contacts: Iterable[Contact] | AsyncIterable[Contact],
    message: Message,
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
) -> AsyncIterator[BatchResult]:
    """Await ``send`` for each contact, at most ``concurrency`` at once, yielding as each ends.

    Raises ValueError at once (not on first iteration) for a concurrency below 1.
    """
    _check_concurrency(concurrency)
    return _results_async(send, contacts, message, concurrency, progress)


async def _results_async(
    send: Callable[[Contact, Message], Awaitable[Dispatch]],
    contacts: Iterable[Contact] | AsyncIterable[Contact],
    message: Message,
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
) -> AsyncIterator[BatchResult]:
    async def one(contact: Contact) -> BatchResult:
        try:
            return BatchResult(contact, await send(contact, message), None)
        except Exception as error:
            return BatchResult(contact, None, error)

    import asyncio  # already loaded: this runs in an event loop

    source = _aiter(contacts)
    pending: set[asyncio.Task[BatchResult]] = set()
    # Each task hands itself over as it ends: no wait over every pending task per result.
    finished: asyncio.Queue[asyncio.Task[BatchResult]] = asyncio.Queue()
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                try:
                    contact = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                else:
                    task = asyncio.ensure_future(one(contact))
                    task.add_done_callback(finished.put_nowait)
                    pending.add(task)
            if not pending:
                return
            task = await finished.get()
            pending.discard(task)
            result = task.result()
            if progress is not None:
                progress(result)
            yield result
    finally:
        for task in pending:
            task.cancel()
        # Closing the results early must not leave sends running unowned.
        await asyncio.gather(*pending, return_exceptions=True)
