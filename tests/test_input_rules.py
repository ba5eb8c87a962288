"""Smaller input rules: no blank texts, no phone extensions, numbers timed as they are spoken."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from multichannel import Contact, ContactPoint, Content, Message, PermanentError
from multichannel.adapters.twilio_voice import (
    VOICEMAIL_LIMIT,
    WORDS_PER_MINUTE,
    TwilioVoiceDrop,
    spoken_length,
    spoken_words,
)
from multichannel.contacts import STORED

WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u2003\u3000"
blanks = st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=8)
texts = st.text(min_size=1, max_size=40).filter(lambda text: bool(text.strip()))


def only_error(caught: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[int | str, ...], str]:
    (error,) = caught.value.errors()
    return tuple(error["loc"]), error["msg"]


# --- blank texts -----------------------------------------------------------------------------


@given(body=blanks)
def test_a_body_of_only_whitespace_is_refused_by_name(body: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Message(body=body)

    location, message = only_error(caught)
    assert location == ("body",)
    assert message == (
        "Value error, body is only whitespace; write the text the person will receive"
    )


@given(body=texts)
def test_a_body_with_any_visible_character_is_kept_as_written(body: str) -> None:
    assert Message(body=body).body == body


@given(channel=st.sampled_from(["sms", "voice", "fax", "email", "pager"]), body=blanks)
def test_a_blank_variant_body_is_refused_where_it_is(channel: str, body: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Message(body="Your appointment is tomorrow at 10:00.", variants={channel: body})

    location, message = only_error(caught)
    assert location == ("variants", channel, "body")
    assert "body is only whitespace; write the text for this channel" in message


@pytest.mark.parametrize(
    "variant", ["", {"body": ""}, {"body": "", "media_url": "https://x.example/a.pdf"}]
)
def test_an_empty_variant_body_without_html_is_refused(variant: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Message(body="Referral letter attached.", variants={"sms": variant})

    location, message = only_error(caught)
    assert location == ("variants", "sms")
    assert message.startswith("Value error, body is empty; write the text for this channel")
    assert "allowed only beside html" in message


def test_an_empty_body_beside_html_sends_the_email_as_html_alone() -> None:
    message = Message(
        body="Your results are ready.", variants={"email": {"body": "", "html": "<p>Ready.</p>"}}
    )

    content = message.content_for("email")
    assert (content.body, content.html) == ("", "<p>Ready.</p>")
    assert message.content_for("sms").body == "Your results are ready."


@pytest.mark.parametrize("field", ["subject", "html", "media_url"])
@pytest.mark.parametrize("value", ["", "  ", "\n"])
def test_a_blank_variant_field_is_refused_by_name(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Message(body="Hello", variants={"email": {field: value}})

    location, message = only_error(caught)
    assert location == ("variants", "email", field)
    assert message.startswith(f"Value error, {field} is ")
    assert message.endswith("; set it or leave it out")


@pytest.mark.parametrize(("subject", "how"), [("", "empty"), ("   ", "only whitespace")])
def test_a_blank_subject_is_refused(subject: str, how: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Message(body="Hello", subject=subject)

    assert only_error(caught) == (
        ("subject",),
        f"Value error, subject is {how}; write one or leave it out",
    )


def test_a_message_saved_before_the_rule_is_still_readable() -> None:
    saved = {"body": "  ", "subject": " ", "variants": {"sms": {"body": ""}}}

    message = Message.model_validate(saved, context=STORED)

    assert message.content_for("sms").body == ""


# --- extensions ------------------------------------------------------------------------------

WRITTEN_WITH_EXTENSION = [
    "+1 734 555 0100 ext. 12",
    "+1 734 555 0100 ext 12",
    "+1 734 555 0100 extension 12",
    "+1 734 555 0100 x12",
    "+1 734 555 0100 x 12",
    "+1 734 555 0100;ext=12",
    "+1 (734) 555-0100 #12",
    "+17345550100,,12",
    "tel:+1-734-555-0100;ext=12",
    "TEL:+1-734-555-0100;ext=12",
]
WHY = {
    "sms": "a text message cannot be delivered to an extension",
    "fax": "a fax cannot be sent to an extension",
    "voice": "a voicemail cannot be left behind an extension",
}


@pytest.mark.parametrize("channel", sorted(WHY))
@pytest.mark.parametrize("written", WRITTEN_WITH_EXTENSION)
def test_a_number_with_an_extension_is_refused_with_the_reason(channel: str, written: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ContactPoint(channel=channel, address=written)

    location, message = only_error(caught)
    assert location == ("address",)
    assert message.startswith(f"Value error, {written!r} has an extension (12), and {WHY[channel]}")


def test_a_national_number_with_an_extension_is_refused_before_the_region_applies() -> None:
    with pytest.raises(ValidationError) as caught:
        Contact(id="lee", region="US", points=[{"channel": "voice", "address": "734-555-0100 x7"}])

    location, message = only_error(caught)
    assert location == ("points", 0, "address")
    assert "has an extension (7)" in message
    assert WHY["voice"] in message


markers = st.sampled_from([" ext. ", " ext ", " x", " x ", ";ext=", " extension ", ",,", " #"])


@given(
    channel=st.sampled_from(sorted(WHY)),
    number=st.sampled_from(["+1 734 555 0100", "+44 20 7946 0000", "+33 1 42 68 53 00"]),
    marker=markers,
    extension=st.from_regex(r"[0-9]{1,6}", fullmatch=True),
)
def test_an_extension_is_never_dropped_silently(
    channel: str, number: str, marker: str, extension: str
) -> None:
    with pytest.raises(ValidationError, match=f"has an extension \\({extension}\\)"):
        ContactPoint(channel=channel, address=f"{number}{marker}{extension}")


@pytest.mark.parametrize("written", ["tel:+1-734-555-0100", "+1 (734) 555-0100", "+1.734.555.0100"])
def test_a_number_without_an_extension_is_still_e164(written: str) -> None:
    assert ContactPoint(channel="sms", address=written).address == "+17345550100"


def test_a_channel_of_your_own_keeps_an_extension() -> None:
    point = ContactPoint(channel="pager", address="+1 734 555 0100 x12")
    assert point.address == "+1 734 555 0100 x12"


# --- numbers as they are spoken --------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("Call 734-555-0100", 11),  # ten digits one by one, and "call"
        ("Call (734) 555-0100", 11),
        ("+1 734 555 0100", 11),
        ("2026", 4),  # "twenty twenty-six": never fewer words than digits
        ("1,250", 5),  # "one thousand two hundred fifty"
        ("$1,250.75", 10),  # "one thousand two hundred fifty dollars and seventy-five cents"
        ("3.5", 3),  # "three point five"
        ("Smith & Co", 3),
        ("5% off", 3),
        ("Hello, this is Dr. Lee's office.", 6),
        ("Hi - there ...", 2),
        ("", 0),
    ],
)
def test_numbers_are_counted_as_they_are_spoken(script: str, words: int) -> None:
    assert spoken_words(script) == words
    assert spoken_length(script) == timedelta(minutes=words / WORDS_PER_MINUTE)


# \u0663 is an Arabic-Indic three: a digit in any script is read out.
spoken_alphabet = st.sampled_from("0123456789 ,.$€£-()&%:+#xab\né'\u00a0\u0663")
number_heavy = st.text(spoken_alphabet, max_size=40)
any_text = st.text(max_size=40)


@settings(max_examples=400)
@given(first=number_heavy | any_text, then=number_heavy | any_text)
def test_appending_text_never_shortens_the_estimate(first: str, then: str) -> None:
    assert spoken_words(first + then) >= spoken_words(first)
    assert spoken_length(first + then) >= spoken_length(first)


@settings(max_examples=400)
@given(script=number_heavy | any_text, digit=st.sampled_from("0123456789\u0663"))
def test_every_digit_costs_at_least_one_spoken_word(script: str, digit: str) -> None:
    digits = sum(char.isdecimal() for char in script)
    assert spoken_words(script) >= digits
    assert spoken_words(script + digit) >= spoken_words(script) + 1


def test_a_script_that_numbers_push_past_thirty_seconds_is_refused() -> None:
    voice = TwilioVoiceDrop(account_sid="AC" + "0" * 32, auth_token="t", from_number="+15005550006")
    script = " ".join(["word"] * 66) + " Call 734-555-0100 or 734-555-0199."
    assert len(script.split()) <= 75  # the old word count would have dialled it

    with pytest.raises(PermanentError) as raised:
        voice.twiml(Content(body=script))

    assert spoken_length(script) > VOICEMAIL_LIMIT
    assert "(88 words at 150 a minute, numbers counted as they are spoken)" in str(raised.value)
