"""``syndicate admin``: the console's accounts and the API's tokens, and the audit log of what they did."""

from __future__ import annotations

import getpass
import sys

import click

from syndicate.cli import Context, pass_context
from syndicate.console.accounts import ROLES, Accounts, BadAccount
from syndicate.store import admin as store

ROLE = click.Choice(ROLES)


def _accounts(ctx: Context) -> Accounts:
    app = ctx.app()
    return Accounts(app.db, app.config.admin, app.clock)


def _password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or asked twice at the terminal (never an argument)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise click.ClickException("the two passwords differ")
    return first


@click.group("admin")
def admin_group() -> None:
    """Accounts of the console (/admin), tokens of the API (/api/v1), the audit log."""


@admin_group.command("add-user")
@click.argument("name")
@click.option("--role", type=ROLE, default="viewer", show_default=True, help="viewer sees; admin also acts.")
@click.option("--totp", is_flag=True, help="Ask for a code from an authenticator app too (its secret is shown once).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
@pass_context
def add_user_command(ctx: Context, name: str, role: str, totp: bool, password_stdin: bool) -> None:
    """Add an account NAME (the password is asked for, or read from stdin; at least 12 characters)."""
    accounts = _accounts(ctx)
    try:
        _, secret = accounts.add_user(name, role, _password(password_stdin), totp)
    except BadAccount as exc:
        raise click.ClickException(str(exc)) from exc
    accounts.audit("cli", "add user", f"{name} ({role}{', TOTP' if totp else ''})")
    click.echo(f"added {name} ({role})")
    if secret:
        click.echo(f"TOTP secret (shown once): {secret}")
        click.echo(f"for an authenticator app: {accounts.provisioning_uri(name, secret, ctx.app().config.site.title)}")


@admin_group.command("remove-user")
@click.argument("name")
@pass_context
def remove_user_command(ctx: Context, name: str) -> None:
    """Remove the account NAME (its sessions end at once)."""
    accounts = _accounts(ctx)
    if not accounts.remove_user(name):
        raise click.ClickException(f"no account named {name!r}")
    accounts.audit("cli", "remove user", name)
    click.echo(f"removed {name}")


@admin_group.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
@pass_context
def reset_password_command(ctx: Context, name: str, password_stdin: bool) -> None:
    """Give NAME a new password (its lockout is lifted, its sessions end)."""
    accounts = _accounts(ctx)
    try:
        found = accounts.reset_password(name, _password(password_stdin))
    except BadAccount as exc:
        raise click.ClickException(str(exc)) from exc
    if not found:
        raise click.ClickException(f"no account named {name!r}")
    accounts.audit("cli", "reset password", name)
    click.echo(f"new password for {name}")


@admin_group.command("users")
@pass_context
def users_command(ctx: Context) -> None:
    """List the accounts: name, role, second factor, lockout."""
    for user in _accounts(ctx).users():
        locked = f"  locked until {user.locked_until:%Y-%m-%d %H:%M} UTC" if user.locked_until else ""
        click.echo(f"{user.name}\t{user.role}\t{'TOTP' if user.totp_secret else 'password only'}{locked}")


@admin_group.group("token")
def token_group() -> None:
    """Bearer tokens of the JSON API."""


@token_group.command("create")
@click.option("--name", required=True, help="What the token is for (a script, a monitor).")
@click.option("--role", type=ROLE, default="viewer", show_default=True, help="viewer reads; admin also acts.")
@pass_context
def token_create_command(ctx: Context, name: str, role: str) -> None:
    """Make a token (printed once: only its digest is kept)."""
    accounts = _accounts(ctx)
    token_id, value = accounts.create_token(name, role)
    accounts.audit("cli", "create token", f"{token_id} {name} ({role})")
    click.echo(f"token {token_id} ({name}, {role}): {value}")
    click.echo("send it as: Authorization: Bearer <token>", err=True)


@token_group.command("list")
@pass_context
def token_list_command(ctx: Context) -> None:
    """List the tokens: id, name, role, last use, revoked."""
    for token in _accounts(ctx).tokens():
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
        revoked = f"  revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else ""
        click.echo(f"{token.id}\t{token.name}\t{token.role}\t{used}{revoked}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@pass_context
def token_revoke_command(ctx: Context, token_id: int) -> None:
    """Revoke token TOKEN_ID at once."""
    accounts = _accounts(ctx)
    if not accounts.revoke_token(token_id):
        raise click.ClickException(f"no live token {token_id}")
    accounts.audit("cli", "revoke token", str(token_id))
    click.echo(f"token {token_id} revoked")


@admin_group.command("audit")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many, newest first.")
@pass_context
def audit_command(ctx: Context, limit: int) -> None:
    """The audit log, newest first: when, who, what, from where."""
    app = ctx.app(read_only=True)
    with app.db.read() as conn:
        lines = store.audit_lines(conn, limit)
    for line in lines:
        detail = f"  {line.detail}" if line.detail else ""
        click.echo(f"{line.at:%Y-%m-%d %H:%M:%S}\t{line.actor}\t{line.action}{detail}\t{line.client}")


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    group.add_command(admin_group)
