"""What plan, send and check say about their files: every bad record with its line,
the rows they skip, the preferences that can never be tried, stable JSON, flags in --help."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel.cli import app

AT = "2026-03-02T14:00:00Z"
MESSAGE = "body: Your appointment is on Monday at 10:00.\n"
PLAN_KEYS = ["contact_id", "status", "channel", "address", "at", "local_at", "reasons"]
SEND_KEYS = [
    "contact_id",
    "dispatch_id",
    "status",
    "channel",
    "address",
    "next_action_at",
    "error",
    "existing",
    "dry_run",
]
CONTACT_KEYS = ["id", "name", "timezone", "region", "points", "preferences"]
POINT_KEYS = ["channel", "address", "label", "available", "opted_out", "allow_sensitive"]
PREFERENCE_KEYS = ["channels", "quiet_hours", "avoid_days", "response_wait"]
STATUS_KEYS = ["store", "total", "counts", "next_due", "not_reached", "review", "dry_run"]


def invoke(*args: str | Path) -> Result:
    env = {
        "COLUMNS": "400",
        "NO_COLOR": "1",
        "FORCE_COLOR": None,
        "TTY_COMPATIBLE": None,
        "TTY_INTERACTIVE": None,
        "MULTICHANNEL_STORE": None,
    }
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


def write(path: Path, text: str) -> Path:
    path.write_text(dedent(text), encoding="utf-8")
    return path


def errors(result: Result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def message(tmp_path: Path) -> Path:
    return write(tmp_path / "m.yaml", MESSAGE)


# Every bad record, with the line it starts on.


def test_every_bad_csv_record_is_listed_with_the_line_its_row_starts_on(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        "id,name,email,sms\n"  # line 1
        'ann,"Ann\nLee",ann@example.com,555\n'  # lines 2-3: a quoted cell breaks the line
        "\n"  # line 4: skipped
        "bob,Bob,bob,\n"  # line 5
        'cat,"C\n\nC",cat@example.com,\n'  # lines 6-8
        "dan,Dan,,+1734555\n"  # line 9
        "cat,Cat,c2@example.com,\n",  # line 10
    )

    result = invoke("check", contacts)

    lines = errors(result)
    assert len(lines) == 5
    assert lines[0].startswith(f"error: {contacts}: record 1 (id 'ann'): points[1].address ")
    assert lines[0].endswith("(line 2)")
    assert lines[1].startswith(f"error: {contacts}: record 2 (id 'bob'): points[0].address ")
    assert lines[1].endswith("(line 5)")
    assert lines[2].startswith(f"error: {contacts}: record 4 (id 'dan'): points[0].address ")
    assert lines[2].endswith("(line 9)")
    assert lines[3] == (
        f"error: {contacts}: record 5 (id 'cat'): id: already used by record 3 (line 10)"
    )
    assert lines[4] == f"error: {contacts}: 4 of 5 records are bad"


def test_every_bad_json_record_is_listed_with_the_line_its_object_starts_on(
    tmp_path: Path,
) -> None:
    contacts = write(
        tmp_path / "c.json",
        """\
        [
          {"id": "ann", "name": "[a, {b}] \\" ]",
           "points": [{"channel": "email", "address": "ann@example.com"}]},

          {
            "id": "bob",
            "timezone": "Mars/Base"
          }, "cat",
          {"id": "dan", "region": "XX", "timezone": "Nowhere"}
        ]
        """,
    )

    lines = errors(invoke("check", contacts))

    assert lines[0].startswith(f"error: {contacts}: record 2 (id 'bob'): timezone: unknown")
    assert lines[0].endswith("(line 5)")
    assert lines[1].startswith(f"error: {contacts}: record 3: Input should be a valid dictionary")
    assert lines[1].endswith("(line 8)")
    assert lines[2].startswith(f"error: {contacts}: record 4 (id 'dan'): ")
    assert lines[2].endswith("(and 1 more problem) (line 9)")
    assert lines[3] == f"error: {contacts}: 3 of 4 records are bad"


def test_every_bad_yaml_record_is_listed_with_the_line_its_item_starts_on(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.yaml",
        """\
        # the clinic's contacts
        - id: ann
          points:
            - {channel: email, address: ann@example.com}

        - id: bob
          timezone: Mars/Base
        - {id: cat, region: XX}
        -
        - id: dan
          preferences:
            quiet_hours: [{start: 21:00, end: 25:00}]
        """,
    )

    lines = errors(invoke("check", contacts))

    assert [re.search(r"record (\d+)", line)[1] for line in lines[:-1]] == ["2", "3", "4", "5"]  # type: ignore[index]
    assert [line.rsplit(" ", 1)[1] for line in lines[:-1]] == ["6)", "8)", "9)", "10)"]
    assert "record 5 (id 'dan'): preferences.quiet_hours[0].end: '25:00'" in lines[3]
    assert lines[-1] == f"error: {contacts}: 4 of 5 records are bad"


def test_a_long_list_of_bad_records_stops_at_twenty_then_counts(tmp_path: Path) -> None:
    rows = "".join(f"p{number},not-an-address\n" for number in range(1, 26))
    contacts = write(tmp_path / "c.csv", "id,email\nok,ok@example.com\n" + rows)

    lines = errors(invoke("check", contacts))

    assert len(lines) == 22
    assert lines[0].startswith(f"error: {contacts}: record 2 (id 'p1'): points[0].address")
    assert lines[19].startswith(f"error: {contacts}: record 21 (id 'p20'): ")
    assert lines[19].endswith("(line 22)")
    assert lines[20] == f"error: {contacts}: and 5 more bad records"
    assert lines[21] == f"error: {contacts}: 25 of 26 records are bad"


def test_check_lists_the_bad_records_and_the_bad_message_together(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\nann,ann\nbob,bob\n")
    message = write(tmp_path / "m.yaml", "subject: no body\n")

    lines = errors(invoke("check", contacts, message))

    assert lines == [
        f"error: {contacts}: record 1 (id 'ann'): points[0].address (column email): 'ann' is "
        "not an email address: An email address must have an @-sign. (line 2)",
        f"error: {contacts}: record 2 (id 'bob'): points[0].address (column email): 'bob' is "
        "not an email address: An email address must have an @-sign. (line 3)",
        f"error: {message}: body: is required",
        f"error: {contacts}: 2 of 2 records are bad",
    ]


def test_one_bad_record_is_still_one_line(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.json", '[{"id": "ann"},\n {"id": "bob", "region": "XX"}]')

    result = invoke("check", contacts)

    assert errors(result) == [
        f"error: {contacts}: record 2 (id 'bob'): region: 'XX' is not an ISO 3166 alpha-2 region "
        "such as 'US' or 'GB' (line 2)"
    ]
    assert result.stderr.count("\n") == 1


def test_send_refuses_the_whole_file_when_a_record_is_bad(tmp_path: Path, message: Path) -> None:
    contacts = write(
        tmp_path / "c.csv", "id,email\nann,ann@example.com\nbob,bob\ncat,cat@example.com\ndan,dan\n"
    )
    store = tmp_path / "kept.db"

    result = invoke("send", contacts, message, "--outbox", "--store", f"sqlite:///{store}")

    lines = errors(result)
    assert [line.rsplit(" ", 1)[1] for line in lines[:2]] == ["3)", "5)"]
    assert lines[2] == f"error: {contacts}: 2 of 4 records are bad; nothing was sent"
    assert not store.exists()  # the store was never opened, so nothing was sent to anyone


def test_plan_plans_the_good_records_and_lists_the_bad_ones_at_the_end(
    tmp_path: Path, message: Path
) -> None:
    # plan streams its file (tests/test_cli_plan_stream.py): it cannot wait for the last row.
    contacts = write(
        tmp_path / "c.csv", "id,email\nann,ann@example.com\nbob,bob\ncat,cat@example.com\ndan,dan\n"
    )

    result = invoke("plan", contacts, message, "--at", AT, "--json")

    assert result.exit_code == 2
    assert [plan["contact_id"] for plan in json.loads(result.stdout)] == ["ann", "cat"]
    lines = result.stderr.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines[:2]] == ["3)", "5)"]
    assert lines[2] == f"error: {contacts}: 2 of 4 records are bad; the other 2 were planned"


# Rows passed over are counted, on stderr.


SKIPPY = "id,email,sms\n\nann,ann@example.com,\n,,\n  \nbob,bob@example.com,\n\n , ,\n"


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["check", "--json"],
        ["plan", "--at", AT],
        ["plan", "--at", AT, "--json"],
        ["send", "--outbox"],
        ["send", "--outbox", "--json"],
    ],
)
def test_plan_send_and_check_say_which_rows_they_skipped_and_why(
    tmp_path: Path, message: Path, command: list[str]
) -> None:
    contacts = write(tmp_path / "c.csv", SKIPPY)
    files = [contacts] if command[0] == "check" else [contacts, message]

    result = invoke(command[0], *files, *command[1:])

    assert result.exit_code == 0, result.output
    assert (
        f"note: {contacts}: skipped 5 rows that hold no contact: 3 blank lines (lines 2, 5, 7); "
        "2 rows with every cell empty (lines 4, 8)\n"
    ) in result.stderr
    if "--json" in command:
        ids = [row.get("id") or row.get("contact_id") for row in json.loads(result.stdout)]
        assert ids == ["ann", "bob"]  # stdout is the JSON and nothing else


def test_one_skipped_row_is_said_in_the_singular(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\nann,ann@example.com\n\n")

    result = invoke("check", contacts, "--json")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"note: {contacts}: skipped 1 row that holds no contact: 1 blank line (line 3)\n"
    )


def test_files_with_nothing_skipped_have_no_note(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.yaml", "- id: ann\n\n- id: bob\n")

    result = invoke("check", contacts, "--json")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_skipped_rows_are_noted_even_when_records_are_bad(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\n\nann,ann\n")

    result = invoke("check", contacts)

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"note: {contacts}: skipped 1 row that holds no contact: 1 blank line (line 2)",
        f"error: {contacts}: record 1 (id 'ann'): points[0].address (column email): 'ann' is "
        "not an email address: An email address must have an @-sign. (line 3)",
    ]


# Preferences that can never be tried.


@pytest.fixture
def no_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    prefixes = ("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")
    for name in list(os.environ):
        if name.upper().startswith(prefixes):
            monkeypatch.delenv(name)


@pytest.fixture
def push_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on sys.path that publishes a ready adapter for the channel 'push'."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    write(
        plugin / "mc_pushplug.py",
        """\
        from multichannel import Outbox


        class Push(Outbox):
            name = "push-outbox"
            channel = "push"


        def ready():
            return Push()
        """,
    )
    info = plugin / "mc_pushplug-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: mc-pushplug\nVersion: 1.0\n")
    write(info / "entry_points.txt", "[multichannel.adapters]\npush = mc_pushplug:ready\n")
    monkeypatch.syspath_prepend(str(plugin))


PREFERRING = """\
- id: ann
  points:
    - {channel: email, address: ann@example.com}
    - {channel: push, label: phone, address: device-1}
  preferences: {channels: [push, email, sms, "voice:office"]}
