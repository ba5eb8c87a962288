"""Contacts from a CSV file as a CRM exports it: one contact per row, read row by row.

The columns are described in `multichannel.cli.files`. Each row becomes a
`Contact` or a `FieldError`, with the line of the file the row starts on (a
quoted cell may hold line breaks, so a row may span several lines). A row
with no value in any cell holds no contact: it is passed over and counted,
never silently.

`CsvRows` reads a file as a stream, never holding more than a row, and
`Columns.read` turns a row into its record, so that `plan` can read a file of
any size and validate its rows in other processes; `read_csv` reads a whole
text with the same two.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from multichannel import Contact
from multichannel.cli.problems import (
    BLANK_LINE,
    EMPTY_CELLS,
    FieldError,
    InputError,
    Skipped,
    explain,
    field_name,
)

__all__ = [
    "BUILT_IN_CHANNELS",
    "CSV_COLUMNS",
    "Columns",
    "CsvRows",
    "Row",
    "parse_duration",
    "read_csv",
]

CSV_COLUMNS = (
    "id",
    "name",
    "timezone",
    "region",
    "channels",
    "quiet_hours",
    "avoid_days",
    "response_wait",
    "opted_out",
    "allow_sensitive",
)
# The channels the library's own adapters send on; any other needs an adapter of yours.
BUILT_IN_CHANNELS = ("email", "sms", "voice", "fax")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_WINDOW = re.compile(r"^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})(?:\s+(\S.*))?$")
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


@dataclass(frozen=True)
class Row:
    """One record of the file: the line it starts on, its id as written, and what it became."""

    line: int | None
    record_id: str | None
    read: Contact | FieldError


def parse_duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``1d``, ``1h30m`` or ISO 8601 (``PT4H``) as a timedelta.

    Raises ValueError for anything else, including a bare number without a unit.
    """
    compact = text.strip().lower().replace(" ", "")
    match = _DURATION.match(compact)
    if compact and match:
        weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if compact.startswith(("p", "-p")):
        try:
            return _TIMEDELTA.validate_python(compact.upper())
        except ValidationError:
            pass
    raise ValueError(f"{text!r} is not a duration; write e.g. 30m, 4h, 1d or PT4H")


@dataclass(frozen=True)
class Columns:
    """A CSV file's header: its column names in order, and the point each point column holds.

    It turns a row of cells into a record, in whichever process does the
    work: it pickles, and holds nothing else of the file.
    """

    names: tuple[str, ...]
    points: Mapping[str, tuple[str, str | None]]

    def read(self, row: tuple[int, list[str]]) -> Row:
        """The record in one row, given with the line it starts on: a `Contact` or a `FieldError`.

        The row must have a value in some cell (see `CsvRows`).
        """
        line, cells = row
        if len(cells) > len(self.names):
            # Its cells may be shifted, so its "id" is not named: it may not be one.
            extra = f"has {len(cells)} cells but the header names {len(self.names)} columns"
            return Row(line, None, FieldError("", extra))
        named = dict(zip(self.names, (cell.strip() for cell in cells), strict=False))
        read: Contact | FieldError
        try:
            read = _contact(named, self.points)
        except FieldError as err:
            read = err
        return Row(line, named.get("id") or None, read)


class CsvRows:
    """A CSV file's rows as they are read: the header first, then each row that holds a record.

    Iterating gives each row with a value in some cell, with the line it starts
    on, for `Columns.read`; the rows with none are passed over and kept in
    ``skipped``. Raises InputError for a bad header as soon as it is made, and
    for an unbalanced quote when the iteration reaches it.
    """

    def __init__(self, path: Path, lines: Iterable[str]) -> None:
        self.path = path
        self.skipped: list[Skipped] = []
        self._rows = _rows(path, lines)
        _, first = next(self._rows, (1, []))
        self.columns = _columns(path, first)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        for line, cells in self._rows:
            if any(cell.strip() for cell in cells):
                yield line, cells
            else:
                blank = len(cells) <= 1
                self.skipped.append(Skipped(line, BLANK_LINE if blank else EMPTY_CELLS))


def read_csv(path: Path, text: str) -> tuple[list[Row], list[Skipped]]:
    """Every record of a CSV file, read or refused, and the rows that hold none.

    Raises InputError for a problem with the file as a whole: no header, a bad
    column, an unbalanced quote.
    """
    rows = CsvRows(path, io.StringIO(text, newline=""))
    return [rows.columns.read(row) for row in rows], rows.skipped


