"""Two worker processes on one PostgreSQL schema and the same due steps: none performed twice.

Both processes connect, then start together on ~200 due steps; each journals
every send its "provider" receives. Afterwards every step was sent exactly once
and is accepted, and both workers did part of the work, so they really did
compete for the same rows (``FOR UPDATE SKIP LOCKED`` under a lease).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from _crash_worker import journal_lines, seed_due
from _postgres import PostgresSchema, postgres_schema
from multichannel import Status

WORKER = Path(__file__).with_name("_crash_worker.py")
STEPS = 200
TIMEOUT = 30.0


@pytest.fixture
def pg() -> Iterator[PostgresSchema]:
    """An empty PostgreSQL schema of its own; the test is skipped without a server."""
    with postgres_schema() as schema:
        yield schema


def test_two_worker_processes_perform_each_step_exactly_once(
    pg: PostgresSchema, tmp_path: Path
) -> None:
    ids = seed_due(pg.store(), STEPS)
    go = tmp_path / "go"
    names = ("a", "b")
    workers = {}
    try:
        for name in names:
            with (tmp_path / f"{name}.log").open("w") as log:
                workers[name] = subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        *("--url", pg.url, "--journal", str(tmp_path / f"{name}.journal")),
                        *("--delay", "0.005", "--batch", "5"),
                        *("--ready", str(tmp_path / f"{name}.ready"), "--go", str(go)),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
        deadline = time.monotonic() + TIMEOUT
        while not all((tmp_path / f"{name}.ready").exists() for name in names):
            for name, worker in workers.items():
                if worker.poll() is not None:
                    pytest.fail(f"worker {name} ended: {(tmp_path / f'{name}.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the workers were not both ready within {TIMEOUT}s")
            time.sleep(0.01)
        go.touch()
        outputs = {name: worker.communicate(timeout=TIMEOUT)[0] for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.communicate()

    for name, worker in workers.items():
        assert worker.returncode == 0, (tmp_path / f"{name}.log").read_text()
    performed = {name: json.loads(out)["performed"] for name, out in outputs.items()}
    journals = {name: journal_lines(tmp_path / f"{name}.journal") for name in names}
    sends = Counter(journals["a"] + journals["b"])
    final = {dispatch.id: dispatch.status for dispatch in pg.store().dispatches()}

    assert sends == dict.fromkeys(ids, 1)
    assert final == dict.fromkeys(ids, Status.ACCEPTED)
    assert sum(performed.values()) == STEPS
    assert {name: len(journals[name]) for name in names} == performed
    assert min(performed.values()) > 0, f"one worker did everything: {performed}"