- id: bob
  points:
    - {channel: sms, address: "+17345550100"}
  preferences: {channels: [sms]}
"""


@pytest.mark.usefixtures("no_provider_settings")
def test_check_warns_of_ranked_channels_that_can_never_be_tried(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.yaml", PREFERRING)

    result = invoke("check", contacts, "--json")

    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.stdout)] == ["ann", "bob"]
    where = f"warning: {contacts}: record 1 (id 'ann'): preferences.channels"
    assert result.stderr.splitlines() == [
        f"{where}[0]: no adapter sends on channel 'push': it is not built in and no configured "
        "adapter serves it (see `multichannel adapters`), so `send` skips it (line 1)",
        f"{where}[2]: 'sms' names no point of this contact, so it is never tried (line 1)",
        f"{where}[3]: 'voice:office' names no point of this contact, so it is never tried (line 1)",
    ]


@pytest.mark.usefixtures("no_provider_settings", "push_adapter")
def test_a_channel_served_by_a_published_adapter_is_known(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.yaml", PREFERRING)

    result = invoke("check", contacts)

    assert result.exit_code == 0, result.output
    assert "'push'" not in result.stderr
    assert "'sms' names no point" in result.stderr


def test_csv_warnings_name_the_channels_column(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,channels,email\nann,email;fax,ann@example.com\n")

    result = invoke("check", contacts)

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: {contacts}: record 1 (id 'ann'): channels: 'fax' names no point of this "
        "contact, so it is never tried (line 2)\n"
    )


def test_warnings_come_with_the_errors_of_other_records(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,channels,email\nann,fax,ann@example.com\nbob,,bob\n")

    result = invoke("check", contacts)

    assert result.exit_code == 2
    [warning, error] = result.stderr.splitlines()
    assert warning.startswith(f"warning: {contacts}: record 1 (id 'ann'): channels: 'fax' ")
    assert error.startswith(f"error: {contacts}: record 2 (id 'bob'): ")


# --json is stable: the same input gives the same bytes, keys in a fixed order.


def test_plan_json_is_the_same_on_every_run_in_input_order(tmp_path: Path, message: Path) -> None:
    rows = "".join(f"p{n:02},p{n:02}@example.com,+1734555{n:04}\n" for n in range(30, 0, -1))
    contacts = write(tmp_path / "c.csv", "id,email,sms\n" + rows)

    first = invoke("plan", contacts, message, "--at", AT, "--json")
    again = invoke("plan", contacts, message, "--at", AT, "--json")

    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout
    planned = json.loads(first.stdout)
    assert [row["contact_id"] for row in planned] == [f"p{n:02}" for n in range(30, 0, -1)]
    assert all(list(row) == PLAN_KEYS for row in planned)


@pytest.fixture
def gate_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A published adapter that holds the first contact's send until the last one's is done.

    So the sends finish in an order other than the file's, without waiting on the clock.
    """
    plugin = tmp_path / "gate"
    plugin.mkdir()
    write(
        plugin / "mc_gateplug.py",
        """\
        import threading

        from multichannel import Outbox

        LAST_SENT = threading.Event()


        class Gate(Outbox):
            name = "gate"

            def send(self, point, content, ctx):
                if point.address.startswith("first@"):
                    LAST_SENT.wait(10)
                receipt = super().send(point, content, ctx)
                if point.address.startswith("last@"):
                    LAST_SENT.set()
                return receipt


        def ready():
            LAST_SENT.clear()
            return Gate()
        """,
    )
    info = plugin / "mc_gateplug-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: mc-gateplug\nVersion: 1.0\n")
    write(info / "entry_points.txt", "[multichannel.adapters]\ngate = mc_gateplug:ready\n")
    monkeypatch.syspath_prepend(str(plugin))


