"""Contacts, their points and preferences: validation, normalisation and the file format."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from multichannel import Contact, ContactPoint, Preferences, Window


def first_error(caught: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[int | str, ...], str]:
    error = caught.value.errors()[0]
    return tuple(error["loc"]), error["msg"]


# --- phone numbers ---------------------------------------------------------------------------


def test_national_number_is_read_in_the_contact_region() -> None:
    contact = Contact(
        id="alice",
        region="US",
        points=[ContactPoint(channel="sms", address="(734) 555-0100")],
    )
    assert contact.points[0].address == "+17345550100"


@pytest.mark.parametrize(
    "written", ["+1 734 555 0100", "+1 (734) 555-0100", " +17345550100 ", "+1.734.555.0100"]
)
def test_international_numbers_are_normalised_to_e164(written: str) -> None:
    point = ContactPoint(channel="voice", address=written)
    assert point.address == "+17345550100"


def test_region_is_case_insensitive_and_applies_to_every_phone_channel() -> None:
    contact = Contact(
        id="bob",
        region="gb",
        points=[
            {"channel": "sms", "address": "07911 123456"},
            {"channel": "fax", "address": "020 7946 0000"},
            {"channel": "voice", "address": "+1 734 555 0100"},
        ],
    )
    assert contact.region == "GB"
    assert [point.address for point in contact.points] == [
        "+447911123456",
        "+442079460000",
        "+17345550100",
    ]


def test_national_number_without_region_names_the_point_and_the_fix() -> None:
    with pytest.raises(ValidationError) as caught:
        Contact(
            id="alice",
            points=[
                {"channel": "email", "address": "alice@example.com"},
                {"channel": "sms", "address": "(734) 555-0100"},
            ],
        )
    location, message = first_error(caught)
    assert location == ("points",)
    assert "points[1].address" in message
    assert "'(734) 555-0100' has no country code" in message
    assert "region='US'" in message


def test_national_number_invalid_in_its_region_says_which_region() -> None:
    with pytest.raises(ValidationError, match=r"points\[0\]\.address: '555' is not a valid"):
        Contact(id="alice", region="US", points=[{"channel": "sms", "address": "555"}])
    with pytest.raises(ValidationError, match="in region US"):
        Contact(id="alice", region="US", points=[{"channel": "sms", "address": "555"}])


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("+1 555 0100", r"'\+1 555 0100' is not a valid phone number"),
        ("+abc", r"'\+abc' is not a phone number"),
        ("call me maybe", r"'call me maybe' is not a phone number"),
    ],
)
def test_invalid_numbers_are_rejected(address: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ContactPoint(channel="sms", address=address)
    assert first_error(caught)[0] == ("address",)


def test_blank_address_is_rejected() -> None:
    with pytest.raises(ValidationError, match="address"):
        ContactPoint(channel="whatsapp", address="")


# --- email and other channels ----------------------------------------------------------------


def test_email_is_validated_and_its_domain_normalised() -> None:
    point = ContactPoint(channel="email", address=" Alice@Example.COM ")
    assert point.address == "Alice@example.com"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("not-an-email", "must have an @-sign"),
        ("alice@localhost", "alice@localhost"),
        ("a@b", "It should have a period"),
    ],
)
def test_bad_email_reads_well(address: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ContactPoint(channel="email", address=address)
    location, message = first_error(caught)
    assert location == ("address",)
    assert message.startswith(f"Value error, {address!r} is not an email address: ")
    assert reason in message
    assert "value is not a valid email address" not in message


def test_unknown_channel_takes_any_address() -> None:
    point = ContactPoint(channel="whatsapp", address="  anything at all, really ")
    assert point.channel == "whatsapp"
    assert point.address == "anything at all, really"


def test_channel_and_label_are_lower_case() -> None:
    point = ContactPoint(channel=" SMS ", address="+17345550100", label=" Mobile ")
    assert point.channel == "sms"
    assert point.label == "mobile"
    assert point.ref == "sms:mobile"
    assert point.describe() == "sms +17345550100 (mobile)"
    unlabelled = ContactPoint(channel="email", address="a@example.com", label="  ")
    assert unlabelled.label is None
    assert unlabelled.ref == "email"
    assert unlabelled.describe() == "email a@example.com"


@pytest.mark.parametrize(
    ("channel", "label", "message"),
    [
        ("what sapp", None, r"'what sapp' is not a channel name"),
        ("9lives", None, r"'9lives' is not a channel name"),
        ("sms", "home:work", r"label 'home:work' cannot contain ':'"),
    ],
)
def test_bad_channel_or_label_is_rejected(channel: str, label: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ContactPoint(channel=channel, address="x", label=label)


def test_point_defaults_and_availability() -> None:
    point = ContactPoint(
        channel="voice",
        address="+17345550100",
        label="office",
        available=[Window(start="08:00", end="17:00", days="mon-fri")],
    )
    assert point.available == (Window(start="08:00", end="17:00", days="mon-fri"),)
    assert point.opted_out is False
    assert point.allow_sensitive is False
    assert ContactPoint(channel="sms", address="+17345550100").available is None


# --- contact fields --------------------------------------------------------------------------


def test_contact_defaults() -> None:
    contact = Contact(id=" alice ")
    assert contact.id == "alice"
    assert (contact.name, contact.timezone, contact.region) == (None, None, None)
    assert contact.points == ()
    assert contact.preferences == Preferences()


def test_blank_id_is_rejected() -> None:
    with pytest.raises(ValidationError, match="id cannot be blank"):
        Contact(id="   ")


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "america/detroit ", "EST5EDT/x"])
def test_unknown_timezone_is_rejected_helpfully(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Contact(id="alice", timezone=name)
    location, message = first_error(caught)
    assert location == ("timezone",)
    assert f"unknown time zone {name.strip()!r}" in message
    assert "IANA name such as 'America/Detroit'" in message


def test_timezone_is_trimmed() -> None:
    assert Contact(id="alice", timezone=" Asia/Kathmandu ").timezone == "Asia/Kathmandu"


@pytest.mark.parametrize("region", ["XX", "USA", "", "1"])
def test_bad_region_is_rejected(region: str) -> None:
    with pytest.raises(ValidationError, match="is not an ISO 3166 alpha-2 region") as caught:
        Contact(id="alice", region=region)
    assert first_error(caught)[0] == ("region",)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="phone"):
        Contact(id="alice", phone="+17345550100")  # type: ignore[call-arg]


def test_phone_zones_come_from_the_numbers_in_order() -> None:
    contact = Contact(
        id="traveller",
        points=[
            {"channel": "email", "address": "t@example.com"},
            {"channel": "sms", "address": "+61 2 9374 4000"},
            {"channel": "voice", "address": "+44 20 7946 0000"},
            {"channel": "fax", "address": "+61 2 9374 4001"},
        ],
    )
    assert contact.phone_zones() == ("Australia/Sydney", "Europe/London")


def test_phone_zones_of_a_country_with_many_zones_lists_them_all() -> None:
    # A US toll-free number belongs to no one area, so every US zone is possible.
    contact = Contact(id="desk", points=[{"channel": "voice", "address": "+1 800 555 0199"}])
    zones = contact.phone_zones()
    assert {"America/New_York", "America/Los_Angeles"} <= set(zones)
    assert len(zones) == len(set(zones))


def test_phone_zones_is_empty_without_phones() -> None:
    contact = Contact(id="alice", points=[{"channel": "email", "address": "a@example.com"}])
    assert contact.phone_zones() == ()


def test_points_for_follows_the_listed_order() -> None:
    contact = Contact(
        id="alice",
        points=[
            {"channel": "sms", "address": "+17345550100", "label": "mobile"},
            {"channel": "voice", "address": "+17345550101", "label": "office"},
            {"channel": "sms", "address": "+17345550102", "label": "work"},
        ],
        preferences={"channels": ["sms", "voice:office", "voice:home"]},
    )
    sms, office, home = contact.preferences.entries
    assert [p.address for p in contact.points_for(sms)] == ["+17345550100", "+17345550102"]
    assert [p.address for p in contact.points_for(office)] == ["+17345550101"]
    assert list(contact.points_for(home)) == []


# --- preferences -----------------------------------------------------------------------------


def test_preference_entries_are_channels_or_channel_and_label() -> None:
    preferences = Preferences(channels=["SMS", "voice:Office", "email"])
    assert preferences.channels == ("sms", "voice:office", "email")
    assert [(e.channel, e.label) for e in preferences.entries] == [
        ("sms", None),
        ("voice", "office"),
        ("email", None),
    ]
    assert [str(entry) for entry in preferences.entries] == ["sms", "voice:office", "email"]


def test_preference_entries_may_be_one_string() -> None:
    assert Preferences(channels="email, sms voice:office").channels == (
        "email",
        "sms",
        "voice:office",
    )


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (["sms", "email", "SMS"], r"channel 'sms' is listed more than once"),
        (["voice:office", "voice:Office"], r"channel 'voice:office' is listed more than once"),
        (["voice:"], r"'voice:' has an empty label; write 'voice:office' or 'voice'"),
        (["sms text"], r"'sms text' is not a channel name"),
        (["voice:a:b"], r"label 'a:b' cannot contain ':'"),
    ],
)
def test_bad_preference_entries_are_rejected(channels: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        Preferences(channels=channels)
    assert first_error(caught)[0] == ("channels",)


def test_channel_and_channel_with_label_are_distinct_entries() -> None:
    assert Preferences(channels=["voice", "voice:office"]).channels == ("voice", "voice:office")


def test_avoid_days_become_a_whole_day_quiet_window() -> None:
    night = Window(start="21:00", end="08:00")
    preferences = Preferences(quiet_hours=[night], avoid_days="sun, Saturday")
    assert preferences.avoid_days == ("sat", "sun")
    assert preferences.quiet_windows == (
        night,
        Window(start="00:00", end="24:00", days=["sat", "sun"]),
    )
    assert Preferences(quiet_hours=[night]).quiet_windows == (night,)
    assert Preferences(avoid_days=[]).avoid_days == ()


def test_bad_avoid_day_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"unknown day 'someday'") as caught:
        Preferences(avoid_days=["sun", "someday"])
    assert first_error(caught)[0] == ("avoid_days",)


@pytest.mark.parametrize("wait", [timedelta(0), timedelta(seconds=-1), -3600])
def test_response_wait_must_be_positive(wait: timedelta | int) -> None:
    with pytest.raises(ValidationError, match="response_wait must be longer than zero"):
        Preferences(response_wait=wait)


def test_response_wait_accepts_seconds_and_iso_durations() -> None:
    assert Preferences(response_wait=90).response_wait == timedelta(seconds=90)
    assert Preferences(response_wait="PT4H").response_wait == timedelta(hours=4)
    assert Preferences().response_wait is None


# --- the contacts-file format ----------------------------------------------------------------


def full_contact() -> Contact:
    return Contact(
        id="alice",
        name="Alice Example",
        timezone="America/Detroit",
        region="US",
        points=[
            ContactPoint(channel="sms", address="(734) 555-0100", label="mobile"),
            ContactPoint(
                channel="voice",
                address="734 555 0101",
                label="office",
                available=[Window(start="08:00", end="17:00", days="mon-fri")],
                allow_sensitive=True,
            ),
            ContactPoint(channel="email", address="alice@example.com", opted_out=True),
            ContactPoint(channel="pager", address="PG-42"),
        ],
        preferences=Preferences(
            channels=["sms", "voice:office", "email"],
            quiet_hours=[Window(start="21:00", end="08:00")],
            avoid_days="sun",
            response_wait=timedelta(hours=4),
        ),
    )


def test_contact_round_trips_through_json() -> None:
    contact = full_contact()
    dumped = contact.model_dump(mode="json")
    assert dumped["points"][0]["address"] == "+17345550100"
    assert dumped["points"][1]["available"] == [
        {"start": "08:00", "end": "17:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
    ]
    assert dumped["preferences"]["avoid_days"] == ["sun"]
    assert isinstance(dumped["preferences"]["response_wait"], str)
    again = Contact.model_validate(dumped)
    assert again == contact
    assert again.model_dump(mode="json") == dumped
    assert Contact.model_validate_json(contact.model_dump_json()) == contact


def test_round_trip_keeps_numbers_valid_without_a_region() -> None:
    dumped = full_contact().model_dump(mode="json")
    dumped["region"] = None
    assert Contact.model_validate(dumped).points[0].address == "+17345550100"


def test_contacts_are_frozen() -> None:
    contact = full_contact()
    with pytest.raises(ValidationError, match="frozen"):
        contact.timezone = "UTC"  # type: ignore[misc]
