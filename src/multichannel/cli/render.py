"""How the command shows things: plans, send summaries, adapters and the demo, with rich.

Text from outside (contacts files, provider answers, bounce reasons, replies)
goes through `printable` before it reaches a terminal, and JSON through
`dump_json`, so that no one can clear the screen, retitle the window or
overwrite a line of what an operator reads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Protocol
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from multichannel import Adapter, Contact, Dispatch, FallbackStrategy
from multichannel._redact import mask_address
from multichannel.cli.demo.script import DemoRun
from multichannel.cli.demo.standins import Received
from multichannel.planning import Plan

__all__ = [
    "Published",
    "add_row",
    "console",
    "contact_zone",
    "local_iso",
    "local_time",
    "new_table",
    "printable",
    "show_adapters",
    "show_contacts",
    "show_demo",
    "show_plan",
    "show_summary",
    "status_text",
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
    "review": "bold magenta",
    "error": "bold red",
}

# Dropped whole, parameters and all (CSI codes; OSC, DCS and other strings), so that
# neither a screen-clearing code nor a window title shows as litter. A string with no
# terminator loses its introducer only: a terminal would have swallowed the rest, and
# here the rest stays visible. A string also ends at the next introducer, which keeps
# the search linear however the text is made.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erasing
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x90\x98\x9c-\x9f]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]?"  # any other escape, or a lone ESC
)
# Line breaks and carriage returns become spaces, so words stay apart but a reason
# can neither overwrite its line (\r) nor pose as the next line of a log. Bidi
# overrides go too: they reorder what is shown without changing what is there.
_BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"
_UNSEEN = (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F))
_ONE_LINE = {
    code: " " if chr(code) in _BREAKS else None for code in (*_UNSEEN, *range(0x2066, 0x206A))
}


def printable(text: str) -> str:
    """``text`` as one line safe for a terminal: no escape sequences, no control characters.

    Printable Unicode is kept; line breaks and tabs become spaces.
    """
    return _ESCAPES.sub("", text).translate(_ONE_LINE)


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


def new_table(title: str, *columns: str, no_wrap: Sequence[str] = ()) -> Table:
    """A table with a bold title and columns that fold long cells, except those in ``no_wrap``."""
    made = Table(title=Text(printable(title), "bold"), title_justify="left")
    for name in columns:
        made.add_column(name, overflow="fold", no_wrap=name in no_wrap)
    return made


def add_row(table: Table, *cells: str | Text) -> None:
    """Add a row; a plain string is one line as it is, never read as markup or escapes.

    A `Text` cell is taken as made: whoever builds one from outside text cleans it.
    """
    # User data goes in as Text so that brackets in it are never read as rich markup.
    table.add_row(*(cell if isinstance(cell, Text) else Text(printable(cell)) for cell in cells))


def status_text(status: str) -> Text:
    """A status in its colour; words after it (``accepted (dry run)``) keep that colour."""
    return Text(status, style=_STATUS_STYLE.get(status.partition(" ")[0], ""))


def show_plan(out: Console, rows: Iterable[Plan], at: datetime) -> None:
    """One tree per contact: what happens, when, and every reason; each printed as it comes."""
    out.print(Text(f"Plan at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (nothing is sent)", "bold"))
    for row in rows:
        label = Text.assemble((printable(row.contact_id), "bold"), "  ", status_text(row.status))
        if row.channel is not None:
            label.append(printable(f"  {row.channel} {row.address}"))
        if row.at is not None:
            label.append(
                f"  at {row.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                f" ({local_time(row.at, row.zone)}, {row.zone})"
            )
        tree = Tree(label)
        for reason in row.reasons:
            tree.add(Text(printable(reason)))
        out.print(tree)


def show_contacts(out: Console, contacts: Sequence[Contact], source: object) -> None:
    """A table of contacts as the library reads them: zone, ranked channels, points, quiet."""
    table = new_table(
        f"{len(contacts)} contacts in {source}", "id", "time zone", "channels", "points", "quiet"
    )
    for contact in contacts:
        prefs = contact.preferences
        points = []
        for point in contact.points:
            flags = [flag for flag in ("opted_out", "allow_sensitive") if getattr(point, flag)]
            points.append(point.describe() + (f" [{', '.join(flags)}]" if flags else ""))
        add_row(
            table,
            contact.id,
            contact.timezone or "-",
            " > ".join(prefs.channels) or "-",
            Text("\n".join(printable(point) for point in points) or "-"),
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


def show_summary(
    out: Console,
    dispatches: Iterable[Dispatch],
    errors: int,
    *,
    stored: Sequence[Dispatch] = (),
    key: str | None = None,
    dry_run: bool = False,
) -> None:
    """How many dispatches this run made ended in each status; then those it found stored.

    ``stored`` are the dispatches a repeated message ``key`` returned from the
    store: made by an earlier run, and not sent again by this one.
    """
    counts = Counter(dispatch.status.value for dispatch in dispatches)
    if errors:
        counts["error"] = errors
    if counts or not stored:
        _count_table(out, "Sent (dry run)" if dry_run else "Sent", counts)
    if stored:
        earlier = Counter(
            dispatch.status.value + (" (dry run)" if dispatch.dry_run else "")
            for dispatch in stored
        )
        # Titles wrap to the table's width, so the explanation is a line of its own.
        out.print(
            Text(
                printable(
                    f"Key {key!r} was used before for {len(stored)} of these contacts: "
                    "they were not sent to again. Where their dispatches stand:"
                )
            ),
            soft_wrap=True,
        )
        _count_table(out, "Already in the store", earlier)


def _count_table(out: Console, title: str, counts: Counter[str]) -> None:
    table = new_table(title, "status", "contacts")
    for status, count in sorted(counts.items()):
        add_row(table, status_text(status), str(count))
    add_row(table, Text("total", "bold"), Text(str(sum(counts.values())), "bold"))
    out.print(table)


def show_adapters(out: Console, published: Sequence[Published]) -> None:
    """A table of published adapters: ready, or what keeps each from being built."""
    table = new_table(
        "Adapters (entry-point group multichannel.adapters)", "name", "target", "channel", "status"
    )
    for item in published:
        if item.adapter is not None:
            # An entry point may build an adapter under a name of its own (name=...).
            name = item.name
            if item.adapter.name != item.name:
                name = f"{item.name} (as {item.adapter.name})"
            add_row(table, name, item.target, item.adapter.channel, Text("ready", "green"))
        else:
            problem = printable(item.problem or "unusable")
            add_row(table, item.name, item.target, "-", Text(problem, "red"))
    out.print(table)


def show_demo(out: Console, run: DemoRun) -> None:
    """The demo: who is in it, a timeline day by day, the traffic, and where each dispatch ended."""
    zones = {contact.id: contact_zone(run.strategy, contact) for contact in run.contacts}
    how = (
        "the Outbox"
        if run.providers == "outbox"
        else "the real adapters and SDKs, talking to stand-ins of the providers on 127.0.0.1"
    )
    out.print(
        Text(
            f"One message to {len(run.contacts)} people, from {run.start:%a %d %b %Y %H:%M} UTC "
            f"for {(run.end - run.start).days} days, on a manual clock through {how} "
            "(nothing leaves this machine).",
            "bold",
        )
    )
    if run.store is not None and run.restart_at is not None:
        out.print(
            Text(
                f"Dispatches are kept in {run.store}; at {run.restart_at:%a %H:%M} UTC this "
                "process stops and a new process carries on from what the store remembers."
            )
        )
    for note in run.notes:
        out.print(Text(printable(note)))
    people = new_table(
        "People",
        *("contact", "time zone", "channels", "quiet", "opted out"),
        no_wrap=("contact", "time zone"),
    )
    for contact in run.contacts:
        prefs = contact.preferences
        zone = contact.timezone or f"by number: {zones[contact.id]}"
        quiet = _quiet(contact)
        opted = [point.ref for point in contact.points if point.opted_out]
        add_row(
            people, contact.id, zone, " > ".join(prefs.channels), "; ".join(quiet), "; ".join(opted)
        )
    out.print(people)

    for day, entries in groupby(run.timeline, key=lambda entry: entry.at.date()):
        fixed = ("UTC", "contact", "their time")
        table = new_table(f"{day:%A %d %B %Y} (UTC)", *fixed, "what happened", no_wrap=fixed)
        for entry in entries:
            if entry.contact_id is None:
                line = Text(f"━━ {printable(entry.text)} ━━", "bold magenta")
                add_row(table, f"{entry.at:%H:%M}", "-", "-", line)
                continue
            said = printable(entry.text)
            what = Text(f"» {said}", "bold yellow") if entry.scripted else Text(said)
            their_time = local_time(entry.at, zones[entry.contact_id])
            add_row(table, f"{entry.at:%H:%M}", entry.contact_id, their_time, what)
        out.print(table)

    if run.traffic:
        _show_traffic(out, run)

    final = new_table(
        f"At the end ({run.end:%a %d %b %H:%M} UTC)", "contact", "status", "attempts", "next step"
    )
    for dispatch in run.dispatches:
        tried = " → ".join(
            f"{attempt.channel} {attempt.outcome.value}" for attempt in dispatch.attempts
        )
        after = dispatch.next_action_at
        add_row(
            final,
            dispatch.contact_id,
            status_text(dispatch.status.value),
            tried or "-",
            "-" if after is None else local_time(after, zones[dispatch.contact_id]),
        )
    out.print(final)


def _recipient(item: Received) -> str | None:
    """Who a request a stand-in received was for, in each provider's own field."""
    body = item.body
    found: object = None
    if item.provider == "twilio":
        found = body.get("To")
    elif item.provider == "telnyx":
        found = body.get("to")
    elif item.provider == "smtp":
        found = body.get("rcpt_to") or next(iter(body.get("rcpt_tos") or []), None)
    elif item.provider == "sendgrid":
        emails = [
            recipient.get("email")
            for personalization in body.get("personalizations") or []
            for recipient in personalization.get("to") or []
        ]
        found = emails[0] if emails else None
    return found if isinstance(found, str) else None