def _columns(path: Path, first: list[str]) -> Columns:
    header = [name.strip().lower() for name in first]
    if not any(header):
        raise InputError(f"{path}: the file is empty; the first row must name the columns")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(f"{path}: column {duplicates[0]!r} appears more than once")
    if "id" not in header:
        raise InputError(f"{path}: the header has no 'id' column")
    points: dict[str, tuple[str, str | None]] = {}
    for name in header:
        if name not in CSV_COLUMNS:
            try:
                points[name] = _point_column(name)
            except ValueError as err:
                raise InputError(f"{path}: {err}") from None
    return Columns(tuple(header), points)


def _rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """The rows of a CSV file, each with the line it starts on.

    An unbalanced quote is an error, never a silent merge.
    """
    reader = csv.reader(lines, strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as err:
        raise InputError(f"{path}: line {reader.line_num}: {err} (is a quote left open?)") from None


def _point_column(name: str) -> tuple[str, str | None]:
    channel, colon, label = name.partition(":")
    if colon and not label.strip():
        raise ValueError(f"column {name!r} has an empty label; write e.g. 'sms:mobile'")
    if not colon and channel not in BUILT_IN_CHANNELS:
        raise ValueError(
            f"unknown column {name!r}; the columns are {', '.join(CSV_COLUMNS)}, "
            f"a point column ({', '.join(BUILT_IN_CHANNELS)}) or '<channel>:<label>'"
        )
    return channel.strip(), label.strip() or None


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def _windows(cell: str) -> list[dict[str, str]]:
    windows = []
    for part in _split(cell):
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(
                f"{part!r} is not a window; write HH:MM-HH:MM, optionally followed by days, "
                "e.g. '21:00-08:00' or '12:00-13:00 mon-fri'"
            )
        start, end, days = match.groups()
        window = {"start": start, "end": end}
        if days:
            window["days"] = days.replace(" ", "")
        windows.append(window)
    return windows


def _days(cell: str) -> list[str]:
    return [day for part in _split(cell) for day in part.split(",") if day.strip()]


def _contact(cells: Mapping[str, str], columns: Mapping[str, tuple[str, str | None]]) -> Contact:
    """The contact in one row; raises FieldError naming the column or field at fault."""
    point_columns: list[str] = []
    points: list[dict[str, Any]] = []
    for column, (channel, label) in columns.items():
        for address in _split(cells.get(column, "")):
            point_columns.append(column)
            points.append({"channel": channel, "address": address, "label": label})
    preferences: dict[str, Any] = {}
    column = ""
    try:
        for column, flag in (("opted_out", "opted_out"), ("allow_sensitive", "allow_sensitive")):
            for ref in _split(cells.get(column, "")):
                _flag_points(points, ref.lower(), flag)
        column = "quiet_hours"
        preferences["quiet_hours"] = _windows(cells.get(column, ""))
        column = "avoid_days"
        preferences["avoid_days"] = _days(cells.get(column, ""))
        column = "response_wait"
        if cells.get(column):
            preferences["response_wait"] = parse_duration(cells[column])
    except ValueError as err:
        raise FieldError(column, str(err)) from None
    if not cells.get("id"):
        raise FieldError("id", "is empty; every row needs an id")
    if cells.get("channels"):
        preferences["channels"] = cells["channels"]
    record = {
        "id": cells.get("id", ""),
        "name": cells.get("name") or None,
        "timezone": cells.get("timezone") or None,
        "region": cells.get("region") or None,
        "points": points,
        "preferences": preferences,
    }

    def rename(loc: tuple[int | str, ...]) -> str:
        if loc[:1] == ("preferences",) and len(loc) > 1:
            return field_name(loc[1:])
        if loc[:1] == ("points",) and len(loc) > 1 and isinstance(loc[1], int):
            return f"{field_name(loc)} (column {point_columns[loc[1]]})"
        return field_name(loc)

    try:
        return Contact.model_validate(record)
    except ValidationError as err:
        raise explain(err, rename) from None


def _flag_points(points: list[dict[str, Any]], ref: str, flag: str) -> None:
    channel, _, label = ref.partition(":")
    matched = [
        point
        for point in points
        if point["channel"] == channel and (not label or point["label"] == label)
    ]
    if not matched:
        raise ValueError(f"{ref!r} names no point of this contact")
    for point in matched:
        point[flag] = True
