"""A dry run stays dry, and a repeated send says what it found instead of sending again."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel import (
    BaseAdapter,
    Contact,
    ContactPoint,
    Content,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Preferences,
    Receipt,
    SendContext,
    SQLStore,
    Status,
    Store,
    Window,
    Worker,
)
from multichannel.cli import app

# Monday 2 March 2026 14:00 UTC: 09:00 in Detroit.
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
# Long past any wall clock the tests may run at: a step due then is due now.
LONG_AGO = datetime(2001, 1, 8, 12, 0, tzinfo=UTC)
ASK = Message(body="Reply YES to confirm.", expects_response=True)
NEVER_REAL = "it was created as a dry run, and a dry run is never sent through real providers"
CONTACTS = "id,channels,sms,email,response_wait\nann,sms;email,+17345550100,ann@example.com,1h\n"


class Recorder(BaseAdapter):
    """Stands for a real provider: it records every call it gets."""

    name = "recorder"
    channel = "*"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        self.calls.append((ctx.dispatch_id, point.address))
        return Receipt(provider_id=f"recorder-{ctx.dispatch_id}-{len(self.calls)}")


def ann(*, quiet: bool = False) -> Contact:
    return Contact(
        id="ann",
        timezone="America/Detroit",
        points=[
            ContactPoint(channel="sms", address="+17345550100"),
            ContactPoint(channel="email", address="ann@example.com"),
        ],
        preferences=Preferences(
            channels=["sms", "email"],
            quiet_hours=[Window(start="08:00", end="10:00")] if quiet else [],
            response_wait=timedelta(hours=1),
        ),
    )


# The rule, through the public API, on every store.


def test_a_dry_run_is_marked_and_a_real_dispatcher_cancels_it_unsent(store: Store) -> None:
    clock = ManualClock(MONDAY)
    dry = Dispatcher(adapters=[Outbox(dry_run=True)], clock=clock, store=store)
    recorder = Recorder()
    real = Dispatcher(adapters=[recorder], clock=clock, store=store)

    deferred = dry.send(ann(quiet=True), ASK)  # 09:00 in Detroit: quiet until 10:00
    clock.advance(timedelta(hours=2))
    [settled] = real.run_due()

    assert deferred.status is Status.SCHEDULED
    assert deferred.dry_run
    assert recorder.calls == []
    assert settled.status is Status.CANCELLED
    assert settled.next_action_at is None
    assert NEVER_REAL in settled.decisions[-1].reason
    stored = store.get(deferred.id)
    assert stored is not None
    assert (stored.status, stored.dry_run, stored.attempts) == (Status.CANCELLED, True, [])


def test_a_bounce_on_a_dry_run_does_not_fall_back_through_a_real_adapter(store: Store) -> None:
    clock = ManualClock(MONDAY)
    sent = Dispatcher(adapters=[Outbox(dry_run=True)], clock=clock, store=store).send(ann(), ASK)
    recorder = Recorder()
    webhook = Dispatcher(adapters=[recorder], clock=clock, store=store)

    bounced = webhook.record(
        DeliveryEvent(kind=EventKind.FAILED, dispatch_id=sent.id, detail="unknown subscriber")
    )

    assert recorder.calls == []
    assert bounced.status is Status.CANCELLED
    assert [attempt.channel for attempt in bounced.attempts] == ["sms"]


def test_a_dry_run_carries_on_through_dry_run_adapters(store: Store) -> None:
    clock = ManualClock(MONDAY)
    outbox = Outbox(dry_run=True)
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    sent = dispatcher.send(ann(), ASK)

    clock.advance(timedelta(hours=1))
    [escalated] = Dispatcher(adapters=[outbox], clock=clock, store=store).run_due()

    assert sent.dry_run
    assert escalated.status is Status.AWAITING_RESPONSE
    assert [item.channel for item in outbox.sent] == ["sms", "email"]


@pytest.mark.parametrize(
    "adapters",
    [
        pytest.param(lambda: [Outbox()], id="an Outbox standing for a provider"),
        pytest.param(lambda: [Outbox(dry_run=True), Recorder()], id="a real adapter among them"),
        pytest.param(lambda: [Recorder()], id="a real adapter"),
    ],
)
def test_only_a_dispatcher_of_dry_run_adapters_makes_dry_runs(
    store: Store, adapters: Callable[[], list[BaseAdapter]]
) -> None:
    dispatcher = Dispatcher(adapters=adapters(), clock=ManualClock(MONDAY), store=store)

    sent = dispatcher.send(ann(), ASK)

    stored = store.get(sent.id)
    assert stored is not None
    assert not sent.dry_run
    assert not stored.dry_run


# Through the command.


def write(path: Path, text: str) -> Path:
    path.write_text(dedent(text), encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    env = {
        "COLUMNS": "400",
        "NO_COLOR": "1",
        "FORCE_COLOR": None,
        "TTY_COMPATIBLE": None,
        "TTY_INTERACTIVE": None,
        "MULTICHANNEL_STORE": None,
    }
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A provider published under the entry points that writes each call to this file.

    No other provider is configured, so what the command sends for real goes there.
    """
    for name in list(os.environ):
        if name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")):
            monkeypatch.delenv(name)
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    write(
        plugin / "mc_dry_run_journal.py",
        """\
        import os

        from multichannel import BaseAdapter, Receipt


        class Journal(BaseAdapter):
            name = "journal"
            channel = "*"

            def send(self, point, content, ctx):
                with open(os.environ["MC_DRY_RUN_JOURNAL"], "a", encoding="utf-8") as out:
                    out.write(f"{ctx.dispatch_id} {point.channel} {point.address}\\n")
                return Receipt(provider_id=f"journal-{ctx.dispatch_id}-{ctx.try_number}")


        def build():
            return Journal()
        """,
    )
    info = plugin / "mc_dry_run_journal-1.0.dist-info"
    info.mkdir()
    write(info / "METADATA", "Metadata-Version: 2.1\nName: mc-dry-run-journal\nVersion: 1.0\n")
    write(info / "entry_points.txt", "[multichannel.adapters]\njournal=mc_dry_run_journal:build\n")
    monkeypatch.syspath_prepend(str(plugin))
    path = tmp_path / "journal.txt"
    monkeypatch.setenv("MC_DRY_RUN_JOURNAL", str(path))
    return path


