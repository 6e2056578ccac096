"""The daemon: APScheduler runs the tick every ``poll_seconds``, and once more at each embargo.

A statement dated 14:00 appears at 14:00: after every tick the daemon adds a
one-off job at each future publication time. Ticks never overlap (one lock).
SIGTERM and SIGINT let the tick in progress finish its current step (every
file is written whole or not at all) and then stop.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syndicate.app import App
from syndicate.pipeline import tick
from syndicate.store import statements

log = logging.getLogger(__name__)


class Daemon:
    """Runs ticks on a schedule until told to stop."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stopping = threading.Event()
        self._tick_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def run(self) -> None:
        """Start ticking and block until SIGTERM or SIGINT (or :meth:`stop`)."""
        self._handle_signals()
        poll = self.app.config.scheduler.poll_seconds
        self.scheduler.add_job(self._tick, IntervalTrigger(seconds=poll), id="tick", next_run_time=datetime.now(UTC))
        self.scheduler.start()
        log.info("daemon started: a tick every %d s", poll)
        self.stopping.wait()
        log.info("stopping: waiting for the tick in progress")
        self.scheduler.shutdown(wait=True)
        log.info("daemon stopped")

    def stop(self) -> None:
        """Ask the daemon to stop after the current step."""
        self.stopping.set()

    def _handle_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _tick(self) -> None:
        if self.stopping.is_set():
            return
        with self._tick_lock:
            try:
                tick(self.app, stop=self.stopping.is_set)
            except Exception:
                # A failed tick is logged and the next one tries again; the daemon lives on.
                log.exception("tick failed")
            self._schedule_embargoes()

    def _schedule_embargoes(self) -> None:
        """One job at each future publication time, so embargoes lift on the minute."""
        now = datetime.now(UTC)
        with self.app.db.read() as conn:
            times = [t for t in statements.embargo_times(conn) if t > now]
        for moment in times:
            job_id = f"embargo:{moment.isoformat()}"
            if self.scheduler.get_job(job_id) is None:
                self.scheduler.add_job(self._tick, DateTrigger(run_date=moment), id=job_id)
                log.info("embargo: a tick is scheduled at %s", moment.isoformat())
