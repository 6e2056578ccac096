"""``syndicate deliveries``: what is owed, what failed, and the operator's decisions about them."""

from __future__ import annotations

import json
from datetime import datetime

import click

from syndicate import outbox
from syndicate.cli import Context, pass_context
from syndicate.outbox import Channel, DeliveryState
from syndicate.plan import events

STATES = click.Choice([s.value for s in DeliveryState])
CHANNELS = click.Choice([c.value for c in Channel])


@click.group("deliveries")
def deliveries_group() -> None:
    """Inspect the outbox and decide about failed or unknown deliveries."""


@deliveries_group.command("list")
@click.option("--state", type=STATES, help="Only deliveries in this state.")
@click.option("--channel", type=CHANNELS, help="Only this channel.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, for scripts).")
@pass_context
def list_command(ctx: Context, state: str | None, channel: str | None, limit: int, as_json: bool) -> None:
    """List deliveries, newest first, with the last reply for each."""
    app = ctx.app()
    with app.db.read() as conn:
        rows = outbox.listing(conn, state, channel, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for r in rows:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        source = f"{r['source_kind']}:{r['source_id']}"
        fields = (r["id"], r["channel"], source, r["target"], r["state"], f"{r['attempts']} attempt(s){error}")
        click.echo("\t".join(map(str, fields)))


@deliveries_group.command("retry")
@click.option(
    "--state",
    type=click.Choice(["failed", "cancelled"]),
    default="failed",
    show_default=True,
    help="Which deliveries to try again.",
)
@click.option("--channel", type=CHANNELS, help="Only this channel.")
@pass_context
def retry_command(ctx: Context, state: str, channel: str | None) -> None:
    """Try failed deliveries again (due now, attempts counted afresh)."""
    app = ctx.app()
    with app.db.write() as conn:
        count = outbox.requeue(conn, DeliveryState(state), app.clock(), channel)
    click.echo(f"{count} {state} deliveries will be tried again at the next tick")


@deliveries_group.command("resend-unknown")
@click.option("--channel", type=CHANNELS, help="Only this channel.")
@pass_context
def resend_unknown_command(ctx: Context, channel: str | None) -> None:
    """Send again the deliveries whose fate is unknown (some recipients may get them twice)."""
    app = ctx.app()
    with app.db.write() as conn:
        count = outbox.requeue(conn, DeliveryState.UNKNOWN, app.clock(), channel)
    click.echo(f"{count} unknown deliveries will be sent again at the next tick")


@deliveries_group.command("replay")
@click.option("--partner", "partner", required=True, help="The partner (name in [[partners]]) that lost events.")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Replay what was sent to it from this date or time on (site.timezone).",
)
@pass_context
def replay_command(ctx: Context, partner: str, since: datetime) -> None:
    """Push again, as new deliveries, what PARTNER was sent since a date (for a partner that lost it)."""
    app = ctx.app()
    if partner not in {p.name for p in app.config.partners}:
        raise click.BadParameter(f"no partner named {partner!r} in the configuration", param_hint="--partner")
    with app.db.write() as conn:
        count = events.replay(conn, partner, since.replace(tzinfo=app.config.site.tz), app.clock())
    click.echo(f"{count} event(s) will be pushed to {partner} again, as new deliveries, at the next tick")


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(deliveries_group)
