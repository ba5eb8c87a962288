"""The operations commands: db, worker, status, review and send --store, on SQLite files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from multichannel import (
    Attempt,
    Contact,
    ContactPoint,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    PermanentError,
    Preferences,
    SQLStore,
    Status,
    Window,
)
from multichannel.cli import app
from multichannel.cli.ops import stop_on_signals

# Monday 2 March 2026 14:00 UTC: 09:00 in Detroit, 23:00 in Tokyo.
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
# Long past and far ahead of any wall clock these tests may run at, so that what
# the worker finds due never depends on when the tests run.
LONG_AGO = datetime(2001, 1, 8, 12, 0, tzinfo=UTC)
FAR_AHEAD = datetime(2999, 1, 7, 12, 0, tzinfo=UTC)
NOTICE = Message(body="Your appointment is on Monday at 10:00.", subject="Appointment")
ASK = Message(body="Reply YES to confirm.", expects_response=True)


def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run the command with a wide, colourless console and no store from the environment."""
    settings: dict[str, str | None] = {
        "COLUMNS": "400",
        "NO_COLOR": "1",
        "FORCE_COLOR": None,
        "TTY_COMPATIBLE": None,
        "TTY_INTERACTIVE": None,
        "MULTICHANNEL_STORE": None,
    }
    return CliRunner().invoke(app, [str(arg) for arg in args], env=settings | (env or {}))


def one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def person(
    contact_id: str,
    *points: ContactPoint,
    timezone: str | None = None,
    quiet: list[Window] | None = None,
    wait: timedelta = timedelta(hours=4),
) -> Contact:
    return Contact(
        id=contact_id,
        timezone=timezone,
        points=list(points),
        preferences=Preferences(
            channels=list(dict.fromkeys(point.channel for point in points)),
            quiet_hours=quiet or [],
            response_wait=wait,
        ),
    )


def sms(number: str, **flags: bool) -> ContactPoint:
    return ContactPoint(channel="sms", address=number, **flags)


def email(address: str) -> ContactPoint:
    return ContactPoint(channel="email", address=address)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
def no_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")):
            monkeypatch.delenv(name)


@pytest.fixture
def store(url: str) -> Iterator[SQLStore]:
    opened = SQLStore(url)
    yield opened
    opened.close()


def held_for_review(store: SQLStore, clock: ManualClock, message: Message = ASK) -> Dispatch:
    """A dispatch whose last send was cut short: saved as 'sending', then advanced."""
    ann = person("ann", sms("+17345550100"), email("ann@example.com"))
    cut_short = Dispatch(
        id="d-review",
        contact_id=ann.id,
        contact=ann,
        message=message,
        attempts=[Attempt(channel="sms", address="+17345550100", at=clock.now(), tries=1)],
        created_at=clock.now(),
        updated_at=clock.now(),
        next_action_at=clock.now(),
    )
    store.create(cut_short)
    held = Dispatcher(store=store, clock=clock).advance(cut_short)
    assert held.status is Status.REVIEW
    return held


# db


def test_db_upgrade_applies_the_migrations_once_and_version_reports_them(url: str) -> None:
    first = invoke("db", "upgrade", "--store", url)
    again = invoke("db", "upgrade", "--store", url)
    version = invoke("db", "version", "--store", url)

    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "applied migrations 1, 2",
        "schema version 2",
    ]
    assert again.stdout.splitlines()[0] == f"nothing to apply: {url} is up to date"
    assert version.stdout == "schema version 2\n"
    assert SQLStore(url, migrate=False).version() == 2


def test_the_store_comes_from_the_environment_when_no_option_is_given(url: str) -> None:
    result = invoke("db", "upgrade", env={"MULTICHANNEL_STORE": url})

    assert result.exit_code == 0, result.output
    assert SQLStore(url, migrate=False).version() == 2


@pytest.mark.parametrize(
    ("store_url", "expected"),
    [
        ("dispatch.db", "--store 'dispatch.db' is not a database URL such as sqlite:///"),
        ("mongodb://db.example/x", "no database is known by the scheme 'mongodb'"),
        ("mysql+nodriver://db.example/x", "no database is known by the scheme"),
        (
            "postgresql+psycopg://clinic:hunter2@127.0.0.1:1/multichannel",
            "cannot open the store postgresql+psycopg://clinic:***@127.0.0.1:1/multichannel",
        ),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["db", "version"],
        ["status"],
        ["worker", "--once", "--outbox"],
        ["review", "d-1", "--sent", "--outbox"],
    ],
)
def test_a_bad_or_unreachable_store_is_a_one_line_error(
    command: list[str], store_url: str, expected: str
) -> None:
    result = invoke(*command, "--store", store_url)

    one_line_error(result, expected)
    assert "hunter2" not in result.output


