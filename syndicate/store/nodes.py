"""The nodes sharing one database: who runs, in which role, and when each was last heard from."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.store.schema import nodes


def register(conn: Connection, node: str, role: str, now: datetime) -> None:
    """Announce this process: it runs ``role`` from ``now``."""
    conn.execute(delete(nodes).where(nodes.c.id == node))
    values = {
        "id": node,
        "role": role,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": now,
        "heartbeat_at": now,
    }
    conn.execute(insert(nodes).values(**values))


def beat(conn: Connection, node: str, now: datetime) -> None:
    """This node is alive at ``now``."""
    conn.execute(update(nodes).where(nodes.c.id == node).values(heartbeat_at=now))


def stopped(conn: Connection, node: str, now: datetime) -> None:
    """This node stopped cleanly."""
    conn.execute(update(nodes).where(nodes.c.id == node).values(stopped_at=now, heartbeat_at=now))


def live(conn: Connection, now: datetime, within: timedelta, holds: Mapping[str, int]) -> list[dict[str, Any]]:
    """Nodes heard from within ``within`` and not stopped, each with the deliveries it ``holds`` (the outbox says)."""
    query = (
        select(nodes)
        .where(and_(nodes.c.stopped_at.is_(None), nodes.c.heartbeat_at >= now - within))
        .order_by(nodes.c.started_at)
    )
    return [
        {
            "id": r.id,
            "role": r.role,
            "host": r.host,
            "pid": r.pid,
            "started_at": r.started_at.isoformat(),
            "heartbeat_at": r.heartbeat_at.isoformat(),
            "holds": holds.get(r.id, 0),
        }
        for r in conn.execute(query)
    ]


def forget_old(conn: Connection, now: datetime, older_than: timedelta) -> int:
    """Remove nodes not heard from for ``older_than`` (their leases are long reaped)."""
    return int(conn.execute(delete(nodes).where(nodes.c.heartbeat_at < now - older_than)).rowcount)


def silent(conn: Connection, now: datetime, within: timedelta) -> list[str]:
    """Nodes that beat once and have not beaten within ``within`` (dead, or stopped), by id."""
    return list(conn.scalars(select(nodes.c.id).where(nodes.c.heartbeat_at < now - within)))
