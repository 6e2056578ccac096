"""The inbound listener killed (SIGKILL) while 1,000 reports come in loses none and acts on none twice.

``syndicate inbound serve`` runs as its own process; a sender plays the
organisation's MX: it delivers one bounce per newsletter over a kept SMTP
connection and, like any MTA, delivers again later what it did not see
accepted (no 250: refused, reset, or no answer). The listener is killed
part-way and started again. Then every report the sender saw accepted is in
the database, every one is stored once (what was committed but not answered
is recognised when it comes again), and each subscriber was bounced by
exactly one change.
"""

from __future__ import annotations

import contextlib
import signal
import smtplib
import socket
import subprocess
import sys
import time

import pytest
from inbound_reports import postfix_dsn
from sqlalchemy import func, select

from syndicate import outbox
from syndicate.pipeline import tick
from syndicate.store import inbound as inbound_store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import inbound, inbound_raw, subscriber_changes
from syndicate.subscribers import Frequency, NewSubscriber

REPORTS = 1000
KILL_AFTER = 300
CONFIG = """
[email]
from_address = "news@example.org"
return_path = "bounces@bounces.example.org"
batch = 500
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(site, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.root / "config.toml"), "-q",
               "inbound", "serve", "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    process = subprocess.Popen(command, cwd=site.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.05)
    raise AssertionError("the listener did not start")


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    process.send_signal(signum)
    process.wait(timeout=20)
    if process.stderr is not None:
        process.stderr.close()


class Sender:
    """An MTA delivering reports: one kept connection, again later for what it did not see accepted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.smtp: smtplib.SMTP | None = None

    def deliver(self, raw: bytes, to: str) -> bool:
        """True once the listener answered 250 to the message's DATA."""
        try:
            if self.smtp is None:
                self.smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=5)
                self.smtp.ehlo("mx.example.org")
            self.smtp.sendmail("", [to], raw)
            return True
        except (OSError, smtplib.SMTPException):
            self.close()
            return False

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError):  # the listener may be dead
                self.smtp.close()
            self.smtp = None


@pytest.mark.slow
def test_sigkill_of_the_listener_loses_no_accepted_report_and_acts_on_none_twice(site, make_app):
    site.extra = CONFIG
    app = make_app(site)
    tick(app)
    with app.db.write() as conn:
        people = [NewSubscriber(f"r{i}@receiver.test", ("en",), (), Frequency.IMMEDIATE, True, "test")
                  for i in range(REPORTS)]  # fmt: skip
        subscriber_store.add_many(conn, people, app.clock())
    site.statement("news.md", "News", "2026-11-26T13:00:00+03:00")
    assert tick(app).stages["send-email"] == {"sent": REPORTS}  # written to files, each with its return path
    return_path = app.email_composer.return_path
    assert return_path is not None
    with app.db.read() as conn:
        people_by_id = {s.id: s.email for s in subscriber_store.iterate(conn)}
        delivery_to = {int(r["target"]): int(r["id"]) for r in outbox.listing(conn, None, "email", REPORTS * 2)}
    reports = {}  # each report's bytes -> the return path it is sent to
    for subscriber_id, email in people_by_id.items():
        path = return_path.sender(delivery_to[subscriber_id])
        reports[postfix_dsn(path, email, delivery_to[subscriber_id])] = path

    port = _free_port()
    listener = _serve(site, port)
    sender = Sender(port)
    accepted: set[bytes] = set()
    waiting = list(reports)
    killed = False
    deadline = time.monotonic() + 120
    try:
        while waiting:
            assert time.monotonic() < deadline, f"{len(waiting)} reports never accepted"
            raw = waiting.pop(0)
            if sender.deliver(raw, reports[raw]):
                accepted.add(raw)
            else:
                waiting.append(raw)  # tried again later, as an MTA does
                time.sleep(0.01)
            if not killed and len(accepted) >= KILL_AFTER:
                _stop(listener, signal.SIGKILL)
                killed = True
                time.sleep(0.3)  # the sender meets a dead port for a moment
                listener = _serve(site, port)
    finally:
        sender.close()
        _stop(listener, signal.SIGTERM)

    assert killed and accepted == set(reports)
    tick(app)  # what was stored and not processed when the listener died
    with app.db.read() as conn:
        stored = {bytes(r) for r in conn.execute(select(inbound_raw.c.raw)).scalars()}
        assert conn.execute(select(func.count()).select_from(inbound)).scalar_one() == REPORTS, "each stored once"
        assert inbound_store.unprocessed(conn, 10) == []
        changes = conn.execute(
            select(subscriber_changes.c.subscriber_id, func.count()).group_by(subscriber_changes.c.subscriber_id)
        ).all()
        statuses = {s.status.value for s in subscriber_store.iterate(conn)}
    assert stored == set(reports)
    assert len(changes) == REPORTS and {n for _, n in changes} == {1}, "each subscriber bounced by one change"
    assert statuses == {"bounced"}
