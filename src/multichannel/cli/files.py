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

Records are numbered from 1. `read_contacts` reads every record and keeps
each problem as a `Problem`: one line such as ``contacts.csv: record 3 (id
'bob'): points[0].address (column sms): '555' is not a valid phone number
(line 4)``, naming the line of the file the record starts on. A problem with
the file as a whole (unreadable, malformed, a bad CSV header) raises
`InputError`. A CSV row with no value in any cell holds no contact; it is
passed over and listed in `ContactsFile.skipped`.

`stream_contacts` opens a file to be read as it is used instead: a CSV file
a row at a time, in flat memory, its rows turned into records wherever the
caller likes (`plan` does it in worker processes).
"""

from __future__ import annotations

import bisect
import codecs
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import length_hint
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import ValidationError

from multichannel import Contact, Message
from multichannel.cli.csvfile import CSV_COLUMNS, CsvRows, Row, parse_duration, read_csv
from multichannel.cli.problems import (
    FieldError,
    InputError,
    InputErrors,
    Problem,
    Skipped,
    count_line,
    explain,
    more_problems,
    problem_lines,
)

__all__ = [
    "CSV_COLUMNS",
    "ContactsFile",
    "ContactsStream",
    "InputError",
    "InputErrors",
    "Problem",
    "Record",
    "Skipped",
    "load_contacts",
    "load_message",
    "parse_duration",
    "read_contacts",
    "stream_contacts",
]

_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


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


@dataclass(frozen=True)
class Record:
    """A contact read from a file, with its record number and the line it starts on."""

    number: int
    line: int | None
    contact: Contact


@dataclass(frozen=True)
class ContactsFile:
    """What a contacts file holds: the good records, the bad ones, the rows passed over.

    ``records`` counts every record, good and bad, in file order.
    """

    source: str
    kind: str
    read: tuple[Record, ...]
    problems: tuple[Problem, ...]
    skipped: tuple[Skipped, ...]
    records: int

    @property
    def contacts(self) -> list[Contact]:
        """The good records' contacts, in file order."""
        return [record.contact for record in self.read]


