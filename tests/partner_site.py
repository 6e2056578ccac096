"""Helpers for the partner tests: the receiver, [[partners]] tables, and outbox checks.

`PartnerServer` (tests/servers/http.py) verifies each signature with `standardwebhooks`,
de-duplicates by `webhook-id`, and keeps an Atom body as bytes (a JSON one parsed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from servers.http import PartnerServer, new_secret
from sqlalchemy import select

from syndicate.app import App
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries

# The loopback partner takes Atom entry documents as well as JSON; the name says what the tests use it for.
AtomPartner = PartnerServer


def partner_toml(name: str, url: str, secret_env: str, **options: Any) -> str:
    """One ``[[partners]]`` table."""
    lines = ["[[partners]]", f'name = "{name}"', f'url = "{url}"', f'secret_env = "{secret_env}"']
    lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n\n"


def _toml(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def secret_for(monkeypatch: pytest.MonkeyPatch, variable: str) -> str:
    """A fresh whsec_ secret, put in the environment under ``variable``."""
    secret = new_secret()
    monkeypatch.setenv(variable, secret)
    return secret


def loopback_partner(monkeypatch: pytest.MonkeyPatch) -> Iterator[AtomPartner]:
    """A partner site on loopback, verifying with the secret in PARTNER_SECRET; it saw no bad request.

    Used as a fixture: ``partner = pytest.fixture(loopback_partner)``.
    """
    with AtomPartner(secret_for(monkeypatch, "PARTNER_SECRET")) as server:
        yield server
    assert server.errors == []


def webhook_rows(app: App) -> list[Any]:
    """Every webhook delivery in the outbox, oldest first."""
    with app.db.read() as conn:
        query = select(deliveries).where(deliveries.c.channel == "webhook").order_by(deliveries.c.id)
        return list(conn.execute(query))


def assert_accounted(app: App) -> None:
    """None lost: each push was sent, waits for a retry (with the reason), or failed with the reply."""
    for row in webhook_rows(app):
        assert row.state in ("sent", "pending", "failed", "cancelled"), row
        if row.state != "sent":
            assert row.last_error, row
        if row.state == "pending":
            assert row.due_at is not None


def start(site: Any, make_app: Any, *tables: str) -> App:
    """An app for the site with these [[partners]]; its first tick sets the planner's cursor (nothing to push yet)."""
    site.extra = "".join(tables)
    app = make_app(site)
    tick(app)
    return app
