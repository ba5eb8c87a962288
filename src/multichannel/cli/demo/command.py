"""``multichannel demo``: the scripted scenario, in memory or across a process restart.

It plays through the Outbox or through the real adapters against local stand-ins.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from multichannel import ConfigurationError
from multichannel.cli.common import fail, open_store, shown_url, user_errors
from multichannel.cli.demo.local import local_standins, run_local_demo
from multichannel.cli.demo.restart import DemoError, run_restart_demo
from multichannel.cli.demo.script import DemoRun, run_demo
from multichannel.cli.files import InputError
from multichannel.cli.render import console, show_demo

__all__ = ["demo"]


def demo(
    providers: Annotated[
        str,
        typer.Option(
            "--providers",
            metavar="outbox|local",
            help="outbox: an in-memory Outbox. local: the real adapters and SDKs against "
            "stand-ins of Twilio, SendGrid, Telnyx and an SMTP server on 127.0.0.1.",
        ),
    ] = "outbox",
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="Keep the dispatches in this new database (sqlite:///PATH) and restart on "
            "the first night: a new process carries on from what the store remembers.",
            show_default=False,
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="As --store, with a temporary SQLite file.")
    ] = False,
) -> None:
    """Play a scripted three-day scenario for five people on a manual clock; nothing leaves."""
    if providers not in ("outbox", "local"):
        fail(f"--providers must be 'outbox' or 'local'; got {providers!r}")
    local = providers == "local"
    try:
        with user_errors():
            if store is not None:
                run = _restarted(store, local=local)
            elif restart:
                with tempfile.TemporaryDirectory(prefix="multichannel-demo-") as folder:
                    run = _restarted(f"sqlite:///{Path(folder) / 'demo.db'}", local=local)
            else:
                run = _run_local() if local else run_demo()
    except (DemoError, OSError) as err:
        fail(f"the demo could not run: {err}")
    show_demo(console(), run)


def _run_local() -> DemoRun:
    try:
        return run_local_demo()
    except ConfigurationError as err:
        if "pip install" not in str(err):
            raise
        raise ConfigurationError(
            f"{err}; --providers local needs every provider SDK: "
            "pip install 'multichannel[all]' (make test installs them into .venv)"
        ) from None


def _restarted(url: str, *, local: bool) -> DemoRun:
    """The demo on a new store at ``url``, across a process restart; raises InputError."""
    fresh = open_store(url, create=True, migrate=True)
    try:
        if next(fresh.dispatches(), None) is not None:
            raise InputError(
                f"the demo needs a store of its own, and {shown_url(url)} already holds "
                "dispatches; give a new file, or delete this one"
            )
    finally:
        fresh.close()
    if not local:
        return run_restart_demo(url)
    with local_standins() as (standins, endpoints, notes):
        run = run_restart_demo(url, endpoints=endpoints)
        traffic = standins.received
    return replace(run, traffic=tuple(traffic), notes=notes)