@pytest.mark.usefixtures("no_provider_settings", "gate_adapter")
def test_send_json_follows_the_file_however_the_sends_finish(tmp_path: Path, message: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        "id,email\nfirst,first@example.com\nmiddle,middle@example.com\nlast,last@example.com\n",
    )

    result = invoke("send", contacts, message, "--json", "--concurrency", "3")

    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)
    assert [row["contact_id"] for row in sent] == ["first", "middle", "last"]
    assert all(list(row) == SEND_KEYS for row in sent)
    assert {row["status"] for row in sent} == {"accepted"}


def test_check_json_is_the_same_on_every_run_with_keys_in_model_order(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        "id,channels,quiet_hours,avoid_days,sms,email\n"
        "zed,sms;email,21:00-08:00 fri-mon,sun;sat,+17345550100,zed@example.com\n"
        "amy,email,,,,amy@example.com\n",
    )

    first = invoke("check", contacts, "--json")
    again = invoke("check", contacts, "--json")

    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout
    zed, amy = json.loads(first.stdout)
    assert (zed["id"], amy["id"]) == ("zed", "amy")
    assert list(zed) == CONTACT_KEYS
    assert list(zed["points"][0]) == POINT_KEYS
    assert list(zed["preferences"]) == PREFERENCE_KEYS
    assert zed["preferences"]["avoid_days"] == ["sat", "sun"]
    assert zed["preferences"]["quiet_hours"][0]["days"] == ["mon", "fri", "sat", "sun"]


