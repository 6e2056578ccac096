"""Plan partner events: one per revision (published, updated, retracted), one delivery per partner it concerns.

Planning follows the revision log with a cursor kept in the store, under an
exclusive lock, and each event's key is unique, so two ticks (or two nodes)
never plan the same thing twice. A new installation starts at the newest
revision: statements already published are history, not news.

Who gets what:

- a publication goes to every partner whose languages and categories match,
  unless the statement was published longer ago than the partner's
  ``max_age_days`` (a backfill of old statements is history, as for mail);
- an update goes to those, and to every partner that may hold an earlier
  version (so a correction reaches whoever copied the statement, however old);
- a retraction cancels whatever of the statement is still pending, and goes,
  as a tombstone, only to the partners it may have reached. A partner that
  never got the statement gets nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from syndicate import outbox
from syndicate.config import Config, PartnerConfig
from syndicate.model import Change, Revision
from syndicate.outbox import Channel, SourceKind
from syndicate.roles import Role
from syndicate.store import events as event_store
from syndicate.store import meta
from syndicate.store import statements as statement_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

CURSOR = "plan.partners.seq"
BATCH = 500
RETRACTED_BEFORE_SENT = "statement retracted before it was sent"


def matches(partner: PartnerConfig, revision: Revision) -> bool:
    """Whether the partner's filters take this revision (an empty filter takes everything)."""
    languages = {lang.lower() for lang in partner.languages}
    language_ok = not languages or revision.lang.lower() in languages
    category_ok = not partner.categories or bool(set(partner.categories) & set(revision.categories))
    return language_ok and category_ok


class EventPlanner:
    """The stage that turns new revisions into partner events and their deliveries."""

    name = "plan-partners"
    role = Role.SCHEDULER

    def __init__(self, config: Config, db: Database) -> None:
        self.partners = tuple(config.partners)
        self.max_age = {p.name: timedelta(days=config.partner_max_age_days(p)) for p in self.partners}
        self.db = db

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Plan an event for every revision recorded since the last run; return counts."""
        counts: Counter[str] = Counter()
        with self.db.exclusive("syndicate-plan-partners") as conn:
            cursor = meta.get(conn, CURSOR)
            if cursor is None or not self.partners:
                # A new installation, or no partners: what is on record now is not news to anyone.
                meta.put(conn, CURSOR, statement_store.last_seq(conn))
                return {}
            while batch := statement_store.revisions_since(conn, cursor, BATCH):
                for revision in batch:
                    self._revision(conn, revision, now, counts)
                cursor = batch[-1].seq
            meta.put(conn, CURSOR, cursor)
        return {k: v for k, v in counts.items() if v}

    def _revision(self, conn: Connection, revision: Revision, now: datetime, counts: Counter[str]) -> None:
        event_id = event_store.create(conn, f"revision:{revision.seq}", revision, now)
        if event_id is None:
            return
        counts["events"] += 1
        reached = outbox.reach(conn, Channel.WEBHOOK, SourceKind.EVENT, event_store.of_statement(revision.statement_id))
        if revision.change == Change.RETRACTED:
            pending = [i for reach in reached.values() for i in reach.pending]
            counts["cancelled"] += outbox.cancel(conn, pending, now, RETRACTED_BEFORE_SENT)
            targets = [p for p in self.partners if p.name in reached and reached[p.name].maybe_received]
        else:
            held = {name for name, reach in reached.items() if reach.maybe_received}
            targets = [p for p in self.partners if p.name in held or self._news_to(p, revision, now)]
        for partner in targets:
            counts["deliveries"] += plan_push(conn, event_id, partner.name, now)
        log.info("planned %s event of %s for %d partner(s)", revision.change.value, revision.statement_id, len(targets))

    def _news_to(self, partner: PartnerConfig, revision: Revision, now: datetime) -> bool:
        """Whether a partner that does not hold the statement is to get it: it matches, and is not too old."""
        if not matches(partner, revision):
            return False
        if now - revision.published <= self.max_age[partner.name]:
            return True
        log.info(
            "not pushing %s to %s: published %s, longer ago than its max_age_days (%d)",
            revision.statement_id,
            partner.name,
            revision.published.date(),
            self.max_age[partner.name].days,
        )
        return False


def replay(conn: Connection, partner: str, since: datetime, now: datetime) -> int:
    """Plan again, as new events (new webhook-ids), every event ``partner`` was sent since ``since``."""
    planned = 0
    sent = event_store.in_order(conn, outbox.sent_since(conn, Channel.WEBHOOK, SourceKind.EVENT, partner, since))
    revisions = statement_store.load_revisions(conn, {event.seq for event in sent})
    for event in sent:
        key = f"replay:{partner}:{event.id}:{now.isoformat()}"
        event_id = event_store.create(conn, key, revisions[event.seq], now, replay_of=event.id)
        if event_id is not None:
            planned += plan_push(conn, event_id, partner, now)
    log.info("replaying %d event(s) to %s, sent since %s", planned, partner, since.isoformat())
    return planned


def plan_push(conn: Connection, event_id: int, partner: str, now: datetime) -> bool:
    """Plan the delivery of an event to ``partner``; False if it was planned already."""
    return outbox.plan_one(conn, Channel.WEBHOOK, SourceKind.EVENT, event_id, partner, now)
