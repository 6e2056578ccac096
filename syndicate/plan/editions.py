"""Plan newsletter editions: one per published statement (and language), and daily/weekly digests.

Planning follows the revision log with a cursor kept in the store, under an
exclusive lock, so two ticks (or two nodes) never plan the same thing twice;
each edition's key is unique as well. An edition goes to the subscribers
active when it is planned: a later subscriber does not get past statements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from syndicate import outbox
from syndicate.config import WEEKDAYS, Config
from syndicate.model import Change, Revision
from syndicate.outbox import Channel, SourceKind
from syndicate.render.email import EmailRenderer
from syndicate.roles import Role
from syndicate.store import editions, meta
from syndicate.store import statements as statement_store
from syndicate.store.db import Database
from syndicate.subscribers import split

log = logging.getLogger(__name__)

CURSOR = "plan.email.seq"
RETRACTED = "statement retracted before it was sent"
BATCH = 500


class EditionPlanner:
    """The stage that turns new revisions, and digest times, into editions and deliveries."""

    name = "plan-email"
    role = Role.SCHEDULER

    def __init__(self, config: Config, db: Database, renderer: EmailRenderer) -> None:
        self.config = config
        self.db = db
        self.renderer = renderer

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Plan what is due at ``now``; return counts."""
        counts = {"editions": 0, "deliveries": 0, "cancelled": 0}
        with self.db.exclusive("syndicate-plan-email") as conn:
            self._statements(conn, now, counts)
            for period in ("daily", "weekly"):
                self._digest(conn, period, now, counts)
        return {k: v for k, v in counts.items() if v}

    # -- one edition per statement --

    def _statements(self, conn: Connection, now: datetime, counts: dict[str, int]) -> None:
        cursor = meta.get(conn, CURSOR)
        if cursor is None:
            # A new installation: the statements already published are history, not news.
            meta.put(conn, CURSOR, statement_store.last_seq(conn))
            return
        while batch := statement_store.revisions_since(conn, cursor, BATCH):
            for revision in batch:
                self._revision(conn, revision, now, counts)
            cursor = batch[-1].seq
        meta.put(conn, CURSOR, cursor)

    def _revision(self, conn: Connection, revision: Revision, now: datetime, counts: dict[str, int]) -> None:
        if revision.change == Change.RETRACTED:
            of_statement = editions.of_statement(revision.statement_id)
            counts["cancelled"] += outbox.cancel_sources(conn, SourceKind.EDITION, of_statement, now, RETRACTED)
            return
        if revision.change == Change.UPDATED and not self.config.email.resend_updates:
            return
        if now - revision.published > timedelta(days=self.config.email.max_age_days):
            log.info(
                "not mailing %s: published %s, longer ago than email.max_age_days",
                revision.statement_id,
                revision.published.date(),
            )
            return
        key = edition_key(revision, self.config.email.resend_updates)
        rendered = self.renderer.statement(revision, key, now)
        edition_id = editions.create(
            conn, key, "statement", revision.lang, rendered.subject, rendered.message, now, revision.statement_id
        )
        if edition_id is None:
            return
        audience = editions.audience(revision.lang, revision.categories, "immediate")
        planned = plan_edition(conn, edition_id, audience, now)
        counts["editions"] += 1
        counts["deliveries"] += planned
        log.info("planned edition %s for %d subscribers", key, planned)

    # -- digests --

    def _digest(self, conn: Connection, period: str, now: datetime, counts: dict[str, int]) -> None:
        slot = latest_slot(self.config, period, now)
        slot_key, seq_key = f"digest.{period}.slot", f"digest.{period}.seq"
        last_slot = meta.get(conn, slot_key)
        if last_slot is not None and datetime.fromisoformat(last_slot) >= slot:
            return
        since = meta.get(conn, seq_key)
        latest = statement_store.last_seq(conn)
        if last_slot is not None and since is not None:
            entries = self._digest_entries(conn, since, latest, now)
            # A digest is cut per language and category choice: readers of several languages get one each.
            choices = {(lang, categories) for languages, categories in editions.signatures(conn, period)
                       for lang in split(languages)}  # fmt: skip
            for lang, categories in sorted(choices):
                self._digest_edition(conn, period, slot, entries, lang, categories, now, counts)
        meta.put(conn, slot_key, slot.isoformat())
        meta.put(conn, seq_key, latest)

    def _digest_entries(self, conn: Connection, since: int, latest: int, now: datetime) -> list[Revision]:
        """Statements first published after revision ``since``, as they read now: retracted ones and a
        backfill older than ``email.max_age_days`` left out."""
        newest: dict[str, Revision] = {}
        fresh: set[str] = set()
        for revision in _revisions_between(conn, since, latest):
            newest[revision.statement_id] = revision
            if revision.change == Change.PUBLISHED:
                fresh.add(revision.statement_id)
        oldest = now - timedelta(days=self.config.email.max_age_days)
        return [
            r
            for r in newest.values()
            if r.statement_id in fresh and r.change != Change.RETRACTED and r.published >= oldest
        ]

    def _digest_edition(
        self,
        conn: Connection,
        period: str,
        slot: datetime,
        entries: list[Revision],
        lang: str,
        categories: str,
        now: datetime,
        counts: dict[str, int],
    ) -> None:
        wanted = set(split(categories))
        chosen = [r for r in entries if r.lang == lang and (not wanted or wanted & set(r.categories))]
        if not chosen:
            return
        key = f"digest:{period}:{slot.date().isoformat()}:{lang}:{categories or '*'}"
        rendered = self.renderer.digest(period, lang, chosen, key, now)
        edition_id = editions.create(conn, key, "digest", lang, rendered.subject, rendered.message, now,
                                     holds=[r.statement_id for r in chosen])  # fmt: skip
        if edition_id is None:
            return
        planned = plan_edition(conn, edition_id, editions.digest_audience(period, lang, categories), now)
        counts["editions"] += 1
        counts["deliveries"] += planned
        log.info("planned %s digest %s (%d statements) for %d subscribers", period, key, len(chosen), planned)


