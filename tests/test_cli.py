"""The multichannel command: plan, send, adapters, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel import __version__
from multichannel.cli import app, main

# Monday 2 March 2026 14:00 UTC: 09:00 in Detroit, 23:00 in Tokyo, 01:00 Tuesday in Sydney.
AT = "2026-03-02T14:00:00Z"
EXAMPLES = Path(__file__).parent.parent / "examples"

CONTACTS = """\
- id: ann
  timezone: America/Detroit
  points:
    - {channel: sms, label: mobile, address: "+17345550100"}
    - {channel: email, address: ann@example.com}
  preferences:
    channels: [sms:mobile, email]
    quiet_hours: [{start: "21:00", end: "08:00"}]
- id: kenji
  timezone: Asia/Tokyo
  points:
    - {channel: email, address: kenji@example.jp}
    - {channel: sms, address: "+819012345678"}
  preferences:
    channels: [email, sms]
    quiet_hours: [{start: "22:00", end: "07:00"}]
- id: emma
  timezone: Australia/Sydney
  points:
    - {channel: sms, address: "+61412345678", opted_out: true}
    - {channel: email, address: emma@example.com.au}
  preferences:
    channels: [sms, email]
- id: nobody
  points:
    - {channel: fax, address: "+17345550199", opted_out: true}
  preferences:
    channels: [fax]
