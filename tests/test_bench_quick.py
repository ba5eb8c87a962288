"""`bench/sends.py --quick` still runs: it exits 0 and prints every row. Never a speed.

Each entry of ROWS must begin the label of some row of the table; labels that
end in a count (rows, contacts) are given up to it. The PostgreSQL rows print
"skipped" when no server answers; they are still printed.
"""

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
    # Many at once against a provider 50 ms away.
    "Twilio SMS, 64 at once, 50 ms: bare aiohttp client",
    "Twilio SMS, 64 at once, 50 ms: ceiling",
    "Twilio SMS, 50 ms: raw SDK one at a time",
    "Twilio SMS, 64 at once, 50 ms: send_many via TwilioSMS",
    "Twilio SMS, 64 at once, 50 ms: send_many via TwilioSMS / ceiling",
    "Twilio SMS, 64 at once, 50 ms: send_many via TwilioSMS / raw SDK one at a time",
    "Twilio SMS, 64 at once, 50 ms: asend_many via TwilioSMS",
    "Twilio SMS, 64 at once, 50 ms: asend_many via TwilioSMS / ceiling",
    "Twilio SMS, 64 at once, 50 ms: asend_many via TwilioSMS / raw SDK one at a time",
    "SendGrid, 64 at once, 50 ms: bare aiohttp client",
    "SendGrid, 64 at once, 50 ms: ceiling",
    "SendGrid, 50 ms: raw SDK one at a time",
    "SendGrid, 64 at once, 50 ms: asend_many via SendGridEmail",
    "SendGrid, 64 at once, 50 ms: asend_many via SendGridEmail / ceiling",
    "SendGrid, 64 at once, 50 ms: asend_many via SendGridEmail / raw SDK one at a time",
    # Durable stores.
    "SQLStore on SQLite: enqueue",
    "SQLStore on SQLite: Worker drains them to the Outbox",
    "SQLStore on PostgreSQL: enqueue",
    "SQLStore on PostgreSQL: Worker drains them to the Outbox",
    # Webhooks under uvicorn.
    "webhooks, MemoryStore, 16 at a time: GET /healthz",
    "webhooks, MemoryStore, 16 at a time: signed Twilio status callbacks",
    "webhooks, MemoryStore, 16 at a time: callbacks / no-op route",
    "webhooks, SQLite, 16 at a time: GET /healthz",
    "webhooks, SQLite, 16 at a time: signed Twilio status callbacks",
    "webhooks, SQLite, 16 at a time: callbacks / no-op route",
    # multichannel plan on a CSV.
    "plan: multichannel plan",
    "plan: validating the same",
    "plan: ratio plan time / validation floor",
    "plan: peak RSS of plan, 20 rows",
    "plan: peak RSS of plan, 200 rows",
    # Memory of a large campaign.
    "memory: send_many, 1,000,000-contact generator, nothing kept: contacts done",
    "memory: send_many, 1,000,000-contact generator, nothing kept: peak RSS after",
    "memory: send_many, 1,000,000-contact generator, nothing kept: peak RSS at the end",
    "memory: MemoryStore keeps per dispatch",
    "peak memory of this process",
)


def test_quick_bench_runs_and_prints_every_row() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "cores" in run.stdout
    assert "Python" in run.stdout
    labels = [
        line.split("|")[1].strip() for line in run.stdout.splitlines() if line.startswith("| ")
    ]
    for row in ROWS:
        assert any(label.startswith(row) for label in labels), row
