"""``multichannel serve``: the webhook app under uvicorn, with secrets from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr

from multichannel import Clock, Dispatcher, Registry, SQLStore
from multichannel.cli.common import (
    DEFAULT_STORE,
    DepthOpt,
    OutboxOpt,
    StoreOpt,
    ZoneOpt,
    build_registry,
    build_strategy,
    fail,
    open_store,
    shown_url,
    user_errors,
)
from multichannel.cli.files import InputError

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

__all__ = [
    "HEALTH_PATH",
    "PROVIDERS",
    "WebhookApp",
    "byte_size",
    "serve",
    "uvicorn_server",
    "webhook_app",
]

_INSTALL = "serve needs Starlette and uvicorn: pip install 'multichannel[webhooks]'"
HEALTH_PATH = "/healthz"
_SIZE = re.compile(r"(\d+)\s*(B|KIB|MIB)?")
_UNITS = {None: 1, "B": 1, "KIB": 1024, "MIB": 1024 * 1024}


@dataclass(frozen=True)
class _Provider:
    name: str
    variable: str
    routes: tuple[str, ...]


PROVIDERS = (
    _Provider(
        "twilio", "TWILIO_AUTH_TOKEN", ("/twilio/status", "/twilio/inbound", "/twilio/calls")
    ),
    _Provider("sendgrid", "SENDGRID_WEBHOOK_PUBLIC_KEY", ("/sendgrid/events",)),
    _Provider("telnyx", "TELNYX_PUBLIC_KEY", ("/telnyx/fax",)),
)


@dataclass(frozen=True)
class WebhookApp:
    """The app ``serve`` runs, the dispatcher behind it, and which routes are live."""

    app: Starlette
    dispatcher: Dispatcher
    store: SQLStore
    live: tuple[str, ...]
    dark: tuple[tuple[str, str], ...]


def webhook_app(
    *,
    registry: Registry,
    store: str,
    environ: Mapping[str, str],
    public_url: str | None = None,
    trust_forwarded: bool = False,
    clock: Clock | None = None,
    depth: str = "2",
    default_timezone: str = "UTC",
    max_body: int = 1024 * 1024,
) -> WebhookApp:
    """Build the webhook app on the store at ``store`` with the secrets found in ``environ``.

    A provider whose variable is unset or empty has its routes answer 404;
    ``GET /healthz`` answers whether the store does. A body longer than
    ``max_body`` bytes is refused with 413.
    Raises InputError for a bad store, a bad option or no secret at all, and
    ConfigurationError for a secret or key the app cannot use.
    """
    try:
        from multichannel.webhooks import create_app
    except ImportError:  # pragma: no cover - the package itself imports without Starlette
        raise InputError(_INSTALL) from None
    secrets = {p.name: environ.get(p.variable, "").strip() or None for p in PROVIDERS}
    if not any(secrets.values()):
        raise InputError(
            "no webhook secret is set: set "
            + ", ".join(p.variable for p in PROVIDERS[:-1])
            + f" or {PROVIDERS[-1].variable}"
        )
    strategy = build_strategy(depth, default_timezone)
    sql = open_store(store, create=True, migrate=True)
    dispatcher = Dispatcher(adapters=registry, strategy=strategy, clock=clock, store=sql)
    token = secrets["twilio"]
    try:
        app = create_app(
            dispatcher,
            twilio_auth_token=None if token is None else SecretStr(token),
            sendgrid_public_key=secrets["sendgrid"],
            telnyx_public_key=secrets["telnyx"],
            public_url=public_url,
            trust_forwarded=trust_forwarded,
            max_body=max_body,
            health_path=HEALTH_PATH,
        )
    except BaseException:
        sql.close()
        raise
    live = tuple(route for p in PROVIDERS if secrets[p.name] for route in p.routes)
    dark = tuple(
        (route, p.variable) for p in PROVIDERS if not secrets[p.name] for route in p.routes
    )
    return WebhookApp(app=app, dispatcher=dispatcher, store=sql, live=live, dark=dark)


def byte_size(text: str) -> int:
    """``text`` as a number of bytes: ``65536``, ``512KiB`` or ``1MiB``; InputError if not."""
    found = _SIZE.fullmatch(text.strip().upper())
    if found is None or int(found[1]) < 1:
        raise InputError(f"--max-body must be a size such as 1MiB, 512KiB or 65536; got {text!r}")
    return int(found[1]) * _UNITS[found[2]]


def uvicorn_server(
    app: Starlette, *, host: str, port: int, trust_forwarded: bool
) -> uvicorn.Server:
    """A uvicorn server for ``app``; forwarded headers are read only when trusted."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=trust_forwarded,
        server_header=False,
        log_level="info",
    )
    return uvicorn.Server(config)


def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8000,
    store: StoreOpt = DEFAULT_STORE,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The public address providers call, behind a proxy: https://example.com/hooks.",
            show_default=False,
        ),
    ] = None,
    trust_forwarded: Annotated[
        bool,
        typer.Option(
            "--trust-forwarded",
            help="Read Forwarded and X-Forwarded-Proto, -Host and -Port from a proxy you run.",
        ),
    ] = False,
    max_body: Annotated[
        str,
        typer.Option(
            "--max-body", metavar="SIZE", help="Refuse longer bodies with 413: 1MiB, 512KiB."
        ),
    ] = "1MiB",
    outbox: OutboxOpt = False,
    depth: DepthOpt = "2",
    default_timezone: ZoneOpt = "UTC",
) -> None:
    """Receive provider callbacks (status, bounces, replies, STOP) and apply them to the store.

    Secrets come from TWILIO_AUTH_TOKEN, SENDGRID_WEBHOOK_PUBLIC_KEY and
    TELNYX_PUBLIC_KEY; a provider without its secret has its routes answer 404.
    GET /healthz answers 200 while the store does, for a load balancer's probe.
    A bounce falls back at once, so the adapters must be configured (or --outbox).
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail(_INSTALL)
    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535; got {port}")
    registry = build_registry(outbox)
    with user_errors():
        limit = byte_size(max_body)
        built = webhook_app(
            registry=registry,
            store=store,
            environ=os.environ,
            public_url=public_url,
            trust_forwarded=trust_forwarded,
            depth=depth,
            default_timezone=default_timezone,
            max_body=limit,
        )
    echo = typer.echo
    echo(f"webhooks for {shown_url(store)} on http://{host}:{port}", err=True)
    for route in built.live:
        echo(f"  live  POST {route}", err=True)
    for route, variable in built.dark:
        echo(f"  404   POST {route} (set {variable})", err=True)
    echo(f"  probe GET  {HEALTH_PATH}", err=True)
    try:
        uvicorn_server(built.app, host=host, port=port, trust_forwarded=trust_forwarded).run()
    finally:
        built.store.close()
