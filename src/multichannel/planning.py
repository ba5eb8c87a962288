"""Planning many contacts: what the strategy would do first for each one, nothing sent.

`plan_many` takes contacts from any iterable, a generator of millions
included, and yields one `Plan` per contact in input order. With ``jobs`` > 1
the contacts are decided in chunks by worker processes; only a few chunks per
worker are read ahead of the plans yielded, so memory stays flat however long
the input is. `map_chunks` is that machinery on its own, for work of your own
that should be spread the same way (the command line parses and validates CSV
rows in its workers with it).

Worker processes are started with the "spawn" method on every platform, so the
work and everything it carries must pickle, and a script that calls these with
``jobs`` > 1 must do so under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from multichannel.clock import require_aware
from multichannel.contacts import Contact
from multichannel.messages import Message
from multichannel.strategy import FallbackStrategy

__all__ = ["CHUNK_SIZE", "Plan", "map_chunks", "plan_many"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# Large enough that sending a chunk to a worker and back costs little beside the
# work on it, small enough that the chunks read ahead weigh little.
CHUNK_SIZE = 256
# Chunks in flight per worker: one being worked on and one waiting, so no worker idles.
_AHEAD = 2
# An input of at most this many chunks is worked on in the calling process.
_SHORT = 4


@dataclass(frozen=True, slots=True)
class Plan:
    """What would happen first to one contact at an instant: status, point, when, and why.

    ``status`` is ``send_now``, ``scheduled`` (the first open candidate opens
    later, at ``at``), or, when nothing can be sent, ``suppressed`` or
    ``expired``. ``zone`` is the zone the contact's times are read in (the
    first, when inferred from phone numbers); ``reasons`` is the decision log:
    the zone used, each candidate skipped and why, the decision.
    """

    contact_id: str
    status: str
    channel: str | None
    address: str | None
    at: datetime | None
    zone: str
    reasons: tuple[str, ...]

    @classmethod
    def of(
        cls,
        contact: Contact,
        message: Message,
        *,
        at: datetime,
        strategy: FallbackStrategy | None = None,
    ) -> Plan:
        """What ``strategy`` (default: `FallbackStrategy()`) would do first for ``contact``.

        Raises ValueError for a naive ``at``.
        """
        strategy = strategy or FallbackStrategy()
        action = strategy.decide(contact, message, now=at)
        point = action.point if action.kind != "stop" else None
        when: datetime | None
        if action.kind == "send":
            status, when = "send_now", at
        elif action.kind == "wait":
            status, when = action.status.value, action.until
        else:
            status, when = action.status.value, None
        return cls(
            contact_id=contact.id,
            status=status,
            channel=None if point is None else point.channel,
            address=None if point is None else point.address,
            at=when,
            zone=strategy.zones(contact)[0][0],
            reasons=(*action.notes, action.reason),
        )

    def as_json(self) -> dict[str, object]:
        """The plan as a JSON object, keys in a fixed order, instants as ISO 8601 text.

        ``at`` is in UTC and ``local_at`` the same instant in ``zone``; both are
        None when nothing would be sent.
        """
        return {
            "contact_id": self.contact_id,
            "status": self.status,
            "channel": self.channel,
            "address": self.address,
            "at": None if self.at is None else self.at.astimezone(UTC).isoformat(),
            "local_at": None
            if self.at is None
            else self.at.astimezone(ZoneInfo(self.zone)).isoformat(),
            "reasons": list(self.reasons),
        }


def plan_many(
    contacts: Iterable[Contact],
    message: Message,
    *,
    at: datetime,
    strategy: FallbackStrategy | None = None,
    jobs: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> Generator[Plan, None, None]:
    """One `Plan` per contact, in input order, each for the instant ``at``; nothing is sent.

    ``contacts`` is read lazily, ``chunk_size`` at a time. ``jobs`` = 1 decides
    in this process; more decide in that many worker processes (see the module
    docs), with results still in input order; closing the generator early
    stops them. Raises ValueError for a naive ``at``, or ``jobs`` or
    ``chunk_size`` below 1.
    """
    require_aware(at, "at")
    work = partial(_plan_chunk, message=message, at=at, strategy=strategy or FallbackStrategy())
    return map_chunks(work, contacts, jobs=jobs, chunk_size=chunk_size)


def _plan_chunk(
    contacts: Sequence[Contact], *, message: Message, at: datetime, strategy: FallbackStrategy
) -> list[Plan]:
    return [Plan.of(contact, message, at=at, strategy=strategy) for contact in contacts]


def map_chunks(
    work: Callable[[list[_Item]], Sequence[_Result]],
    items: Iterable[_Item],
    *,
    jobs: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> Generator[_Result, None, None]:
    """``work`` applied to ``items`` a chunk at a time; its results, in input order.

    ``work`` takes a list of at most ``chunk_size`` items and returns their
    results. With ``jobs`` > 1 it runs in that many worker processes, so it
    must pickle (a module-level function, or a `functools.partial` of one),
    and so must the items and results; it is sent to each worker once. At most
    ``2 * jobs + 1`` chunks are read from ``items`` beyond those whose results
    were all yielded. An input of at most 4 chunks is worked on in this
    process: starting processes would cost more than the work.
    Raises ValueError for ``jobs`` or ``chunk_size`` below 1; whatever ``work``
    raises, when its chunk's turn comes; and whatever iterating ``items``
    raises, after the results of the items before it.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1; got {chunk_size}")
    return _mapped(work, items, jobs, chunk_size)