def calls(journal: Path) -> list[str]:
    return journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


def make_due(url: str, dispatch_id: str) -> None:
    """Move a dispatch's next step to long ago: its wait has run out by any wall clock."""
    store = SQLStore(url, migrate=False)
    try:
        dispatch = store.get(dispatch_id)
        assert dispatch is not None
        dispatch.next_action_at = LONG_AGO
        store.save(dispatch)
    finally:
        store.close()


def test_send_outbox_then_a_real_worker_sends_nothing_and_status_says_dry_run(
    tmp_path: Path, url: str, journal: Path
) -> None:
    contacts = write(tmp_path / "c.csv", CONTACTS)
    message = write(tmp_path / "m.yaml", "body: Reply YES.\nexpects_response: true\nkey: v1\n")
    # A dispatch the real worker should carry on: its wait for an answer ran out long ago.
    seeded = SQLStore(url)
    real = Dispatcher(adapters=[Outbox()], clock=ManualClock(LONG_AGO), store=seeded)
    bob = real.send(ann().model_copy(update={"id": "bob"}), ASK).id
    seeded.close()

    sent = invoke("send", contacts, message, "--outbox", "--store", url, "--json")
    [row] = json.loads(sent.stdout)
    make_due(url, row["dispatch_id"])
    worked = invoke("worker", "--store", url, "--once")
    report = invoke("status", "--store", url, "--json")
    shown = invoke("status", "--store", url)

    assert sent.exit_code == 0, sent.output
    assert (row["status"], row["dry_run"], row["existing"]) == ("awaiting_response", True, False)
    assert "marked as a dry run: a worker with real adapters cancels them" in sent.stderr
    assert f"run `multichannel worker --outbox --store {url}`" in sent.stderr
    assert worked.exit_code == 0, worked.output
    assert worked.stdout == "performed 2 steps\n"
    assert "cancelled 1 dry-run dispatch without sending" in worked.stderr
    # The worker does send for real: bob's escalation reached the journal, and only that.
    assert calls(journal) == [f"{bob} email ann@example.com"]
    store = SQLStore(url, migrate=False)
    dry = store.get(row["dispatch_id"])
    store.close()
    assert dry is not None
    assert (dry.status, dry.dry_run) == (Status.CANCELLED, True)
    assert [(a.channel, a.provider) for a in dry.attempts] == [("sms", "outbox")]
    assert NEVER_REAL in dry.timeline()[-1]
    assert json.loads(report.stdout)["dry_run"] == {"total": 1, "counts": {"cancelled": 1}}
    assert "Dry runs: 1 of these dispatches were made through dry-run adapters only" in shown.stdout


