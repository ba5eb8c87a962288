"""The one Retry-After reading every HTTP adapter shares: properties and the cases that pin it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from multichannel.adapters._http import LONGEST_WAIT, http_date, retry_after

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SERVER_DATE = "Mon, 02 Mar 2026 14:00:00 GMT"


def imf_fixdate(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def rfc850(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    day, month = WEEKDAYS[moment.weekday()], MONTHS[moment.month - 1]
    return f"{day}, {moment.day:02d}-{month}-{moment.year % 100:02d} {moment:%H:%M:%S} GMT"


def asctime(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    day, month = DAYS[moment.weekday()], MONTHS[moment.month - 1]
    return f"{day} {month} {moment.day:2d} {moment:%H:%M:%S} {moment.year}"


def bounded(seconds: float) -> float:
    return min(max(seconds, 0.0), LONGEST_WAIT)


moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
# RFC 850 writes two-digit years, read as 1969-2068.
moments_850 = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2068, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


# Delta-seconds.


@given(st.integers(min_value=0, max_value=10**30))
def test_whole_seconds_are_the_wait(seconds: int) -> None:
    assert retry_after(str(seconds), date=None, now=NOW) == bounded(float(seconds))


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999))
def test_decimal_seconds_are_read_too(whole: int, thousandths: int) -> None:
    text = f"{whole}.{thousandths:03d}"

    assert retry_after(text, date=SERVER_DATE, now=NOW) == float(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", " ", "\t", "  "]))
def test_spaces_around_the_value_do_not_matter(seconds: int, space: str) -> None:
    assert retry_after(f"{space}{seconds}{space}", date=None, now=NOW) == seconds


def test_a_wait_longer_than_a_year_is_read_as_a_year() -> None:
    assert retry_after("9" * 5000, date=None, now=NOW) == LONGEST_WAIT


# HTTP-dates, in each of the three forms.


@given(until=moments, sent=moments, now=moments)
@example(until=NOW + timedelta(seconds=90), sent=NOW, now=NOW - timedelta(days=1))
def test_an_imf_fixdate_is_measured_from_the_answers_date(
    until: datetime, sent: datetime, now: datetime
) -> None:
    wait = retry_after(imf_fixdate(until), date=imf_fixdate(sent), now=now)

    assert wait == bounded((until - sent).total_seconds())


@given(until=moments_850, sent=moments)
def test_an_rfc_850_date_is_read_alike(until: datetime, sent: datetime) -> None:
    wait = retry_after(rfc850(until), date=imf_fixdate(sent), now=NOW)

    assert wait == bounded((until - sent).total_seconds())


@given(until=moments, sent=moments)
def test_an_asctime_date_has_no_zone_and_is_read_as_gmt(until: datetime, sent: datetime) -> None:
    wait = retry_after(asctime(until), date=asctime(sent), now=NOW)

    assert wait == bounded((until - sent).total_seconds())


@given(until=moments)
def test_every_form_of_one_instant_reads_the_same(until: datetime) -> None:
    forms = [imf_fixdate(until), asctime(until), imf_fixdate(until).replace("GMT", "-0000")]
    if 1970 <= until.year <= 2068:
        forms.append(rfc850(until))

    assert {http_date(form) for form in forms} == {until}


@given(until=moments, now=moments, date=st.sampled_from([None, "", "yesterday", "Mon, 99 Foo"]))
def test_without_a_readable_date_header_the_wait_is_measured_from_now(
    until: datetime, now: datetime, date: str | None
) -> None:
    wait = retry_after(imf_fixdate(until), date=date, now=now)

    assert wait == bounded((until - now).total_seconds())


@given(sent=moments, ago=st.integers(min_value=0, max_value=10**9))
def test_a_date_already_past_is_no_wait(sent: datetime, ago: int) -> None:
    until = max(sent - timedelta(seconds=ago), datetime(1900, 1, 1, tzinfo=UTC))

    assert retry_after(imf_fixdate(until), date=imf_fixdate(sent), now=NOW) == 0.0


def test_an_explicit_offset_is_honoured() -> None:
    wait = retry_after("Mon, 02 Mar 2026 16:01:00 +0200", date=SERVER_DATE, now=NOW)

    assert wait == 60.0
    assert http_date("Mon, 02 Mar 2026 16:01:00 +0200") == datetime(
        2026, 3, 2, 16, 1, tzinfo=timezone(timedelta(hours=2))
    )


# Garbage.


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-3",
        "+5",
        "1e3",
        "inf",
        "nan",
        "1.",
        ".5",
        "1,5",
        "1 000",
        "0x10",
        "1_000",
        "\u00b2",  # superscript two: str.isdigit() says yes, float() says no
        "\u0661\u0662",  # Arabic-Indic digits: not the ASCII digits HTTP means
        "Mon, 32 Mar 2026 14:00:00 GMT",
        "Mon, 02 Foo 2026 14:00:00 GMT",
    ],
)
def test_what_is_neither_seconds_nor_a_date_is_no_hint(value: str | None) -> None:
    assert retry_after(value, date=SERVER_DATE, now=NOW) is None


@given(value=st.text(), date=st.one_of(st.none(), st.text()))
@example(value="Mon, 02 Mar 99999 14:00:00 GMT", date=None)
@example(value="Mon, 02 Mar 2026 14:00:00 +9999", date=None)
@example(value="Sun Nov  6 08:49:37 0", date="Sun Nov  6 08:49:37 10000")
def test_any_text_gives_none_or_a_wait_within_bounds(value: str, date: str | None) -> None:
    wait = retry_after(value, date=date, now=NOW)

    assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= LONGEST_WAIT)


@given(st.text())
def test_http_date_never_raises_and_is_always_aware(text: str) -> None:
    moment = http_date(text)

    assert moment is None or moment.tzinfo is not None
