"""Planning what the actor sends: for now, an ``Accept`` for every follower whose Follow the inbox took.

Each activity is kept once with the bytes every inbox gets (``activities``)
and planned in the outbox on the ``activitypub`` channel, so it is sent as
mail and webhooks are: claimed under a lease, retried on its policy, never
lost. The follower is marked once its Accept is planned; a later Follow of
the same account asks for another.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from syndicate.config import Config
from syndicate.outbox import Channel, SourceKind, plan_one
from syndicate.render import activitypub as documents
from syndicate.roles import Role
from syndicate.store import fediverse as store
from syndicate.store.db import Database


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
        planned = 0
        with self.db.write() as conn:
            for follower in store.unaccepted(conn):
                if stop():
                    break
                body = documents.accept(self.config, follower.follow_id, follower.actor_id, uuid.uuid4().hex)
                activity = store.add_activity(conn, "Accept", json.dumps(body, sort_keys=True), now)
                plan_one(conn, Channel.ACTIVITYPUB, SourceKind.ACTIVITY, activity, follower.inbox, now)
                store.mark_accepted(conn, follower.actor_id, follower.follow_id, now)
                planned += 1
        return {"accepts": planned}
