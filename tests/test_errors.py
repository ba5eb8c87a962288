"""The exception tree, the context errors carry, and retry hints."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest

import multichannel
from multichannel import (
    ConfigurationError,
    DeliveryError,
    IdempotencyConflict,
    MultichannelError,
    OptedOut,
    PermanentError,
    ProviderError,
    TransientError,
    UnknownDispatch,
)


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (DeliveryError, (MultichannelError,)),
        (TransientError, (DeliveryError, MultichannelError)),
        (PermanentError, (DeliveryError, MultichannelError)),
        (OptedOut, (PermanentError, DeliveryError, MultichannelError)),
        (ProviderError, (DeliveryError, MultichannelError)),
        (ConfigurationError, (MultichannelError,)),
        (IdempotencyConflict, (MultichannelError,)),
        (UnknownDispatch, (MultichannelError, LookupError)),
    ],
)
def test_tree(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    for parent in parents:
        assert issubclass(error, parent)


def test_configuration_error_is_not_a_delivery_error() -> None:
    # A fallback loop catches DeliveryError; a wrong setting must get through it.
    assert not issubclass(ConfigurationError, DeliveryError)
    assert not isinstance(ConfigurationError("TWILIO_AUTH_TOKEN is not set"), DeliveryError)


@pytest.mark.parametrize(
    ("error", "not_a"),
    [
        (ProviderError, PermanentError),
        (ProviderError, TransientError),
        (TransientError, PermanentError),
        (PermanentError, TransientError),
        (OptedOut, TransientError),
        (IdempotencyConflict, DeliveryError),
        (UnknownDispatch, DeliveryError),
    ],
)
def test_branches_stay_apart(error: type[Exception], not_a: type[Exception]) -> None:
    assert not issubclass(error, not_a)


def test_every_error_is_public() -> None:
    for error in (
        MultichannelError,
        DeliveryError,
        TransientError,
        PermanentError,
        OptedOut,
        ProviderError,
        ConfigurationError,
        IdempotencyConflict,
        UnknownDispatch,
    ):
        assert error.__name__ in multichannel.__all__
        assert error.__doc__


def test_str_carries_provider_code_and_status() -> None:
    error = PermanentError("number unreachable", provider="twilio-sms", code=21211, status=400)
    assert str(error) == "number unreachable (twilio-sms, code 21211, status 400)"
    assert (
        repr(error) == "PermanentError('number unreachable (twilio-sms, code 21211, status 400)')"
    )
    assert (error.message, error.provider, error.code, error.status) == (
        "number unreachable",
        "twilio-sms",
        "21211",
        400,
    )


@pytest.mark.parametrize(
    ("context", "text"),
    [
        ({}, "bounced"),
        ({"provider": "sendgrid"}, "bounced (sendgrid)"),
        ({"code": "5.1.1"}, "bounced (code 5.1.1)"),
        ({"status": 550}, "bounced (status 550)"),
        ({"provider": "smtp", "status": 550}, "bounced (smtp, status 550)"),
        ({"code": 0}, "bounced (code 0)"),
    ],
)
def test_str_shows_only_the_context_given(context: dict[str, str | int], text: str) -> None:
    assert str(DeliveryError("bounced", **context)) == text  # type: ignore[arg-type]


def test_opted_out_and_provider_error_carry_context_too() -> None:
    assert str(OptedOut("recipient replied STOP", provider="twilio-sms", code=21610)) == (
        "recipient replied STOP (twilio-sms, code 21610)"
    )
    assert str(ProviderError("credentials rejected", provider="sendgrid", status=401)) == (
        "credentials rejected (sendgrid, status 401)"
    )


def test_transient_error_context_and_default_retry_after() -> None:
    error = TransientError("rate limited", provider="twilio-sms", code=20429, status=429)
    assert str(error) == "rate limited (twilio-sms, code 20429, status 429)"
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (30, timedelta(seconds=30)),
        (1.5, timedelta(seconds=1.5)),
        (0, timedelta(0)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_retry_after_accepts_seconds_or_timedelta(
    given: float | timedelta, expected: timedelta
) -> None:
    assert TransientError("slow down", retry_after=given).retry_after == expected


@pytest.mark.parametrize("given", [-1, -0.5, timedelta(seconds=-1)])
def test_negative_retry_after_is_rejected(given: float | timedelta) -> None:
    with pytest.raises(ValueError, match="retry_after cannot be negative"):
        TransientError("slow down", retry_after=given)


def test_errors_survive_pickling_with_their_context() -> None:
    error = TransientError("rate limited", provider="twilio-sms", code=20429, retry_after=5)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is TransientError
    assert str(again) == str(error)
    assert again.retry_after == timedelta(seconds=5)
