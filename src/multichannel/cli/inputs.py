"""The files `plan`, `send` and `check` are given, read whole, and what they show about them.

Every bad record is reported (the first 20, then how many), with the
message file's problem if it has one, so that one run shows everything to
fix. Rows passed over are counted on stderr, so that nothing a file holds
goes missing without a word; stdout stays for the command's own output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer

from multichannel import Message, Registry
from multichannel.cli.common import one_line
from multichannel.cli.csvfile import BUILT_IN_CHANNELS
from multichannel.cli.files import ContactsFile, load_message, read_contacts
from multichannel.cli.problems import (
    InputError,
    InputErrors,
    Problem,
    count_line,
    problem_lines,
    skipped_line,
)

__all__ = ["Inputs", "adapter_channels", "gather", "preference_warnings", "read_inputs"]


@dataclass
class Inputs:
    """A command's files as read: the contacts file (None if unreadable), the message, errors."""

    contacts: ContactsFile | None
    message: Message | None
    errors: list[str] = field(default_factory=list)


def gather(contacts: Path, message: Path | None, *, outcome: str = "") -> Inputs:
    """Read the contacts file whole and the message file; note on stderr what was skipped.

    Nothing is raised for a problem with either file: each is one line of
    ``errors``, every bad record included, then how many records are bad, with
    ``outcome`` (``nothing was sent``) when there are several.
    """
    found = Inputs(None, None)
    count = None
    try:
        found.contacts = read_contacts(contacts)
    except InputError as err:
        found.errors.append(str(err))
    else:
        skipped = skipped_line(found.contacts.source, found.contacts.skipped)
        if skipped is not None:
            typer.echo(f"note: {one_line(skipped)}", err=True)
        problems = found.contacts.problems
        found.errors += problem_lines(problems)
        count = count_line(problems, records=found.contacts.records, outcome=outcome)
    if message is not None:
        try:
            found.message = load_message(message)
        except InputError as err:
            found.errors.append(str(err))
    if count is not None:
        found.errors.append(count)
    return found


def read_inputs(
    contacts: Path, message: Path, *, outcome: str = ""
) -> tuple[ContactsFile, Message]:
    """The contacts file and the message, when both are good; see `gather`.

    Raises InputErrors listing every problem found in either.
    """
    found = gather(contacts, message, outcome=outcome)
    if found.errors or found.contacts is None or found.message is None:
        raise InputErrors(found.errors)
    return found.contacts, found.message


def adapter_channels() -> frozenset[str]:
    """The channels of the adapters published under the entry points and configured here."""
    return frozenset(
        item.adapter.channel for item in Registry.discover() if item.adapter is not None
    )


def preference_warnings(
    contacts: ContactsFile, known: Callable[[], frozenset[str]] = adapter_channels
) -> list[Problem]:
    """Ranked channels that can never be tried: no point of the contact, or no adapter.

    A channel counts as served when it is built in (email, sms, voice, fax) or
    an adapter in ``known()`` sends on it (``"*"``: on every channel);
    ``known`` is asked only when a channel is not built in.
    """
    served: frozenset[str] | None = None
    found = []
    for record in contacts.read:
        contact = record.contact
        for index, entry in enumerate(contact.preferences.entries):
            reasons = []
            if entry.channel not in BUILT_IN_CHANNELS:
                if served is None:
                    served = known()
                if entry.channel not in served and "*" not in served:
                    reasons.append(
                        f"no adapter sends on channel {entry.channel!r}: it is not built in and "
                        "no configured adapter serves it (see `multichannel adapters`), so "
                        "`send` skips it"
                    )
            if not any(contact.points_for(entry)):
                reasons.append(
                    f"{str(entry)!r} names no point of this contact, so it is never tried"
                )
            where = "channels" if contacts.kind == "csv" else f"preferences.channels[{index}]"
            found += [
                Problem(contacts.source, record.number, record.line, contact.id, where, reason)
                for reason in reasons
            ]
    return found
