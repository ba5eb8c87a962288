"""How `plan` works through a contacts file: records read, planned and worded in file order.

Reading a record (validating its addresses is most of the work), deciding and
wording the plan happen in `plan_records`, a chunk of records at a time, in
worker processes when there are several (`multichannel.planning.map_chunks`).
This process only checks that ids are not repeated, numbers the records,
writes what the workers worded and keeps the bad records for the end, so
memory stays flat whatever the file's size, apart from the ids seen.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import TextIO, overload

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from multichannel import FallbackStrategy, Message
from multichannel.cli.common import one_line
from multichannel.cli.files import ContactsStream
from multichannel.cli.planwork import Outcome, Output, plan_records
from multichannel.cli.problems import (
    SHOWN,
    InputError,
    Problem,
    count_line,
    problem_lines,
    skipped_line,
)
from multichannel.cli.render import console, show_plan
from multichannel.planning import CHUNK_SIZE, Plan, map_chunks

__all__ = [
    "ROWS_PER_CHUNK",
    "BadRecords",
    "JsonWriter",
    "Outcome",
    "Output",
    "Planner",
    "SeenIds",
    "plan_records",
    "print_plans",
]

# Validating a row takes about half a millisecond, so a chunk is about half a second of
# a worker's time, and a file of up to 4 chunks is planned in this process: starting a
# worker (which imports the command line) costs about as much.
ROWS_PER_CHUNK = 1024


class BadRecords(Sequence[Problem]):
    """The bad records of a file as they are found: the first `SHOWN` kept, the rest counted.

    `problem_lines` and `count_line` show no more than these, so a file whose
    every row is bad costs no more memory than a good one.
    """

    def __init__(self) -> None:
        self._kept: list[Problem] = []
        self._count = 0

    def add(self, problem: Problem) -> None:
        """Count ``problem``, and keep it if it is among the first `SHOWN`."""
        if self._count < SHOWN:
            self._kept.append(problem)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Problem: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Problem]: ...
    def __getitem__(self, index: int | slice) -> Problem | Sequence[Problem]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if stop > len(self._kept):
                raise IndexError("only the first bad records are kept")
            return self._kept[start:stop:step]
        return self._kept[index]


class SeenIds:
    """Each id seen so far and the record that first used it, in some 30 bytes an id.

    A dict of them takes some 120 bytes an id, 120 MB for a million records:
    here the ids lie end to end in one buffer, found through an open-addressing
    table of their positions (arrays of machine integers, not Python objects).
    The match is exact: ids are compared, not only their hashes.
    """

    def __init__(self) -> None:
        self._text = bytearray()
        self._ends = array("Q")  # where each id ends in _text
        self._records = array("I")  # the record that first used it
        self._slots = array("i", [-1]) * 64  # an index into _ends, or -1 for none

    def __len__(self) -> int:
        return len(self._ends)

    def first_use(self, key: str, record: int) -> int:
        """The record that first used ``key``: an earlier one, or ``record``, now remembered."""
        data = key.encode(errors="surrogatepass")  # a JSON file may hold a lone surrogate
        mask = len(self._slots) - 1
        slot = hash(key) & mask
        while (index := self._slots[slot]) != -1:
            if self._id(index) == data:
                return self._records[index]
            slot = (slot + 1) & mask
        self._slots[slot] = len(self._ends)
        self._text += data
        self._ends.append(len(self._text))
        self._records.append(record)
        if 2 * len(self._ends) > len(self._slots):
            self._grow()
        return record

    def _id(self, index: int) -> bytes:
        return bytes(self._text[self._ends[index - 1] if index else 0 : self._ends[index]])

    def _grow(self) -> None:
        self._slots = array("i", [-1]) * (2 * len(self._slots))
        mask = len(self._slots) - 1
        for index in range(len(self._ends)):
            slot = hash(self._id(index).decode(errors="surrogatepass")) & mask
            while self._slots[slot] != -1:
                slot = (slot + 1) & mask
            self._slots[slot] = index


class Planner:
    """Numbers a file's records as their outcomes come, refuses repeated ids, counts bad ones."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.records = 0
        self.bad = BadRecords()
        # Every id seen, to refuse a repeat as reading the file whole does: the one
        # thing that grows with the file.
        self._seen = SeenIds()

    @property
    def planned(self) -> int:
        """How many records were planned so far."""
        return self.records - len(self.bad)

    def plans(self, outcomes: Iterable[Outcome]) -> Iterator[Plan | str]:
        """The good records' plans, in order; the bad records go to ``bad``."""
        for outcome in outcomes:
            self.records += 1
            problem = outcome.problem
            first = self._seen.first_use(outcome.key, self.records) if outcome.key else None
            if problem is None and first is not None and first != self.records:
                problem = ("id", f"already used by record {first}", 0)
            if problem is None:
                assert outcome.shown is not None, "a record without a problem is planned"
                yield outcome.shown
                continue
            field, reason, more = problem
            self.bad.add(
                Problem(
                    self.source, self.records, outcome.line, outcome.record_id, field, reason, more
                )
            )