def _mapped(
    work: Callable[[list[_Item]], Sequence[_Result]],
    items: Iterable[_Item],
    jobs: int,
    chunk_size: int,
) -> Generator[_Result, None, None]:
    chunks = _Chunks(items, chunk_size)
    head = chunks.take(1 if jobs == 1 else _SHORT + 1)
    if jobs > 1 and len(head) > _SHORT:
        yield from _pooled(work, head, chunks, jobs)
    else:
        # One process; or an input so short that starting processes would cost more.
        while head:
            for chunk in head:
                yield from work(chunk)
            head = chunks.take(1)
    chunks.raise_failure()


def _pooled(
    work: Callable[[list[_Item]], Sequence[_Result]],
    head: list[list[_Item]],
    chunks: _Chunks[_Item],
    jobs: int,
) -> Iterator[_Result]:
    # Imported here: the pool pulls in multiprocessing, which `import multichannel` avoids.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_install,
        initargs=(work,),
    )
    pending: deque[Future[Sequence[Any]]] = deque()
    try:
        for chunk in head + chunks.take(_AHEAD * jobs - len(head)):
            pending.append(pool.submit(_work_on, chunk))
        while pending:
            done = pending.popleft().result()
            # The next chunk is read before this one's results are handed on, so a
            # worker has it while the caller is busy with them.
            for chunk in chunks.take(_AHEAD * jobs - len(pending)):
                pending.append(pool.submit(_work_on, chunk))
            yield from done
    finally:
        # Also when the caller stops early or a chunk failed: drop what has not started.
        pool.shutdown(wait=True, cancel_futures=True)


class _Chunks(Generic[_Item]):
    """Items read a chunk at a time; what reading them raised is kept for its turn.

    The items read before a failure make a last, short chunk, so that their
    results come before the failure is raised, however far ahead it was met.
    """

    def __init__(self, items: Iterable[_Item], size: int) -> None:
        self._items = iter(items)
        self._size = size
        self._failure: Exception | None = None
        self._ended = False

    def take(self, count: int) -> list[list[_Item]]:
        """Up to ``count`` chunks; fewer when the items end or fail."""
        taken: list[list[_Item]] = []
        while len(taken) < count and not self._ended:
            chunk: list[_Item] = []
            try:
                for item in self._items:
                    chunk.append(item)
                    if len(chunk) == self._size:
                        break
                else:
                    self._ended = True
            except Exception as err:
                self._failure, self._ended = err, True
            if chunk:
                taken.append(chunk)
        return taken

    def raise_failure(self) -> None:
        """Raise what reading the items raised, if anything did."""
        if self._failure is not None:
            raise self._failure


# The work a worker process was started with; set once per process by `_install`.
_installed: Callable[[list[Any]], Sequence[Any]] | None = None


def _install(work: Callable[[list[Any]], Sequence[Any]]) -> None:
    global _installed
    _installed = work
    # Ctrl-C is the parent's to handle: it stops reading and shuts the pool down,
    # rather than every worker printing a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _work_on(chunk: list[Any]) -> Sequence[Any]:
    assert _installed is not None, "a worker was started without its work"
    return _installed(chunk)
