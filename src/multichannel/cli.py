"""The ``multichannel`` command: plan, send, list adapters, and run the demo.

Bad input (a missing or malformed file, a record that fails validation, a bad
option) is reported as one line on stderr naming the file, record and field,
with exit status 2; never as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from multichannel import (
    BatchResult,
    Contact,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    Message,
    Outbox,
    Registry,
    SystemClock,
    __version__,
)
from multichannel._files import InputError, load_contacts, load_message
from multichannel._render import (
    PlanRow,
    console,
    contact_zone,
    show_adapters,
    show_contacts,
    show_demo,
    show_plan,
    show_summary,
)
from multichannel.demo import as_adapter, run_demo

__all__ = ["app", "main"]

USAGE_ERROR = 2

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
DepthOpt = Annotated[
    str,
    typer.Option("--depth", metavar="N|all", help="How many ranked choices to walk, or 'all'."),
]
ZoneOpt = Annotated[
    str,
    typer.Option(
        "--default-timezone",
        metavar="ZONE",
        help="IANA zone for contacts with no time zone and no phone number.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn a problem with what the user gave into one line on stderr and exit status 2."""
    try:
        yield
    except InputError as err:
        _fail(str(err))


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


def _strategy(depth: str, default_timezone: str) -> FallbackStrategy:
    if depth.strip().lower() == "all":
        walk: int | None = None
    else:
        try:
            walk = int(depth)
        except ValueError:
            raise InputError(f"--depth {depth!r} is not a number or 'all'") from None
        if walk < 1:
            raise InputError(f"--depth must be at least 1, or 'all'; got {walk}")
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--default-timezone {default_timezone!r} is not an IANA time zone "
            "such as 'America/Detroit'"
        ) from None
    return FallbackStrategy(depth=walk, default_timezone=default_timezone)


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
    with _user_errors():
        when = _instant(at)
        strategy = _strategy(depth, default_timezone)
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
    outbox: Annotated[
        bool,
        typer.Option("--outbox", help="Dry run: send through an in-memory outbox; nothing leaves."),
    ] = False,
    as_json: JsonOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Send the message to every contact with the configured adapters, then summarise.

    Exits 1 when sending to some contact raised an error, 2 for bad input or
    when no adapter is configured.
    """
    with _user_errors():
        if concurrency < 1:
            raise InputError(f"--concurrency must be at least 1; got {concurrency}")
        strategy = _strategy(depth, default_timezone)
        people, content = load_contacts(contacts), load_message(message)
    registry = Registry([as_adapter(Outbox())]) if outbox else Registry.from_entry_points()
    if not len(registry):
        _fail(
            "no adapters are configured: set the environment variables of a provider "
            "(`multichannel adapters` shows what each one is missing), or pass --outbox "
            "for a dry run"
        )
    dispatcher = Dispatcher(adapters=registry, strategy=strategy)
    results: list[BatchResult] = []
    errors = console(stderr=True)
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    ) as progress:
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
        errors.print(
            f"note: {pending} {'dispatch has' if pending == 1 else 'dispatches have'} a later "
            "step (a deferred send or a wait for an answer); dispatches are kept in memory "
            "only, so no later step is taken after this command exits",
            markup=False,
            soft_wrap=True,
        )
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
    with _user_errors():
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


@app.command()
def demo() -> None:
    """Play a scripted three-day scenario for five people on a manual clock; nothing is sent."""
    show_demo(console(), run_demo())


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
