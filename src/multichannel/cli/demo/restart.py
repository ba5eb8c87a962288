"""``multichannel demo --store URL`` (or ``--restart``): the demo across a process restart.

The first part runs in this process on a SQL store, with a `Worker`
performing due steps. Then this process drops its Dispatcher and store, and a
new process (``python -m multichannel demo-resume``) opens the same database
with new ones and plays the rest from what the store remembers. The restart
comes on the first night (Saturday 02:00 UTC), when a call deferred by quiet
hours, an escalation deadline and an email deferred to Monday are all waiting
in the store: each of them must survive it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated

import typer

from multichannel import (
    Adapter,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    ManualClock,
    Outbox,
    SQLStore,
    Worker,
)
from multichannel.cli.common import shown_url, user_errors
from multichannel.cli.demo.local import LOCAL_SCRIPT, Endpoints
from multichannel.cli.demo.script import (
    DEMO_DAYS,
    DEMO_START,
    SCRIPT,
    DemoRun,
    Scripted,
    TimelineEntry,
    as_adapter,
    build_timeline,
    demo_contacts,
    demo_message,
    play,
)
from multichannel.cli.files import InputError

__all__ = [
    "RESTART_AFTER",
    "DemoError",
    "Spawn",
    "resume_command",
    "run_restart_demo",
    "spawn_process",
]

RESTART_AFTER = timedelta(hours=12)

# Runs the multichannel command with these arguments in a new process; returns its stdout.
Spawn = Callable[[Sequence[str]], str]


class DemoError(Exception):
    """The second part of the demo could not run; the message is one line for a person."""


def spawn_process(arguments: Sequence[str]) -> str:
    """Run ``python -m multichannel ARGUMENTS`` and return its stdout; raises DemoError."""
    command = [sys.executable, "-m", "multichannel", *arguments]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and command
            command, capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise DemoError(f"could not start the second process: {err}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise DemoError(f"the second process failed: {lines[-1]}")
    return done.stdout


def _adapters(endpoints: Endpoints | None) -> list[Adapter]:
    return [as_adapter(Outbox())] if endpoints is None else endpoints.adapters()


def _script(endpoints: Endpoints | None) -> Sequence[Scripted]:
    return SCRIPT if endpoints is None else LOCAL_SCRIPT


def _stage(
    store: SQLStore, clock: ManualClock, endpoints: Endpoints | None
) -> tuple[Dispatcher, Callable[[], int], list[int]]:
    """A new Dispatcher and Worker on ``store``; the callable performs due steps and counts them."""
    dispatcher = Dispatcher(
        adapters=_adapters(endpoints), strategy=FallbackStrategy(), clock=clock, store=store
    )
    worker = Worker(dispatcher, name=f"demo-{os.getpid()}")
    performed: list[int] = []

    def perform() -> int:
        performed.append(worker.run_once())
        return performed[-1]

    return dispatcher, perform, performed


def _pending(dispatches: Sequence[Dispatch]) -> str:
    due = sorted(
        (dispatch.next_action_at, dispatch.contact_id)
        for dispatch in dispatches
        if dispatch.next_action_at is not None and not dispatch.status.is_final
    )
    return ", ".join(f"{contact} at {at:%a %H:%M}" for at, contact in due) or "nothing"


def run_restart_demo(
    url: str,
    *,
    start: datetime = DEMO_START,
    days: int = DEMO_DAYS,
    endpoints: Endpoints | None = None,
    restart_after: timedelta = RESTART_AFTER,
    spawn: Spawn = spawn_process,
) -> DemoRun:
    """Play the demo on the store at ``url``, from ``restart_after`` on in a new process.

    ``url`` must name an empty store. ``endpoints`` plays through the real
    adapters against stand-ins (which keep running here, so the new process
    reaches them too). ``spawn`` runs the new process. Raises DemoError when
    the second part fails.
    """
    end = start + timedelta(days=days)
    restart_at = start + restart_after
    contacts, message = demo_contacts(), demo_message()
    store = SQLStore(url)
    try:
        clock = ManualClock(start)
        dispatcher, perform, performed = _stage(store, clock, endpoints)
        ids = {contact.id: dispatcher.send(contact, message).id for contact in contacts}
        stories = play(
            dispatcher,
            clock,
            ids,
            _script(endpoints),
            start=start,
            until=restart_at,
            perform=perform,
        )
        waiting = _pending([dispatcher.get(dispatch_id) for dispatch_id in ids.values()])
    finally:
        store.close()
    # Nothing of the first part survives in memory: only the database carries on.
    del dispatcher, store, perform

    arguments = ["demo-resume", "--store", url, "--start", start.isoformat()]
    arguments += ["--days", str(days), "--from", restart_at.isoformat()]
    if endpoints is not None:
        arguments += ["--endpoints", endpoints.to_json()]
    try:
        report = json.loads(spawn(arguments))
        stories += [
            TimelineEntry(
                datetime.fromisoformat(item["at"]), item["contact_id"], item["text"], scripted=True
            )
            for item in report["stories"]
        ]
        pid, steps = int(report["pid"]), int(report["steps"])
    except (ValueError, KeyError, TypeError) as err:
        raise DemoError(f"the second process answered something unexpected: {err}") from None
    stories.append(
        TimelineEntry(
            restart_at,
            None,
            f"restart: process {os.getpid()} drops its Dispatcher and store after "
            f"{sum(performed)} due steps; process {pid} opens {shown_url(url)} with new ones "
            f"and a Worker, which performs the {steps} due steps still to come (waiting in "
            f"the store: {waiting})",
            scripted=True,
        )
    )
    reopened = SQLStore(url, migrate=False)
    try:
        dispatches = [reopened.get(ids[contact.id]) for contact in contacts]
    finally:
        reopened.close()
    found = [dispatch for dispatch in dispatches if dispatch is not None]
    return DemoRun(
        start=start,
        end=end,
        contacts=contacts,
        message=message,
        dispatches=found,
        timeline=build_timeline(contacts, found, stories),
        outbox=None,
        strategy=FallbackStrategy(),
        providers="outbox" if endpoints is None else "local",
        store=shown_url(url),
        restart_at=restart_at,
    )


def resume_demo(
    url: str, *, start: datetime, days: int, restart_at: datetime, endpoints: Endpoints | None
) -> dict[str, object]:
    """Play the rest of the demo from ``restart_at`` on new objects; report what was done."""
    store = SQLStore(url, migrate=False)
    try:
        clock = ManualClock(restart_at)
        dispatcher, perform, performed = _stage(store, clock, endpoints)
        ids = {dispatch.contact_id: dispatch.id for dispatch in store.dispatches()}
        script = [item for item in _script(endpoints) if start + item.after > restart_at]
        stories = play(
            dispatcher,
            clock,
            ids,
            script,
            start=start,
            until=start + timedelta(days=days),
            perform=perform,
        )
    finally:
        store.close()
    return {
        "pid": os.getpid(),
        "steps": sum(performed),
        "stories": [
            {"at": entry.at.isoformat(), "contact_id": entry.contact_id, "text": entry.text}
            for entry in stories
        ],
    }


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise InputError(f"{option} {text!r} has no time zone")
    return value


def resume_command(
    store: Annotated[str, typer.Option("--store", metavar="URL")],
    start: Annotated[str, typer.Option("--start", metavar="ISO8601")],
    days: Annotated[int, typer.Option("--days", metavar="N")],
    restart_at: Annotated[str, typer.Option("--from", metavar="ISO8601")],
    endpoints: Annotated[str | None, typer.Option("--endpoints", metavar="JSON")] = None,
) -> None:
    """The second part of ``demo --restart``, run by the demo itself in a new process."""
    with user_errors():
        try:
            local = None if endpoints is None else Endpoints.from_json(endpoints)
        except ValueError as err:
            raise InputError(f"--endpoints: {err}") from None
        report = resume_demo(
            store,
            start=_instant(start, "--start"),
            days=days,
            restart_at=_instant(restart_at, "--from"),
            endpoints=local,
        )
    typer.echo(json.dumps(report))
