"""What a worker process of `plan` does with a chunk of records: read, decide and word each.

Kept apart from the rest of the command line so that a worker imports only
what it needs (no typer, rich or SQLAlchemy): the records' reader, the
strategy and the JSON wording.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple

from multichannel import Contact, FallbackStrategy, Message
from multichannel.cli.csvfile import Row
from multichannel.cli.jsontext import dump_json
from multichannel.planning import Plan

__all__ = ["Outcome", "Output", "plan_records"]

Output = Literal["text", "json", "jsonl"]


class Outcome(NamedTuple):
    """What became of one record: its plan (or the plan's JSON text), or what is wrong with it.

    ``key`` is the id it claims, the contact's or as written, to find repeats.
    """

    line: int | None
    record_id: str | None
    key: str
    shown: Plan | str | None
    # (field, reason, how many more problems): a FieldError does not pickle.
    problem: tuple[str, str, int] | None


def plan_records(
    pending: list[Any],
    *,
    read: Callable[[Any], Row],
    message: Message,
    at: datetime,
    strategy: FallbackStrategy,
    output: Output,
) -> list[Outcome]:
    """Read each pending record with ``read``; plan each good one, worded for ``output``."""
    done = []
    for item in pending:
        row = read(item)
        found = row.read
        if not isinstance(found, Contact):
            key = (row.record_id or "").strip()
            problem = (found.field, found.reason, found.more)
            done.append(Outcome(row.line, row.record_id, key, None, problem))
            continue
        plan = Plan.of(found, message, at=at, strategy=strategy)
        shown: Plan | str = plan
        if output == "json":
            # An element of the array `dump_json` would print: indented one level.
            shown = "  " + dump_json(plan.as_json()).replace("\n", "\n  ")
        elif output == "jsonl":
            shown = dump_json(plan.as_json(), indent=None)
        done.append(Outcome(row.line, row.record_id, found.id, shown, None))
    return done
