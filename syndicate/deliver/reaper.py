"""The reaper: leases whose node died are claimed again, or marked unknown after hand-off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from syndicate.outbox import Outbox
from syndicate.roles import Role


class Reaper:
    """The stage that looks for expired leases, every tick."""

    name = "reap"
    role = Role.WORKER

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Deal with every lease that ran out before ``now``."""
        return {k: v for k, v in self.outbox.reap(now).items() if v}
