"""The Outbox: the adapter users put in their own tests. It records, and fails when told to."""

from __future__ import annotations

import pytest

import multichannel.testing
from multichannel import (
    Adapter,
    ContactPoint,
    Content,
    DeliveryError,
    Outbox,
    PermanentError,
    Receipt,
    SendContext,
    TransientError,
)

SMS = ContactPoint(channel="sms", address="+17345550100")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
TEXT = Content(body="See you at 10:00")
CTX = SendContext(dispatch_id="d-1", contact_id="alice")


def attempt(outbox: Outbox, point: ContactPoint = SMS) -> Receipt | DeliveryError:
    """Send once, returning the receipt or the error raised."""
    try:
        return outbox.send(point, TEXT, CTX)
    except DeliveryError as error:
        return error


def test_the_outbox_is_an_adapter_for_every_channel(outbox: Outbox) -> None:
    assert isinstance(outbox, Adapter)
    assert outbox.name == "outbox"
    assert outbox.channel == "*"
    assert multichannel.testing.Outbox is Outbox


def test_sent_records_channel_address_message_and_provider_id(outbox: Outbox) -> None:
    first = outbox.send(SMS, TEXT, CTX)
    second = outbox.send(EMAIL, Content(body="Hello", subject="Hi"), CTX)

    assert [(item.channel, item.address) for item in outbox.sent] == [
        ("sms", SMS.address),
        ("email", EMAIL.address),
    ]
    assert outbox.sent[0].message == TEXT
    assert outbox.sent[1].message.subject == "Hi"
    assert [item.provider_id for item in outbox.sent] == [first.provider_id, second.provider_id]
    assert first.provider_id != second.provider_id
    assert first.status == "accepted"
    assert outbox.sent[0].point == SMS
    assert outbox.sent[0].context == CTX


def test_to_lists_what_one_address_received(outbox: Outbox) -> None:
    outbox.send(SMS, TEXT, CTX)
    outbox.send(EMAIL, TEXT, CTX)
    outbox.send(SMS, Content(body="Second"), CTX)

    assert [item.message.body for item in outbox.to(SMS.address)] == ["See you at 10:00", "Second"]
    assert outbox.to("+17345550199") == []


def test_reject_a_number_of_times_then_succeed(outbox: Outbox) -> None:
    outbox.reject(SMS.address, TransientError("busy"), times=2)

    outcomes = [attempt(outbox) for _ in range(3)]

    assert [type(outcome).__name__ for outcome in outcomes] == [
        "TransientError",
        "TransientError",
        "Receipt",
    ]
    assert len(outbox.sent) == 1


def test_rejected_sends_are_not_in_sent(outbox: Outbox) -> None:
    outbox.reject(SMS.address, PermanentError("unreachable"))

    for _ in range(3):
        assert isinstance(attempt(outbox), PermanentError)
    outbox.send(EMAIL, TEXT, CTX)

    assert [item.address for item in outbox.sent] == [EMAIL.address]


def test_reject_with_an_exception_class_builds_the_error(outbox: Outbox) -> None:
    outbox.reject(SMS.address, PermanentError, times=1)

    with pytest.raises(PermanentError) as raised:
        outbox.send(SMS, TEXT, CTX)

    assert raised.value.provider == "outbox"
    assert SMS.address in str(raised.value)
    assert isinstance(outbox.send(SMS, TEXT, CTX), Receipt)


def test_reject_touches_only_that_address(outbox: Outbox) -> None:
    outbox.reject(SMS.address, PermanentError)

    assert isinstance(outbox.send(EMAIL, TEXT, CTX), Receipt)


def test_a_later_reject_replaces_the_earlier_one(outbox: Outbox) -> None:
    outbox.reject(SMS.address, PermanentError)
    outbox.reject(SMS.address, TransientError("busy"), times=1)

    assert isinstance(attempt(outbox), TransientError)
    assert isinstance(attempt(outbox), Receipt)


def test_reject_needs_at_least_one_time(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="times must be at least 1"):
        outbox.reject(SMS.address, PermanentError, times=0)


def test_clear_forgets_what_was_sent_and_every_rejection(outbox: Outbox) -> None:
    outbox.send(EMAIL, TEXT, CTX)
    outbox.reject(SMS.address, PermanentError)

    outbox.clear()

    assert outbox.sent == []
    assert isinstance(outbox.send(SMS, TEXT, CTX), Receipt)
    assert len(outbox.sent) == 1


async def test_asend_records_and_rejects_like_send(outbox: Outbox) -> None:
    outbox.reject(SMS.address, TransientError("busy"), times=1)

    with pytest.raises(TransientError):
        await outbox.asend(SMS, TEXT, CTX)
    receipt = await outbox.asend(SMS, TEXT, CTX)

    assert outbox.sent[0].provider_id == receipt.provider_id


def test_repr_counts_what_was_sent(outbox: Outbox) -> None:
    outbox.send(SMS, TEXT, CTX)

    assert repr(outbox) == "Outbox(name='outbox', sent=1)"
    assert SMS.address not in repr(outbox)