def test_a_dry_run_deferred_before_any_send_is_cancelled_unsent_too(
    tmp_path: Path, url: str, journal: Path
) -> None:
    # Ann's quiet hours cover the whole day, so the dry run only schedules: the outbox
    # was never called, and the real worker would make the first send.
    contacts = write(
        tmp_path / "c.csv",
        "id,timezone,sms,quiet_hours\nann,America/Detroit,+17345550100,00:00-23:59\n",
    )
    message = write(tmp_path / "m.yaml", "body: hi\n")

    sent = invoke("send", contacts, message, "--outbox", "--store", url, "--json")
    [row] = json.loads(sent.stdout)
    make_due(url, row["dispatch_id"])
    worked = invoke("worker", "--store", url, "--once")

    assert (row["status"], row["dry_run"]) == ("scheduled", True)
    assert worked.stdout == "performed 1 step\n", worked.output
    assert calls(journal) == []
    report = json.loads(invoke("status", "--store", url, "--json").stdout)
    assert report["counts"] == {"cancelled": 1}


def test_review_of_a_dry_run_with_real_adapters_cancels_it(
    tmp_path: Path, url: str, journal: Path
) -> None:
    contacts = write(tmp_path / "c.csv", CONTACTS)
    message = write(tmp_path / "m.yaml", "body: hi\n")
    [row] = json.loads(
        invoke("send", contacts, message, "--outbox", "--store", url, "--json").stdout
    )
    # Stands for a crash while the outbox was being called: the send is held for review.
    store = SQLStore(url, migrate=False)
    dispatch = store.get(row["dispatch_id"])
    assert dispatch is not None
    dispatch.status = Status.REVIEW
    store.save(dispatch)
    store.close()

    result = invoke("review", row["dispatch_id"], "--not-sent", "--store", url)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"dispatch {row['dispatch_id']} (ann): cancelled (dry run)")
    assert NEVER_REAL in result.stdout
    assert calls(journal) == []


class RacingStore(MemoryStore):
    """Stands for a worker with real adapters that claims each new dispatch at once."""

    def __init__(self, racer: Recorder) -> None:
        super().__init__()
        self.racer = Dispatcher(adapters=[racer], clock=ManualClock(MONDAY), store=self)

    def create(self, dispatch: Dispatch) -> Dispatch:
        stored = super().create(dispatch)
        self.racer.advance(stored.model_copy(deep=True))
        return stored


def test_a_worker_that_claims_a_dry_run_before_its_first_step_does_not_send_it() -> None:
    racer = Recorder()
    store = RacingStore(racer)

    Dispatcher(adapters=[Outbox(dry_run=True)], clock=ManualClock(MONDAY), store=store).send(
        ann(), ASK
    )

    assert racer.calls == []


def test_a_worker_of_dry_run_adapters_takes_a_dry_run_on(tmp_path: Path, url: str) -> None:
    contacts = write(tmp_path / "c.csv", CONTACTS)
    message = write(tmp_path / "m.yaml", "body: hi\nexpects_response: true\n")
    [row] = json.loads(
        invoke("send", contacts, message, "--outbox", "--store", url, "--json").stdout
    )
    make_due(url, row["dispatch_id"])

    result = invoke("worker", "--outbox", "--store", url, "--once")

    assert result.stdout == "performed 1 step\n", result.output
    assert "cancelled" not in result.stderr
    report = json.loads(invoke("status", "--store", url, "--json").stdout)
    assert report["dry_run"] == {"total": 1, "counts": {"awaiting_response": 1}}


# Sending twice.


