"""The scripted scenario behind ``multichannel demo``: five people, one message, three days.

Everything runs through the real `Dispatcher` with an `Outbox` and a
`ManualClock`, so nothing leaves the machine and every run is the same (the
same scenario runs through the real adapters against local stand-ins in
`multichannel.cli.demo.local`, and across a process restart on a SQL store in
`multichannel.cli.demo.restart`). The clock starts on Friday 6 March 2026 at
14:00 UTC and jumps from one due step or scripted event to the next. What the people do is scripted:

- alice (Detroit, 09:00) gets a text at once and answers it;
- kenji (Tokyo, 23:00, in quiet hours) is written to at 07:00 his time, stays
  silent for his 12 hours, is texted, and answers;
- chloe's (Paris) email bounces, so she is texted instead, and she replies STOP;
- dev (no time zone; India by his number) ignores a text for two hours, so the
  call that follows waits for his quiet hours to end;
- emma (Sydney) opted out of texts and avoids weekends, so she is emailed on
  Monday morning her time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import cast

from multichannel import (
    Adapter,
    Contact,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    FallbackStrategy,
    ManualClock,
    Message,
    Outbox,
)
from multichannel.cli.demo.standins import Received
from multichannel.cli.files import load_contacts, load_message

__all__ = [
    "DEMO_DAYS",
    "DEMO_START",
    "SCRIPT",
    "DemoRun",
    "Scripted",
    "TimelineEntry",
    "as_adapter",
    "build_timeline",
    "demo_contacts",
    "demo_message",
    "play",
    "run_demo",
]

DEMO_START = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
DEMO_DAYS = 3


@dataclass(frozen=True)
class Scripted:
    """Something a person or provider does during the demo, reported as a `DeliveryEvent`."""

    after: timedelta
    contact_id: str
    channel: str
    kind: EventKind
    detail: str
    story: str


SCRIPT = (
    Scripted(
        timedelta(minutes=30),
        "chloe",
        "email",
        EventKind.FAILED,
        "550 5.1.1 mailbox does not exist",
        "chloe's mail server bounces the email",
    ),
    Scripted(
        timedelta(minutes=45),
        "alice",
        "sms",
        EventKind.RESPONDED,
        "YES",
        "alice replies YES to the text",
    ),
    Scripted(
        timedelta(hours=3),
        "chloe",
        "sms",
        EventKind.OPTED_OUT,
        "STOP",
        "chloe replies STOP to the text",
    ),
    Scripted(
        timedelta(hours=21, minutes=15),
        "kenji",
        "sms",
        EventKind.RESPONDED,
        "YES, thank you",
        "kenji answers the text",
    ),
)


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the demo's story: a decision, a scripted event, or (no contact) a restart."""

    at: datetime
    contact_id: str | None
    text: str
    scripted: bool


@dataclass(frozen=True)
class DemoRun:
    """What the demo did: the people, their dispatches at the end, and the timeline.

    ``outbox`` is what the Outbox kept, when one Outbox played the whole demo.
    ``providers`` is ``outbox`` or ``local`` (the real adapters against local
    stand-ins, whose requests are in ``traffic``). ``store`` and ``restart_at``
    say where the dispatches were kept and when the process was replaced.
    """

    start: datetime
    end: datetime
    contacts: list[Contact]
    message: Message
    dispatches: list[Dispatch]
    timeline: list[TimelineEntry]
    outbox: Outbox | None
    strategy: FallbackStrategy
    providers: str = "outbox"
    traffic: tuple[Received, ...] = ()
    notes: tuple[str, ...] = ()
    store: str | None = None
    restart_at: datetime | None = None


def as_adapter(outbox: Outbox) -> Adapter:
    """``outbox`` typed as the `Adapter` it is at run time."""
    # The Adapter protocol declares name and channel as instance variables, which
    # mypy does not match with BaseAdapter's class variables.
    return cast(Adapter, outbox)


_DATA = resources.files("multichannel.cli.demo") / "data"


def demo_contacts() -> list[Contact]:
    """The bundled demo contacts (``multichannel/cli/demo/data/demo_contacts.yaml``)."""
    with resources.as_file(
        resources.files("multichannel.cli.demo") / "data/demo_contacts.yaml"
    ) as path:
        return load_contacts(Path(path))


