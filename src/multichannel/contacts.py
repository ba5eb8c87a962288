"""Who a message is for: a contact, the points that reach them and how they like to be reached."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from multichannel._fields import Items, ResponseWait
from multichannel.windows import Window, parse_days, zone

__all__ = [
    "EMAIL_CHANNELS",
    "NAME_PATTERN",
    "PHONE_CHANNELS",
    "Contact",
    "ContactPoint",
    "PreferenceEntry",
    "Preferences",
    "address_key",
    "normalise_phone",
]

PHONE_CHANNELS = frozenset({"sms", "voice", "fax"})
EMAIL_CHANNELS = frozenset({"email"})
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_.-]*")
"""The alphabet of channel and adapter names: one plain word, as logs and the CLI show it."""


# The phone-number library and the email validator are imported where an address
# is checked, not here: they are slow to import, and `import multichannel` should
# not pay for them (stored dispatches are read back without checking addresses).


@cache
def _email() -> TypeAdapter[str]:
    # EmailStr imports email-validator, and importlib.metadata to check its version.
    from pydantic import EmailStr

    return TypeAdapter(EmailStr)


def _channel_name(value: Any) -> Any:
    if isinstance(value, str):
        name = value.strip().lower()
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"{value!r} is not a channel name; use lower-case letters, digits, '-', '_' "
                "or '.', starting with a letter (for example 'sms')"
            )
        return name
    return value


def _label_name(value: Any) -> Any:
    if isinstance(value, str):
        label = value.strip().lower()
        if not label:
            return None
        if ":" in label:
            raise ValueError(f"label {value!r} cannot contain ':'")
        return label
    return value


ChannelName = Annotated[str, BeforeValidator(_channel_name)]
Label = Annotated[str | None, BeforeValidator(_label_name)]


STORED = {"stored": True}
"""Validation context for data the library wrote itself: addresses are not checked again.

A store reading back a dispatch passes it, so that a number the phone-number
database no longer accepts (data changes with each release) cannot make a
stored dispatch unreadable.
"""


def _stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and info.context.get("stored") is True


_PLAIN_NUMBER = re.compile(r"\+?[\d\s().\-/]+")
_NO_EXTENSIONS = {
    "sms": (
        "a text message cannot be delivered to an extension; give a number that reaches the "
        "person directly, such as their mobile"
    ),
    "fax": (
        "a fax cannot be sent to an extension (a fax machine cannot dial through a "
        "switchboard); give the fax line's own number"
    ),
    "voice": (
        "a voicemail cannot be left behind an extension (the call cannot wait for the beep "
        "after dialling one, so the message would play while the extension rings); give a "
        "number that reaches the person directly"
    ),
}
"""Why each phone channel refuses a number with an extension, rather than dropping it."""


def _without_tel_scheme(address: str) -> str:
    """``address`` without a leading RFC 3966 ``tel:``, as vCards and CRMs export numbers."""
    return address[4:].strip() if address[:4].lower() == "tel:" else address


def _extension(number: str) -> str | None:
    """The extension written after ``number`` (``x12``, ``ext. 12``, ``;ext=12``), else None."""
    import phonenumbers

    if _PLAIN_NUMBER.fullmatch(number):
        return None  # no extension marker: the usual number is parsed once, by normalise_phone
    try:
        # The region only lets a national number parse; extension markers read alike in all.
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return None  # not a number at all; the caller says so in its own words
    extension: str | None = parsed.extension
    return extension or None


_KEYS: dict[tuple[str, str], str] = {}
"""A memo of phone numbers already read: (channel, address) -> the number in E.164.

