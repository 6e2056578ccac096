"""The reaper: leases whose node died are claimed again, or marked unknown after hand-off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from syndicate.outbox import Outbox
from syndicate.roles import Role

SILENT_BEATS = 3  # a node that missed this many heartbeats is dead: its claims move on
SILENT_AT_LEAST = 30.0  # seconds: a busy machine may delay a beat or two; a lease shorter than this serves anyway


class Reaper:
    """The stage that looks for dead leases, every tick (the daemon also runs it on every heartbeat)."""

    name = "reap"
    role = Role.WORKER

    def __init__(self, outbox: Outbox, beat_seconds: float) -> None:
        self.outbox = outbox
        self.silent_for = timedelta(seconds=max(SILENT_BEATS * beat_seconds, SILENT_AT_LEAST))

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Deal with every lease that ran out before ``now`` or whose node stopped beating."""
        return {k: v for k, v in self.outbox.reap(now, self.silent_for).items() if v}
