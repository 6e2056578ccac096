"""Mail commands for the operator: ``syndicate dkim dns`` (the records to publish)."""

from __future__ import annotations

import click

from syndicate.cli import Context, pass_context
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


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(dkim_group)
