"""The ``syndicate`` command: a thin layer over the pipeline; errors become one clear line."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from syndicate import __version__
from syndicate.app import App, build_app
from syndicate.config import Config, load
from syndicate.errors import SyndicateError
from syndicate.store.db import unusable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class Context:
    """What every command shares: where the config is, and the app once built."""

    config_path: Path
    quiet: bool = False
    _config: Config | None = None
    _app: App | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        """The checked configuration (loaded once)."""
        if self._config is None:
            try:
                self._config = load(self.config_path)
            except SyndicateError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._config

    def app(self, *, read_only: bool = False) -> App:
        """The wired pipeline (built once; the database is upgraded if needed).

        ``read_only`` for commands that only look: nothing in the database is
        written, not even its schema version.
        """
        if self._app is None:
            try:
                self._app = build_app(self.config, read_only=read_only)
            except SyndicateError as exc:
                raise click.ClickException(str(exc)) from exc
            click.get_current_context().call_on_close(self._app.close)
        return self._app

    def database_failure(self, exc: SQLAlchemyError) -> str:
        """The one line a database that cannot be reached or written is reported as."""
        key = "database.url_env" if self.config.database.url_env else "database.url"
        return unusable(key, self.config.database_url(), exc)


class Main(click.Group):
    """The command group; a database that fails under any command is one line naming its setting."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            if not isinstance(ctx.obj, Context):
                raise
            raise click.ClickException(ctx.obj.database_failure(exc)) from exc


pass_context = click.make_pass_decorator(Context)


def serve_until_stopped(start: Callable[[], None], stop: Callable[[], None], banner: Callable[[], str]) -> None:
    """Start a server, say where it listens (on stderr), and run until SIGTERM or SIGINT; then stop it.

    A server that cannot start (its address taken) is one line, as every error.
    """
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        start()
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(banner(), err=True)
    stopping.wait()
    stop()


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="config.toml",
    show_default=True,
    envvar="SYNDICATE_CONFIG",
    help="Configuration file (env SYNDICATE_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Log only errors.")
@click.version_option(__version__, prog_name="syndicate")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int, quiet: bool) -> None:
    """Publish an organisation's statements as feeds, newsletters and partner pushes.

    Statements are files in statements/ (Markdown or HTML with front matter).
    `syndicate once` runs one full tick; `syndicate run` keeps running it.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format=LOG_FORMAT)
    ctx.obj = Context(config_path, quiet)


def _register() -> None:
    from syndicate.cli import admin, core, deliveries, fediverse, inbound, mail, partners, preview, subscribers, web

    for module in (core, subscribers, deliveries, preview, mail, partners, web, inbound, admin, fediverse):
        module.register(main)


_register()
