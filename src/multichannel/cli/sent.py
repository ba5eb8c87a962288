"""What `send` says when the sends are done: a JSON row per contact, errors, key notes."""

from __future__ import annotations

from pathlib import Path

from multichannel import BatchResult, Dispatch, Message
from multichannel.cli.render import printable

__all__ = ["error_lines", "key_lines", "send_json"]


def send_json(result: BatchResult, made: set[str] | None) -> dict[str, object]:
    """The row of ``send --json`` for one contact; ``made`` is what this run stored, if any."""
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
        "existing": dispatch is not None and made is not None and dispatch.id not in made,
        "dry_run": dispatch is not None and dispatch.dry_run,
    }


def error_lines(failed: list[BatchResult]) -> list[str]:
    """One line per distinct error, naming a few of the contacts it stopped."""
    by_error: dict[str, list[str]] = {}
    for result in failed:
        by_error.setdefault(f"{type(result.error).__name__}: {result.error}", []).append(
            repr(result.contact.id)
        )
    lines = []
    for error, ids in by_error.items():
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        lines.append(printable(f"error: {_contacts(len(ids))} ({shown}): {error}"))
    return lines


def _contacts(count: int) -> str:
    return f"{count} contact{'s' * (count != 1)}"


def key_lines(
    message: Message,
    message_file: Path,
    *,
    stored: list[Dispatch],
    made: int,
    outbox: bool,
    as_json: bool,
) -> list[str]:
    """What a store makes of the message's key: a repeat's dispatches, or none to find them by."""
    if message.key is None:
        if outbox:
            return []  # a repeated dry run only adds dispatches that are never sent
        return [
            f"warning: {message_file} has no key, so running this send again creates new "
            "dispatches and sends the message again; add a line such as `key: NAME` to "
            f"{message_file} to have a repeat find the dispatches already in the store"
        ]
    key = repr(message.key)
    lines = []
    if stored and as_json:  # the text summary says so itself
        lines.append(
            f"note: {_contacts(len(stored))} already had a dispatch under key {key} from an "
            "earlier run, so they were not sent to again; give the message a new key to send it "
            "again"
        )
    dry = sum(1 for dispatch in stored if dispatch.dry_run)
    if dry and not outbox:
        lines.append(
            f"warning: {_contacts(dry)} got nothing: their dispatch under key {key} is a dry run "
            "(made with --outbox), which is never sent through real providers; give the message "
            "a new key to send it for real"
        )
    if made and outbox:
        lines.append(
            f"note: these dry-run dispatches hold key {key} in the store, so a real send with the "
            "same key sends nothing to these contacts; change the key for the real run"
        )
    return lines