def test_a_database_without_its_driver_installed_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)

    result = invoke("db", "upgrade", "--store", "mysql://clinic:hunter2@127.0.0.1/x")

    one_line_error(result, "--store mysql://clinic:***@127.0.0.1/x: cannot use the database URL")
    assert "hunter2" not in result.output


def test_a_missing_sqlite_file_is_not_created_by_commands_that_read(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"

    for command in (["status"], ["db", "version"], ["review", "d-1", "--sent"]):
        one_line_error(invoke(*command, "--store", f"sqlite:///{missing}"), "there is no store at")
    assert not missing.exists()


def test_a_store_in_a_missing_folder_cannot_be_created(tmp_path: Path) -> None:
    result = invoke("db", "upgrade", "--store", f"sqlite:///{tmp_path / 'no' / 'x.db'}")

    one_line_error(result, "the folder")


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text " * 200)

    one_line_error(invoke("status", "--store", f"sqlite:///{junk}"), "cannot open the store")


def test_status_needs_a_store_the_library_has_used(url: str) -> None:
    SQLStore(url, migrate=False).version()  # an empty SQLite file, no tables

    one_line_error(invoke("status", "--store", url), "holds no multichannel tables")


# status


@pytest.fixture
def populated(store: SQLStore) -> dict[str, str]:
    """Dispatches in every state `status` speaks of, made through a Dispatcher."""
    clock = ManualClock(MONDAY)
    outbox = Outbox()
    outbox.reject("+17345550111", PermanentError)
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    tokyo_night = [Window(start="22:00", end="07:00")]
    too_late = NOTICE.model_copy(update={"deliver_by": MONDAY + timedelta(hours=6)})
    ids = {
        "failed": dispatcher.send(person("fay", sms("+17345550111")), NOTICE).id,
        "silent": dispatcher.send(
            person("sam", sms("+17345550122"), wait=timedelta(hours=1)), ASK
        ).id,
        "late": dispatcher.send(
            person("kenji", email("kenji@example.jp"), timezone="Asia/Tokyo", quiet=tokyo_night),
            too_late,
        ).id,
        "nobody": dispatcher.send(person("nia", sms("+17345550133", opted_out=True)), NOTICE).id,
        "answered": dispatcher.send(person("cat", sms("+17345550144")), ASK).id,
        "waiting": dispatcher.send(person("dan", email("dan@example.com")), ASK).id,
    }
    dispatcher.record(DeliveryEvent(kind=EventKind.RESPONDED, dispatch_id=ids["answered"]))
    clock.advance(timedelta(hours=2))
    dispatcher.run_due()
    ids["review"] = held_for_review(store, clock).id
    return ids


def test_status_json_counts_and_lists_who_was_not_reached(
    url: str, populated: dict[str, str]
) -> None:
    result = invoke("status", "--store", url, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["store"] == url
    assert report["counts"] == {
        "awaiting_response": 1,
        "responded": 1,
        "unanswered": 1,
        "expired": 1,
        "failed": 1,
        "suppressed": 1,
        "review": 1,
    }
    assert report["total"] == 7
    missed = {item["contact_id"]: item for item in report["not_reached"]}
    assert set(missed) == {"fay", "sam", "kenji", "nia"}
    assert missed["fay"]["status"] == "failed"
    assert missed["fay"]["tried"] == ["sms +17345550111 failed"]
    assert "outbox told to reject +17345550111" in missed["fay"]["error"]
    assert missed["sam"]["status"] == "unanswered"
    assert missed["sam"]["reason"] == "no answer on the last channel tried"
    assert missed["kenji"]["status"] == "expired"
    assert "deliver_by" in missed["kenji"]["reason"]
    assert missed["kenji"]["tried"] == []
    assert missed["nia"]["status"] == "suppressed"
    assert missed["nia"]["dispatch_id"] == populated["nobody"]
    # dan is still waiting for an answer: in progress, not missed.
    assert report["next_due"] == (MONDAY + timedelta(hours=4)).isoformat()
    [held] = report["review"]
    assert held["dispatch_id"] == populated["review"]
    assert (held["contact_id"], held["channel"], held["address"]) == ("ann", "sms", "+17345550100")
    assert held["settle_with"] == [
        f"multichannel review {populated['review']} --sent",
        f"multichannel review {populated['review']} --not-sent",
    ]


def test_status_text_shows_the_counts_the_missed_and_how_to_settle_a_review(
    url: str, populated: dict[str, str]
) -> None:
    result = invoke("status", "--store", url)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Dispatches in {url}" in out
    assert "Not reached (4): the contacts who fell through the cracks" in out
    assert "no channel was allowed for this message" in out
    assert "(last error: PermanentError: outbox told to reject +17345550111 (outbox))" in out
    assert "Held for review (1)" in out
    assert populated["review"] in out
    assert f"\n    multichannel review DISPATCH_ID --sent --store {url}\n" in out
    assert f"\n    multichannel review DISPATCH_ID --not-sent --store {url}\n" in out
    assert "Next step due at 2026-03-02 18:00 UTC; a worker performs it" in out


def test_status_of_an_empty_store_says_nobody_is_missed(url: str) -> None:
    invoke("db", "upgrade", "--store", url)

    result = invoke("status", "--store", url)

    assert result.exit_code == 0, result.output
    assert "Not reached: nobody." in result.stdout
    assert "Held for review: none." in result.stdout
    assert "Next step due" not in result.stdout


# review


def test_review_sent_counts_the_send_and_waits_for_an_answer(
    url: str, store: SQLStore, no_provider_settings: None
) -> None:
    held = held_for_review(store, ManualClock(MONDAY))

    result = invoke("review", held.id, "--sent", "--store", url)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"dispatch {held.id} (ann): awaiting_response")
    assert "reviewed: the interrupted send on sms +17345550100 went out" in result.stdout
    settled = store.get(held.id)
    assert settled is not None
    assert settled.status is Status.AWAITING_RESPONSE
    assert [attempt.outcome for attempt in settled.attempts] == [Outcome.ACCEPTED]


def test_review_not_sent_sends_again(url: str, store: SQLStore) -> None:
    held = held_for_review(store, ManualClock(MONDAY), message=NOTICE)

    result = invoke("review", held.id, "--not-sent", "--outbox", "--store", url)

    assert result.exit_code == 0, result.output
    assert "did not go out" in result.stdout
    assert "outbox accepted the message for sms +17345550100" in result.stdout
    settled = store.get(held.id)
    assert settled is not None
    assert settled.status is Status.ACCEPTED
    [again] = settled.attempts
    assert (again.outcome, again.provider) == (Outcome.ACCEPTED, "outbox")


@pytest.mark.usefixtures("no_provider_settings")
def test_review_not_sent_needs_an_adapter(url: str, store: SQLStore) -> None:
    held = held_for_review(store, ManualClock(MONDAY))

    one_line_error(invoke("review", held.id, "--not-sent", "--store", url), "no adapters")
    assert store.get(held.id).status is Status.REVIEW


def test_review_refuses_what_is_not_in_review(url: str, populated: dict[str, str]) -> None:
    answered = populated["answered"]

    one_line_error(
        invoke("review", answered, "--sent", "--store", url),
        f"dispatch {answered} is responded, not in review",
    )
    one_line_error(
        invoke("review", "no-such-id", "--sent", "--store", url), "has no dispatch 'no-such-id'"
    )
    one_line_error(
        invoke("review", answered, "--store", url), "say whether the interrupted send went out"
    )


# worker


def test_worker_once_performs_the_due_steps_in_a_sqlite_file(url: str, store: SQLStore) -> None:
    both = (sms("+17345550100"), email("ann@example.com"))
    overdue = Dispatcher(adapters=[Outbox()], clock=ManualClock(LONG_AGO), store=store)
    later = Dispatcher(adapters=[Outbox()], clock=ManualClock(FAR_AHEAD), store=store)
    past = [overdue.send(person(f"p{n}", *both, wait=timedelta(hours=1)), ASK).id for n in (1, 2)]
    future = later.send(person("f1", *both, wait=timedelta(hours=1)), ASK).id

    result = invoke("worker", "--once", "--outbox", "--store", url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "performed 2 steps\n"
    assert "dry run" in result.stderr
    for dispatch_id in past:
        escalated = store.get(dispatch_id)
        assert escalated is not None
        assert [(a.channel, a.outcome) for a in escalated.attempts] == [
            ("sms", Outcome.UNANSWERED),
            ("email", Outcome.ACCEPTED),
        ]
    untouched = store.get(future)
    assert untouched is not None
    assert len(untouched.attempts) == 1
    again = invoke("worker", "--once", "--outbox", "--store", url)
    assert again.stdout == "performed 0 steps\n"


@pytest.mark.parametrize(
    ("options", "status", "outcomes"),
    [
        ([], Status.REVIEW, [Outcome.SENDING]),
        (["--interrupted", "review"], Status.REVIEW, [Outcome.SENDING]),
        (["--interrupted", "resend"], Status.AWAITING_RESPONSE, [Outcome.ACCEPTED]),
    ],
)
def test_worker_holds_or_resends_a_send_cut_short_by_a_crash(
    url: str, store: SQLStore, options: list[str], status: Status, outcomes: list[Outcome]
) -> None:
    ann = person("ann", sms("+17345550100"))
    store.create(
        Dispatch(
            id="d-crashed",
            contact_id="ann",
            contact=ann,
            message=ASK,
            attempts=[Attempt(channel="sms", address="+17345550100", at=LONG_AGO, tries=1)],
            created_at=LONG_AGO,
            updated_at=LONG_AGO,
            next_action_at=LONG_AGO + timedelta(minutes=10),
        )
    )

    result = invoke("worker", "--once", "--outbox", "--store", url, *options)

    assert result.stdout == "performed 1 step\n", result.output
    found = store.get("d-crashed")
    assert found is not None
    assert found.status is status
    assert [attempt.outcome for attempt in found.attempts] == outcomes


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--lease", "0s"], "--lease must be longer than zero; got '0s'"),
        (["--lease", "soon"], "--lease 'soon' is not a duration"),
        (["--idle", "-"], "--idle '-' is not a duration"),
        (["--batch", "0"], "--batch must be at least 1; got 0"),
        (["--interrupted", "ignore"], "--interrupted must be 'review' or 'resend'; got 'ignore'"),
        (["--depth", "none"], "--depth 'none' is not a number or 'all'"),
    ],
)
def test_bad_worker_options_are_one_line_errors(
    url: str, options: list[str], expected: str
) -> None:
    one_line_error(invoke("worker", "--once", "--outbox", "--store", url, *options), expected)