def test_status_json_is_the_same_on_every_run_with_keys_in_order(
    tmp_path: Path, message: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    contacts = write(
        tmp_path / "c.csv",
        "id,channels,email,sms,opted_out\nann,email,ann@example.com,,\nbob,sms,,+17345550100,sms\n",
    )
    assert invoke("send", contacts, message, "--outbox", "--store", url).exit_code == 0

    first = invoke("status", "--store", url, "--json")
    again = invoke("status", "--store", url, "--json")

    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout
    report = json.loads(first.stdout)
    assert list(report) == STATUS_KEYS
    assert list(report["not_reached"][0]) == [
        "dispatch_id",
        "contact_id",
        "status",
        "tried",
        "reason",
        "error",
        "at",
        "dry_run",
    ]
    assert list(report["dry_run"]) == ["total", "counts"]


# Flags show as options in --help, not with a <bool> type.

HELP = {
    (): ["--version", "--help"],
    ("plan",): ["--json"],
    ("send",): ["--outbox", "--json"],
    ("check",): ["--json"],
    ("adapters",): [],
    ("demo",): ["--restart"],
    ("worker",): ["--once", "--outbox"],
    ("status",): ["--json"],
    ("review",): ["--sent", "--not-sent", "--outbox"],
    ("serve",): ["--trust-forwarded", "--outbox"],
    ("db",): [],
    ("db", "upgrade"): [],
    ("db", "version"): [],
}


@pytest.mark.parametrize("command", sorted(HELP))
def test_help_shows_flags_as_options_without_a_bool_type(command: tuple[str, ...]) -> None:
    result = invoke(*command, "--help")

    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "bool" not in result.stdout.lower().replace("boolean", "")
    rows = {
        match[0]: match[1]
        for match in re.findall(r"│\s+(--[a-z-]+)\s+(?:--[a-z-]+\s+)?(\S.*?)\s*│", result.stdout)
    }
    for flag in [*HELP[command], "--help"]:
        if flag == "--not-sent":
            assert re.search(r"--sent\s+--not-sent\s+Whether the interrupted send", result.stdout)
            continue
        assert flag in rows, result.stdout
        assert rows[flag][0].isupper(), rows[flag]  # the help text follows, no type between


class TestUnreadableFiles:
    """A file no parser can read is one line and exit status 2, never a traceback."""

    @pytest.mark.parametrize(
        ("name", "text", "says"),
        [
            ("m.yaml", "body: hi\x00\n", "m.yaml: not valid YAML: special characters"),
            ("m.yaml", "body: ring\x07\n", "m.yaml: not valid YAML: special characters"),
            ("m.json", "[" * 100_000 + "]" * 100_000, "m.json: not usable JSON: it is nested"),
            ("m.yaml", "[" * 20_000 + "]" * 20_000, "m.yaml: not usable YAML: it is nested"),
            ("m.json", '{"body": "a\x01b"}', "Invalid control character at line 1 column 12"),
        ],
    )
    def test_a_message_file_that_cannot_be_read(
        self, tmp_path: Path, name: str, text: str, says: str
    ) -> None:
        contacts = write(tmp_path / "c.csv", "id,sms\nann,+17345550100\n")
        message = tmp_path / name
        message.write_text(text, encoding="utf-8")

        result = invoke("check", contacts, message)

        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1
        assert says in result.stderr
        assert "Traceback" not in result.output

    def test_a_contacts_file_nested_too_deeply(self, tmp_path: Path) -> None:
        contacts = tmp_path / "c.json"
        contacts.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
        message = write(tmp_path / "m.yaml", "body: hi\n")

        result = invoke("check", contacts, message)

        assert result.exit_code == 2, result.output
        assert "c.json: not usable JSON: it is nested too deeply" in result.stderr


def test_a_password_in_the_store_url_s_query_is_never_printed() -> None:
    result = invoke(
        "status", "--store", "postgresql+psycopg://bob@127.0.0.1:1/db?password=S3cret&sslmode=off"
    )

    assert result.exit_code == 2
    assert "S3cret" not in result.output
    assert "sslmode=off" in result.stderr
