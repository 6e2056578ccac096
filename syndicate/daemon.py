"""The daemon: APScheduler runs the tick every ``poll_seconds``, and once more at each embargo.

A statement dated 14:00 appears at 14:00: after every tick the daemon adds a
one-off job at each future publication time. Ticks never overlap (one lock).
SIGTERM and SIGINT let the tick in progress finish its current step (every
file is written whole or not at all) and then stop.

The web pages are served from the same process, on threads of their own, by
the roles "all" and "scheduler" when ``web.serve_in_run`` (the default) says
so; a worker serves them only when asked (``run --web``), so a scheduler and
any number of workers start side by side on one host without fighting over
``web.bind``. They stop first on SIGTERM.

Several daemons may share one PostgreSQL database, each in a role: "all",
"scheduler" (ingest, render, plan) or "worker" (deliver). Each registers as a
node and beats every few seconds; the beat also extends the leases of the
deliveries it holds, so a long batch is never taken from a live node, while a
dead node's leases run out and the reaper hands them on.

Every time the daemon records or compares is the app's clock (``app.clock``).
APScheduler keeps its triggers on the real clock, so an embargo's one-off
job is set at the real moment the app's clock reaches it; the heartbeat's age
in ``/healthz`` is measured on the monotonic clock, since it asks whether the
scheduler's thread still runs, whatever the app's clock says.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syndicate.app import App
from syndicate.errors import ConfigError
from syndicate.inbound.listener import Listener
from syndicate.pipeline import ROLES, tick
from syndicate.roles import Role
from syndicate.store import nodes, statements
from syndicate.web import create_app
from syndicate.web.server import WebServer

log = logging.getLogger(__name__)

FORGET_NODES_AFTER = timedelta(days=1)


def serves_web(app: App, role: Role, asked: bool | None = None) -> bool:
    """Whether a daemon in ``role`` serves the pages: as ``asked``, else the roles that plan, per web.serve_in_run."""
    if asked is not None:
        return asked
    return Role(role).plans and app.config.web.serve_in_run


class Daemon:
    """Runs ticks on a schedule until told to stop."""

    def __init__(self, app: App, serve_web: bool | None = None, role: Role | str = Role.ALL) -> None:
        """A daemon in ``role``; ``serve_web`` (None: see :func:`serves_web`) says whether it serves the pages."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        role = Role(role)
        self.app = app
        self.role = role
        self.beat_every = app.config.heartbeat_seconds
        self.stopping = threading.Event()
        self._tick_lock = threading.Lock()
        self._last_beat: float | None = None
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.web = self._web_server() if serves_web(app, role, serve_web) else None
        inbound = app.config.inbound
        self.listener = (
            Listener(app.receiver, inbound.bind, inbound.lmtp, inbound.max_message_bytes) if inbound.bind else None
        )

    def run(self) -> None:
        """Start ticking and block until SIGTERM or SIGINT (or :meth:`stop`)."""
        self._handle_signals()
        if self.web is not None:
            self._start_web()  # a taken address stops the start here, before any tick
        if self.listener is not None:
            self._start_listener()
        poll = self.app.config.scheduler.poll_seconds
        with self.app.db.write() as conn:
            nodes.register(conn, self.app.node, self.role, self.app.clock())
        # Both start at once; "at once" is on APScheduler's own clock, the real one.
        self.scheduler.add_job(self._tick, IntervalTrigger(seconds=poll), id="tick", next_run_time=_real_now())
        beat = IntervalTrigger(seconds=self.beat_every)
        self.scheduler.add_job(self._beat, beat, id="heartbeat", next_run_time=_real_now())
        self.scheduler.start()
        log.info("daemon started as node %s (role %s): a tick every %d s", self.app.node, self.role, poll)
        self.stopping.wait()
        if self.web is not None:
            self.web.stop()
        if self.listener is not None:
            self.listener.stop()
        log.info("stopping: waiting for the tick in progress")
        self.scheduler.shutdown(wait=True)
        with self.app.db.write() as conn:
            nodes.stopped(conn, self.app.node, self.app.clock())
        log.info("daemon stopped")

    def stop(self) -> None:
        """Ask the daemon to stop after the current step."""
        self.stopping.set()

    def health(self) -> dict[str, Any]:
        """Whether the scheduler runs and its heartbeat is recent (``/healthz`` shows this)."""
        since = None if self._last_beat is None else time.monotonic() - self._last_beat
        alive = bool(self.scheduler.running) and since is not None and since < 3 * self.beat_every
        return {
            "alive": alive,
            "seconds_since_heartbeat": None if since is None else round(since, 1),
            "tick_running": self._tick_lock.locked(),
        }

    def _beat(self) -> None:
        """Say this node is alive (the senders keep the leases of what they send: see Outbox.keep_alive)."""
        now = self.app.clock()
        try:
            with self.app.db.write() as conn:
                nodes.beat(conn, self.app.node, now)
                nodes.forget_old(conn, now, FORGET_NODES_AFTER)
        except Exception:
            log.exception("heartbeat failed")  # the next beat tries again; leases are longer than a beat
            return
        self._last_beat = time.monotonic()
        if self.role != Role.SCHEDULER:
            self._reap(now)

    def _reap(self, now: datetime) -> None:
        """Between ticks too: a node that stopped beating hands its work on within a few beats, not a lease."""
        try:
            reaped = self.app.stage("reap").run(now, lambda: False)
        except Exception:
            log.exception("reaping failed")  # the next beat, or tick, tries again
            return
        if reaped:
            log.info("moved on the work of silent nodes: %s", reaped)

    def _start_web(self) -> None:
        assert self.web is not None
        try:
            self.web.start()
        except ConfigError as exc:
            raise ConfigError(
                exc.key,
                f"{exc.reason} (if another process on this host serves the pages there, give this one "
                "its own web.bind, or run it without the pages: --no-web, or web.serve_in_run = false)",
            ) from exc

    def _start_listener(self) -> None:
        assert self.listener is not None
        try:
            self.listener.start()
        except ConfigError:
            if self.web is not None:
                self.web.stop()
            raise

    def _web_server(self) -> WebServer:
        settings = self.app.config.web
        return WebServer(create_app(self.app, scheduler=self.health), settings.bind, threads=settings.threads)

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
                tick(self.app, stop=self.stopping.is_set, role=self.role)
            except Exception:
                # A failed tick is logged and the next one tries again; the daemon lives on.
                log.exception("tick failed")
            if self.role.plans:
                self._schedule_embargoes()

    def _schedule_embargoes(self) -> None:
        """One job at each future publication time, so embargoes lift on the minute."""
        now = self.app.clock()
        with self.app.db.read() as conn:
            times = [t for t in statements.embargo_times(conn) if t > now]
        # APScheduler fires on the real clock: each job is set where the app's clock reads the embargo time.
        lag = _real_now() - now
        for moment in times:
            job_id = f"embargo:{moment.isoformat()}"
            if self.scheduler.get_job(job_id) is None:
                self.scheduler.add_job(self._tick, DateTrigger(run_date=moment + lag), id=job_id)
                log.info("embargo: a tick is scheduled at %s", moment.isoformat())


def _real_now() -> datetime:
    """The real time, as APScheduler's triggers count it (the app's clock may be another)."""
    return datetime.now(UTC)
