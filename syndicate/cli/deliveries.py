"""``syndicate deliveries``: what is owed, what failed, and the operator's decisions about them."""

from __future__ import annotations

import json

import click

from syndicate import outbox
from syndicate.cli import Context, pass_context
from syndicate.outbox import DeliveryState

STATES = click.Choice([s.value for s in DeliveryState])


@click.group("deliveries")
def deliveries_group() -> None:
    """Inspect the outbox and decide about failed or unknown deliveries."""


@deliveries_group.command("list")
@click.option("--state", type=STATES, help="Only deliveries in this state.")
@click.option("--channel", type=click.Choice(["email", "webhook"]), help="Only this channel.")
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
@click.option("--channel", type=click.Choice(["email", "webhook"]), help="Only this channel.")
@pass_context
def retry_command(ctx: Context, state: str, channel: str | None) -> None:
    """Try failed deliveries again (due now, attempts counted afresh)."""
    app = ctx.app()
    with app.db.write() as conn:
        count = outbox.requeue(conn, DeliveryState(state), app.clock(), channel)
    click.echo(f"{count} {state} deliveries will be tried again at the next tick")


@deliveries_group.command("resend-unknown")
@click.option("--channel", type=click.Choice(["email", "webhook"]), help="Only this channel.")
@pass_context
def resend_unknown_command(ctx: Context, channel: str | None) -> None:
    """Send again the deliveries whose fate is unknown (some recipients may get them twice)."""
    app = ctx.app()
    with app.db.write() as conn:
        count = outbox.requeue(conn, DeliveryState.UNKNOWN, app.clock(), channel)
    click.echo(f"{count} unknown deliveries will be sent again at the next tick")


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(deliveries_group)
