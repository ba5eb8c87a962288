"""The operations commands: ``db``, ``worker``, ``status`` and ``review``.

They work on a SQL store named by ``--store`` or ``MULTICHANNEL_STORE``
(default ``sqlite:///multichannel.db``). Bad input, a store that cannot be
reached and a misconfigured adapter are one line on stderr with exit status 2;
a store that goes away while a worker runs is waited for instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any, Literal

import typer

from multichannel import Dispatcher, Registry, SystemClock, UnknownDispatch, Worker
from multichannel.cli.common import (
    DEFAULT_STORE,
    Command,
    DepthOpt,
    Group,
    JsonOpt,
    OutboxOpt,
    StoreOpt,
    WorkerDispatcher,
    ZoneOpt,
    build_registry,
    build_strategy,
    duration,
    existing_store,
    open_store,
    shown_url,
    user_errors,
)
from multichannel.cli.files import InputError
from multichannel.cli.jsontext import dump_json
from multichannel.cli.render import console, printable
from multichannel.cli.render_ops import show_review, show_status
from multichannel.cli.report import store_status

__all__ = ["db_app", "review", "status", "store_option", "worker"]

db_app = typer.Typer(
    cls=Group,
    name="db",
    help="The store's schema: apply its migrations or show its version.",
    no_args_is_help=True,
)


def store_option(url: str) -> str:
    """`` --store URL`` to repeat in advice, or nothing when ``url`` is what applies anyway."""
    return "" if url == DEFAULT_STORE else f" --store {shown_url(url)}"


@db_app.command("upgrade", cls=Command)
def db_upgrade(store: StoreOpt = DEFAULT_STORE) -> None:
    """Apply the schema migrations the store lacks (creating a SQLite file if needed)."""
    with user_errors():
        sql = open_store(store, create=True, migrate=False)
        try:
            applied = sql.upgrade()
            version = sql.version()
        finally:
            sql.close()
    shown = shown_url(store)
    if applied:
        typer.echo(f"applied migration{'s' * (len(applied) > 1)} {', '.join(map(str, applied))}")
    else:
        typer.echo(f"nothing to apply: {shown} is up to date")
    typer.echo(f"schema version {version}")


@db_app.command("version", cls=Command)
def db_version(store: StoreOpt = DEFAULT_STORE) -> None:
    """Print the store's schema version (0: `multichannel db upgrade` has never run there)."""
    with user_errors():
        sql = open_store(store, create=False, migrate=False)
        try:
            version = sql.version()
        finally:
            sql.close()
    typer.echo(f"schema version {version}")


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM set ``stop``; a second signal acts as usual.

    Outside the main thread, where Python cannot install handlers, nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handle(signum: int, _frame: FrameType | None) -> None:
        # The step under way is finished first, so that nothing is left "sending";
        # a second signal falls through to the old handler for whoever cannot wait.
        stop.set()
        signal.signal(signum, previous[signum])
        typer.echo("stopping after the step under way (again to quit at once)", err=True)

    for wanted in (signal.SIGINT, signal.SIGTERM):
        previous[wanted] = signal.signal(wanted, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupted(value: str) -> Literal["review", "resend"]:
    if value == "review":
        return "review"
    if value == "resend":
        return "resend"
    raise InputError(f"--interrupted must be 'review' or 'resend'; got {value!r}")


def worker(
    store: StoreOpt = DEFAULT_STORE,
    lease: Annotated[
        str,
        typer.Option(
            "--lease", metavar="DURATION", help="How long a claimed step is this worker's: 2m."
        ),
    ] = "2m",
    batch: Annotated[
        int, typer.Option("--batch", metavar="N", help="How many due steps are claimed at once.")
    ] = 10,
    idle: Annotated[
        str,
        typer.Option("--idle", metavar="DURATION", help="How long to wait when nothing is due."),
    ] = "1s",
    once: Annotated[
        bool, typer.Option("--once", help="Perform what is due now, then exit.")
    ] = False,
    interrupted: Annotated[
        str,
        typer.Option(
            "--interrupted",
            metavar="review|resend",
            help="A send cut short by a crash: hold it for review, or send it again.",
        ),
    ] = "review",
    outbox: OutboxOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Perform due steps (deferred sends, escalations) until Ctrl-C, or with --once until idle.

    Start as many as you like on one PostgreSQL store; a claimed step is leased
    to one worker. If the store goes away, the worker waits and reconnects.
    Give --depth and --default-timezone as you gave them to `send`.
    """
    with user_errors():
        lease_span, idle_span = duration(lease, "--lease"), duration(idle, "--idle")
        if batch < 1:
            raise InputError(f"--batch must be at least 1; got {batch}")
        policy = _interrupted(interrupted)
        strategy = build_strategy(depth, default_timezone)
    registry = build_registry(outbox)
    with user_errors():
        sql = open_store(store, create=True, migrate=True)
    stop = threading.Event()
    dispatcher = WorkerDispatcher(
        adapters=registry,
        strategy=strategy,
        # The plain system clock: a signal must not cut short the waits between
        # a send's retries, only the worker's own wait between polls (Worker.run).
        clock=SystemClock(),
        store=sql,
        interrupted=policy,
    )
    runner = Worker(dispatcher, lease=lease_span, batch=batch, idle=idle_span)
    names = printable(", ".join(adapter.name for adapter in registry))
    try:
        with stop_on_signals(stop), user_errors():
            typer.echo(
                f"worker {runner.name} on {shown_url(store)} with {names}"
                + ("" if once else "; Ctrl-C stops it"),
                err=True,
            )
            steps = runner.run(stop=stop, until_idle=once)
    finally:
        sql.close()
    typer.echo(f"performed {steps} step{'' if steps == 1 else 's'}")
    if outbox:
        typer.echo("dry run: messages went to an in-memory outbox; nothing was sent", err=True)
    if dispatcher.cancelled_dry_runs:
        count = dispatcher.cancelled_dry_runs
        typer.echo(
            f"cancelled {count} dry-run dispatch{'' if count == 1 else 'es'} without sending: "
            "made by `send --outbox`, a dry run is never sent through real providers "
            f"(`multichannel status{store_option(store)}` counts the dry runs)",
            err=True,
        )


def status(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """Dispatches by status, the contacts not reached, and the sends held for review."""
    with user_errors():
        sql = existing_store(store)
        try:
            report = store_status(sql, shown_url(store))
        finally:
            sql.close()
    if as_json:
        typer.echo(dump_json(report.as_json()))
    else:
        show_status(console(), report, store_option(store))


def review(
    dispatch_id: Annotated[
        str, typer.Argument(metavar="DISPATCH_ID", help="A dispatch `status` lists for review.")
    ],
    sent: Annotated[
        bool | None,
        typer.Option(
            "--sent/--not-sent",
            help="Whether the interrupted send went out: --sent carries on, --not-sent resends.",
            show_default=False,
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    outbox: OutboxOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Settle a dispatch held for review, once you know whether its interrupted send went out."""
    with user_errors():
        if sent is None:
            raise InputError("say whether the interrupted send went out: --sent or --not-sent")
        strategy = build_strategy(depth, default_timezone)
    # Carrying on after a send that went out only waits; sending again needs an adapter.
    registry = build_registry(outbox) if not sent or outbox else Registry.from_entry_points()
    with user_errors():
        sql = existing_store(store)
        try:
            dispatcher = Dispatcher(adapters=registry, strategy=strategy, store=sql)
            try:
                before = len(dispatcher.get(dispatch_id).decisions)
            except UnknownDispatch:
                raise InputError(
                    f"{shown_url(store)} has no dispatch {dispatch_id!r}; "
                    "`multichannel status` lists those held for review"
                ) from None
            try:
                settled = dispatcher.resume(dispatch_id, sent=sent)
            except ValueError as err:
                raise InputError(str(err)) from None
        finally:
            sql.close()
    show_review(console(), settled, settled.decisions[before:])
