"""What an admin may do from the console or the API; each action is recorded in the audit log.

Every action takes who does it and from where, does what the matching
command does (``deliveries retry``, ``deliveries resend-unknown``,
``deliveries replay``, ``partners enable``, ``subscribers unsuppress``,
``remove``, ``import`` and ``export``, ``send-test``, ``once``), writes one
line of the audit log (in the same transaction when it changes the
database), and returns what it did as plain values. Bad requests are
:class:`Refused` with a message fit to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syndicate import outbox
from syndicate.app import App
from syndicate.console import figures, samples
from syndicate.errors import SyndicateError
from syndicate.outbox import Channel, DeliveryState, SourceKind
from syndicate.pipeline import tick
from syndicate.plan import events
from syndicate.plan import subscribers as removal
from syndicate.plan.confirmations import import_rows
from syndicate.store import admin as admin_store
from syndicate.store import partners as partner_store
from syndicate.store import subscribers as subscriber_store
from syndicate.subscribers import InvalidSubscriber, normalise_email, parse_csv, to_csv

PREVIEW_LIMIT = 200  # recipients shown before a resend of unknown deliveries


class Refused(ValueError):
    """An action that cannot be done as asked."""


@dataclass(frozen=True)
class Who:
    """Who acts, and from where (the audit log's actor and client)."""

    actor: str
    client: str


class Actions:
    """The console's actions on one app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _audit(self, conn: Any, who: Who, action: str, detail: str) -> None:
        admin_store.audit(conn, who.actor, action, detail, who.client, self.app.clock())

    @staticmethod
    def _channel(channel: str | None) -> Channel | None:
        if not channel:
            return None
        try:
            return Channel(channel)
        except ValueError as exc:
            raise Refused(f"no channel {channel!r} (known: {', '.join(c.value for c in Channel)})") from exc

    def retry_failed(self, who: Who, channel: str | None = None) -> dict[str, Any]:
        """Failed deliveries back to pending, due now."""
        chosen = self._channel(channel)
        with self.app.db.write() as conn:
            count = outbox.requeue(conn, DeliveryState.FAILED, self.app.clock(), chosen)
            self._audit(conn, who, "retry failed", f"{count} deliveries" + (f" ({chosen})" if chosen else ""))
        return {"requeued": count}

    def unknown_preview(self, channel: str | None = None) -> dict[str, Any]:
        """How many deliveries are unknown, and to whom (the first :data:`PREVIEW_LIMIT`): shown before a resend."""
        chosen = self._channel(channel)
        with self.app.db.read() as conn:
            rows = figures.deliveries_to_decide(conn, DeliveryState.UNKNOWN.value, chosen, PREVIEW_LIMIT)
            total = outbox.count_in(conn, DeliveryState.UNKNOWN, chosen)
        shown = [{"id": r["id"], "channel": r["channel"], "target": r["address"] or r["target"]} for r in rows]
        return {"count": total, "shown": shown}

    def resend_unknown(self, who: Who, expected: int, channel: str | None = None) -> dict[str, Any]:
        """Send the unknown deliveries again; ``expected`` is the count the operator was shown and agreed to."""
        chosen = self._channel(channel)
        with self.app.db.write() as conn:
            now_count = outbox.count_in(conn, DeliveryState.UNKNOWN, chosen)
            if now_count != expected:
                raise Refused(f"{now_count} deliveries are unknown now, not the {expected} shown: look again")
            count = outbox.requeue(conn, DeliveryState.UNKNOWN, self.app.clock(), chosen)
            self._audit(conn, who, "resend unknown", f"{count} deliveries" + (f" ({chosen})" if chosen else ""))
        return {"requeued": count}

    def enable_partner(self, who: Who, name: str) -> dict[str, Any]:
        """Push to a partner again after it was disabled; its backlog goes at the next tick."""
        if name not in {p.name for p in self.app.config.partners}:
            raise Refused(f"no partner named {name!r}")
        with self.app.db.write() as conn:
            was_disabled = partner_store.enable(conn, name)
            released = outbox.make_due(conn, Channel.WEBHOOK, name, self.app.clock())
            self._audit(conn, who, "enable partner", f"{name} ({released} pending)")
        return {"enabled": was_disabled, "released": released}

    def replay_preview(self, name: str, since: str) -> dict[str, Any]:
        """How many events ``name`` was sent since ``since``: what a replay would push again (shown first)."""
        when = self._since(name, since)
        with self.app.db.read() as conn:
            count = len(outbox.sent_since(conn, Channel.WEBHOOK, SourceKind.EVENT, name, when))
        return {"partner": name, "since": when.isoformat(), "count": count}

    def replay_partner(self, who: Who, name: str, since: str, expected: int | None = None) -> dict[str, Any]:
        """Push again, as new deliveries, what partner ``name`` was sent since ``since`` (it lost them)."""
        when = self._since(name, since)
        with self.app.db.write() as conn:
            if expected is not None:
                now_count = len(outbox.sent_since(conn, Channel.WEBHOOK, SourceKind.EVENT, name, when))
                if now_count != expected:
                    raise Refused(f"{now_count} events were sent to {name} since then, not the {expected} shown")
            count = events.replay(conn, name, when, self.app.clock())
            self._audit(conn, who, "replay partner", f"{name}: {count} events sent since {when.isoformat()}")
        return {"replayed": count}

    def _since(self, name: str, since: str) -> datetime:
        if name not in {p.name for p in self.app.config.partners}:
            raise Refused(f"no partner named {name!r}")
        try:
            when = datetime.fromisoformat(since.strip())
        except ValueError as exc:
            raise Refused(f"since: {since[:40]!r} is not a date (2026-05-01) or a time (2026-05-01T09:30)") from exc
        return when if when.tzinfo else when.replace(tzinfo=self.app.config.site.tz)

    def send_test(self, who: Who, statement_id: str, to: str, relay: str | None = None) -> dict[str, Any]:
        """Send a statement's mail to one address through a relay (not through the outbox); the relay's reply."""
        try:
            result = samples.send_test(self.app, statement_id, to, relay or None)
        except SyndicateError as exc:
            raise Refused(str(exc)) from exc
        with self.app.db.write() as conn:
            self._audit(conn, who, "send test mail", f"{statement_id} to {to} ({result.describe()})")
        return {"delivered": result.delivered, "reply": result.describe()}

    def unsuppress(self, who: Who, email: str) -> dict[str, Any]:
        """Take an address off the suppression list; a bounced or complained subscriber is active again."""
        address = self._address(email)
        with self.app.db.write() as conn:
            if not subscriber_store.unsuppress(conn, address, self.app.clock()):
                raise Refused(f"{address} is not on the suppression list")
            self._audit(conn, who, "unsuppress", address)
        return {"unsuppressed": address}

    def remove_subscriber(self, who: Who, email: str) -> dict[str, Any]:
        """Delete a subscriber entirely (their consent record too)."""
        address = self._address(email)
        with self.app.db.write() as conn:
            if not removal.remove(conn, address, self.app.clock()):
                raise Refused(f"{address} is not on the list")
            self._audit(conn, who, "remove subscriber", address)
        return {"removed": address}

    def import_subscribers(self, who: Who, text: str, name: str, confirmed: bool, skip_invalid: bool,
                           apply: bool) -> dict[str, Any]:  # fmt: skip
        """Read a CSV as ``syndicate subscribers import`` does; import it only if ``apply`` (after the report was
        shown) and it has no bad rows or ``skip_invalid``. Every bad row is reported by its line."""
        method = f"imported from {name or 'the console'}" + (" (consent given elsewhere)" if confirmed else
                                                              "; confirmed by mail")  # fmt: skip
        report = parse_csv(text, default_languages=(self.app.config.site.language,), confirmed=confirmed, method=method)
        errors = [{"line": line, "reason": reason} for line, reason in report.errors]
        result: dict[str, Any] = {"rows": len(report.rows), "errors": errors, "imported": 0, "already": 0}
        if not apply or (errors and not skip_invalid):
            return result
        with self.app.db.write() as conn:
            result["imported"], result["already"] = import_rows(conn, self.app.email, report.rows, confirmed,
                                                                self.app.clock())  # fmt: skip
            detail = f"{result['imported']} from {name or 'a CSV'} ({len(errors)} bad row(s) skipped)"
            self._audit(conn, who, "import subscribers", detail)
        return result

    def export_subscribers(self, who: Who) -> Iterator[str]:
        """Every subscriber as CSV (header row), as ``syndicate subscribers export`` writes it; recorded first."""
        with self.app.db.write() as conn:
            self._audit(conn, who, "export subscribers", "")
        with self.app.db.read() as conn:
            rows = [s.as_row() for s in subscriber_store.iterate(conn)]
        return to_csv(rows)

    def run_tick(self, who: Who) -> dict[str, Any]:
        """Run one tick now, here (as ``syndicate once``)."""
        with self.app.db.write() as conn:
            self._audit(conn, who, "run a tick", "")
        report = tick(self.app)
        return {"seconds": round(report.seconds, 3), "stages": report.stages, "failed": report.failed}

    @staticmethod
    def _address(email: str) -> str:
        try:
            return normalise_email(email)
        except InvalidSubscriber as exc:
            raise Refused(str(exc)) from exc
