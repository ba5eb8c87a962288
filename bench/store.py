"""A durable store under load: SQLStore enqueueing scheduled dispatches, a Worker draining them.

Enqueue: a `Dispatcher` on a `SQLStore`, its `ManualClock` at Monday 22:00 in
Detroit, inside every contact's quiet hours, runs ``send_many`` over generated
contacts: each dispatch is created, decided and saved as scheduled for the
morning, and nothing is sent. Drain: the clock moves past the quiet hours and
a `Worker` (default settings) claims and performs every due dispatch, sending
each to an `Outbox`, until nothing is due or 10 seconds have passed. Both are
dispatches per second.

On SQLite (a file in a temporary directory) and on PostgreSQL (a schema of its
own in the server named by MULTICHANNEL_TEST_POSTGRES_URL, else the local
``test`` database, dropped afterwards; skipped with a note when no server
answers).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import quote

from common import Row, Settings, expect, note, per_second, progress
from strategy import MONDAY, person

from multichannel import Dispatcher, ManualClock, Message, Outbox, SQLStore, Status, Worker

COUNT = {"full": 1_000, "quick": 30}  # dispatches enqueued, then drained
DRAIN_SECONDS = 10.0  # the worker is stopped after this long, however many are left
NIGHT = MONDAY + timedelta(hours=12)  # Monday 22:00 in Detroit: quiet until 08:00
MORNING = MONDAY + timedelta(hours=22, minutes=1)  # Tuesday 08:01 in Detroit: open
POSTGRES_VARIABLE = "MULTICHANNEL_TEST_POSTGRES_URL"  # the variable the tests read too
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def enqueue_and_drain(store: SQLStore, count: int) -> tuple[float, float]:
    """Dispatches per second: created and scheduled by send_many, then sent by a Worker."""
    clock = ManualClock(NIGHT)
    outbox = Outbox()
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    contacts = [person(number) for number in range(count)]
    message = Message(body="The service is back.")
    started = time.perf_counter()
    results = list(dispatcher.send_many(contacts, message))
    enqueue = count / (time.perf_counter() - started)
    scheduled = sum(
        r.dispatch is not None and r.dispatch.status is Status.SCHEDULED for r in results
    )
    expect("dispatches scheduled for the morning", scheduled, count)
    expect("messages sent during quiet hours", len(outbox.sent), 0)
    clock.set(MORNING)
    stop = threading.Event()
    timer = threading.Timer(DRAIN_SECONDS, stop.set)
    started = time.perf_counter()
    timer.start()
    try:
        performed = Worker(dispatcher).run(stop=stop, until_idle=True)
    finally:
        timer.cancel()
    drain = performed / (time.perf_counter() - started)
    expect("messages the worker sent", len(outbox.sent), performed)
    if not stop.is_set():
        expect("steps the worker performed", performed, count)
    return enqueue, drain


@contextmanager
def postgres_schema() -> Iterator[str | None]:
    """A URL on a fresh schema, dropped afterwards; None (and a note) when no server answers."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import OperationalError

    server = os.environ.get(POSTGRES_VARIABLE) or POSTGRES_DEFAULT
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"mc_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
    except OperationalError as err:
        why = str(err.orig or err).strip().splitlines()[0]
        shown = make_url(server).render_as_string(hide_password=True)
        note(f"PostgreSQL rows skipped: no server answers at {shown} ({why})")
        admin.dispose()
        yield None
        return
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _rows(database: str, enqueue: float | None, drain: float | None, count: int) -> list[Row]:
    reference = {"SQLite": ("507/s", "147/s"), "PostgreSQL": ("-", "-")}[database]
    goal = {"SQLite": (">= 5,000/s", ">= 2,000/s"), "PostgreSQL": ("no slower", "no slower")}
    skipped = "skipped"
    return [
        Row(
            f"SQLStore on {database}: enqueue {count:,} (send_many, all scheduled)",
            skipped if enqueue is None else per_second(enqueue),
            reference[0],
            goal[database][0],
        ),
        Row(
            f"SQLStore on {database}: Worker drains them to the Outbox",
            skipped if drain is None else per_second(drain),
            reference[1],
            goal[database][1],
        ),
    ]


def rows(settings: Settings) -> list[Row]:
    count = COUNT["quick" if settings.quick else "full"]
    table: list[Row] = []
    progress(f"SQLStore on SQLite: enqueue and drain {count:,} dispatches")
    with tempfile.TemporaryDirectory(prefix="multichannel-bench-") as folder:
        sqlite = SQLStore(f"sqlite:///{folder}/bench.db")
        try:
            table += _rows("SQLite", *enqueue_and_drain(sqlite, count), count)
        finally:
            sqlite.close()
    progress(f"SQLStore on PostgreSQL: enqueue and drain {count:,} dispatches")
    with postgres_schema() as url:
        if url is None:
            return table + _rows("PostgreSQL", None, None, count)
        postgres = SQLStore(url)
        try:
            table += _rows("PostgreSQL", *enqueue_and_drain(postgres, count), count)
        finally:
            postgres.close()
    return table
