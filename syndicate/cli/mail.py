"""Mail commands for the operator: ``syndicate dkim dns`` (the records to publish) and ``send-test``."""

from __future__ import annotations

import time
from dataclasses import replace
from email.utils import format_datetime

import click

from syndicate.cli import Context, pass_context
from syndicate.cli.preview import preview_template
from syndicate.deliver.email.dkim import Signer, keys_of, zone_line
from syndicate.deliver.email.transports import wire_settings
from syndicate.deliver.email.wire import Attempt, Fate, FreeLedger, Wire, pools_for
from syndicate.errors import SyndicateError
from syndicate.mail import Letter
from syndicate.subscribers import InvalidSubscriber, normalise_email


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
    app = ctx.app()
    config = app.config
    if config.email.transport != "smtp":
        raise click.ClickException('send-test needs email.transport = "smtp" (the file transport sends nothing)')
    try:
        address = normalise_email(to)
        template, subscriber_id = preview_template(app, statement_id, address)
        signer = Signer.from_settings(config.email.dkim) if config.email.dkim.enabled else None
        settings = wire_settings(config, signer)
    except (SyndicateError, InvalidSubscriber) as exc:
        raise click.ClickException(str(exc)) from exc
    relays = [r for r in settings.relays if relay is None or r.name == relay][:1]
    if not relays:
        known = ", ".join(r.name for r in settings.relays)
        raise click.ClickException(f"--relay: no relay named {relay!r} (there are: {known})")
    now = app.clock()
    values = app.email_composer.values(template, f"syndicate.test-{int(time.time())}", subscriber_id, address, now,
                                       format_datetime(now).encode())  # fmt: skip
    wire = Wire(pools_for(replace(settings, relays=tuple(relays))), FreeLedger(), app.clock, signer)
    wire.add_template(0, template)
    wire.submit(0, [Letter(0, config.sender[1], address, 0, values)])
    attempt = _one(wire)
    click.echo(f"relay {relays[0].name} ({relays[0].host}:{relays[0].port}): {attempt.describe()}")
    if attempt.fate != Fate.DELIVERED:
        raise SystemExit(1)


def _one(wire: Wire) -> Attempt:
    deadline = time.monotonic() + max(r.relay.timeout for r in wire.pools) * 4 + 5
    try:
        while time.monotonic() < deadline:
            for _, attempts in wire.pump(True, timeout=0.05):
                return attempts[0]
        return Attempt(0, Fate.MAYBE, "dot", None, "no answer in time")
    finally:
        wire.close()


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(dkim_group)
    group.add_command(send_test_command)
