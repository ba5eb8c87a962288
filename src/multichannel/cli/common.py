"""What the command's modules share: one-line errors, common options, stores and adapters."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from typer.core import TyperCommand, TyperGroup

from multichannel import (
    ConfigurationError,
    Dispatch,
    Dispatcher,
    FallbackStrategy,
    Outbox,
    Registry,
    SQLStore,
    Status,
)
from multichannel.cli.demo.script import as_adapter
from multichannel.cli.files import InputError, InputErrors, parse_duration
from multichannel.cli.render import printable

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "USAGE_ERROR",
    "Command",
    "DepthOpt",
    "Group",
    "JsonOpt",
    "OutboxOpt",
    "SendStore",
    "StoreOpt",
    "WorkerDispatcher",
    "ZoneOpt",
    "build_registry",
    "build_strategy",
    "duration",
    "existing_store",
    "fail",
    "fail_lines",
    "one_line",
    "open_store",
    "send_store",
    "shown_url",
    "user_errors",
]

USAGE_ERROR = 2
STORE_ENV = "MULTICHANNEL_STORE"
DEFAULT_STORE = "sqlite:///multichannel.db"

DepthOpt = Annotated[
    str,
    typer.Option("--depth", metavar="N|all", help="How many ranked choices to walk, or 'all'."),
]
ZoneOpt = Annotated[
    str,
    typer.Option(
        "--default-timezone",
        metavar="ZONE",
        help="IANA zone for contacts with no time zone and no phone number.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OutboxOpt = Annotated[
    bool,
    typer.Option("--outbox", help="Dry run: send through an in-memory outbox; nothing leaves."),
]
StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        metavar="URL",
        envvar=STORE_ENV,
        help="Database URL: sqlite:///PATH (embedded) or postgresql+psycopg://USER@HOST/DB.",
    ),
]


def _show_flags(params: list[Any]) -> list[Any]:
    # Typer's rich help prints a type beside every option, `<bool>` for a flag as well;
    # an empty metavar leaves a flag (--json, --sent/--not-sent, --help) to show as itself.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows its flags as options alone, without a ``<bool>`` type."""

    def get_params(self, ctx: Any) -> list[Any]:  # ctx: Typer's own click Context
        """The command's parameters and its --help option, flags marked to show bare."""
        return _show_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A group of commands whose help shows its flags (``--version``, ``--help``) alone."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters and its --help option, flags marked to show bare."""
        return _show_flags(super().get_params(ctx))


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_Opened = TypeVar("_Opened", bound=SQLStore)


def one_line(text: str) -> str:
    """``text`` as one line for stderr: no control characters, runs of spaces made one."""
    return " ".join(printable(text).split())


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with status 2."""
    fail_lines([message])


def fail_lines(messages: Sequence[str]) -> NoReturn:
    """Print each message as one ``error:`` line on stderr and exit with status 2."""
    for message in messages:
        typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a problem with what the user gave into lines on stderr and exit status 2.

    One problem is one line; `InputErrors` (every bad record of a file) is one line each.
    """
    try:
        yield
    except InputErrors as err:
        fail_lines(err.lines)
    except InputError as err:
        fail(str(err))
    except ConfigurationError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"the store failed: {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    # A driver error is wrapped by SQLAlchemy with the SQL and a link; the driver's own
    # first line is the part that says what went wrong.
    cause = getattr(err, "orig", None) or err
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def build_strategy(depth: str, default_timezone: str) -> FallbackStrategy:
    """The strategy for ``--depth`` and ``--default-timezone``; raises InputError."""
    if depth.strip().lower() == "all":
        walk: int | None = None
    else:
        try:
            walk = int(depth)
        except ValueError:
            raise InputError(f"--depth {depth!r} is not a number or 'all'") from None
        if walk < 1:
            raise InputError(f"--depth must be at least 1, or 'all'; got {walk}")
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--default-timezone {default_timezone!r} is not an IANA time zone "
            "such as 'America/Detroit'"
        ) from None
    return FallbackStrategy(depth=walk, default_timezone=default_timezone)


def duration(text: str, option: str) -> timedelta:
    """A positive duration such as ``2m``, ``90s`` or ``PT2M``; raises InputError."""
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise InputError(f"{option} {err}") from None
    if value <= timedelta(0):
        raise InputError(f"{option} must be longer than zero; got {text!r}")
    return value


def _unconfigured(problem: str) -> bool:
    """True when a provider's only problem is that its variables are not set at all."""
    _, _, clauses = problem.partition(": ")
    return all(clause.endswith("is not set") for clause in clauses.split("; "))


