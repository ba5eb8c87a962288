"""Issue 4's crash test: SIGKILL a worker mid-run; the next one loses nothing and repeats nothing.

A worker process works through a few hundred due steps on a SQLite file,
journaling every send its "provider" receives, and is killed with SIGKILL in
the middle. A second worker, started as if an hour later (past the dead
worker's leases and its in-flight mark), finishes the work. Every dispatch must
end accepted with exactly one send, or held for review (a send that was cut
off, which may or may not have reached the provider); none may be left due or
sent twice. One test kills at a random moment; the others make a send hang
before or after the provider got it, so the kill surely lands inside the call.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from _crash_worker import TUESDAY_MORNING, journal_lines, seed_due
from multichannel import Dispatch, Outcome, SQLStore, Status

WORKER = Path(__file__).with_name("_crash_worker.py")
STEPS = 300
TIMEOUT = 20.0


@dataclass
class Aftermath:
    """What the two workers left: every dispatch, and how often the provider got each."""

    ids: list[str]
    dispatches: dict[str, Dispatch]
    sends: Counter[str]
    before_kill: int
    after_restart: int

    def by_status(self) -> Counter[Status]:
        return Counter(dispatch.status for dispatch in self.dispatches.values())

    def check_nothing_lost_or_repeated(self) -> None:
        assert sorted(self.dispatches) == sorted(self.ids)
        assert set(self.sends) <= set(self.ids), "the journal names an unknown dispatch"
        assert set(self.by_status()) <= {Status.ACCEPTED, Status.REVIEW}, self.by_status()
        for dispatch_id, dispatch in self.dispatches.items():
            sends = self.sends[dispatch_id]
            if dispatch.status is Status.ACCEPTED:
                assert sends == 1, f"{dispatch_id} is accepted after {sends} sends"
            else:
                assert sends <= 1, f"{dispatch_id} is in review after {sends} sends"
                assert dispatch.current is not None
                assert dispatch.current.outcome is Outcome.SENDING


def start_worker(url: str, journal: Path, log: Path, *options: str) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(WORKER), "--url", url, "--journal", str(journal), *options],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def crash_and_recover(
    tmp_path: Path, ready_to_kill: Callable[[Path], bool], *first_options: str
) -> Aftermath:
    """Seed, run a worker until ``ready_to_kill(its journal)``, SIGKILL it, run another."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = SQLStore(url)
    ids = seed_due(store, STEPS)
    store.close()
    first_journal, second_journal = tmp_path / "first.journal", tmp_path / "second.journal"
    first_log = tmp_path / "first.log"

    first = start_worker(url, first_journal, first_log, *first_options)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ready_to_kill(first_journal):
            if first.poll() is not None:
                pytest.fail(f"the first worker ended before the kill: {first_log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the first worker was not ready to kill within {TIMEOUT}s")
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=TIMEOUT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        assert first.stdout is not None
        first.stdout.close()
    assert first.returncode == -signal.SIGKILL
    before_kill = journal_lines(first_journal)

    later = (TUESDAY_MORNING + timedelta(hours=1)).isoformat()
    second_log = tmp_path / "second.log"
    second = start_worker(url, second_journal, second_log, "--start", later)
    out, _ = second.communicate(timeout=TIMEOUT * 2)
    assert second.returncode == 0, second_log.read_text()
    after_restart = journal_lines(second_journal)
    assert json.loads(out)["performed"] > 0

    store = SQLStore(url)
    try:
        dispatches = {dispatch.id: dispatch for dispatch in store.dispatches()}
        assert store.due(TUESDAY_MORNING + timedelta(days=365)) == []
    finally:
        store.close()
    return Aftermath(
        ids=ids,
        dispatches=dispatches,
        sends=Counter(before_kill + after_restart),
        before_kill=len(before_kill),
        after_restart=len(after_restart),
    )


def test_a_worker_killed_at_a_random_moment_leaves_each_step_sent_once_or_in_review(
    tmp_path: Path,
) -> None:
    def twenty_sent(journal: Path) -> bool:
        return len(journal_lines(journal)) >= 20

    aftermath = crash_and_recover(tmp_path, twenty_sent, "--delay", "0.02")

    assert 20 <= aftermath.before_kill < STEPS, "the kill did not land mid-run"
    aftermath.check_nothing_lost_or_repeated()
    # Only the one step the dead worker was performing can be in doubt.
    assert aftermath.by_status()[Status.REVIEW] <= 1


@pytest.mark.parametrize(
    ("when", "provider_got_it"), [("before", 0), ("after", 1)], ids=["unsent", "sent"]
)
def test_a_worker_killed_inside_a_provider_call_leaves_that_one_step_in_review(
    tmp_path: Path, when: str, provider_got_it: int
) -> None:
    hanging = tmp_path / "hanging"

    def hanging_in_a_send(_journal: Path) -> bool:
        return hanging.exists() and bool(hanging.read_text())

    aftermath = crash_and_recover(
        tmp_path,
        hanging_in_a_send,
        *("--hang-at", "40", "--hang-when", when, "--hanging", str(hanging)),
    )
    cut_off = hanging.read_text()

    aftermath.check_nothing_lost_or_repeated()
    assert aftermath.by_status() == {Status.ACCEPTED: STEPS - 1, Status.REVIEW: 1}
    assert aftermath.dispatches[cut_off].status is Status.REVIEW
    assert aftermath.sends[cut_off] == provider_got_it
    assert aftermath.before_kill == 39 + provider_got_it
    assert "held for review" in aftermath.dispatches[cut_off].decisions[-1].reason