@pytest.mark.usefixtures("no_provider_settings")
def test_worker_without_adapters_says_how_to_configure(url: str) -> None:
    one_line_error(invoke("worker", "--once", "--store", url), "no adapters are configured")


def test_a_signal_sets_the_stop_event_and_the_handlers_come_back() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)

    with stop_on_signals(stop):
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        # The first signal hands the next one back to the handler from before.
        assert signal.getsignal(signal.SIGTERM) == before

    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_running_worker_stops_cleanly_on_sigterm(url: str) -> None:
    # --idle 1h: it stops at once only if the signal ends its wait.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "multichannel",
            "worker",
            "--store",
            url,
            "--outbox",
            "--idle",
            "1h",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MULTICHANNEL_STORE": ""},
    )
    assert worker.stderr is not None
    # Reading blocks until the worker says it runs, with its signal handlers in place.
    started = ""
    while "Ctrl-C stops it" not in started and worker.poll() is None:
        started = worker.stderr.readline()
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)

    assert "Ctrl-C stops it" in started
    assert worker.returncode == 0, err
    assert out == "performed 0 steps\n"
    assert "stopping after the step under way" in err


# send --store


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_send_with_a_store_keeps_later_steps_for_a_worker(tmp_path: Path, url: str) -> None:
    contacts = write(
        tmp_path / "c.csv", "id,sms,fax,opted_out\nann,+17345550100,,\nnia,,+17345550133,fax\n"
    )
    message = write(tmp_path / "m.yaml", "body: hi\nexpects_response: true\nkey: visit-1\n")

    first = invoke("send", contacts, message, "--outbox", "--store", url, "--json")
    again = invoke("send", contacts, message, "--outbox", "--store", url, "--json")

    assert first.exit_code == 0, first.output
    rows = {row["contact_id"]: row for row in json.loads(first.stdout)}
    assert rows["ann"]["status"] == "awaiting_response"
    assert rows["nia"]["status"] == "suppressed"
    assert (
        f"run `multichannel worker --outbox --store {url}` to have them taken as a dry run too"
        in first.stderr
    )
    # The message key makes a second send return the stored dispatches.
    assert {row["dispatch_id"] for row in json.loads(again.stdout)} == {
        row["dispatch_id"] for row in rows.values()
    }
    stored = {d.contact_id: d for d in SQLStore(url, migrate=False).dispatches()}
    assert set(stored) == {"ann", "nia"}
    assert stored["ann"].status is Status.AWAITING_RESPONSE
    assert stored["ann"].next_action_at is not None
    report = json.loads(invoke("status", "--store", url, "--json").stdout)
    assert report["counts"] == {"awaiting_response": 1, "suppressed": 1}


def test_send_without_a_store_advises_one(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\nann,ann@example.com\n")
    message = write(tmp_path / "m.yaml", "body: hi\nexpects_response: true\n")

    result = invoke("send", contacts, message, "--outbox")

    assert result.exit_code == 0, result.output
    assert "kept in memory only" in result.stderr
    assert "pass --store sqlite:///multichannel.db (or set MULTICHANNEL_STORE)" in result.stderr


def test_send_with_a_bad_store_is_a_one_line_error(tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,email\nann,ann@example.com\n")
    message = write(tmp_path / "m.yaml", "body: hi\n")

    result = invoke("send", contacts, message, "--outbox", "--store", "oracle+nothing://x/y")

    one_line_error(result, "no database is known by the scheme 'oracle+nothing'")