"""
MESSAGE = "body: Your appointment is on Monday at 10:00.\nsubject: Appointment\n"


def invoke(*args: str | Path) -> Result:
    """Run the command with a wide, colourless console so lines are not wrapped."""
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


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "contacts.yaml", CONTACTS), write(tmp_path / "message.yaml", MESSAGE)


def plan_json(*args: str | Path) -> dict[str, dict[str, object]]:
    result = invoke("plan", *args, "--json")
    assert result.exit_code == 0, result.output
    return {row["contact_id"]: row for row in json.loads(result.stdout)}


def test_plan_json_says_what_would_happen_to_each_contact(files: tuple[Path, Path]) -> None:
    rows = plan_json(*files, "--at", AT)

    assert list(rows) == ["ann", "kenji", "emma", "nobody"]
    assert rows["ann"] == {
        "contact_id": "ann",
        "status": "send_now",
        "channel": "sms",
        "address": "+17345550100",
        "at": "2026-03-02T14:00:00+00:00",
        "local_at": "2026-03-02T09:00:00-05:00",
        "reasons": [
            "time zone America/Detroit (the contact's own)",
            "send on sms +17345550100 (mobile) (1st choice): it is open now",
        ],
    }
    kenji = rows["kenji"]
    assert kenji["status"] == "scheduled"
    assert (kenji["channel"], kenji["address"]) == ("email", "kenji@example.jp")
    assert kenji["at"] == "2026-03-02T22:00:00+00:00"  # 07:00 in Tokyo, when quiet hours end
    assert kenji["local_at"] == "2026-03-03T07:00:00+09:00"
    assert "inside quiet hours 22:00-07:00 every day" in str(kenji["reasons"])
    emma = rows["emma"]
    assert (emma["status"], emma["channel"]) == ("send_now", "email")
    assert "skipped sms +61412345678 (1st choice): the person opted out of it" in emma["reasons"]
    assert rows["nobody"]["status"] == "suppressed"
    assert rows["nobody"]["channel"] is None
    assert rows["nobody"]["at"] is None
    assert rows["nobody"]["reasons"][-1] == "no channel was allowed for this message"


def test_plan_text_shows_each_contact_with_reasons(files: tuple[Path, Path]) -> None:
    result = invoke("plan", *files, "--at", "2026-03-02T09:00:00-05:00")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Plan at 2026-03-02 14:00 UTC (nothing is sent)" in out
    assert "ann  send_now  sms +17345550100  at 2026-03-02 14:00 UTC" in out
    assert "kenji  scheduled  email kenji@example.jp  at 2026-03-02 22:00 UTC" in out
    assert "(Tue 07:00 JST, Asia/Tokyo)" in out
    assert "the person opted out of it" in out
    assert "nobody  suppressed" in out


def test_plan_reports_expiry_when_deliver_by_comes_before_the_quiet_hours_end(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    message = write(tmp_path / "late.json", '{"body": "hi", "deliver_by": "2026-03-02T20:00:00Z"}')

    rows = plan_json(files[0], message, "--at", AT)

    assert rows["kenji"]["status"] == "expired"
    assert "after deliver_by" in str(rows["kenji"]["reasons"])
    assert rows["ann"]["status"] == "send_now"


def test_depth_limits_the_choices_walked(files: tuple[Path, Path]) -> None:
    assert plan_json(*files, "--at", AT, "--depth", "1")["emma"]["status"] == "suppressed"
    assert plan_json(*files, "--at", AT, "--depth", "all")["emma"]["channel"] == "email"


def test_default_timezone_applies_to_contacts_with_no_zone_and_no_phone(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.json",
        json.dumps(
            [
                {
                    "id": "zed",
                    "points": [{"channel": "email", "address": "zed@example.com"}],
                    "preferences": {"quiet_hours": [{"start": "21:00", "end": "08:00"}]},
                }
            ]
        ),
    )
    message = write(tmp_path / "m.json", '{"body": "hi"}')

    in_utc = plan_json(contacts, message, "--at", AT)["zed"]
    in_tokyo = plan_json(contacts, message, "--at", AT, "--default-timezone", "Asia/Tokyo")["zed"]

    assert in_utc["status"] == "send_now"
    assert in_tokyo["status"] == "scheduled"
    assert in_tokyo["at"] == "2026-03-02T23:00:00+00:00"  # 08:00 in Tokyo
    assert "using the default Asia/Tokyo" in in_tokyo["reasons"][0]


@pytest.mark.parametrize("name", ["contacts.yaml", "contacts.csv"])
def test_the_bundled_examples_plan_cleanly(name: str) -> None:
    rows = plan_json(EXAMPLES / name, EXAMPLES / "message.yaml", "--at", AT)

    assert set(rows) == {"alice", "kenji", "dev", "emma"}
    assert rows["kenji"]["status"] == "scheduled"


def test_send_through_the_outbox_summarises_by_status(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        """\
        id,channels,email,sms,opted_out
        ann,sms;email,ann@example.com,+17345550100,
        bob,email,bob@example.com,,
        cat,sms,,+17345550102,sms
        """,
    )
    message = write(tmp_path / "m.yaml", MESSAGE)

    result = invoke("send", contacts, message, "--outbox", "--concurrency", "2")

    assert result.exit_code == 0, result.output
    assert "accepted" in result.stdout
    assert "suppressed" in result.stdout
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _rows(result)}
    assert lines == {"accepted": "2", "suppressed": "1", "total": "3"}
    assert "dry run" in result.stderr


def _rows(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("│")]


def test_send_json_reports_each_dispatch(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        "id,channels,email,sms\nann,sms;email,ann@example.com,+17345550100\n",
    )
    message = write(tmp_path / "m.yaml", MESSAGE)

    result = invoke("send", contacts, message, "--outbox", "--json")

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["contact_id"] == "ann"
    assert (row["status"], row["channel"], row["address"]) == ("accepted", "sms", "+17345550100")
    assert row["dispatch_id"]
    assert row["error"] is None


def test_send_notes_steps_left_for_later(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\nann,ann@example.com\n")
    message = write(tmp_path / "m.yaml", "body: hi\nexpects_response: true\n")

    result = invoke("send", contacts, message, "--outbox")

    assert result.exit_code == 0, result.output
    assert "awaiting_response" in result.stdout
    assert "note: 1 dispatch has a later step" in result.stderr


@pytest.fixture
def no_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    prefixes = ("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")
    for name in list(os.environ):
        if name.upper().startswith(prefixes):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_provider_settings")
def test_send_without_configured_adapters_says_how_to_configure(
    files: tuple[Path, Path],
) -> None:
    result = invoke("send", *files)

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: no adapters are configured")
    assert "multichannel adapters" in result.stderr
    assert "--outbox" in result.stderr


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on sys.path that publishes three adapters: one ready, two not."""
    write(
        tmp_path / "mc_fakeplug.py",
        """\
        from multichannel import BaseAdapter, ConfigurationError, Outbox


        class Rejected(BaseAdapter):
            name = "fake-fax"
            channel = "fax"

            def send(self, point, content, ctx):
                raise ConfigurationError("fake-fax: the API key was rejected")


        def ready():
            return Outbox()


        def rejected():
            return Rejected()


        def missing():
            raise ConfigurationError("fake: FAKEPLUG_TOKEN is not set")
        """,
    )
    info = tmp_path / "mc_fakeplug-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: mc-fakeplug\nVersion: 1.0\n")
    write(
        info / "entry_points.txt",
        """\
        [multichannel.adapters]
        fake-ready = mc_fakeplug:ready
        fake-missing = mc_fakeplug:missing
        fake-rejected = mc_fakeplug:rejected
        fake-absent = mc_fakeplug_absent:Adapter.from_env
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.usefixtures("published", "no_provider_settings")
def test_adapters_lists_ready_adapters_and_problems() -> None:
    result = invoke("adapters")

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in _rows(result)}
    # The entry point builds an adapter under a name of its own, and the table says so.
    assert "ready" in rows["fake-ready (as outbox)"]
    assert "*" in rows["fake-ready (as outbox)"]
    assert "fax" in rows["fake-rejected (as fake-fax)"]
    assert "fake: FAKEPLUG_TOKEN is not set" in rows["fake-missing"]
    assert "No module named 'mc_fakeplug_absent'" in rows["fake-absent"]
    for provider in ("twilio-sms", "twilio-voice", "sendgrid", "smtp", "telnyx-fax"):
        assert provider in rows
        assert "ready" not in rows[provider]


@pytest.mark.usefixtures("published", "no_provider_settings")
def test_send_uses_the_adapters_published_and_configured(files: tuple[Path, Path]) -> None:
    result = invoke("send", *files, "--json")

    assert result.exit_code == 0, result.output
    statuses = {row["contact_id"]: row["status"] for row in json.loads(result.stdout)}
    assert statuses["nobody"] == "suppressed"
    assert set(statuses) == {"ann", "kenji", "emma", "nobody"}
    assert "dry run" not in result.stderr


@pytest.mark.usefixtures("published", "no_provider_settings")
def test_send_reports_errors_once_each_and_exits_1(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.csv",
        """\
        id,fax,email
        ann,+17345550100,
        bob,+17345550101,
        cat,+17345550102,
        dan,+17345550103,
        eve,,eve@example.com
        """,
    )
    message = write(tmp_path / "m.yaml", "body: hi\n")

    result = invoke("send", contacts, message, "--depth", "all", "--concurrency", "1")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "warning: adapter fake-absent is left out: "
        "ModuleNotFoundError: No module named 'mc_fakeplug_absent'",
        "error: 4 contacts ('ann', 'bob', 'cat' and 1 more): "
        "ConfigurationError: fake-fax: the API key was rejected",
    ]
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _rows(result)}
    assert lines == {"accepted": "1", "error": "4", "total": "5"}


def test_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"multichannel {__version__}"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--at", "2026-03-02T14:00:00"], "error: --at '2026-03-02T14:00:00' has no time zone"),
        (["--at", "next tuesday"], "error: --at 'next tuesday' is not an ISO 8601 instant"),
        (["--depth", "0"], "error: --depth must be at least 1, or 'all'; got 0"),
        (["--depth", "deep"], "error: --depth 'deep' is not a number or 'all'"),
        (["--default-timezone", "Mars/Base"], "error: --default-timezone 'Mars/Base' is not"),
    ],
)
def test_bad_options_are_one_line_errors(
    files: tuple[Path, Path], options: list[str], expected: str
) -> None:
    result = invoke("plan", *files, *options)

    assert result.exit_code == 2
    assert result.stderr.startswith(expected)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_bad_concurrency_is_a_one_line_error(files: tuple[Path, Path]) -> None:
    result = invoke("send", *files, "--outbox", "--concurrency", "0")

    assert result.exit_code == 2
    assert result.stderr == "error: --concurrency must be at least 1; got 0\n"


@pytest.mark.parametrize("command", ["plan", "send", "check"])
@pytest.mark.parametrize(
    ("contacts", "message", "expected"),
    [
        ("missing.yaml", MESSAGE, "missing.yaml: no such file"),
        ("c.yaml", "body: [unclosed\n", "m.yaml: not valid YAML"),
        ("c.yaml", "subject: no body\n", "m.yaml: body: is required"),
        ("c.yaml", "body: hi\nurgent: maybe\n", "m.yaml: urgent: Input should be a valid boolean"),
    ],
)
def test_bad_files_are_one_line_errors_for_every_command(
    tmp_path: Path, command: str, contacts: str, message: str, expected: str
) -> None:
    write(tmp_path / "c.yaml", CONTACTS)
    message_file = write(tmp_path / "m.yaml", message)

    result = invoke(
        command, tmp_path / contacts, message_file, *(["--outbox"] * (command == "send"))
    )

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_main_runs_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["multichannel", "--version"])

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"multichannel {__version__}\n"


@pytest.mark.usefixtures("no_provider_settings")
def test_send_refuses_a_provider_whose_settings_are_wrong(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", "localhost")
    monkeypatch.setenv("SMTP_FROM", "clinic@example.com")
    monkeypatch.setenv("SMTP_PORT", "abc")

    result = invoke("send", *files)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: adapter smtp is set up wrongly: ")
    assert "SMTP_PORT" in result.stderr
    assert "Traceback" not in result.output