def build_registry(outbox: bool) -> Registry:
    """The outbox alone for a dry run, else every published adapter whose settings are set.

    A provider whose settings are present but wrong (a bad port, a missing SDK)
    is an error, not a provider quietly left out. Exits with status 2 when one
    is set up wrongly or none is configured.
    """
    if outbox:
        registry = Registry([as_adapter(Outbox(dry_run=True))])
    else:
        found = Registry.discover()
        for item in found:
            if item.problem is None or _unconfigured(item.problem):
                continue
            if item.broken:
                # Another package's broken plugin must not stop every send.
                message = f"warning: adapter {item.name} is left out: {item.problem}"
                typer.echo(" ".join(printable(message).split()), err=True)
                continue
            fail(f"adapter {item.name} is set up wrongly: {item.problem}")
        try:
            registry = Registry(item.adapter for item in found if item.adapter is not None)
        except ConfigurationError as err:
            fail(str(err))  # two published adapters under one name
    if not len(registry):
        fail(
            "no adapters are configured: set the environment variables of a provider "
            "(`multichannel adapters` shows what each one is missing), or pass --outbox "
            "for a dry run"
        )
    return registry


def shown_url(url: str) -> str:
    """``url`` as it may be printed: the password, if any, hidden, in the user part or the query."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return _PASSWORD.sub(r"\1***@", url)
    hidden = {
        key: "***" if key.lower() in _SECRET_QUERY_KEYS else value
        for key, value in parsed.query.items()
    }
    return parsed.set(query=hidden).render_as_string(hide_password=True)


# Query parameters that libpq and the drivers take as secrets.
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passfile", "sslkey"})


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise InputError(
            f"--store {shown_url(url)!r} is not a database URL such as "
            f"{DEFAULT_STORE} or postgresql+psycopg://user@host/db"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise InputError(
            f"--store {shown_url(url)!r}: no database is known by the scheme "
            f"{parsed.drivername!r}; use sqlite:///PATH or postgresql+psycopg://user@host/db"
        ) from None
    return parsed


class SendStore(SQLStore):
    """The SQL store as one `send` run uses it: it tells the dispatches it made from stored ones.

    A message key already used for a contact makes `create` return the dispatch
    an earlier run stored, which this run neither sends nor made. With
    ``dry_run`` each new dispatch is marked `Dispatch.dry_run` in the very write
    that creates it, so that a worker with real adapters that claims it before
    its first step still never sends it.
    """

    def __init__(self, url: str, *, dry_run: bool) -> None:
        super().__init__(url, migrate=False)
        self.dry_run = dry_run
        self.made: set[str] = set()
        self._made_lock = threading.Lock()

    def create_many(self, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
        """Store new dispatches (`create` comes here too), noting which this run made."""
        chosen = [
            dispatch.model_copy(update={"dry_run": True}) if self.dry_run else dispatch
            for dispatch in dispatches
        ]
        stored = super().create_many(chosen)
        with self._made_lock:
            self.made.update(
                found.id
                for found, given in zip(stored, chosen, strict=True)
                if found.id == given.id
            )
        return stored


class WorkerDispatcher(Dispatcher):
    """A dispatcher that counts the dry-run dispatches it cancels instead of sending them."""

    cancelled_dry_runs = 0

    def advance(self, dispatch: Dispatch) -> Dispatch:
        """Perform the next step of ``dispatch``, as `Dispatcher.advance` does."""
        was_live = not dispatch.status.is_final
        settled = super().advance(dispatch)
        if (
            was_live
            and settled.dry_run
            and settled.status is Status.CANCELLED
            and self.registry.sends_for_real
        ):
            self.cancelled_dry_runs += 1
        return settled


def open_store(url: str, *, create: bool, migrate: bool) -> SQLStore:
    """The SQL store at ``url``; with ``migrate`` its schema is brought up to date.

    Without ``create`` a SQLite file must already exist, so that a mistyped
    path is an error rather than a new empty store. Raises InputError for a bad
    URL or a database that cannot be reached.
    """
    return _open(url, create=create, migrate=migrate, build=lambda at: SQLStore(at, migrate=False))


def send_store(url: str, *, dry_run: bool) -> SendStore:
    """The `SendStore` at ``url``, created and migrated as needed; raises InputError."""
    return _open(url, create=True, migrate=True, build=lambda at: SendStore(at, dry_run=dry_run))


def _open(url: str, *, create: bool, migrate: bool, build: Callable[[str], _Opened]) -> _Opened:
    parsed = _parse(url)
    shown = shown_url(parsed.render_as_string(hide_password=False))
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:":
        if not create and not Path(path).is_file():
            raise InputError(
                f"there is no store at {path}: nothing was sent with --store {shown} "
                f"(give the store's URL with --store or {STORE_ENV})"
            )
        if create and not Path(path).parent.is_dir():
            raise InputError(
                f"cannot create the store {path}: the folder {Path(path).parent} does not exist"
            )
    try:
        store = build(parsed.render_as_string(hide_password=False))
    except ConfigurationError as err:
        raise InputError(f"--store {shown}: {err}") from None
    try:
        if migrate:
            store.upgrade()
        else:
            store.version()
    except SQLAlchemyError as err:
        store.close()
        raise InputError(f"cannot open the store {shown}: {_first_line(err)}") from None
    return store


def existing_store(url: str) -> SQLStore:
    """The SQL store at ``url``, which the library must have used already; raises InputError."""
    store = open_store(url, create=False, migrate=False)
    if store.version() == 0:
        store.close()
        shown = shown_url(url)
        raise InputError(
            f"{shown} holds no multichannel tables, so nothing was sent through it "
            f"(`multichannel db upgrade --store {shown}` creates them)"
        )
    return store