@dataclass
class ContactsStream:
    """A contacts file opened to be read as it is used, one record at a time.

    Each item of ``pending`` becomes a `Row` through ``read``. For CSV an item
    is a row of cells with its line, and ``read`` pickles, so that rows can be
    validated in other processes; ``skipped`` fills as ``pending`` is consumed.
    JSON and YAML files are read whole, and their items are rows already read.
    ``position()`` is how far the reading has got, out of ``size`` (bytes for
    CSV, records for the others).
    """

    source: str
    kind: str
    pending: Iterator[Any]
    read: Callable[[Any], Row]
    skipped: list[Skipped]
    size: int
    position: Callable[[], int]


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Turn a file that cannot be opened or read as UTF-8 into an InputError naming it."""
    try:
        yield
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


def _read_text(path: Path) -> str:
    with _file_errors(path):
        return path.read_text(encoding="utf-8-sig")


def _format(path: Path, allowed: Sequence[str]) -> str:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None or kind not in allowed:
        names = ", ".join(suffix for suffix, kind in _SUFFIXES.items() if kind in allowed)
        raise InputError(f"{path}: unknown file type {path.suffix or '(none)'!r}; use {names}")
    return kind


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: not valid JSON: {err.msg.removesuffix(' at')} "
            f"at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: not usable JSON: it is nested too deeply") from None


def _json_items(text: str) -> list[tuple[int, Any]] | None:
    """The elements of a top-level JSON array, each with the offset it starts at.

    None when the text is not one well-formed array; `_json` then says why.
    """
    decoder = json.JSONDecoder()
    at = _space(text, 0)
    if not text.startswith("[", at):
        return None
    items: list[tuple[int, Any]] = []
    at = _space(text, at + 1)
    closed = text.startswith("]", at)
    try:
        while not closed:
            value, end = decoder.raw_decode(text, at)
            items.append((at, value))
            at = _space(text, end)
            if text.startswith(",", at):
                at = _space(text, at + 1)
            elif text.startswith("]", at):
                closed = True
            else:
                return None
    except (json.JSONDecodeError, RecursionError):
        return None
    return items if _space(text, at + 1) == len(text) else None


def _space(text: str, at: int) -> int:
    """Where the JSON whitespace starting at ``at`` ends."""
    found = _JSON_SPACE.match(text, at)
    return at if found is None else found.end()


def _yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML document and the node it was built from, whose marks give line numbers."""
    try:
        # The reader refuses control characters as soon as it is built.
        loader = _Loader(text)
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from None
    try:
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from None
    except RecursionError:
        raise InputError(f"{path}: not usable YAML: it is nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_error(path: Path, err: yaml.YAMLError) -> InputError:
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
    # A ReaderError (a control character) has a reason instead of a problem.
    problem = getattr(err, "problem", None) or getattr(err, "reason", None) or type(err).__name__
    return InputError(f"{path}: not valid YAML: {problem}{where}")


def load_message(path: Path) -> Message:
    """The `Message` in a JSON or YAML file; raises InputError naming the file and field."""
    text = _read_text(path)
    document = (
        _json(path, text) if _format(path, ("json", "yaml")) == "json" else _yaml(path, text)[0]
    )
    if not isinstance(document, Mapping):
        raise InputError(f"{path}: expected a mapping of Message fields such as 'body'")
    try:
        return Message.model_validate(document)
    except ValidationError as err:
        problem = explain(err)
        raise InputError(f"{path}: {problem}{more_problems(problem.more)}") from None


def read_contacts(path: Path) -> ContactsFile:
    """Every record of a JSON, YAML or CSV contacts file, good or bad (see the module docs).

    Raises InputError for a problem with the file as a whole, or one that holds no record.
    """
    kind = _format(path, ("json", "yaml", "csv"))
    text = _read_text(path)
    skipped: list[Skipped] = []
    if kind == "csv":
        rows, skipped = read_csv(path, text)
    else:
        rows = _document_rows(path, kind, text)
    if not rows:
        raise InputError(f"{path}: contains no contacts")
    read: list[Record] = []
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        outcome = row.read
        key = outcome.id if isinstance(outcome, Contact) else (row.record_id or "").strip()
        if isinstance(outcome, Contact) and key in first_use:
            outcome = FieldError("id", f"already used by record {first_use[key]}")
        if key:
            first_use.setdefault(key, number)
        if isinstance(outcome, Contact):
            read.append(Record(number, row.line, outcome))
        else:
            problems.append(
                Problem(
                    str(path),
                    number,
                    row.line,
                    row.record_id,
                    outcome.field,
                    outcome.reason,
                    outcome.more,
                )
            )
    return ContactsFile(str(path), kind, tuple(read), tuple(problems), tuple(skipped), len(rows))


@contextmanager
def stream_contacts(path: Path) -> Iterator[ContactsStream]:
    """A JSON, YAML or CSV contacts file opened as a `ContactsStream`, closed on leaving.

    A CSV file is read as ``pending`` is consumed, a row at a time; JSON and
    YAML are read whole first. Raises InputError for a problem with the file as
    a whole: at once for one found before the first record (unreadable, a bad
    CSV header), and from ``pending`` for one found later (an unbalanced quote,
    a byte that is not UTF-8).
    """
    kind = _format(path, ("json", "yaml", "csv"))
    if kind != "csv":
        rows = _document_rows(path, kind, _read_text(path))
        handed = iter(rows)
        yield ContactsStream(
            str(path), kind, handed, _row, [], len(rows), lambda: len(rows) - length_hint(handed)
        )
        return
    with _file_errors(path):
        raw = path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        csv_rows = CsvRows(path, _decoded(path, text))
        yield ContactsStream(
            str(path),
            kind,
            iter(csv_rows),
            csv_rows.columns.read,
            csv_rows.skipped,
            os.fstat(raw.fileno()).st_size,
            raw.tell,
        )


def _row(row: Row) -> Row:
    return row


def _decoded(path: Path, text: IO[str]) -> Iterator[str]:
    """The lines of ``text``; a byte that is not UTF-8 is an InputError saying where it is."""
    try:
        yield from text
    except UnicodeDecodeError:
        # Text is decoded a block at a time, so the error's offset is within a block.
        raise InputError(f"{path}: not UTF-8 text (byte {_undecodable(path)})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None


def _undecodable(path: Path) -> int:
    """Where the first byte of ``path`` that is not UTF-8 is, counted from 0."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    read = 0
    with path.open("rb") as raw:
        while block := raw.read(1 << 16):
            held = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                return read - held + err.start
            read += len(block)
    return read


def load_contacts(path: Path) -> list[Contact]:
    """The contacts in a JSON, YAML or CSV file, when every record is good.

    Raises InputErrors listing the bad records (the first 20, then how many),
    or InputError for a problem with the file as a whole.
    """
    contacts = read_contacts(path)
    if contacts.problems:
        count = count_line(contacts.problems, records=contacts.records)
        raise InputErrors([*problem_lines(contacts.problems), *([count] if count else [])])
    return contacts.contacts


def _document_rows(path: Path, kind: str, text: str) -> list[Row]:
    lines: list[int | None]
    if kind == "json":
        items = _json_items(text)
        document = _json(path, text) if items is None else [value for _, value in items]
        breaks = [found.start() for found in re.finditer("\n", text)]
        lines = [bisect.bisect_left(breaks, at) + 1 for at, _ in items or ()]
    else:
        document, node = _yaml(path, text)
        lines = []
        if isinstance(node, yaml.SequenceNode):
            lines = [item.start_mark.line + 1 for item in node.value]
    if not isinstance(document, list):
        raise InputError(f"{path}: expected a list of contacts")
    if len(lines) != len(document):
        lines = [None] * len(document)
    rows = []
    for line, record in zip(lines, document, strict=True):
        record_id = record.get("id") if isinstance(record, Mapping) else None
        read: Contact | FieldError
        try:
            read = Contact.model_validate(record)
        except ValidationError as err:
            read = explain(err)
        rows.append(Row(line, record_id if isinstance(record_id, str) else None, read))
    return rows
