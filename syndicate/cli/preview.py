"""``syndicate preview``: the exact message a subscriber would get, through the same code that sends it."""

from __future__ import annotations

from pathlib import Path

import click

from syndicate.cli import Context, pass_context
from syndicate.console import samples
from syndicate.errors import SyndicateError


@click.command("preview")
@click.argument("statement_id")
@click.option(
    "--digest", type=click.Choice(["daily", "weekly"]), help="Show the digest holding this statement instead."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the message here (default: standard output)."
)
@click.option("--to", "to", help="Personalise for this subscriber's address (default: a sample reader).")
@pass_context
def preview_command(ctx: Context, statement_id: str, digest: str | None, out: Path | None, to: str | None) -> None:
    """Write the exact message a subscriber would get for STATEMENT_ID (an .eml file)."""
    try:
        data = samples.preview(ctx.app(), statement_id, digest, to)
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data):,} bytes)", err=True)


def register(group: click.Group) -> None:
    """Add this command to ``group``."""
    group.add_command(preview_command)
