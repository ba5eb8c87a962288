"""Copies of a dispatch share nothing that can change, and phone keys read the same every time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multichannel import Contact, ContactPoint, Dispatch, Message
from multichannel.contacts import address_key, normalise_phone
from multichannel.dispatch import Attempt

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _dispatch() -> Dispatch:
    contact = Contact(id="ada", points=[ContactPoint(channel="sms", address="+17345550123")])
    message = Message(body="Hello", variants={"sms": "Hi"}, metadata={"order": "42"})
    dispatch = Dispatch(
        id="d1",
        contact_id="ada",
        contact=contact,
        message=message,
        created_at=NOW,
        updated_at=NOW,
    )
    dispatch.attempts.append(Attempt(channel="sms", address="+17345550123", at=NOW))
    dispatch.note(NOW, "created")
    return dispatch


def test_changing_a_clone_leaves_the_original_as_it_was() -> None:
    original = _dispatch()
    before = original.model_dump()
    copy = original.clone()
    copy.attempts[0].outcome = "failed"  # type: ignore[assignment]
    copy.attempts.append(Attempt(channel="sms", address="+17345550123", at=NOW))
    copy.note(NOW, "changed")
    copy.message.metadata["order"] = "43"
    copy.message.variants.clear()
    copy.status = "cancelled"  # type: ignore[assignment]
    assert original.model_dump() == before
    assert copy.model_dump() != before


def test_a_clone_equals_its_original() -> None:
    original = _dispatch()
    assert original.clone() == original
    assert original.clone().model_dump() == original.model_dump()


def test_a_note_is_validated_when_it_is_not_plainly_valid() -> None:
    dispatch = _dispatch()
    with pytest.raises(ValueError, match="timezone"):
        dispatch.note(datetime(2026, 3, 2, 15, 0), "naive")


def test_a_number_given_with_a_trunk_zero_keys_as_the_number_without_it_every_time() -> None:
    # +44 020 ... is +44 20 ...: the memo must not short-cut a number not yet in E.164.
    assert address_key("sms", "+4402079460000") == "+442079460000"
    assert address_key("sms", "+4402079460000") == "+442079460000"
    point = ContactPoint(channel="sms", address="+44 20 7946 0000")
    assert address_key("sms", point.address) == point.address == "+442079460000"


@given(
    st.sampled_from(["+1734555", "+4420794", "+3361234", "+390612", "+86138001"]),
    st.integers(min_value=0, max_value=99_999),
    st.sampled_from(["sms", "voice", "fax"]),
)
def test_a_phone_key_read_twice_is_the_key_read_fresh(prefix: str, tail: int, channel: str) -> None:
    number = f"{prefix}{tail:05d}"
    try:
        fresh = normalise_phone(number, None)
    except ValueError:
        fresh = number
    assert address_key(channel, number) == fresh
    assert address_key(channel, number) == fresh
