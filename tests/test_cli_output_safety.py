"""Text from outside reaches the terminal without escape sequences or control characters.

A bounce reason, a reply or a provider's error is written by someone else; printed
raw, ``ESC[2J`` clears an operator's screen, ``ESC]0;...BEL`` retitles the window
and ``\\r`` overwrites what the line said. JSON output keeps the text exactly.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel import (
    Attempt,
    Contact,
    ContactPoint,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    ManualClock,
    Message,
    Outbox,
    Preferences,
    SQLStore,
    Status,
)
from multichannel.cli import app

MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
# A bounce reason that breaks its line, clears the screen, retitles the window,
# overwrites its own line with a reassuring word, and carries an 8-bit CSI as well.
EVIL = "550 user\nunknown\x1b[2J\x1b]0;all fine\x07\rDelivered OK\x9b31m"
SHOWN = "550 user unknown Delivered OK"
RAW = ("\x1b", "\x07", "\r", "\x9b", "all fine")


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


def assert_clean(text: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the terminal"


def write(path: Path, text: str) -> Path:
    path.write_text(dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
def bounced(url: str) -> str:
    """A dispatch whose only channel bounced with ``EVIL``; its id."""
    store = SQLStore(url)
    dispatcher = Dispatcher(adapters=[Outbox()], clock=ManualClock(MONDAY), store=store)
    fay = Contact(
        id="fay",
        points=[ContactPoint(channel="sms", address="+17345550111")],
        preferences=Preferences(channels=["sms"]),
    )
    sent = dispatcher.send(fay, Message(body="hi"))
    failed = dispatcher.record(
        DeliveryEvent(kind=EventKind.FAILED, dispatch_id=sent.id, detail=EVIL)
    )
    store.close()
    assert failed.status is Status.FAILED
    return failed.id


def test_status_shows_a_bounce_reason_without_its_control_codes(url: str, bounced: str) -> None:
    result = invoke("status", "--store", url)

    assert result.exit_code == 0, result.output
    assert_clean(result.stdout)
    assert f"(last error: {SHOWN})" in result.stdout


def test_status_json_keeps_the_bounce_reason_exactly_and_escaped(url: str, bounced: str) -> None:
    result = invoke("status", "--store", url, "--json")

    assert result.exit_code == 0, result.output
    assert_clean(result.stdout.replace("all fine", ""))  # the title text is data, escaped
    [missed] = json.loads(result.stdout)["not_reached"]
    assert missed["error"] == EVIL
    assert "\\u001b[2J" in result.stdout
    assert "\\u009b" in result.stdout


@pytest.fixture
def evil_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers published under the entry points whose errors carry ``EVIL``.

    ``evil-sms`` refuses every address (a delivery failure); ``evil-fax`` fails as
    if misconfigured (an error that stops the contact's send). No other provider is set.
    """
    for name in list(os.environ):
        if name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")):
            monkeypatch.delenv(name)
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    write(
        plugin / "mc_evil_provider.py",
        f"""\
        from multichannel import BaseAdapter, ConfigurationError, PermanentError

        EVIL = {EVIL!r}


        class Refusing(BaseAdapter):
            name = "evil-sms"
            channel = "sms"

            def send(self, point, content, ctx):
                raise PermanentError(EVIL, provider=self.name)


        class Broken(BaseAdapter):
            name = "evil-fax"
            channel = "fax"

            def send(self, point, content, ctx):
                raise ConfigurationError(EVIL)
        """,
    )
    info = plugin / "mc_evil_provider-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: mc-evil-provider\nVersion: 1.0\n")
    write(
        info / "entry_points.txt",
        "[multichannel.adapters]\n"
        "evil-sms = mc_evil_provider:Refusing\n"
        "evil-fax = mc_evil_provider:Broken\n",
    )
    monkeypatch.syspath_prepend(str(plugin))


@pytest.mark.usefixtures("evil_provider")
def test_review_shows_a_provider_error_without_its_control_codes(url: str) -> None:
    store = SQLStore(url)
    ann = Contact(
        id="ann",
        points=[ContactPoint(channel="sms", address="+17345550100")],
        preferences=Preferences(channels=["sms"]),
    )
    # A send cut short by a crash, then found by a worker: held for review.
    store.create(
        Dispatch(
            id="d-review",
            contact_id="ann",
            contact=ann,
            message=Message(body="hi"),
            attempts=[Attempt(channel="sms", address="+17345550100", at=MONDAY, tries=1)],
            created_at=MONDAY,
            updated_at=MONDAY,
            next_action_at=MONDAY,
        )
    )
    cut_short = store.get("d-review")
    assert cut_short is not None
    held = Dispatcher(store=store, clock=ManualClock(MONDAY)).advance(cut_short)
    store.close()
    assert held.status is Status.REVIEW

    result = invoke("review", "d-review", "--not-sent", "--store", url)

    assert result.exit_code == 0, result.output
    assert_clean(result.stdout)
    assert f"evil-sms refused sms +17345550100: {SHOWN}" in result.stdout


@pytest.mark.usefixtures("evil_provider")
def test_send_prints_an_adapter_error_without_its_control_codes(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,channels,fax\nann,fax,+17345550100\n")
    message = write(tmp_path / "m.yaml", "body: hi\n")

    result = invoke("send", contacts, message)

    assert result.exit_code == 1, result.output
    assert_clean(result.stderr)
    assert f"error: 1 contact ('ann'): ConfigurationError: {SHOWN}" in result.stderr


def test_plan_shows_a_contact_id_from_a_file_without_its_control_codes(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.json",
        json.dumps(
            [{"id": "ann\x1b[2J\rbob", "points": [{"channel": "email", "address": "a@x.io"}]}]
        ),
    )
    message = write(tmp_path / "m.yaml", "body: hi\n")

    text = invoke("plan", contacts, message, "--at", "2026-03-02T14:00:00Z")
    as_json = invoke("plan", contacts, message, "--at", "2026-03-02T14:00:00Z", "--json")

    assert text.exit_code == 0, text.output
    assert_clean(text.stdout)
    assert "ann bob  send_now" in text.stdout
    assert json.loads(as_json.stdout)[0]["contact_id"] == "ann\x1b[2J\rbob"
    assert_clean(as_json.stdout)


def test_unicode_text_is_kept(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "c.json",
        json.dumps(
            [{"id": "Zoë 日本 👩‍👩‍👧", "points": [{"channel": "email", "address": "z@x.io"}]}]
        ),
    )
    message = write(tmp_path / "m.yaml", "body: hi\n")

    text = invoke("plan", contacts, message, "--at", "2026-03-02T14:00:00Z")

    assert "Zoë 日本 👩‍👩‍👧  send_now" in text.stdout
