"""Mail commands for the operator: ``syndicate dkim dns`` (the records to publish) and ``send-test``."""

from __future__ import annotations

import click

from syndicate.cli import Context, pass_context
from syndicate.console import samples
from syndicate.deliver.email.dkim import keys_of, zone_line
from syndicate.errors import SyndicateError


@click.group("dkim")
def dkim_group() -> None:
    """DKIM signing of newsletters ([email.dkim])."""


@dkim_group.command("dns")
@pass_context
def dns_command(ctx: Context) -> None:
    """Print the DNS TXT record to publish for each DKIM selector, as zone-file lines.

    Receivers find each public key at <selector>._domainkey.<domain>; until the
    record is published there, signed mail fails verification.
    """
    settings = ctx.config.email.dkim
    if not settings.enabled:
        raise click.ClickException("DKIM is not configured: set selector, domain and key_file in [email.dkim]")
    try:
        keys = keys_of(settings)
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc
    for key in keys:
        click.echo(f"; {key.algorithm}, selector {key.selector}")
        click.echo(zone_line(key))


@click.command("send-test")
@click.argument("statement_id")
@click.option("--to", "to", required=True, help="Address to send the test mail to.")
@click.option("--relay", help="Send through this relay of [[email.relays]] (default: the first).")
@pass_context
def send_test_command(ctx: Context, statement_id: str, to: str, relay: str | None) -> None:
    """Send STATEMENT_ID's mail, exactly as a subscriber would get it, to one address; print the relay's reply.

    The message goes through the real SMTP transport (the same sessions, signing
    and re-encoding), but not through the outbox: nothing is recorded, and no
    subscriber is mailed.
    """
    try:
        result = samples.send_test(ctx.app(), statement_id, to, relay)
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.describe())
    if not result.delivered:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(dkim_group)
    group.add_command(send_test_command)
