"""Contacts from a CSV file as a CRM exports it: one contact per row, read row by row.

The columns are described in `multichannel.cli.files`. Each row becomes a
`Contact` or a `FieldError`, with the line of the file the row starts on (a
quoted cell may hold line breaks, so a row may span several lines). A row
with no value in any cell holds no contact: it is passed over and counted,
never silently.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
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

__all__ = ["BUILT_IN_CHANNELS", "CSV_COLUMNS", "Row", "parse_duration", "read_csv"]

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


def read_csv(path: Path, text: str) -> tuple[list[Row], list[Skipped]]:
    """Every record of a CSV file, read or refused, and the rows that hold none.

    Raises InputError for a problem with the file as a whole: no header, a bad
    column, an unbalanced quote.
    """
    rows = _rows(path, text)
    _, first = next(rows, (1, []))
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
    records: list[Row] = []
    skipped: list[Skipped] = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            blank = len(row) <= 1
            skipped.append(Skipped(line, BLANK_LINE if blank else EMPTY_CELLS))
            continue
        if len(row) > len(header):
            # Its cells may be shifted, so its "id" is not named: it may not be one.
            extra = f"has {len(row)} cells but the header names {len(header)} columns"
            records.append(Row(line, None, FieldError("", extra)))
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        read: Contact | FieldError
        try:
            read = _contact(cells, points)
        except FieldError as err:
            read = err
        records.append(Row(line, cells.get("id") or None, read))
    return records, skipped


def _rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """The rows of a CSV file, each with the line it starts on.

    An unbalanced quote is an error, never a silent merge.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
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
