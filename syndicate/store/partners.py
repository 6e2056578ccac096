"""What is known of each partner beyond its deliveries: disabled (it answered 410 Gone), and its health."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from syndicate.store.db import dialect_insert
from syndicate.store.schema import partner_state


@dataclass(frozen=True)
class PartnerState:
    """One partner's standing."""

    name: str
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None

    @property
    def disabled(self) -> bool:
        """Whether pushes to this partner wait for ``syndicate partners enable``."""
        return self.disabled_at is not None


def states(conn: Connection) -> dict[str, PartnerState]:
    """Every partner with a recorded state, by name."""
    return {row.name: PartnerState(**row._mapping) for row in conn.execute(select(partner_state))}


def succeeded(conn: Connection, name: str, now: datetime) -> None:
    """``name`` took a push at ``now``: it is healthy again."""
    _upsert(conn, name, {"last_success_at": now, "failing_since": None, "last_error": None})


def failed(conn: Connection, name: str, error: str, now: datetime) -> None:
    """A push to ``name`` failed; it is failing since the first failure after its last success."""
    since = func.coalesce(partner_state.c.failing_since, now)
    _upsert(conn, name, {"failing_since": since, "last_error": error}, {"failing_since": now, "last_error": error})


def disable(conn: Connection, name: str, reason: str, now: datetime) -> None:
    """Stop pushing to ``name`` until an operator enables it again."""
    _upsert(conn, name, {"disabled_at": now, "disabled_reason": reason})


def enable(conn: Connection, name: str) -> bool:
    """Let pushes to ``name`` go again; False if it was not disabled."""
    query = (
        partner_state.update()
        .where(partner_state.c.name == name, partner_state.c.disabled_at.is_not(None))
        .values(disabled_at=None, disabled_reason=None)
    )
    return int(conn.execute(query).rowcount) > 0


def _upsert(conn: Connection, name: str, changes: dict[str, Any], fresh: dict[str, Any] | None = None) -> None:
    """Apply ``changes`` to the partner's row, or insert it with ``fresh`` (default: the same values)."""
    query = (
        dialect_insert(conn, partner_state)
        .values(name=name, **(fresh or changes))
        .on_conflict_do_update(index_elements=["name"], set_=changes)
    )
    conn.execute(query)


def overview(conn: Connection, names: list[str], waiting: Mapping[str, int]) -> list[dict[str, Any]]:
    """Each configured partner's standing, with its backlog (``waiting``, the outbox says), as plain values."""
    known = states(conn)
    rows = []
    for name in names:
        state = known.get(name, PartnerState(name))
        row: dict[str, Any] = {"name": name, "disabled": state.disabled, "backlog": waiting.get(name, 0)}
        for key in ("disabled_at", "last_success_at", "failing_since"):
            value = getattr(state, key)
            row[key] = value.isoformat() if value else None
        row["disabled_reason"] = state.disabled_reason
        row["last_error"] = state.last_error
        rows.append(row)
    return rows
