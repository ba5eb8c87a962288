"""The ``multichannel`` command: plan, send, list adapters, run the demo, and operate a store.

The operations commands (``db``, ``worker``, ``status``, ``review``, ``serve``)
live in `multichannel.cli.ops` and `multichannel.cli.serve`. Bad input (a
missing or malformed file, a record that fails validation, a bad option, a
store that cannot be reached) is reported on stderr naming the file, record,
line and field, with exit status 2; never as a traceback. Every bad record is
listed. `send` reads a contacts file whole and sends nothing while any record
is bad; `plan` streams it (see `multichannel.cli.plans`), planning the good
records as it goes and listing the bad ones at the end.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from multichannel import (
    BatchResult,
    Dispatcher,
    Registry,
    SystemClock,
    __version__,
)
from multichannel.cli.common import (
    Command,
    DepthOpt,
    Group,
    JsonOpt,
    OutboxOpt,
    SendStore,
    ZoneOpt,
    build_registry,
    build_strategy,
    fail_lines,
    one_line,
    send_store,
    shown_url,
    user_errors,
)
from multichannel.cli.demo.command import demo
from multichannel.cli.demo.restart import resume_command
from multichannel.cli.files import InputError, load_message, stream_contacts
from multichannel.cli.inputs import gather, preference_warnings, read_inputs
from multichannel.cli.jsontext import dump_json
from multichannel.cli.ops import db_app, review, status, store_option, worker
from multichannel.cli.plans import ROWS_PER_CHUNK, Output, print_plans
from multichannel.cli.problems import problem_lines
from multichannel.cli.render import (
    console,
    printable,
    show_adapters,
    show_contacts,
    show_summary,
)
from multichannel.cli.sent import error_lines, key_lines, send_json
from multichannel.cli.serve import serve

__all__ = ["app", "main"]

app = typer.Typer(
    cls=Group,
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


def _cores() -> int:
    """The cores this process may run on (fewer than the machine's under a CPU affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        metavar="N",
        help="Worker processes that read and plan a CSV file's rows. Default: one per core.",
        show_default=False,
    ),
]


@app.command(cls=Command)
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
    as_jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Print JSON lines: one object a line, as planned.")
    ] = False,
    jobs: JobsOpt = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            metavar="N",
            help="Rows a worker reads and plans at a time; a file of up to 4 chunks is "
            "planned without workers.",
        ),
    ] = ROWS_PER_CHUNK,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Explain, without sending, what would happen to each contact: channel, when and why.

    Every channel is assumed to have an adapter; `send` skips those that have
    none. The file is read, planned and printed a chunk of rows at a time, in
    file order; bad records are reported at the end, the others planned.
    """
    output: Output = "jsonl" if as_jsonl else "json" if as_json else "text"
    with user_errors():
        if as_json and as_jsonl:
            raise InputError("--json and --jsonl cannot be given together; choose one")
        if jobs is not None and jobs < 1:
            raise InputError(f"--jobs must be at least 1; got {jobs}")
        if chunk_size < 1:
            raise InputError(f"--chunk-size must be at least 1; got {chunk_size}")
        when = _instant(at)
        strategy = build_strategy(depth, default_timezone)
    with ExitStack() as files:
        problems = []
        stream = None
        try:
            stream = files.enter_context(stream_contacts(contacts))
        except InputError as err:
            problems.append(str(err))
        try:
            content = load_message(message)
        except InputError as err:
            problems.append(str(err))
        if problems or stream is None:
            fail_lines(problems)
        problems = print_plans(
            stream,
            content,
            when,
            strategy,
            output=output,
            jobs=jobs or _cores(),
            chunk_size=chunk_size,
        )
    if problems:
        fail_lines(problems)


@app.command(cls=Command)
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
        loaded, content = read_inputs(contacts, message, outcome="nothing was sent")
    people = loaded.contacts
    registry = build_registry(outbox)
    kept: SendStore | None = None
    if store is not None:
        with user_errors():
            kept = send_store(store, dry_run=outbox)
    dispatcher = Dispatcher(adapters=registry, strategy=strategy, store=kept)
    results: list[BatchResult] = []
    errors = console(stderr=True)
    try:
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
    finally:
        if kept is not None:
            kept.close()
    # Results come as each contact's send ends; reports follow the file's order.
    order = {person.id: index for index, person in enumerate(people)}
    results.sort(key=lambda result: order[result.contact.id])
    # Only the store knows whether a repeated key returned a dispatch of an earlier run.
    made = None if kept is None else kept.made
    dispatches = [result.dispatch for result in results if result.dispatch is not None]
    new = [dispatch for dispatch in dispatches if made is None or dispatch.id in made]
    stored = [dispatch for dispatch in dispatches if made is not None and dispatch.id not in made]
    failed = [result for result in results if result.error is not None]
    for line in error_lines(failed):
        errors.print(line, markup=False, soft_wrap=True)
    if as_json:
        typer.echo(dump_json([send_json(result, made) for result in results]))
    else:
        show_summary(console(), new, len(failed), stored=stored, key=content.key, dry_run=outbox)
    notes = []
    if store is not None:
        notes = key_lines(
            content, message, stored=stored, made=len(new), outbox=outbox, as_json=as_json
        )
    pending = sum(1 for dispatch in dispatches if not dispatch.status.is_final)
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
        elif outbox:
            later += (
                f"run `multichannel worker --outbox{store_option(store)}` to have them taken as "
                "a dry run too"
            )
        else:
            later += f"run `multichannel worker{store_option(store)}` to have them taken"
        notes.insert(0, later)
    if outbox:
        dry = "dry run: messages went to an in-memory outbox; nothing was sent"
        if store is not None and new:
            dry += (
                f". The dispatches kept in {shown_url(store)} are marked as a dry run: a worker "
                "with real adapters cancels them without sending"
            )
        notes.append(dry)
    for note in notes:
        errors.print(printable(note), markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@app.command(cls=Command)
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

    Every bad record is listed, with its line; exits 2 if there is one. A
    ranked channel that can never be tried (no point of the contact has it, or
    no adapter sends on it) is a warning. With --json the output is itself a
    valid contacts file, so this converts CSV to JSON.
    """
    found = gather(contacts, message)
    if found.contacts is not None:
        warnings = preference_warnings(found.contacts)
        for line in problem_lines(warnings, warning=True):
            typer.echo(f"warning: {one_line(line)}", err=True)
    if found.errors or found.contacts is None:
        fail_lines(found.errors)
    people = found.contacts.contacts
    if as_json:
        dumped = [person.model_dump(mode="json") for person in people]
        typer.echo(dump_json(dumped))
    else:
        show_contacts(console(), people, contacts)


@app.command(cls=Command)
def adapters() -> None:
    """List the adapters published under the 'multichannel.adapters' entry points."""
    show_adapters(console(), Registry.discover())


app.command(cls=Command)(demo)
app.add_typer(db_app)
app.command(cls=Command)(worker)
app.command(cls=Command)(status)
app.command(cls=Command)(review)
app.command(cls=Command)(serve)
app.command("demo-resume", hidden=True, cls=Command)(resume_command)


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
