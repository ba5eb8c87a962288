"""The demo's other modes: real adapters against local stand-ins, and a process restart."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel import SQLStore, Status
from multichannel.cli import app
from multichannel.cli.demo.local import LOCAL_SCRIPT, Endpoints, run_local_demo
from multichannel.cli.demo.restart import DemoError, run_restart_demo, spawn_process
from multichannel.cli.demo.script import SCRIPT, DemoRun, run_demo

FINAL = {
    "alice": Status.RESPONDED,
    "kenji": Status.RESPONDED,
    "chloe": Status.CANCELLED,
    "dev": Status.UNANSWERED,
    "emma": Status.AWAITING_RESPONSE,
}


def invoke(*args: str) -> Result:
    env = {"COLUMNS": "400", "NO_COLOR": "1", "MULTICHANNEL_STORE": None}
    return CliRunner().invoke(app, list(args), env=env)


def statuses(run: DemoRun) -> dict[str, Status]:
    return {dispatch.contact_id: dispatch.status for dispatch in run.dispatches}


def rows(out: str, title: str) -> list[list[str]]:
    """The cells of each row of the table whose title starts with ``title``."""
    table = out[out.index(title) :]
    table = table[: table.index("└")]
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in table.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture(scope="module")
def memory_run() -> DemoRun:
    return run_demo()


# Real adapters against local stand-ins.


@pytest.fixture(scope="module")
def local_run() -> DemoRun:
    return run_local_demo()


def test_the_local_demo_ends_as_the_outbox_demo_does(
    local_run: DemoRun, memory_run: DemoRun
) -> None:
    assert statuses(local_run) == statuses(memory_run) == FINAL
    assert local_run.providers == "local"
    assert local_run.outbox is None


def test_the_real_adapters_made_the_attempts(local_run: DemoRun) -> None:
    providers = {
        dispatch.contact_id: [attempt.provider for attempt in dispatch.attempts]
        for dispatch in local_run.dispatches
    }

    assert providers == {
        "alice": ["twilio-sms"],
        "kenji": ["smtp", "twilio-sms"],
        "chloe": ["smtp", "twilio-sms"],
        "dev": ["twilio-sms", "twilio-voice"],
        "emma": ["smtp"],
    }
    ids = [a.provider_id for d in local_run.dispatches for a in d.attempts if a.provider_id]
    assert all(re.fullmatch(r"(SM|CA)[0-9a-f]{32}|<.+>", found) for found in ids), ids


def test_the_stand_ins_saw_every_request_and_no_secret(local_run: DemoRun) -> None:
    seen = [(item.provider, item.method, item.status) for item in local_run.traffic]

    assert seen == [
        ("twilio", "POST", 201),  # alice's text
        ("smtp", "RCPT", 550),  # chloe's address refused
        ("twilio", "POST", 201),  # chloe's text instead
        ("twilio", "POST", 201),  # dev's text
        ("smtp", "DATA", 250),  # kenji's email at 07:00 his time
        ("twilio", "POST", 201),  # dev's voicemail drop
        ("twilio", "POST", 201),  # kenji's text after 12 silent hours
        ("smtp", "DATA", 250),  # emma's email on Monday morning
    ]
    alice = local_run.traffic[0]
    assert alice.path.endswith("/Messages.json")
    assert alice.body["To"] == "+17345550100"
    assert alice.body["Body"] == "Appointment Mon 9 Mar 10:00. Reply YES to confirm."
    assert alice.auth == "Basic AC" + "0" * 32 + ":***"
    assert local_run.traffic[5].path.endswith("/Calls.json")
    assert local_run.traffic[1].body["rcpt_to"] == "chloe@example.fr"


def test_chloe_bounces_at_her_mail_server_so_the_script_has_no_bounce(
    local_run: DemoRun,
) -> None:
    chloe = next(d for d in local_run.dispatches if d.contact_id == "chloe")
    email, text = chloe.attempts

    assert email.error is not None
    assert email.error.startswith("PermanentError")
    assert "550" in email.error
    assert text.at == local_run.start  # fell back at once, not after a later bounce
    assert len(LOCAL_SCRIPT) == len(SCRIPT) - 1
    assert all(item.story != "chloe's mail server bounces the email" for item in LOCAL_SCRIPT)


def test_demo_providers_local_prints_the_traffic_under_the_timeline() -> None:
    result = invoke("demo", "--providers", "local")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "through the real adapters and SDKs, talking to stand-ins" in out
    assert "chloe's mail server refuses chloe@example.fr (the SMTP stand-in answers 550" in out
    for event in (
        "twilio-sms accepted the message for sms +17345550100",
        "smtp refused email chloe@example.fr",
        "send on sms +33612345678 (2nd choice): it is open now",
        "smtp accepted the message for email kenji@example.jp",
        "twilio-voice accepted the message for voice +919876543210",
        "answered on sms +17345550100: YES",
    ):
        assert event in out, event
    traffic = rows(out, "Provider traffic: 8 requests")
    account = "/2010-04-01/Accounts/AC" + "0" * 32
    assert traffic[0] == [
        "Fri 14:00",
        "alice",
        "twilio",
        f"POST {account}/Messages.json",
        "201",
        "+1734***0100",
    ]
    assert traffic[1] == ["Fri 14:00", "chloe", "smtp", "RCPT TO", "550", "c***@example.fr"]
    assert traffic[5][:2] == ["Sat 03:30", "dev"]
    assert traffic[5][3:] == [f"POST {account}/Calls.json", "201", "+9198***3210"]
    assert out.index("Provider traffic") > out.index("Sunday 08 March 2026")
    assert out.index("Provider traffic") < out.index("At the end")


def test_without_aiosmtpd_email_goes_through_sendgrid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtpd.controller", None)

    run = run_local_demo()

    assert statuses(run) == FINAL
    assert "Email goes through SendGrid's stand-in: no SMTP stand-in" in run.notes[0]
    email = [(i.method, i.path, i.status) for i in run.traffic if i.provider == "sendgrid"]
    assert email == [("POST", "/v3/mail/send", 400)] + [("POST", "/v3/mail/send", 202)] * 2
    assert not any(item.provider == "smtp" for item in run.traffic)


def test_endpoints_survive_a_trip_through_json() -> None:
    endpoints = Endpoints("http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", None)

    assert Endpoints.from_json(endpoints.to_json()) == endpoints
    for bad in (
        "[]",
        "{}",
        '{"twilio_url": 1, "sendgrid_url": "", "telnyx_url": "", "smtp_port": null}',
    ):
        with pytest.raises(ValueError, match="is not the stand-ins' endpoints"):
            Endpoints.from_json(bad)


# Across a process restart, on a SQLite file.


def in_process(arguments: Sequence[str]) -> str:
    """Run the second part with the hidden command, in this process, to watch it closely."""
    result = CliRunner().invoke(app, list(arguments))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_restarted_demo_tells_the_same_story(tmp_path: Path, memory_run: DemoRun) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    run = run_restart_demo(url, spawn=in_process)

    assert statuses(run) == FINAL
    assert run.restart_at is not None
    [restart] = [entry for entry in run.timeline if entry.contact_id is None]
    assert restart.at == run.restart_at
    assert "(waiting in the store: dev at Sat 03:30, kenji at Sat 10:00, emma at Sun 21:00)" in (
        restart.text
    )
    told = [(e.at, e.contact_id, e.text) for e in run.timeline if e.contact_id is not None]
    assert told == [(e.at, e.contact_id, e.text) for e in memory_run.timeline]
    stored = {d.contact_id: d.status for d in SQLStore(url, migrate=False).dispatches()}
    assert stored == FINAL


def test_demo_store_restarts_in_a_new_process(tmp_path: Path, memory_run: DemoRun) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    result = invoke("demo", "--store", url)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Dispatches are kept in {url}; at Sat 02:00 UTC this process stops" in out
    restart = re.search(r"restart: process (\d+) drops .*?; process (\d+) opens", out, re.S)
    assert restart is not None
    assert restart.group(1) != restart.group(2)
    assert "a Worker, which performs the 4 due steps still to come" in " ".join(out.split())
    final = {row[0]: row[1] for row in rows(out, "At the end")[0:]}
    assert final == {contact: status.value for contact, status in FINAL.items()}
    again = invoke("demo", "--store", url)
    assert again.exit_code == 2
    assert again.stderr.startswith("error: the demo needs a store of its own")
    assert again.stderr.count("\n") == 1


def test_demo_restart_with_local_providers_reaches_the_stand_ins_from_both_processes() -> None:
    result = invoke("demo", "--restart", "--providers", "local")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "restart: process" in out
    traffic = rows(out, "Provider traffic: 8 requests")
    # Sent by the second process, received by the stand-ins running in the first.
    assert [row[:3] for row in traffic[5:]] == [
        ["Sat 03:30", "dev", "twilio"],
        ["Sat 10:00", "kenji", "twilio"],
        ["Sun 21:00", "emma", "smtp"],
    ]
    final = {row[0]: row[1] for row in rows(out, "At the end")}
    assert final == {contact: status.value for contact, status in FINAL.items()}


def test_a_failing_second_process_is_reported_in_one_line() -> None:
    with pytest.raises(
        DemoError, match=r"^the second process failed: error: cannot use the database URL"
    ):
        spawn_process(
            [
                *("demo-resume", "--store", "nope", "--start", "2026-03-06T14:00:00+00:00"),
                *("--days", "3", "--from", "2026-03-07T02:00:00+00:00"),
            ]
        )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--providers", "twilio"], "--providers must be 'outbox' or 'local'; got 'twilio'"),
        (["--store", "sqlite:////no/such/folder/demo.db"], "the folder /no/such/folder does not"),
    ],
)
def test_bad_demo_options_are_one_line_errors(options: list[str], expected: str) -> None:
    result = invoke("demo", *options)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--from", "Saturday"], "--from 'Saturday' is not an ISO 8601 instant"),
        (["--from", "2026-03-07T02:00:00"], "--from '2026-03-07T02:00:00' has no time zone"),
        (["--endpoints", "{}"], "--endpoints: '{}' is not the stand-ins' endpoints"),
    ],
)
def test_the_hidden_resume_command_refuses_bad_input(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    arguments = {
        "--store": f"sqlite:///{tmp_path / 'demo.db'}",
        "--start": "2026-03-06T14:00:00+00:00",
        "--days": "3",
        "--from": "2026-03-07T02:00:00+00:00",
    }
    arguments |= dict(zip(options[::2], options[1::2], strict=True))

    result = invoke("demo-resume", *(part for pair in arguments.items() for part in pair))

    assert result.exit_code == 2
    assert result.stderr == f"error: {expected}\n"
    assert "demo-resume" not in invoke("--help").stdout


def test_local_providers_without_their_sdks_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multichannel.cli.demo.command as cli_demo
    from multichannel import ConfigurationError

    def missing_sdk() -> DemoRun:
        raise ConfigurationError("sendgrid: the SendGrid SDK is not installed; pip install x")

    monkeypatch.setattr(cli_demo, "run_local_demo", missing_sdk)

    result = invoke("demo", "--providers", "local")

    assert result.exit_code == 2
    assert "pip install 'multichannel[all]'" in result.stderr
    assert "Traceback" not in result.output
