"""``/metrics`` in the Prometheus text exposition format (version 0.0.4), read from the store.

Everything is counted in the database at scrape time, so every node reports
the same numbers and a restart loses nothing. Send latency is a histogram of
``finished_at - created_at`` over sent deliveries, per channel, counted by the
outbox in SQL (one aggregate query, not one row per delivery).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from syndicate import outbox
from syndicate.app import App
from syndicate.status import relay_rows
from syndicate.store import fediverse as fediverse_store
from syndicate.store import inbound as inbound_store
from syndicate.store import meta, statements, subscribers

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 24 * 3600.0)

Labels = Mapping[str, str]


@dataclass
class Family:
    """One metric family: its name, type, help, and samples (suffix, labels, value)."""

    name: str
    type: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        """Add one sample."""
        self.samples.append((suffix, labels, value))

    def lines(self) -> Iterable[str]:
        """The family as exposition lines."""
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.type}"
        for suffix, labels, value in self.samples:
            yield f"{self.name}{suffix}{_labels(labels)} {number(value)}"


def exposition(app: App) -> str:
    """Every metric, as the text ``/metrics`` answers."""
    with app.db.read() as conn:
        families = [
            _by_label("syndicate_statements", "Statements by state.", "state", statements.counts_by_state(conn)),
            _by_label("syndicate_subscribers", "Subscribers by status.", "status", subscribers.counts(conn)),
            _deliveries(outbox.counts(conn)),
            _backlog(outbox.backlog(conn, app.clock())),
            _latency(conn),
            *_last_tick(meta.get(conn, "last_tick")),
            *_relays(relay_rows(conn, app)),
            *_editions(outbox.edition_reports(conn)),
            *_fediverse(conn),
            _by_label(
                "syndicate_inbound_reports",
                "Reports that came back, by kind ('new': not processed yet).",
                "kind",
                inbound_store.counts(conn),
            ),
        ]
    return "".join(line + "\n" for family in families for line in family.lines())


def _fediverse(conn: Connection) -> list[Family]:
    followers = Family("syndicate_fediverse_followers", "gauge", "Fediverse accounts following the actor.")
    followers.add(fediverse_store.follower_count(conn))
    servers = Family("syndicate_fediverse_servers", "gauge", "Servers (distinct inboxes) the followers are on.")
    servers.add(fediverse_store.server_count(conn))
    reactions = _by_label("syndicate_fediverse_reactions", "Likes, boosts and replies the statements drew.", "kind",
                          fediverse_store.reaction_counts(conn))  # fmt: skip
    return [followers, servers, reactions]


def _relays(rows: list[dict[str, Any]]) -> list[Family]:
    up = Family(
        "syndicate_relay_up",
        "gauge",
        "1 when the mail relay is usable, 0 while it rests (down, throttled, out of quota).",
    )
    rate = Family("syndicate_relay_rate", "gauge", "Messages per second the relay accepted recently, over every node.")
    sent = Family("syndicate_relay_sent_24h", "gauge", "Messages handed to the relay in the last 24 hours.")
    left = Family(
        "syndicate_relay_quota_left", "gauge", "Messages the relay's daily limit still allows (relays with one)."
    )
    for row in rows:
        up.add(0 if row["state"] in ("down", "throttled", "quota") else 1, relay=row["name"], state=row["state"])
        rate.add(row["rate"], relay=row["name"])
        sent.add(row["sent_24h"], relay=row["name"])
        if row["quota_left"] is not None:
            left.add(row["quota_left"], relay=row["name"])
    return [family for family in (up, rate, sent, left) if family.samples]


def _editions(rows: list[dict[str, Any]]) -> list[Family]:
    sent = Family("syndicate_edition_sent", "gauge", "Messages of each of the newest editions sent.")
    bounced = Family(
        "syndicate_edition_reports",
        "gauge",
        "Deliveries of each of the newest editions a report came back for (hard, soft, complaint), and the readers"
        " who unsubscribed after it (unsubscribe).",
    )
    rate = Family(
        "syndicate_edition_complaint_rate", "gauge", "Complaints over messages sent, per edition (the line is 0.003)."
    )
    for row in rows:
        edition = str(row["edition"])
        sent.add(row["sent"], edition=edition)
        for kind in ("hard", "soft", "complaints", "unsubscribes"):
            bounced.add(row[kind], edition=edition, kind=kind.removesuffix("s"))
        rate.add(row["complaint_rate"], edition=edition)
    return [family for family in (sent, bounced, rate) if family.samples]


def _by_label(name: str, help: str, label: str, counts: Mapping[str, int]) -> Family:
    family = Family(name, "gauge", help)
    for value, count in sorted(counts.items()):
        family.add(count, **{label: value})
    return family


def _deliveries(counts: Mapping[str, Mapping[str, int]]) -> Family:
    family = Family("syndicate_deliveries", "gauge", "Deliveries in the outbox by channel and state.")
    for channel, states in sorted(counts.items()):
        for state, count in sorted(states.items()):
            family.add(count, channel=channel, state=state)
    return family


def _backlog(backlog: Mapping[str, int]) -> Family:
    family = Family("syndicate_outbox_backlog", "gauge", "Deliveries due now and not yet done, by channel.")
    for channel, count in sorted(backlog.items()):
        family.add(count, channel=channel)
    return family


def _latency(conn: Connection) -> Family:
    family = Family(
        "syndicate_send_latency_seconds", "histogram", "Seconds from planning a delivery to its sending, by channel."
    )
    for sent in outbox.latency(conn, LATENCY_BUCKETS):
        for bound, within in zip(LATENCY_BUCKETS, sent.within, strict=True):
            family.add(within, "_bucket", channel=sent.channel, le=number(bound))
        family.add(sent.count, "_bucket", channel=sent.channel, le="+Inf")
        family.add(sent.total, "_sum", channel=sent.channel)
        family.add(sent.count, "_count", channel=sent.channel)
    return family


def _last_tick(last: Mapping[str, Any] | None) -> list[Family]:
    if not last:
        return []
    at = Family("syndicate_last_tick_timestamp_seconds", "gauge", "When the last tick started (Unix time).")
    at.add(datetime.fromisoformat(last["at"]).timestamp())
    took = Family("syndicate_last_tick_duration_seconds", "gauge", "How long the last tick took.")
    took.add(float(last["seconds"]))
    return [at, took]


def number(value: float) -> str:
    """A sample value as the format writes it (integers without a point; infinities as +Inf/-Inf)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value)) if isinstance(value, int) else f"{value:.1f}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