def test_send_with_a_store_and_no_key_warns_that_a_repeat_sends_again(
    tmp_path: Path, url: str, journal: Path
) -> None:
    contacts = write(tmp_path / "c.csv", CONTACTS)
    message = write(tmp_path / "m.yaml", "body: hi\n")

    first = invoke("send", contacts, message, "--store", url)
    again = invoke("send", contacts, message, "--store", url)
    unkept = invoke("send", contacts, message)
    dry = invoke("send", contacts, message, "--outbox", "--store", url)

    warning = f"warning: {message} has no key, so running this send again creates new dispatches"
    assert warning in first.stderr
    assert warning in again.stderr
    assert "key: NAME" in first.stderr
    assert len(calls(journal)) == 3  # the warning is true: the repeat sent again
    # Nothing to repeat without a store, and a repeated dry run sends nothing.
    assert "no key" not in unkept.stderr
    assert "no key" not in dry.stderr


def test_a_repeated_send_with_a_key_reports_what_already_existed(
    tmp_path: Path, url: str, journal: Path
) -> None:
    # Nia asks for sms and has no sms point: her dispatch is suppressed.
    contacts = write(tmp_path / "c.csv", CONTACTS + "nia,sms,,nia@example.com,\n")
    message = write(tmp_path / "m.yaml", "body: hi\nkey: visit-1\n")

    first = invoke("send", contacts, message, "--store", url, "--json")
    again = invoke("send", contacts, message, "--store", url, "--json")
    text = invoke("send", contacts, message, "--store", url)

    assert first.exit_code == again.exit_code == text.exit_code == 0, again.output
    assert [row["existing"] for row in json.loads(first.stdout)] == [False, False]
    rows = json.loads(again.stdout)
    assert [row["existing"] for row in rows] == [True, True]
    assert {row["dispatch_id"] for row in rows} == {
        row["dispatch_id"] for row in json.loads(first.stdout)
    }
    assert len(calls(journal)) == 1
    assert "no key" not in first.stderr
    assert "note: 2 contacts already had a dispatch under key 'visit-1'" in again.stderr
    assert text.stdout.splitlines()[0] == (
        "Key 'visit-1' was used before for 2 of these contacts: they were not sent to again. "
        "Where their dispatches stand:"
    )
    assert "Already in the store" in text.stdout
    assert "Sent" not in text.stdout
    assert {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _rows(text)} == {
        "accepted": "1",
        "suppressed": "1",
        "total": "2",
    }


def test_a_real_send_under_the_key_of_a_dry_run_says_it_sent_nothing(
    tmp_path: Path, url: str, journal: Path
) -> None:
    contacts = write(tmp_path / "c.csv", CONTACTS)
    message = write(tmp_path / "m.yaml", "body: hi\nkey: visit-1\n")

    dry = invoke("send", contacts, message, "--outbox", "--store", url)
    real = invoke("send", contacts, message, "--store", url)

    assert "a real send with the same key sends nothing to these contacts" in dry.stderr
    assert "warning: 1 contact got nothing: their dispatch under key 'visit-1' is a dry run" in (
        real.stderr
    )
    assert "accepted (dry run)" in real.stdout
    assert calls(journal) == []


def _rows(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("│")]


def test_the_worker_the_library_ships_cancels_dry_runs_too(store: Store) -> None:
    if not callable(getattr(store, "claim_due", None)):
        pytest.skip("this store cannot lease steps")
    clock = ManualClock(MONDAY)
    Dispatcher(adapters=[Outbox(dry_run=True)], clock=clock, store=store).send(ann(), ASK)
    recorder = Recorder()
    clock.advance(timedelta(hours=1))

    performed = Worker(Dispatcher(adapters=[recorder], clock=clock, store=store)).run(
        until_idle=True
    )

    assert performed == 1
    assert recorder.calls == []
    assert [dispatch.status for dispatch in store.dispatches()] == [Status.CANCELLED]


def test_whether_a_dispatcher_is_a_dry_run_follows_its_registry_as_it_changes() -> None:
    dry = Outbox(name="dry", dry_run=True)
    dispatcher = Dispatcher(adapters=[dry], clock=ManualClock(MONDAY))
    assert dispatcher.registry.dry_run
    assert dispatcher.send(ann(), ASK).dry_run

    real = Recorder()
    dispatcher.registry.add(real)

    assert not dispatcher.registry.dry_run
    assert dispatcher.registry.sends_for_real
    assert not dispatcher.send(ann(), ASK.model_copy(update={"body": "and again"})).dry_run
