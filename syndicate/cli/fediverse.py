"""``syndicate fediverse``: the organisation's actor on Mastodon and its peers."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from syndicate.activitypub import keys
from syndicate.cli import Context, pass_context
from syndicate.render import activitypub as documents
from syndicate.store import admin as admin_store
from syndicate.store import fediverse as fediverse_store


@click.group("fediverse")
def fediverse_group() -> None:
    """The actor followers on Mastodon and its peers find as @username@host ([fediverse])."""


@fediverse_group.command("status")
@pass_context
def status_command(ctx: Context) -> None:
    """Whether the actor is on, how to follow it, and its key."""
    config = ctx.config
    settings = config.fediverse
    click.echo(f"fediverse: {'enabled' if settings.enabled else 'disabled ([fediverse] enabled = false)'}")
    click.echo(f"handle:    @{documents.handle(config)}")
    click.echo(f"actor:     {documents.urls(config).actor}")
    click.echo(
        f"licence:   {settings.license}"
        + (f" ({settings.excerpt_words} words)" if settings.license == "excerpt" else "")
    )
    app = ctx.app(read_only=True)
    with app.db.read() as conn:
        key = fediverse_store.current_key(conn)
        made = fediverse_store.key_count(conn)
    if key is None:
        click.echo("key:       none yet (made when the actor is first fetched)")
    else:
        click.echo(f"key:       made {key.created_at.isoformat(timespec='seconds')} ({made} made in all)")


@fediverse_group.command("rotate-key")
@pass_context
def rotate_key_command(ctx: Context) -> None:
    """Replace the actor's key pair; receivers fetch the actor again when a signature no longer verifies."""
    app = ctx.app()
    now = datetime.now(UTC)
    key = keys.rotate(app.db, now)
    with app.db.write() as conn:
        admin_store.audit(conn, "cli", "rotate actor key", f"key {key.id}", "cli", now)
    click.echo(f"a new key pair is in use (key {key.id}); the actor document carries its public key")


def register(main: click.Group) -> None:
    """Add these commands to ``main``."""
    main.add_command(fediverse_group)
