"""``syndicate inbound``: the reports that came back (bounces, complaints, unsubscribes), and their listener."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from syndicate.cli import Context, pass_context, serve_until_stopped
from syndicate.store import inbound as inbound_store

KINDS = click.Choice(["new", "hard", "soft", "complaint", "unsubscribe", "auto-reply", "delivered", "unknown"])


@click.group("inbound")
def inbound_group() -> None:
    """Reports that came back: list them, show one, process them again, serve the listener, read a mailbox."""


@inbound_group.command("serve")
@click.option("--bind", help="host:port to listen on (default: inbound.bind).")
@click.option("--lmtp/--smtp", "lmtp", default=None, help="Speak LMTP or SMTP (default: inbound.lmtp).")
@pass_context
def serve_command(ctx: Context, bind: str | None, lmtp: bool | None) -> None:
    """Serve the inbound listener alone, until SIGTERM or SIGINT.

    The organisation's MX forwards the return path (email.return_path, with its
    +tags) and the unsubscribe address here. Each message is answered 250 only
    once it is stored; mail for any other address is refused.
    """
    from syndicate.inbound.listener import Listener

    app = ctx.app()
    settings = app.config.inbound
    address = bind or settings.bind
    if not address:
        raise click.ClickException("inbound.bind is not set: give --bind host:port")
    listener = Listener(app.receiver, address, settings.lmtp if lmtp is None else lmtp, settings.max_message_bytes)
    kind = "LMTP" if listener.lmtp else "SMTP"
    serve_until_stopped(listener.start, listener.stop, lambda: f"listening on {listener.host}:{listener.port} ({kind})")


@inbound_group.command("read")
@click.argument("maildir", required=False, type=click.Path(file_okay=False, path_type=Path))
@pass_context
def read_command(ctx: Context, maildir: Path | None) -> None:
    """Read the mailboxes now (inbound.maildir and inbound.imap, or the Maildir given), and process what came in.

    Each message is stored before it is moved to the done folder (inbound.maildir_done,
    inbound.imap.done); nothing is deleted.
    """
    from syndicate.inbound.mailbox import MaildirReader, mailboxes

    app = ctx.app()
    settings = app.config.inbound
    readers = (
        [MaildirReader(app.receiver, maildir, settings.maildir_done)] if maildir else mailboxes(app.receiver, settings)
    )
    if not readers:
        raise click.ClickException("neither inbound.maildir nor inbound.imap.host is set: give a Maildir's path")
    read = 0
    for reader in readers:
        try:
            read += reader()
        except Exception as exc:
            raise click.ClickException(f"{reader} could not be read: {exc}") from exc
    done = app.receiver.process_waiting()
    click.echo(f"{read} read, {done['processed']} processed" + (f", {done['failed']} failed" if done["failed"] else ""))


@inbound_group.command("list")
@click.option("--kind", type=KINDS, help="Only reports of this kind ('new': not processed yet).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, for scripts).")
@pass_context
def list_command(ctx: Context, kind: str | None, limit: int, as_json: bool) -> None:
    """List reports, newest first: id, when, kind, address, and what it did."""
    app = ctx.app(read_only=True)
    with app.db.read() as conn:
        reports = inbound_store.listing(conn, kind, limit)
    rows = [_summary(r) for r in reports]
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for row in rows:
        fields = (row["id"], row["received_at"], row["kind"] or "new", row["address"] or "-", row["action"] or "")
        click.echo("\t".join(map(str, fields)))


@inbound_group.command("show")
@click.argument("report_id", type=int)
@click.option("--raw", is_flag=True, help="Print the report's bytes as they came in.")
@pass_context
def show_command(ctx: Context, report_id: int, raw: bool) -> None:
    """One report: where it came from, what it was found to be, what it did (--raw: the message itself)."""
    app = ctx.app(read_only=True)
    with app.db.read() as conn:
        report = inbound_store.get(conn, report_id)
    if report is None:
        raise click.ClickException(f"no report {report_id}")
    if raw:
        sys.stdout.buffer.write(report.raw)
        return
    for key, value in _summary(report).items():
        click.echo(f"{key}: {value if value is not None else ''}")


@inbound_group.command("reprocess")
@click.argument("report_ids", nargs=-1, type=int)
@click.option("--all-new", is_flag=True, help="Every report stored and not processed yet.")
@pass_context
def reprocess_command(ctx: Context, report_ids: tuple[int, ...], all_new: bool) -> None:
    """Classify reports again and act on them (what they changed already stays as it is)."""
    app = ctx.app()
    if not report_ids and not all_new:
        raise click.ClickException("name the reports to process again, or give --all-new")
    for report_id in report_ids:
        try:
            click.echo(f"{report_id}: {app.receiver.process(report_id, again=True)}")
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
    if all_new:
        done = app.receiver.process_waiting()
        click.echo(f"{done['processed']} processed" + (f", {done['failed']} failed" if done["failed"] else ""))


def _summary(report: inbound_store.Stored) -> dict[str, Any]:
    return {
        "id": report.id,
        "received_at": report.received_at.isoformat(),
        "source": report.source,
        "envelope_from": report.envelope_from,
        "envelope_to": report.envelope_to,
        "bytes": len(report.raw),
        "kind": report.kind,
        "delivery": report.delivery_id,
        "address": report.address,
        "status": report.status,
        "detail": report.detail,
        "action": report.action,
        "processed_at": report.processed_at.isoformat() if report.processed_at else None,
    }


def register(main: click.Group) -> None:
    """Add the inbound commands."""
    main.add_command(inbound_group)
