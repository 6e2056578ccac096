"""check, build, once, run, status: the commands of the pipeline itself."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from syndicate import checks
from syndicate.cli import Context, pass_context
from syndicate.errors import SyndicateError
from syndicate.model import Problem, Severity
from syndicate.pipeline import TickReport, build, tick
from syndicate.roles import Role
from syndicate.status import gather
from syndicate.store.db import Database


@click.command("check")
@pass_context
def check_command(ctx: Context) -> None:
    """Read config, statements and templates; report every problem; change nothing.

    Exits 0 only if there is nothing to report. If the database is there, a
    note of what was found is kept in it for the console (it is never made
    for that).
    """
    problems = checks.check(ctx.config, ctx.config_path)
    _remember(ctx, problems, "syndicate check")
    for problem in problems:
        click.echo(str(problem), err=True)
    for note in checks.notes(ctx.config):  # worth knowing, not a problem: they never fail the check
        click.echo(note)
    errors = sum(p.severity == Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    if problems:
        raise click.ClickException(f"{errors} error(s), {warnings} warning(s)")
    click.echo(f"ok: {checks.statement_count(ctx.config)} statements, config and templates are clean")


def _remember(ctx: Context, problems: list[Problem], by: str) -> None:
    """Keep the check's findings for the console, in the database if there is one (never made for it)."""
    try:
        db = Database(ctx.config.database_url())
    except SyndicateError:  # a database the check itself reports on
        return
    try:
        checks.remember(db, problems, datetime.now(UTC), by)
    finally:
        db.dispose()


@click.command("build")
@pass_context
def build_command(ctx: Context) -> None:
    """Ingest the statements and render the feeds and the site's pages now."""
    report = build(ctx.app())
    _summary(report)


@click.command("once")
@pass_context
def once_command(ctx: Context) -> None:
    """Run one full tick of the daemon (ingest, render, plan, deliver), then exit."""
    report = tick(ctx.app(), progress=_progress_bar if sys.stderr.isatty() else None)
    _summary(report)


@click.command("run")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    default="all",
    show_default=True,
    help="scheduler: ingest, render, plan; worker: deliver; all: both (several nodes may share PostgreSQL).",
)
@click.option(
    "--web/--no-web",
    default=None,
    help="Serve the web pages on web.bind too (default: roles all and scheduler, unless web.serve_in_run = false).",
)
@pass_context
def run_command(ctx: Context, role: str, web: bool | None) -> None:
    """Run the daemon: a tick every scheduler.poll_seconds and at each embargo time.

    Stops cleanly on SIGTERM or SIGINT. Logs one line per event.
    """
    from syndicate.daemon import Daemon

    if logging.getLogger().level > logging.INFO and not ctx.quiet:
        logging.getLogger().setLevel(logging.INFO)
    try:
        app = ctx.app()
        if Role(role).plans:  # the console shows what the configuration still lacks, from the start
            checks.remember(app.db, checks.check(ctx.config, ctx.config_path), app.clock(), "syndicate run")
        Daemon(app, serve_web=web, role=Role(role)).run()
    except SyndicateError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, for scripts).")
