"""`bench/sends.py --quick` still runs: it exits 0 and prints every row. Never a speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "sends.py"
ROWS = (
    "Twilio SMS: bare HTTP",
    "Twilio SMS: raw SDK messages.create",
    "Twilio SMS: Dispatcher.send via TwilioSMS",
    "Twilio SMS: ratio Dispatcher / raw SDK",
    "Twilio SMS: ratio Dispatcher / bare HTTP",
    "SendGrid: bare HTTP",
    "SendGrid: raw SDK send",
    "SendGrid: Dispatcher.send via SendGridEmail",
    "SendGrid: ratio Dispatcher / raw SDK",
    "SendGrid: ratio Dispatcher / bare HTTP",
    "send_many, Outbox + MemoryStore",
    "FallbackStrategy.decide, first choice open",
    "FallbackStrategy.decide, inside quiet hours",
    "Schedule.next_open, seen",
    "peak memory of the run",
)


def test_quick_bench_runs_and_prints_every_row() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "cores" in run.stdout
    assert "Python" in run.stdout
    for row in ROWS:
        assert row in run.stdout, row
