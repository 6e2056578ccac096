"""One tick of the daemon: ingest, render, plan, deliver, ping; and its record in the store.

``build`` is the first half (statements in, feeds out); ``tick`` the whole.
Each stage is a function of the app, so ``once``, ``run`` and the tests all run
the same code. A stage that fails is logged and named in the report, and the
stages after it still run: a feed that cannot be written does not hold back
the mail, nor the mail the partners.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from syndicate.app import App, Stage
from syndicate.ingest import IngestReport, ingest
from syndicate.model import Problem
from syndicate.plan.editions import EditionPlanner
from syndicate.progress import Progress
from syndicate.render.feeds import FeedReport
from syndicate.render.site.builder import SiteReport
from syndicate.roles import Role
from syndicate.store import meta

log = logging.getLogger(__name__)
T = TypeVar("T")
KEPT_PROBLEMS = 20  # of a tick's, kept for the console beside their count


@dataclass
class TickReport:
    """What one tick did."""

    started: datetime
    ingest: IngestReport
    feeds: FeedReport
    site: SiteReport = field(default_factory=SiteReport)
    pings: tuple[int, int] = (0, 0)
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # stage name -> what went wrong
    seconds: float = 0.0

    @property
    def problems(self) -> list[Problem]:
        """What the statements, the feeds and the pages had wrong, in that order."""
        return [*self.ingest.problems, *self.feeds.problems, *self.site.problems]

    def summary(self) -> dict[str, Any]:
        """The tick as ``status`` shows it."""
        return {
            "at": self.started.isoformat(),
            "seconds": round(self.seconds, 3),
            "published": len(self.ingest.published),
            "updated": len(self.ingest.updated),
            "retracted": len(self.ingest.retracted),
            "problems": len(self.problems),
            "problem_list": [str(p) for p in self.problems[:KEPT_PROBLEMS]],
            "files_written": len(self.feeds.written),
            "pages_written": len(self.site.written),
            "pings_sent": self.pings[0],
            "pings_failed": self.pings[1],
            "stages": self.stages,
            "failed": self.failed,
        }


def never() -> bool:
    """A stop signal that never comes."""
    return False


def build(app: App, stop: Callable[[], bool] = never) -> TickReport:
    """Ingest the statements and bring the feeds and the site's pages up to date (then ping hubs)."""
    clock = time.monotonic()
    now = app.clock()
    report = TickReport(now, ingest(app.source, app.db, app.config.site, now), FeedReport())
    report.feeds = _guarded(report, "render-feeds", lambda: app.feeds.build(now)) or FeedReport()
    report.site = _guarded(report, "render-site", lambda: app.site.build(now)) or SiteReport()
    if not stop():
        report.pings = _guarded(report, "ping-hubs", lambda: app.pinger.send_due(app.clock(), stop)) or (0, 0)
    report.seconds = time.monotonic() - clock
    return report


def _guarded(report: TickReport, name: str, step: Callable[[], T]) -> T | None:
    """Run one step; a failure is logged and noted in ``report``, and the tick goes on without its result."""
    try:
        return step()
    except Exception as exc:
        log.exception("%s failed; the stages after it still run", name)
        report.failed[name] = f"{type(exc).__name__}: {exc}"
        return None


ROLES = tuple(Role)


def tick(
    app: App, stop: Callable[[], bool] = never, role: Role | str = Role.ALL, progress: Progress | None = None
) -> TickReport:
    """One tick: build, then every planning and delivery stage, then record it.

    ``role`` narrows it for a node of several: a "scheduler" ingests, renders and
    plans; a "worker" only delivers (and reaps expired leases). ``progress``
    shows a person watching how a long mail run goes.
    """
    clock = time.monotonic()
    role = Role(role)
    report = build(app, stop) if role.plans else _idle(app)
    for stage in (s for s in app.stages if role.runs(s.role)):
        if stop():
            log.info("stopping: %s and later stages left for the next tick", stage.name)
            break
        began = time.monotonic()
        counts = _guarded(report, stage.name, _step(app, stage, stop, progress))
        if counts is not None:
            report.stages[stage.name] = counts
            if stage is app.email_sender and counts.get("sent"):  # the console shows the last run's rate
                _record_send(app, counts["sent"], time.monotonic() - began)
    if role.plans and report.stages.get(EditionPlanner.name, {}).get("editions"):
        _archive_new_editions(app, report)
    report.seconds = time.monotonic() - clock
    if role.plans:
        with app.db.write() as conn:
            meta.put(conn, "last_tick", report.summary())
    log.info("tick done in %.2f s", report.seconds)
    return report


def _archive_new_editions(app: App, report: TickReport) -> None:
    """Editions planned this tick join the newsletter archive now, not a tick later."""
    again = _guarded(report, "render-site", lambda: app.site.build(app.clock()))
    if again is not None:
        report.site.written.extend(again.written)
        report.site.problems.extend(again.problems)


def _record_send(app: App, sent: int, seconds: float) -> None:
    with app.db.write() as conn:
        meta.put(conn, "last_send", {"at": app.clock().isoformat(), "sent": sent, "seconds": round(seconds, 3),
                                     "per_second": round(sent / seconds, 1) if seconds > 0 else None})  # fmt: skip


def _step(app: App, stage: Stage, stop: Callable[[], bool], progress: Progress | None) -> Callable[[], dict[str, int]]:
    """The stage's run at the app's time now; the mail sender's shows its progress too."""
    if stage is app.email_sender:
        return partial(app.email_sender.run, app.clock(), stop, progress=progress)
    return partial(stage.run, app.clock(), stop)


def _idle(app: App) -> TickReport:
    """A worker's tick reads no statements and renders nothing."""
    return TickReport(app.clock(), IngestReport(), FeedReport())
