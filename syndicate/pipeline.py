"""One tick of the daemon: ingest, render, plan, deliver, ping; and its record in the store.

``build`` is the first half (statements in, feeds out); ``tick`` the whole.
Each stage is a function of the app, so ``once``, ``run`` and the tests all run
the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syndicate.app import App
from syndicate.ingest import IngestReport, ingest
from syndicate.render.feeds import FeedReport
from syndicate.store import meta

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    """What one tick did."""

    started: datetime
    ingest: IngestReport
    feeds: FeedReport
    pings: tuple[int, int] = (0, 0)
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The tick as ``status`` shows it."""
        return {
            "at": self.started.isoformat(),
            "seconds": round(self.seconds, 3),
            "published": len(self.ingest.published),
            "updated": len(self.ingest.updated),
            "retracted": len(self.ingest.retracted),
            "problems": len(self.ingest.problems),
            "files_written": len(self.feeds.written),
            "pings_sent": self.pings[0],
            "pings_failed": self.pings[1],
            "stages": self.stages,
        }


def never() -> bool:
    """A stop signal that never comes."""
    return False


def build(app: App, stop: Callable[[], bool] = never) -> TickReport:
    """Ingest the statements and bring the feeds up to date (then ping hubs)."""
    clock = time.monotonic()
    now = app.clock()
    ingested = ingest(app.source, app.db, app.config.site, now)
    feeds = app.feeds.build(now)
    report = TickReport(now, ingested, feeds)
    if not stop():
        report.pings = app.pinger.send_due(app.clock(), stop)
    report.seconds = time.monotonic() - clock
    return report


ROLES = ("all", "scheduler", "worker")


def tick(app: App, stop: Callable[[], bool] = never, role: str = "all") -> TickReport:
    """One tick: build, then every planning and delivery stage, then record it.

    ``role`` narrows it for a node of several: a "scheduler" ingests, renders and
    plans; a "worker" only delivers (and reaps expired leases).
    """
    clock = time.monotonic()
    report = build(app, stop) if role != "worker" else _idle(app)
    for stage in (s for s in app.stages if role == "all" or s.role == role):
        if stop():
            log.info("stopping: %s and later stages left for the next tick", stage.name)
            break
        report.stages[stage.name] = stage.run(app.clock(), stop)
    report.seconds = time.monotonic() - clock
    if role != "worker":
        with app.db.write() as conn:
            meta.put(conn, "last_tick", report.summary())
    log.info("tick done in %.2f s", report.seconds)
    return report


def _idle(app: App) -> TickReport:
    """A worker's tick reads no statements and renders nothing."""
    return TickReport(app.clock(), IngestReport(), FeedReport())