def _channel(item: Received) -> str:
    if item.provider == "twilio":
        return "voice" if item.path.endswith("/Calls.json") else "sms"
    return "fax" if item.provider == "telnyx" else "email"


def _show_traffic(out: Console, run: DemoRun) -> None:
    """Each request the stand-ins answered, beside the attempt that made it."""
    attempts: dict[tuple[str, str], tuple[str, datetime]] = {}
    for dispatch in run.dispatches:
        for attempt in dispatch.attempts:
            key = (attempt.channel, attempt.address.lower())
            attempts.setdefault(key, (dispatch.contact_id, attempt.at))
    table = new_table(
        f"Provider traffic: {len(run.traffic)} requests to the stand-ins on 127.0.0.1",
        *("UTC", "contact", "provider", "request", "status", "to"),
        no_wrap=("UTC", "contact", "provider", "status"),
    )
    for item in run.traffic:
        to = _recipient(item)
        contact_id, at = attempts.get((_channel(item), (to or "").lower()), ("-", None))
        ok = item.status < 400
        # An SMTP stand-in's path is the envelope sender; the command says more.
        request = {"RCPT": "RCPT TO", "DATA": "DATA"}.get(item.method, item.method)
        add_row(
            table,
            "-" if at is None else f"{at:%a %H:%M}",
            contact_id,
            item.provider,
            request if item.provider == "smtp" else f"{item.method} {item.path}",
            Text(str(item.status), "green" if ok else "red"),
            "-" if to is None else mask_address(to),
        )
    out.print(table)
