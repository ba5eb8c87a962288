"""What is wrong with the files a command was given: one line per bad record, field and reason.

A contacts file is read whole: every bad record is reported, not only the
first, each with its number, the line of the file it starts on, the field at
fault and why. `problem_lines` caps a long list, so that a file with a broken
column says so in a screenful.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "BLANK_LINE",
    "EMPTY_CELLS",
    "SHOWN",
    "FieldError",
    "InputError",
    "InputErrors",
    "Problem",
    "Skipped",
    "count_line",
    "explain",
    "field_name",
    "more_problems",
    "problem_lines",
    "skipped_line",
]

# How many bad records (or warnings) are listed before "and N more".
SHOWN = 20


class InputError(Exception):
    """A file or value the user gave cannot be used; the message is one line for a person."""


class InputErrors(InputError):
    """Several problems with what the user gave, one line each; the first is the message."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__(lines[0] if lines else "bad input")
        self.lines = tuple(lines) or ("bad input",)


class FieldError(Exception):
    """What is wrong with one record: the field at fault (empty: the whole record) and why.

    ``more`` counts the record's other problems, which are not spelled out.
    """

    def __init__(self, field: str, reason: str, more: int = 0) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
        self.more = more


@dataclass(frozen=True)
class Problem:
    """One finding about one record: the file as given, the record's number and line, why."""

    source: str
    record: int
    line: int | None
    record_id: str | None
    field: str
    reason: str
    more: int = 0

    def __str__(self) -> str:
        named = f" (id {self.record_id!r})" if self.record_id and self.record_id.strip() else ""
        text = f"{self.source}: record {self.record}{named}: "
        text += f"{self.field}: {self.reason}" if self.field else self.reason
        text += more_problems(self.more)
        if self.line is not None:
            text += f" (line {self.line})"
        return text


@dataclass(frozen=True)
class Skipped:
    """A row of a contacts file that holds no record, and why it was passed over."""

    line: int
    reason: str


def more_problems(count: int) -> str:
    """`` (and 2 more problems)``: what follows the first problem of a record; empty for none."""
    return f" (and {count} more problem{'s' * (count > 1)})" if count else ""


def field_name(loc: Sequence[int | str]) -> str:
    """A pydantic location in words: ``points[0].address``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _loc_of(path: str) -> tuple[int | str, ...]:
    parts: list[int | str] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _problem(
    error: ErrorDetails, rename: Callable[[tuple[int | str, ...]], str]
) -> tuple[str, str]:
    """The field an error is about, in words, and what is wrong with it."""
    field = rename(tuple(error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    # A model-level validator may name a nested field itself ("points[0].address: ...").
    head, sep, rest = message.partition(": ")
    if sep and " " not in head and head.startswith(field.split(" ")[0]):
        field, message = rename(_loc_of(head)), rest
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known field"
    elif not error["type"].startswith("value_error") and isinstance(
        error.get("input"), str | int | float | bool | None
    ):
        message = f"{message} (got {error.get('input')!r})"
    return field, message


def explain(
    err: ValidationError, rename: Callable[[tuple[int | str, ...]], str] = field_name
) -> FieldError:
    """The first problem pydantic found, in words, counting the others."""
    errors = err.errors()
    field, message = _problem(errors[0], rename)
    return FieldError(field, message, len(errors) - 1)


def problem_lines(problems: Sequence[Problem], *, warning: bool = False) -> list[str]:
    """One line per problem, the first `SHOWN` of them, then how many more there are."""
    lines = [str(problem) for problem in problems[:SHOWN]]
    hidden = len(problems) - SHOWN
    if hidden > 0:
        what = "warning" if warning else "bad record"
        lines.append(f"{problems[0].source}: and {hidden} more {what}{'s' * (hidden > 1)}")
    return lines


def count_line(problems: Sequence[Problem], *, records: int, outcome: str = "") -> str | None:
    """How many records of the file are bad, when more than one is; ``outcome`` follows."""
    if len(problems) < 2:
        return None
    count = f"{problems[0].source}: {len(problems)} of {records} records are bad"
    return count + (f"; {outcome}" if outcome else "")


BLANK_LINE = "blank line"
EMPTY_CELLS = "row with every cell empty"
_PLURAL = {BLANK_LINE: "blank lines", EMPTY_CELLS: "rows with every cell empty"}


def skipped_line(source: str, skipped: Sequence[Skipped]) -> str | None:
    """What was passed over, by reason with its lines, or None when nothing was."""
    if not skipped:
        return None
    by_reason: dict[str, list[int]] = {}
    for row in skipped:
        by_reason.setdefault(row.reason, []).append(row.line)
    parts = []
    for reason, lines in by_reason.items():
        many = len(lines) > 1
        shown = ", ".join(map(str, lines[:5])) + (
            f" and {len(lines) - 5} more" if len(lines) > 5 else ""
        )
        what = _PLURAL.get(reason, reason) if many else reason
        parts.append(f"{len(lines)} {what} (line{'s' * many} {shown})")
    rows = "1 row that holds" if len(skipped) == 1 else f"{len(skipped)} rows that hold"
    return f"{source}: skipped {rows} no contact: " + "; ".join(parts)