class JsonWriter:
    """Writes plans' JSON texts as they come: one a line, or as the elements of one array."""

    def __init__(self, out: TextIO, *, lines: bool) -> None:
        self.out = out
        self.lines = lines
        self._opened = False

    def write(self, text: str) -> None:
        """Write one plan's text: a line of its own, or the array's next element."""
        if self.lines:
            self.out.write(text + "\n")
        else:
            self.out.write((",\n" if self._opened else "[\n") + text)
        self._opened = True

    def close(self, *, read_any: bool) -> None:
        """End the array: ``[]`` when nothing was written but some record was read."""
        if self.lines:
            return
        if self._opened:
            self.out.write("\n]\n")
        elif read_any:
            self.out.write("[]\n")


def print_plans(
    stream: ContactsStream,
    message: Message,
    at: datetime,
    strategy: FallbackStrategy,
    *,
    output: Output,
    jobs: int,
    chunk_size: int = ROWS_PER_CHUNK,
) -> list[str]:
    """Plan every record of ``stream`` and print the plans on stdout as they come.

    Returns the lines that say what was wrong, for the end: the bad records
    (the first `SHOWN`, then how many), and a problem with the file found
    part-way through, after which nothing more is read. Rows passed over are
    noted on stderr here.
    """
    work = partial(
        plan_records, read=stream.read, message=message, at=at, strategy=strategy, output=output
    )
    # JSON and YAML files were read whole here, and a bad record's error does not
    # pickle: only CSV rows are read in worker processes.
    jobs = jobs if stream.kind == "csv" else 1
    outcomes = map_chunks(work, stream.pending, jobs=jobs, chunk_size=chunk_size)
    planner = Planner(stream.source)
    errors = console(stderr=True)
    out = console()
    writer = None if output == "text" else JsonWriter(sys.stdout, lines=output == "jsonl")
    failure: InputError | None = None
    progress = Progress(
        TextColumn("planning"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[planned]} planned"),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
        # Only when the plans go elsewhere: on the same terminal a bar would break them up.
        disable=not errors.is_terminal or out.is_terminal,
        redirect_stdout=False,
        redirect_stderr=False,
    )

    def tracked(outcomes: Iterator[Outcome]) -> Iterator[Outcome]:
        task = progress.add_task("planning", total=stream.size, planned=0)
        for count, outcome in enumerate(outcomes, start=1):
            if count % CHUNK_SIZE == 0:
                progress.update(task, completed=stream.position(), planned=planner.planned)
            yield outcome

    try:
        with progress:
            plans = planner.plans(tracked(outcomes))
            if writer is None:
                show_plan(out, (plan for plan in plans if isinstance(plan, Plan)), at)
            else:
                for text in plans:
                    writer.write(str(text))
    except InputError as err:
        failure = err  # found part-way through the file: what was planned stays planned
    except BrokenPipeError:
        # Whoever read the plans has gone (`| head`): stop, without a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    finally:
        outcomes.close()  # stops the workers, if the plans stopped early
        if writer is not None:
            writer.close(read_any=planner.records > 0)
        # Every plan is out before what follows on stderr, even on one terminal or pipe.
        sys.stdout.flush()
    if failure is None and planner.records == 0:
        failure = InputError(f"{stream.source}: contains no contacts")
    skipped = skipped_line(stream.source, stream.skipped)
    if skipped is not None:
        typer.echo(f"note: {one_line(skipped)}", err=True)
    lines = problem_lines(planner.bad)
    others = planner.planned
    count = count_line(
        planner.bad,
        records=planner.records,
        outcome=f"the other {others} {'was' if others == 1 else 'were'} planned",
    )
    lines += [count] if count is not None else []
    return lines + ([str(failure)] if failure is not None else [])
