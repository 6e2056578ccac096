"""``syndicate partners``: how each partner stands, a signed test push, and enabling one that was disabled."""

from __future__ import annotations

import json
from typing import Any

import click

from syndicate import outbox
from syndicate.cli import Context, pass_context
from syndicate.config import Config, PartnerConfig
from syndicate.deliver.webhooks import PartnerError, redact
from syndicate.outbox import Channel
from syndicate.status import partner_rows
from syndicate.store import partners as partner_store


@click.group("partners")
def partners_group() -> None:
    """Partner sites that get each statement, update and retraction pushed to them."""


@partners_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, for scripts).")
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """Each partner: disabled or not, last success, failing since, its backlog, and how old a statement it takes."""
    app = ctx.app()
    with app.db.read() as conn:
        rows = partner_rows(conn, app.config)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        click.echo("no partners configured ([[partners]] in config.toml)")
    partners = {p.name: p for p in app.config.partners}
    for row in rows:
        click.echo(_line(app.config, partners[row["name"]], row))


def _line(config: Config, partner: PartnerConfig, row: dict[str, Any]) -> str:
    if row["disabled"]:
        health = f"DISABLED since {row['disabled_at']}: {row['disabled_reason']}"
    elif row["failing_since"]:
        health = f"failing since {row['failing_since']}: {row['last_error']}"
    else:
        health = "ok"
    success = row["last_success_at"] or "never"
    fields = (partner.name, redact(partner.url), f"{partner.license}/{partner.format}", health)
    max_age = f"max age {config.partner_max_age_days(partner)} d"
    return "\t".join((*fields, f"last success {success}", f"backlog {row['backlog']}", max_age))


@partners_group.command("test")
@click.argument("name")
@pass_context
def test_command(ctx: Context, name: str) -> None:
    """Send a signed test event to NAME now and show its reply (the outbox is not involved)."""
    app = ctx.app()
    partner = _partner(app.config, name)
    try:
        push, reply = app.webhook_sender.probe(partner)
    except PartnerError as exc:
        raise click.ClickException(str(exc)) from exc
    size = len(push.payload.body)
    click.echo(
        f"sent test event {push.webhook_id} to {redact(partner.url)} ({push.payload.content_type}, {size} bytes)"
    )
    click.echo(f"{partner.name} answered {reply.describe()} in {reply.seconds:.2f} s")
    if not reply.ok:
        raise click.ClickException(f"partner {partner.name} did not take the test event")


@partners_group.command("enable")
@click.argument("name")
@pass_context
def enable_command(ctx: Context, name: str) -> None:
    """Push to NAME again after it was disabled (it answered 410 Gone); its backlog goes at the next tick."""
    app = ctx.app()
    partner = _partner(app.config, name)
    with app.db.write() as conn:
        was_disabled = partner_store.enable(conn, partner.name)
        released = outbox.make_due(conn, Channel.WEBHOOK, partner.name, app.clock())
    state = "enabled" if was_disabled else "was not disabled"
    click.echo(f"{partner.name} {state}; {released} pending push(es) go at the next tick")


def _partner(config: Config, name: str) -> PartnerConfig:
    for partner in config.partners:
        if partner.name == name:
            return partner
    known = ", ".join(p.name for p in config.partners) or "none configured"
    raise click.BadParameter(f"no partner named {name!r} (known: {known})", param_hint="NAME")


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(partners_group)