def plan_edition(conn: Connection, edition_id: int, audience: Any, now: datetime) -> int:
    """Plan a mail delivery of the edition to every subscriber in ``audience`` (an SQL condition); how many."""
    planned = outbox.plan_many(conn, Channel.EMAIL, SourceKind.EDITION, edition_id, editions.recipients(audience), now)
    editions.count_recipients(conn, edition_id, planned)
    return planned


def edition_key(revision: Revision, resend_updates: bool) -> str:
    """The key of the edition that mails ``revision``: the statement's, or its update's when updates are mailed."""
    update = revision.change == Change.UPDATED and resend_updates
    return f"statement:{revision.statement_id}" + (f":update:{revision.seq}" if update else "")


def latest_slot(config: Config, period: str, now: datetime) -> datetime:
    """The most recent digest time at or before ``now`` (in the site's zone)."""
    local = now.astimezone(config.site.tz)
    spec = config.email.digest.daily if period == "daily" else config.email.digest.weekly.split()[1]
    hour, minute = (int(part) for part in spec.split(":"))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if period == "daily":
        return slot if slot <= local else slot - timedelta(days=1)
    weekday = WEEKDAYS.index(config.email.digest.weekly.split()[0])
    slot -= timedelta(days=(local.weekday() - weekday) % 7)
    return slot if slot <= local else slot - timedelta(days=7)


def _revisions_between(conn: Connection, seq: int, last: int) -> list[Revision]:
    found: list[Revision] = []
    while batch := statement_store.revisions_since(conn, seq, BATCH):
        found.extend(r for r in batch if r.seq <= last)
        if batch[-1].seq >= last:
            break
        seq = batch[-1].seq
    return found
