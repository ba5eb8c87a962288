"""How the operations commands show things: a store's status and a settled review."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from rich.console import Console
from rich.text import Text

from multichannel import Decision, Dispatch, Status
from multichannel.cli.render import add_row, new_table, printable, status_text
from multichannel.cli.report import StoreStatus

__all__ = ["show_review", "show_status"]


def show_status(out: Console, report: StoreStatus, store_option: str) -> None:
    """Counts by status, then who was not reached, then what waits for a person to review."""
    out.print(Text(printable(f"Dispatches in {report.store}"), "bold"))
    counts = new_table("By status", "status", "dispatches")
    for status, count in report.counts.items():
        add_row(counts, status_text(status), str(count))
    add_row(counts, Text("total", "bold"), Text(str(report.total), "bold"))
    out.print(counts)
    if report.next_due is not None:
        out.print(
            Text(
                f"Next step due at {report.next_due.astimezone(UTC):%Y-%m-%d %H:%M} UTC; "
                f"a worker performs it (multichannel worker{store_option})."
            ),
            soft_wrap=True,
        )
    if report.dry_runs:
        _show_dry_runs(out, report, store_option)

    if report.not_reached:
        missed = new_table(
            f"Not reached ({len(report.not_reached)}): the contacts who fell through the cracks",
            *("contact", "status", "tried", "why", "dispatch"),
            no_wrap=("contact", "status", "dispatch"),
        )
        for item in report.not_reached:
            why = item.reason + (f" (last error: {item.error})" if item.error else "")
            add_row(
                missed,
                item.contact_id,
                status_text(item.status + (" (dry run)" if item.dry_run else "")),
                " → ".join(item.tried) or "-",
                why,
                item.dispatch_id,
            )
        out.print(missed)
    else:
        out.print(Text("Not reached: nobody."))

    if not report.review:
        out.print(Text("Held for review: none."))
        return
    held = new_table(
        f"Held for review ({len(report.review)})",
        *("dispatch", "contact", "send", "since"),
        no_wrap=("dispatch", "contact"),
    )
    for entry in report.review:
        via = f" via {entry.provider}" if entry.provider else ""
        since = f"{entry.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        add_row(
            held,
            entry.dispatch_id,
            entry.contact_id,
            f"{entry.channel} {entry.address}{via}" + (" (dry run)" if entry.dry_run else ""),
            since,
        )
    out.print(held)
    # Soft-wrapped, so that the commands stay whole for copying in a narrow terminal.
    out.print(
        Text(
            "Each of these sends was cut short while the provider was being called, so nobody "
            "knows whether it went out. Check with the provider, then settle each one:\n"
            "  it went out (carry on, waiting for an answer if one is expected):\n"
            f"    multichannel review DISPATCH_ID --sent{store_option}\n"
            "  it did not (send it again):\n"
            f"    multichannel review DISPATCH_ID --not-sent{store_option}"
        ),
        soft_wrap=True,
    )


def _show_dry_runs(out: Console, report: StoreStatus, store_option: str) -> None:
    counts = ", ".join(f"{status} {count}" for status, count in report.dry_run_counts.items())
    waiting = sum(
        count for status, count in report.dry_run_counts.items() if not Status(status).is_final
    )
    said = (
        f"Dry runs: {report.dry_runs} of these dispatches were made through dry-run adapters "
        f"only (send --outbox) and are never sent through real providers ({counts})."
    )
    if waiting:
        has, it = ("has", "it") if waiting == 1 else ("have", "them")
        said += (
            f" {waiting} still {has} a later step: multichannel worker --outbox{store_option} "
            f"takes {it} as a dry run, and a worker with real adapters cancels {it} unsent."
        )
    out.print(Text(said), soft_wrap=True)


def show_review(out: Console, dispatch: Dispatch, new: Sequence[Decision]) -> None:
    """What settling a review did: the dispatch's new status and the steps it took."""
    out.print(
        Text.assemble(
            printable(f"dispatch {dispatch.id} ({dispatch.contact_id}): "),
            status_text(dispatch.status.value + (" (dry run)" if dispatch.dry_run else "")),
        )
    )
    for decision in new:
        at = f"{decision.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        out.print(Text(f"  {at}  {printable(decision.reason)}"))
