"""``multichannel plan`` on a large CSV, next to merely validating the same rows' addresses.

A CSV of generated contacts (Detroit, London, Tokyo and Sydney; a mobile
number and an email each; quiet nights; some with their zone left to be read
from the number) is written to a temporary directory, and ``multichannel plan
FILE MESSAGE --at ... --json`` runs on it as a subprocess, its output written
to a file. When the command offers ``--jsonl`` (JSON lines, streamed) it is
used instead of ``--json``, and ``--jobs`` with one job per core: this module
reads ``plan --help`` to know, so the figures follow the command as it grows.

The floor is what no planner can skip: a plain loop in this process reading
the same CSV and checking each number with ``phonenumbers`` (parse and
is_valid_number) and each email with ``email_validator`` (no DNS), timed once
before the plan and once after; the faster is the floor. The ratio is the
plan's wall time (interpreter start included) over the floor's.

The plan's peak memory is its process's maxrss (`common.run_measured`; with
``--jobs`` that is its largest process, not their sum), at a tenth of the rows
and at all of them: a plan that streams stays flat.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Measured, Row, Settings, expect, note, progress, ratio, run_measured

AT = "2026-03-02T15:00:00Z"  # a Monday: 10:00 in Detroit, 15:00 in London, night in Tokyo
COMMAND = [sys.executable, "-m", "multichannel", "plan"]
COLUMNS = ("id", "timezone", "channels", "quiet_hours", "sms", "email")
SMS, EMAIL = COLUMNS.index("sms"), COLUMNS.index("email")


def contact_row(number: int) -> tuple[str, ...]:
    """One generated contact, one of four kinds in turn; every number and email is valid."""
    kind = number % 4
    if kind == 0:
        zone, phone = "America/Detroit", f"+1734{200 + number % 800:03d}{number % 10_000:04d}"
        channels, quiet = "sms;email", "21:00-08:00"
    elif kind == 1:
        zone, phone = "Europe/London", f"+447911{number % 1_000_000:06d}"
        channels, quiet = "email;sms", "22:00-07:00"
    elif kind == 2:
        zone, phone = "", f"+8190{10_000_000 + number % 90_000_000:08d}"  # zone from the number
        channels, quiet = "sms;email", "22:00-07:00 mon-fri"
    else:
        zone, phone = "Australia/Sydney", f"+61412{number % 1_000_000:06d}"
        channels, quiet = "sms;email", ""
    return (f"person-{number}", zone, channels, quiet, phone, f"person{number}@example.com")


def write_contacts(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(contact_row(number) for number in range(count))


def plan_options() -> list[str]:
    """The output and parallelism flags this version of ``plan`` offers."""
    shown = subprocess.run(
        [*COMMAND, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    ).stdout
    options = ["--jsonl"] if "--jsonl" in shown else ["--json"]
    if "--jobs" in shown:
        options += ["--jobs", str(os.cpu_count() or 1)]
    return options


def run_plan(contacts: Path, message: Path, options: list[str], folder: Path) -> Measured:
    """Wall time and peak memory of ``multichannel plan`` on ``contacts``; all rows planned."""
    output, errors = folder / "plan.out", folder / "plan.err"
    command = [*COMMAND, str(contacts), str(message), "--at", AT, *options]
    with output.open("wb") as out, errors.open("wb") as err:
        measured = run_measured(command, stdout=out, stderr=err)
    if measured.exit != 0:
        sys.exit(f"multichannel plan exited {measured.exit}: {errors.read_text()[-2000:]}")
    with output.open("rb") as planned:
        count = sum(b'"contact_id"' in line for line in planned)
    with contacts.open("rb") as rows:
        expect("contacts planned", count, sum(1 for _ in rows) - 1)
    return measured


def validation_floor(contacts: Path) -> float:
    """Seconds to read the CSV and validate each row's number and email, nothing more."""
    import phonenumbers
    from email_validator import validate_email

    started = time.perf_counter()
    with contacts.open(newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        next(rows)
        for row in rows:
            number = phonenumbers.parse(row[SMS], None)
            expect("a valid number", phonenumbers.is_valid_number(number), True)
            validate_email(row[EMAIL], check_deliverability=False)
    return time.perf_counter() - started


def rows(settings: Settings) -> list[Row]:
    large = settings.plan_rows
    small = max(large // 10, 1)
    options = plan_options()
    flags = " ".join(options)
    if "--jobs" in options:
        note(f"plan runs with {flags}: its peak RSS is that of its largest process")
    with tempfile.TemporaryDirectory(prefix="multichannel-bench-") as name:
        folder = Path(name)
        message = folder / "message.json"
        message.write_text('{"body": "The service is back."}\n', encoding="utf-8")
        figures = {}
        floors = []
        for count in (small, large):
            contacts = folder / f"contacts-{count}.csv"
            write_contacts(contacts, count)
            if count == large:
                progress(f"validating the {large:,} rows' numbers and emails (the floor)")
                floors.append(validation_floor(contacts))
            progress(f"multichannel plan {flags} on {count:,} CSV rows")
            figures[count] = run_plan(contacts, message, options, folder)
        progress(f"validating the {large:,} rows' numbers and emails again")
        floors.append(validation_floor(folder / f"contacts-{large}.csv"))
        # The faster of two floors, one on each side of the plan: a busy moment on a
        # shared machine must not make the plan look closer to its floor than it is.
        floor = min(floors)
    seconds, peak = figures[large].seconds, figures[large].peak_mib
    return [
        Row(
            f"plan: multichannel plan {flags}, {large:,} CSV rows",
            f"{seconds:,.1f} s, {large / seconds:,.0f}/s",
            "~2,000/s",
        ),
        Row(
            f"plan: validating the same {large:,} rows only (floor)",
            f"{floor:,.1f} s, {large / floor:,.0f}/s",
        ),
        Row(
            f"plan: ratio plan time / validation floor, {large:,} rows",
            ratio(seconds / floor),
            goal="<= 1.5",
        ),
        Row(
            f"plan: peak RSS of plan, {small:,} rows",
            f"{figures[small].peak_mib:,.0f} MiB",
            "914 MB at 100,000",
            "flat",
        ),
        Row(f"plan: peak RSS of plan, {large:,} rows", f"{peak:,.0f} MiB", goal="< 300 MB"),
    ]
