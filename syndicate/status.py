"""What ``syndicate status`` reports, gathered from the store in one place (CLI and web share it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from syndicate import outbox
from syndicate.app import App
from syndicate.config import Config
from syndicate.model import State
from syndicate.outbox import Channel
from syndicate.store import fediverse as fediverse_store
from syndicate.store import feeds, meta, nodes, partners, relays, statements, subscribers
from syndicate.store import inbound as inbound_store
from syndicate.store.schema import statements as statements_table


def gather(app: App) -> dict[str, Any]:
    """Statements by state, last tick, next embargo, what is owed, partners; stable keys for ``--json``."""
    heard_within = timedelta(seconds=3 * app.config.heartbeat_seconds)
    with app.db.read() as conn:
        status: dict[str, Any] = {
            "statements": statements.counts_by_state(conn),
            "last_tick": meta.get(conn, "last_tick"),
            "next_embargo": _next_embargo(conn),
            "pings_pending": feeds.pending_pings(conn),
            "subscribers": subscribers.counts(conn),
            "deliveries": outbox.counts(conn),
            "backlog": outbox.backlog(conn, app.clock()),
            "partners": partner_rows(conn, app.config),
            "nodes": nodes.live(conn, app.clock(), heard_within, outbox.held_by_node(conn)),
            "relays": relay_rows(conn, app),
            "editions": outbox.edition_reports(conn),
            "inbound": inbound_store.counts(conn),
            "fediverse": fediverse_row(conn, app.config),
        }
    return status


def fediverse_row(conn: Connection, config: Config) -> dict[str, Any]:
    """The actor's reach: followers, their servers, reactions, and the servers with deliveries waiting."""
    return {
        "enabled": config.fediverse.enabled,
        "followers": fediverse_store.follower_count(conn),
        "servers": fediverse_store.server_count(conn),
        "reactions": fediverse_store.reaction_counts(conn),
        "waiting": outbox.backlog_by_target(conn, Channel.ACTIVITYPUB),
    }


RELAY_STATE_FRESH = timedelta(minutes=10)  # a relay not reported on for longer is shown as idle


def relay_rows(conn: Connection, app: App) -> list[dict[str, Any]]:
    """Each mail relay: its state as a sending node last saw it, its rate, its quota left (SMTP only)."""
    if app.config.email.transport != "smtp":
        return []
    limits = {relay.name: relay.daily_limit for relay in app.config.mail_relays}
    return relays.overview(conn, limits, app.clock(), RELAY_STATE_FRESH)


def partner_rows(conn: Connection, config: Config) -> list[dict[str, Any]]:
    """Each configured partner's standing and backlog, as plain values (``partners list``, ``status``)."""
    return partners.overview(conn, [p.name for p in config.partners], outbox.backlog_by_target(conn, Channel.WEBHOOK))


def _next_embargo(conn: Any) -> dict[str, str] | None:
    query = (
        select(statements_table.c.id, statements_table.c.published)
        .where(statements_table.c.state == State.SCHEDULED)
        .order_by(statements_table.c.published, statements_table.c.id)
        .limit(1)
    )
    row = conn.execute(query).first()
    return {"statement": row.id, "at": row.published.isoformat()} if row else None
