"""FallbackStrategy.decide: a pure answer to "what next, and why" for one contact and message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from multichannel import (
    Action,
    Attempt,
    Contact,
    ContactPoint,
    FallbackStrategy,
    Message,
    Outcome,
    Preferences,
    RetryPolicy,
    Status,
    Window,
)

# Monday 2 March 2026 in Detroit (EST, UTC-5; DST starts on the 8th).
MON_0900 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
MON_1800 = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
SUN_1000 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)

NIGHTS = Window(start="21:00", end="08:00")
OFFICE_HOURS = Window(start="08:00", end="17:00", days="mon-fri")

SMS = ContactPoint(channel="sms", address="+17345550100", label="mobile")
SMS_2 = ContactPoint(channel="sms", address="+17345550111", label="work")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
VOICE_HOME = ContactPoint(channel="voice", address="+17345550122", label="home")
VOICE_OFFICE = ContactPoint(
    channel="voice", address="+17345550133", label="office", available=[OFFICE_HOURS]
)


def alice(
    *points: ContactPoint,
    channels: list[str] | None = None,
    quiet: list[Window] | None = None,
    avoid_days: list[str] | None = None,
    response_wait: timedelta | None = None,
    timezone: str | None = "America/Detroit",
) -> Contact:
    return Contact(
        id="alice",
        timezone=timezone,
        points=points or (SMS, EMAIL),
        preferences=Preferences(
            channels=channels if channels is not None else ["sms", "email"],
            quiet_hours=quiet or [],
            avoid_days=avoid_days or [],
            response_wait=response_wait,
        ),
    )


def attempt(point: ContactPoint, outcome: Outcome, at: datetime = MON_0900) -> Attempt:
    accepted = at if outcome in (Outcome.ACCEPTED, Outcome.DELIVERED) else None
    return Attempt(
        channel=point.channel,
        address=point.address,
        label=point.label,
        at=at,
        outcome=outcome,
        tries=1,
        accepted_at=accepted,
    )


def notes_text(action: Action) -> str:
    return "\n".join(action.notes)


HELLO = Message(body="Your appointment is tomorrow at 10:00.")


class TestChoosing:
    def test_first_choice_open_now_is_sent(self) -> None:
        action = FallbackStrategy().decide(alice(quiet=[NIGHTS]), HELLO, now=MON_0900)

        assert action.kind == "send"
        assert action.point == SMS
        assert action.status is Status.SCHEDULED
        assert "1st choice" in action.reason
        assert "open now" in action.reason

    def test_first_choice_in_quiet_hours_is_waited_for_even_if_the_second_is_open(self) -> None:
        contact = alice(VOICE_OFFICE, SMS, channels=["voice:office", "sms"])

        action = FallbackStrategy().decide(contact, HELLO, now=MON_1800)

        assert action.kind == "wait"
        assert action.point == VOICE_OFFICE
        assert action.until == TUE_0800
        assert "outside the point's available hours" in action.reason

    def test_quiet_hours_defer_to_the_first_open_instant(self) -> None:
        action = FallbackStrategy().decide(alice(quiet=[NIGHTS]), HELLO, now=MON_2200)

        assert action.kind == "wait"
        assert action.point == SMS
        assert action.until == TUE_0800
        assert "inside quiet hours 21:00-08:00" in action.reason
        assert "Mon 22:00 in America/Detroit" in action.reason

    def test_avoided_day_is_quiet_all_day(self) -> None:
        contact = alice(avoid_days=["sun"], quiet=[NIGHTS])

        action = FallbackStrategy().decide(contact, HELLO, now=SUN_1000)

        assert action.kind == "wait"
        assert action.until == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # Monday 08:00 local
        assert "an avoided day" in action.reason

    def test_deliver_by_too_early_for_the_first_choice_sends_on_the_next_open_one(self) -> None:
        contact = alice(VOICE_OFFICE, SMS, channels=["voice:office", "sms"])
        message = HELLO.model_copy(update={"deliver_by": MON_1800 + timedelta(hours=2)})

        action = FallbackStrategy().decide(contact, message, now=MON_1800)

        assert action.kind == "send"
        assert action.point == SMS
        assert "after deliver_by" in notes_text(action)
        assert "voice +17345550133 (office) (1st choice)" in notes_text(action)

    def test_deliver_by_too_early_for_the_first_waits_for_the_next_that_opens_in_time(
        self,
    ) -> None:
        late_office = VOICE_OFFICE.model_copy(
            update={"available": (Window(start="09:00", end="17:00"),)}
        )
        contact = alice(late_office, SMS, channels=["voice:office", "sms"], quiet=[NIGHTS])
        message = HELLO.model_copy(update={"deliver_by": TUE_0800 + timedelta(minutes=30)})

        action = FallbackStrategy().decide(contact, message, now=MON_2200)

        assert action.kind == "wait"
        assert action.point == SMS
        assert action.until == TUE_0800

    def test_deliver_by_passed_expires(self) -> None:
        message = HELLO.model_copy(update={"deliver_by": MON_0900 - timedelta(minutes=1)})

        action = FallbackStrategy().decide(alice(), message, now=MON_0900)

        assert action.kind == "stop"
        assert action.status is Status.EXPIRED
        assert "deliver_by" in action.reason
        assert "has passed" in notes_text(action)

    def test_deliver_by_at_exactly_now_still_sends(self) -> None:
        message = HELLO.model_copy(update={"deliver_by": MON_0900})

        action = FallbackStrategy().decide(alice(), message, now=MON_0900)

        assert action.kind == "send"

    def test_nothing_opens_in_time_expires(self) -> None:
        message = HELLO.model_copy(update={"deliver_by": MON_2200 + timedelta(hours=1)})

        action = FallbackStrategy().decide(alice(quiet=[NIGHTS]), message, now=MON_2200)

        assert action.status is Status.EXPIRED
        assert notes_text(action).count("after deliver_by") == 2


class TestDepth:
    contact = alice(EMAIL, VOICE_HOME, channels=["sms", "email", "voice"])

    def test_depth_two_walks_only_the_first_two_entries(self) -> None:
        tried = [attempt(EMAIL, Outcome.FAILED)]

        action = FallbackStrategy(depth=2).decide(self.contact, HELLO, now=MON_0900, attempts=tried)

        assert action.status is Status.FAILED
        assert "depth 2: later choices not tried (voice)" in notes_text(action)

    def test_depth_none_walks_every_entry(self) -> None:
        tried = [attempt(EMAIL, Outcome.FAILED)]

        action = FallbackStrategy(depth=None).decide(
            self.contact, HELLO, now=MON_0900, attempts=tried
        )

        assert action.kind == "send"
        assert action.point == VOICE_HOME
        assert "3rd choice" in action.reason

    def test_depth_counts_entries_not_points(self) -> None:
        contact = alice(SMS, SMS_2, EMAIL, channels=["sms", "email"])
        strategy = FallbackStrategy(depth=2)

        first = strategy.decide(contact, HELLO, now=MON_0900)
        second = strategy.decide(
            contact, HELLO, now=MON_0900, attempts=[attempt(SMS, Outcome.FAILED)]
        )
        third = strategy.decide(
            contact,
            HELLO,
            now=MON_0900,
            attempts=[attempt(SMS, Outcome.FAILED), attempt(SMS_2, Outcome.FAILED)],
        )

        assert [first.point, second.point, third.point] == [SMS, SMS_2, EMAIL]
        assert "1st choice" in second.reason
        assert "2nd choice" in third.reason

    def test_depth_below_one_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="depth must be at least 1"):
            FallbackStrategy(depth=0)


class TestCandidates:
    def test_labelled_entry_picks_the_labelled_point(self) -> None:
        contact = alice(VOICE_HOME, VOICE_OFFICE, channels=["voice:office"])

        action = FallbackStrategy().decide(contact, HELLO, now=MON_0900)

        assert action.point == VOICE_OFFICE

    def test_a_point_named_by_two_entries_is_tried_once_at_its_best_rank(self) -> None:
        contact = alice(SMS, EMAIL, channels=["sms:mobile", "email", "sms"])
        strategy = FallbackStrategy(depth=None)
        tried = [attempt(SMS, Outcome.FAILED), attempt(EMAIL, Outcome.FAILED)]

        action = strategy.decide(contact, HELLO, now=MON_0900, attempts=tried)

        assert action.status is Status.FAILED

    def test_labelled_entry_without_such_a_point_is_skipped(self) -> None:
        contact = alice(VOICE_HOME, EMAIL, channels=["voice:cabin", "email"])

        action = FallbackStrategy().decide(contact, HELLO, now=MON_0900)

        assert action.point == EMAIL
        assert (
            "skipped voice:cabin (1st choice): the contact has no voice point labelled cabin"
            in (action.notes)
        )

    def test_channel_without_an_adapter_is_skipped_with_a_reason(self) -> None:
        action = FallbackStrategy().decide(alice(), HELLO, now=MON_0900, channels={"email"})

        assert action.point == EMAIL
        assert "skipped sms (1st choice): no adapter is registered for sms" in action.notes

    def test_point_opted_out_on_the_contact_is_skipped(self) -> None:
        stopped = SMS.model_copy(update={"opted_out": True})

        action = FallbackStrategy().decide(alice(stopped, EMAIL), HELLO, now=MON_0900)

        assert action.point == EMAIL
        assert "skipped sms +17345550100 (mobile) (1st choice): the person opted out of it" in (
            action.notes
        )

    def test_point_opted_out_in_the_store_is_skipped(self) -> None:
        action = FallbackStrategy().decide(
            alice(), HELLO, now=MON_0900, opted_out={("sms", SMS.address)}
        )

        assert action.point == EMAIL
        assert "opted out" in notes_text(action)

    def test_sensitive_message_goes_only_to_points_that_allow_it(self) -> None:
        safe_email = EMAIL.model_copy(update={"allow_sensitive": True})
        secret = HELLO.model_copy(update={"sensitive": True})

        action = FallbackStrategy().decide(alice(SMS, safe_email), secret, now=MON_0900)

        assert action.point == safe_email
        assert "the message is sensitive and this point does not allow sensitive content" in (
            notes_text(action)
        )

    def test_nothing_allowed_is_suppressed(self) -> None:
        secret = HELLO.model_copy(update={"sensitive": True})

        action = FallbackStrategy().decide(alice(), secret, now=MON_0900)

        assert action.kind == "stop"
        assert action.status is Status.SUPPRESSED
        assert action.reason == "no channel was allowed for this message"
        assert notes_text(action).count("is sensitive") == 2

    def test_no_preferences_uses_the_default_channels(self) -> None:
        contact = alice(channels=[])
        strategy = FallbackStrategy(default_channels=["email", "sms"])

        action = strategy.decide(contact, HELLO, now=MON_0900)

        assert action.point == EMAIL
        assert "no channel preferences; using the defaults: email, sms" in action.notes

    def test_a_point_never_open_within_the_horizon_is_skipped(self) -> None:
        weekend_only = VOICE_HOME.model_copy(
            update={"available": (Window(start="10:00", end="11:00", days="sat"),)}
        )
        contact = alice(weekend_only, EMAIL, channels=["voice", "email"])
        strategy = FallbackStrategy(horizon=timedelta(days=2))

        action = strategy.decide(contact, HELLO, now=MON_0900)

        assert action.point == EMAIL
        assert "not open at any time in the next 2 days" in notes_text(action)


class TestUrgent:
    urgent = HELLO.model_copy(update={"urgent": True})

    def test_urgent_ignores_quiet_hours_and_says_so(self) -> None:
        action = FallbackStrategy().decide(alice(quiet=[NIGHTS]), self.urgent, now=MON_2200)

        assert action.kind == "send"
        assert action.point == SMS
        assert "urgent: quiet hours and avoided days are ignored" in action.notes

    def test_urgent_ignores_avoided_days(self) -> None:
        action = FallbackStrategy().decide(alice(avoid_days=["sun"]), self.urgent, now=SUN_1000)

        assert action.kind == "send"

    def test_urgent_never_overrides_an_opt_out(self) -> None:
        stopped = SMS.model_copy(update={"opted_out": True})

        action = FallbackStrategy().decide(alice(stopped, EMAIL), self.urgent, now=MON_2200)

        assert action.point == EMAIL
        assert "opted out" in notes_text(action)

    def test_urgent_never_overrides_point_availability(self) -> None:
        contact = alice(VOICE_OFFICE, channels=["voice:office"])

        action = FallbackStrategy().decide(contact, self.urgent, now=MON_2200)

        assert action.kind == "wait"
        assert action.until == TUE_0800


class TestTimeZones:
    def test_the_contacts_own_zone_is_used_and_noted(self) -> None:
        action = FallbackStrategy().decide(alice(), HELLO, now=MON_0900)

        assert action.notes[0] == "time zone America/Detroit (the contact's own)"

    def test_zones_are_inferred_from_phone_numbers_quiet_if_quiet_in_any(self) -> None:
        london = ContactPoint(channel="sms", address="+442079460000")
        contact = alice(SMS, london, channels=["sms"], quiet=[NIGHTS], timezone=None)
        # 21:30 in London, 16:30 in New York: quiet in one zone is quiet.
        evening = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)

        action = FallbackStrategy().decide(contact, HELLO, now=evening)

        assert action.kind == "wait"
        # 08:00 in London is 03:00 in New York; both are open from 08:00 in New York.
        assert action.until == TUE_0800
        assert action.notes[0].startswith("no time zone given; inferred from phone numbers:")
        assert "Europe/London" in action.notes[0]
        assert "America/New_York" in action.notes[0]

    def test_the_default_zone_is_used_without_zone_or_phone_number(self) -> None:
        contact = alice(EMAIL, channels=["email"], quiet=[NIGHTS], timezone=None)
        strategy = FallbackStrategy(default_timezone="Asia/Tokyo")

        # 14:00 UTC is 23:00 in Tokyo.
        action = strategy.decide(contact, HELLO, now=MON_0900)

        assert action.kind == "wait"
        assert action.until == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
        assert action.notes[0] == (
            "no time zone given and no phone number; using the default Asia/Tokyo"
        )

    def test_an_unknown_default_zone_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="unknown time zone"):
            FallbackStrategy(default_timezone="Mars/Olympus_Mons")


class TestHistory:
    def test_accepted_stops_as_accepted(self) -> None:
        action = FallbackStrategy().decide(
            alice(), HELLO, now=MON_0900, attempts=[attempt(SMS, Outcome.ACCEPTED)]
        )

        assert action.kind == "stop"
        assert action.status is Status.ACCEPTED

    def test_delivered_stops_as_delivered(self) -> None:
        action = FallbackStrategy().decide(
            alice(), HELLO, now=MON_0900, attempts=[attempt(SMS, Outcome.DELIVERED)]
        )

        assert action.status is Status.DELIVERED

    def test_a_send_in_flight_is_not_repeated(self) -> None:
        action = FallbackStrategy().decide(
            alice(), HELLO, now=MON_0900, attempts=[attempt(SMS, Outcome.SENDING)]
        )

        assert action.kind == "stop"
        assert action.status is Status.SCHEDULED
        assert "not known yet" in action.reason

    def test_a_failed_first_choice_moves_on(self) -> None:
        action = FallbackStrategy().decide(
            alice(), HELLO, now=MON_0900, attempts=[attempt(SMS, Outcome.FAILED)]
        )

        assert action.kind == "send"
        assert action.point == EMAIL

    def test_every_candidate_failed_is_failed(self) -> None:
        tried = [attempt(SMS, Outcome.FAILED), attempt(EMAIL, Outcome.FAILED)]

        action = FallbackStrategy().decide(alice(), HELLO, now=MON_0900, attempts=tried)

        assert action.status is Status.FAILED
        assert action.reason == "every allowed channel was tried and failed"

    @pytest.mark.parametrize(
        ("message_wait", "contact_wait", "expected"),
        [
            (timedelta(minutes=30), timedelta(hours=2), timedelta(minutes=30)),
            (None, timedelta(hours=2), timedelta(hours=2)),
            (None, None, timedelta(hours=6)),
        ],
    )
    def test_expecting_a_response_waits_the_right_time(
        self,
        message_wait: timedelta | None,
        contact_wait: timedelta | None,
        expected: timedelta,
    ) -> None:
        question = HELLO.model_copy(
            update={"expects_response": True, "response_wait": message_wait}
        )
        strategy = FallbackStrategy(default_response_wait=timedelta(hours=6))

        action = strategy.decide(
            alice(response_wait=contact_wait),
            question,
            now=MON_0900 + timedelta(minutes=1),
            attempts=[attempt(SMS, Outcome.ACCEPTED)],
        )

        assert action.kind == "wait"
        assert action.status is Status.AWAITING_RESPONSE
        assert action.until == MON_0900 + expected
        assert "waiting for an answer" in action.reason

    def test_no_answer_in_time_moves_on(self) -> None:
        question = HELLO.model_copy(update={"expects_response": True})

        action = FallbackStrategy(default_response_wait=timedelta(hours=1)).decide(
            alice(),
            question,
            now=MON_0900 + timedelta(hours=1),
            attempts=[attempt(SMS, Outcome.ACCEPTED)],
        )

        assert action.kind == "send"
        assert action.point == EMAIL

    def test_no_answer_on_the_last_candidate_is_unanswered(self) -> None:
        question = HELLO.model_copy(update={"expects_response": True})
        tried = [attempt(SMS, Outcome.UNANSWERED), attempt(EMAIL, Outcome.UNANSWERED)]

        action = FallbackStrategy().decide(alice(), question, now=TUE_0800, attempts=tried)

        assert action.status is Status.UNANSWERED

    def test_no_answer_then_a_failure_is_unanswered_not_failed(self) -> None:
        question = HELLO.model_copy(update={"expects_response": True})
        tried = [attempt(SMS, Outcome.UNANSWERED), attempt(EMAIL, Outcome.FAILED)]

        action = FallbackStrategy().decide(alice(), question, now=TUE_0800, attempts=tried)

        assert action.status is Status.UNANSWERED

    def test_an_answer_anywhere_ends_it(self) -> None:
        tried = [attempt(SMS, Outcome.RESPONDED), attempt(EMAIL, Outcome.ACCEPTED)]

        action = FallbackStrategy().decide(alice(), HELLO, now=MON_0900, attempts=tried)

        assert action.kind == "stop"
        assert action.status is Status.RESPONDED
        assert action.reason == f"answered on sms {SMS.address}"


class TestPurity:
    def test_same_inputs_give_equal_actions(self) -> None:
        strategy = FallbackStrategy()
        contact = alice(VOICE_OFFICE, SMS, channels=["voice:office", "sms"], quiet=[NIGHTS])
        tried = [attempt(SMS, Outcome.FAILED)]

        first = strategy.decide(contact, HELLO, now=MON_2200, attempts=tried)
        second = strategy.decide(contact, HELLO, now=MON_2200, attempts=tried)

        assert first == second
        assert first.kind == "wait"

    def test_a_naive_now_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="has no time zone"):
            FallbackStrategy().decide(alice(), HELLO, now=datetime(2026, 3, 2, 9, 0))

    def test_the_inputs_are_not_changed(self) -> None:
        contact = alice()
        tried = [attempt(SMS, Outcome.FAILED)]
        before = (contact.model_dump(), [item.model_dump() for item in tried])

        FallbackStrategy().decide(contact, HELLO, now=MON_0900, attempts=tried)

        assert (contact.model_dump(), [item.model_dump() for item in tried]) == before


class TestSettings:
    def test_default_retry_policy_is_three_tries(self) -> None:
        assert FallbackStrategy().retry.tries == 3

    def test_retry_policy_rejects_negative_waits(self) -> None:
        with pytest.raises(ValidationError, match="cannot be negative"):
            RetryPolicy(initial=timedelta(seconds=-1))

    def test_response_wait_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="longer than zero"):
            FallbackStrategy(default_response_wait=timedelta(0))

    def test_horizon_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="horizon must be longer than zero"):
            FallbackStrategy(horizon=timedelta(0))

    def test_repr_names_the_settings(self) -> None:
        assert "depth=None" in repr(FallbackStrategy(depth=None))


class TestOneRuleForSendsAndRetries:
    """`may_send_at` and `next_send_at` are the rule `decide` follows, so retries follow it too."""

    CONTACT = Contact(
        id="alice",
        timezone="America/Detroit",
        points=[VOICE_OFFICE],
        preferences=Preferences(channels=["voice"], quiet_hours=[NIGHTS], avoid_days=["sun"]),
    )

    @given(
        minutes=st.integers(min_value=0, max_value=14 * 24 * 60),
        deadline=st.one_of(st.none(), st.integers(min_value=0, max_value=14 * 24 * 60)),
    )
    def test_decide_sends_exactly_when_the_point_may_be_used_and_waits_for_its_opening(
        self, minutes: int, deadline: int | None
    ) -> None:
        strategy = FallbackStrategy()
        now = SUN_1000 + timedelta(minutes=minutes)
        deliver_by = None if deadline is None else SUN_1000 + timedelta(minutes=deadline)
        message = Message(body="Your order is ready.", deliver_by=deliver_by)

        action = strategy.decide(self.CONTACT, message, now=now)
        opening = strategy.next_send_at(self.CONTACT, VOICE_OFFICE, message, now)

        assert (action.kind == "send") is strategy.may_send_at(
            self.CONTACT, VOICE_OFFICE, message, now
        )
        if action.kind == "send":
            assert opening == now
        elif action.kind == "wait":
            assert action.until == opening
            assert opening is not None
            assert strategy.may_send_at(self.CONTACT, VOICE_OFFICE, message, opening)
            assert not strategy.may_send_at(
                self.CONTACT, VOICE_OFFICE, message, opening - timedelta(minutes=1)
            )
        else:
            assert opening is None
