"""Contacts and message files as `multichannel check` reads them: CSV, YAML and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from typer.testing import CliRunner

from multichannel import Contact
from multichannel.cli import app

ENV = {"COLUMNS": "400", "NO_COLOR": "1", "FORCE_COLOR": None}


def check(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, ["check", *map(str, args), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def check_error(*args: str | Path) -> str:
    result = CliRunner().invoke(app, ["check", *map(str, args)], env=ENV)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    line: str = result.stderr.removesuffix("\n")
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(dedent(text), encoding="utf-8")
    return path


def test_csv_columns_become_contacts(tmp_path: Path) -> None:
    header = (
        "id,name,timezone,region,channels,quiet_hours,avoid_days,response_wait,"
        "email,sms:mobile,voice:office,opted_out,allow_sensitive"
    )
    ann_row = (
        "ann,Ann Lee,America/Detroit,,sms:mobile;email,21:00-08:00;12:00-13:00 mon-fri,"
        "sat;sun,4h,ann@example.com,+17345550100,,sms:mobile,email"
    )
    bob_row = "bob,,,US,voice:office,,,,,,(734) 555-0101,,"
    csv = write(tmp_path / "crm.csv", f"{header}\n{ann_row}\n{bob_row}\n")

    ann, bob = check(csv)

    assert ann == {
        "id": "ann",
        "name": "Ann Lee",
        "timezone": "America/Detroit",
        "region": None,
        "points": [
            {
                "channel": "email",
                "address": "ann@example.com",
                "label": None,
                "available": None,
                "opted_out": False,
                "allow_sensitive": True,
            },
            {
                "channel": "sms",
                "address": "+17345550100",
                "label": "mobile",
                "available": None,
                "opted_out": True,
                "allow_sensitive": False,
            },
        ],
        "preferences": {
            "channels": ["sms:mobile", "email"],
            "quiet_hours": [
                {"start": "21:00", "end": "08:00", "days": None},
                {"start": "12:00", "end": "13:00", "days": ["mon", "tue", "wed", "thu", "fri"]},
            ],
            "avoid_days": ["sat", "sun"],
            "response_wait": "PT4H",
        },
    }
    assert bob["name"] is None
    assert bob["timezone"] is None
    assert bob["region"] == "US"
    assert bob["points"] == [
        {
            "channel": "voice",
            "address": "+17345550101",
            "label": "office",
            "available": None,
            "opted_out": False,
            "allow_sensitive": False,
        }
    ]
    assert bob["preferences"]["response_wait"] is None


def test_check_json_output_is_itself_a_contacts_file(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "crm.csv",
        "id,channels,quiet_hours,email,sms\nann,sms;email,21:00-08:00,ann@example.com,+17345550100\n",
    )
    first = check(csv)
    converted = write(tmp_path / "converted.json", json.dumps(first))

    assert check(converted) == first
    assert Contact.model_validate(first[0]).points[1].address == "+17345550100"


def test_excel_style_csv_with_bom_crlf_blank_lines_and_loose_headers(tmp_path: Path) -> None:
    rows = [" ID , Email ,SMS:Mobile", "ann,ann@example.com,+17345550100", "", ",,"]
    text = "\ufeff" + "\r\n".join([*rows, "bob,bob@example.com", ""])
    csv = write(tmp_path / "excel.csv", text.encode("utf-8"))

    ann, bob = check(csv)

    assert ann["id"] == "ann"
    assert [point["label"] for point in ann["points"]] == [None, "mobile"]
    assert bob["points"] == [
        {
            "channel": "email",
            "address": "bob@example.com",
            "label": None,
            "available": None,
            "opted_out": False,
            "allow_sensitive": False,
        }
    ]


def test_a_cell_may_hold_several_addresses_and_a_custom_channel_needs_a_label(
    tmp_path: Path,
) -> None:
    csv = write(
        tmp_path / "c.csv",
        "id,sms,push:phone,opted_out\nann,+17345550100; +17345550102,device-token-1,sms\n",
    )

    [ann] = check(csv)

    points = [(p["channel"], p["address"], p["label"], p["opted_out"]) for p in ann["points"]]
    assert points == [
        ("sms", "+17345550100", None, True),
        ("sms", "+17345550102", None, True),
        ("push", "device-token-1", "phone", False),
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("30m", "PT30M"),
        ("4h", "PT4H"),
        ("1d", "P1D"),
        ("1h30m", "PT1H30M"),
        ("1w", "P7D"),
        ("90s", "PT1M30S"),
        ("PT2H", "PT2H"),
        ("pt45m", "PT45M"),
        ("", None),
    ],
)
def test_response_wait_accepts_short_and_iso_durations(
    tmp_path: Path, cell: str, expected: str | None
) -> None:
    csv = write(tmp_path / "c.csv", f"id,email,response_wait\nann,ann@example.com,{cell}\n")

    [ann] = check(csv)

    assert ann["preferences"]["response_wait"] == expected


def test_yaml_reads_clock_times_and_region_codes_as_text(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.yml",
        """\
        - id: ola
          name: yes
          region: NO
          points:
            - {channel: sms, address: "41 23 45 67", opted_out: false}
          preferences:
            quiet_hours: [{start: 21:00, end: 08:00}, {start: 12:30, end: 13:00}]
        """,
    )

    [ola] = check(contacts)

    assert ola["name"] == "yes"
    assert ola["region"] == "NO"
    assert ola["points"][0]["address"] == "+4741234567"
    assert [(w["start"], w["end"]) for w in ola["preferences"]["quiet_hours"]] == [
        ("21:00", "08:00"),
        ("12:30", "13:00"),
    ]


def test_a_message_file_is_checked_too(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.json", '[{"id": "ann"}]')
    message = write(
        tmp_path / "m.json", '{"body": "hi", "variants": {"sms": "hi!"}, "response_wait": "PT1H"}'
    )

    assert check(contacts, message) == [
        {
            "id": "ann",
            "name": None,
            "timezone": None,
            "region": None,
            "points": [],
            "preferences": {
                "channels": [],
                "quiet_hours": [],
                "avoid_days": [],
                "response_wait": None,
            },
        }
    ]


def test_check_text_lists_the_contacts_with_their_flags(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "c.csv", "id,email,sms,opted_out\n[ann],ann@example.com,+17345550100,sms\n"
    )

    result = CliRunner().invoke(app, ["check", str(csv)], env=ENV)

    assert result.exit_code == 0, result.output
    assert "1 contacts in" in result.stdout
    assert "[ann]" in result.stdout  # brackets in data are shown, not read as markup
    assert "sms +17345550100 [opted_out]" in result.stdout


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "c.csv",
            "id,region,sms\nann,US,+17345550100\nbob,US,555\n",
            "c.csv: record 2 (id 'bob'): points[0].address (column sms): "
            "'555' is not a valid phone number in region US",
        ),
        (
            "c.csv",
            "id,sms:mobile\nbob,555 0100\n",
            "c.csv: record 1 (id 'bob'): points[0].address (column sms:mobile): phone number "
            "'555 0100' has no country code",
        ),
        (
            "c.csv",
            "id,quiet_hours\nann,9pm-8am\n",
            "c.csv: record 1 (id 'ann'): quiet_hours: '9pm-8am' is not a window; write HH:MM-HH:MM",
        ),
        (
            "c.csv",
            "id,quiet_hours\nann,21:00-21:00\n",
            "c.csv: record 1 (id 'ann'): quiet_hours[0]: a window from 21:00 to 21:00 is empty",
        ),
        (
            "c.csv",
            "id,quiet_hours\nann,21:00-08:00 someday\n",
            "c.csv: record 1 (id 'ann'): quiet_hours[0].days: unknown day 'someday'",
        ),
        (
            "c.csv",
            "id,avoid_days\nann,sat;funday\n",
            "c.csv: record 1 (id 'ann'): avoid_days: unknown day 'funday'",
        ),
        (
            "c.csv",
            "id,response_wait\nann,4\n",
            "c.csv: record 1 (id 'ann'): response_wait: '4' is not a duration",
        ),
        (
            "c.csv",
            "id,response_wait\nann,P1X\n",
            "c.csv: record 1 (id 'ann'): response_wait: 'P1X' is not a duration",
        ),
        (
            "c.csv",
            "id,email,opted_out\nann,a@example.com,sms\n",
            "c.csv: record 1 (id 'ann'): opted_out: 'sms' names no point of this contact",
        ),
        (
            "c.csv",
            "id,email,allow_sensitive\nann,a@example.com,email:work\n",
            "c.csv: record 1 (id 'ann'): allow_sensitive: 'email:work' names no point",
        ),
        (
            "c.csv",
            "id,channels\nann,sms;SMS\n",
            "c.csv: record 1 (id 'ann'): channels: channel 'sms' is listed more than once",
        ),
        (
            "c.csv",
            "id,timezone\nann,Mars/Base\n",
            "c.csv: record 1 (id 'ann'): timezone: unknown time zone 'Mars/Base'",
        ),
        ("c.csv", "id,email\n,a@example.com\n", "c.csv: record 1: id: is empty"),
        ("c.csv", "id,email\nann,a@example.com\nann,b@example.com\n", "already used by record 1"),
        ("c.csv", "id,email\nann,a@example.com,extra\n", "c.csv: record 1: has 3 cells"),
        ("c.csv", "id,company\nann,ACME\n", "c.csv: unknown column 'company'"),
        ("c.csv", "id,push\nann,token\n", "c.csv: unknown column 'push'"),
        ("c.csv", "id,sms:\nann,+17345550100\n", "c.csv: column 'sms:' has an empty label"),
        ("c.csv", "id,email,EMAIL\nann,a@example.com,b@example.com\n", "column 'email' appears"),
        ("c.csv", "name,email\nann,a@example.com\n", "c.csv: the header has no 'id' column"),
        ("c.csv", "", "c.csv: the file is empty"),
        (
            "c.csv",
            'id,name,sms\nalice,"Alice,+17345550100\nbob,Bob,+17345550101\n',
            "c.csv: line 3: unexpected end of data (is a quote left open?)",
        ),
        ("c.csv", "id,email\n", "c.csv: contains no contacts"),
        ("c.csv", b"id,name\nann,Ren\xe9\n", "c.csv: not UTF-8 text"),
        ("c.txt", "id\nann\n", "c.txt: unknown file type '.txt'; use .json, .yaml, .yml, .csv"),
        ("c.json", '[{"id": "ann",}]', "c.json: not valid JSON: "),
        ("c.json", '{"id": "ann"}', "c.json: expected a list of contacts"),
        ("c.json", "[]", "c.json: contains no contacts"),
        (
            "c.json",
            '[{"id": "ann"}, {"id": "bob", "points": [{"channel": "email", "address": "bob"}]}]',
            "c.json: record 2 (id 'bob'): points[0].address: 'bob' is not an email address",
        ),
        ("c.json", '[{"id": "ann", "nickname": "A"}]', "record 1 (id 'ann'): nickname: is not"),
        ("c.json", '["ann"]', "c.json: record 1: Input should be a valid dictionary"),
        (
            "c.json",
            '[{"id": "ann", "region": "XX", "timezone": "Nowhere"}]',
            "(and 1 more problem)",
        ),
        ("c.yaml", "- id: ann\n  points: [\n", "c.yaml: not valid YAML: "),
        ("c.yaml", "", "c.yaml: expected a list of contacts"),
        (
            "c.yaml",
            "- id: ann\n  preferences: {quiet_hours: [{start: 21:00, end: 25:00}]}\n",
            "preferences.quiet_hours[0].end: '25:00' is not a time of day",
        ),
        ("c.yaml", "- id: ann\n  region: 12\n", "region: Input should be a valid string (got 12)"),
    ],
)
def test_bad_contacts_files_are_one_line_errors(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path / name, content)

    assert expected in check_error(path)


def test_errors_name_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "crm.csv", "id,sms\nbob,555\n")

    message = check_error("crm.csv")

    assert message.startswith("crm.csv: record 1 (id 'bob'): points[0].address (column sms): ")


def test_a_directory_is_not_a_contacts_file(tmp_path: Path) -> None:
    folder = tmp_path / "contacts.yaml"
    folder.mkdir()

    assert check_error(folder) == f"{folder}: is a directory, not a file"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "m.json: expected a mapping of Message fields such as 'body'"),
        ('{"body": ""}', "m.json: body: String should have at least 1 character (got '')"),
        ('{"body": "hi", "deliver_by": "2026-03-02T10:00:00"}', "deliver_by: Input should have"),
        ('{"body": "hi", "response_wait": "PT0S"}', "response_wait: response_wait must be longer"),
        ('{"body": "hi", "colour": "red"}', "m.json: colour: is not a known field"),
    ],
)
def test_bad_message_files_are_one_line_errors(tmp_path: Path, content: str, expected: str) -> None:
    contacts = write(tmp_path / "c.json", '[{"id": "ann"}]')
    message = write(tmp_path / "m.json", content)

    assert expected in check_error(contacts, message)


def test_a_message_must_be_json_or_yaml(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.json", '[{"id": "ann"}]')
    message = write(tmp_path / "m.csv", "body\nhi\n")

    assert (
        check_error(contacts, message)
        == f"{message}: unknown file type '.csv'; use .json, .yaml, .yml"
    )
