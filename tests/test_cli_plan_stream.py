"""`multichannel plan` streams a CSV file: chunks of rows read, planned and printed in file order,
in one process or several, with the bad records listed at the end and the good ones planned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from multichannel.cli import app
from multichannel.cli.plans import SeenIds

AT = "2026-03-02T14:00:00Z"
MESSAGE = "body: Your appointment is on Monday at 10:00.\n"
PLAN_KEYS = ["contact_id", "status", "channel", "address", "at", "local_at", "reasons"]
HEADER = "id,timezone,channels,quiet_hours,email,sms\n"
ZONES = ("America/Detroit", "Asia/Tokyo", "Australia/Sydney", "")
# Small chunks, and enough of them for --jobs 2 to start worker processes (a file of up
# to 4 chunks is planned in one).
CHUNK_SIZE = 64
ROWS = 5 * CHUNK_SIZE + 40
ENV = {
    "COLUMNS": "400",
    "NO_COLOR": "1",
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "MULTICHANNEL_STORE": None,
}


def row(number: int) -> str:
    zone = ZONES[number % len(ZONES)]
    channels = "sms;email" if number % 3 else "email;sms"
    quiet = "22:00-07:00" if number % 2 else ""
    return f"p{number},{zone},{channels},{quiet},p{number}@example.com,+1734555{number:04}\n"


def contacts_csv(path: Path, rows: Sequence[str]) -> Path:
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


@pytest.fixture
def message(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE, encoding="utf-8")
    return path


@pytest.fixture
def many(tmp_path: Path) -> Path:
    return contacts_csv(tmp_path / "c.csv", [row(number) for number in range(ROWS)])


def jobs(count: int) -> list[str]:
    return ["--jobs", str(count), "--chunk-size", str(CHUNK_SIZE)]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args], env=ENV)


def run(*args: str | Path, merged: bool = False) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, its output piped (stderr into stdout if merged)."""
    env = {key: value for key, value in os.environ.items() if key not in ENV}
    env.update(COLUMNS="400", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "multichannel", *map(str, args)],
        capture_output=not merged,
        stdout=subprocess.PIPE if merged else None,
        stderr=subprocess.STDOUT if merged else None,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("output", [[], ["--json"], ["--jsonl"]])
def test_one_process_and_two_print_the_same_bytes(
    many: Path, message: Path, output: list[str]
) -> None:
    one = invoke("plan", many, message, "--at", AT, *jobs(1), *output)
    two = invoke("plan", many, message, "--at", AT, *jobs(2), *output)

    assert one.exit_code == 0, one.output
    assert two.exit_code == 0, two.output
    assert two.stdout == one.stdout
    assert one.stderr == two.stderr == ""


def test_json_is_one_array_and_jsonl_one_object_a_line_in_file_order(
    many: Path, message: Path
) -> None:
    array = invoke("plan", many, message, "--at", AT, "--json", *jobs(1))
    lines = invoke("plan", many, message, "--at", AT, "--jsonl", *jobs(1))

    planned = json.loads(array.stdout)
    assert array.stdout.startswith('[\n  {\n    "contact_id": "p0",\n')
    assert [json.loads(line) for line in lines.stdout.splitlines()] == planned
    assert [plan["contact_id"] for plan in planned] == [f"p{number}" for number in range(ROWS)]
    assert all(list(plan) == PLAN_KEYS for plan in planned)
    assert {plan["status"] for plan in planned} >= {"send_now", "scheduled"}


