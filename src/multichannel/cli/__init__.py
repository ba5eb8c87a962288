"""The ``multichannel`` command, built on the public API only; nothing in the library imports it.

``app`` is the Typer application and ``main`` the console entry point. The
commands live in `app` (plan, send, check, adapters), `ops` (db, worker,
status, review), `serve` and `demo`; `files` reads contacts and messages,
`render` and `render_ops` draw tables, and `report` gathers what `status` shows.
"""

from multichannel.cli.app import app, main

__all__ = ["app", "main"]
