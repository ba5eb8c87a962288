"""The ``multichannel`` command: plan, send, list adapters, run the demo, and operate a store.

The operations commands (``db``, ``worker``, ``status``, ``review``, ``serve``)
live in `multichannel._cli_ops` and `multichannel._cli_serve`. Bad input (a
missing or malformed file, a record that fails validation, a bad option, a
store that cannot be reached) is reported as one line on stderr naming the
file, record and field, with exit status 2; never as a traceback.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from multichannel import (
    BatchResult,
    Contact,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    Message,
    Registry,
    Store,
    SystemClock,
    __version__,
)
from multichannel._cli_common import (
    DepthOpt,
    JsonOpt,
    OutboxOpt,
    ZoneOpt,
    build_registry,
    build_strategy,
    open_store,
    user_errors,
)
from multichannel._cli_demo import demo
from multichannel._cli_ops import db_app, review, status, store_option, worker
from multichannel._cli_serve import serve
from multichannel._demo_restart import resume_command
from multichannel._files import InputError, load_contacts, load_message
from multichannel._render import (
    PlanRow,
    console,
    contact_zone,
    show_adapters,
    show_contacts,
    show_plan,
    show_summary,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="multichannel",
    help="Reach each person on the channel they answer, never in their quiet hours.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ContactsArg = Annotated[
    Path,
    typer.Argument(
        help="Contacts file: .json or .yaml (a list of contacts) or .csv (see the CLI docs).",
        show_default=False,
    ),
]
MessageArg = Annotated[
    Path, typer.Argument(help="Message file: .json or .yaml with Message's fields.")
]
SendStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        envvar="MULTICHANNEL_STORE",
        help="Keep dispatches in this database (sqlite:///PATH or postgresql+psycopg://...) "
        "so that `multichannel worker` performs their later steps. Default: memory only.",
        show_default=False,
    ),
]


def _instant(text: str | None) -> datetime:
    if text is None:
        return SystemClock().now()
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--at {text!r} is not an ISO 8601 instant such as 2026-03-02T14:00:00Z"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"--at {text!r} has no time zone; add an offset such as Z or -05:00 "
            "(a naive time would be a guess)"
        )
    return value


def plan_rows(
    strategy: FallbackStrategy, contacts: list[Contact], message: Message, at: datetime
) -> list[PlanRow]:
    """What the strategy would do first for each contact at ``at``, nothing sent."""
    rows = []
    for contact in contacts:
        action = strategy.decide(contact, message, now=at)
        point = action.point if action.kind != "stop" else None
        when: datetime | None
        if action.kind == "send":
            status, when = "send_now", at
        elif action.kind == "wait":
            status, when = action.status.value, action.until
        else:
            status, when = action.status.value, None
        rows.append(
            PlanRow(
                contact_id=contact.id,
                status=status,
                channel=None if point is None else point.channel,
                address=None if point is None else point.address,
                at=when,
                zone=contact_zone(strategy, contact),
                reasons=(*action.notes, action.reason),
            )
        )
    return rows


@app.command()
def plan(
    contacts: ContactsArg,
    message: MessageArg,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="ISO8601",
            help="Instant to plan for, ISO 8601 with an offset. Default: now.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Explain, without sending, what would happen to each contact: channel, when and why.

    Every channel is assumed to have an adapter; `send` skips those that have none.
    """
    with user_errors():
        when = _instant(at)
        strategy = build_strategy(depth, default_timezone)
        people, content = load_contacts(contacts), load_message(message)
    rows = plan_rows(strategy, people, content, when)
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
    else:
        show_plan(console(), rows, when)


def _send_json(result: BatchResult) -> dict[str, object]:
    dispatch: Dispatch | None = result.dispatch
    current = None if dispatch is None else dispatch.current
    after = None if dispatch is None else dispatch.next_action_at
    return {
        "contact_id": result.contact.id,
        "dispatch_id": None if dispatch is None else dispatch.id,
        "status": "error" if dispatch is None else dispatch.status.value,
        "channel": None if current is None else current.channel,
        "address": None if current is None else current.address,
        "next_action_at": None if after is None else after.isoformat(),
        "error": None if result.error is None else f"{type(result.error).__name__}: {result.error}",
    }


