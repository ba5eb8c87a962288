"""Reading contacts and messages from files, with errors that name the file, record and field.

Contacts files
--------------
JSON or YAML (``.json``, ``.yaml``, ``.yml``): a list of contacts, each as
``Contact.model_dump(mode="json")`` writes it. In YAML, clock times such as
``21:00`` stay text (YAML 1.1 would read them as base-60 numbers) and only
``true``/``false`` are booleans, so ``region: NO`` is Norway.

CSV (``.csv``, UTF-8, as a CRM exports it; a byte-order mark is allowed): one
contact per row, a header row naming the columns in any order. Header names are
not case-sensitive; an empty cell means none.

=================  ===========================================================
column             content
=================  ===========================================================
``id``             required; your id for the person, unique in the file
``name``           how to address them
``timezone``       IANA zone, e.g. ``America/Detroit``; empty: inferred from
                   the phone numbers, else the strategy's default zone
``region``         ISO 3166 alpha-2 region for numbers without a country code
``channels``       ranked preferences, first choice first: ``sms;email`` or
                   ``voice:office;email``
``quiet_hours``    windows separated by ``;``, each ``HH:MM-HH:MM`` optionally
                   followed by days: ``21:00-08:00;12:00-13:00 mon-fri``
``avoid_days``     whole local days kept quiet: ``sat;sun`` (ranges allowed)
``response_wait``  how long to wait for an answer: ``30m``, ``4h``, ``1d``,
                   ``1h30m`` or ISO 8601 (``PT4H``)
``opted_out``      points the person opted out of: ``sms:mobile;email``
``allow_sensitive`` points that may receive sensitive content, same form
``<channel>``      one column per point: ``email``, ``sms``, ``voice``, ``fax``
``<channel>:<lbl>`` a labelled point: ``sms:mobile``, ``voice:office``; a channel
                   of your own needs a label (``push:phone``)
=================  ===========================================================

A point cell may hold several addresses separated by ``;``. Points are listed
in column order. In ``opted_out`` and ``allow_sensitive`` a reference without
a label (``sms``) names every point on that channel. A point's ``available``
hours cannot be written in CSV; use YAML or JSON for those.

Message files
-------------
JSON or YAML: one mapping with `Message`'s fields (``body``, ``subject``,
``variants``, ``expects_response``, ``deliver_by``, ...).

Records are numbered from 1. Every problem raises `InputError` with one line
such as ``contacts.csv: record 3 (id 'bob'): points[0].address (column sms):
'555' is not a valid phone number``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from multichannel import Contact, Message

__all__ = ["CSV_COLUMNS", "InputError", "load_contacts", "load_message", "parse_duration"]

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
_KNOWN_CHANNELS = ("email", "sms", "voice", "fax")
_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_WINDOW = re.compile(r"^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})(?:\s+(\S.*))?$")
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


class InputError(Exception):
    """A file or value the user gave cannot be used; the message is one line for a person."""


class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars: ``21:00`` stays text and ``no``/``on`` are not booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith((":bool", ":int", ":float"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None


def _format(path: Path, allowed: Sequence[str]) -> str:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None or kind not in allowed:
        names = ", ".join(suffix for suffix, kind in _SUFFIXES.items() if kind in allowed)
        raise InputError(f"{path}: unknown file type {path.suffix or '(none)'!r}; use {names}")
    return kind


def _parse_document(path: Path, kind: str) -> Any:
    text = _read_text(path)
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
            ) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise InputError(f"{path}: not valid YAML: {problem}{where}") from None


def _field(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(
    error: ErrorDetails, rename: Callable[[tuple[int | str, ...]], str] = _field
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


def _loc_of(path: str) -> tuple[int | str, ...]:
    parts: list[int | str] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _explain(
    where: str, err: ValidationError, rename: Callable[[tuple[int | str, ...]], str] = _field
) -> InputError:
    errors = err.errors()
    field, message = _problem(errors[0], rename)
    others = len(errors) - 1
    more = f" (and {others} more problem{'s' * (others > 1)})" if others else ""
    prefix = f"{where}: {field}" if field else where
    return InputError(f"{prefix}: {message}{more}")


def _record(path: Path, number: int, record_id: object) -> str:
    named = f" (id {record_id!r})" if isinstance(record_id, str) and record_id.strip() else ""
    return f"{path}: record {number}{named}"


def load_message(path: Path) -> Message:
    """The `Message` in a JSON or YAML file; raises InputError naming the file and field."""
    document = _parse_document(path, _format(path, ("json", "yaml")))
    if not isinstance(document, Mapping):
        raise InputError(f"{path}: expected a mapping of Message fields such as 'body'")
    try:
        return Message.model_validate(document)
    except ValidationError as err:
        raise _explain(str(path), err) from None


def load_contacts(path: Path) -> list[Contact]:
    """The contacts in a JSON, YAML or CSV file (see the module docs for the CSV columns).

    Raises InputError naming the file, the record and the field at fault.
    """
    kind = _format(path, ("json", "yaml", "csv"))
    contacts = _load_csv(path) if kind == "csv" else _load_document(path, kind)
    if not contacts:
        raise InputError(f"{path}: contains no contacts")
    seen: dict[str, int] = {}
    for number, contact in enumerate(contacts, start=1):
        if contact.id in seen:
            where = _record(path, number, contact.id)
            raise InputError(f"{where}: id: already used by record {seen[contact.id]}")
        seen[contact.id] = number
    return contacts


def _load_document(path: Path, kind: str) -> list[Contact]:
    document = _parse_document(path, kind)
    if not isinstance(document, list):
        raise InputError(f"{path}: expected a list of contacts")
    contacts = []
    for number, record in enumerate(document, start=1):
        record_id = record.get("id") if isinstance(record, Mapping) else None
        try:
            contacts.append(Contact.model_validate(record))
        except ValidationError as err:
            raise _explain(_record(path, number, record_id), err) from None
    return contacts


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


def _point_column(name: str) -> tuple[str, str | None]:
    channel, colon, label = name.partition(":")
    if colon and not label.strip():
        raise InputError(f"column {name!r} has an empty label; write e.g. 'sms:mobile'")
    if not colon and channel not in _KNOWN_CHANNELS:
        raise InputError(
            f"unknown column {name!r}; the columns are {', '.join(CSV_COLUMNS)}, "
            f"a point column ({', '.join(_KNOWN_CHANNELS)}) or '<channel>:<label>'"
        )
    return channel.strip(), label.strip() or None


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The rows of a CSV file; an unbalanced quote is an error, never a silent merge."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        yield from reader
    except csv.Error as err:
        raise InputError(f"{path}: line {reader.line_num}: {err} (is a quote left open?)") from None


def _load_csv(path: Path) -> list[Contact]:
    rows = _csv_rows(path)
    header = [name.strip().lower() for name in next(rows, [])]
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
            except InputError as err:
                raise InputError(f"{path}: {err}") from None
    contacts = []
    number = 0
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        number += 1
        if len(row) > len(header):
            raise InputError(
                f"{path}: record {number}: has {len(row)} cells but the header names "
                f"{len(header)} columns"
            )
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        contacts.append(_csv_contact(_record(path, number, cells.get("id")), cells, points))
    return contacts


def _csv_contact(
    where: str, cells: Mapping[str, str], columns: Mapping[str, tuple[str, str | None]]
) -> Contact:
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
        raise InputError(f"{where}: {column}: {err}") from None
    if not cells.get("id"):
        raise InputError(f"{where}: id: is empty; every row needs an id")
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
            return _field(loc[1:])
        if loc[:1] == ("points",) and len(loc) > 1 and isinstance(loc[1], int):
            return f"{_field(loc)} (column {point_columns[loc[1]]})"
        return _field(loc)

    try:
        return Contact.model_validate(record)
    except ValidationError as err:
        raise _explain(where, err, rename) from None


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
