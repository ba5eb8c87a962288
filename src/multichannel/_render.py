"""How the command shows things: plans, send summaries, adapters and the demo, with rich."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Protocol
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from multichannel import Adapter, Contact, Dispatch, FallbackStrategy
from multichannel.demo import DemoRun

__all__ = [
    "PlanRow",
    "Published",
    "console",
    "contact_zone",
    "local_iso",
    "local_time",
    "show_adapters",
    "show_contacts",
    "show_demo",
    "show_plan",
    "show_summary",
]

_STATUS_STYLE = {
    "send_now": "green",
    "scheduled": "yellow",
    "accepted": "green",
    "delivered": "green",
    "awaiting_response": "cyan",
    "responded": "bold green",
    "unanswered": "magenta",
    "expired": "red",
    "failed": "red",
    "suppressed": "red",
    "cancelled": "dim",
    "error": "bold red",
}


@dataclass(frozen=True)
class PlanRow:
    """What would happen to one contact: the first decision and the reasons around it."""

    contact_id: str
    status: str
    channel: str | None
    address: str | None
    at: datetime | None
    zone: str
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        """The row as the ``plan --json`` object."""
        return {
            "contact_id": self.contact_id,
            "status": self.status,
            "channel": self.channel,
            "address": self.address,
            "at": None if self.at is None else self.at.astimezone(UTC).isoformat(),
            "local_at": None if self.at is None else local_iso(self.at, self.zone),
            "reasons": list(self.reasons),
        }


class Published(Protocol):
    """What `Registry.discover` reports about one published adapter."""

    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def adapter(self) -> Adapter | None: ...
    @property
    def problem(self) -> str | None: ...


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr), made when needed so redirection applies."""
    return Console(stderr=stderr, highlight=False)


def local_iso(at: datetime, zone: str) -> str:
    """``at`` in ISO 8601 with the offset of ``zone`` at that instant."""
    return at.astimezone(ZoneInfo(zone)).isoformat()


def local_time(at: datetime, zone: str) -> str:
    """``Fri 23:00 JST``: the wall-clock reading of ``at`` in ``zone``."""
    return at.astimezone(ZoneInfo(zone)).strftime("%a %H:%M %Z")


def contact_zone(strategy: FallbackStrategy, contact: Contact) -> str:
    """The zone a contact's times are shown in: their own, the first inferred, or the default."""
    return strategy.zones(contact)[0][0]


def _table(title: str, *columns: str, no_wrap: Sequence[str] = ()) -> Table:
    table = Table(title=Text(title, "bold"), title_justify="left")
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in no_wrap)
    return table


def _add(table: Table, *cells: str | Text) -> None:
    # User data goes in as Text so that brackets in it are never read as rich markup.
    table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in cells))


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def show_plan(out: Console, rows: Sequence[PlanRow], at: datetime) -> None:
    """One tree per contact: what happens, when, and every reason."""
    out.print(Text(f"Plan at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (nothing is sent)", "bold"))
    for row in rows:
        label = Text.assemble((row.contact_id, "bold"), "  ", _status(row.status))
        if row.channel is not None:
            label.append(f"  {row.channel} {row.address}")
        if row.at is not None:
            label.append(
                f"  at {row.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                f" ({local_time(row.at, row.zone)}, {row.zone})"
            )
        tree = Tree(label)
        for reason in row.reasons:
            tree.add(Text(reason))
        out.print(tree)


def show_contacts(out: Console, contacts: Sequence[Contact], source: object) -> None:
    """A table of contacts as the library reads them: zone, ranked channels, points, quiet."""
    table = _table(
        f"{len(contacts)} contacts in {source}", "id", "time zone", "channels", "points", "quiet"
    )
    for contact in contacts:
        prefs = contact.preferences
        points = []
        for point in contact.points:
            flags = [flag for flag in ("opted_out", "allow_sensitive") if getattr(point, flag)]
            points.append(point.describe() + (f" [{', '.join(flags)}]" if flags else ""))
        _add(
            table,
            contact.id,
            contact.timezone or "-",
            " > ".join(prefs.channels) or "-",
            "\n".join(points) or "-",
            "; ".join(_quiet(contact)) or "-",
        )
    out.print(table)


def _quiet(contact: Contact) -> list[str]:
    prefs = contact.preferences
    quiet = [
        f"{window.start}-{window.end}" + (f" {','.join(window.days)}" if window.days else "")
        for window in prefs.quiet_hours
    ]
    if prefs.avoid_days:
        quiet.append(f"{','.join(prefs.avoid_days)} off")
    return quiet


def show_summary(out: Console, dispatches: Iterable[Dispatch], errors: int) -> None:
    """A table of how many dispatches ended in each status."""
    counts = Counter(dispatch.status.value for dispatch in dispatches)
    if errors:
        counts["error"] = errors
    table = _table("Sent", "status", "contacts")
    for status, count in sorted(counts.items()):
        _add(table, _status(status), str(count))
    _add(table, Text("total", "bold"), Text(str(sum(counts.values())), "bold"))
    out.print(table)


def show_adapters(out: Console, published: Sequence[Published]) -> None:
    """A table of published adapters: ready, or what keeps each from being built."""
    table = _table(
        "Adapters (entry-point group multichannel.adapters)", "name", "target", "channel", "status"
    )
    for item in published:
        if item.adapter is not None:
            _add(table, item.name, item.target, item.adapter.channel, Text("ready", "green"))
        else:
            _add(table, item.name, item.target, "-", Text(item.problem or "unusable", "red"))
    out.print(table)


def show_demo(out: Console, run: DemoRun) -> None:
    """The demo: who is in it, a timeline day by day, and where each dispatch ended."""
    zones = {contact.id: contact_zone(run.strategy, contact) for contact in run.contacts}
    out.print(
        Text(
            f"One message to {len(run.contacts)} people, from {run.start:%a %d %b %Y %H:%M} UTC "
            f"for {(run.end - run.start).days} days, on a manual clock through the Outbox "
            "(nothing leaves this machine).",
            "bold",
        )
    )
    people = _table(
        "People",
        *("contact", "time zone", "channels", "quiet", "opted out"),
        no_wrap=("contact", "time zone"),
    )
    for contact in run.contacts:
        prefs = contact.preferences
        zone = contact.timezone or f"by number: {zones[contact.id]}"
        quiet = _quiet(contact)
        opted = [point.ref for point in contact.points if point.opted_out]
        _add(
            people, contact.id, zone, " > ".join(prefs.channels), "; ".join(quiet), "; ".join(opted)
        )
    out.print(people)

    for day, entries in groupby(run.timeline, key=lambda entry: entry.at.date()):
        fixed = ("UTC", "contact", "their time")
        table = _table(f"{day:%A %d %B %Y} (UTC)", *fixed, "what happened", no_wrap=fixed)
        for entry in entries:
            what = Text(f"» {entry.text}", "bold yellow") if entry.scripted else Text(entry.text)
            their_time = local_time(entry.at, zones[entry.contact_id])
            _add(table, f"{entry.at:%H:%M}", entry.contact_id, their_time, what)
        out.print(table)

    final = _table(
        f"At the end ({run.end:%a %d %b %H:%M} UTC)", "contact", "status", "attempts", "next step"
    )
    for dispatch in run.dispatches:
        tried = " → ".join(
            f"{attempt.channel} {attempt.outcome.value}" for attempt in dispatch.attempts
        )
        after = dispatch.next_action_at
        _add(
            final,
            dispatch.contact_id,
            _status(dispatch.status.value),
            tried or "-",
            "-" if after is None else local_time(after, zones[dispatch.contact_id]),
        )
    out.print(final)
