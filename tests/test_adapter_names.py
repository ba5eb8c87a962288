"""Adapters named per instance: two Twilio accounts in one dispatcher, on the wire.

A primary and a backup `TwilioSMS` differ only by ``name=`` and account; the
dispatcher tries them in the order given and the timeline names each.
"""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from pytest_httpserver import HTTPServer

from multichannel import (
    BaseAdapter,
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    Dispatcher,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    Preferences,
    ProviderError,
    Receipt,
    Registry,
    SendContext,
    Status,
    TransientError,
)
from multichannel.adapters import (
    SendGridEmail,
    SMTPEmail,
    TelnyxFax,
    TwilioSMS,
    TwilioVoiceDrop,
)

PRIMARY_SID = "AC" + "a" * 32
BACKUP_SID = "AC" + "b" * 32
PRIMARY_TOKEN = "primary-token-never-shown"
BACKUP_TOKEN = "backup-token-never-shown"
SENDER = "+15005550006"
NUMBER = "+17345550100"
ACCEPTED = {"sid": "SM" + "0" * 32, "status": "queued"}
CTX = SendContext(dispatch_id="d-1", contact_id="c-1")
TWILIO_VARIABLES = (
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "FROM_NUMBER",
    "MESSAGING_SERVICE_SID",
    "STATUS_CALLBACK",
    "VOICE_STATUS_CALLBACK",
    "BASE_URL",
)


