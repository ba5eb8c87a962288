"""The demo: a deterministic three-day scenario that shows each behaviour the library promises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from multichannel import Dispatch, Outcome, Status
from multichannel.cli import app
from multichannel.cli.demo.script import DEMO_START, DemoRun, run_demo


@pytest.fixture(scope="module")
def run() -> DemoRun:
    return run_demo()


def dispatch(run: DemoRun, contact_id: str) -> Dispatch:
    [found] = [item for item in run.dispatches if item.contact_id == contact_id]
    return found


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_it_starts_on_a_fixed_instant_and_runs_three_days(run: DemoRun) -> None:
    assert run.start == DEMO_START == utc(6, 14)
    assert run.end == utc(9, 14)
    assert len(run.contacts) == 5
    assert any(contact.timezone is None for contact in run.contacts)


def test_final_statuses(run: DemoRun) -> None:
    statuses = {item.contact_id: item.status for item in run.dispatches}

    assert statuses == {
        "alice": Status.RESPONDED,
        "kenji": Status.RESPONDED,
        "chloe": Status.CANCELLED,
        "dev": Status.UNANSWERED,
        "emma": Status.AWAITING_RESPONSE,
    }


def test_quiet_hours_defer_the_first_send_to_the_morning(run: DemoRun) -> None:
    kenji = dispatch(run, "kenji")

    assert kenji.attempts[0].channel == "email"
    assert kenji.attempts[0].at == utc(6, 22)  # 07:00 Saturday in Tokyo
    assert any("inside quiet hours 22:00-07:00" in d.reason for d in kenji.decisions)


def test_a_bounce_falls_back_to_the_next_channel(run: DemoRun) -> None:
    chloe = dispatch(run, "chloe")

    email, sms = chloe.attempts
    assert (email.channel, email.outcome) == ("email", Outcome.FAILED)
    assert email.error == "550 5.1.1 mailbox does not exist"
    assert (sms.channel, sms.at) == ("sms", utc(6, 14, 30))


def test_silence_escalates_at_the_next_open_instant(run: DemoRun) -> None:
    dev = dispatch(run, "dev")

    sms, voice = dev.attempts
    assert sms.outcome is Outcome.UNANSWERED
    # Two hours of silence end at 21:30 in India, inside quiet hours: the call waits for 09:00.
    assert (voice.channel, voice.at) == ("voice", utc(7, 3, 30))
    assert voice.outcome is Outcome.UNANSWERED


def test_an_opted_out_point_is_skipped_and_avoided_days_are_kept(run: DemoRun) -> None:
    emma = dispatch(run, "emma")

    assert run.outbox is not None
    assert run.outbox.to("+61412345678") == []
    [email] = emma.attempts
    assert email.channel == "email"
    assert email.at == utc(8, 21)  # Monday 08:00 in Sydney, after a weekend she avoids


def test_a_reply_ends_the_dispatch_and_a_stop_cancels_it(run: DemoRun) -> None:
    alice, chloe = dispatch(run, "alice"), dispatch(run, "chloe")

    assert [attempt.outcome for attempt in alice.attempts] == [Outcome.RESPONDED]
    assert run.outbox is not None
    assert len(run.outbox.to("+17345550100")) == 1
    assert chloe.decisions[-1].reason == "opted out: not contacted on any other channel"


def test_the_timeline_is_in_time_order_and_the_same_every_run(run: DemoRun) -> None:
    times = [entry.at for entry in run.timeline]
    again = run_demo()

    assert times == sorted(times)
    assert [(e.at, e.contact_id, e.text) for e in again.timeline] == [
        (e.at, e.contact_id, e.text) for e in run.timeline
    ]
    assert [e.text for e in run.timeline if e.scripted] == [
        "chloe's mail server bounces the email",
        "alice replies YES to the text",
        "chloe replies STOP to the text",
        "kenji answers the text",
    ]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        run_demo(start=datetime(2026, 3, 6, 14, 0))


def test_the_demo_command_prints_the_story_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["demo"], env={"COLUMNS": "400", "NO_COLOR": "1"})

    assert result.exit_code == 0, result.output
    out = result.stdout
    for shown in (
        "One message to 5 people, from Fri 06 Mar 2026 14:00 UTC for 3 days",
        "by number: Asia/Calcutta",
        # deferred by quiet hours, in the contact's own time
        "Fri 23:00 JST",
        "wait until 2026-03-06T22:00:00+00:00 for email kenji@example.jp",
        # a bounce falls back
        "» chloe's mail server bounces the email",
        "failed after acceptance on email chloe@example.fr: 550 5.1.1 mailbox does not exist",
        "send on sms +33612345678 (2nd choice): it is open now",
        # a silence escalates
        "no answer on sms +919876543210 in time",
        "send on voice +919876543210 (2nd choice): it is open now",
        # an opted-out point is skipped
        "skipped sms +61412345678 (1st choice): the person opted out of it",
        # replies and a STOP
        "answered on sms +17345550100: YES",
        "opted out: not contacted on any other channel",
        "At the end (Mon 09 Mar 14:00 UTC)",
        "email failed → sms accepted",
    ):
        assert shown in out, shown
    for status in ("responded", "cancelled", "unanswered", "awaiting_response"):
        assert status in out
    # The default demo stays in memory, on the Outbox, with nothing else to report.
    for absent in ("Provider traffic", "restart", "Dispatches are kept in"):
        assert absent not in out
    assert CliRunner().invoke(app, ["demo"], env={"COLUMNS": "400"}).stdout == out
