"""``syndicate subscribers``: add, import, export, list, remove."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syndicate.cli import Context, pass_context
from syndicate.plan import subscribers as removal
from syndicate.plan.confirmations import import_rows, queue_confirmation
from syndicate.store import subscribers as store
from syndicate.subscribers import (
    Frequency,
    InvalidSubscriber,
    NewSubscriber,
    Status,
    check_categories,
    check_languages,
    normalise_email,
    parse_csv,
    to_csv,
)

FREQUENCIES = click.Choice([f.value for f in Frequency])


@click.group("subscribers")
def subscribers_group() -> None:
    """Manage the mailing list."""


@subscribers_group.command("add")
@click.argument("email")
@click.option(
    "--lang", "languages", multiple=True, help="Language to receive (repeat for several; default site.language)."
)
@click.option("--category", "categories", multiple=True, help="Only these categories (repeat; default all).")
@click.option(
    "--frequency", type=FREQUENCIES, default="immediate", show_default=True, help="One mail per statement, or a digest."
)
@click.option(
    "--confirmed", is_flag=True, help="Consent was already given elsewhere: active at once, no confirmation mail."
)
@pass_context
def add_command(
    ctx: Context, email: str, languages: tuple[str, ...], categories: tuple[str, ...], frequency: str, confirmed: bool
) -> None:
    """Add EMAIL; it is pending until the confirmation mail is answered (unless --confirmed)."""
    app = ctx.app()
    address = _address(email)
    try:
        langs = check_languages(languages) or (app.config.site.language,)
    except InvalidSubscriber as exc:
        raise click.BadParameter(str(exc), param_hint="--lang") from exc
    method = (
        "added by the operator (syndicate subscribers add --confirmed)"
        if confirmed
        else "added by the operator; confirmed by mail"
    )
    new = NewSubscriber(address, langs, check_categories(categories), Frequency(frequency), confirmed, method)
    now = app.clock()
    with app.db.write() as conn:
        existing = store.by_email(conn, address)
        if existing is not None:
            raise click.ClickException(f"{address} is already on the list ({existing.status})")
        subscriber_id = store.add(conn, new, now)
        if not confirmed:
            queue_confirmation(conn, app.email, subscriber_id, langs[0], now)
    state = "active" if confirmed else "pending; a confirmation mail goes out with the next tick (syndicate once)"
    click.echo(f"added {address} ({state})")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--confirmed", is_flag=True, help="Consent was given elsewhere: import as active, no confirmation mails.")
@click.option("--skip-invalid", is_flag=True, help="Import the good rows even if some are bad.")
@pass_context
def import_command(ctx: Context, file: Path, confirmed: bool, skip_invalid: bool) -> None:
    """Import subscribers from FILE.csv (header row; an 'email' column; optional languages, categories, frequency).

    Every bad row is reported by line number. A file with errors imports nothing unless --skip-invalid.
    """
    app = ctx.app()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8 ({exc})") from exc
    method = f"imported from {file.name}" + (" (consent given elsewhere)" if confirmed else "; confirmed by mail")
    report = parse_csv(text, default_languages=(app.config.site.language,), confirmed=confirmed, method=method)
    for line, reason in report.errors:
        click.echo(f"{file}:{line}: {reason}", err=True)
    if report.errors and not skip_invalid:
        raise click.ClickException(
            f"{len(report.errors)} bad row(s); nothing imported (fix them, or use --skip-invalid)"
        )
    with app.db.write() as conn:
        added, known = import_rows(conn, app.email, report.rows, confirmed, app.clock())
    skipped = f", {known} already on the list" if known else ""
    bad = f", {len(report.errors)} bad row(s) skipped" if report.errors else ""
    click.echo(f"imported {added} subscriber(s){skipped}{bad}")


@subscribers_group.command("export")
@pass_context
def export_command(ctx: Context) -> None:
    """Write every subscriber as CSV (header row) to standard output."""
    app = ctx.app()
    with app.db.read() as conn:
        for line in to_csv(s.as_row() for s in store.iterate(conn)):
            sys.stdout.write(line)


@subscribers_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only subscribers in this status.")
@pass_context
def list_command(ctx: Context, status: str | None) -> None:
    """List subscribers: address, status, languages, categories, frequency."""
    app = ctx.app()
    count = 0
    with app.db.read() as conn:
        for s in store.iterate(conn, Status(status) if status else None):
            categories = ",".join(s.categories) or "all"
            click.echo(f"{s.email}\t{s.status}\t{','.join(s.languages)}\t{categories}\t{s.frequency}")
            count += 1
        counts = store.counts(conn)
    click.echo(f"{count} listed; " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), err=True)


@subscribers_group.command("remove")
@click.argument("email")
@pass_context
def remove_command(ctx: Context, email: str) -> None:
    """Delete EMAIL from the list entirely (its consent record too)."""
    app = ctx.app()
    address = _address(email)
    with app.db.write() as conn:
        if not removal.remove(conn, address, app.clock()):
            raise click.ClickException(f"{address} is not on the list")
    click.echo(f"removed {address}")


def _address(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidSubscriber as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from exc


@subscribers_group.command("unsuppress")
@click.argument("email")
@pass_context
def unsuppress_command(ctx: Context, email: str) -> None:
    """Take EMAIL off the suppression list (after a bounce you know was a mistake); it is mailed again."""
    app = ctx.app()
    try:
        address = normalise_email(email)
    except InvalidSubscriber as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from exc
    with app.db.write() as conn:
        if not store.unsuppress(conn, address, app.clock()):
            raise click.ClickException(f"{address} is not on the suppression list")
    click.echo(f"{address} is no longer suppressed")


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(subscribers_group)
