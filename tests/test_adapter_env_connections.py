"""Each adapter's ``from_env`` reads how many connections to keep, and names a bad value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from multichannel import ConfigurationError
from multichannel.adapters.base import BaseAdapter
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.smtp import SMTPEmail
from multichannel.adapters.telnyx import TelnyxFax
from multichannel.adapters.twilio_sms import TwilioSMS
from multichannel.adapters.twilio_voice import TwilioVoiceDrop

ADAPTERS: dict[str, tuple[Callable[[], BaseAdapter], dict[str, str], str]] = {
    "twilio-sms": (
        TwilioSMS.from_env,
        {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_FROM_NUMBER": "+13125790015",
        },
        "TWILIO_MAX_CONNECTIONS",
    ),
    "twilio-voice": (
        TwilioVoiceDrop.from_env,
        {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_FROM_NUMBER": "+13125790015",
        },
        "TWILIO_MAX_CONNECTIONS",
    ),
    "sendgrid": (
        SendGridEmail.from_env,
        {"SENDGRID_API_KEY": "SG.key", "SENDGRID_FROM": "clinic@example.com"},
        "SENDGRID_MAX_CONNECTIONS",
    ),
    "smtp": (
        SMTPEmail.from_env,
        {"SMTP_HOST": "127.0.0.1", "SMTP_FROM": "clinic@example.com"},
        "SMTP_MAX_CONNECTIONS",
    ),
    "telnyx": (
        TelnyxFax.from_env,
        {"TELNYX_API_KEY": "KEY", "TELNYX_CONNECTION_ID": "1", "TELNYX_FROM": "+13125790015"},
        "TELNYX_MAX_CONNECTIONS",
    ),
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[Callable[[], BaseAdapter], str, pytest.MonkeyPatch]:
    build, variables, setting = ADAPTERS[request.param]
    for name in ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_BASE_URL", setting):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return build, setting, monkeypatch


def test_the_default_is_kept_when_the_variable_is_not_set(
    adapter: tuple[Callable[[], BaseAdapter], str, pytest.MonkeyPatch],
) -> None:
    build, _, _ = adapter
    with build() as built:
        assert getattr(built, "max_connections", None) == 64


def test_the_variable_sets_how_many_connections_are_kept(
    adapter: tuple[Callable[[], BaseAdapter], str, pytest.MonkeyPatch],
) -> None:
    build, setting, env = adapter
    env.setenv(setting, "7")
    with build() as built:
        assert getattr(built, "max_connections", None) == 7


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_value_is_refused_naming_the_variable_or_the_setting(
    adapter: tuple[Callable[[], BaseAdapter], str, pytest.MonkeyPatch], value: str
) -> None:
    build, setting, env = adapter
    env.setenv(setting, value)
    with pytest.raises(ConfigurationError, match=f"{setting}|max_connections"):
        build()
