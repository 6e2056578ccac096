"""The hand-off follows the bytes: a message's text leaves only once its hand-off is committed.

Watched from the receiving side: a real SMTP server on loopback looks the
delivery up in the database at the moment the whole text has arrived. And a
letter that another node takes over after its envelope has left is never
delivered, over a pipelining server (the session hangs up inside DATA) and
over one without PIPELINING (the transaction is reset, or the session hung up
if DATA was already open).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from servers.smtp import Fault, SMTPServer
from sqlalchemy import select
from test_email_delivery import add_subscribers, received, states

from syndicate.deliver.email.wire import WINDOW, Attempt, Fate, FreeLedger, RelaySettings, Wire, WireSettings, pools_for
from syndicate.mail import Letter, MessageTemplate
from syndicate.pipeline import tick
from syndicate.store.schema import deliveries

CONFIG = """
[email]
transport = "smtp"
from_address = "news@example.org"
batch = 10

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = 2
timeout_seconds = 5.0
"""
ADDRESSES = [f"reader{i}@example.org" for i in range(30)]
MESSAGE_ID = re.compile(r"<syndicate\.(\d+)@")


def test_every_text_reaches_the_server_after_its_hand_off_was_committed(site, make_app):
    seen: dict[int, tuple[str, bool]] = {}
    lock = threading.Lock()
    app_box: list[Any] = []

    def look_up(message: EmailMessage) -> bool:
        """At the final dot: how the database, read by another connection, shows this delivery."""
        match = MESSAGE_ID.search(str(message["Message-ID"]))
        assert match, message["Message-ID"]
        delivery = int(match.group(1))
        with app_box[0].db.read() as conn:
            row = conn.execute(
                select(deliveries.c.state, deliveries.c.handoff_at).where(deliveries.c.id == delivery)
            ).one()
        with lock:
            seen[delivery] = (row.state, row.handoff_at is not None)
        return False  # only watching: the message is accepted

    with SMTPServer([Fault.end_of_data(554, message=look_up)]) as server:
        site.extra = CONFIG.format(port=server.port)
        app = make_app(site)
        app_box.append(app)
        tick(app)
        add_subscribers(app, ADDRESSES)
        site.statement("news.md", "News", "2026-11-26T13:00:00+03:00")
        report = tick(app)

    assert report.stages["send-email"] == {"sent": len(ADDRESSES)}
    assert received(server) == Counter(ADDRESSES)
    assert len(seen) == len(ADDRESSES)
    assert all(handed_off and state == "in_flight" for state, handed_off in seen.values()), seen
    assert {state for state, _ in states(app).values()} == {"sent"}


class TakingOver(FreeLedger):
    """A ledger on which another node has taken one letter over: its hand-off is refused.

    It also checks the wire's window at every commit: no more letters handed off and
    not yet recorded than ``WINDOW`` per connection, and no end of a delivered letter
    that was never handed off.
    """

    def __init__(self, taken: int, connections: int) -> None:
        self.taken = taken
        self.limit = WINDOW * connections
        self.handed: set[int] = set()
        self.problems: list[str] = []

    def settle(self, ends: list[Attempt], starting: list[int]) -> set[int]:  # type: ignore[override]
        for end in ends:
            if end.fate == Fate.DELIVERED and end.id not in self.handed:
                self.problems.append(f"letter {end.id} was delivered without a hand-off")
            self.handed.discard(end.id)
        held = {i for i in starting if i != self.taken}
        self.handed |= held
        if len(self.handed) > self.limit:
            self.problems.append(f"{len(self.handed)} handed off and unrecorded (window {self.limit})")
        return held


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_a_letter_taken_over_after_its_envelope_left_is_never_delivered(pipelining):
    template = MessageTemplate.from_bytes(
        b"From: news@example.org\r\nTo: someone@example.org\r\nSubject: News\r\nMessage-ID: <m@example.org>\r\n"
        b"\r\nHello.\r\n"
    )
    letters = [Letter(i, "news@example.org", f"reader{i}@example.org", 1, {}) for i in range(1, 9)]
    without = () if pipelining else ("PIPELINING",)
    with SMTPServer(without=without) as server:
        relay = RelaySettings("mx", "127.0.0.1", server.port, "none", 5.0, "test", None, 1, 0.0)
        ledger = TakingOver(taken=3, connections=1)
        wire = Wire(pools_for(WireSettings((relay,))), ledger, lambda: datetime.now(UTC))
        wire.add_template(1, template)
        wire.submit(8, letters)
        fates: dict[int, Attempt] = {}
        for _ in range(2000):
            for _, attempts in wire.pump(True, timeout=0.05):
                fates.update((a.id, a) for a in attempts)
            if not wire.busy():
                break
        wire.close()
        arrived = Counter(r for m in server.messages for r in m.recipients)

    assert sorted(fates) == list(range(1, 9)), "every letter has one fate"
    assert fates[3].fate == Fate.LOST
    assert "reader3@example.org" not in arrived, "the letter another node took over never arrived"
    delivered = {f"reader{i}@example.org" for i, a in fates.items() if a.fate == Fate.DELIVERED}
    assert arrived == Counter(delivered), "what arrived is exactly what the wire says was delivered, once each"
    assert {1, 2} <= {i for i, a in fates.items() if a.fate == Fate.DELIVERED}
    assert all(m.message.get_content().strip() == "Hello." for m in server.messages), "no empty message"
    assert not ledger.problems, ledger.problems
    others = {a.fate for i, a in fates.items() if i > 3}
    assert others <= {Fate.DELIVERED, Fate.UNTRIED}, "after it: sent over a reset session, or given back unsent"