@pass_context
def status_command(ctx: Context, as_json: bool) -> None:
    """Statements by state, the last tick, the next embargo, and what is owed."""
    status = gather(ctx.app(read_only=True))
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
    else:
        _print_status(status)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A bar on the terminal while a long send runs."""
    with click.progressbar(length=total, label="sending mail", file=sys.stderr, show_pos=True, show_eta=True) as bar:
        yield bar.update


def _summary(report: TickReport) -> None:
    """The tick in one line, after its problems; a stage that failed makes the command fail."""
    problems = report.problems
    for problem in problems:
        click.echo(str(problem), err=True)
    ingest = report.ingest
    feeds = report.feeds
    parts = [
        f"{len(ingest.published)} published",
        f"{len(ingest.updated)} updated",
        f"{len(ingest.retracted)} retracted",
        f"{len(ingest.scheduled)} newly scheduled",
        f"{len(feeds.written)} feed files written",
        f"{len(report.site.written)} pages written",
    ]
    parts += [f"{name}: {_counts(counts)}" for name, counts in report.stages.items()]
    reported = f", {len(problems)} problem(s) reported above" if problems else ""
    click.echo("; ".join(parts) + reported + f" ({report.seconds:.2f} s)")
    if report.failed:
        failures = "; ".join(f"{name}: {reason}" for name, reason in report.failed.items())
        raise click.ClickException(f"stage(s) failed (the others ran): {failures}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} {key}" for key, value in counts.items()) or "nothing to do"


def _print_status(status: dict[str, Any]) -> None:
    counts = status["statements"]
    click.echo("statements: " + ", ".join(f"{counts[s]} {s}" for s in ("published", "scheduled", "draft", "retracted")))
    last = status["last_tick"]
    if last:
        click.echo(f"last tick:  {last['at']} ({last['seconds']} s, {last['problems']} problem(s))")
    else:
        click.echo("last tick:  never (run `syndicate once` or `syndicate run`)")
    embargo = status["next_embargo"]
    click.echo(f"next embargo: {embargo['at']} ({embargo['statement']})" if embargo else "next embargo: none")
    click.echo(f"hub pings owed: {status['pings_pending']}")
    click.echo("subscribers: " + _listed(status["subscribers"]))
    for channel, states in status["deliveries"].items():
        backlog = status["backlog"].get(channel, 0)
        click.echo(f"deliveries ({channel}): {_listed(states)}; {backlog} due now")
    for partner in status["partners"]:
        standing = f"disabled since {partner['disabled_at']}" if partner["disabled"] else "enabled"
        failing = f", failing since {partner['failing_since']}" if partner["failing_since"] else ""
        click.echo(f"partner {partner['name']}: {standing}{failing}, {partner['backlog']} waiting")
    for relay in status.get("relays", []):
        quota = f", {relay['quota_left']} of {relay['daily_limit']} left today" if relay["daily_limit"] else ""
        why = (
            f" ({relay['detail']}" + (f", until {relay['until']}" if relay["until"] else "") + ")"
            if relay["detail"]
            else ""
        )
        click.echo(
            f"relay {relay['name']}: {relay['state']}{why}, {relay['rate']} msg/s, {relay['sent_24h']} in 24 h{quota}"
        )
    for edition in status.get("editions", []):
        line = "  over the 0.3% line" if edition["over_the_line"] else ""
        click.echo(
            f"edition {edition['edition']} ({edition['subject']}): {edition['sent']} sent, {edition['hard']} hard and"
            f" {edition['soft']} soft bounces, {edition['complaints']} complaints"
            f" ({edition['complaint_rate']:.2%}), {edition['unsubscribes']} unsubscribes{line}"
        )
    if status.get("inbound"):
        click.echo("reports that came back: " + _listed(status["inbound"]))
    fediverse = status.get("fediverse") or {}
    if fediverse.get("enabled"):
        click.echo(f"fediverse: {fediverse['followers']} follower(s) on {fediverse['servers']} server(s); "
                   f"reactions: {_listed(fediverse['reactions'])}")  # fmt: skip
        for inbox, waiting in sorted(fediverse["waiting"].items(), key=lambda item: -item[1])[:10]:
            click.echo(f"  {inbox}: {waiting} waiting")
    for node in status["nodes"]:
        click.echo(f"node {node['id']} ({node['role']}): heartbeat {node['heartbeat_at']}, holds {node['holds']}")
    if not status["nodes"]:
        click.echo("nodes: none running (syndicate run)")


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"


def register(group: click.Group) -> None:
    """Add these commands to ``group``."""
    for command in (check_command, build_command, once_command, run_command, status_command):
        group.add_command(command)