def messages(sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"


def basic(sid: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def twilio_error(code: int, status: int, message: str) -> dict[str, object]:
    """An error body exactly as Twilio's 2010 API writes it."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def two_accounts() -> tuple[TwilioSMS, TwilioSMS]:
    primary = TwilioSMS(
        name="primary", account_sid=PRIMARY_SID, auth_token=PRIMARY_TOKEN, from_number=SENDER
    )
    backup = TwilioSMS(
        name="backup", account_sid=BACKUP_SID, auth_token=BACKUP_TOKEN, from_number=SENDER
    )
    return primary, backup


ADA = Contact(
    id="ada",
    timezone="America/Detroit",
    points=[ContactPoint(channel="sms", address=NUMBER)],
)


def reasons(decisions: list[Any]) -> str:
    return "\n".join(decision.reason for decision in decisions)


# Two accounts of one provider, in one dispatcher.


def test_the_backup_account_sends_when_the_primary_is_refused_as_a_provider(
    wire: responses.RequestsMock,
    two_accounts: tuple[TwilioSMS, TwilioSMS],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="multichannel")
    wire.post(messages(PRIMARY_SID), json=twilio_error(20003, 401, "Authenticate"), status=401)
    wire.post(messages(BACKUP_SID), json=ACCEPTED, status=201)
    dispatcher = Dispatcher(adapters=two_accounts, clock=clock)

    dispatch = dispatcher.send(ADA, Message(body="Your table is ready"))

    primary_call, backup_call = wire.calls
    assert primary_call.request.headers["Authorization"] == basic(PRIMARY_SID, PRIMARY_TOKEN)
    assert backup_call.request.headers["Authorization"] == basic(BACKUP_SID, BACKUP_TOKEN)
    (attempt,) = dispatch.attempts
    assert (attempt.provider, attempt.outcome) == ("backup", Outcome.ACCEPTED)
    assert attempt.provider_id == ACCEPTED["sid"]
    assert dispatch.status is Status.ACCEPTED
    timeline = reasons(dispatch.decisions)
    assert "primary failed as a provider, not because of the address" in timeline
    assert "(primary, code 20003, status 401)" in timeline
    assert "backup accepted the message" in timeline
    logged = caplog.text
    assert "primary: " in logged
    assert "backup: Twilio accepted the messages" in logged
    assert PRIMARY_TOKEN not in logged
    assert BACKUP_TOKEN not in logged


def test_the_backup_account_sends_once_the_primary_has_failed_every_retry(
    wire: responses.RequestsMock, two_accounts: tuple[TwilioSMS, TwilioSMS], clock: ManualClock
) -> None:
    wire.post(
        messages(PRIMARY_SID), json=twilio_error(20503, 503, "Service Unavailable"), status=503
    )
    wire.post(messages(BACKUP_SID), json=ACCEPTED, status=201)
    dispatcher = Dispatcher(adapters=two_accounts, clock=clock)
    started = clock.now()

    dispatch = dispatcher.send(ADA, Message(body="Your table is ready"))

    tries = dispatcher.strategy.retry.tries
    sent_to = [call.request.url for call in wire.calls]
    assert sent_to == [messages(PRIMARY_SID)] * tries + [messages(BACKUP_SID)]
    assert clock.now() > started, "the retry waits passed on the manual clock"
    (attempt,) = dispatch.attempts
    assert (attempt.provider, attempt.outcome) == ("backup", Outcome.ACCEPTED)
    assert attempt.tries == tries + 1
    timeline = reasons(dispatch.decisions)
    assert f"primary still failing after {tries} tries" in timeline
    assert "backup accepted the message" in timeline


def test_a_dispatch_whose_primary_succeeds_never_calls_the_backup(
    wire: responses.RequestsMock, two_accounts: tuple[TwilioSMS, TwilioSMS], clock: ManualClock
) -> None:
    wire.post(messages(PRIMARY_SID), json=ACCEPTED, status=201)
    backup = wire.post(messages(BACKUP_SID), json=ACCEPTED, status=201)
    dispatcher = Dispatcher(adapters=two_accounts, clock=clock)

    dispatch = dispatcher.send(ADA, Message(body="Your table is ready"))

    assert [call.request.url for call in wire.calls] == [messages(PRIMARY_SID)]
    assert backup.call_count == 0
    assert dispatch.attempts[0].provider == "primary"
    assert "backup" not in reasons(dispatch.decisions)
    wire.remove(backup)  # never called, by design: the mock would otherwise complain


# The registry: one name per adapter.


def test_two_adapters_of_one_class_need_their_own_names() -> None:
    first = TwilioSMS(account_sid=PRIMARY_SID, auth_token=PRIMARY_TOKEN, from_number=SENDER)
    second = TwilioSMS(account_sid=BACKUP_SID, auth_token=BACKUP_TOKEN, from_number=SENDER)

    with pytest.raises(ConfigurationError) as refused:
        Registry([first, second])

    message = str(refused.value)
    assert "two adapters are named 'twilio-sms'" in message
    assert "name=" in message
    assert "TwilioSMS(name='twilio-sms-backup', ...)" in message


def test_the_default_name_is_the_class_name_for_it() -> None:
    assert TwilioSMS.name == "twilio-sms"
    adapter = TwilioSMS(account_sid=PRIMARY_SID, auth_token=PRIMARY_TOKEN, from_number=SENDER)
    assert adapter.name == "twilio-sms"
    assert Outbox().name == "outbox"
    assert Outbox(name="pager-standin").name == "pager-standin"


@pytest.mark.parametrize(
    "name", ["", "Backup", "two words", "-backup", "1st", "twilio/backup", "backup\n", "é"]
)
def test_a_name_that_is_not_one_plain_word_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="is not an adapter name"):
        TwilioSMS(name=name, account_sid=PRIMARY_SID, auth_token=PRIMARY_TOKEN, from_number=SENDER)
    with pytest.raises(ConfigurationError, match="is not an adapter name"):
        Outbox(name=name)


@pytest.mark.parametrize("name", ["backup", "twilio-sms-2", "eu.sendgrid", "relay_b"])
def test_names_of_letters_digits_dashes_dots_and_underscores_are_taken(name: str) -> None:
    assert Outbox(name=name).name == name


class OldStylePager(BaseAdapter):
    """A custom adapter written before ``name=``: a class attribute and its own __init__."""

    name = "pager"
    channel = "pager"

    def __init__(self, *, token: str) -> None:
        self.token = token

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return Receipt(provider_id=f"{self.name}-1")


class NamedPager(OldStylePager):
    """The same adapter, updated to pass ``name=`` on to BaseAdapter."""

    def __init__(self, *, token: str, name: str | None = None) -> None:
        super().__init__(token=token)
        BaseAdapter.__init__(self, name=name)


def test_custom_adapters_written_the_old_way_keep_working(clock: ManualClock) -> None:
    pager = OldStylePager(token="t")
    contact = Contact(
        id="kim",
        timezone="America/Detroit",
        points=[ContactPoint(channel="pager", address="kim-pager")],
        preferences=Preferences(channels=["pager"]),
    )

    dispatch = Dispatcher(adapters=[pager], clock=clock).send(contact, Message(body="Page"))

    assert pager.name == "pager"
    assert repr(pager) == "OldStylePager(name='pager', channel='pager')"
    assert dispatch.attempts[0].provider == "pager"


def test_a_custom_subclass_can_name_each_instance_and_keeps_its_class_default() -> None:
    first, second = NamedPager(token="t"), NamedPager(token="t", name="pager-night")

    registry = Registry([first, second])

    assert [adapter.name for adapter in registry] == ["pager", "pager-night"]
    assert NamedPager.name == "pager", "naming an instance leaves the class default alone"


# The name wherever the adapter is named: repr, errors, from_env.


def _twilio_sms(name: str | None) -> Any:
    return TwilioSMS(name=name, account_sid=PRIMARY_SID, auth_token="x", from_number=SENDER)


def _twilio_voice(name: str | None) -> Any:
    return TwilioVoiceDrop(name=name, account_sid=PRIMARY_SID, auth_token="x", from_number=SENDER)


def _sendgrid(name: str | None) -> Any:
    return SendGridEmail(name=name, api_key="SG.key", from_email="a@clinic.example")


def _smtp(name: str | None) -> Any:
    return SMTPEmail(name=name, host="127.0.0.1", from_email="a@clinic.example")


def _telnyx(name: str | None) -> Any:
    return TelnyxFax(name=name, api_key="KEY", connection_id="1", from_number="+13125790015")


BUILDERS: dict[str, tuple[Callable[[str | None], Any], str]] = {
    "TwilioSMS": (_twilio_sms, "twilio-sms"),
    "TwilioVoiceDrop": (_twilio_voice, "twilio-voice"),
    "SendGridEmail": (_sendgrid, "sendgrid"),
    "SMTPEmail": (_smtp, "smtp"),
    "TelnyxFax": (_telnyx, "telnyx-fax"),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_built_in_adapter_takes_a_name_and_shows_it(kind: str) -> None:
    build, default = BUILDERS[kind]

    named, unnamed = build("second"), build(None)

    assert (named.name, unnamed.name) == ("second", default)
    assert repr(named).startswith(f"{kind}(name='second', ")
    assert repr(unnamed).startswith(f"{kind}(name={default!r}, ")
    with pytest.raises(ConfigurationError, match="is not an adapter name"):
        build("Second")


def test_a_named_adapters_errors_carry_its_name() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    relay = SMTPEmail(
        name="relay-b", host="127.0.0.1", port=closed, from_email="a@clinic.example", starttls=False
    )

    with pytest.raises(TransientError) as caught:
        relay.send(
            ContactPoint(channel="email", address="kim@example.org"), Content(body="hi"), CTX
        )

    assert caught.value.provider == "relay-b"


def test_a_named_sendgrid_adapter_names_itself_in_errors_and_logs(
    httpserver_ipv4: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="multichannel")
    httpserver_ipv4.expect_oneshot_request("/v3/mail/send", method="POST").respond_with_json(
        {"errors": [{"message": "The provided authorization grant is invalid"}]}, status=401
    )
    adapter = SendGridEmail(
        name="sendgrid-eu",
        api_key="SG.key",
        from_email="a@clinic.example",
        base_url=httpserver_ipv4.url_for("/").rstrip("/"),
    )

    with pytest.raises(ProviderError) as caught:
        adapter.send(
            ContactPoint(channel="email", address="kim@example.org"), Content(body="hi"), CTX
        )

    assert caught.value.provider == "sendgrid-eu"
    assert "sendgrid-eu: email to k***@example.org not sent" in caplog.text


# Two Twilio accounts from the environment.


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for prefix in ("TWILIO_", "TWILIO_BACKUP_"):
        for variable in TWILIO_VARIABLES:
            monkeypatch.delenv(prefix + variable, raising=False)
    return monkeypatch


def test_from_env_reads_a_second_account_under_its_own_prefix(
    clean_env: pytest.MonkeyPatch, wire: responses.RequestsMock
) -> None:
    clean_env.setenv("TWILIO_ACCOUNT_SID", PRIMARY_SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", PRIMARY_TOKEN)
    clean_env.setenv("TWILIO_FROM_NUMBER", SENDER)
    clean_env.setenv("TWILIO_BACKUP_ACCOUNT_SID", BACKUP_SID)
    clean_env.setenv("TWILIO_BACKUP_AUTH_TOKEN", BACKUP_TOKEN)
    clean_env.setenv("TWILIO_BACKUP_FROM_NUMBER", "+15005550009")
    wire.post(messages(BACKUP_SID), json=ACCEPTED, status=201)

    primary = TwilioSMS.from_env()
    backup = TwilioSMS.from_env(name="twilio-sms-backup", prefix="TWILIO_BACKUP_")
    backup.send(ContactPoint(channel="sms", address=NUMBER), Content(body="Hi"), CTX)

    assert (primary.name, backup.name) == ("twilio-sms", "twilio-sms-backup")
    assert (primary.from_number, backup.from_number) == (SENDER, "+15005550009")
    assert wire.calls[0].request.headers["Authorization"] == basic(BACKUP_SID, BACKUP_TOKEN)
    assert len(Registry([primary, backup])) == 2


def test_the_voice_adapter_shares_the_second_accounts_variables(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TWILIO_BACKUP_ACCOUNT_SID", BACKUP_SID)
    clean_env.setenv("TWILIO_BACKUP_AUTH_TOKEN", BACKUP_TOKEN)
    clean_env.setenv("TWILIO_BACKUP_FROM_NUMBER", SENDER)
    clean_env.setenv("TWILIO_BACKUP_VOICE_STATUS_CALLBACK", "https://hooks.example.com/calls")

    sms = TwilioSMS.from_env(name="twilio-sms-backup", prefix="TWILIO_BACKUP_")
    voice = TwilioVoiceDrop.from_env(name="twilio-voice-backup", prefix="TWILIO_BACKUP_")

    assert [adapter.name for adapter in Registry([sms, voice])] == [
        "twilio-sms-backup",
        "twilio-voice-backup",
    ]
    assert voice.status_callback == "https://hooks.example.com/calls"


def test_a_missing_variable_is_named_with_the_prefix_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TWILIO_BACKUP_ACCOUNT_SID", BACKUP_SID)
    clean_env.setenv("TWILIO_BACKUP_AUTH_TOKEN", BACKUP_TOKEN)

    with pytest.raises(ConfigurationError) as missing_sender:
        TwilioSMS.from_env(name="backup", prefix="TWILIO_BACKUP_")
    with pytest.raises(ConfigurationError) as missing_token:
        TwilioVoiceDrop.from_env(prefix="TWILIO_OTHER_")

    assert str(missing_sender.value) == (
        "backup: TWILIO_BACKUP_FROM_NUMBER or TWILIO_BACKUP_MESSAGING_SERVICE_SID is not set"
    )
    assert "twilio-voice: TWILIO_OTHER_ACCOUNT_SID is not set" in str(missing_token.value)
    assert "TWILIO_OTHER_AUTH_TOKEN is not set" in str(missing_token.value)
    assert BACKUP_TOKEN not in str(missing_sender.value)


@pytest.mark.parametrize("prefix", ["", "TWILIO", "twilio_backup_", "TWILIO BACKUP_", "_TWILIO_"])
def test_a_prefix_that_cannot_start_variable_names_is_refused(
    prefix: str, clean_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="is not a variable prefix"):
        TwilioSMS.from_env(prefix=prefix)


def test_every_from_env_takes_a_name(clean_env: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "SENDGRID_API_KEY": "SG.key",
        "SENDGRID_FROM": "a@clinic.example",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_FROM": "a@clinic.example",
        "TELNYX_API_KEY": "KEY",
        "TELNYX_CONNECTION_ID": "1",
        "TELNYX_FROM": "+13125790015",
    }.items():
        clean_env.setenv(variable, value)

    assert SendGridEmail.from_env(name="sendgrid-b").name == "sendgrid-b"
    assert SMTPEmail.from_env(name="smtp-b").name == "smtp-b"
    assert TelnyxFax.from_env(name="fax-b").name == "fax-b"
    assert SendGridEmail.from_env().name == "sendgrid"
