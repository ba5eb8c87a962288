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
    import concurrent.futures

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
    """Call ``send`` for each contact on a thread pool, at most ``concurrency`` in flight."""
    _check_concurrency(concurrency)

    def one(contact: Contact) -> BatchResult:
        try:
            return BatchResult(contact, send(contact, message), None)
        except Exception as error:
            return BatchResult(contact, None, error)

    def results() -> Iterator[BatchResult]:
        import concurrent.futures  # loaded by whoever sends a batch, not by every import

        source = iter(contacts)
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            pending: set[concurrent.futures.Future[BatchResult]] = set()
            exhausted = False
            while True:
                while not exhausted and len(pending) < concurrency:
                    contact = next(source, None)
                    if contact is None:
                        exhausted = True
                    else:
                        pending.add(pool.submit(one, contact))
                if not pending:
                    return
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    result = future.result()
                    if progress is not None:
                        progress(result)
                    yield result

    return results()


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
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                try:
                    contact = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                else:
                    pending.add(asyncio.ensure_future(one(contact)))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                result = task.result()
                if progress is not None:
                    progress(result)
                yield result
    finally:
        for task in pending:
            task.cancel()
        # Closing the results early must not leave sends running unowned.
        await asyncio.gather(*pending, return_exceptions=True)
