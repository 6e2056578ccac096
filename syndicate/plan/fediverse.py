"""Planning what the actor sends: an ``Accept`` for each new follower, and an activity for each revision.

Each activity is kept once with the bytes every inbox gets (``activities``)
and planned in the outbox on the ``activitypub`` channel, so it is sent as
mail and webhooks are: claimed under a lease, retried on its policy, never
lost.

- A follower is marked once its Accept is planned; a later Follow of the same
  account asks for another.
- Each revision since the last run becomes a ``Create``, ``Update`` or
  ``Delete``, planned once per distinct inbox (a server's shared inbox, else
  the follower's own): a server with a thousand followers here gets one copy.
- Enabling the actor on a site that already has statements pushes none of
  them, and a backfilled statement older than ``email.max_age_days`` is not
  pushed into anyone's timeline (the same age rule as mail).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from syndicate.config import Config
from syndicate.model import Change
from syndicate.outbox import Channel, SourceKind, plan_many, plan_one
from syndicate.render import activitypub as documents
from syndicate.roles import Role
from syndicate.store import fediverse as store
from syndicate.store import meta
from syndicate.store import statements as statement_store
from syndicate.store.db import Database

CURSOR = "fediverse_cursor"  # the seq of the last revision planned
BATCH = 500


@dataclass
class FediversePlanner:
    """Plans the actor's activities (with ``[fediverse] enabled``)."""

    name = "plan-fediverse"
    role = Role.SCHEDULER

    config: Config
    db: Database

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Plan an Accept for each follower still waiting for one; how many."""
        if not self.config.fediverse.enabled:
            return {}
        counts: Counter[str] = Counter(accepts=0)
        with self.db.exclusive("syndicate-plan-fediverse") as conn:
            for follower in store.unaccepted(conn):
                if stop():
                    break
                body = documents.accept(self.config, follower.follow_id, follower.actor_id, uuid.uuid4().hex)
                activity = store.add_activity(conn, "Accept", json.dumps(body, sort_keys=True), now)
                plan_one(conn, Channel.ACTIVITYPUB, SourceKind.ACTIVITY, activity, follower.inbox, now)
                store.mark_accepted(conn, follower.actor_id, follower.follow_id, now)
                counts["accepts"] += 1
            self._revisions(conn, now, counts)
        return {k: v for k, v in counts.items() if v or k == "accepts"}

    def _revisions(self, conn: Connection, now: datetime, counts: Counter[str]) -> None:
        """An activity for each revision recorded since the last run, to every follower's server once."""
        cursor = meta.get(conn, CURSOR)
        if cursor is None:  # the actor is new: what is on record now is not news to its followers
            meta.put(conn, CURSOR, statement_store.last_seq(conn))
            return
        oldest = now - timedelta(days=self.config.email.max_age_days)
        while batch := statement_store.revisions_since(conn, cursor, BATCH):
            for revision in batch:
                if revision.change == Change.PUBLISHED and revision.published < oldest:
                    counts["too_old"] += 1
                    continue
                activity = documents.activity_for(self.config, revision)
                activity_id = store.add_activity(conn, activity["type"], json.dumps(activity, sort_keys=True), now)
                counts["activities"] += 1
                counts["deliveries"] += plan_many(conn, Channel.ACTIVITYPUB, SourceKind.ACTIVITY, activity_id,
                                                  store.delivery_targets(), now)  # fmt: skip
            cursor = batch[-1].seq
        meta.put(conn, CURSOR, cursor)