Keys are asked for several times a send (store keys, opt-out look-ups), and
reading a number with the phone-number library costs far more than a look-up.
A number a `ContactPoint` has just normalised is entered as its own key. Pure:
it only remembers answers, never changes one. Bounded: emptied when full.
"""
_KEYS_HELD = 65_536


def _remember_key(channel: str, address: str, key: str) -> None:
    if len(_KEYS) >= _KEYS_HELD:
        _KEYS.clear()
    _KEYS[(channel, address)] = key


def address_key(channel: str, address: str) -> str:
    """The form of ``address`` that stores compare: one person, one key.

    Email addresses ignore case; a phone number with a country code is read
    into E.164 (``+1 734-555-0100`` and ``+17345550100`` are one number);
    anything else is compared as written, trimmed.
    """
    text = address.strip()
    if channel in EMAIL_CHANNELS:
        return text.casefold()
    if channel in PHONE_CHANNELS and text.startswith("+"):
        known = _KEYS.get((channel, text))
        if known is not None:
            return known
        try:
            key = normalise_phone(text, None)
        except ValueError:
            key = text
        _remember_key(channel, text, key)
        return key
    return text


def normalise_phone(number: str, region: str | None) -> str:
    """``number`` in E.164 form; ValueError if it is not a valid phone number.

    A number without a leading + is read in ``region`` (ISO 3166 alpha-2) and
    is an error without one.
    """
    import phonenumbers

    text = number.strip()
    if not text.startswith("+") and region is None:
        raise ValueError(
            f"phone number {number!r} has no country code; write it as +<country><number> "
            "or set the contact's region (for example region='US')"
        )
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"{number!r} is not a phone number: {err._msg}") from None
    if not phonenumbers.is_valid_number(parsed):
        where = f" in region {region}" if region and not text.startswith("+") else ""
        raise ValueError(f"{number!r} is not a valid phone number{where}")
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted


class ContactPoint(BaseModel):
    """One address on one channel: a mobile number for sms, an inbox for email.

    Phone numbers (sms, voice, fax) are validated and stored in E.164; a number
    without a leading + is resolved by the `Contact` in its ``region``; a
    leading ``tel:`` is dropped. A number with an extension (``x12``,
    ``ext. 12``, ``;ext=12``) is refused with the reason, as no phone channel
    can reach an extension. Email addresses are validated. A channel the
    library does not know is taken as is.
    ``available`` limits when this point may be used, read in the contact's zone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: ChannelName = Field(description="sms, email, voice, fax or a channel of your own")
    address: str = Field(min_length=1, description="phone number, email address or other id")
    label: Label = Field(default=None, description="mobile, office, home, ...")
    available: Items[Window] | None = Field(
        default=None, description="when this point may be used; None is always"
    )
    opted_out: bool = Field(default=False, description="the person asked not to be reached here")
    allow_sensitive: bool = Field(
        default=False, description="sensitive content may be left on this point"
    )

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str, info: ValidationInfo) -> str:
        if _stored(info):
            return value
        channel = info.data.get("channel")
        value = value.strip()
        if channel in PHONE_CHANNELS:
            number = _without_tel_scheme(value)
            extension = _extension(number)
            if extension is not None:
                raise ValueError(
                    f"{value!r} has an extension ({extension}), and {_NO_EXTENSIONS[channel]}"
                )
            if number.startswith("+"):
                normalised = normalise_phone(number, None)
                # Normalising a number in E.164 gives it back: its key is itself.
                _remember_key(channel, normalised, normalised)
                return normalised
            if not _PLAIN_NUMBER.fullmatch(number):
                raise ValueError(f"{value!r} is not a phone number")
            return number
        if channel in EMAIL_CHANNELS:
            try:
                return _email().validate_python(value)
            except ValidationError as err:
                reason = err.errors()[0]["msg"].removeprefix("value is not a valid email address: ")
                raise ValueError(f"{value!r} is not an email address: {reason}") from None
        return value

    @property
    def ref(self) -> str:
        """``channel:label`` (or just the channel), as preferences name points."""
        return f"{self.channel}:{self.label}" if self.label else self.channel

    def describe(self) -> str:
        """The point in words, e.g. ``sms +17345550100 (mobile)``."""
        label = f" ({self.label})" if self.label else ""
        return f"{self.channel} {self.address}{label}"