def test_bad_rows_are_listed_at_the_end_with_their_lines_and_the_others_planned(
    tmp_path: Path, message: Path
) -> None:
    rows = [row(number) for number in range(ROWS)]
    rows[0] = "p0,,,,p0-at-example.com,\n"  # line 2
    rows[CHUNK_SIZE + 5] = f"p{CHUNK_SIZE + 5},Mars/Base,,,x@example.com,\n"  # another chunk
    rows[ROWS - 2] = "p7,,,,again@example.com,\n"  # an id already used, in the last chunk
    rows[ROWS - 1] = f"p{ROWS - 1},,,,,555\n"  # the last row
    contacts = contacts_csv(tmp_path / "c.csv", rows)

    result = run("plan", contacts, message, "--at", AT, "--jsonl", *jobs(2), merged=True)

    assert result.returncode == 2
    out = result.stdout.splitlines()
    planned = [json.loads(line)["contact_id"] for line in out if line.startswith("{")]
    bad = {0, CHUNK_SIZE + 5, ROWS - 2, ROWS - 1}
    assert planned == [f"p{number}" for number in range(ROWS) if number not in bad]
    # Every plan comes first; what was wrong follows, in file order.
    assert out[: len(planned)] == [line for line in out if line.startswith("{")]
    assert [line.split(": record ")[1].split(" ")[0] for line in out[len(planned) : -1]] == [
        "1",
        str(CHUNK_SIZE + 6),
        str(ROWS - 1),
        str(ROWS),
    ]
    errors = out[len(planned) :]
    assert errors[0].startswith(f"error: {contacts}: record 1 (id 'p0'): points[0].address ")
    assert errors[0].endswith("(line 2)")
    assert "timezone: unknown time zone 'Mars/Base'" in errors[1]
    assert errors[1].endswith(f"(line {CHUNK_SIZE + 7})")
    assert errors[2] == (
        f"error: {contacts}: record {ROWS - 1} (id 'p7'): id: already used by record 8 "
        f"(line {ROWS})"
    )
    assert errors[3].endswith(f"(line {ROWS + 1})")
    assert errors[4] == (
        f"error: {contacts}: 4 of {ROWS} records are bad; the other {ROWS - 4} were planned"
    )
    assert "Traceback" not in result.stdout


def test_with_json_the_good_records_are_still_one_array(tmp_path: Path, message: Path) -> None:
    contacts = contacts_csv(tmp_path / "c.csv", [row(1), "bob,,,,bob,\n", row(2)])

    result = invoke("plan", contacts, message, "--at", AT, "--json")

    assert result.exit_code == 2
    assert [plan["contact_id"] for plan in json.loads(result.stdout)] == ["p1", "p2"]
    assert result.stderr.startswith(f"error: {contacts}: record 2 (id 'bob'): ")
    assert result.stderr.count("\n") == 1


def test_a_file_of_bad_records_plans_nothing_and_says_so(tmp_path: Path, message: Path) -> None:
    contacts = contacts_csv(tmp_path / "c.csv", ["ann,,,,ann,\n", "bob,,,,bob,\n"])

    result = invoke("plan", contacts, message, "--at", AT, "--json")

    assert result.exit_code == 2
    assert json.loads(result.stdout) == []
    assert result.stderr.splitlines()[-1] == (
        f"error: {contacts}: 2 of 2 records are bad; the other 0 were planned"
    )


def test_yaml_and_json_files_follow_the_same_rule(tmp_path: Path, message: Path) -> None:
    contacts = tmp_path / "c.yaml"
    contacts.write_text("- id: ann\n- id: bob\n  region: XX\n- id: cat\n", encoding="utf-8")

    result = invoke("plan", contacts, message, "--at", AT, "--jsonl")

    assert result.exit_code == 2
    assert [json.loads(line)["contact_id"] for line in result.stdout.splitlines()] == [
        "ann",
        "cat",
    ]
    assert result.stderr.startswith(f"error: {contacts}: record 2 (id 'bob'): region: ")
    assert result.stderr.rstrip().endswith("(line 2)")


def test_a_quote_left_open_part_way_stops_the_plan_there(tmp_path: Path, message: Path) -> None:
    rows = [row(number) for number in range(ROWS)]
    rows[ROWS - 3] = 'p9999,"America/Detroit,,,x@example.com,\n'
    contacts = contacts_csv(tmp_path / "c.csv", rows)

    result = invoke("plan", contacts, message, "--at", AT, "--json", *jobs(2))

    assert result.exit_code == 2
    planned = json.loads(result.stdout)  # the array is closed: stdout stays JSON
    assert [plan["contact_id"] for plan in planned] == [f"p{n}" for n in range(ROWS - 3)]
    assert result.stderr == (
        f"error: {contacts}: line {ROWS + 1}: unexpected end of data (is a quote left open?)\n"
    )


