"""``syndicate serve``: the subscriber pages, the feeds, /healthz and /metrics under waitress."""

from __future__ import annotations

from pathlib import Path

import click

from syndicate.cli import Context, pass_context, serve_until_stopped
from syndicate.config import LoadContext, host_port
from syndicate.errors import ConfigError


def _bind(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return host_port("--bind", value, LoadContext(Path.cwd()))
    except ConfigError as exc:
        raise click.BadParameter(exc.reason) from exc


@click.command("serve")
@click.option("--bind", callback=_bind, help="host:port to listen on (default: web.bind; port 0 picks a free one).")
@pass_context
def serve_command(ctx: Context, bind: str | None) -> None:
    """Serve the web pages until SIGTERM or SIGINT: subscribe, confirm, unsubscribe, preferences,
    /feeds/, /healthz and /metrics.

    `syndicate run` serves them too (web.serve_in_run); use this to serve them apart.
    """
    from syndicate.web import create_app
    from syndicate.web.server import WebServer

    app = ctx.app()
    server = WebServer(create_app(app), bind or app.config.web.bind, threads=app.config.web.threads)
    serve_until_stopped(
        server.start, server.stop, lambda: f"serving on {server.url} (links in mail point to {app.config.web_base_url})"
    )


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(serve_command)