class PreferenceEntry(BaseModel):
    """A ranked preference: a channel, optionally narrowed to one label (``voice:office``)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    label: str | None = None

    @classmethod
    def parse(cls, text: str) -> PreferenceEntry:
        """Read ``"sms"`` or ``"voice:office"``; ValueError if malformed."""
        channel, _, label = text.partition(":")
        if _ and not label.strip():
            raise ValueError(f"{text!r} has an empty label; write 'voice:office' or 'voice'")
        return cls(channel=_channel_name(channel), label=_label_name(label) if label else None)

    def matches(self, point: ContactPoint) -> bool:
        """True when ``point`` is on this channel (and has this label, if one is named)."""
        return point.channel == self.channel and (self.label is None or point.label == self.label)

    def __str__(self) -> str:
        return f"{self.channel}:{self.label}" if self.label else self.channel


def _entries(value: Any) -> Any:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s;]+", value) if part]
    return value


class Preferences(BaseModel):
    """How a contact likes to be reached: ranked channels, quiet hours, days off, patience.

    ``channels`` is ranked, first choice first; an entry is a channel (``"sms"``)
    or a channel and label (``"voice:office"``). ``avoid_days`` are whole local
    days treated as quiet. ``response_wait`` is how long to wait for an answer
    before trying the next channel (None: the message's or the strategy's).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A string is a Sequence[str] too: "sms, email" and "sat,sun" type-check as well as lists.
    channels: Annotated[Items[str], BeforeValidator(_entries)] = Field(
        default=(), description="ranked channel entries, first choice first"
    )
    quiet_hours: Items[Window] = Field(default=(), description="never contact inside these")
    avoid_days: Items[str] = Field(default=(), description="whole local days kept quiet")
    response_wait: ResponseWait = Field(
        default=None, description="how long to wait for an answer before the next channel"
    )

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        entries = [str(PreferenceEntry.parse(text)) for text in value]
        duplicates = sorted({entry for entry in entries if entries.count(entry) > 1})
        if duplicates:
            raise ValueError(f"channel {duplicates[0]!r} is listed more than once")
        return tuple(entries)

    @field_validator("avoid_days", mode="before")
    @classmethod
    def _check_days(cls, value: Any) -> Any:
        if value is None or value == [] or value == ():
            return ()
        return parse_days(value)

    @property
    def entries(self) -> tuple[PreferenceEntry, ...]:
        """The ranked channel entries, parsed."""
        return tuple(PreferenceEntry.parse(text) for text in self.channels)

    @property
    def quiet_windows(self) -> tuple[Window, ...]:
        """Quiet hours plus one whole-day window for the avoided days."""
        if not self.avoid_days:
            return tuple(self.quiet_hours)
        return (*self.quiet_hours, Window(start="00:00", end="24:00", days=self.avoid_days))


def _region(value: Any) -> Any:
    import phonenumbers

    if isinstance(value, str):
        code = value.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 region such as 'US' or 'GB'")
        return code
    return value


class Contact(BaseModel):
    """A person to reach: their zone, their points and their preferences.

    ``timezone`` is an IANA name. When it is missing, the zones of the
    contact's phone numbers are used (an instant is quiet if quiet in any of
    them), else the strategy's default zone. Raises pydantic's ValidationError
    naming the field at fault.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="your id for this person")
    name: str | None = Field(default=None, description="how to address them")
    timezone: str | None = Field(default=None, description="IANA zone, e.g. 'America/Detroit'")
    region: Annotated[str | None, BeforeValidator(_region)] = Field(
        default=None, description="ISO 3166 alpha-2 region for numbers without a country code"
    )
    points: Items[ContactPoint] = Field(default=(), description="addresses, in your order")
    preferences: Preferences = Field(default_factory=Preferences)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("id cannot be blank")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value.strip())
            return value.strip()
        return value

    @field_validator("points")
    @classmethod
    def _resolve_numbers(
        cls, points: tuple[ContactPoint, ...], info: ValidationInfo
    ) -> tuple[ContactPoint, ...]:
        if _stored(info):
            return points
        region = info.data.get("region")
        resolved = []
        for index, point in enumerate(points):
            if point.channel in PHONE_CHANNELS and not point.address.startswith("+"):
                try:
                    number = normalise_phone(point.address, region)
                except ValueError as err:
                    raise ValueError(f"points[{index}].address: {err}") from None
                _remember_key(point.channel, number, number)
                point = point.model_copy(update={"address": number})
            resolved.append(point)
        return tuple(resolved)

    def phone_zones(self) -> tuple[str, ...]:
        """IANA zones that the contact's phone numbers belong to, in first-seen order."""
        import phonenumbers
        from phonenumbers import timezone as phone_timezones

        zones: list[str] = []
        for point in self.points:
            if point.channel not in PHONE_CHANNELS:
                continue
            number = phonenumbers.parse(point.address, None)
            for name in phone_timezones.time_zones_for_number(number):
                if name != "Etc/Unknown" and name not in zones:
                    zones.append(name)
        return tuple(zones)

    def points_for(self, entry: PreferenceEntry) -> Iterator[ContactPoint]:
        """The contact's points that ``entry`` names, in the order they are listed."""
        return (point for point in self.points if entry.matches(point))
