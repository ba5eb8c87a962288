"""What is sent: a message, its per-channel variants, and the content an adapter receives."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeAlias, TypedDict

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from multichannel._fields import Items, ResponseWait

__all__ = ["Attachment", "Content", "Message", "Variant", "VariantFields"]


def _decode_bytes(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("attachment data must be bytes or base64 text") from None
    return value


def _stored(info: ValidationInfo) -> bool:
    # contacts.STORED: a rule added later must not make a dispatch saved earlier unreadable.
    return isinstance(info.context, dict) and info.context.get("stored") is True


def _blankness(value: str | None, info: ValidationInfo) -> str | None:
    """How ``value`` is blank (``"empty"``, ``"only whitespace"``); None if unset or it has text."""
    if value is None or value.strip() or _stored(info):
        return None
    return "only whitespace" if value else "empty"


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_decode_bytes),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), when_used="json"),
]


class Attachment(BaseModel):
    """A file sent with an email: name, bytes and MIME type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str = Field(min_length=1)
    data: Base64Bytes = Field(repr=False, description="the bytes; base64 text in JSON")
    content_type: str = Field(default="application/octet-stream")


class Variant(BaseModel):
    """Content for one channel that overrides the message's own fields where set.

    ``body`` is the text (a short text for sms, a script for voice), ``html`` an
    email's html part, ``media_url`` a document (fax) or recording (voice) URL.
    A field that is set may not be blank; ``body`` may be empty (``""``) only
    beside ``html``, for an email that is html alone. Raises pydantic's
    ValidationError naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str | None = None
    subject: str | None = None
    html: str | None = None
    media_url: str | None = None
    attachments: Items[Attachment] | None = None

    @field_validator("body", "subject", "html", "media_url")
    @classmethod
    def _check_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        blank = _blankness(value, info)
        if blank == "empty" and info.field_name == "body":
            return value  # beside html it is an html-only email: _check_empty_body decides
        if blank:
            fix = (
                "write the text for this channel, or leave body out to use the message's"
                if info.field_name == "body"
                else "set it or leave it out"
            )
            raise ValueError(f"{info.field_name} is {blank}; {fix}")
        return value

    @model_validator(mode="after")
    def _check_empty_body(self, info: ValidationInfo) -> Self:
        if self.body == "" and self.html is None and not _stored(info):
            raise ValueError(
                "body is empty; write the text for this channel, or leave body out to use the "
                "message's (an empty body is allowed only beside html, for an html-only email)"
            )
        return self


class Content(BaseModel):
    """Exactly what an adapter sends on one channel, variants already applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str
    subject: str | None = None
    html: str | None = None
    media_url: str | None = None
    attachments: Items[Attachment] = ()


class VariantFields(TypedDict, total=False):
    """A `Variant` written as a dict, as in ``variants={"email": {"html": "<p>Hi</p>"}}``."""

    body: str | None
    subject: str | None
    html: str | None
    media_url: str | None
    attachments: Sequence[Attachment] | None


def _variant(value: Any) -> Any:
    return {"body": value} if isinstance(value, str) else value


# What a type checker accepts for ``variants``: a Variant, its fields as a dict, or a string
# (the body). Pydantic validates each into a Variant, so the values stored are Variants.
if TYPE_CHECKING:
    Variants: TypeAlias = Mapping[str, Variant | VariantFields | str]
else:
    Variants = dict[str, Annotated[Variant, BeforeValidator(_variant)]]


class Message(BaseModel):
    """A message for one person, with flags that steer how it is delivered.

    ``variants`` maps a channel to content that overrides ``body`` there.
    ``sensitive`` content goes only to points that allow it; ``urgent`` ignores
    quiet hours and avoided days (never consent or availability);
    ``expects_response`` waits ``response_wait`` for an answer before trying the
    next channel; ``deliver_by`` is the last useful instant; ``key`` makes
    sending idempotent per contact. A blank ``body`` or ``subject`` (empty or
    only whitespace) raises pydantic's ValidationError naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str = Field(min_length=1, description="the text, used where no variant applies")
    subject: str | None = None
    variants: Variants = Field(
        default_factory=dict, description="per-channel content: {'sms': 'short text', ...}"
    )
    sensitive: bool = False
    urgent: bool = False
    expects_response: bool = False
    response_wait: ResponseWait = None
    deliver_by: AwareDatetime | None = None
    attachments: Items[Attachment] = Field(default=(), description="files, for email")
    key: str | None = Field(default=None, min_length=1, description="idempotency key")
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("variants", mode="before")
    @classmethod
    def _lower_channels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(channel).strip().lower(): variant for channel, variant in value.items()}
        return value

    @field_validator("body", "subject")
    @classmethod
    def _check_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        blank = _blankness(value, info)
        if blank:
            fix = (
                "write the text the person will receive"
                if info.field_name == "body"
                else "write one or leave it out"
            )
            raise ValueError(f"{info.field_name} is {blank}; {fix}")
        return value

    def content_for(self, channel: str) -> Content:
        """The content to send on ``channel``: the variant's fields over the message's."""
        found = self.variants.get(channel.strip().lower())
        variant = found if isinstance(found, Variant) else Variant()
        return Content(
            body=variant.body if variant.body is not None else self.body,
            subject=variant.subject if variant.subject is not None else self.subject,
            html=variant.html,
            media_url=variant.media_url,
            attachments=(
                variant.attachments if variant.attachments is not None else self.attachments
            ),
        )

    def fingerprint(self) -> str:
        """A digest of everything in the message, to tell a reused key from a resend."""
        fields = self.model_dump(mode="json")
        if self.deliver_by is not None:
            # Equal instants written in different zones are the same message.
            fields["deliver_by"] = self.deliver_by.astimezone(UTC).isoformat()
        canonical = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def expired_at(self, now: datetime) -> bool:
        """True when ``deliver_by`` has passed at ``now``."""
        return self.deliver_by is not None and now > self.deliver_by
