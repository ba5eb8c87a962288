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

__all__ = ["BatchResult", "Prepared", "run_batch", "run_batch_async"]


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


Prepared = BatchResult | Callable[[], Dispatch]
"""What a batch's preparation made of a contact: its result already, or the send still to make."""


def run_batch(
    prepare: Callable[[list[Contact]], list[Prepared]],
    contacts: Iterable[Contact],
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
    *,
    threads: bool = True,
) -> Iterator[BatchResult]:
    """Prepare contacts a chunk at a time, send what is left on up to ``concurrency`` threads.

    ``prepare`` runs in the caller's thread on each chunk read (up to the free
    places of ``concurrency``), and answers for each contact either its result
    (a step written for later needs no thread) or a call that sends to it.
    Results come as each ends. Contacts are read only in the caller's thread,
    never ahead of the free places, so a generator of any length is read as
    slowly as the sends go. Without ``threads`` each send is made in the
    caller's thread as its chunk is prepared: where nothing waits on I/O,
    threads would only take turns. Raises ValueError at once (not on first
    iteration) for a concurrency below 1.
    """
    _check_concurrency(concurrency)
    return _results(prepare, iter(contacts), concurrency, progress, threads)


def _results(
    prepare: Callable[[list[Contact]], list[Prepared]],
    source: Iterator[Contact],
    concurrency: int,
    progress: Callable[[BatchResult], None] | None,
    threads_wanted: bool,
) -> Iterator[BatchResult]:
    # Long-lived threads fed through a queue: a send costs two queue hand-overs,
    # not a future and a wait on every pending one.
    import queue
    import threading
    from collections import deque

    work: queue.SimpleQueue[tuple[Contact, Callable[[], Dispatch]] | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[BatchResult] = queue.SimpleQueue()
    ready: deque[BatchResult] = deque()

    def serve() -> None:
        while (item := work.get()) is not None:
            done.put(_sent(*item))

    threads: list[threading.Thread] = []
    in_flight = 0  # read and not yet handed back: prepared, queued or being sent
    sending = 0  # handed to the threads and not yet back
    exhausted = False
    try:
        while True:
            # A new chunk once every prepared result is handed out: a campaign of steps
            # for later is stored ``concurrency`` at a time, not one by one as places free.
            if not exhausted and not ready and in_flight < concurrency:
                chunk = _take(source, concurrency - in_flight)
                exhausted = len(chunk) < concurrency - in_flight
                in_flight += len(chunk)
                for contact, prepared in zip(chunk, _prepared(prepare, chunk), strict=True):
                    if isinstance(prepared, BatchResult):
                        ready.append(prepared)
                    elif not threads_wanted:
                        ready.append(_sent(contact, prepared))
                    else:
                        work.put((contact, prepared))
                        sending += 1
                while len(threads) < sending:
                    thread = threading.Thread(target=serve, name="multichannel-send", daemon=True)
                    thread.start()
                    threads.append(thread)
            if ready:
                result = ready.popleft()
            elif sending:
                result = done.get()
                sending -= 1
            else:
                return
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


def _sent(contact: Contact, send: Callable[[], Dispatch]) -> BatchResult:
    try:
        return BatchResult(contact, send(), None)
    except Exception as error:
        return BatchResult(contact, None, error)


def _prepared(
    prepare: Callable[[list[Contact]], list[Prepared]], chunk: list[Contact]
) -> list[Prepared]:
    """``prepare(chunk)``; should it fail as a whole, the error is each contact's result."""
    try:
        return prepare(chunk)
    except Exception as error:
        return [BatchResult(contact, None, error) for contact in chunk]


def _take(source: Iterator[Contact], count: int) -> list[Contact]:
    """Up to ``count`` contacts from ``source``; fewer once it ends (or gives None)."""
    chunk = []
    for _ in range(count):
        contact = next(source, None)
        if contact is None:
            break
        chunk.append(contact)
    return chunk


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
