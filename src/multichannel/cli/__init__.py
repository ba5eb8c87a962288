"""The ``multichannel`` command, built on the public API only; nothing in the library imports it.

``app`` is the Typer application and ``main`` the console entry point. The
commands live in `commands` (plan, send, check, adapters), `ops` (db, worker,
status, review), `serve` and `demo`; `files` (with `csvfile`) reads contacts
and messages, `problems` words what is wrong with them, `inputs` reads a
command's files whole and reports on them, `render` and `render_ops` draw
tables, `sent` words what `send` did, and `report` gathers what `status` shows.
`common` holds the shared options, errors and the command classes; `plans`
streams `plan` through worker processes.

``app`` and ``main`` are loaded on first use, so that a worker process that
imports one module of this package (as `plan --jobs` does) does not load
every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multichannel import _lazy

if TYPE_CHECKING:
    from multichannel.cli.commands import app, main

__all__ = ["app", "main"]


__getattr__, __dir__ = _lazy(
    globals(), {"app": "multichannel.cli.commands", "main": "multichannel.cli.commands"}
)