def test_a_byte_that_is_not_utf8_part_way_is_named_where_it_is(
    tmp_path: Path, message: Path
) -> None:
    good = (HEADER + "".join(row(number) for number in range(ROWS))).encode()
    contacts = tmp_path / "c.csv"
    contacts.write_bytes(good + b"ren\xe9,,,,r@example.com,\n")

    result = invoke("plan", contacts, message, "--at", AT, "--jsonl", *jobs(1))

    assert result.exit_code == 2
    assert result.stderr == f"error: {contacts}: not UTF-8 text (byte {len(good) + 3})\n"
    # Rows are decoded a block at a time: those before the block may have been planned.
    assert len(result.stdout.splitlines()) <= ROWS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,email\n", "contains no contacts"),
        ("name,email\nann,a@example.com\n", "the header has no 'id' column"),
        ("", "the file is empty; the first row must name the columns"),
    ],
)
def test_a_file_with_nothing_to_plan_prints_nothing(
    tmp_path: Path, message: Path, text: str, expected: str
) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text(text, encoding="utf-8")

    result = invoke("plan", contacts, message, "--at", AT, "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {contacts}: {expected}\n"


def test_a_bad_header_and_a_bad_message_are_both_reported(tmp_path: Path) -> None:
    contacts = contacts_csv(tmp_path / "c.csv", [])
    contacts.write_text("name\nann\n", encoding="utf-8")
    message = tmp_path / "m.yaml"
    message.write_text("subject: no body\n", encoding="utf-8")

    result = invoke("plan", contacts, message, "--at", AT)

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {contacts}: the header has no 'id' column",
        f"error: {message}: body: is required",
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--json", "--jsonl"], "error: --json and --jsonl cannot be given together; choose one\n"),
        (["--jobs", "0"], "error: --jobs must be at least 1; got 0\n"),
        (["--chunk-size", "0"], "error: --chunk-size must be at least 1; got 0\n"),
    ],
)
def test_bad_options_are_one_line_errors(
    many: Path, message: Path, options: list[str], expected: str
) -> None:
    result = invoke("plan", many, message, "--at", AT, *options)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == expected


def test_piped_there_is_no_progress_bar_and_stderr_stays_empty(many: Path, message: Path) -> None:
    result = run("plan", many, message, "--at", AT, "--jsonl", *jobs(2))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == ROWS
    assert "\x1b" not in result.stdout


def test_skipped_rows_are_noted_after_the_plans(tmp_path: Path, message: Path) -> None:
    contacts = contacts_csv(tmp_path / "c.csv", [row(1), "\n", ",,,,,\n", row(2)])

    result = run("plan", contacts, message, "--at", AT, "--jsonl", merged=True)

    assert result.returncode == 0, result.stdout
    *plans, note = result.stdout.splitlines()
    assert [json.loads(plan)["contact_id"] for plan in plans] == ["p1", "p2"]
    assert note == (
        f"note: {contacts}: skipped 2 rows that hold no contact: 1 blank line (line 3); "
        "1 row with every cell empty (line 4)"
    )


@given(st.lists(st.text(alphabet="aåb日\x00 \ud800", min_size=1, max_size=4), max_size=300))
def test_the_ids_seen_are_remembered_exactly_as_a_dict_would(ids: list[str]) -> None:
    # The one thing that grows with the file is kept compact; it must answer as a dict.
    seen = SeenIds()
    first: dict[str, int] = {}

    for record, key in enumerate(ids, start=1):
        assert seen.first_use(key, record) == first.setdefault(key, record)
    assert len(seen) == len(first)
