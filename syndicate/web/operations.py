"""``/healthz`` and ``/metrics``: what a load balancer and Prometheus ask.

``/healthz`` answers 200 when every check passes and 503 otherwise, with a
JSON body naming each check:

- ``database``: a query goes through;
- ``scheduler``: inside ``syndicate run``, the scheduler runs and its
  heartbeat is recent; under ``syndicate serve`` alone there is none to check;
- ``outbox``: deliveries due now, by channel, and how long the oldest has
  waited; unhealthy past ``web.health_overdue_seconds`` (0: never);
- ``complaints``: a ``warning`` when one of the newest editions drew
  complaints from more than 0.3% of those it was sent to (Gmail's and
  Yahoo's line); it never makes the answer 503, since mail still goes;
- ``feeds_folder``, with the site's pages ``site_folder``, and with
  ``email.transport = "file"`` ``mail_folder``: a file can be made (and is
  removed again) in ``feeds.dir``, ``site.dir`` and ``email.outbox`` (or, while one does not exist yet, in the folder the
  writers would create it in). Nothing is guessed from the mode bits: only
  a real write tells (root writes whatever they say; a read-only mount
  refuses even root).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from syndicate import outbox
from syndicate.store import meta
from syndicate.web import metrics
from syndicate.web.context import Web


class Operations:
    """``/healthz`` and ``/metrics``."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.app = web.app

    def blueprint(self) -> Blueprint:
        """The routes of this area."""
        bp = Blueprint("operations", __name__)
        bp.add_url_rule("/healthz", "healthz", self.healthz, methods=["GET"])
        bp.add_url_rule("/metrics", "metrics", self.metrics, methods=["GET"])
        return bp

    def healthz(self) -> Response:
        """Every check, and 503 if one fails."""
        checks: dict[str, dict[str, Any]] = {"database": self._database(), "scheduler": self._scheduler()}
        if checks["database"]["ok"]:
            checks["outbox"] = self._outbox()
            checks["complaints"] = self._complaints()
        checks.update(self._folders())
        healthy = all(check["ok"] for check in checks.values())
        body = {"status": "ok" if healthy else "unhealthy", "checks": checks}
        response = Response(json.dumps(body, sort_keys=True, default=str) + "\n", 200 if healthy else 503)
        response.content_type = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    def metrics(self) -> Response:
        """The Prometheus text exposition."""
        try:
            text = metrics.exposition(self.app)
        except SQLAlchemyError as exc:
            return Response(f"database unreachable: {type(exc).__name__}\n", 503, content_type="text/plain")
        return Response(text, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    def _database(self) -> dict[str, Any]:
        try:
            with self.app.db.read() as conn:
                conn.execute(select(1))
                last = meta.get(conn, "last_tick")
        except SQLAlchemyError as exc:
            # The class name only: the message may carry a host name or a path.
            return {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
        return {"ok": True, "last_tick": last["at"] if last else None}

    def _scheduler(self) -> dict[str, Any]:
        if self.web.scheduler is None:
            return {"ok": True, "in_process": False}
        state = dict(self.web.scheduler())
        return {**state, "ok": bool(state.get("alive")), "in_process": True}

    def _outbox(self) -> dict[str, Any]:
        now = self.app.clock()
        with self.app.db.read() as conn:
            backlog = outbox.backlog(conn, now)
            oldest = outbox.oldest_due(conn, now)
        waited = _seconds_since(oldest, now)
        limit = self.app.config.web.health_overdue_seconds
        return {"ok": not limit or waited <= limit, "backlog": backlog, "oldest_due_seconds": round(waited, 1)}

    def _complaints(self) -> dict[str, Any]:
        """The newest editions' complaint rates: a warning past the 0.3% line, never a 503 (mail still goes)."""
        with self.app.db.read() as conn:
            over = [e for e in outbox.edition_reports(conn) if e["over_the_line"]]
        found: dict[str, Any] = {"ok": True, "line": outbox.COMPLAINT_LINE}
        if over:
            found["warning"] = "complaint rate over the 0.3% line: " + ", ".join(
                f"edition {e['edition']} {e['complaint_rate']:.2%}" for e in over
            )
        return found

    def _folders(self) -> dict[str, dict[str, Any]]:
        config = self.app.config
        folders = {"feeds_folder": ("feeds.dir", config.feeds.dir)}
        if config.site.pages:
            folders["site_folder"] = ("site.dir", config.site.dir)
        if config.email.transport == "file":
            folders["mail_folder"] = ("email.outbox", config.email.outbox)
        return {name: writable(key, folder) for name, (key, folder) in folders.items()}


def writable(key: str, folder: Path) -> dict[str, Any]:
    """Whether a file can be written in ``folder`` (setting ``key``), or in the folder it would be made in."""
    nearest = folder
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    try:
        if not nearest.is_dir():
            raise NotADirectoryError(nearest)
        handle, name = tempfile.mkstemp(prefix=".healthz-", dir=nearest)  # hidden: never served, never sent
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        # The class name only, as for the database: the path is the server's business.
        return {"ok": False, "error": f"{key} cannot be written ({type(exc).__name__})"}
    return {"ok": True}


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment else 0.0