def demo_message() -> Message:
    """The bundled demo message (``multichannel/cli/demo/data/demo_message.yaml``)."""
    with resources.as_file(
        resources.files("multichannel.cli.demo") / "data/demo_message.yaml"
    ) as path:
        return load_message(Path(path))


def run_demo(
    *,
    start: datetime = DEMO_START,
    days: int = DEMO_DAYS,
    adapters: Sequence[Adapter] | None = None,
    script: Sequence[Scripted] = SCRIPT,
) -> DemoRun:
    """Play the scenario from ``start`` for ``days`` days and return what happened.

    ``adapters`` default to one `Outbox`; ``script`` is what people and
    providers do. Raises ValueError for a naive ``start``, ConfigurationError
    from a misconfigured adapter.
    """
    clock = ManualClock(start)
    outbox = Outbox()
    strategy = FallbackStrategy()
    dispatcher = Dispatcher(
        adapters=[as_adapter(outbox)] if adapters is None else adapters,
        strategy=strategy,
        clock=clock,
    )
    contacts, message = demo_contacts(), demo_message()
    end = start + timedelta(days=days)
    ids = {contact.id: dispatcher.send(contact, message).id for contact in contacts}
    stories = play(
        dispatcher, clock, ids, script, start=start, until=end, perform=dispatcher.run_due
    )
    dispatches = [dispatcher.get(ids[contact.id]) for contact in contacts]
    return DemoRun(
        start=start,
        end=end,
        contacts=contacts,
        message=message,
        dispatches=dispatches,
        timeline=build_timeline(contacts, dispatches, stories),
        outbox=outbox if adapters is None else None,
        strategy=strategy,
    )


def play(
    dispatcher: Dispatcher,
    clock: ManualClock,
    ids: Mapping[str, str],
    script: Sequence[Scripted],
    *,
    start: datetime,
    until: datetime,
    perform: Callable[[], object],
) -> list[TimelineEntry]:
    """Jump from one due step or scripted event to the next until ``until``; return the events.

    ``ids`` maps each contact to its dispatch; ``script`` times count from
    ``start``; ``perform`` performs the steps due at the clock's instant.
    """
    stories: list[TimelineEntry] = []
    pending = sorted(script, key=lambda item: item.after)
    while True:
        due = [
            found.next_action_at
            for found in (dispatcher.get(dispatch_id) for dispatch_id in ids.values())
            if found.next_action_at is not None and not found.status.is_final
        ]
        upcoming = [*due, *(start + item.after for item in pending)]
        if not upcoming or min(upcoming) > until:
            break
        now = clock.set(max(min(upcoming), clock.now()))
        while pending and start + pending[0].after <= now:
            item = pending.pop(0)
            stories.append(TimelineEntry(now, item.contact_id, item.story, scripted=True))
            dispatcher.record(_event(item, dispatcher.get(ids[item.contact_id])))
        perform()
    clock.set(until)
    return stories


def _event(item: Scripted, dispatch: Dispatch) -> DeliveryEvent:
    """The event a provider's webhook would report, matched by the provider's message id."""
    sent = [
        attempt.provider_id
        for attempt in dispatch.attempts
        if attempt.channel == item.channel and attempt.provider_id is not None
    ]
    return DeliveryEvent(
        kind=item.kind,
        provider_id=sent[-1] if sent else None,
        dispatch_id=dispatch.id,
        detail=item.detail,
    )


def build_timeline(
    contacts: list[Contact], dispatches: list[Dispatch], stories: list[TimelineEntry]
) -> list[TimelineEntry]:
    """Every decision and scripted event, by time; at one instant, person by person."""
    order = {contact.id: index for index, contact in enumerate(contacts)}
    entries = list(stories)
    for dispatch in dispatches:
        entries.extend(
            TimelineEntry(decision.at, dispatch.contact_id, decision.reason, scripted=False)
            for decision in dispatch.decisions
        )
    # A scripted event sorts before the decisions it causes at the same instant,
    # and a line about the whole demo (no contact) before everyone's.
    return sorted(
        entries,
        key=lambda entry: (
            entry.at,
            -1 if entry.contact_id is None else order[entry.contact_id],
            not entry.scripted,
        ),
    )
