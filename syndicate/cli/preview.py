"""``syndicate preview``: the exact message a subscriber would get, through the same code that sends it."""

from __future__ import annotations

from pathlib import Path

import click

from syndicate.app import App
from syndicate.cli import Context, pass_context
from syndicate.errors import SyndicateError
from syndicate.plan.editions import edition_key
from syndicate.render.email import MessageTemplate
from syndicate.store import statements
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import InvalidSubscriber, normalise_email

SAMPLE_ADDRESS = "reader@example.org"


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
        data = preview(ctx.app(), statement_id, digest, to)
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data):,} bytes)", err=True)


def preview(app: App, statement_id: str, digest: str | None = None, to: str | None = None) -> bytes:
    """Render the statement's mail (or a digest holding it) and personalise it for ``to``, as the sender would."""
    now = app.clock()
    address = _address(to) if to else SAMPLE_ADDRESS
    with app.db.read() as conn:
        revision = statements.latest_revision(conn, statement_id) or statements.as_revision(conn, statement_id)
        subscriber = subscriber_store.by_email(conn, address)
    if revision is None:
        raise SyndicateError(f"no statement with id {statement_id!r} (run `syndicate build` after adding it)")
    if digest:
        rendered = app.email.digest(digest, revision.lang, [revision], f"preview:{statement_id}:{digest}", now)
    else:
        # The edition's own key: the message is the one its subscribers get, boundary and all.
        rendered = app.email.statement(revision, edition_key(revision, app.config.email.resend_updates), now)
    subscriber_id = subscriber.id if subscriber else 0
    template = MessageTemplate.from_bytes(rendered.message)
    return app.email_composer.personalise(template, "syndicate.preview", subscriber_id, address, now)


def preview_template(app: App, statement_id: str, address: str) -> tuple[MessageTemplate, int]:
    """The statement's mail as its edition would hold it, and the subscriber id its links are signed for."""
    now = app.clock()
    with app.db.read() as conn:
        revision = statements.latest_revision(conn, statement_id) or statements.as_revision(conn, statement_id)
        subscriber = subscriber_store.by_email(conn, address)
    if revision is None:
        raise SyndicateError(f"no statement with id {statement_id!r} (run `syndicate build` after adding it)")
    rendered = app.email.statement(revision, edition_key(revision, app.config.email.resend_updates), now)
    return MessageTemplate.from_bytes(rendered.message), subscriber.id if subscriber else 0


def _address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidSubscriber as exc:
        raise SyndicateError(f"--to: {exc}") from exc


def register(group: click.Group) -> None:
    """Add this command to ``group``."""
    group.add_command(preview_command)
