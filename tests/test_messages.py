"""Messages: per-channel content, attachments, validation and the idempotency fingerprint."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from multichannel import Attachment, Content, Message, Variant

DEADLINE = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\x00\xff\xfe binary \x01"


def test_defaults() -> None:
    message = Message(body="Your appointment is tomorrow at 10:00.")
    assert message.subject is None
    assert message.variants == {}
    assert (message.sensitive, message.urgent, message.expects_response) == (False, False, False)
    assert (message.response_wait, message.deliver_by, message.key) == (None, None, None)
    assert message.attachments == ()
    assert message.metadata == {}


def test_body_is_required_and_not_empty() -> None:
    with pytest.raises(ValidationError, match="body"):
        Message(body="")
    with pytest.raises(ValidationError, match="body"):
        Message.model_validate({"subject": "hello"})


def test_variants_may_be_plain_strings_or_objects() -> None:
    message = Message(
        body="Long body",
        variants={
            "sms": "Short text",
            "email": {"html": "<p>Long body</p>", "subject": "For email"},
            "voice": Variant(body="Hello, this is a reminder."),
        },
    )
    assert message.variants["sms"] == Variant(body="Short text")
    assert message.variants["email"] == Variant(html="<p>Long body</p>", subject="For email")
    assert message.variants["voice"].body == "Hello, this is a reminder."


def test_variant_channels_are_lower_case() -> None:
    message = Message(body="x", variants={" SMS ": "short"})
    assert list(message.variants) == ["sms"]
    assert message.content_for("sms").body == "short"
    assert message.content_for("SMS").body == "short"


def test_unknown_variant_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="text"):
        Message(body="x", variants={"sms": {"text": "short"}})


def test_content_for_applies_the_variant_over_the_message() -> None:
    attachment = Attachment(filename="letter.pdf", data=PDF, content_type="application/pdf")
    message = Message(
        body="Long body",
        subject="Reminder",
        attachments=[attachment],
        variants={
            "sms": "Short text",
            "email": {"html": "<p>Long body</p>"},
            "fax": {"media_url": "https://example.invalid/letter.pdf", "attachments": []},
        },
    )
    assert message.content_for("sms") == Content(
        body="Short text", subject="Reminder", attachments=(attachment,)
    )
    assert message.content_for("email") == Content(
        body="Long body", subject="Reminder", html="<p>Long body</p>", attachments=(attachment,)
    )
    fax = message.content_for("fax")
    assert fax.media_url == "https://example.invalid/letter.pdf"
    assert fax.attachments == ()
    assert fax.body == "Long body"
    assert message.content_for("voice") == Content(
        body="Long body", subject="Reminder", attachments=(attachment,)
    )


def test_attachment_bytes_are_base64_in_json_and_come_back() -> None:
    attachment = Attachment(filename="letter.pdf", data=PDF, content_type="application/pdf")
    dumped = attachment.model_dump(mode="json")
    assert dumped["data"] == base64.b64encode(PDF).decode("ascii")
    assert Attachment.model_validate(dumped).data == PDF
    assert Attachment.model_validate_json(attachment.model_dump_json()) == attachment
    assert attachment.model_dump()["data"] == PDF


def test_attachment_defaults_and_repr_hides_the_bytes() -> None:
    attachment = Attachment(filename="notes.bin", data=b"secret bytes")
    assert attachment.content_type == "application/octet-stream"
    assert "secret bytes" not in repr(attachment)


@pytest.mark.parametrize("data", ["not base64!", "abc"])
def test_attachment_text_must_be_base64(data: str) -> None:
    with pytest.raises(ValidationError, match="attachment data must be bytes or base64 text"):
        Attachment(filename="a.bin", data=data)


def test_attachment_needs_a_filename() -> None:
    with pytest.raises(ValidationError, match="filename"):
        Attachment(filename="", data=b"x")


def test_message_round_trips_through_json() -> None:
    message = Message(
        body="Long body",
        subject="Reminder",
        variants={"sms": "Short", "email": {"html": "<b>Long</b>"}},
        sensitive=True,
        urgent=True,
        expects_response=True,
        response_wait=timedelta(hours=2),
        deliver_by=DEADLINE,
        attachments=[Attachment(filename="a.pdf", data=PDF)],
        key="appt-42",
        metadata={"campaign": "spring"},
    )
    text = message.model_dump_json()
    assert base64.b64encode(PDF).decode("ascii") in text
    again = Message.model_validate(json.loads(text))
    assert again == message
    assert again.attachments[0].data == PDF
    assert again.fingerprint() == message.fingerprint()


def test_naive_deliver_by_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone") as caught:
        Message(body="x", deliver_by=datetime(2026, 3, 2, 17, 0))
    assert caught.value.errors()[0]["loc"] == ("deliver_by",)


def test_deliver_by_and_expiry() -> None:
    message = Message(body="x", deliver_by=DEADLINE)
    assert not message.expired_at(DEADLINE)
    assert message.expired_at(DEADLINE + timedelta(microseconds=1))
    assert not Message(body="x").expired_at(DEADLINE)


@pytest.mark.parametrize("wait", [timedelta(0), timedelta(minutes=-5)])
def test_response_wait_must_be_positive(wait: timedelta) -> None:
    with pytest.raises(ValidationError, match="response_wait must be longer than zero"):
        Message(body="x", response_wait=wait)


def test_empty_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="key"):
        Message(body="x", key="")


# --- fingerprint -----------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "body": "Long body",
    "subject": "Reminder",
    "variants": {"sms": "Short"},
    "sensitive": False,
    "urgent": False,
    "expects_response": False,
    "response_wait": timedelta(hours=2),
    "deliver_by": DEADLINE,
    "attachments": [Attachment(filename="a.pdf", data=PDF)],
    "key": "appt-42",
    "metadata": {"campaign": "spring", "team": "clinic"},
}


def test_equal_messages_share_a_fingerprint() -> None:
    first = Message(**BASE)
    second = Message(
        **{
            **BASE,
            "variants": {"SMS": {"body": "Short"}},
            "metadata": {"team": "clinic", "campaign": "spring"},
            "attachments": (Attachment(filename="a.pdf", data=base64.b64encode(PDF).decode()),),
        }
    )
    assert first == second
    assert first.fingerprint() == second.fingerprint()
    assert len(first.fingerprint()) == 64


def test_the_same_deadline_in_another_zone_is_the_same_message() -> None:
    in_detroit = DEADLINE.astimezone(ZoneInfo("America/Detroit"))
    first, second = Message(**BASE), Message(**{**BASE, "deliver_by": in_detroit})
    assert first == second
    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", "Other body"),
        ("subject", None),
        ("variants", {"sms": "Shorter"}),
        ("variants", {"email": "Short"}),
        ("sensitive", True),
        ("urgent", True),
        ("expects_response", True),
        ("response_wait", timedelta(hours=3)),
        ("deliver_by", DEADLINE + timedelta(minutes=1)),
        ("deliver_by", None),
        ("attachments", [Attachment(filename="b.pdf", data=PDF)]),
        ("attachments", [Attachment(filename="a.pdf", data=PDF + b"!")]),
        ("attachments", [Attachment(filename="a.pdf", data=PDF, content_type="application/pdf")]),
        ("key", "appt-43"),
        ("metadata", {"campaign": "autumn", "team": "clinic"}),
    ],
)
def test_any_difference_changes_the_fingerprint(field: str, value: object) -> None:
    assert Message(**{**BASE, field: value}).fingerprint() != Message(**BASE).fingerprint()


def test_messages_are_frozen() -> None:
    message = Message(body="x")
    with pytest.raises(ValidationError, match="frozen"):
        message.body = "y"  # type: ignore[misc]