def _error_lines(failed: list[BatchResult]) -> list[str]:
    """One line per distinct error, naming a few of the contacts it stopped."""
    by_error: dict[str, list[str]] = {}
    for result in failed:
        by_error.setdefault(f"{type(result.error).__name__}: {result.error}", []).append(
            repr(result.contact.id)
        )
    lines = []
    for error, ids in by_error.items():
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        lines.append(f"error: {len(ids)} contact{'s' * (len(ids) > 1)} ({shown}): {error}")
    return lines


@app.command()
def send(
    contacts: ContactsArg,
    message: MessageArg,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", metavar="N", help="How many contacts are sent to at once."),
    ] = 32,
    outbox: OutboxOpt = False,
    store: SendStoreOpt = None,
    as_json: JsonOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Send the message to every contact with the configured adapters, then summarise.

    With --store the dispatches are kept in that database, and `multichannel
    worker` performs their later steps. Exits 1 when sending to some contact
    raised an error, 2 for bad input or when no adapter is configured.
    """
    with user_errors():
        if concurrency < 1:
            raise InputError(f"--concurrency must be at least 1; got {concurrency}")
        strategy = build_strategy(depth, default_timezone)
        people, content = load_contacts(contacts), load_message(message)
    registry = build_registry(outbox)
    kept: Store | None = None
    if store is not None:
        with user_errors():
            kept = open_store(store, create=True, migrate=True)
    dispatcher = Dispatcher(adapters=registry, strategy=strategy, store=kept)
    results: list[BatchResult] = []
    errors = console(stderr=True)
    with (
        user_errors(),
        Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            console=errors,
            transient=True,
            disable=not errors.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("sending", total=len(people))
        for result in dispatcher.send_many(people, content, concurrency=concurrency):
            results.append(result)
            progress.advance(task)
    failed = [result for result in results if result.error is not None]
    for line in _error_lines(failed):
        errors.print(line, markup=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps([_send_json(result) for result in results], indent=2))
    else:
        dispatches = [result.dispatch for result in results if result.dispatch is not None]
        show_summary(console(), dispatches, len(failed))
    pending = sum(
        1 for result in results if result.dispatch and not result.dispatch.status.is_final
    )
    if pending:
        later = (
            f"note: {pending} {'dispatch has' if pending == 1 else 'dispatches have'} a later "
            "step (a deferred send or a wait for an answer); "
        )
        if store is None:
            later += (
                "they are kept in memory only, so nothing more happens after this command: "
                "pass --store sqlite:///multichannel.db (or set MULTICHANNEL_STORE) and run "
                "`multichannel worker` to have later steps taken"
            )
        else:
            later += f"run `multichannel worker{store_option(store)}` to have them taken"
        errors.print(later, markup=False, soft_wrap=True)
    if outbox:
        errors.print("dry run: messages went to an in-memory outbox; nothing was sent")
    if failed:
        raise typer.Exit(1)


@app.command()
def check(
    contacts: ContactsArg,
    message: Annotated[
        Path | None, typer.Argument(help="A message file to check as well.", show_default=False)
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the contacts normalised, in the JSON contacts format."),
    ] = False,
) -> None:
    """Validate a contacts file (and a message file); print the contacts as the library reads them.

    With --json the output is itself a valid contacts file, so this converts CSV to JSON.
    """
    with user_errors():
        people = load_contacts(contacts)
        if message is not None:
            load_message(message)
    if as_json:
        dumped = [person.model_dump(mode="json") for person in people]
        typer.echo(json.dumps(dumped, indent=2, ensure_ascii=False))
    else:
        show_contacts(console(), people, contacts)


@app.command()
def adapters() -> None:
    """List the adapters published under the 'multichannel.adapters' entry points."""
    show_adapters(console(), Registry.discover())


app.command()(demo)
app.add_typer(db_app)
app.command()(worker)
app.command()(status)
app.command()(review)
app.command()(serve)
app.command("demo-resume", hidden=True)(resume_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"multichannel {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Reach each person on the channel they answer, never in their quiet hours."""


def main() -> None:
    """Run the ``multichannel`` command."""
    app()
