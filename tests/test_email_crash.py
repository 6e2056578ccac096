"""A sending process killed (SIGKILL) half-way through thousands of deliveries loses nothing.

Run ``syndicate once`` as its own process against a lean SMTP sink, kill it
while it sends, and start it again: what was merely claimed is claimed again
and sent once, without the operator. Unknown are at most the messages whose
envelope had left (two per connection: the wire's window); after the
operator resends those, every subscriber has the message, and every
duplicate the sink saw belongs to a delivery the outbox had marked ``unknown``.

Killed are either the whole process group (the composing parent and the
sending child at once: the worst case) or the parent alone, when the
sending child finishes what is on the wire and records it: nothing unknown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from servers.smtp_sink import start_sink
from sqlalchemy import func, select

from syndicate.pipeline import tick
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import deliveries
from syndicate.subscribers import Frequency, NewSubscriber

SUBSCRIBERS = 3000
KILL_AFTER = 800
LEASE = 1  # short, so the dead process's leases run out at once

CONFIG = """
[scheduler]
lease_seconds = {lease}

[email]
transport = "smtp"
from_address = "news@example.org"
batch = 25

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = 4
timeout_seconds = 5.0
"""


def _syndicate(site, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.root / "config.toml"), "-q", *args]
    # A session of its own, so the test can kill its whole process group (the sending child too).
    return subprocess.Popen(
        command, cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _run(site, *args: str) -> None:
    process = _syndicate(site, *args)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()


def _delivery_states(app) -> dict[int, str]:
    with app.db.read() as conn:
        return {
            r.id: r.state
            for r in conn.execute(select(deliveries.c.id, deliveries.c.state).where(deliveries.c.channel == "email"))
        }


def _wait_for_leases_to_run_out(app) -> None:
    """Sleep until the last lease still held (by the dead process) has run out, no longer."""
    with app.db.read() as conn:
        until = conn.execute(select(func.max(deliveries.c.lease_until))).scalar()
    if until is not None:
        time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["group", "parent"])
def test_sigkill_mid_send_then_restart_delivers_everyone_with_duplicates_only_where_unknown(site, make_app, victim):
    with start_sink(workers=1, track_ids=True) as sink:
        site.extra = CONFIG.format(port=sink.port, lease=LEASE)
        app = make_app(site)
        tick(app)  # a new installation starts its planning cursor here
        with app.db.write() as conn:
            people = [
                NewSubscriber(f"r{i}@example.org", ("en",), (), Frequency.IMMEDIATE, True, "test")
                for i in range(SUBSCRIBERS)
            ]
            subscriber_store.add_many(conn, people, app.clock())
        # The child process runs on the real clock: the statement is a minute old by it.
        site.statement(
            "news.md", "News for everyone", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
        )

        sender = _syndicate(site, "once")
        deadline = time.monotonic() + 120
        while sink.stats().messages < KILL_AFTER:
            assert sender.poll() is None, "the sender finished before it could be killed; raise SUBSCRIBERS"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        if victim == "group":
            os.killpg(sender.pid, signal.SIGKILL)  # the parent and its sending child together
        else:
            os.kill(sender.pid, signal.SIGKILL)
        sender.communicate(timeout=10)
        killed_at = sink.stats().messages
        assert killed_at < SUBSCRIBERS
        time.sleep(0.5)  # an orphaned sending child finishes what is on the wire (within its timeout)

        _wait_for_leases_to_run_out(app)
        _run(site, "once")  # no operator: what was claimed but never left goes out now
        states = _delivery_states(app)
        unknown = {i for i, state in states.items() if state == "unknown"}
        assert set(states.values()) <= {"sent", "unknown"}
        before_resend = sink.message_ids()
        assert all(before_resend[f"<syndicate.{i}@example.org>"] == 1 for i, st in states.items() if st == "sent")
        _run(site, "deliveries", "resend-unknown")
        _run(site, "once")
        sink.stop()
        arrived = sink.message_ids()

    states = _delivery_states(app)
    assert len(states) == SUBSCRIBERS
    assert set(states.values()) == {"sent"}
    ids = {f"<syndicate.{i}@example.org>" for i in states}
    assert ids <= set(arrived), "every subscriber has the message"
    duplicated = {int(mid.split(".")[1].split("@")[0]) for mid, n in arrived.items() if n > 1}
    assert duplicated <= unknown, "the only duplicates are deliveries marked unknown"
    assert len(unknown) <= 2 * 4, "at most two per connection: the messages whose envelope had left"
    if victim == "parent":
        assert not unknown, "the sending child finished and recorded what was on the wire"
